//! The pure firmware model: every command and error code (§4/§5), the parser
//! quirks (§6/§8) and the scan/lock engine (§7.3). No pty, injected time.

use ndefender_contract::esp32::{CommandAckLine, DeviceLine, Esp32ErrorCode as E, Telemetry};
use ndefender_devkit::esp32::{Firmware, FirmwareConfig, LineOutcome, Mode, Output, RfScene, Transmitter};

type R = Result<(), Box<dyn std::error::Error>>;

fn fw_with(scene: RfScene) -> Firmware {
    Firmware::new(
        FirmwareConfig {
            seed: 7,
            scene,
            telemetry_period_ms: 1000,
            telemetry_jitter_ms: 0,
            emit_log_events: false,
            uptime_start_ms: 0,
        },
        0,
    )
}

fn fw() -> Firmware {
    fw_with(RfScene::silent())
}

/// Sends one line and returns the parsed ack (exactly one is required).
fn ack(fw: &mut Firmware, line: &str, now: u64) -> Result<CommandAckLine, String> {
    let out = fw.handle_line(line.as_bytes(), now);
    let acks = Output::acks(&out);
    if acks.len() != 1 {
        return Err(format!("expected exactly one ack for {line}, got {out:?}"));
    }
    let wire = acks[0].to_wire();
    if !wire.ends_with(b"}\r\n") {
        return Err(format!("ack not CRLF-terminated: {wire:?}"));
    }
    let text = String::from_utf8(wire).map_err(|e| e.to_string())?;
    match DeviceLine::parse(text.trim_end()).map_err(|e| e.to_string())? {
        DeviceLine::CommandAck(a) => Ok(a),
        other => Err(format!("not an ack: {other:?}")),
    }
}

fn err_of(fw: &mut Firmware, line: &str) -> Result<Option<E>, String> {
    let a = ack(fw, line, 10)?;
    if a.ok != a.err.is_none() {
        return Err(format!("ok/err mismatch: {a:?}"));
    }
    Ok(a.err_code())
}

fn no_ack(fw: &mut Firmware, line: &[u8]) -> Result<(), String> {
    let out = fw.handle_line(line, 10);
    if out.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "expected no output for {:?}, got {out:?}",
            String::from_utf8_lossy(line)
        ))
    }
}

/// Runs the timers from `from` to `to` (inclusive) in 1 ms steps at deadlines and
/// returns the telemetry lines.
fn run(fw: &mut Firmware, from: u64, to: u64) -> Vec<Telemetry> {
    let mut out = Vec::new();
    let mut now = from;
    while now <= to {
        for o in fw.tick(now) {
            if let Output::Telemetry(t) = o {
                out.push(t);
            }
        }
        now = fw.next_deadline().max(now + 1);
    }
    out
}

#[test]
fn boot_defaults_and_telemetry_bytes() -> R {
    let mut fw = fw_with(RfScene::example_5740());
    assert!(run(&mut fw, 0, 999).is_empty(), "no telemetry before 1000 ms");
    let t = run(&mut fw, 1000, 1000);
    assert_eq!(t.len(), 1);
    let line = String::from_utf8(t[0].to_wire())?;
    assert_eq!(
        line,
        "{\"type\":\"telemetry\",\"timestamp_ms\":1000,\"sel\":1,\"vrx\":[{\"id\":1,\"freq_hz\":5740000000,\"rssi_raw\":219},{\"id\":2,\"freq_hz\":5800000000,\"rssi_raw\":115},{\"id\":3,\"freq_hz\":5860000000,\"rssi_raw\":115}],\"video\":{\"selected\":1},\"led\":{\"r\":0,\"y\":0,\"g\":1},\"sys\":{\"uptime_ms\":1000,\"heap\":"
            .to_owned()
            + &t[0].sys.map(|s| s.heap).unwrap_or(0).to_string()
            + "}}\r\n"
    );
    assert_eq!(fw.mode(), Mode::Idle);
    assert!(!fw.scanning());
    Ok(())
}

#[test]
fn default_scene_has_a_transmitter_on_5800() {
    let mut fw = fw_with(RfScene::default());
    let t = run(&mut fw, 0, 1000);
    let rssi: Vec<u16> = t[0].vrx.iter().flatten().map(|v| v.rssi_raw).collect();
    assert!(rssi[1] > 2000, "VRX2 on 5800 hears the transmitter: {rssi:?}");
    assert!(
        (90..=140).contains(&rssi[0]) && (90..=140).contains(&rssi[2]),
        "{rssi:?}"
    );
}

#[test]
fn telemetry_period_with_jitter_stays_in_range() {
    let mut fw = Firmware::new(FirmwareConfig::default(), 0);
    let t = run(&mut fw, 0, 30_000);
    let gaps: Vec<u32> = t.windows(2).map(|w| w[1].timestamp_ms - w[0].timestamp_ms).collect();
    assert!(gaps.len() >= 25);
    assert!(gaps.iter().all(|g| (1000..=1150).contains(g)), "{gaps:?}");
    assert!(t
        .iter()
        .all(|l| l.sel == Some(1) && l.sys.map(|s| s.uptime_ms) == Some(l.timestamp_ms)));
}

#[test]
fn every_command_succeeds() -> R {
    let mut fw = fw();
    let a = ack(&mut fw, r#"{"id":"7","cmd":"GET_STATUS","args":{}}"#, 5)?;
    assert!(a.ok && a.err.is_none() && a.id == "7" && a.cmd() == Some("GET_STATUS") && a.timestamp_ms == 5);

    assert_eq!(
        err_of(&mut fw, r#"{"id":"6","cmd":"SET_LEDS","args":{"r":1,"y":0,"g":1}}"#)?,
        None
    );
    assert_eq!(fw.leds(), [1, 0, 1]);

    assert_eq!(
        err_of(
            &mut fw,
            r#"{"id":"1","cmd":"SET_VRX_FREQ","args":{"vrx_id":2,"freq_hz":5740000000}}"#
        )?,
        None
    );
    assert_eq!(fw.freqs()[1], 5_740_000_000);
    assert_eq!(fw.mode(), Mode::Manual);

    assert_eq!(
        err_of(&mut fw, r#"{"id":"5","cmd":"VIDEO_SELECT","args":{"ch":2}}"#)?,
        None
    );
    assert_eq!(fw.video(), 2);
    assert_eq!(
        err_of(&mut fw, r#"{"id":"5","cmd":"VIDEO_SELECT","args":{"sel":3}}"#)?,
        None
    );
    assert_eq!(fw.video(), 3, "legacy alias sel");
    assert_eq!(
        err_of(&mut fw, r#"{"id":"5","cmd":"VIDEO_SELECT","args":{"ch":1,"sel":3}}"#)?,
        None
    );
    assert_eq!(fw.video(), 1, "ch wins over sel");

    let start = r#"{"id":"2","cmd":"START_SCAN","args":{"dwell_ms":200,"step_hz":2000000,"start_hz":5645000000,"stop_hz":5865000000}}"#;
    assert_eq!(err_of(&mut fw, start)?, None);
    assert!(fw.scanning());
    assert_eq!(fw.mode(), Mode::Scan);
    assert_eq!(fw.freqs(), [5_645_000_000; 3]);

    assert_eq!(err_of(&mut fw, r#"{"id":"3","cmd":"STOP_SCAN","args":{}}"#)?, None);
    assert!(!fw.scanning());
    assert_eq!(fw.mode(), Mode::Idle);
    Ok(())
}

#[test]
fn telemetry_reflects_effects_and_sel_stays_1() -> R {
    let mut fw = fw();
    err_of(&mut fw, r#"{"id":"a","cmd":"VIDEO_SELECT","args":{"ch":3}}"#)?;
    err_of(&mut fw, r#"{"id":"b","cmd":"SET_LEDS","args":{"r":1,"y":1,"g":0}}"#)?;
    err_of(
        &mut fw,
        r#"{"id":"c","cmd":"SET_VRX_FREQ","args":{"vrx_id":3,"freq_hz":1200000000}}"#,
    )?;
    let t = run(&mut fw, 0, 1000);
    let t = &t[0];
    assert_eq!(t.sel, Some(1));
    assert_eq!(t.video.map(|v| v.selected), Some(3));
    assert_eq!(t.led.map(|l| (l.r, l.y, l.g)), Some((1, 1, 0)));
    assert_eq!(t.vrx.as_ref().map(|v| v[2].freq_hz), Some(1_200_000_000));
    Ok(())
}

#[test]
fn error_codes_missing_cmd_and_id() -> R {
    let mut fw = fw();
    let a = ack(&mut fw, r#"{"id":"7","args":{}}"#, 1)?;
    assert_eq!(a.err_code(), Some(E::MissingCmd));
    assert_eq!(a.id, "7");
    assert!(a.data.is_none(), "missing_cmd has no data");
    let raw = fw.handle_line(br#"{"id":"7"}"#, 1500);
    assert_eq!(
        raw.first().map(Output::to_wire),
        Some(
            b"{\"type\":\"command_ack\",\"timestamp_ms\":1500,\"id\":\"7\",\"ok\":false,\"err\":\"missing_cmd\"}\r\n"
                .to_vec()
        )
    );
    Ok(())
}

#[test]
fn error_codes_ids() -> R {
    let mut fw = fw();
    // cmd present, id absent or numeric → missing_id with id "unknown" and data.cmd.
    for line in [r#"{"cmd":"GET_STATUS"}"#, r#"{"id":7,"cmd":"GET_STATUS","args":{}}"#] {
        let a = ack(&mut fw, line, 1)?;
        assert_eq!(a.err_code(), Some(E::MissingId), "{line}");
        assert_eq!(a.id, "unknown");
        assert_eq!(a.cmd(), Some("GET_STATUS"));
    }
    // Neither: missing_cmd first (§6 item 7), id "unknown".
    let a = ack(&mut fw, r#"{"args":{}}"#, 1)?;
    assert_eq!((a.err_code(), a.id.as_str()), (Some(E::MissingCmd), "unknown"));
    Ok(())
}

#[test]
fn error_codes_args() -> R {
    let mut fw = fw();
    // (command, args, expected error): each sent as {"id":"1","cmd":..,"args":..}.
    let cases: &[(&str, &str, Option<E>)] = &[
        ("SET_LEDS", r#"{"r":1,"y":0}"#, Some(E::MissingArgs)),
        ("SET_LEDS", r#"{"r":1,"y":0,"g":true}"#, Some(E::MissingArgs)),
        ("SET_LEDS", r#"{"r":2,"y":0,"g":1}"#, Some(E::ArgsOob)),
        ("SET_LEDS", r#"{"r":-1,"y":0,"g":1}"#, Some(E::ArgsOob)),
        ("SET_VRX_FREQ", r#"{"vrx_id":1}"#, Some(E::MissingArgs)),
        (
            "SET_VRX_FREQ",
            r#"{"vrx_id":4,"freq_hz":5740000000}"#,
            Some(E::VrxIdOob),
        ),
        (
            "SET_VRX_FREQ",
            r#"{"vrx_id":0,"freq_hz":5740000000}"#,
            Some(E::VrxIdOob),
        ),
        ("SET_VRX_FREQ", r#"{"vrx_id":4,"freq_hz":7}"#, Some(E::VrxIdOob)),
        ("SET_VRX_FREQ", r#"{"vrx_id":1,"freq_hz":999999}"#, Some(E::FreqOob)),
        ("SET_VRX_FREQ", r#"{"vrx_id":1,"freq_hz":6500000001}"#, Some(E::FreqOob)),
        ("SET_VRX_FREQ", r#"{"vrx_id":1,"freq_hz":1000000}"#, None),
        ("SET_VRX_FREQ", r#"{"vrx_id":1,"freq_hz":6500000000}"#, None),
        (
            "START_SCAN",
            r#"{"dwell_ms":200,"step_hz":2000000,"start_hz":5645000000}"#,
            Some(E::MissingArgs),
        ),
        (
            "START_SCAN",
            r#"{"dwell_ms":9,"step_hz":2000000,"start_hz":5645000000,"stop_hz":5865000000}"#,
            Some(E::DwellOob),
        ),
        (
            "START_SCAN",
            r#"{"dwell_ms":5001,"step_hz":2000000,"start_hz":5645000000,"stop_hz":5865000000}"#,
            Some(E::DwellOob),
        ),
        (
            "START_SCAN",
            r#"{"dwell_ms":10,"step_hz":0,"start_hz":5645000000,"stop_hz":5865000000}"#,
            Some(E::RangeOob),
        ),
        (
            "START_SCAN",
            r#"{"dwell_ms":10,"step_hz":1,"start_hz":-5,"stop_hz":5865000000}"#,
            Some(E::RangeOob),
        ),
        (
            "START_SCAN",
            r#"{"dwell_ms":10,"step_hz":1,"start_hz":5865000000,"stop_hz":5865000000}"#,
            Some(E::RangeOob),
        ),
        (
            "START_SCAN",
            r#"{"dwell_ms":5000,"step_hz":1,"start_hz":1,"stop_hz":99000000000}"#,
            None,
        ),
        ("VIDEO_SELECT", r#"{}"#, Some(E::MissingArgs)),
        ("VIDEO_SELECT", r#"{"ch":4}"#, Some(E::ChOob)),
        ("VIDEO_SELECT", r#"{"ch":0}"#, Some(E::ChOob)),
        ("SET_BUZZER", r#"{"on":1}"#, Some(E::UnknownCmd)),
        ("SET_CONFIG", r#"{}"#, Some(E::UnknownCmd)),
        ("SIMULATE_BUTTON", r#"{}"#, Some(E::UnknownCmd)),
        ("get_status", r#"{}"#, Some(E::UnknownCmd)),
    ];
    for (cmd, args, expected) in cases {
        let line = format!(r#"{{"id":"1","cmd":"{cmd}","args":{args}}}"#);
        assert_eq!(err_of(&mut fw, &line)?, *expected, "{line}");
    }
    let a = ack(&mut fw, r#"{"id":"9","cmd":"SET_BUZZER"}"#, 1)?;
    assert_eq!(a.cmd(), Some("SET_BUZZER"), "unknown_cmd echoes data.cmd");
    Ok(())
}

#[test]
fn no_best_cases() -> R {
    let mut fw = fw();
    // Before any scan the best values are 0.
    assert_eq!(
        err_of(&mut fw, r#"{"id":"1","cmd":"LOCK_STRONGEST","args":{"vrx_id":1}}"#)?,
        Some(E::NoBest)
    );
    assert_eq!(
        err_of(&mut fw, r#"{"id":"1","cmd":"LOCK_STRONGEST","args":{}}"#)?,
        Some(E::NoBest)
    );
    assert_eq!(
        err_of(&mut fw, r#"{"id":"1","cmd":"LOCK_STRONGEST","args":{"vrx_id":9}}"#)?,
        Some(E::VrxIdOob)
    );
    // A true RSSI of 0 everywhere gives no_best after a scan too (quirk 10: the scan stops).
    let start = r#"{"id":"2","cmd":"START_SCAN","args":{"dwell_ms":10,"step_hz":2000000,"start_hz":5645000000,"stop_hz":5865000000}}"#;
    err_of(&mut fw, start)?;
    run(&mut fw, 0, 500);
    assert_eq!(
        err_of(&mut fw, r#"{"id":"1","cmd":"LOCK_STRONGEST","args":{"vrx_id":1}}"#)?,
        Some(E::NoBest)
    );
    assert!(fw.scanning(), "with vrx_id the scan keeps running");
    assert_eq!(
        err_of(&mut fw, r#"{"id":"1","cmd":"LOCK_STRONGEST","args":{"vrx_id":0}}"#)?,
        Some(E::VrxIdOob)
    );
    assert!(fw.scanning());
    assert_eq!(
        err_of(&mut fw, r#"{"id":"1","cmd":"LOCK_STRONGEST","args":{}}"#)?,
        Some(E::NoBest)
    );
    assert!(!fw.scanning(), "without vrx_id the scan stops even on no_best");
    Ok(())
}

#[test]
fn parser_quirks_no_ack_lines() -> R {
    let mut fw = fw();
    no_ack(&mut fw, b"GET_STATUS")?;
    no_ack(&mut fw, b"[1,2]")?;
    no_ack(&mut fw, b"  x{\"id\":\"1\",\"cmd\":\"GET_STATUS\"}")?;
    no_ack(&mut fw, b"")?;
    no_ack(&mut fw, b"\r")?;
    assert_eq!(fw.stats().rx_errors, 3);
    // Leading spaces before `{` are fine.
    assert_eq!(err_of(&mut fw, r#"   {"id":"1","cmd":"GET_STATUS"}"#)?, None);

    // 511 content bytes are accepted, 512 are dropped whole with no ack.
    let base = r#"{"id":"1","cmd":"GET_STATUS","args":{},"pad":""#;
    let exact = format!("{base}{}\"}}", "x".repeat(511 - base.len() - 2));
    assert_eq!(exact.len(), 511);
    assert_eq!(err_of(&mut fw, &exact)?, None);
    let over = format!("{base}{}\"}}", "x".repeat(512 - base.len() - 2));
    assert_eq!(over.len(), 512);
    no_ack(&mut fw, over.as_bytes())?;
    assert_eq!(fw.stats().rx_overflow, 1);
    // `\r` does not count: 511 bytes plus CRs are still accepted.
    let with_cr = exact.replace(',', ",\r");
    assert_eq!(err_of(&mut fw, &with_cr)?, None);
    Ok(())
}

#[test]
fn feed_splits_lines_and_handles_overflow_across_chunks() -> R {
    let mut fw = fw();
    let mut out = fw.feed(b"{\"id\":\"a\",\"cmd\":\"GET_STATUS\"}\r\n\n{\"id\":\"b\",", 1);
    out.extend(fw.feed(b"\"cmd\":\"STOP_SCAN\"}\nnoise\n", 2));
    let ids: Vec<Vec<u8>> = out
        .iter()
        .filter_map(|o| match o {
            Output::Ack(a) => Some(a.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![b"a".to_vec(), b"b".to_vec()], "in order, one ack each");
    // An overlong line delivered in pieces: dropped, and the next line still works.
    let long = vec![b'{'; 3000];
    let mut out = fw.feed(&long[..1000], 3);
    out.extend(fw.feed(&long[1000..], 3));
    out.extend(fw.feed(b"\n{\"id\":\"c\",\"cmd\":\"GET_STATUS\"}\n", 3));
    assert_eq!(out.len(), 1);
    assert_eq!(fw.stats().rx_overflow, 1);
    assert_eq!(fw.stats().rx_errors, 1);
    Ok(())
}

#[test]
fn id_truncation_and_escaping() -> R {
    let mut fw = fw();
    let long_id = "x".repeat(70);
    let a = ack(&mut fw, &format!(r#"{{"id":"{long_id}","cmd":"GET_STATUS"}}"#), 1)?;
    assert_eq!(a.id, "x".repeat(63));
    // Escapes: \" and \\ are echoed escaped; \n in the input is the letter n.
    let a = ack(&mut fw, r#"{"id":"a\"b\\c\nd","cmd":"GET_STATUS"}"#, 1)?;
    assert_eq!(a.id, "a\"b\\cnd");
    // Control characters are written raw (the ack is then invalid JSON).
    let out = fw.handle_line(b"{\"id\":\"t\tab\x01\",\"cmd\":\"GET_STATUS\"}", 1);
    let wire = out.first().map(Output::to_wire).unwrap_or_default();
    assert!(wire.windows(6).any(|w| w == b"t\tab\x01\""), "{wire:?}");
    assert!(serde_json::from_slice::<serde_json::Value>(&wire).is_err());
    Ok(())
}

#[test]
fn integer_only_args_and_wrapping() -> R {
    let mut fw = fw();
    // 5.74e9 reads as 5 → freq_oob; "1" is missing; 1.9 reads as 1.
    assert_eq!(
        err_of(
            &mut fw,
            r#"{"id":"1","cmd":"SET_VRX_FREQ","args":{"vrx_id":1,"freq_hz":5.74e9}}"#
        )?,
        Some(E::FreqOob)
    );
    assert_eq!(
        err_of(
            &mut fw,
            r#"{"id":"1","cmd":"SET_VRX_FREQ","args":{"vrx_id":"1","freq_hz":5740000000}}"#
        )?,
        Some(E::MissingArgs)
    );
    assert_eq!(
        err_of(&mut fw, r#"{"id":"1","cmd":"VIDEO_SELECT","args":{"ch":1.9}}"#)?,
        None
    );
    assert_eq!(fw.video(), 1);
    assert_eq!(
        err_of(&mut fw, r#"{"id":"1","cmd":"VIDEO_SELECT","args":{"ch":+2}}"#)?,
        Some(E::MissingArgs)
    );
    // 32-bit fields wrap: 4294967298 → 2.
    assert_eq!(
        err_of(&mut fw, r#"{"id":"1","cmd":"VIDEO_SELECT","args":{"ch":4294967298}}"#)?,
        None
    );
    assert_eq!(fw.video(), 2);
    Ok(())
}

#[test]
fn first_occurrence_only() -> R {
    let mut fw = fw();
    // The first "cmd" is a string value not followed by ':' → missing_cmd.
    let a = ack(&mut fw, r#"{"id":"cmd","cmd":"GET_STATUS"}"#, 1)?;
    assert_eq!(a.err_code(), Some(E::MissingCmd));
    // Invalid JSON containing the keys is executed.
    assert_eq!(err_of(&mut fw, r#"{"id":"1" "cmd":"VIDEO_SELECT" "ch":3"#)?, None);
    assert_eq!(fw.video(), 3);
    // Several objects: the first occurrence of each key wins.
    assert_eq!(
        err_of(
            &mut fw,
            r#"{"id":"1","cmd":"VIDEO_SELECT","args":{"ch":2}}{"id":"2","cmd":"X","args":{"ch":1}}"#
        )?,
        None
    );
    assert_eq!(fw.video(), 2);
    Ok(())
}

/// Scene: one clean transmitter on 5701 MHz (hit exactly by the synthesiser when
/// 5702 MHz is requested), no noise.
fn scan_fw() -> Firmware {
    fw_with(RfScene {
        noise_min: 0,
        noise_max: 0,
        transmitters: vec![Transmitter {
            freq_hz: 5_701_000_000,
            peak: 2600.0,
            width_mhz: 8.0,
        }],
    })
}

const SCAN: &str = r#"{"id":"s","cmd":"START_SCAN","args":{"dwell_ms":200,"step_hz":2000000,"start_hz":5690000000,"stop_hz":5710000000}}"#;

#[test]
fn scan_steps_and_lock() -> R {
    let mut fw = scan_fw();
    run(&mut fw, 0, 100);
    assert_eq!(ack(&mut fw, SCAN, 100)?.err, None);
    assert_eq!(fw.freqs(), [5_690_000_000; 3]);
    let (best, best_f) = fw.best();
    assert_eq!((best, best_f), ([0; 3], [5_690_000_000; 3]));
    // One step per dwell.
    run(&mut fw, 101, 300);
    assert_eq!(fw.freqs(), [5_692_000_000; 3]);
    run(&mut fw, 301, 500);
    assert_eq!(fw.freqs(), [5_694_000_000; 3]);
    // Through the peak (5702 requested → synth 5701), not yet wrapped.
    run(&mut fw, 501, 100 + 200 * 8 + 50);
    let (best, best_f) = fw.best();
    assert_eq!(best_f, [5_702_000_000; 3], "best freq {best_f:?} rssi {best:?}");
    assert_eq!(best, [2600; 3]);
    // LOCK one VRX: it is tuned to the best freq and the scan stops.
    assert_eq!(
        ack(
            &mut fw,
            r#"{"id":"l","cmd":"LOCK_STRONGEST","args":{"vrx_id":2}}"#,
            1800
        )?
        .err,
        None
    );
    assert!(!fw.scanning());
    assert_eq!(fw.mode(), Mode::Lock);
    assert_eq!(fw.freqs()[1], 5_702_000_000);
    // Best values survive STOP_SCAN and SET_VRX_FREQ; LOCK without vrx_id tunes all.
    ack(&mut fw, r#"{"id":"x","cmd":"STOP_SCAN","args":{}}"#, 1800)?;
    ack(
        &mut fw,
        r#"{"id":"y","cmd":"SET_VRX_FREQ","args":{"vrx_id":1,"freq_hz":5800000000}}"#,
        1800,
    )?;
    assert_eq!(fw.best().0, [2600; 3]);
    assert_eq!(
        ack(
            &mut fw,
            r#"{"id":"z","cmd":"LOCK_STRONGEST","args":{"vrx_id":"x"}}"#,
            1800
        )?
        .err,
        None
    );
    assert_eq!(
        fw.freqs(),
        [5_702_000_000; 3],
        "non-integer vrx_id counts as absent: all locked"
    );
    Ok(())
}

#[test]
fn scan_wrap_resets_best_values() -> R {
    let mut fw = scan_fw();
    ack(&mut fw, SCAN, 0)?;
    // 11 frequencies 5690..5710; the step after 5710 wraps to 5690 at t = 11 * 200.
    run(&mut fw, 1, 11 * 200 - 1);
    assert_eq!(fw.freqs(), [5_710_000_000; 3]);
    assert_eq!(fw.best().0, [2600; 3]);
    run(&mut fw, 11 * 200, 11 * 200);
    assert_eq!(fw.freqs(), [5_690_000_000; 3], "wrapped to start");
    assert_eq!(fw.best().0, [0; 3], "every best value reset at the wrap");
    // Just after the wrap, LOCK finds nothing.
    assert_eq!(
        err_of(&mut fw, r#"{"id":"1","cmd":"LOCK_STRONGEST","args":{"vrx_id":1}}"#)?,
        Some(E::NoBest)
    );
    Ok(())
}

#[test]
fn set_vrx_freq_does_not_stop_a_scan() -> R {
    let mut fw = scan_fw();
    ack(&mut fw, SCAN, 0)?;
    ack(
        &mut fw,
        r#"{"id":"t","cmd":"SET_VRX_FREQ","args":{"vrx_id":1,"freq_hz":5800000000}}"#,
        50,
    )?;
    assert_eq!(fw.freqs()[0], 5_800_000_000);
    assert!(fw.scanning());
    assert_eq!(fw.mode(), Mode::Scan);
    run(&mut fw, 51, 200);
    assert_eq!(fw.freqs()[0], 5_692_000_000, "overwritten at the next step");
    Ok(())
}

#[test]
fn restarting_a_scan_resets_best_values() -> R {
    let mut fw = scan_fw();
    ack(&mut fw, SCAN, 0)?;
    run(&mut fw, 1, 1700);
    assert_eq!(fw.best().0, [2600; 3]);
    ack(&mut fw, SCAN, 1700)?;
    assert_eq!(fw.best(), ([0; 3], [5_690_000_000; 3]));
    Ok(())
}

#[test]
fn uptime_wraps() {
    let mut fw = Firmware::new(
        FirmwareConfig {
            telemetry_jitter_ms: 0,
            uptime_start_ms: u32::MAX - 1500,
            ..FirmwareConfig::default()
        },
        0,
    );
    let t = run(&mut fw, 0, 2000);
    let ts: Vec<u32> = t.iter().map(|l| l.timestamp_ms).collect();
    assert_eq!(ts, vec![u32::MAX - 500, 499]);
}

#[test]
fn reset_restores_boot_defaults() -> R {
    let mut fw = fw();
    ack(&mut fw, r#"{"id":"1","cmd":"SET_LEDS","args":{"r":1,"y":1,"g":0}}"#, 10)?;
    ack(&mut fw, SCAN, 10)?;
    fw.reset(5000);
    assert_eq!(fw.uptime(5000), 0);
    assert_eq!(fw.leds(), [0, 0, 1]);
    assert!(!fw.scanning());
    assert_eq!(fw.freqs(), [5_740_000_000, 5_800_000_000, 5_860_000_000]);
    let t = run(&mut fw, 5000, 6000);
    assert_eq!(t.first().map(|t| t.timestamp_ms), Some(1000));
    Ok(())
}

#[test]
fn log_events_on_mode_change_when_enabled() -> R {
    let mut fw = Firmware::new(
        FirmwareConfig {
            emit_log_events: true,
            ..FirmwareConfig::default()
        },
        0,
    );
    let out = fw.handle_line(SCAN.as_bytes(), 10);
    assert!(matches!(out.first(), Some(Output::Ack(_))));
    let log = out.get(1).map(Output::to_wire).unwrap_or_default();
    let text = String::from_utf8(log)?;
    assert!(
        text.starts_with("{\"type\":\"log_event\",\"timestamp_ms\":10,\"level\":\"info\""),
        "{text}"
    );
    assert!(text.ends_with("\r\n"));
    assert!(matches!(DeviceLine::parse(text.trim_end())?, DeviceLine::LogEvent(_)));
    // No mode change → no log.
    assert_eq!(fw.handle_line(br#"{"id":"1","cmd":"GET_STATUS"}"#, 11).len(), 1);
    Ok(())
}

#[test]
fn journal_records_commands() -> R {
    let mut fw = fw();
    fw.feed(
        b"{\"id\":\"1\",\"cmd\":\"SET_VRX_FREQ\",\"args\":{\"vrx_id\":1,\"freq_hz\":5740000000}}\nhello\n",
        3,
    );
    let j = fw.drain_journal();
    assert_eq!(j.len(), 2);
    let c = j[0].command().ok_or("no command")?;
    assert_eq!(c.cmd.as_deref(), Some("SET_VRX_FREQ"));
    assert_eq!(c.args, Some(serde_json::json!({"vrx_id":1,"freq_hz":5740000000u64})));
    assert_eq!(c.err, None);
    assert_eq!(j[1].outcome, LineOutcome::NotAnObject);
    let s = fw.stats();
    assert_eq!((s.lines_received, s.acks, s.rx_errors), (2, 1, 1));
    assert_eq!(s.commands.get("SET_VRX_FREQ"), Some(&1));
    Ok(())
}
