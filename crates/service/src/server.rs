//! The `[server]` section every daemon shares (the scanner calls it `[api]` and keeps its
//! hub keys in `[ws]`), the `[audit]` section, and the one place the hub's settings are
//! built from them. A daemon picks its own defaults (port, client cap, heartbeat, state
//! directory) through a [`Defaults`] marker type, so the section is one type and the
//! shipped config files still list each daemon's own values.

use crate::auth::TokenConfig;
use ndefender_contract::{ErrorStyle, Source, TimestampField};
use ndefender_hub::HubConfig;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Per-daemon defaults of the shared sections.
pub trait Defaults: Clone + std::fmt::Debug + PartialEq + Send + Sync + 'static {
    const BIND: &'static str;
    const MAX_CLIENTS: usize;
    const HEARTBEAT_MS: u64;
    /// Where the audit trail goes unless `audit.path` says otherwise.
    const AUDIT_PATH: &'static str;
    /// Envelopes queued per WebSocket client, and kept for `since` resumption.
    const CLIENT_QUEUE: usize = 1024;
    const REPLAY_BUFFER: usize = 4096;
}

/// HTTP, credentials and connection keys (`[server]`, the scanner's `[api]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, bound = "")]
pub struct ServerConfig<D: Defaults> {
    pub bind: String,
    pub api_key: String,
    pub max_clients: usize,
    pub allowed_origins: Vec<String>,
    pub cors_max_age_s: u64,
    pub trusted_proxies: Vec<String>,
    /// Role tokens: `{ name, role, sha256, expires_ms? }` (SECURITY.md).
    pub tokens: Vec<TokenConfig>,
    /// Serve a non-loopback `bind` without any credential (refused otherwise).
    pub insecure_lan: bool,
    /// PEM certificate chain and key; both set = HTTPS and WSS.
    pub tls_cert: String,
    pub tls_key: String,
    /// Open TCP connections at most; at the cap the oldest connection that never sent a
    /// byte is closed to make room, so idle sockets cannot lock clients out.
    pub max_connections: usize,
    /// A request's headers (and the first byte of the next request on a kept-alive
    /// connection) must arrive within this.
    pub header_timeout_s: f64,
    #[serde(skip)]
    _d: PhantomData<D>,
}

impl<D: Defaults> Default for ServerConfig<D> {
    fn default() -> Self {
        Self {
            bind: D::BIND.into(),
            api_key: String::new(),
            max_clients: D::MAX_CLIENTS,
            allowed_origins: Vec::new(),
            cors_max_age_s: 86400,
            trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
            tokens: Vec::new(),
            insecure_lan: false,
            tls_cert: String::new(),
            tls_key: String::new(),
            max_connections: 512,
            header_timeout_s: 5.0,
            _d: PhantomData,
        }
    }
}

/// Hub keys (wire §7.7) other than `max_clients`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, bound = "")]
pub struct HubSection<D: Defaults> {
    pub heartbeat_ms: u64,
    pub client_queue: usize,
    pub replay_buffer: usize,
    pub ping_interval_s: f64,
    pub send_timeout_s: f64,
    pub max_frame_bytes: usize,
    pub max_patterns: usize,
    #[serde(skip)]
    _d: PhantomData<D>,
}

impl<D: Defaults> Default for HubSection<D> {
    fn default() -> Self {
        Self {
            heartbeat_ms: D::HEARTBEAT_MS,
            client_queue: D::CLIENT_QUEUE,
            replay_buffer: D::REPLAY_BUFFER,
            ping_interval_s: 20.0,
            send_timeout_s: 10.0,
            max_frame_bytes: 65536,
            max_patterns: 100,
            _d: PhantomData,
        }
    }
}

/// The aggregator's and the controller's `[server]`: both parts in one section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, bound = "")]
pub struct ServerSection<D: Defaults> {
    #[serde(flatten)]
    pub http: ServerConfig<D>,
    #[serde(flatten)]
    pub hub: HubSection<D>,
}

impl<D: Defaults> Default for ServerSection<D> {
    fn default() -> Self {
        Self {
            http: ServerConfig::default(),
            hub: HubSection::default(),
        }
    }
}

impl<D: Defaults> std::ops::Deref for ServerSection<D> {
    type Target = ServerConfig<D>;
    fn deref(&self) -> &ServerConfig<D> {
        &self.http
    }
}
impl<D: Defaults> std::ops::DerefMut for ServerSection<D> {
    fn deref_mut(&mut self) -> &mut ServerConfig<D> {
        &mut self.http
    }
}

/// Declares a daemon's [`Defaults`] marker type: its port, client cap, heartbeat and audit
/// trail, the values its shipped config file lists for the shared sections, and optionally
/// its own WebSocket queue sizes (`client_queue`, `replay_buffer`; else the trait's).
#[macro_export]
macro_rules! section_defaults {
    ($(#[$m:meta])* $name:ident {
        bind: $bind:expr,
        max_clients: $max_clients:expr,
        heartbeat_ms: $heartbeat_ms:expr,
        audit_path: $audit_path:expr
        $(, client_queue: $client_queue:expr)?
        $(, replay_buffer: $replay_buffer:expr)?
        $(,)?
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name;

        impl $crate::server::Defaults for $name {
            const BIND: &'static str = $bind;
            const MAX_CLIENTS: usize = $max_clients;
            const HEARTBEAT_MS: u64 = $heartbeat_ms;
            const AUDIT_PATH: &'static str = $audit_path;
            $(const CLIENT_QUEUE: usize = $client_queue;)?
            $(const REPLAY_BUFFER: usize = $replay_buffer;)?
        }
    };
}

/// `[limits]` of the aggregator and the scanner: commands per client and minute, and the
/// dangerous ones (counted apart).
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

/// `[log]`: the log filter a daemon uses when `RUST_LOG` is unset (the scanner, the RemoteID
/// engine).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// Filter used when `RUST_LOG` is unset.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into() }
    }
}

/// A daemon's section that flattens a shared one (the aggregator's `[server]` with its
/// `dashboard` key, the scanner's `[api]`) reads and writes the shared keys as its own:
/// `extends_section!(ApiConfig => server: ServerConfig<Defaults>)` makes `cfg.api.bind` work.
#[macro_export]
macro_rules! extends_section {
    ($outer:ty => $field:ident : $inner:ty) => {
        impl ::std::ops::Deref for $outer {
            type Target = $inner;
            fn deref(&self) -> &$inner {
                &self.$field
            }
        }
        impl ::std::ops::DerefMut for $outer {
            fn deref_mut(&mut self) -> &mut $inner {
                &mut self.$field
            }
        }
    };
}

/// `[audit]`: the command trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, bound = "")]
pub struct AuditConfig<D: Defaults> {
    pub path: PathBuf,
    /// The file is renamed to `<path>.1` (replacing it) once it reaches this size.
    pub max_bytes: u64,
    #[serde(skip)]
    _d: PhantomData<D>,
}

impl<D: Defaults> Default for AuditConfig<D> {
    fn default() -> Self {
        Self {
            path: D::AUDIT_PATH.into(),
            max_bytes: 4 * 1024 * 1024,
            _d: PhantomData,
        }
    }
}

type Invalid = Result<(), (String, String)>;

fn err(section: &str, key: &str, m: impl Into<String>) -> Invalid {
    Err((format!("{section}.{key}"), m.into()))
}

impl<D: Defaults> ServerConfig<D> {
    /// Range checks, and the refusal to serve a non-loopback address without credentials.
    pub fn validate(&self, section: &str) -> Invalid {
        let Ok(addr) = self.bind.parse::<SocketAddr>() else {
            return err(section, "bind", format!("expected host:port, e.g. {}", D::BIND));
        };
        if self.max_clients == 0 {
            return err(section, "max_clients", "must be at least 1");
        }
        if self.max_connections < 2 {
            return err(section, "max_connections", "must be at least 2");
        }
        if !(self.header_timeout_s.is_finite() && self.header_timeout_s > 0.0) {
            return err(section, "header_timeout_s", "must be a positive number of seconds");
        }
        if self.tls_cert.is_empty() != self.tls_key.is_empty() {
            return err(section, "tls_cert", "tls_cert and tls_key are set together");
        }
        for (i, t) in self.tokens.iter().enumerate() {
            t.validate().or_else(|m| err(section, &format!("tokens[{i}]"), m))?;
            if self.tokens[..i].iter().any(|o| o.name == t.name) {
                return err(
                    section,
                    &format!("tokens[{i}].name"),
                    format!("{:?} is used twice", t.name),
                );
            }
        }
        if !addr.ip().is_loopback() && !self.has_credentials() && !self.insecure_lan {
            return err(
                section,
                "bind",
                format!(
                    "{} is not loopback and no credential is configured: add {section}.tokens \
                     (ndefender-token prints one) or {section}.api_key, or set {section}.insecure_lan = true",
                    self.bind
                ),
            );
        }
        Ok(())
    }

    pub fn has_credentials(&self) -> bool {
        !self.api_key.is_empty() || !self.tokens.is_empty()
    }

    pub fn tls(&self) -> bool {
        !self.tls_cert.is_empty()
    }
}

impl<D: Defaults> HubSection<D> {
    pub fn validate(&self, section: &str) -> Invalid {
        if self.client_queue == 0 {
            return err(section, "client_queue", "must be at least 1");
        }
        for (k, v) in [
            ("ping_interval_s", self.ping_interval_s),
            ("send_timeout_s", self.send_timeout_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return err(section, k, "must be a positive number of seconds");
            }
        }
        Ok(())
    }

    /// The hub's settings. Credentials and Origin are checked by the conventions layer
    /// before a WebSocket reaches the hub, so the hub itself is told to let them through.
    pub fn hub_config<E: Defaults>(
        &self,
        server: &ServerConfig<E>,
        source: Source,
        time_field: TimestampField,
        error_style: ErrorStyle,
    ) -> HubConfig {
        HubConfig {
            source,
            time_field,
            error_style,
            max_clients: server.max_clients,
            client_queue: self.client_queue,
            replay_buffer: self.replay_buffer,
            heartbeat_ms: self.heartbeat_ms,
            ping_interval_s: self.ping_interval_s,
            send_timeout_s: self.send_timeout_s,
            max_frame_bytes: self.max_frame_bytes,
            max_patterns: self.max_patterns,
            api_key: String::new(),
            allowed_origins: vec!["*".to_owned()],
        }
    }
}

impl<D: Defaults> ServerSection<D> {
    pub fn validate(&self, section: &str) -> Invalid {
        self.http.validate(section)?;
        self.hub.validate(section)
    }

    pub fn hub_config(&self, source: Source, time_field: TimestampField, error_style: ErrorStyle) -> HubConfig {
        self.hub.hub_config(&self.http, source, time_field, error_style)
    }
}

impl<D: Defaults> AuditConfig<D> {
    pub fn validate(&self) -> Invalid {
        if !self.path.is_absolute() {
            return err("audit", "path", "must be an absolute path");
        }
        if self.max_bytes < 4096 {
            return err("audit", "max_bytes", "must be at least 4096");
        }
        Ok(())
    }
}
