//! `[mqtt]` and `[tak]` of config/aggregator.toml (issue 15).

use ndefender_service::mqtt::{self, Broker};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MqttConfig {
    pub enabled: bool,
    /// `url` (`mqtt://host:port` or `mqtts://host:port` with `ca_file`, optional client
    /// cert), credentials, `topic_prefix`, `qos`, timers: shared with the fleet daemon.
    #[serde(flatten)]
    pub broker: Broker,
    /// Empty: the host name.
    pub kit_id: String,
    pub ha_discovery: bool,
    pub ha_prefix: String,
    /// Messages kept while the broker is unreachable (oldest `events` dropped first).
    pub buffer: usize,
    /// `status` at most this often.
    pub status_interval_ms: u64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            broker: Broker::default(),
            kit_id: String::new(),
            ha_discovery: true,
            ha_prefix: "homeassistant".into(),
            buffer: 10_000,
            status_interval_ms: 1000,
        }
    }
}

ndefender_service::extends_section!(MqttConfig => broker: Broker);

impl MqttConfig {
    /// The configured kit id, or the host name.
    pub fn kit_id(&self) -> String {
        if self.kit_id.is_empty() {
            mqtt::hostname()
        } else {
            self.kit_id.clone()
        }
    }

    pub fn validate(&self) -> Result<(), (String, String)> {
        if !self.enabled {
            return Ok(());
        }
        self.broker.validate("mqtt")?;
        if self.kit_id.contains(['/', '+', '#']) {
            return Err(("mqtt.kit_id".into(), "may not contain '/', '+' or '#'".into()));
        }
        if self.ha_prefix.is_empty() || self.ha_prefix.contains(['+', '#']) {
            return Err(("mqtt.ha_prefix".into(), "a topic prefix without wildcards".into()));
        }
        if self.buffer < 100 {
            return Err(("mqtt.buffer".into(), "must be at least 100".into()));
        }
        if self.status_interval_ms == 0 {
            return Err(("mqtt.status_interval_ms".into(), "must be positive".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TakConfig {
    pub enabled: bool,
    /// `udp://host:port` (multicast or unicast), `tcp://host:port`, `tls://host:port`.
    pub targets: Vec<String>,
    /// PEM CA and client certificate for `tls://` targets.
    pub ca_file: String,
    pub client_cert: String,
    pub client_key: String,
    /// Every contact and the kit are re-sent this often even without changes (CoT is SA:
    /// a map drops what it stops hearing about).
    pub interval_s: f64,
    /// Circular error (m) of RF/FPV contacts drawn at the kit: the emitter is somewhere in
    /// detection range, its position is unknown.
    pub rf_ce_m: f64,
    /// Multicast TTL for udp:// targets.
    pub multicast_ttl: u32,
}

impl Default for TakConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            targets: vec!["udp://239.2.3.1:6969".into()],
            ca_file: String::new(),
            client_cert: String::new(),
            client_key: String::new(),
            interval_s: 5.0,
            rf_ce_m: 3000.0,
            multicast_ttl: 1,
        }
    }
}

pub const TAK_SCHEMES: &[(&str, bool, u16)] = &[("udp", false, 6969), ("tcp", false, 8087), ("tls", true, 8089)];

impl TakConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !self.enabled {
            return Ok(());
        }
        if self.targets.is_empty() {
            return Err(("tak.targets".into(), "at least one target when enabled".into()));
        }
        for t in &self.targets {
            let u = mqtt::parse_url(t, TAK_SCHEMES).map_err(|m| ("tak.targets".to_owned(), m))?;
            if u.tls && self.ca_file.is_empty() {
                return Err((
                    "tak.ca_file".into(),
                    "tls:// targets need the server's CA (PEM file)".into(),
                ));
            }
        }
        if self.client_cert.is_empty() != self.client_key.is_empty() {
            return Err((
                "tak.client_cert".into(),
                "client_cert and client_key go together".into(),
            ));
        }
        if !(self.interval_s.is_finite() && self.interval_s >= 0.5) {
            return Err(("tak.interval_s".into(), "must be at least 0.5 seconds".into()));
        }
        if !(self.rf_ce_m.is_finite() && self.rf_ce_m > 0.0) {
            return Err(("tak.rf_ce_m".into(), "must be a positive distance".into()));
        }
        Ok(())
    }
}
