//! Oracles shared by the fuzz targets. A broken invariant aborts through `assert!`, which
//! libFuzzer records as a crash with its input.

use ndefender_contract::schema::Schemas;
use ndefender_contract::{Envelope, TimestampField};
use serde_json::Value;

/// Epoch ms the aggregator targets run at (the spec examples' era, so their lines are fresh).
pub const T0_MS: u64 = 1_772_140_777_000;

/// The contract schemas, loaded once per process.
pub fn schemas() -> &'static Schemas {
    Schemas::shared_or_abort()
}

/// Every envelope a daemon emitted must be schema-valid (PROTOCOL.md §4) however bad its input was.
pub fn assert_envelopes_valid(out: &[Envelope]) {
    for e in out {
        let text = e.to_json(None, TimestampField::TimestampMs);
        let v: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(err) => {
                eprintln!("envelope is not JSON ({err}): {text}");
                std::process::abort()
            }
        };
        if let Err(err) = schemas().validate_envelope(&v) {
            eprintln!("invalid envelope: {err}");
            std::process::abort()
        }
    }
}

/// A schema-valid document for `target`, or abort.
pub fn assert_valid(target: &str, doc: &Value) {
    if let Err(err) = schemas().validate(target, doc) {
        eprintln!("invalid {target}: {err}");
        std::process::abort()
    }
}

/// A schema-valid REST body (no nulls, no empty objects either, PROTOCOL.md §4.1–4.2), or abort.
pub fn assert_valid_body(target: &str, doc: &Value) {
    assert_valid(target, doc);
    if let Err(err) = ndefender_contract::schema::no_nulls_or_empty_objects(doc) {
        eprintln!("{target}: {err} in {doc}");
        std::process::abort()
    }
}

/// JSON equality where floats may differ in the last place (serde_json's default float
/// parser is not correctly rounded, so text → f64 → text → f64 can move one ulp).
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x.is_f64() || y.is_f64() {
                match (x.as_f64(), y.as_f64()) {
                    (Some(p), Some(q)) => p == q || (p - q).abs() <= 4.0 * f64::EPSILON * p.abs().max(q.abs()),
                    _ => false,
                }
            } else {
                x == y
            }
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((kp, p), (kq, q))| kp == kq && same_json(p, q))
        }
        _ => a == b,
    }
}
