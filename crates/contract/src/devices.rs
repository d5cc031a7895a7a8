//! AntSDR, RemoteID and ESP32 state bodies, and the aggregator-only snapshot sections.

use crate::enums::{GainMode, RemoteIdHealth, RemoteIdMode, RfStatus, VideoStatus};
use ndefender_contract_macros::finite_floats;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use serde_with::skip_serializing_none;

/// AntSDRDeviceState.json (snapshot `antsdr`, scanner `GET /device`).
#[finite_floats]
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AntsdrDeviceState {
    pub timestamp_ms: Option<u64>,
    pub connected: Option<bool>,
    pub uri: Option<String>,
    pub temperature_c: Option<f64>,
    pub last_error: Option<String>,
}

/// AntSDRGainState.json.
#[finite_floats]
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AntsdrGainState {
    pub timestamp_ms: Option<u64>,
    pub mode: Option<GainMode>,
    pub gain_db: Option<f64>,
    pub limits: Option<GainLimits>,
}

#[finite_floats]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GainLimits {
    pub min_db: Option<f64>,
    pub max_db: Option<f64>,
}

/// AntSDRStats.json.
#[finite_floats]
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AntsdrStats {
    pub timestamp_ms: Option<u64>,
    pub frames_processed: Option<u64>,
    pub events_emitted: Option<u64>,
    pub last_event_timestamp_ms: Option<u64>,
    pub noise_floor_db: Option<f64>,
    pub peaks: Option<u64>,
    pub last_error: Option<String>,
}

/// AntSDRSweepState.json.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AntsdrSweepState {
    pub timestamp_ms: Option<u64>,
    pub running: Option<bool>,
    pub active_plan: Option<String>,
    pub plans: Option<Vec<SweepPlanSummary>>,
    pub last_update_ms: Option<u64>,
    pub last_error: Option<String>,
}

#[finite_floats]
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepPlanSummary {
    pub name: Option<String>,
    pub start_hz: Option<f64>,
    pub end_hz: Option<f64>,
    pub step_hz: Option<f64>,
}

/// RemoteIDState.json (`GET /remote_id`).
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteIdStateBody {
    pub timestamp_ms: Option<u64>,
    pub state: Option<RemoteIdHealth>,
    pub mode: Option<RemoteIdMode>,
    pub capture_active: Option<bool>,
    pub contacts_active: Option<u64>,
    pub last_update_ms: Option<u64>,
    pub last_error: Option<String>,
}

/// RemoteIDStats.json.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteIdStats {
    pub timestamp_ms: Option<u64>,
    pub frames: Option<u64>,
    pub decoded: Option<u64>,
    pub dropped: Option<u64>,
    pub dedupe_hits: Option<u64>,
    pub last_error: Option<String>,
}

/// RemoteIDReplayState.json (`GET /remote_id/replay/state`).
#[finite_floats]
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteIdReplayStateBody {
    pub timestamp_ms: Option<u64>,
    pub active: Option<bool>,
    pub source: Option<String>,
    pub state: Option<String>,
    pub speed: Option<f64>,
    pub position: Option<u64>,
    pub total: Option<u64>,
}

/// ESP32State.json (snapshot `esp32`).
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Esp32State {
    pub timestamp_ms: Option<u64>,
    pub connected: Option<bool>,
    pub last_seen_ms: Option<u64>,
    pub rtt_ms: Option<u64>,
    pub fw_version: Option<String>,
    pub heartbeat: Option<Esp32Heartbeat>,
    pub capabilities: Option<Esp32Capabilities>,
    pub last_error: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Esp32Heartbeat {
    pub ok: Option<bool>,
    pub interval_ms: Option<u64>,
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
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Esp32ConfigBody {
    pub timestamp_ms: u64,
    pub schema_version: Option<String>,
    pub config: Map<String, Value>,
}

/// Snapshot `rf` (anchors: status, scan_active).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfSection {
    pub status: RfStatus,
    pub scan_active: bool,
    pub last_error: Option<String>,
    pub last_event_type: Option<String>,
    pub last_event: Option<Map<String, Value>>,
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
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteIdSection {
    pub state: RemoteIdHealth,
    pub mode: RemoteIdMode,
    pub capture_active: Option<bool>,
    pub contacts_active: Option<u64>,
    pub last_update_ms: Option<u64>,
    pub last_error: Option<String>,
    pub last_event_type: Option<String>,
    pub last_event: Option<Map<String, Value>>,
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
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrxSection {
    pub selected: Option<i64>,
    pub scan_state: String,
    pub vrx: Vec<VrxItem>,
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

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VrxSys {
    pub uptime_ms: Option<i64>,
    pub heap: Option<i64>,
    pub status: Option<String>,
    pub last_error: Option<String>,
}

/// Snapshot `fpv` (anchors: scan_state, locked_channels).
#[finite_floats]
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FpvSection {
    pub selected: Option<i64>,
    pub scan_state: String,
    pub freq_hz: Option<f64>,
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
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoSection {
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
