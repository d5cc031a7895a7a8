//! One framed serial line from the panel, classified the way the link treats it
//! (PROTOCOL.md §15.4, 15.5). Pure, so the fuzz targets and property tests drive exactly
//! the code the link runs on every line.

use serde_json::{Map, Value};
use std::borrow::Cow;

/// What a framed device line is.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceInput {
    /// Nothing left after removing `\r` and trimming: skipped, not counted.
    Blank,
    /// Not a JSON object (`invalid`).
    NotJson,
    /// `"proto":1`: legacy panel firmware (`unsupported_firmware_protocol`).
    Legacy,
    Telemetry(Map<String, Value>),
    CommandAck(Map<String, Value>),
    LogEvent(Map<String, Value>),
    /// A JSON object of another type, or without one (`other_types`).
    OtherType,
}

/// Classifies the content of one framed line (its `\n` already removed). The second
/// value is true when the bytes were not UTF-8 (replaced lossily and counted).
pub fn classify(data: &[u8]) -> (DeviceInput, bool) {
    let text = String::from_utf8_lossy(data);
    let invalid_utf8 = matches!(text, Cow::Owned(_));
    let line = text.replace('\r', "");
    let line = line.trim();
    if line.is_empty() {
        return (DeviceInput::Blank, invalid_utf8);
    }
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(line) else {
        return (DeviceInput::NotJson, invalid_utf8);
    };
    if obj.get("proto").and_then(Value::as_i64) == Some(1) {
        return (DeviceInput::Legacy, invalid_utf8);
    }
    let input = match obj.get("type").and_then(Value::as_str) {
        Some("telemetry") => DeviceInput::Telemetry(obj),
        Some("command_ack") => DeviceInput::CommandAck(obj),
        Some("log_event") => DeviceInput::LogEvent(obj),
        _ => DeviceInput::OtherType,
    };
    (input, invalid_utf8)
}

/// The members of a `command_ack` the link correlates on; wrong types read as absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckFields {
    /// `""` when missing.
    pub id: String,
    /// False when missing.
    pub ok: bool,
    pub err: Option<String>,
    /// `data.cmd`.
    pub cmd: Option<String>,
}

impl AckFields {
    pub fn from_obj(obj: &Map<String, Value>) -> Self {
        Self {
            id: obj.get("id").and_then(Value::as_str).unwrap_or("").to_owned(),
            ok: obj.get("ok").and_then(Value::as_bool).unwrap_or(false),
            err: obj.get("err").and_then(Value::as_str).map(str::to_owned),
            cmd: obj
                .get("data")
                .and_then(|d| d.get("cmd"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify(b"  \r "), (DeviceInput::Blank, false));
        assert_eq!(classify(b"boot: ok"), (DeviceInput::NotJson, false));
        assert_eq!(classify(b"[1]"), (DeviceInput::NotJson, false));
        assert_eq!(classify(b"{\"proto\":1}\r"), (DeviceInput::Legacy, false));
        assert_eq!(classify(b"{\"type\":\"x\"}"), (DeviceInput::OtherType, false));
        assert_eq!(classify(b"{\"a\":\"\xff\"}"), (DeviceInput::OtherType, true));
        assert!(matches!(
            classify(b"{\"type\":\"telemetry\",\"timestamp_ms\":5}\r"),
            (DeviceInput::Telemetry(_), false)
        ));
    }
}
