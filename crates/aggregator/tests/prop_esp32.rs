//! Property tests of the aggregator's ESP32 side: the payload translation of every route
//! (`esp32::translate`, aggregator §7.4) against the spec's ranges and the emulated firmware,
//! and the link's per-line classification (`esp32::line::classify`) feeding `core::esp32`.

use ndefender_aggregator::config::AggregatorConfig;
use ndefender_aggregator::core::{esp32 as panel, State};
use ndefender_aggregator::esp32::line::{classify, AckFields, DeviceInput};
use ndefender_aggregator::esp32::translate::{translate, BadField, FREQ_MAX, FREQ_MIN};
use ndefender_aggregator::esp32::Route;
use ndefender_contract::esp32::{CommandAckLine, Esp32ErrorCode, LedTelemetry, Telemetry, VrxTelemetry};
use ndefender_contract::schema::Schemas;
use ndefender_contract::time::ManualClock;
use ndefender_contract::TimestampField;
use ndefender_devkit::esp32::{Firmware, FirmwareConfig, Output, RfScene};
use ndefender_tests::prop::json_scalar;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::sync::Arc;

const ID: &str = "9b2e6f5e-3c0a-4f64-9d7e-0c9a1c3e5b11";

fn schemas() -> Result<&'static Schemas, TestCaseError> {
    Schemas::shared().map_err(TestCaseError::fail)
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// An integer in the form the spec allows: a JSON integer or a float with zero fraction.
fn int_json(v: i64, as_float: bool) -> Value {
    if as_float && v.unsigned_abs() < (1 << 52) {
        json!(v as f64)
    } else {
        json!(v)
    }
}

/// Writes the line to a freshly booted, silent panel and returns its ack code.
fn firmware_ack(line: &str) -> Result<(Firmware, Option<Esp32ErrorCode>), TestCaseError> {
    let cfg = FirmwareConfig {
        scene: RfScene::silent(),
        ..FirmwareConfig::default()
    };
    let mut fw = Firmware::new(cfg, 0);
    let out = fw.feed(line.as_bytes(), 1);
    let acks = Output::acks(&out);
    prop_assert_eq!(acks.len(), 1);
    prop_assert_eq!(&acks[0].id, &ID.as_bytes().to_vec());
    Ok((fw, acks[0].err))
}

proptest! {
    #[test]
    fn tunes_in_range_are_translated_and_accepted(vrx in 1i64..=3, freq in FREQ_MIN..=FREQ_MAX, fl in any::<bool>(), esp in any::<bool>()) {
        let route = if esp { Route::Esp32VrxTune } else { Route::VrxTune };
        let cmd = translate(route, &obj(json!({"vrx_id": int_json(vrx, fl), "freq_hz": int_json(freq, fl)})), None)
            .map_err(|b| TestCaseError::fail(b.0))?;
        prop_assert_eq!(&cmd.args, &vec![("vrx_id", vrx), ("freq_hz", freq)]);
        let (fw, err) = firmware_ack(&cmd.line(ID))?;
        prop_assert_eq!(err, None);
        prop_assert_eq!(fw.freqs()[usize::try_from(vrx - 1).unwrap_or(0)], freq);
    }

    #[test]
    fn tunes_in_mhz(vrx in 1i64..=3, mhz in 1u32..=6500) {
        let cmd = translate(Route::VrxTune, &obj(json!({"vrx_id": vrx, "freq_mhz": mhz})), None)
            .map_err(|b| TestCaseError::fail(b.0))?;
        prop_assert_eq!(cmd.arg("freq_hz"), Some(i64::from(mhz) * 1_000_000));
    }

    #[test]
    fn tunes_out_of_range_name_the_field(vrx in prop_oneof![-5i64..=0, 4i64..100], freq in prop_oneof![i64::MIN..FREQ_MIN, (FREQ_MAX + 1)..i64::MAX]) {
        let p = obj(json!({"vrx_id": vrx, "freq_hz": 5_800_000_000i64}));
        prop_assert_eq!(translate(Route::VrxTune, &p, None), Err(BadField("vrx_id")));
        let p = obj(json!({"vrx_id": 1, "freq_hz": freq}));
        prop_assert_eq!(translate(Route::VrxTune, &p, None), Err(BadField("freq_hz")));
        let p = obj(json!({"vrx_id": 1, "freq_hz": 5.8e9 + 0.5}));
        prop_assert_eq!(translate(Route::VrxTune, &p, None), Err(BadField("freq_hz")));
    }

    #[test]
    fn scans_follow_the_spec(
        dwell in proptest::option::of(0i64..6000),
        step in proptest::option::of(-10i64..10_000_000),
        start in proptest::option::of(0i64..7_000_000_000),
        stop in proptest::option::of(0i64..7_000_000_000),
    ) {
        let mut p = Map::new();
        for (k, v) in [("dwell_ms", dwell), ("step_hz", step), ("start_hz", start), ("stop_hz", stop)] {
            if let Some(v) = v {
                p.insert(k.into(), json!(v));
            }
        }
        let d = dwell.unwrap_or(200);
        let s = step.unwrap_or(2_000_000);
        let a = start.unwrap_or(5_645_000_000);
        let b = stop.unwrap_or(5_865_000_000);
        let expect = if !(10..=5000).contains(&d) {
            Err(BadField("dwell_ms"))
        } else if s < 1 {
            Err(BadField("step_hz"))
        } else if !(FREQ_MIN..=FREQ_MAX).contains(&a) {
            Err(BadField("start_hz"))
        } else if !(FREQ_MIN..=FREQ_MAX).contains(&b) || a >= b {
            Err(BadField("stop_hz"))
        } else {
            Ok(vec![("dwell_ms", d), ("step_hz", s), ("start_hz", a), ("stop_hz", b)])
        };
        let got = translate(Route::ScanStart, &p, None);
        prop_assert_eq!(got.clone().map(|c| c.args), expect);
        if let Ok(cmd) = got {
            let (fw, err) = firmware_ack(&cmd.line(ID))?;
            prop_assert_eq!(err, None);
            prop_assert!(fw.scanning());
        }
    }

    #[test]
    fn video_and_leds(ch in proptest::option::of(-1i64..5), sel in proptest::option::of(-1i64..5), leds in prop::collection::vec(proptest::option::of(0usize..4), 3), last in prop::array::uniform3(0i64..=1)) {
        let mut p = Map::new();
        if let Some(c) = ch { p.insert("ch".into(), json!(c)); }
        if let Some(s) = sel { p.insert("sel".into(), json!(s)); }
        let expect = match ch.or(sel) {
            None => Err(BadField("ch")),
            Some(c) if (1..=3).contains(&c) => Ok(vec![("ch", c)]),
            Some(_) => Err(if ch.is_some() { BadField("ch") } else { BadField("sel") }),
        };
        let got = translate(Route::VideoSelect, &p, None);
        prop_assert_eq!(got.clone().map(|c| c.args), expect);
        if let Ok(cmd) = got {
            let (fw, err) = firmware_ack(&cmd.line(ID))?;
            prop_assert_eq!(err, None);
            prop_assert_eq!(Some(i64::from(fw.video())), cmd.arg("ch"));
        }

        // LEDs: each given as a bool (0/1 = false/true), a 0/1 integer, or absent (2/3/none = absent).
        let names = [("red", "r"), ("yellow", "y"), ("green", "g")];
        let mut p = Map::new();
        let mut want = last;
        for (i, form) in leds.iter().enumerate() {
            match form {
                Some(0) => { p.insert(names[i].0.into(), json!(false)); want[i] = 0; }
                Some(1) => { p.insert(names[i].0.into(), json!(true)); want[i] = 1; }
                Some(2) => { p.insert(names[i].1.into(), json!(0)); want[i] = 0; }
                Some(_) => { p.insert(names[i].1.into(), json!(1)); want[i] = 1; }
                None => {}
            }
        }
        let prev = ndefender_contract::devices::LedState { r: last[0], y: last[1], g: last[2] };
        let got = translate(Route::Esp32Leds, &p, Some(prev));
        if p.is_empty() {
            prop_assert_eq!(got, Err(BadField("red")));
        } else {
            let cmd = got.map_err(|b| TestCaseError::fail(b.0))?;
            prop_assert_eq!(&cmd.args, &vec![("r", want[0]), ("y", want[1]), ("g", want[2])]);
            let (fw, err) = firmware_ack(&cmd.line(ID))?;
            prop_assert_eq!(err, None);
            prop_assert_eq!(fw.leds().map(i64::from).to_vec(), want.to_vec());
        }
    }

    #[test]
    fn any_payload_is_translated_or_refused_without_panic(p in payload()) {
        for route in Route::ALL {
            match translate(route, &p, None) {
                Ok(cmd) => {
                    prop_assert_eq!(cmd.cmd, route.firmware_cmd());
                    let line = cmd.line(ID);
                    prop_assert!(line.len() < 256 && line.ends_with('\n'));
                }
                Err(BadField(f)) => prop_assert!(!f.is_empty()),
            }
        }
    }

    #[test]
    fn telemetry_lines_update_the_panel_sections(up in any::<u32>(), rssi in prop::array::uniform3(0u16..=4095), video in 1u8..=3, led in prop::array::uniform3(0u8..=1), crlf in any::<bool>()) {
        let freqs = [5_740_000_000u64, 5_800_000_000, 5_860_000_000];
        let vrx = [0usize, 1, 2].map(|i| VrxTelemetry { id: i as u8 + 1, freq_hz: freqs[i], rssi_raw: rssi[i] });
        let t = Telemetry::new(up, vrx, video, LedTelemetry { r: led[0], y: led[1], g: led[2] }, 300_000);
        let mut wire = t.to_wire();
        if !crlf {
            wire.truncate(wire.len() - 2);
        }
        let (input, invalid_utf8) = classify(&wire);
        prop_assert!(!invalid_utf8);
        let DeviceInput::Telemetry(o) = input else {
            return Err(TestCaseError::fail("telemetry not classified as telemetry"));
        };
        let mut st = State::new(Arc::new(AggregatorConfig::default()), Arc::new(ManualClock::new(1_772_140_777_000)));
        panel::on_telemetry(&mut st, &o);
        let snap = serde_json::to_value(st.snapshot()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        schemas()?.validate("StatusSnapshot.json", &snap).map_err(TestCaseError::fail)?;
        prop_assert_eq!(st.snap.vrx.selected, Some(i64::from(video)));
        prop_assert_eq!(st.esp32_link.last_uptime, Some(u64::from(up)));
        for e in std::mem::take(&mut st.out) {
            let v: Value = serde_json::from_str(&e.to_json(None, TimestampField::TimestampMs)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            schemas()?.validate_envelope(&v).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn acks_are_read_back_field_for_field(ts in any::<u32>(), id in "[ -~]{0,63}", err in proptest::option::of(prop::sample::select(Esp32ErrorCode::DEVICE.to_vec())), cmd in "[A-Z_]{1,20}") {
        let cmd = if err == Some(Esp32ErrorCode::MissingCmd) { None } else { Some(cmd) };
        let line = CommandAckLine::new(ts, id.clone(), err, cmd.clone());
        let (input, _) = classify(&line.to_wire());
        let DeviceInput::CommandAck(o) = input else {
            return Err(TestCaseError::fail("ack not classified as an ack"));
        };
        let f = AckFields::from_obj(&o);
        prop_assert_eq!(f, AckFields { id, ok: err.is_none(), err: err.map(|e| e.as_str().to_owned()), cmd });
    }

    #[test]
    fn any_bytes_are_classified_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let (input, invalid_utf8) = classify(&bytes);
        prop_assert_eq!(invalid_utf8, std::str::from_utf8(&bytes).is_err());
        if let DeviceInput::Telemetry(o) | DeviceInput::CommandAck(o) | DeviceInput::LogEvent(o) = &input {
            prop_assert!(o.contains_key("type"));
        }
    }
}

fn payload() -> impl Strategy<Value = Map<String, Value>> {
    let value = prop_oneof![
        4 => json_scalar(),
        1 => (-10i64..10).prop_map(Value::from),
        1 => prop::sample::select(vec![1_000_000i64, 5_800_000_000, 6_500_000_000, 6_500_000_001]).prop_map(Value::from),
        1 => "[0-9a-z]{0,4}".prop_map(Value::from),
    ];
    let keys = prop::sample::select(vec![
        "vrx_id", "freq_hz", "freq_mhz", "dwell_ms", "step_hz", "start_hz", "stop_hz", "ch", "sel", "red", "yellow",
        "green", "r", "y", "g", "x",
    ]);
    prop::collection::btree_map(keys, value, 0..6).prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}
