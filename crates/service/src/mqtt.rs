//! The MQTT broker connection shared by the aggregator's uplink and the fleet daemon
//! (issue 15): the `[mqtt]` connection keys, their validation, and the rumqttc options
//! built from them; plus the TLS client configuration (PEM CA, optional client
//! certificate) that the TAK output's `tls://` targets use as well.

use rumqttc::{MqttOptions, QoS, Transport};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// Where the broker is and how to authenticate (part of [`Broker`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    /// `mqtt://host:port` (default port 1883) or `mqtts://host:port` (default 8883).
    pub url: String,
    pub username: String,
    pub password: String,
    /// PEM CA bundle that signs the broker's certificate; required for `mqtts://`.
    pub ca_file: String,
    /// PEM client certificate and key (mutual TLS); both or neither.
    pub client_cert: String,
    pub client_key: String,
}

/// The parsed `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

/// Parses `scheme://host[:port]` for the given schemes (`(scheme, tls, default port)`).
pub fn parse_url(url: &str, schemes: &[(&str, bool, u16)]) -> Result<BrokerUrl, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("expected scheme://host:port, got {url:?}"))?;
    let (tls, default_port) = schemes
        .iter()
        .find(|(s, _, _)| *s == scheme)
        .map(|(_, t, p)| (*t, *p))
        .ok_or_else(|| {
            let names: Vec<&str> = schemes.iter().map(|(s, _, _)| *s).collect();
            format!("unsupported scheme {scheme:?}; expected one of {}", names.join(", "))
        })?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') || rest.contains('@') {
        return Err(format!(
            "expected {scheme}://host:port without path or user, got {url:?}"
        ));
    }
    // `[v6]:port`, `host:port` or `host`.
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r.split_once(']').ok_or_else(|| format!("unclosed '[' in {url:?}"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("bad port in {url:?}"))?,
            None if after.is_empty() => default_port,
            None => return Err(format!("bad host in {url:?}")),
        };
        (h.to_owned(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| format!("bad port in {url:?}"))?),
            None => (rest.to_owned(), default_port),
        }
    };
    if host.is_empty() || port == 0 {
        return Err(format!("expected a host and a non-zero port in {url:?}"));
    }
    Ok(BrokerUrl { tls, host, port })
}

/// True for `localhost` and loopback addresses.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .map(|a| a.is_loopback())
            .unwrap_or(false)
}

pub const MQTT_SCHEMES: &[(&str, bool, u16)] = &[("mqtt", false, 1883), ("mqtts", true, 8883)];

/// The `[mqtt]` keys the aggregator's uplink and the fleet daemon share: the broker, the
/// credentials and TLS files, the topic prefix, the QoS and the connection timers. Each
/// daemon flattens it into its own `[mqtt]` section next to its own keys (the config
/// loader still names an unknown key in a flattened section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Broker {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// Topics live under `<topic_prefix>/<kit_id>/`.
    pub topic_prefix: String,
    /// 0, 1 or 2 for every publish and subscription.
    pub qos: u8,
    pub keep_alive_s: u64,
    /// Reconnect back-off doubles from 0.5 s up to this.
    pub reconnect_max_s: f64,
}

impl Default for Broker {
    fn default() -> Self {
        Self {
            endpoint: Endpoint::default(),
            topic_prefix: "ndefender".into(),
            qos: 1,
            keep_alive_s: 15,
            reconnect_max_s: 30.0,
        }
    }
}

crate::extends_section!(Broker => endpoint: Endpoint);

impl Broker {
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The configured QoS as rumqttc's.
    pub fn qos(&self) -> QoS {
        match self.qos {
            0 => QoS::AtMostOnce,
            2 => QoS::ExactlyOnce,
            _ => QoS::AtLeastOnce,
        }
    }

    /// Checks the keys; `Err((key, message))` with the key under `section`.
    pub fn validate(&self, section: &str) -> Result<BrokerUrl, (String, String)> {
        let k = |name: &str| format!("{section}.{name}");
        let u = self.endpoint.validate(section)?;
        let p = &self.topic_prefix;
        if p.is_empty() || p.contains(['+', '#']) || p.starts_with('/') || p.ends_with('/') {
            return Err((
                k("topic_prefix"),
                "a topic prefix without wildcards or leading/trailing '/'".into(),
            ));
        }
        if self.qos > 2 {
            return Err((k("qos"), "must be 0, 1 or 2".into()));
        }
        if !(self.reconnect_max_s.is_finite() && self.reconnect_max_s >= 0.5) {
            return Err((k("reconnect_max_s"), "must be at least 0.5 seconds".into()));
        }
        Ok(u)
    }
}

impl Default for Endpoint {
    /// A broker on this machine without credentials.
    fn default() -> Self {
        Self {
            url: "mqtt://127.0.0.1:1883".into(),
            username: String::new(),
            password: String::new(),
            ca_file: String::new(),
            client_cert: String::new(),
            client_key: String::new(),
        }
    }
}

impl Endpoint {
    /// Checks the keys; `Err((key, message))` with the key under `section`.
    pub fn validate(&self, section: &str) -> Result<BrokerUrl, (String, String)> {
        let k = |name: &str| format!("{section}.{name}");
        let u = parse_url(&self.url, MQTT_SCHEMES).map_err(|m| (k("url"), m))?;
        if u.tls && self.ca_file.is_empty() {
            return Err((k("ca_file"), "mqtts:// needs the broker's CA (PEM file)".into()));
        }
        if self.client_cert.is_empty() != self.client_key.is_empty() {
            return Err((k("client_cert"), "client_cert and client_key go together".into()));
        }
        if !self.client_cert.is_empty() && !u.tls {
            return Err((k("client_cert"), "a client certificate needs mqtts://".into()));
        }
        if !self.password.is_empty() && self.username.is_empty() {
            return Err((k("username"), "a password needs a username".into()));
        }
        // Secure by default: a broker beyond loopback only with credentials.
        if !is_loopback(&u.host) && self.username.is_empty() && self.client_cert.is_empty() {
            return Err((
                k("username"),
                "a broker beyond loopback needs credentials (username/password or a client certificate)".into(),
            ));
        }
        Ok(u)
    }

    /// rumqttc options for this endpoint: credentials, TLS, keep-alive, the last will.
    /// Reads the PEM files (call at start-up, not on a hot path).
    pub fn options(
        &self,
        client_id: &str,
        keep_alive_s: u64,
        will: Option<rumqttc::LastWill>,
    ) -> Result<MqttOptions, String> {
        let u = parse_url(&self.url, MQTT_SCHEMES)?;
        let mut o = MqttOptions::new(client_id, u.host, u.port);
        o.set_keep_alive(std::time::Duration::from_secs(keep_alive_s.max(5)));
        o.set_clean_session(true);
        o.set_max_packet_size(1 << 20, 1 << 20);
        if !self.username.is_empty() {
            o.set_credentials(self.username.clone(), self.password.clone());
        }
        if let Some(w) = will {
            o.set_last_will(w);
        }
        if u.tls {
            let cfg = tls_client_config(&self.ca_file, &self.client_cert, &self.client_key)?;
            o.set_transport(Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(cfg)));
        }
        Ok(o)
    }
}

/// A rustls client configuration trusting the CAs in `ca_file` (PEM), with the client
/// certificate chain and key when both paths are non-empty.
pub fn tls_client_config(ca_file: &str, cert_file: &str, key_file: &str) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| format!("cannot read CA file {ca_file}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad PEM in CA file {ca_file}: {e}"))?;
    if cas.is_empty() {
        return Err(format!("no certificate in CA file {ca_file}"));
    }
    for c in cas {
        roots
            .add(c)
            .map_err(|e| format!("bad CA certificate in {ca_file}: {e}"))?;
    }
    let b = ClientConfig::builder().with_root_certificates(roots);
    let cfg = if cert_file.is_empty() {
        b.with_no_client_auth()
    } else {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
            .map_err(|e| format!("cannot read client certificate {cert_file}: {e}"))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("bad PEM in {cert_file}: {e}"))?;
        let key =
            PrivateKeyDer::from_pem_file(key_file).map_err(|e| format!("cannot read client key {key_file}: {e}"))?;
        b.with_client_auth_cert(chain, key)
            .map_err(|e| format!("client certificate/key rejected: {e}"))?
    };
    Ok(Arc::new(cfg))
}

/// Topic levels may not contain `/`, `+`, `#` (nor NUL); contact ids come from the air,
/// so every byte outside `[A-Za-z0-9._:-]` is written as `%XX`. Reversible, see [`topic_unescape`].
pub fn topic_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Inverse of [`topic_escape`]; `None` when the level is not a valid escape.
pub fn topic_unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The machine's host name (the default kit id), from the kernel.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "ndefender".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("mqtt://127.0.0.1", MQTT_SCHEMES);
        assert_eq!(
            u,
            Ok(BrokerUrl {
                tls: false,
                host: "127.0.0.1".into(),
                port: 1883
            })
        );
        let u = parse_url("mqtts://[::1]:9883", MQTT_SCHEMES);
        assert_eq!(
            u,
            Ok(BrokerUrl {
                tls: true,
                host: "::1".into(),
                port: 9883
            })
        );
        assert!(parse_url("http://x:1", MQTT_SCHEMES).is_err());
        assert!(parse_url("mqtt://x:0", MQTT_SCHEMES).is_err());
        assert!(parse_url("mqtt://u@x:1", MQTT_SCHEMES).is_err());
    }

    #[test]
    fn secure_by_default() {
        let mut e = Endpoint::default();
        assert!(e.validate("mqtt").is_ok());
        e.url = "mqtt://broker.example:1883".into();
        assert_eq!(e.validate("mqtt").map_err(|(k, _)| k), Err("mqtt.username".to_owned()));
        e.username = "kit".into();
        e.password = "pw".into();
        assert!(e.validate("mqtt").is_ok());
        e.url = "mqtts://broker.example".into();
        assert_eq!(e.validate("mqtt").map_err(|(k, _)| k), Err("mqtt.ca_file".to_owned()));
    }

    /// Each daemon's `[mqtt]` flattens [`Broker`]: its keys sit beside the daemon's own,
    /// an unknown key is still named, and the checks name the key under the section.
    #[test]
    fn broker_keys_flatten_into_a_section() -> Result<(), crate::config::ConfigError> {
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        struct Mqtt {
            enabled: bool,
            #[serde(flatten)]
            broker: Broker,
        }
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        struct Cfg {
            mqtt: Mqtt,
        }
        impl crate::config::Validate for Cfg {
            fn validate(&self) -> Result<(), (String, String)> {
                self.mqtt.broker.validate("mqtt").map(|_| ())
            }
        }
        let load = |t: &str| crate::config::load_str::<Cfg>(t, "test", Vec::new());
        let c = load("[mqtt]\nenabled = true\nurl = \"mqtt://[::1]:1884\"\nqos = 2\n")?;
        assert!(c.mqtt.enabled);
        assert_eq!(c.mqtt.broker.url, "mqtt://[::1]:1884");
        assert_eq!(c.mqtt.broker.qos(), QoS::ExactlyOnce);
        assert_eq!(c.mqtt.broker.topic_prefix, "ndefender");
        let e = load("[mqtt]\nurll = \"mqtt://x\"\n").err().map(|e| e.0);
        assert_eq!(e.as_deref(), Some("unknown key \"mqtt.urll\""));
        let e = load("[mqtt]\nqos = 3\n").err().map(|e| e.0).unwrap_or_default();
        assert!(e.contains("\"mqtt.qos\""), "{e}");
        let e = load("[mqtt]\ntopic_prefix = \"a/#\"\n")
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(e.contains("\"mqtt.topic_prefix\""), "{e}");
        Ok(())
    }

    #[test]
    fn escape_round_trip() {
        for s in ["rid-1581F5FJD", "a/b+c#d", "é %", ""] {
            let e = topic_escape(s);
            assert!(!e.contains(['/', '+', '#']));
            assert_eq!(topic_unescape(&e).as_deref(), Some(s));
        }
    }
}
