//! Pass-through data (PROTOCOL.md §4.5): event types without a schema keep their members,
//! except that null members are removed at every depth and a member named
//! `timestamp` becomes `timestamp_ms` with its normalised value.

use crate::time::normalize_time_value;
use serde_json::{Map, Value};

/// Cleans a pass-through object in place (recursively).
pub fn sanitize_passthrough(v: &mut Value) {
    match v {
        Value::Object(m) => sanitize_map(m),
        Value::Array(a) => {
            a.retain(|x| !x.is_null());
            a.iter_mut().for_each(sanitize_passthrough);
        }
        _ => {}
    }
}

fn sanitize_map(m: &mut Map<String, Value>) {
    m.retain(|_, v| !v.is_null());
    if let Some(ts) = m.remove("timestamp") {
        if !m.contains_key("timestamp_ms") {
            if let Some(ms) = normalize_time_value(&ts) {
                m.insert("timestamp_ms".to_owned(), Value::from(ms));
            }
        }
    }
    m.values_mut().for_each(sanitize_passthrough);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_nulls_and_renames_timestamp() {
        let mut v = json!({"a": null, "timestamp": 1772140777, "b": {"c": null, "d": [1, null, {"timestamp": "x"}]}});
        sanitize_passthrough(&mut v);
        assert_eq!(v, json!({"timestamp_ms": 1772140777000u64, "b": {"d": [1, {}]}}));
    }
}
