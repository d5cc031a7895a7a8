//! `config/remoteid.toml`. The built-in defaults equal the repository file (a test keeps them
//! in step).

use ndefender_service::config::Validate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    pub server: ServerConfig,
    pub audit: AuditConfig,
    pub output: OutputConfig,
    pub monitor: MonitorConfig,
    pub replay: ReplayConfig,
    pub log: LogConfig,
}

ndefender_service::section_defaults! {
    /// The engine's defaults of the shared sections.
    Defaults {
        bind: "127.0.0.1:9001",
        max_clients: 16,
        heartbeat_ms: 2000,
        audit_path: "/var/lib/ndefender/remoteid/audit.jsonl",
        // The aggregator tails the JSONL; WebSocket clients here are few and local.
        replay_buffer: 1024,
    }
}

/// `[server]`: the section every daemon shares (ndefender-service).
pub type ServerConfig = ndefender_service::server::ServerSection<Defaults>;
pub type AuditConfig = ndefender_service::server::AuditConfig<Defaults>;
pub use ndefender_service::server::LogConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutputConfig {
    pub jsonl_path: String,
    /// The feed is rotated to `<jsonl_path>.1` before it would exceed this (0 = never).
    pub max_bytes: u64,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            jsonl_path: "/opt/ndefender/logs/remoteid_engine.jsonl".into(),
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Wi-Fi monitor interface through libpcap.
    Wifi,
    /// Simulated transmitters (encoded frames through the same decoder).
    Sim,
    /// Bluetooth LE scan through BlueZ on the D-Bus system bus (adapter `ble_adapter`).
    Ble,
    /// No live source (replay only).
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MonitorConfig {
    pub source: SourceKind,
    pub autostart: bool,
    /// Monitor-mode interface opened by libpcap.
    pub interface: String,
    /// Simulator: number of aircraft.
    pub sim_drones: u32,
    /// Simulator: frames per second per aircraft.
    pub sim_rate_hz: f64,
    /// BlueZ adapter scanned when `source = "ble"`.
    pub ble_adapter: String,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            source: SourceKind::Wifi,
            autostart: true,
            interface: "mon0".into(),
            sim_drones: 3,
            sim_rate_hz: 2.0,
            ble_adapter: "hci0".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplayConfig {
    /// Captures a replay request may name (relative names resolve here; nothing outside).
    pub dir: String,
    /// Capture replayed at start-up when `autostart` (and the default of `replay/start`).
    pub file: String,
    pub speed: f64,
    pub autostart: bool,
    /// Start the capture again when it ends (the demo).
    #[serde(rename = "loop")]
    pub repeat: bool,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            dir: "/opt/ndefender/captures".into(),
            file: String::new(),
            speed: 1.0,
            autostart: false,
            repeat: false,
        }
    }
}

impl Validate for EngineConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: &str| Err((k.to_owned(), m.to_owned()));
        self.server.validate("server")?;
        self.audit.validate()?;
        if self.output.jsonl_path.is_empty() {
            return bad("output.jsonl_path", "must not be empty");
        }
        if self.output.max_bytes != 0 && self.output.max_bytes < 4096 {
            return bad("output.max_bytes", "0 (no cap) or at least 4096");
        }
        if !(self.replay.speed.is_finite() && self.replay.speed >= 0.0 && self.replay.speed <= 1000.0) {
            return bad("replay.speed", "0 (as fast as possible) to 1000");
        }
        if !(self.monitor.sim_rate_hz.is_finite()
            && self.monitor.sim_rate_hz > 0.0
            && self.monitor.sim_rate_hz <= 100.0)
        {
            return bad("monitor.sim_rate_hz", "above 0, at most 100");
        }
        if self.monitor.sim_drones > 1000 {
            return bad("monitor.sim_drones", "at most 1000");
        }
        if self.monitor.interface.is_empty() || self.monitor.interface.len() > 15 {
            return bad("monitor.interface", "an interface name (1–15 characters)");
        }
        // It becomes a D-Bus object path element (/org/bluez/<adapter>).
        let a = &self.monitor.ble_adapter;
        if a.is_empty() || a.len() > 32 || !a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return bad("monitor.ble_adapter", "a BlueZ adapter name such as hci0");
        }
        Ok(())
    }
}
