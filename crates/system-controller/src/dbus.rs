//! The one system-bus connection (system-controller §1): connected from
//! `DBUS_SYSTEM_BUS_ADDRESS` when set, reconnected with backoff 1→30 s, and a
//! `NameOwnerChanged` watch that re-probes a backend as soon as it comes or goes.

use crate::health::Probe;
use crate::state::Controller;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use zbus::{Connection, DBusError};

pub const SYSTEMD: &str = "org.freedesktop.systemd1";
pub const NM: &str = "org.freedesktop.NetworkManager";
pub const BLUEZ: &str = "org.bluez";
pub const UPOWER: &str = "org.freedesktop.UPower";
pub const LOGIND: &str = "org.freedesktop.login1";
const WATCHED: [&str; 5] = [SYSTEMD, NM, BLUEZ, UPOWER, LOGIND];

/// Why a D-Bus call failed, as the stable codes of §6.5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbusFail {
    /// No bus, or the bus went away.
    NoBus,
    /// The service's name has no owner.
    Unavailable,
    Timeout,
    PermissionDenied,
    /// Any other error reply, with its D-Bus error name.
    Failed(String),
}

impl DbusFail {
    /// The code for a backend, e.g. `networkmanager_unavailable`.
    pub fn code(&self, backend: &'static str) -> String {
        match self {
            DbusFail::NoBus => "dbus_unavailable".into(),
            DbusFail::Unavailable => format!("{backend}_unavailable"),
            DbusFail::Timeout => "dbus_timeout".into(),
            DbusFail::PermissionDenied => "permission_denied".into(),
            DbusFail::Failed(_) => format!("{backend}_error"),
        }
    }
    pub fn error_name(&self) -> &str {
        match self {
            DbusFail::Failed(n) => n,
            _ => "",
        }
    }
}

impl From<zbus::Error> for DbusFail {
    fn from(e: zbus::Error) -> Self {
        let name = match &e {
            zbus::Error::InputOutput(_) => return DbusFail::NoBus,
            zbus::Error::MethodError(n, _, _) => n.as_str().to_owned(),
            zbus::Error::FDO(f) => f.name().as_str().to_owned(),
            other => format!("org.freedesktop.zbus.Error.{other}"),
        };
        match name.as_str() {
            "org.freedesktop.DBus.Error.ServiceUnknown"
            | "org.freedesktop.DBus.Error.NameHasNoOwner"
            | "org.freedesktop.DBus.Error.NoReply"
            | "org.freedesktop.DBus.Error.Disconnected" => DbusFail::Unavailable,
            "org.freedesktop.DBus.Error.AccessDenied"
            | "org.freedesktop.PolicyKit1.Error.NotAuthorized"
            | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" => DbusFail::PermissionDenied,
            "org.freedesktop.DBus.Error.Timeout" | "org.freedesktop.DBus.Error.TimedOut" => DbusFail::Timeout,
            _ => DbusFail::Failed(name),
        }
    }
}

impl From<zbus::fdo::Error> for DbusFail {
    fn from(e: zbus::fdo::Error) -> Self {
        DbusFail::from(zbus::Error::from(e))
    }
}

/// Runs `fut` with a deadline; a late answer is a timeout.
pub async fn call<T, E: Into<DbusFail>>(
    d: Duration,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, DbusFail> {
    match tokio::time::timeout(d, fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(DbusFail::Timeout),
    }
}

/// The shared connection and the per-backend wake-ups.
#[derive(Clone)]
pub struct Bus {
    rx: watch::Receiver<Option<Connection>>,
    kicks: Arc<HashMap<&'static str, Arc<Notify>>>,
}

impl Bus {
    pub fn current(&self) -> Option<Connection> {
        self.rx.borrow().clone()
    }

    /// Waits until a connection is up, returning it.
    pub async fn connected(&self) -> Connection {
        let mut rx = self.rx.clone();
        loop {
            if let Some(c) = rx.borrow_and_update().clone() {
                return c;
            }
            if rx.changed().await.is_err() {
                // The supervisor is gone (shutdown): wait forever, the caller is cancelled.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Resolves when the connection differs from `conn` (lost or replaced).
    pub async fn changed_from(&self, conn: &Connection) {
        let mut rx = self.rx.clone();
        loop {
            let same = rx
                .borrow_and_update()
                .as_ref()
                .is_some_and(|c| c.unique_name() == conn.unique_name());
            if !same {
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Woken when `name` appears on or leaves the bus.
    pub fn kick(&self, name: &str) -> Arc<Notify> {
        self.kicks.get(name).cloned().unwrap_or_else(|| Arc::new(Notify::new()))
    }
}

/// Probes fed by the bus: they all show `dbus_unavailable` while it is down.
const DBUS_PROBES: [Probe; 4] = [Probe::Services, Probe::Network, Probe::Bluetooth, Probe::Power];

/// Starts the supervisor; it runs until `stop` resolves.
pub fn start(ctl: Controller, stop: impl std::future::Future<Output = ()> + Send + 'static) -> Bus {
    let (tx, rx) = watch::channel(None);
    let kicks: HashMap<&'static str, Arc<Notify>> = WATCHED.iter().map(|n| (*n, Arc::new(Notify::new()))).collect();
    let bus = Bus {
        rx,
        kicks: Arc::new(kicks),
    };
    let b = bus.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = supervise(ctl, tx, b) => {}
            _ = stop => {}
        }
    });
    bus
}

async fn connect(timeout: Duration) -> Result<Connection, String> {
    match tokio::time::timeout(timeout, zbus::connection::Builder::system().build()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timeout".into()),
    }
}

async fn supervise(ctl: Controller, tx: watch::Sender<Option<Connection>>, bus: Bus) {
    // Reconnect delays 1 s doubling to 30 s.
    let mut backoff = ndefender_service::Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let timeout = Duration::from_millis(ctl.cfg().probes.dbus_timeout_ms);
    loop {
        match connect(timeout).await {
            Ok(conn) => {
                tracing::info!("system bus connected");
                backoff.reset();
                let _ = tx.send(Some(conn.clone()));
                for k in bus.kicks.values() {
                    k.notify_one();
                }
                watch_names(&conn, &bus).await;
                tracing::warn!("system bus lost");
                let _ = tx.send(None);
                mark_down(&ctl);
            }
            Err(e) => {
                tracing::debug!(error = %e, "system bus unreachable");
                let _ = tx.send(None);
                mark_down(&ctl);
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

fn mark_down(ctl: &Controller) {
    ctl.mutate(|st| {
        for p in DBUS_PROBES {
            if p == Probe::Power && !crate::probes::power::uses_dbus(st) {
                continue;
            }
            st.probe_failed(p, "dbus_unavailable");
        }
    });
}

/// Relays NameOwnerChanged for the watched names until the connection ends.
async fn watch_names(conn: &Connection, bus: &Bus) {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender("org.freedesktop.DBus")
        .interface("org.freedesktop.DBus")
        .member("NameOwnerChanged")
        .build();
    let stream = match rule {
        Ok(r) => zbus::MessageStream::for_match_rule(r, conn, None).await,
        Err(e) => Err(e),
    };
    let mut stream = match stream {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch bus names");
            conn.closed().await;
            return;
        }
    };
    loop {
        tokio::select! {
            _ = conn.closed() => return,
            m = stream.next() => match m {
                Some(Ok(msg)) => {
                    if let Ok((name, _, _)) = msg.body().deserialize::<(String, String, String)>() {
                        if let Some(k) = bus.kicks.get(name.as_str()) {
                            tracing::debug!(%name, "bus name owner changed");
                            k.notify_one();
                        }
                    }
                }
                Some(Err(_)) => {}
                None => return,
            },
        }
    }
}

/// A uncached proxy on `path`/`iface` of `dest`.
pub async fn proxy(
    conn: &Connection,
    dest: &'static str,
    path: &str,
    iface: &'static str,
) -> Result<zbus::Proxy<'static>, DbusFail> {
    let path = zbus::OwnedObjectPath::try_from(path.to_owned()).map_err(|e| DbusFail::Failed(e.to_string()))?;
    zbus::proxy::Builder::<zbus::Proxy<'static>>::new(conn)
        .destination(dest)
        .path(path)
        .interface(iface)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(DbusFail::from)
}

/// PropertiesChanged (and ObjectManager signals) under a path namespace.
pub async fn signal_stream(
    conn: &Connection,
    path_namespace: &'static str,
    interface: &'static str,
    member: Option<&'static str>,
) -> Result<zbus::MessageStream, DbusFail> {
    let mut b = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(interface)
        .path_namespace(path_namespace);
    if let Some(m) = member {
        b = b.member(m);
    }
    let rule = b.build().map_err(DbusFail::from)?;
    zbus::MessageStream::for_match_rule(rule, conn, None)
        .await
        .map_err(DbusFail::from)
}
