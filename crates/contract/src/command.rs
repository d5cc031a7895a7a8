//! Command requests and results (PROTOCOL.md §5) and the health bodies.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A parsed command body `{"payload":{…},"confirm":false}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandRequest {
    pub payload: Map<String, Value>,
    pub confirm: bool,
}

/// Why a command body was refused (both are 400s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandBodyError {
    /// Not JSON → `invalid_json`.
    InvalidJson,
    /// Not an object, `payload` not an object or `confirm` not a bool → `invalid_payload`.
    InvalidPayload,
}

impl CommandBodyError {
    pub const fn code(self) -> &'static str {
        match self {
            CommandBodyError::InvalidJson => "invalid_json",
            CommandBodyError::InvalidPayload => "invalid_payload",
        }
    }
}

impl CommandRequest {
    /// Parses a request body. Empty (or whitespace) means `{"payload":{},"confirm":false}`;
    /// unknown top-level members are ignored; the Content-Type is not consulted.
    pub fn parse(body: &[u8]) -> Result<Self, CommandBodyError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let v: Value = serde_json::from_slice(body).map_err(|_| CommandBodyError::InvalidJson)?;
        let Value::Object(mut top) = v else {
            return Err(CommandBodyError::InvalidPayload);
        };
        let payload = match top.remove("payload") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(CommandBodyError::InvalidPayload),
        };
        let confirm = match top.remove("confirm") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(_) => return Err(CommandBodyError::InvalidPayload),
        };
        Ok(Self { payload, confirm })
    }

    /// Serialises back to the wire form (used when relaying to an upstream).
    pub fn to_body(&self) -> Value {
        let mut m = Map::new();
        m.insert("payload".into(), Value::Object(self.payload.clone()));
        m.insert("confirm".into(), Value::Bool(self.confirm));
        Value::Object(m)
    }
}

/// HTTP 200 body of a successful command. `accepted` is always true and
/// `detail` null (a failure is always an HTTP error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandResult {
    pub command: String,
    pub command_id: String,
    pub accepted: bool,
    pub detail: Option<String>,
    pub timestamp_ms: u64,
}

impl CommandResult {
    pub fn accepted(command: impl Into<String>, command_id: impl Into<String>, timestamp_ms: u64) -> Self {
        Self {
            command: command.into(),
            command_id: command_id.into(),
            accepted: true,
            detail: None,
            timestamp_ms,
        }
    }
}

/// Aggregator `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregatorHealth {
    pub status: String,
    pub timestamp_ms: u64,
    pub version: String,
    pub uptime_s: u64,
    pub inputs: BTreeMap<String, String>,
}

/// System controller `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerHealth {
    pub ok: bool,
    pub timestamp_ms: u64,
    pub version: String,
    pub probes: BTreeMap<String, String>,
}

/// `GET /contacts` and `/remote_id/contacts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactList {
    pub timestamp_ms: u64,
    pub contacts: Vec<crate::contact::Contact>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_bodies() {
        assert_eq!(CommandRequest::parse(b""), Ok(CommandRequest::default()));
        assert_eq!(CommandRequest::parse(b"  \n"), Ok(CommandRequest::default()));
        let r = CommandRequest::parse(br#"{"payload":{"a":1},"confirm":true,"x":2}"#);
        assert!(matches!(r, Ok(CommandRequest { confirm: true, .. })));
        assert_eq!(CommandRequest::parse(b"{nope"), Err(CommandBodyError::InvalidJson));
        assert_eq!(CommandRequest::parse(b"[1]"), Err(CommandBodyError::InvalidPayload));
        assert_eq!(
            CommandRequest::parse(br#"{"payload":3}"#),
            Err(CommandBodyError::InvalidPayload)
        );
        assert_eq!(
            CommandRequest::parse(br#"{"confirm":"true"}"#),
            Err(CommandBodyError::InvalidPayload)
        );
    }
}
