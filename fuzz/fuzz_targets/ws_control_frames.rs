//! WebSocket client → server text frames (PROTOCOL.md §7.5): `ndefender_hub::parse_control` and
//! `apply_control`, the two calls the hub's reader makes per text frame, on one subscription
//! (one frame per input line).
//!
//! Oracles: no panic; ignored frames change nothing and get no reply; every other frame gets
//! exactly the reply its action calls for, as a parseable envelope; an ERROR leaves the
//! subscription unchanged; the active set only ever holds valid, distinct patterns, at most
//! `max_patterns` of them after a subscribe; a PONG echoes the ping id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndefender_contract::{Source, TimestampField};
use ndefender_hub::{apply_control, parse_control, ControlFrame, Subscription};
use serde_json::Value;

const MAX_PATTERNS: usize = 100;
const KINDS: [&str; 6] = ["CONTACT_NEW", "RF_CONTACT_UPDATE", "SYSTEM_UPDATE", "", "A", "LOG_EVENT"];

fn valid_pattern(p: &str) -> bool {
    (1..=64).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'*')
}

fuzz_target!(|data: &[u8]| {
    // The transport only hands over text frames that are UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut sub = Subscription::default();
    for frame_text in text.split('\n') {
        let frame = parse_control(frame_text);
        let before = sub.active().to_vec();
        let reply = apply_control(&frame, &mut sub, MAX_PATTERNS, Source::Aggregator);
        let expect = match &frame {
            ControlFrame::NotJson | ControlFrame::UnknownAction => {
                assert!(reply.is_none());
                assert_eq!(sub.active(), before.as_slice());
                continue;
            }
            ControlFrame::Subscribe(_) => "SUBSCRIBED",
            ControlFrame::Unsubscribe(_) => "UNSUBSCRIBED",
            ControlFrame::Ping(_) => "PONG",
        };
        let Some(env) = reply else {
            panic!("no reply to {frame:?}");
        };
        let v: Value = serde_json::from_str(&env.to_json(None, TimestampField::TimestampMs)).unwrap_or_default();
        let kind = env.kind();
        assert!(kind == expect || (kind == "ERROR" && expect != "PONG"), "{kind} for {frame:?}");
        if kind == "ERROR" {
            assert_eq!(sub.active(), before.as_slice(), "a refused change altered the subscription");
            let code = v["data"]["code"].as_str().unwrap_or_default();
            assert!(code == "invalid_pattern" || code == "too_many_patterns", "{code}");
        } else if let ControlFrame::Ping(id) = &frame {
            assert_eq!(v["data"].get("id").and_then(Value::as_str), id.as_deref());
        } else {
            let active: Vec<&str> = v["data"]["active"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            assert_eq!(active, sub.active());
            if expect == "SUBSCRIBED" {
                assert!(sub.active().len() <= MAX_PATTERNS);
            }
        }
        let active = sub.active();
        assert!(active.iter().all(|p| p == "*" || valid_pattern(p)));
        assert!(active.iter().enumerate().all(|(i, p)| !active[..i].contains(p)), "duplicate pattern");
        for k in KINDS {
            let _ = sub.matches(k);
        }
        if active.iter().any(|p| p == "*") {
            assert!(KINDS.iter().all(|k| sub.matches(k)));
        }
    }
});
