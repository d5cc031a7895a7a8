//! `config/aggregator.toml` (aggregator §2). The built-in defaults equal the
//! repository file; a test keeps them in step.

use ndefender_service::config::Validate;
use ndefender_tail::StartPosition;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
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
    pub history: crate::history::HistoryConfig,
    pub dashboard: DashboardConfig,
    pub audit: AuditConfig,
    pub mqtt: crate::uplink::config::MqttConfig,
    pub tak: crate::uplink::config::TakConfig,
}

ndefender_service::section_defaults! {
    /// The aggregator's defaults of the shared sections.
    Defaults {
        bind: "127.0.0.1:8001",
        max_clients: 64,
        heartbeat_ms: 2000,
        audit_path: "/var/lib/ndefender/aggregator/audit.jsonl",
    }
}

/// `[server]`: the section every daemon shares (ndefender-service) plus the aggregator's own
/// `dashboard` switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    #[serde(flatten)]
    pub shared: ndefender_service::server::ServerSection<Defaults>,
    /// Serve the operator's dashboard at `/` (issue 14).
    pub dashboard: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            shared: Default::default(),
            dashboard: true,
        }
    }
}

ndefender_service::extends_section!(ServerConfig => shared: ndefender_service::server::ServerSection<Defaults>);

pub type AuditConfig = ndefender_service::server::AuditConfig<Defaults>;

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

/// Per-feed defaults of an [`UpstreamConfig`].
pub trait UpstreamDefaults: Clone + std::fmt::Debug + PartialEq + Send + Sync + 'static {
    const JSONL_PATH: &'static str;
    const BASE_URL: &'static str;
    const CONTACT_TTL_S: f64;
}

/// What the aggregator knows of an upstream daemon it follows, the keys `[remoteid]` and
/// `[antsdr]` share: its JSONL feed, its REST API and credentials, how long its contacts live
/// and when its data are stale. Each section flattens it with its own defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, bound = "")]
pub struct UpstreamConfig<D: UpstreamDefaults> {
    pub enabled: bool,
    pub jsonl_path: PathBuf,
    pub base_url: String,
    pub api_key: String,
    /// PEM certificate an `https://` base_url must present (required for https; the
    /// platform's roots are never used).
    pub ca_file: String,
    pub contact_ttl_s: f64,
    pub stale_s: f64,
    #[serde(skip)]
    _d: PhantomData<D>,
}

impl<D: UpstreamDefaults> Default for UpstreamConfig<D> {
    fn default() -> Self {
        Self {
            enabled: true,
            jsonl_path: D::JSONL_PATH.into(),
            base_url: D::BASE_URL.into(),
            api_key: String::new(),
            ca_file: String::new(),
            contact_ttl_s: D::CONTACT_TTL_S,
            stale_s: 15.0,
            _d: PhantomData,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RemoteIdDefaults;

impl UpstreamDefaults for RemoteIdDefaults {
    const JSONL_PATH: &'static str = "/opt/ndefender/logs/remoteid_engine.jsonl";
    const BASE_URL: &'static str = "http://127.0.0.1:9001";
    const CONTACT_TTL_S: f64 = 15.0;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemoteIdConfig {
    #[serde(flatten)]
    pub upstream: UpstreamConfig<RemoteIdDefaults>,
    pub max_event_age_s: f64,
    pub test_markers: Vec<String>,
    pub engine_unit: String,
    pub capture_interface: String,
}

impl Default for RemoteIdConfig {
    fn default() -> Self {
        Self {
            upstream: UpstreamConfig::default(),
            max_event_age_s: 15.0,
            test_markers: vec!["testdrone".into(), "warmstart".into()],
            engine_unit: "ndefender-remoteid-engine".into(),
            capture_interface: "mon0".into(),
        }
    }
}

ndefender_service::extends_section!(RemoteIdConfig => upstream: UpstreamConfig<RemoteIdDefaults>);

#[derive(Debug, Clone, PartialEq)]
pub struct AntsdrDefaults;

impl UpstreamDefaults for AntsdrDefaults {
    const JSONL_PATH: &'static str = "/opt/ndefender/logs/antsdr_scan.jsonl";
    const BASE_URL: &'static str = "http://127.0.0.1:8890";
    const CONTACT_TTL_S: f64 = 180.0;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AntsdrConfig {
    #[serde(flatten)]
    pub upstream: UpstreamConfig<AntsdrDefaults>,
    pub poll_interval_s: f64,
}

impl Default for AntsdrConfig {
    fn default() -> Self {
        Self {
            upstream: UpstreamConfig::default(),
            poll_interval_s: 5.0,
        }
    }
}

ndefender_service::extends_section!(AntsdrConfig => upstream: UpstreamConfig<AntsdrDefaults>);

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
    /// PEM certificate an `https://` base_url must present (required for https; the
    /// platform's roots are never used).
    pub ca_file: String,
    pub silence_timeout_s: f64,
}

impl Default for SystemControllerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            base_url: "http://127.0.0.1:8002".into(),
            api_key: String::new(),
            ca_file: String::new(),
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

pub type LimitsConfig = ndefender_service::server::LimitsConfig;

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

/// The dashboard's map background (issue 14).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DashboardConfig {
    /// Empty: grid, range rings and north only. An absolute path to an MBTiles file:
    /// served at `/tiles/{z}/{x}/{y}` (offline packs). An `https://…/{z}/{x}/{y}.png`
    /// template: the browser fetches it directly.
    pub tiles: String,
}

/// What `dashboard.tiles` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tiles {
    None,
    MbTiles(PathBuf),
    Template(String),
}

impl DashboardConfig {
    pub fn tiles(&self) -> Result<Tiles, &'static str> {
        let t = self.tiles.trim();
        if t.is_empty() {
            return Ok(Tiles::None);
        }
        if t.starts_with("https://") || t.starts_with("http://") {
            if ["{z}", "{x}", "{y}"].iter().all(|p| t.contains(p)) {
                return Ok(Tiles::Template(t.to_owned()));
            }
            return Err("a tile URL template must contain {z}, {x} and {y}");
        }
        let p = PathBuf::from(t);
        if p.is_absolute() && p.extension().is_some_and(|e| e == "mbtiles") {
            return Ok(Tiles::MbTiles(p));
        }
        Err("expected \"\", an absolute path to a .mbtiles file, or an https://…/{z}/{x}/{y}.png template")
    }
}

const SECTIONS: [&str; 6] = ["system", "power", "audio", "rf", "remote_id", "esp32"];

impl Validate for AggregatorConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        fn err(k: &str, m: &str) -> Result<(), (String, String)> {
            Err((k.to_owned(), m.to_owned()))
        }
        self.server.validate("server")?;
        self.audit.validate()?;
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
        // An https:// upstream is trusted only through its pinned certificate, never the
        // platform's roots: the kit's daemons carry self-signed certificates.
        for (section, base_url, ca_file) in [
            ("remoteid", &self.remoteid.base_url, &self.remoteid.ca_file),
            ("antsdr", &self.antsdr.base_url, &self.antsdr.ca_file),
            (
                "system_controller",
                &self.system_controller.base_url,
                &self.system_controller.ca_file,
            ),
        ] {
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                return err(&format!("{section}.base_url"), "must start with http:// or https://");
            }
            if base_url.starts_with("https://") && ca_file.is_empty() {
                return err(
                    &format!("{section}.ca_file"),
                    "an https:// base_url needs the upstream's certificate (PEM) to pin, e.g. the cert.pem `ndefender-token --self-signed DIR` wrote for it",
                );
            }
        }
        self.history.validate()?;
        if let Err(m) = self.dashboard.tiles() {
            return err("dashboard.tiles", m);
        }
        self.mqtt.validate()?;
        self.tak.validate()?;
        Ok(())
    }
}
