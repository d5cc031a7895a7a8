//! Serde helpers that keep output schema-valid: a non-finite float is omitted,
//! never written as `null` (PROTOCOL.md §4.4).

/// `skip_serializing_if` for optional floats: skips `None`, NaN and ±inf.
pub fn skip_f64(v: &Option<f64>) -> bool {
    !matches!(v, Some(x) if x.is_finite())
}

/// Keeps a float only if it is finite and inside `[lo, hi]`.
pub fn in_range(v: Option<f64>, lo: f64, hi: f64) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x >= lo && *x <= hi)
}

/// Finite or zero, for required float members.
pub fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}
