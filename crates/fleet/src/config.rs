//! `config/fleet.toml`: `[server]` (as the aggregator's), `[mqtt]` (the broker the kits
//! publish to) and `[fleet]`. The built-in defaults equal the repository file.

use ndefender_service::config::Validate;
use ndefender_service::mqtt::Endpoint;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetConfig {
    pub server: ServerConfig,
    pub mqtt: MqttConfig,
    pub fleet: FleetSection,
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
            bind: "127.0.0.1:8003".into(),
            api_key: String::new(),
            max_clients: 64,
            heartbeat_ms: 2000,
            allowed_origins: vec!["*".into()],
            cors_max_age_s: 86400,
            client_queue: 4096,
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
pub struct MqttConfig {
    pub url: String,
    pub username: String,
    pub password: String,
    pub ca_file: String,
    pub client_cert: String,
    pub client_key: String,
    /// Empty: `ndefender-fleet-<host name>`.
    pub client_id: String,
    pub topic_prefix: String,
    pub qos: u8,
    pub keep_alive_s: u64,
    pub reconnect_max_s: f64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        let e = Endpoint::loopback();
        Self {
            url: e.url,
            username: e.username,
            password: e.password,
            ca_file: e.ca_file,
            client_cert: e.client_cert,
            client_key: e.client_key,
            client_id: String::new(),
            topic_prefix: "ndefender".into(),
            qos: 1,
            keep_alive_s: 15,
            reconnect_max_s: 30.0,
        }
    }
}

impl MqttConfig {
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            url: self.url.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        }
    }
}

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
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return err("server.bind", "expected host:port, e.g. 127.0.0.1:8003");
        }
        if self.server.max_clients == 0 || self.server.client_queue == 0 {
            return err("server.max_clients", "max_clients and client_queue must be at least 1");
        }
        for (k, v) in [
            ("server.ping_interval_s", self.server.ping_interval_s),
            ("server.send_timeout_s", self.server.send_timeout_s),
            ("fleet.contact_ttl_s", self.fleet.contact_ttl_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return err(k, "must be a positive number of seconds");
            }
        }
        self.mqtt.endpoint().validate("mqtt")?;
        let p = &self.mqtt.topic_prefix;
        if p.is_empty() || p.contains(['+', '#']) || p.starts_with('/') || p.ends_with('/') {
            return err(
                "mqtt.topic_prefix",
                "a topic prefix without wildcards or leading/trailing '/'",
            );
        }
        if self.mqtt.qos > 2 {
            return err("mqtt.qos", "must be 0, 1 or 2");
        }
        if !(self.mqtt.reconnect_max_s.is_finite() && self.mqtt.reconnect_max_s >= 0.5) {
            return err("mqtt.reconnect_max_s", "must be at least 0.5 seconds");
        }
        if self.fleet.update_min_interval_ms == 0 {
            return err("fleet.update_min_interval_ms", "must be positive");
        }
        Ok(())
    }
}
