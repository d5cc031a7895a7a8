//! Event type names of all three daemons and the payloads that have no model schema of their own.
//!
//! Payloads that are a model (SystemStats, UPS_Telemetry, …) live in their modules;
//! the table in PROTOCOL.md §8 maps each type to its payload.

use crate::enums::{LogLevel, RemoteIdHealth, RemoteIdMode};
use ndefender_contract_macros::finite_floats;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use serde_with::skip_serializing_none;

/// Every event type name of the catalogue (PROTOCOL.md §8).
pub mod kind {
    pub const SYSTEM_UPDATE: &str = "SYSTEM_UPDATE";
    pub const HEARTBEAT: &str = "HEARTBEAT";
    pub const COMMAND_ACK: &str = "COMMAND_ACK";
    pub const ESP32_TELEMETRY: &str = "ESP32_TELEMETRY";
    pub const LOG_EVENT: &str = "LOG_EVENT";
    pub const CONTACT_NEW: &str = "CONTACT_NEW";
    pub const CONTACT_UPDATE: &str = "CONTACT_UPDATE";
    pub const CONTACT_LOST: &str = "CONTACT_LOST";
    pub const RF_CONTACT_NEW: &str = "RF_CONTACT_NEW";
    pub const RF_CONTACT_UPDATE: &str = "RF_CONTACT_UPDATE";
    pub const RF_CONTACT_LOST: &str = "RF_CONTACT_LOST";
    pub const TELEMETRY_UPDATE: &str = "TELEMETRY_UPDATE";
    pub const REPLAY_STATE: &str = "REPLAY_STATE";
    pub const SYSTEM_STATUS: &str = "SYSTEM_STATUS";
    pub const UPS_UPDATE: &str = "UPS_UPDATE";
    pub const SERVICE_UPDATE: &str = "SERVICE_UPDATE";
    pub const NETWORK_UPDATE: &str = "NETWORK_UPDATE";
    pub const AUDIO_UPDATE: &str = "AUDIO_UPDATE";
    pub const GPS_UPDATE: &str = "GPS_UPDATE";
    pub const SUBSCRIBED: &str = "SUBSCRIBED";
    pub const UNSUBSCRIBED: &str = "UNSUBSCRIBED";
    pub const PONG: &str = "PONG";
    pub const ERROR: &str = "ERROR";
    pub const RF_SCAN_STATS: &str = "RF_SCAN_STATS";

    /// Every type name above.
    pub const ALL: &[&str] = &[
        SYSTEM_UPDATE,
        HEARTBEAT,
        COMMAND_ACK,
        ESP32_TELEMETRY,
        LOG_EVENT,
        CONTACT_NEW,
        CONTACT_UPDATE,
        CONTACT_LOST,
        RF_CONTACT_NEW,
        RF_CONTACT_UPDATE,
        RF_CONTACT_LOST,
        TELEMETRY_UPDATE,
        REPLAY_STATE,
        SYSTEM_STATUS,
        UPS_UPDATE,
        SERVICE_UPDATE,
        NETWORK_UPDATE,
        AUDIO_UPDATE,
        GPS_UPDATE,
        SUBSCRIBED,
        UNSUBSCRIBED,
        PONG,
        ERROR,
        RF_SCAN_STATS,
    ];
}

/// HEARTBEAT data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub timestamp_ms: u64,
}

/// COMMAND_ACK data for ESP32 routes: the firmware ack without `type`/`timestamp_ms`.
/// `err` is always present (null on success), as the seed shows.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Esp32CommandAck {
    pub id: String,
    pub ok: bool,
    #[serde(default)]
    #[serialize_always]
    pub err: Option<String>,
    pub data: Option<AckCmd>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckCmd {
    pub cmd: String,
}

/// COMMAND_ACK data for every other route. `reason` is null on success.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemCommandAck {
    pub command: String,
    pub name: Option<String>,
    pub ok: bool,
    #[serde(default)]
    #[serialize_always]
    pub reason: Option<String>,
    /// The id of the CommandResult this ack answers (contract v1.1), so a client can match
    /// the ack of its own command.
    pub command_id: Option<String>,
}

impl SystemCommandAck {
    pub fn ok(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            name: None,
            ok: true,
            reason: None,
            command_id: None,
        }
    }
    pub fn failed(command: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            name: None,
            ok: false,
            reason: Some(reason.into()),
            command_id: None,
        }
    }
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    pub fn with_command_id(mut self, command_id: impl Into<String>) -> Self {
        self.command_id = Some(command_id.into());
        self
    }
}

/// LOG_EVENT data.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEvent {
    pub message: String,
    pub level: Option<LogLevel>,
    pub component: Option<String>,
    pub code: Option<String>,
    pub data: Option<Map<String, Value>>,
}

impl LogEvent {
    pub fn message(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            level: None,
            component: None,
            code: None,
            data: None,
        }
    }
    pub fn with(level: LogLevel, component: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            level: Some(level),
            component: Some(component.to_owned()),
            code: Some(code.to_owned()),
            data: None,
        }
    }
}

/// SUBSCRIBED / UNSUBSCRIBED data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionReply {
    pub events: Vec<String>,
    pub active: Vec<String>,
}

/// PONG data.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pong {
    pub timestamp_ms: u64,
    pub id: Option<String>,
}

/// ERROR data (reply to an invalid control action).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlError {
    pub code: String,
    pub message: String,
}

/// TELEMETRY_UPDATE data as emitted (TELEMETRY_UPDATE.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryUpdate {
    pub state: RemoteIdHealth,
    pub last_update_ms: u64,
    pub contacts_active: u64,
    /// Only `live` or `replay` on the wire.
    pub mode: RemoteIdMode,
}

/// REPLAY_STATE data as emitted (REPLAY_STATE.json).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayStateEvent {
    pub state: String,
    pub speed: f64,
    pub position: Option<u64>,
    pub total: Option<u64>,
    pub ts: Option<u64>,
}

/// Scanner `RF_SCAN_STATS` heartbeat line (antsdr-scan §9); a pass-through type for the aggregator.
#[finite_floats]
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfScanStats {
    pub timestamp_ms: u64,
    pub frames_processed: u64,
    pub events_emitted: u64,
    pub noise_floor_db: Option<f64>,
    pub peaks: Option<u64>,
    pub active_plan: Option<String>,
}
