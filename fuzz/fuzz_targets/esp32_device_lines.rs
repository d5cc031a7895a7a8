//! Device → host: arbitrary bytes on the ESP32 serial port, read the way the aggregator's link
//! reads them (LineFramer → `esp32::line::classify` → the `core::esp32` state functions), and
//! the contract's typed `DeviceLine::parse` on the same lines.
//!
//! Oracles: no panic; framing is independent of how the bytes were cut into reads; every
//! emitted envelope and the final snapshot are schema-valid; `classify` and
//! `DeviceLine::parse` agree on the line type; typed telemetry and acks re-encode to
//! themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndefender_aggregator::config::AggregatorConfig;
use ndefender_aggregator::core::{esp32 as panel, State};
use ndefender_aggregator::esp32::line::{classify, AckFields, DeviceInput};
use ndefender_contract::esp32::DeviceLine;
use ndefender_contract::time::ManualClock;
use ndefender_fuzz::{assert_envelopes_valid, assert_valid_body, T0_MS};
use ndefender_tail::{Frame, LineFramer};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, PartialEq)]
enum Owned {
    Line(Vec<u8>),
    Oversize,
}

fn frames(max: usize, data: &[u8], chunk: usize) -> Vec<Owned> {
    let mut framer = LineFramer::new(max);
    let mut out = Vec::new();
    for c in data.chunks(chunk.max(1)) {
        framer.feed(c, |f| {
            out.push(match f {
                Frame::Line { data, .. } => Owned::Line(data.to_vec()),
                Frame::Oversize { .. } => Owned::Oversize,
            })
        });
    }
    out
}

fn kind_of(input: &DeviceInput) -> Option<&'static str> {
    match input {
        DeviceInput::Telemetry(_) => Some("telemetry"),
        DeviceInput::CommandAck(_) => Some("command_ack"),
        DeviceInput::LogEvent(_) => Some("log_event"),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let cfg = AggregatorConfig::default();
    // Small limits too, so oversize lines are reached with short inputs.
    let max = if cut & 0x80 != 0 { cfg.esp32.max_line_bytes } else { 16 + usize::from(cut & 0x3f) };
    let lines = frames(max, stream, usize::from(cut & 0x0f) + 1);
    assert_eq!(lines, frames(max, stream, stream.len()), "framing depends on read sizes");

    let clock = Arc::new(ManualClock::new(T0_MS));
    let mut st = State::new(Arc::new(cfg), clock.clone());
    for l in &lines {
        let Owned::Line(raw) = l else { continue };
        clock.advance(Duration::from_millis(400));
        let (input, _invalid_utf8) = classify(raw);

        // The contract's typed parser sees the same cleaned text.
        let text = String::from_utf8_lossy(raw).replace('\r', "");
        let typed = DeviceLine::parse(text.trim());
        match &typed {
            Ok(DeviceLine::Telemetry(t)) => {
                assert_eq!(kind_of(&input), Some("telemetry"));
                let wire = t.to_wire();
                let back = DeviceLine::parse(String::from_utf8_lossy(&wire).trim_end());
                assert_eq!(back.as_ref(), Ok(&DeviceLine::Telemetry(t.clone())), "telemetry re-encode");
            }
            Ok(DeviceLine::CommandAck(a)) => {
                assert_eq!(kind_of(&input), Some("command_ack"));
                let json = serde_json::to_string(a).unwrap_or_default();
                assert_eq!(DeviceLine::parse(&json), Ok(DeviceLine::CommandAck(a.clone())), "ack re-encode");
            }
            Ok(DeviceLine::LogEvent(_)) => assert_eq!(kind_of(&input), Some("log_event")),
            Err(_) => {}
        }
        if let Some(k) = kind_of(&input) {
            // A known type either parses typed or is rejected typed; never another type.
            let typed_kind = typed.as_ref().ok().map(|t| match t {
                DeviceLine::Telemetry(_) => "telemetry",
                DeviceLine::CommandAck(_) => "command_ack",
                DeviceLine::LogEvent(_) => "log_event",
            });
            assert!(typed_kind.is_none() || typed_kind == Some(k));
        }

        // What the link does with it.
        match input {
            DeviceInput::Legacy => panel::on_legacy_protocol(&mut st),
            DeviceInput::Telemetry(obj) => panel::on_telemetry(&mut st, &obj),
            DeviceInput::LogEvent(obj) => panel::on_log_event(&mut st, &obj),
            DeviceInput::CommandAck(obj) => {
                let a = AckFields::from_obj(&obj);
                panel::emit_ack(&mut st, &a.id, a.ok, a.err.as_deref(), a.cmd.as_deref());
            }
            DeviceInput::Blank | DeviceInput::NotJson | DeviceInput::OtherType => {}
        }
        assert_envelopes_valid(&std::mem::take(&mut st.out));
    }
    let snap = serde_json::to_value(st.snapshot()).unwrap_or_default();
    assert_valid_body("StatusSnapshot.json", &snap);
});
