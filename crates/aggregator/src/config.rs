//! `config/aggregator.toml` (aggregator §2). The built-in defaults equal the
//! repository file; a test keeps them in step.

use ndefender_service::config::Validate;
use ndefender_tail::StartPosition;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AggregatorConfig {
    pub server: ServerConfig,
    pub state: StateConfig,
    pub tail: TailSection,
    pub remoteid: RemoteIdConfig,
    pub antsdr: AntsdrConfig,
    pub esp32: Esp32Config,
    pub system_controller: SystemControllerConfig,
    pub proxy: ProxyConfig,
    pub safety: SafetyConfig,
    pub limits: LimitsConfig,
    pub status: StatusConfig,
    pub contacts: ContactsConfig,
    pub alerts: AlertsConfig,
    pub mqtt: crate::uplink::config::MqttConfig,
    pub tak: crate::uplink::config::TakConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    pub bind: String,
    pub api_key: String,
    pub max_clients: usize,
    pub heartbeat_ms: u64,
    pub allowed_origins: Vec<String>,
    pub cors_max_age_s: u64,
    pub trusted_proxies: Vec<String>,
    pub client_queue: usize,
    pub replay_buffer: usize,
    pub ping_interval_s: f64,
    pub send_timeout_s: f64,
    pub max_frame_bytes: usize,
    pub max_patterns: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8001".into(),
            api_key: String::new(),
            max_clients: 64,
            heartbeat_ms: 2000,
            allowed_origins: vec!["*".into()],
            cors_max_age_s: 86400,
            trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
            client_queue: 1024,
            replay_buffer: 4096,
            ping_interval_s: 20.0,
            send_timeout_s: 10.0,
            max_frame_bytes: 65536,
            max_patterns: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StateConfig {
    pub dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            dir: "/var/lib/ndefender/aggregator".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TailSection {
    pub start_position: StartPosition,
    pub poll_interval_ms: u64,
    pub checkpoint_interval_ms: u64,
    pub max_line_bytes: usize,
}

impl Default for TailSection {
    fn default() -> Self {
        Self {
            start_position: StartPosition::End,
            poll_interval_ms: 1000,
            checkpoint_interval_ms: 1000,
            max_line_bytes: 1_048_576,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemoteIdConfig {
    pub enabled: bool,
    pub jsonl_path: PathBuf,
    pub base_url: String,
    pub api_key: String,
    pub contact_ttl_s: f64,
    pub stale_s: f64,
    pub max_event_age_s: f64,
    pub test_markers: Vec<String>,
    pub engine_unit: String,
    pub capture_interface: String,
}

impl Default for RemoteIdConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            jsonl_path: "/opt/ndefender/logs/remoteid_engine.jsonl".into(),
            base_url: "http://127.0.0.1:9001".into(),
            api_key: String::new(),
            contact_ttl_s: 15.0,
            stale_s: 15.0,
            max_event_age_s: 15.0,
            test_markers: vec!["testdrone".into(), "warmstart".into()],
            engine_unit: "ndefender-remoteid-engine".into(),
            capture_interface: "mon0".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AntsdrConfig {
    pub enabled: bool,
    pub jsonl_path: PathBuf,
    pub base_url: String,
    pub api_key: String,
    pub contact_ttl_s: f64,
    pub stale_s: f64,
    pub poll_interval_s: f64,
}

impl Default for AntsdrConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            jsonl_path: "/opt/ndefender/logs/antsdr_scan.jsonl".into(),
            base_url: "http://127.0.0.1:8890".into(),
            api_key: String::new(),
            contact_ttl_s: 180.0,
            stale_s: 15.0,
            poll_interval_s: 5.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Esp32Config {
    pub enabled: bool,
    pub port: String,
    pub baud: u32,
    pub max_line_bytes: usize,
    pub stale_s: f64,
    pub command_timeout_s: f64,
    pub command_retries: u32,
    pub queue_len: usize,
    pub queue_timeout_s: f64,
    pub probe_interval_s: f64,
    pub fpv_rssi_threshold: i64,
}

impl Default for Esp32Config {
    fn default() -> Self {
        Self {
            enabled: true,
            port: String::new(),
            baud: 115_200,
            max_line_bytes: 2048,
            stale_s: 3.0,
            command_timeout_s: 2.0,
            command_retries: 1,
            queue_len: 16,
            queue_timeout_s: 10.0,
            probe_interval_s: 10.0,
            fpv_rssi_threshold: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SystemControllerConfig {
    pub enabled: bool,
    pub base_url: String,
    pub api_key: String,
    pub silence_timeout_s: f64,
}

impl Default for SystemControllerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            base_url: "http://127.0.0.1:8002".into(),
            api_key: String::new(),
            silence_timeout_s: 10.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProxyConfig {
    pub get_timeout_s: f64,
    pub command_timeout_s: f64,
    pub wifi_connect_timeout_s: f64,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            get_timeout_s: 2.0,
            command_timeout_s: 10.0,
            wifi_connect_timeout_s: 30.0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SafetyConfig {
    pub allow_unsafe: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    pub commands_per_minute: u32,
    pub dangerous_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            commands_per_minute: 10,
            dangerous_per_minute: 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusConfig {
    pub overall_ok_sections: Vec<String>,
    pub update_min_interval_ms: u64,
    pub video_device_glob: String,
}

impl Default for StatusConfig {
    fn default() -> Self {
        Self {
            overall_ok_sections: ["system", "power", "audio", "rf", "remote_id", "esp32"]
                .map(String::from)
                .to_vec(),
            update_min_interval_ms: 1000,
            video_device_glob: "/dev/video*".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContactsConfig {
    pub max_per_kind: usize,
    pub remote_id_high_radius_m: f64,
}

impl Default for ContactsConfig {
    fn default() -> Self {
        Self {
            max_per_kind: 500,
            remote_id_high_radius_m: 500.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertsConfig {
    pub beep_on_high_severity: bool,
    pub beep_min_interval_s: f64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            beep_on_high_severity: true,
            beep_min_interval_s: 10.0,
        }
    }
}

const SECTIONS: [&str; 6] = ["system", "power", "audio", "rf", "remote_id", "esp32"];

impl Validate for AggregatorConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        fn err(k: &str, m: &str) -> Result<(), (String, String)> {
            Err((k.to_owned(), m.to_owned()))
        }
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return err("server.bind", "expected host:port, e.g. 127.0.0.1:8001");
        }
        if self.server.max_clients == 0 {
            return err("server.max_clients", "must be at least 1");
        }
        if self.server.client_queue == 0 {
            return err("server.client_queue", "must be at least 1");
        }
        for (k, v) in [
            ("server.ping_interval_s", self.server.ping_interval_s),
            ("server.send_timeout_s", self.server.send_timeout_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return err(k, "must be a positive number of seconds");
            }
        }
        if !self.state.dir.is_absolute() {
            return err("state.dir", "must be an absolute path");
        }
        for (k, p) in [
            ("remoteid.jsonl_path", &self.remoteid.jsonl_path),
            ("antsdr.jsonl_path", &self.antsdr.jsonl_path),
        ] {
            if !p.is_absolute() {
                return err(k, "must be an absolute path");
            }
        }
        for (k, v) in [
            ("remoteid.contact_ttl_s", self.remoteid.contact_ttl_s),
            ("remoteid.stale_s", self.remoteid.stale_s),
            ("remoteid.max_event_age_s", self.remoteid.max_event_age_s),
            ("antsdr.contact_ttl_s", self.antsdr.contact_ttl_s),
            ("antsdr.stale_s", self.antsdr.stale_s),
            ("antsdr.poll_interval_s", self.antsdr.poll_interval_s),
            ("esp32.stale_s", self.esp32.stale_s),
            ("esp32.command_timeout_s", self.esp32.command_timeout_s),
            (
                "system_controller.silence_timeout_s",
                self.system_controller.silence_timeout_s,
            ),
            ("proxy.get_timeout_s", self.proxy.get_timeout_s),
            ("proxy.command_timeout_s", self.proxy.command_timeout_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return err(k, "must be a positive number of seconds");
            }
        }
        if self.tail.poll_interval_ms == 0 || self.tail.checkpoint_interval_ms == 0 {
            return err("tail.poll_interval_ms", "intervals must be positive");
        }
        if self.tail.max_line_bytes < 1024 {
            return err("tail.max_line_bytes", "must be at least 1024");
        }
        if self.esp32.queue_len == 0 {
            return err("esp32.queue_len", "must be at least 1");
        }
        if let Some(s) = self
            .status
            .overall_ok_sections
            .iter()
            .find(|s| !SECTIONS.contains(&s.as_str()))
        {
            return Err((
                "status.overall_ok_sections".into(),
                format!("unknown section {s:?} (one of {SECTIONS:?})"),
            ));
        }
        if self.contacts.max_per_kind == 0 {
            return err("contacts.max_per_kind", "must be at least 1");
        }
        self.mqtt.validate()?;
        self.tak.validate()?;
        Ok(())
    }
}
