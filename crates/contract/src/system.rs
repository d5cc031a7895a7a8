//! System-controller sections: SystemStats, UPS_Telemetry, AudioState, GPSState,
//! WifiState, BluetoothState, network_state, service_status and the detail lists.

use crate::enums::{Fix, Status, UpsState};
use crate::num::in_range;
use ndefender_contract_macros::finite_floats;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// SystemStats.json (SYSTEM_STATUS data, snapshot `system`).
#[finite_floats]
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemStats {
    pub timestamp_ms: Option<u64>,
    pub status: Option<Status>,
    pub uptime_s: Option<u64>,
    pub version: Option<VersionInfo>,
    pub cpu: Option<CpuStats>,
    pub ram: Option<RamStats>,
    pub storage: Option<StorageStats>,
    pub last_error: Option<String>,
    pub cpu_temp_c: Option<f64>,
    pub cpu_usage_percent: Option<f64>,
    pub load_1m: Option<f64>,
    pub load_5m: Option<f64>,
    pub load_15m: Option<f64>,
    pub ram_used_mb: Option<i64>,
    pub ram_total_mb: Option<i64>,
    pub disk_used_gb: Option<i64>,
    pub disk_total_gb: Option<i64>,
    pub throttled_flags: Option<i64>,
}

impl SystemStats {
    /// True when any metric is present (status inference, aggregator §9.1).
    pub fn has_metrics(&self) -> bool {
        self.uptime_s.is_some()
            || self.cpu.is_some()
            || self.ram.is_some()
            || self.storage.is_some()
            || self.cpu_temp_c.is_some()
            || self.cpu_usage_percent.is_some()
            || self.load_1m.is_some()
            || self.ram_used_mb.is_some()
            || self.disk_used_gb.is_some()
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub app: Option<String>,
    pub git_sha: Option<String>,
    pub build_ts: Option<u64>,
}

#[finite_floats]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuStats {
    pub temp_c: Option<f64>,
    pub load1: Option<f64>,
    pub load5: Option<f64>,
    pub load15: Option<f64>,
    pub usage_percent: Option<f64>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RamStats {
    pub total_mb: Option<i64>,
    pub used_mb: Option<i64>,
    pub free_mb: Option<i64>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StorageStats {
    pub root: Option<DiskUsage>,
    pub logs: Option<DiskUsage>,
}

#[finite_floats]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskUsage {
    pub total_gb: Option<f64>,
    pub used_gb: Option<f64>,
    pub free_gb: Option<f64>,
}

/// UPS_Telemetry.json (UPS_UPDATE data, snapshot `power`).
#[finite_floats]
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpsTelemetry {
    pub timestamp_ms: Option<u64>,
    pub status: Option<Status>,
    pub pack_voltage_v: Option<f64>,
    pub current_a: Option<f64>,
    pub input_vbus_v: Option<f64>,
    pub input_power_w: Option<f64>,
    pub soc_percent: Option<i64>,
    pub time_to_empty_s: Option<i64>,
    pub time_to_full_s: Option<i64>,
    pub per_cell_v: Option<Vec<f64>>,
    pub state: Option<UpsState>,
    pub last_error: Option<String>,
}

impl UpsTelemetry {
    /// True when a measurement is present (status inference, aggregator §9.1).
    pub fn has_metrics(&self) -> bool {
        self.pack_voltage_v.is_some()
            || self.current_a.is_some()
            || self.soc_percent.is_some()
            || self.input_vbus_v.is_some()
    }
    /// Drops non-finite cell voltages, which would serialise as null.
    pub fn sanitize(&mut self) {
        if let Some(c) = &mut self.per_cell_v {
            c.retain(|x| x.is_finite());
        }
    }
}

/// AudioState.json.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioState {
    pub timestamp_ms: Option<u64>,
    pub status: Option<Status>,
    pub volume_percent: Option<u8>,
    pub muted: Option<bool>,
    pub last_error: Option<String>,
}

/// GPSState.json.
#[finite_floats]
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpsState {
    pub timestamp_ms: Option<u64>,
    pub fix: Option<Fix>,
    pub satellites: Option<Satellites>,
    pub hdop: Option<f64>,
    pub vdop: Option<f64>,
    pub pdop: Option<f64>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub altitude_m: Option<f64>,
    pub speed_m_s: Option<f64>,
    pub heading_deg: Option<f64>,
    pub last_update_ms: Option<u64>,
    pub age_ms: Option<u64>,
    pub source: Option<String>,
    pub last_error: Option<String>,
}

impl GpsState {
    /// Omits values the schema cannot represent (PROTOCOL.md §4.4).
    pub fn sanitize(&mut self) {
        self.latitude = in_range(self.latitude, -90.0, 90.0);
        self.longitude = in_range(self.longitude, -180.0, 180.0);
        self.speed_m_s = in_range(self.speed_m_s, 0.0, f64::MAX);
        self.heading_deg = in_range(self.heading_deg, 0.0, 360.0);
        if self.latitude.is_none() || self.longitude.is_none() {
            self.latitude = None;
            self.longitude = None;
        }
    }
    /// Kit position while the fix is 2D or 3D.
    pub fn position(&self) -> Option<(f64, f64)> {
        match self.fix {
            Some(Fix::Fix2d) | Some(Fix::Fix3d) => Some((self.latitude?, self.longitude?)),
            _ => None,
        }
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Satellites {
    pub in_view: Option<u32>,
    pub in_use: Option<u32>,
}

/// WifiState.json.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WifiState {
    pub timestamp_ms: Option<u64>,
    pub enabled: Option<bool>,
    pub connected: Option<bool>,
    pub ssid: Option<String>,
    pub bssid: Option<String>,
    pub ip: Option<String>,
    pub rssi_dbm: Option<i64>,
    pub link_quality: Option<i64>,
    pub last_update_ms: Option<u64>,
    pub last_error: Option<String>,
}

/// BluetoothState.json.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BluetoothState {
    pub timestamp_ms: Option<u64>,
    pub enabled: Option<bool>,
    pub scanning: Option<bool>,
    pub paired_count: Option<u32>,
    pub connected_devices: Option<Vec<BluetoothConnected>>,
    pub last_update_ms: Option<u64>,
    pub last_error: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BluetoothConnected {
    pub addr: Option<String>,
    pub name: Option<String>,
    pub rssi_dbm: Option<i64>,
}

/// StatusSnapshot `network_state` (NETWORK_UPDATE data). `connected` is its anchor.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkState {
    #[serde(default)]
    pub connected: bool,
    pub ssid: Option<String>,
    pub ip_v4: Option<String>,
    pub ip_v6: Option<String>,
    pub wifi: Option<WifiState>,
    pub bluetooth: Option<BluetoothState>,
}

/// StatusSnapshot `service_status`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub active_state: String,
    pub sub_state: String,
    #[serde(default)]
    pub restart_count: i64,
    pub uptime_s: Option<i64>,
    pub last_restart_ms: Option<u64>,
    pub last_error: Option<String>,
}

/// SERVICE_UPDATE data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceUpdate {
    pub services: Vec<ServiceStatus>,
}

/// WifiScanResult.json.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WifiScanResult {
    pub timestamp_ms: Option<u64>,
    pub networks: Option<Vec<WifiNetwork>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WifiNetwork {
    pub ssid: Option<String>,
    pub bssid: Option<String>,
    pub security: Option<String>,
    pub signal_dbm: Option<i64>,
    pub channel: Option<i64>,
    pub frequency_mhz: Option<i64>,
    pub known: Option<bool>,
}

/// BluetoothDeviceList.json.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BluetoothDeviceList {
    pub timestamp_ms: Option<u64>,
    pub devices: Option<Vec<BluetoothDevice>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BluetoothDevice {
    pub addr: Option<String>,
    pub name: Option<String>,
    pub rssi_dbm: Option<i64>,
    pub paired: Option<bool>,
    pub connected: Option<bool>,
}

/// The system controller's `GET /api/v1/status` body (system-controller §4).
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControllerStatus {
    #[serde(default)]
    pub timestamp_ms: u64,
    pub system: Option<SystemStats>,
    pub ups: Option<UpsTelemetry>,
    pub services: Option<Vec<ServiceStatus>>,
    pub network: Option<NetworkState>,
    pub gps: Option<GpsState>,
    pub audio: Option<AudioState>,
}
