//! Property-test inputs several crates share.

use proptest::prelude::*;
use serde_json::Value;

/// Any JSON scalar but a string: null, a boolean, any i64, any finite f64, with equal
/// weight. Callers that mix in their own domain values give this four times the weight
/// of one of theirs (`prop_oneof![4 => json_scalar(), ..]`), so each arm stays equally likely.
pub fn json_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
    ]
}
