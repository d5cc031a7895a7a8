//! `config/system-controller.toml` (system-controller §7). The built-in defaults
//! equal the repository file; a test keeps them in step.

use ndefender_service::config::Validate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ControllerConfig {
    pub server: ServerConfig,
    pub safety: SafetyConfig,
    pub limits: LimitsConfig,
    pub events: EventsConfig,
    pub probes: ProbesConfig,
    pub system: SystemConfig,
    pub services: ServicesConfig,
    pub network: NetworkConfig,
    pub bluetooth: BluetoothConfig,
    pub power: PowerConfig,
    pub gps: GpsConfig,
    pub audio: AudioConfig,
    pub audit: AuditConfig,
}

ndefender_service::section_defaults! {
    /// The controller's defaults of the shared sections.
    Defaults {
        bind: "127.0.0.1:8002",
        max_clients: 32,
        heartbeat_ms: 0,
        audit_path: "/var/lib/ndefender/system-controller/audit.jsonl",
    }
}

/// `[server]`: the section every daemon shares (ndefender-service).
pub type ServerConfig = ndefender_service::server::ServerSection<Defaults>;
pub type AuditConfig = ndefender_service::server::AuditConfig<Defaults>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SafetyConfig {
    pub allow_unsafe: bool,
    pub confirm_link_loss: bool,
    pub power_cooldown_s: u64,
    pub power_action_delay_ms: u64,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        Self {
            allow_unsafe: false,
            confirm_link_loss: true,
            power_cooldown_s: 30,
            power_action_delay_ms: 1500,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    pub network_per_minute: u32,
    pub audio_per_minute: u32,
    pub alert_per_minute: u32,
    pub service_per_minute: u32,
    pub dangerous_per_minute: u32,
    pub unit_cooldown_s: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            network_per_minute: 10,
            audio_per_minute: 30,
            alert_per_minute: 30,
            service_per_minute: 10,
            dangerous_per_minute: 2,
            unit_cooldown_s: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventsConfig {
    pub system_status_ms: u64,
    pub max_silence_s: u64,
    pub gps_min_interval_ms: u64,
    pub log_event_min_interval_s: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            system_status_ms: 2000,
            max_silence_s: 30,
            gps_min_interval_ms: 1000,
            log_event_min_interval_s: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProbesConfig {
    pub offline_after: u32,
    pub dbus_timeout_ms: u64,
    pub startup_budget_ms: u64,
}

impl Default for ProbesConfig {
    fn default() -> Self {
        Self {
            offline_after: 3,
            dbus_timeout_ms: 2000,
            startup_budget_ms: 3000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SystemConfig {
    pub interval_ms: u64,
    pub logs_dir: String,
    pub thermal_path: String,
    pub throttled_path: String,
    pub temp_warn_c: f64,
    pub disk_warn_free_percent: f64,
    pub legacy_flat_fields: bool,
}

impl Default for SystemConfig {
    fn default() -> Self {
        Self {
            interval_ms: 2000,
            logs_dir: "/opt/ndefender/logs".into(),
            thermal_path: "/sys/class/thermal/thermal_zone0/temp".into(),
            throttled_path: String::new(),
            temp_warn_c: 80.0,
            disk_warn_free_percent: 5.0,
            legacy_flat_fields: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServicesConfig {
    pub watch: Vec<String>,
    pub allow_restart: Vec<String>,
    pub resync_s: u64,
    pub restart_timeout_s: u64,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        Self {
            watch: [
                "ndefender-aggregator",
                "ndefender-system-controller",
                "ndefender-antsdr-scan",
                "ndefender-remoteid-engine",
                "gpsd",
            ]
            .map(String::from)
            .to_vec(),
            allow_restart: [
                "ndefender-aggregator",
                "ndefender-antsdr-scan",
                "ndefender-remoteid-engine",
                "gpsd",
            ]
            .map(String::from)
            .to_vec(),
            resync_s: 10,
            restart_timeout_s: 90,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkConfig {
    pub enabled: bool,
    pub wifi_interface: String,
    pub resync_s: u64,
    pub scan_max_age_s: u64,
    pub scan_wait_ms: u64,
    pub connect_timeout_s: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            wifi_interface: String::new(),
            resync_s: 10,
            scan_max_age_s: 30,
            scan_wait_ms: 1500,
            connect_timeout_s: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BluetoothConfig {
    pub enabled: bool,
    pub adapter: String,
    pub scan_duration_s: u64,
    pub pair_timeout_s: u64,
}

impl Default for BluetoothConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            adapter: "hci0".into(),
            scan_duration_s: 30,
            pair_timeout_s: 60,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerBackend {
    Auto,
    Upower,
    UpsHatE,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PowerConfig {
    pub backend: PowerBackend,
    pub interval_ms: u64,
    pub i2c_bus: u32,
    pub i2c_addr: u16,
    pub read_timeout_ms: u64,
    pub idle_current_ma: i64,
    pub low_soc_percent: i64,
    pub critical_soc_percent: i64,
}

impl Default for PowerConfig {
    fn default() -> Self {
        Self {
            backend: PowerBackend::Auto,
            interval_ms: 2000,
            i2c_bus: 1,
            i2c_addr: 0x2D,
            read_timeout_ms: 1000,
            idle_current_ma: 50,
            low_soc_percent: 20,
            critical_soc_percent: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpsConfig {
    pub enabled: bool,
    pub gpsd: String,
    pub unit: String,
    pub stale_s: u64,
    pub reconnect_max_s: u64,
}

impl Default for GpsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            gpsd: "127.0.0.1:2947".into(),
            unit: "gpsd.service".into(),
            stale_s: 5,
            reconnect_max_s: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AudioConfig {
    pub enabled: bool,
    pub card: String,
    pub control: String,
    pub output_device: String,
    pub interval_ms: u64,
    pub beep_freq_hz: u32,
    pub beep_duration_ms: u32,
    pub beep_count: u32,
    pub beep_gap_ms: u32,
    pub beep_level: f64,
}

impl Default for AudioConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            card: "default".into(),
            control: "Master".into(),
            output_device: String::new(),
            interval_ms: 5000,
            beep_freq_hz: 880,
            beep_duration_ms: 250,
            beep_count: 2,
            beep_gap_ms: 150,
            beep_level: 0.5,
        }
    }
}

/// `name` → `name.service` unless it already has a unit suffix (system-controller §3.2).
pub fn unit_name(name: &str) -> String {
    const SUFFIXES: [&str; 11] = [
        ".service",
        ".socket",
        ".target",
        ".timer",
        ".mount",
        ".path",
        ".device",
        ".swap",
        ".slice",
        ".scope",
        ".automount",
    ];
    if SUFFIXES.iter().any(|s| name.ends_with(s)) {
        name.to_owned()
    } else {
        format!("{name}.service")
    }
}

impl ControllerConfig {
    /// True when `name` (as requested) is in `services.allow_restart`, compared as unit names.
    pub fn restart_allowed(&self, name: &str) -> bool {
        let unit = unit_name(name);
        self.services.allow_restart.iter().any(|a| unit_name(a) == unit)
    }
}

impl Validate for ControllerConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        fn err(k: &str, m: &str) -> Result<(), (String, String)> {
            Err((k.to_owned(), m.to_owned()))
        }
        self.server.validate("server")?;
        self.audit.validate()?;
        for (k, v) in [
            ("events.system_status_ms", self.events.system_status_ms),
            ("events.max_silence_s", self.events.max_silence_s),
            ("probes.dbus_timeout_ms", self.probes.dbus_timeout_ms),
            ("system.interval_ms", self.system.interval_ms),
            ("services.resync_s", self.services.resync_s),
            ("services.restart_timeout_s", self.services.restart_timeout_s),
            ("network.resync_s", self.network.resync_s),
            ("network.connect_timeout_s", self.network.connect_timeout_s),
            ("bluetooth.scan_duration_s", self.bluetooth.scan_duration_s),
            ("bluetooth.pair_timeout_s", self.bluetooth.pair_timeout_s),
            ("power.interval_ms", self.power.interval_ms),
            ("power.read_timeout_ms", self.power.read_timeout_ms),
            ("gps.stale_s", self.gps.stale_s),
            ("gps.reconnect_max_s", self.gps.reconnect_max_s),
            ("audio.interval_ms", self.audio.interval_ms),
        ] {
            if v == 0 {
                return err(k, "must be positive");
            }
        }
        if self.probes.offline_after == 0 {
            return err("probes.offline_after", "must be at least 1");
        }
        if self.power.i2c_addr > 0x7F {
            return err("power.i2c_addr", "must be a 7-bit address (0x03..0x77)");
        }
        if !(0.0..=1.0).contains(&self.audio.beep_level) {
            return err("audio.beep_level", "must be within 0.0..1.0");
        }
        if !(100..=8000).contains(&self.audio.beep_freq_hz) {
            return err("audio.beep_freq_hz", "must be within 100..8000");
        }
        if !std::path::Path::new(&self.system.logs_dir).is_absolute() {
            return err("system.logs_dir", "must be an absolute path");
        }
        if self.gps.gpsd.is_empty() {
            return err("gps.gpsd", "expected host:port");
        }
        for (k, list) in [
            ("services.watch", &self.services.watch),
            ("services.allow_restart", &self.services.allow_restart),
        ] {
            if let Some(bad) = list.iter().find(|n| !crate::gates::valid_unit_name(n)) {
                return Err((k.to_owned(), format!("invalid unit name {bad:?}")));
            }
        }
        Ok(())
    }
}
