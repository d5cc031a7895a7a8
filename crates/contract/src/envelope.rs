//! The one envelope every WebSocket frame of every daemon carries (PROTOCOL.md §2).
//!
//! `data` is held already serialised ([`RawValue`]) so that a producer pays for
//! serialisation once and the hub can splice the same bytes into the frame for
//! every client.

use serde::Serialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt::Write as _;

/// The `source` member of an envelope (PROTOCOL.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Aggregator,
    System,
    Esp32,
    Remoteid,
    Antsdr,
}

impl Source {
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Aggregator => "aggregator",
            Source::System => "system",
            Source::Esp32 => "esp32",
            Source::Remoteid => "remoteid",
            Source::Antsdr => "antsdr",
        }
    }
}

/// Name of the envelope's time key. Only the AntSDR scanner's local WS may use
/// `timestamp` (PROTOCOL.md §2, seed catalog); everything else uses `timestamp_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum TimestampField {
    #[default]
    #[serde(rename = "timestamp_ms")]
    TimestampMs,
    #[serde(rename = "timestamp")]
    Timestamp,
}

impl TimestampField {
    pub const fn key(self) -> &'static str {
        match self {
            TimestampField::TimestampMs => "timestamp_ms",
            TimestampField::Timestamp => "timestamp",
        }
    }
}

/// Error building an envelope: the payload failed to serialise or was not a JSON object.
#[derive(Debug)]
pub struct EnvelopeError(String);

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "envelope: {}", self.0)
    }
}
impl std::error::Error for EnvelopeError {}

/// `{"type","timestamp_ms","source","data"}` with `data` pre-serialised.
#[derive(Debug, Clone)]
pub struct Envelope {
    kind: Cow<'static, str>,
    timestamp_ms: u64,
    source: Source,
    data: Box<RawValue>,
}

impl Envelope {
    /// Builds an envelope from any serialisable payload. The payload must
    /// serialise to a JSON object (PROTOCOL.md §2: `data` is always an object).
    pub fn new<T: Serialize + ?Sized>(
        kind: impl Into<Cow<'static, str>>,
        timestamp_ms: u64,
        source: Source,
        data: &T,
    ) -> Result<Self, EnvelopeError> {
        let raw = serde_json::value::to_raw_value(data).map_err(|e| EnvelopeError(e.to_string()))?;
        Self::from_raw(kind, timestamp_ms, source, raw)
    }

    /// Builds an envelope from an already serialised object.
    pub fn from_raw(
        kind: impl Into<Cow<'static, str>>,
        timestamp_ms: u64,
        source: Source,
        data: Box<RawValue>,
    ) -> Result<Self, EnvelopeError> {
        if !data.get().trim_start().starts_with('{') {
            return Err(EnvelopeError("data must be a JSON object".into()));
        }
        Ok(Self {
            kind: kind.into(),
            timestamp_ms,
            source,
            data,
        })
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }
    /// The type, without allocating for the catalogue's static names.
    pub fn kind_cow(&self) -> Cow<'static, str> {
        self.kind.clone()
    }
    pub fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }
    pub fn source(&self) -> Source {
        self.source
    }
    /// The serialised `data` object.
    pub fn data(&self) -> &RawValue {
        &self.data
    }

    /// Compact wire form with keys in the order `type`, time, `source`, `data`, then `seq`
    /// when given (PROTOCOL.md §2, §7.6).
    pub fn to_json(&self, seq: Option<u64>, time_key: TimestampField) -> String {
        let data = self.data.get();
        let mut out = String::with_capacity(data.len() + self.kind.len() + 80);
        out.push_str("{\"type\":");
        push_json_str(&mut out, &self.kind);
        out.push_str(",\"");
        out.push_str(time_key.key());
        let _ = write!(out, "\":{},\"source\":\"", self.timestamp_ms);
        out.push_str(self.source.as_str());
        out.push_str("\",\"data\":");
        out.push_str(data);
        if let Some(seq) = seq {
            let _ = write!(out, ",\"seq\":{seq}");
        }
        out.push('}');
        out
    }
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json's escaping keeps non-ASCII as-is, as PROTOCOL.md §2 requires.
    match serde_json::to_string(s) {
        Ok(q) => out.push_str(&q),
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_seq() -> Result<(), Box<dyn std::error::Error>> {
        let e = Envelope::new("HEARTBEAT", 5, Source::Aggregator, &json!({"timestamp_ms": 5}))?;
        assert_eq!(
            e.to_json(None, TimestampField::TimestampMs),
            r#"{"type":"HEARTBEAT","timestamp_ms":5,"source":"aggregator","data":{"timestamp_ms":5}}"#
        );
        assert_eq!(
            e.to_json(Some(9), TimestampField::Timestamp),
            r#"{"type":"HEARTBEAT","timestamp":5,"source":"aggregator","data":{"timestamp_ms":5},"seq":9}"#
        );
        Ok(())
    }

    #[test]
    fn non_object_data_rejected() {
        assert!(Envelope::new("X", 1, Source::System, &json!([1])).is_err());
        assert!(Envelope::new("X", 1, Source::System, &json!("s")).is_err());
    }

    #[test]
    fn non_ascii_kept() -> Result<(), Box<dyn std::error::Error>> {
        let e = Envelope::new("LOG_EVENT", 1, Source::System, &json!({"message": "défaut"}))?;
        assert!(e.to_json(None, TimestampField::TimestampMs).contains("défaut"));
        Ok(())
    }
}
