//! `config/fleet.toml`: `[server]` (the section every daemon shares), `[mqtt]` (the broker
//! the kits publish to) and `[fleet]`. The built-in defaults equal the repository file.

use ndefender_service::config::Validate;
use ndefender_service::mqtt::Broker;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetConfig {
    pub server: ServerConfig,
    pub mqtt: MqttConfig,
    pub fleet: FleetSection,
}

ndefender_service::section_defaults! {
    /// The fleet daemon's defaults of the shared sections.
    Defaults {
        bind: "127.0.0.1:8003",
        max_clients: 64,
        heartbeat_ms: 2000,
        // Unused: the fleet view takes no commands.
        audit_path: "/var/lib/ndefender/fleet/audit.jsonl",
        // A fleet client carries many kits' updates.
        client_queue: 4096,
    }
}

/// `[server]`: the section every daemon shares (ndefender-service).
pub type ServerConfig = ndefender_service::server::ServerSection<Defaults>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MqttConfig {
    /// `url`, credentials, `topic_prefix`, `qos`, timers: as the aggregator's uplink.
    #[serde(flatten)]
    pub broker: Broker,
    /// Empty: `ndefender-fleet-<host name>`.
    pub client_id: String,
}

ndefender_service::extends_section!(MqttConfig => broker: Broker);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetSection {
    /// A kit's contact not updated for this long leaves the fleet view (covers a kit
    /// that died without clearing its retained contacts, or a clear missed in an outage).
    pub contact_ttl_s: f64,
    /// SYSTEM_UPDATE at most this often.
    pub update_min_interval_ms: u64,
}

impl Default for FleetSection {
    fn default() -> Self {
        Self {
            contact_ttl_s: 180.0,
            update_min_interval_ms: 1000,
        }
    }
}

impl Validate for FleetConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        fn err(k: &str, m: &str) -> Result<(), (String, String)> {
            Err((k.to_owned(), m.to_owned()))
        }
        self.server.validate("server")?;
        if !(self.fleet.contact_ttl_s.is_finite() && self.fleet.contact_ttl_s > 0.0) {
            return err("fleet.contact_ttl_s", "must be a positive number of seconds");
        }
        self.mqtt.broker.validate("mqtt")?;
        if self.fleet.update_min_interval_ms == 0 {
            return err("fleet.update_min_interval_ms", "must be positive");
        }
        Ok(())
    }
}
