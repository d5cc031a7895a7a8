//! The system probe loop (`system.interval_ms`) and the unconditional
//! SYSTEM_STATUS cadence (`events.system_status_ms`).

use crate::health::Probe;
use crate::probes::procfs::SystemProbe;
use crate::state::Controller;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// procfs and sysfs reads are file I/O: off the executor, with a deadline.
const READ_TIMEOUT: Duration = Duration::from_millis(500);

/// One probe round; also used for the startup round.
pub async fn probe_once(ctl: &Controller, probe: &Arc<Mutex<SystemProbe>>, busy: &Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering;
    if busy.swap(true, Ordering::AcqRel) {
        ctl.probe_stuck(Probe::System);
        ctl.mutate(|st| st.probe_failed(Probe::System, "procfs_stuck"));
        return;
    }
    let p = probe.clone();
    let b = busy.clone();
    let now = ctl.clock().now_ms();
    let job = tokio::task::spawn_blocking(move || {
        let r = p.lock().map(|mut p| p.sample(now)).ok();
        b.store(false, Ordering::Release);
        r
    });
    match ctl.timed(Probe::System, tokio::time::timeout(READ_TIMEOUT, job)).await {
        Ok(Ok(Some(s))) => ctl.mutate(|st| {
            st.system = s;
            st.probe_ok(Probe::System);
        }),
        _ => ctl.mutate(|st| st.probe_failed(Probe::System, "procfs_timeout")),
    }
}

pub fn spawn(ctl: Controller, probe: Arc<Mutex<SystemProbe>>, busy: Arc<std::sync::atomic::AtomicBool>) {
    let c = ctl.clone();
    tokio::spawn(async move {
        let every = Duration::from_millis(c.cfg().system.interval_ms);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            probe_once(&c, &probe, &busy).await;
        }
    });
    tokio::spawn(async move {
        let every = Duration::from_millis(ctl.cfg().events.system_status_ms);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut due = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = tick.tick() => ctl.publish_system_status(),
                _ = due.tick() => ctl.mutate(|st| st.emit_due()),
            }
        }
    });
}
