//! Property tests of SigMF metadata parsing (antsdr-scan §2) through `parse_meta`, the body of
//! `read_meta`: recorder-shaped metadata parses back to what was written, any text or JSON is
//! accepted or refused with a message and never panics, capture times round-trip.

use ndefender_antsdr_scan::source::sigmf::{format_datetime, parse_datetime, parse_meta, DataType};
use ndefender_tests::prop::json_scalar;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Epoch ms from 1970 to the end of year 9999 (four-digit years).
const MAX_MS: u64 = 253_402_300_799_999;

#[derive(Debug, Clone)]
struct Cap {
    start: u64,
    freq: u64,
    ms: Option<u64>,
    plan: Option<String>,
    seq: Option<u64>,
    gain: Option<f64>,
}

fn capture() -> impl Strategy<Value = Cap> {
    (
        0u64..1 << 40,
        1u64..7_000_000_000,
        proptest::option::of(0u64..=MAX_MS),
        proptest::option::of("[a-z0-9_]{1,12}"),
        proptest::option::of(0u64..1 << 32),
        proptest::option::of((-200i32..800).prop_map(|g| f64::from(g) / 8.0)),
    )
        .prop_map(|(start, freq, ms, plan, seq, gain)| Cap {
            start,
            freq,
            ms,
            plan,
            seq,
            gain,
        })
}

fn meta_json(dt: &str, rate: f64, caps: &[Cap]) -> Value {
    let captures: Vec<Value> = caps
        .iter()
        .map(|c| {
            let mut m = serde_json::Map::new();
            m.insert("core:sample_start".into(), json!(c.start));
            m.insert("core:frequency".into(), json!(c.freq));
            if let Some(ms) = c.ms {
                m.insert("core:datetime".into(), json!(format_datetime(ms)));
            }
            if let Some(p) = &c.plan {
                m.insert("ndefender:plan".into(), json!(p));
            }
            if let Some(s) = c.seq {
                m.insert("ndefender:sweep_seq".into(), json!(s));
            }
            if let Some(g) = c.gain {
                m.insert("ndefender:gain_db".into(), json!(g));
            }
            Value::Object(m)
        })
        .collect();
    json!({
        "global": {"core:datatype": dt, "core:sample_rate": rate, "core:version": "1.0.0"},
        "captures": captures,
        "annotations": []
    })
}

/// JSON shaped like SigMF metadata, with every member possibly missing or of the wrong type.
fn sigmf_like() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        4 => json_scalar(),
        1 => prop::sample::select(vec![
            "cf32_le",
            "ci16_le",
            "cu8",
            "",
            "2023-11-14T22:13:20.123Z",
            "9999999999-99-99T99:99:99.999Z"
        ])
        .prop_map(Value::from),
        1 => ".{0,30}".prop_map(Value::from),
    ];
    let keys = prop::sample::select(vec![
        "global",
        "captures",
        "core:datatype",
        "core:sample_rate",
        "core:frequency",
        "core:sample_start",
        "core:datetime",
        "ndefender:plan",
        "ndefender:sweep_seq",
        "ndefender:gain_db",
    ]);
    scalar.prop_recursive(3, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

proptest! {
    #[test]
    fn recorder_metadata_parses_back(cf32 in any::<bool>(), rate in 1u32..100_000_000, caps in prop::collection::vec(capture(), 1..6)) {
        let (dt, want) = if cf32 { ("cf32_le", DataType::Cf32) } else { ("ci16_le", DataType::Ci16) };
        let text = serde_json::to_string_pretty(&meta_json(dt, f64::from(rate), &caps)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let m = parse_meta(&text).map_err(TestCaseError::fail)?;
        prop_assert_eq!(m.datatype, want);
        prop_assert_eq!(m.sample_rate, f64::from(rate));
        prop_assert_eq!(m.captures.len(), caps.len());
        for (got, c) in m.captures.iter().zip(&caps) {
            prop_assert_eq!(got.sample_start, c.start);
            prop_assert_eq!(got.frequency, c.freq);
            prop_assert_eq!(got.datetime_ms, c.ms);
            prop_assert_eq!(&got.plan, &c.plan);
            prop_assert_eq!(got.sweep_seq, c.seq);
            prop_assert_eq!(got.gain_db, c.gain);
        }
    }

    #[test]
    fn refusals_name_what_is_wrong(rate in prop_oneof![Just(0.0), Just(-1.0)], dt in "[a-z0-9_]{0,8}") {
        let caps = [Cap { start: 0, freq: 1, ms: None, plan: None, seq: None, gain: None }];
        prop_assume!(dt != "cf32_le" && dt != "ci16_le");
        let e = parse_meta(&meta_json(&dt, 1e6, &caps).to_string());
        prop_assert!(e.is_err_and(|e| e.contains("core:datatype")));
        let e = parse_meta(&meta_json("cf32_le", rate, &caps).to_string());
        prop_assert!(e.is_err_and(|e| e.contains("core:sample_rate")));
        let e = parse_meta(&meta_json("cf32_le", 1e6, &[]).to_string());
        prop_assert!(e.is_err_and(|e| e.contains("no captures")));
    }

    #[test]
    fn any_text_never_panics(text in ".{0,200}") {
        if let Err(e) = parse_meta(&text) {
            prop_assert!(!e.is_empty());
        }
    }

    #[test]
    fn any_sigmf_like_json_never_panics(v in sigmf_like()) {
        if let Ok(m) = parse_meta(&v.to_string()) {
            prop_assert!(m.sample_rate > 0.0 && !m.captures.is_empty());
        }
    }

    #[test]
    fn datetimes_round_trip(ms in 0u64..=MAX_MS) {
        let s = format_datetime(ms);
        prop_assert_eq!(s.len(), 24, "{}", s);
        prop_assert_eq!(parse_datetime(&s), Some(ms));
    }

    #[test]
    fn any_datetime_text_never_panics(s in "[0-9]{1,20}-[0-9]{1,20}-[0-9]{1,20}T[0-9]{1,20}:[0-9]{1,20}:[0-9]{1,20}(\\.[0-9]{0,5})?Z|.{0,30}") {
        let _ = parse_datetime(&s);
    }
}
