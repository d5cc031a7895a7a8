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

use crate::dbus::{Bus, DbusFail};
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

/// Runs a D-Bus probe forever: a session per connection (and per backend
/// appearance); after a failure, `on_fail` records it and the next attempt waits
/// for the resync period or for the backend's name to reappear.
pub async fn run_dbus_probe<S, SF, F>(bus: Bus, name: &'static str, resync: Duration, mut session: S, mut on_fail: F)
where
    S: FnMut(Connection) -> SF,
    SF: Future<Output = SessionEnd>,
    F: FnMut(&DbusFail),
{
    let kick = bus.kick(name);
    loop {
        let conn = bus.connected().await;
        let end = tokio::select! {
            e = session(conn.clone()) => e,
            _ = bus.changed_from(&conn) => continue,
        };
        match end {
            SessionEnd::Restart => continue,
            // The supervisor reports a lost bus itself.
            SessionEnd::Failed(DbusFail::NoBus) => {
                bus.changed_from(&conn).await;
                continue;
            }
            SessionEnd::Failed(e) => {
                tracing::debug!(probe = name, error = ?e, "probe failed");
                on_fail(&e);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(resync) => {}
            _ = kick.notified() => {}
            _ = bus.changed_from(&conn) => {}
        }
    }
}

/// Waits for the next reason to re-read: a signal (debounced), the resync tick or
/// a kick. Returns `Err(Restart)` on a kick and `Err(Failed(NoBus))` when the
/// signal stream ends.
pub async fn next_trigger(
    streams: &mut [&mut zbus::MessageStream],
    resync: &mut tokio::time::Interval,
    kick: &tokio::sync::Notify,
) -> Result<(), SessionEnd> {
    use futures_util::StreamExt;
    let any = async {
        let mut sel = futures_util::stream::select_all(streams.iter_mut().map(|s| s.by_ref()));
        let r = sel.next().await;
        if r.is_some() {
            // Coalesce a burst of property changes into one read.
            let _ = tokio::time::timeout(Duration::from_millis(30), async {
                while sel.next().await.is_some() {}
            })
            .await;
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

pub fn resync_interval(period: Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}
