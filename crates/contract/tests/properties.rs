//! Property tests over the tolerant input side and the envelope writer.

use ndefender_contract::time::normalize_time_value;
use ndefender_contract::{Envelope, Source, TimestampField};
use proptest::prelude::*;
use serde_json::{json, Value};

proptest! {
    #[test]
    fn time_normalisation_never_panics_and_is_ms(x in any::<f64>()) {
        if let Some(ms) = normalize_time_value(&json!(x)) {
            prop_assert!(x.is_finite() && x > 0.0);
            let expect = if x < 1e11 { x * 1000.0 } else { x };
            prop_assert_eq!(ms, expect.trunc() as u64);
        }
    }

    #[test]
    fn time_strings_never_panic(s in ".{0,40}") {
        let _ = normalize_time_value(&Value::String(s));
    }

    #[test]
    fn envelope_wire_form_parses_back(kind in "[A-Z_]{1,24}", ts in 0u64..(1u64 << 53), msg in ".{0,64}", seq in proptest::option::of(0u64..(1u64 << 53))) {
        let env = Envelope::new(kind.clone(), ts, Source::Aggregator, &json!({"message": msg}))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let text = env.to_json(seq, TimestampField::TimestampMs);
        let v: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&v["type"], &json!(kind));
        prop_assert_eq!(&v["timestamp_ms"], &json!(ts));
        prop_assert_eq!(&v["data"]["message"], &json!(msg));
        prop_assert_eq!(v.get("seq").and_then(Value::as_u64), seq);
        let keys: Vec<&String> = v.as_object().map(|m| m.keys().collect()).unwrap_or_default();
        let expect: &[&str] = if seq.is_some() { &["type","timestamp_ms","source","data","seq"] } else { &["type","timestamp_ms","source","data"] };
        prop_assert_eq!(keys, expect.iter().collect::<Vec<_>>());
    }
}
