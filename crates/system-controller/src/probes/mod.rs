//! The probes: each one owns a section, delivers into the [`Controller`] and
//! never blocks the executor.

pub mod audio;
pub mod bluetooth;
pub mod gps;
pub mod logind;
pub mod network;
pub mod power;
pub mod procfs;
pub mod system;
pub mod systemd;
pub mod ups_hat;

use crate::dbus::{signal_stream, Bus, DbusFail};
use crate::health::Probe;
use crate::state::Controller;
use std::future::Future;
use std::time::Duration;
use zbus::Connection;

/// How a D-Bus session ended.
pub enum SessionEnd {
    /// The backend came or went: start over at once.
    Restart,
    Failed(DbusFail),
}

impl From<DbusFail> for SessionEnd {
    fn from(e: DbusFail) -> Self {
        SessionEnd::Failed(e)
    }
}

/// The signal streams of a probe. They live as long as the connection: zbus
/// shares one receiver per match rule, and dropping a stream and re-adding the
/// same rule right away can leave the new stream deaf, so sessions reuse them.
pub type Streams = Vec<zbus::MessageStream>;

/// The `PropertiesChanged` signals of the objects under `path`, the push most probes re-read on.
pub async fn properties_changed(conn: &Connection, path: &'static str) -> Result<zbus::MessageStream, DbusFail> {
    signal_stream(conn, path, "org.freedesktop.DBus.Properties", Some("PropertiesChanged")).await
}

/// The `on_fail` of [`run_dbus_probe`] for a probe that records a failure on its own health
/// entry, with the error code named after its backend.
pub fn record_failure(ctl: Controller, probe: Probe, backend: &'static str) -> impl FnMut(&DbusFail) {
    move |e| {
        let code = e.code(backend);
        ctl.mutate(|st| st.probe_failed(probe, &code));
    }
}

/// A property that may legitimately be absent: any error other than a dead
/// backend, a lost bus or a timeout means "unknown".
pub async fn opt_prop<T>(p: &zbus::Proxy<'_>, name: &str, d: Duration) -> Result<Option<T>, DbusFail>
where
    T: serde::de::DeserializeOwned + zbus::Type,
{
    match crate::dbus::call(d, p.get_property::<T>(name)).await {
        Ok(v) => Ok(Some(v)),
        Err(e @ (DbusFail::NoBus | DbusFail::Unavailable | DbusFail::Timeout)) => Err(e),
        Err(_) => Ok(None),
    }
}

/// Runs a D-Bus probe forever: streams per connection, then a session per
/// backend appearance; after a failure, `on_fail` records it and the next
/// attempt waits for the resync period or for the backend's name to reappear.
pub async fn run_dbus_probe<M, MF, S, SF, F>(
    bus: Bus,
    name: &'static str,
    resync: Duration,
    mut make: M,
    mut session: S,
    mut on_fail: F,
) where
    M: FnMut(Connection) -> MF,
    MF: Future<Output = Result<Streams, DbusFail>>,
    S: FnMut(Connection, Streams) -> SF,
    SF: Future<Output = (SessionEnd, Streams)>,
    F: FnMut(&DbusFail),
{
    let kick = bus.kick(name);
    loop {
        let conn = bus.connected().await;
        let made = tokio::select! {
            r = make(conn.clone()) => r,
            _ = bus.changed_from(&conn) => continue,
        };
        let mut streams = match made {
            Ok(s) => s,
            Err(e) => {
                if e != DbusFail::NoBus {
                    on_fail(&e);
                }
                tokio::select! {
                    _ = tokio::time::sleep(resync) => {}
                    _ = bus.changed_from(&conn) => {}
                }
                continue;
            }
        };
        loop {
            let (end, s) = tokio::select! {
                r = session(conn.clone(), streams) => r,
                _ = bus.changed_from(&conn) => break,
            };
            streams = s;
            match end {
                SessionEnd::Restart => continue,
                // The supervisor reports a lost bus itself.
                SessionEnd::Failed(DbusFail::NoBus) => {
                    bus.changed_from(&conn).await;
                    break;
                }
                SessionEnd::Failed(e) => {
                    tracing::debug!(probe = name, error = ?e, "probe failed");
                    on_fail(&e);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(resync) => {}
                _ = kick.notified() => {}
                _ = bus.changed_from(&conn) => break,
            }
        }
    }
}

/// Waits for the next reason to re-read: a signal (debounced), the resync tick or
/// a kick. Returns `Err(Restart)` on a kick and `Err(Failed(NoBus))` when a
/// signal stream ends.
pub async fn next_trigger(
    streams: &mut Streams,
    resync: &mut tokio::time::Interval,
    kick: &tokio::sync::Notify,
) -> Result<(), SessionEnd> {
    use futures_util::StreamExt;
    let any = async {
        if streams.is_empty() {
            return std::future::pending().await;
        }
        let mut sel = futures_util::stream::select_all(streams.iter_mut());
        let r = sel.next().await;
        if r.is_some() {
            // Coalesce a burst of property changes into one read.
            let _ =
                tokio::time::timeout(Duration::from_millis(30), async { while sel.next().await.is_some() {} }).await;
        }
        r
    };
    tokio::select! {
        _ = resync.tick() => Ok(()),
        m = any => match m {
            Some(_) => Ok(()),
            None => Err(SessionEnd::Failed(DbusFail::NoBus)),
        },
        _ = kick.notified() => Err(SessionEnd::Restart),
    }
}

/// Ends a session, handing its streams back.
pub fn end(r: Result<(), SessionEnd>, streams: Streams) -> (SessionEnd, Streams) {
    match r {
        Ok(()) => (SessionEnd::Restart, streams),
        Err(e) => (e, streams),
    }
}

pub fn resync_interval(period: Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}
