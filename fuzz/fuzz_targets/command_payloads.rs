//! Command bodies (PROTOCOL.md §5 "Command request", `CommandRequest::parse`, which every command
//! route runs first) and the ESP32 payload validation/translation of every route
//! (`esp32::translate::translate`, aggregator §7.4).
//!
//! Oracles: no panic; a body that parses re-serialises (`to_body`, the relay path) to a body
//! that parses to the same request; `invalid_json` only for non-JSON; a refused payload names
//! one of the route's own fields; every translated command is a short LF-terminated line that
//! the emulated firmware acknowledges and applies exactly as translated (so host validation
//! never lets through what the device refuses).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndefender_aggregator::esp32::translate::{translate, FwCommand};
use ndefender_aggregator::esp32::Route;
use ndefender_contract::command::{CommandBodyError, CommandRequest};
use ndefender_contract::devices::LedState;
use ndefender_contract::esp32::{Esp32Command, Esp32ErrorCode, MAX_COMMAND_LINE_BYTES};
use ndefender_devkit::esp32::{Firmware, FirmwareConfig, Output};
use ndefender_fuzz::same_json;
use serde_json::Value;

const ID: &str = "9b2e6f5e-3c0a-4f64-9d7e-0c9a1c3e5b11";

fn fields(route: Route) -> &'static [&'static str] {
    match route {
        Route::VrxTune | Route::Esp32VrxTune => &["vrx_id", "freq_hz", "freq_mhz"],
        Route::ScanStart => &["dwell_ms", "step_hz", "start_hz", "stop_hz"],
        Route::ScanLock => &["vrx_id"],
        Route::VideoSelect | Route::Esp32VideoSelect => &["ch", "sel"],
        Route::Esp32Leds => &["red", "yellow", "green", "r", "y", "g"],
        Route::ScanStop | Route::Esp32Buzzer | Route::Esp32Config | Route::ButtonsSimulate => &[],
    }
}

fn ack(out: &[Output]) -> Option<Esp32ErrorCode> {
    let acks: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Ack(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(acks.len(), 1, "exactly one ack per command line");
    assert_eq!(acks[0].id, ID.as_bytes(), "ack echoes the command id");
    acks[0].err
}

/// Writes the translated command to a fresh emulated panel and checks its effect.
fn on_firmware(route: Route, cmd: &FwCommand) {
    let line = cmd.line(ID);
    assert!(line.ends_with('\n') && line.len() < 256 && line.len() <= MAX_COMMAND_LINE_BYTES);
    // The contract's encoder writes the same line for the same command.
    let c = Esp32Command::new(ID, cmd.cmd, &cmd.args);
    assert_eq!(c.to_line(), line, "host encoders disagree");

    let mut fw = Firmware::new(FirmwareConfig::default(), 0);
    let mut now = 0;
    if route == Route::ScanLock {
        // Give the scan something to lock on: a default scan for a while.
        fw.feed(Esp32Command::start_scan("s", 200, 2_000_000, 5_645_000_000, 5_865_000_000).to_line().as_bytes(), now);
        while now < 3_000 {
            now += 60;
            fw.tick(now);
        }
    }
    let (best, _) = fw.best();
    let err = ack(&fw.feed(line.as_bytes(), now));
    let arg = |k: &str| cmd.arg(k).unwrap_or(i64::MIN);
    match route {
        Route::VrxTune | Route::Esp32VrxTune => {
            assert_eq!(err, None);
            let idx = usize::try_from(arg("vrx_id") - 1).unwrap_or(usize::MAX);
            assert_eq!(fw.freqs().get(idx), Some(&arg("freq_hz")));
        }
        Route::ScanStart => {
            assert_eq!(err, None);
            assert!(fw.scanning());
            assert_eq!(fw.freqs(), [arg("start_hz"); 3]);
        }
        Route::ScanStop => {
            assert_eq!(err, None);
            assert!(!fw.scanning());
        }
        Route::ScanLock => {
            let any = match cmd.arg("vrx_id") {
                Some(v) => usize::try_from(v - 1).ok().and_then(|i| best.get(i)).is_some_and(|b| *b > 0),
                None => best.iter().any(|b| *b > 0),
            };
            assert_eq!(err, if any { None } else { Some(Esp32ErrorCode::NoBest) });
        }
        Route::VideoSelect | Route::Esp32VideoSelect => {
            assert_eq!(err, None);
            assert_eq!(i64::from(fw.video()), arg("ch"));
        }
        Route::Esp32Leds => {
            assert_eq!(err, None);
            assert_eq!(fw.leds().map(i64::from), [arg("r"), arg("y"), arg("g")]);
        }
        Route::Esp32Buzzer | Route::Esp32Config | Route::ButtonsSimulate => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&b, body)) = data.split_first() else {
        return;
    };
    let req = match CommandRequest::parse(body) {
        Ok(r) => r,
        Err(CommandBodyError::InvalidJson) => {
            assert!(serde_json::from_slice::<Value>(body).is_err());
            return;
        }
        Err(CommandBodyError::InvalidPayload) => {
            assert!(serde_json::from_slice::<Value>(body).is_ok());
            return;
        }
    };
    let again = serde_json::to_vec(&req.to_body()).unwrap_or_default();
    let Ok(back) = CommandRequest::parse(&again) else {
        panic!("re-serialised body refused: {}", String::from_utf8_lossy(&again));
    };
    assert_eq!(back.confirm, req.confirm);
    assert!(same_json(&Value::Object(back.payload), &Value::Object(req.payload.clone())));

    let leds = (b & 0x80 == 0).then(|| LedState {
        r: i64::from(b & 1),
        y: i64::from((b >> 1) & 1),
        g: i64::from((b >> 2) & 1),
    });
    for route in Route::ALL {
        match translate(route, &req.payload, leds) {
            Ok(cmd) => {
                assert_eq!(cmd.cmd, route.firmware_cmd());
                if route.supported() {
                    on_firmware(route, &cmd);
                }
            }
            Err(bad) => assert!(fields(route).contains(&bad.0), "{route:?} refused with {}", bad.0),
        }
    }
});
