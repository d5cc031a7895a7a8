//! AntSDR, RemoteID and ESP32 state bodies, and the aggregator-only snapshot sections.

use crate::enums::{GainMode, RemoteIdHealth, RemoteIdMode, RfStatus, VideoStatus};
use crate::num::skip_f64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// AntSDRDeviceState.json (snapshot `antsdr`, scanner `GET /device`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AntsdrDeviceState {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timestamp_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub connected: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub uri: Option<String>,
    #[serde(skip_serializing_if = "skip_f64", default)]
    pub temperature_c: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
}

/// AntSDRGainState.json.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AntsdrGainState {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timestamp_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mode: Option<GainMode>,
    #[serde(skip_serializing_if = "skip_f64", default)]
    pub gain_db: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub limits: Option<GainLimits>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GainLimits {
    #[serde(skip_serializing_if = "skip_f64", default)]
    pub min_db: Option<f64>,
    #[serde(skip_serializing_if = "skip_f64", default)]
    pub max_db: Option<f64>,
}

/// AntSDRStats.json.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AntsdrStats {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timestamp_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub frames_processed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub events_emitted: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_event_timestamp_ms: Option<u64>,
    #[serde(skip_serializing_if = "skip_f64", default)]
    pub noise_floor_db: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub peaks: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
}

/// AntSDRSweepState.json.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AntsdrSweepState {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timestamp_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub running: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub active_plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub plans: Option<Vec<SweepPlanSummary>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_update_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepPlanSummary {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "skip_f64", default)]
    pub start_hz: Option<f64>,
    #[serde(skip_serializing_if = "skip_f64", default)]
    pub end_hz: Option<f64>,
    #[serde(skip_serializing_if = "skip_f64", default)]
    pub step_hz: Option<f64>,
}

/// RemoteIDState.json (`GET /remote_id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteIdStateBody {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timestamp_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state: Option<RemoteIdHealth>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mode: Option<RemoteIdMode>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capture_active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub contacts_active: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_update_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
}

/// RemoteIDStats.json.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteIdStats {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timestamp_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub frames: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub decoded: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dropped: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dedupe_hits: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
}

/// RemoteIDReplayState.json (`GET /remote_id/replay/state`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteIdReplayStateBody {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timestamp_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "skip_f64", default)]
    pub speed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub position: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub total: Option<u64>,
}

/// ESP32State.json (snapshot `esp32`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Esp32State {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timestamp_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub connected: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_seen_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rtt_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fw_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub heartbeat: Option<Esp32Heartbeat>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capabilities: Option<Esp32Capabilities>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Esp32Heartbeat {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ok: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub interval_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_heartbeat_ms: Option<u64>,
}

/// What the panel firmware can do (aggregator §7.2: no buttons, buzzer or config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Esp32Capabilities {
    pub buttons: bool,
    pub leds: bool,
    pub buzzer: bool,
    pub vrx: bool,
    pub video_switch: bool,
    pub config: bool,
}

impl Esp32Capabilities {
    pub const PANEL_FIRMWARE: Esp32Capabilities = Esp32Capabilities {
        buttons: false,
        leds: true,
        buzzer: false,
        vrx: true,
        video_switch: true,
        config: false,
    };
}

/// ESP32Config.json (`GET /esp32/config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Esp32ConfigBody {
    pub timestamp_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub schema_version: Option<String>,
    pub config: Map<String, Value>,
}

/// Snapshot `rf` (anchors: status, scan_active).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfSection {
    pub status: RfStatus,
    pub scan_active: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_event_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_event: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_timestamp_ms: Option<u64>,
}

impl Default for RfSection {
    fn default() -> Self {
        Self {
            status: RfStatus::Unknown,
            scan_active: false,
            last_error: None,
            last_event_type: None,
            last_event: None,
            last_timestamp_ms: None,
        }
    }
}

/// Snapshot `remote_id` (anchors: state, mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteIdSection {
    pub state: RemoteIdHealth,
    pub mode: RemoteIdMode,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capture_active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub contacts_active: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_update_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_event_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_event: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_timestamp_ms: Option<u64>,
}

impl Default for RemoteIdSection {
    fn default() -> Self {
        Self {
            state: RemoteIdHealth::Offline,
            mode: RemoteIdMode::Live,
            capture_active: None,
            contacts_active: Some(0),
            last_update_ms: None,
            last_error: Some("no_data".into()),
            last_event_type: None,
            last_event: None,
            last_timestamp_ms: None,
        }
    }
}

/// Snapshot `vrx` (anchors: vrx, sys, scan_state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrxSection {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub selected: Option<i64>,
    pub scan_state: String,
    pub vrx: Vec<VrxItem>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub led: Option<LedState>,
    pub sys: VrxSys,
}

impl Default for VrxSection {
    fn default() -> Self {
        Self {
            selected: None,
            scan_state: "idle".into(),
            vrx: Vec::new(),
            led: None,
            sys: VrxSys {
                status: Some("DISCONNECTED".into()),
                ..VrxSys::default()
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrxItem {
    pub id: i64,
    pub freq_hz: f64,
    pub rssi_raw: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedState {
    pub r: i64,
    pub y: i64,
    pub g: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VrxSys {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub uptime_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub heap: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
}

/// Snapshot `fpv` (anchors: scan_state, locked_channels).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FpvSection {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub selected: Option<i64>,
    pub scan_state: String,
    #[serde(skip_serializing_if = "skip_f64", default)]
    pub freq_hz: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rssi_raw: Option<i64>,
    pub locked_channels: Vec<i64>,
}

impl Default for FpvSection {
    fn default() -> Self {
        Self {
            selected: None,
            scan_state: "idle".into(),
            freq_hz: None,
            rssi_raw: None,
            locked_channels: Vec::new(),
        }
    }
}

/// Snapshot `video` (anchor: status).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoSection {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub selected: Option<i64>,
    pub status: VideoStatus,
}

impl Default for VideoSection {
    fn default() -> Self {
        Self {
            selected: None,
            status: VideoStatus::Unknown,
        }
    }
}

/// Snapshot `replay` (anchors: active, source).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplaySection {
    pub active: bool,
    pub source: String,
}

impl Default for ReplaySection {
    fn default() -> Self {
        Self {
            active: false,
            source: "none".into(),
        }
    }
}
