//! The common front of both feeds: one JSONL line → (type, time, data) or a counted rejection.

use ndefender_contract::time::pick_time;
use serde_json::{Map, Value};

/// Why a line was rejected before any domain logic (PROTOCOL.md §14.8; aggregator §4.1, §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Not JSON, or not a JSON object.
    Malformed,
    /// Missing/non-string type, non-object data, missing required members.
    Invalid,
}

/// What a feed line did, for counters and tests (both feeds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Emitted(String),
    Malformed,
    Invalid,
    Stale,
    /// A RemoteID line naming a test marker: dropped.
    TestMarker,
    /// A LOST for an id we never saw: nothing emitted.
    UnknownLost,
}

impl Outcome {
    /// The feed counter the line is counted under, and the event type an accepted line emitted.
    pub fn counted(self) -> (&'static str, Option<String>) {
        match self {
            Outcome::Emitted(k) => ("accepted", Some(k)),
            Outcome::Malformed => ("malformed", None),
            Outcome::Invalid => ("invalid", None),
            Outcome::Stale => ("stale", None),
            Outcome::TestMarker => ("test_marker", None),
            Outcome::UnknownLost => ("unknown_lost", None),
        }
    }
}

impl From<Reject> for Outcome {
    fn from(r: Reject) -> Self {
        match r {
            Reject::Malformed => Outcome::Malformed,
            Reject::Invalid => Outcome::Invalid,
        }
    }
}

/// A parsed feed line.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedLine {
    /// ASCII upper-cased `type`.
    pub kind: String,
    /// Normalised line time, or receipt time when no candidate is valid.
    pub time_ms: u64,
    /// Whether `time_ms` came from the line (false = receipt).
    pub has_time: bool,
    pub data: Map<String, Value>,
    /// The whole top-level object (legacy lines keep members there, e.g. `id`).
    pub top: Map<String, Value>,
}

pub fn parse(line: &str, receipt_ms: u64) -> Result<FeedLine, Reject> {
    let v: Value = serde_json::from_str(line).map_err(|_| Reject::Malformed)?;
    let Value::Object(mut top) = v else {
        return Err(Reject::Malformed);
    };
    let kind = match top.get("type") {
        Some(Value::String(s)) if valid_kind(s.trim()) => s.trim().to_ascii_uppercase(),
        _ => return Err(Reject::Invalid),
    };
    let data = match top.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Reject::Invalid),
    };
    let picked = pick_time(&top);
    Ok(FeedLine {
        kind,
        time_ms: picked.unwrap_or(receipt_ms),
        has_time: picked.is_some(),
        data,
        top,
    })
}

/// A feed type is 1–64 characters of `[A-Za-z0-9_]` (upper-cased after this check). The type
/// becomes the envelope `type` and a metric label (`ndefender_ws_events_published_total{type=..}`),
/// so anything else — quotes, newlines, braces, unbounded length — is refused here, before it can
/// break the Prometheus text or a subscriber's pattern (wire §7: patterns are `[A-Z0-9_*]{1,64}`).
pub fn valid_kind(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The data a line of a type the feed does not interpret is forwarded with, "as received"
/// minus nulls (PROTOCOL.md §4.5), or `None` for a catalogue type (PROTOCOL.md §8): each has a fixed shape
/// and another producer, so forwarding one would publish an envelope that breaks its schema
/// (PROTOCOL.md §4) or impersonates that producer. `RF_SCAN_STATS` is a feed type itself.
pub fn passthrough_data(l: &FeedLine) -> Option<Value> {
    let k = l.kind.as_str();
    if k != ndefender_contract::events::kind::RF_SCAN_STATS && ndefender_contract::events::kind::ALL.contains(&k) {
        return None;
    }
    let mut v = Value::Object(l.data.clone());
    ndefender_contract::passthrough::sanitize_passthrough(&mut v);
    Some(v)
}

/// A non-empty string member.
pub fn str_member<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A finite number member (integers included).
pub fn num_member(m: &Map<String, Value>, k: &str) -> Option<f64> {
    m.get(k).and_then(Value::as_f64).filter(|x| x.is_finite())
}

/// A non-negative integer member: JSON integers, or floats with zero fraction.
pub fn uint_member(m: &Map<String, Value>, k: &str) -> Option<u64> {
    match m.get(k)? {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e15)
                .map(|f| f as u64)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        assert_eq!(parse("nope", 1), Err(Reject::Malformed));
        assert_eq!(parse("[1]", 1), Err(Reject::Malformed));
        assert_eq!(parse(r#"{"data":{}}"#, 1), Err(Reject::Invalid));
        assert_eq!(parse(r#"{"type":"x","data":3}"#, 1), Err(Reject::Invalid));
        let l = parse(r#"{"type":"contact_new","timestamp":1772140777}"#, 5);
        assert_eq!(l.as_ref().map(|l| l.kind.as_str()), Ok("CONTACT_NEW"));
        assert_eq!(l.as_ref().map(|l| l.time_ms), Ok(1772140777000));
        let l = parse(r#"{"type":"PEAK","t":1772140777.1}"#, 5);
        assert_eq!(l.map(|l| (l.time_ms, l.has_time)), Ok((5, false)));
    }

    #[test]
    fn types_outside_the_label_alphabet_are_invalid() {
        let long = "A".repeat(65);
        for t in ["RF\"} 1\nfake_metric{x=\"", "PEAK-2", "a b", "É", "x{y}", long.as_str()] {
            let line = serde_json::json!({"type": t, "data": {}}).to_string();
            assert_eq!(parse(&line, 1), Err(Reject::Invalid), "{t:?}");
        }
        let max = "Z_9".repeat(21) + "A";
        let line = serde_json::json!({"type": max, "data": {}}).to_string();
        assert_eq!(parse(&line, 1).map(|l| l.kind.len()), Ok(64));
        assert_eq!(
            parse(r#"{"type":" rf_scan_stats "}"#, 1).map(|l| l.kind),
            Ok("RF_SCAN_STATS".to_owned())
        );
    }
}
