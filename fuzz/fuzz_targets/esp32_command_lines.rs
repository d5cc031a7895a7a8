//! Host → device: arbitrary bytes written to the emulated panel (devkit `Firmware::feed`, whose
//! command lines go through the firmware's key-search parser, `esp32::parser`), with the
//! firmware's timers running in between.
//!
//! Oracles: no panic; one ack per acknowledged line and none for dropped lines; echoed ids and
//! command names are at most 63 bytes; every line the firmware writes is read back by the
//! aggregator's line classifier as what it is, and an ack whose echoes are printable UTF-8
//! round-trips field for field (encode → parse = identity).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndefender_aggregator::esp32::line::{classify, AckFields, DeviceInput};
use ndefender_contract::esp32::{DeviceLine, MAX_ECHO_BYTES};
use ndefender_devkit::esp32::{Firmware, FirmwareConfig, LineOutcome, Output};

fn printable_utf8(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok().filter(|s| !s.chars().any(char::is_control))
}

fn check_output(o: &Output) {
    let wire = o.to_wire();
    assert!(wire.ends_with(b"\r\n"));
    let body = &wire[..wire.len() - 2];
    let (input, _) = classify(body);
    match o {
        Output::Telemetry(t) => {
            assert!(matches!(input, DeviceInput::Telemetry(_)));
            let typed = DeviceLine::parse(&String::from_utf8_lossy(body));
            assert_eq!(typed, Ok(DeviceLine::Telemetry(t.clone())));
        }
        Output::Log(_) => assert!(matches!(input, DeviceInput::LogEvent(_))),
        Output::Ack(a) => {
            assert!(a.id.len() <= MAX_ECHO_BYTES);
            assert!(a.cmd.as_ref().is_none_or(|c| c.len() <= MAX_ECHO_BYTES));
            let id = printable_utf8(&a.id);
            let cmd = a.cmd.as_deref().map(printable_utf8);
            let (Some(id), None | Some(Some(_))) = (id, cmd) else {
                // Raw control bytes or invalid UTF-8 echoed as is (esp32-protocol §6 item 8).
                return;
            };
            let DeviceInput::CommandAck(obj) = input else {
                panic!("ack not read back as an ack: {:?}", String::from_utf8_lossy(body));
            };
            let f = AckFields::from_obj(&obj);
            assert_eq!(f.id, id);
            assert_eq!(f.ok, a.err.is_none());
            assert_eq!(f.err.as_deref(), a.err.map(|e| e.as_str()));
            assert_eq!(f.cmd.as_deref(), cmd.flatten());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&knob, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(knob & 0x1f) + 1;
    let step_ms = u64::from(knob >> 5) * 150;
    let cfg = FirmwareConfig {
        emit_log_events: knob & 1 == 1,
        ..FirmwareConfig::default()
    };
    let mut now = 0u64;
    let mut fw = Firmware::new(cfg, now);
    let mut acks = 0usize;
    let mut telemetry = 0usize;
    for c in bytes.chunks(chunk) {
        for o in fw.feed(c, now).iter().chain(fw.tick(now).iter()) {
            acks += usize::from(matches!(o, Output::Ack(_)));
            // Telemetry encoding has its own target; reading back a few keeps this one fast.
            if matches!(o, Output::Telemetry(_)) {
                telemetry += 1;
                if telemetry > 3 {
                    continue;
                }
            }
            check_output(o);
        }
        now += step_ms;
    }
    let journal = fw.drain_journal();
    let acked = journal
        .iter()
        .filter(|l| matches!(l.outcome, LineOutcome::Acked { .. }))
        .count();
    assert_eq!(acks, acked, "one ack per acknowledged line");
    let stats = fw.stats();
    assert_eq!(stats.lines_received, journal.len() as u64);
    assert_eq!(stats.acks, acked as u64);
});
