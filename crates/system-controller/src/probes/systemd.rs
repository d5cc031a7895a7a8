//! Watched units over org.freedesktop.systemd1 (system-controller §3.2):
//! Subscribe first, LoadUnit per unit, PropertiesChanged for pushes, a full
//! resync every `services.resync_s`; restarts followed to their JobRemoved.

use crate::config::unit_name;
use crate::dbus::{call, Bus, DbusFail, SYSTEMD};
use crate::health::Probe;
use crate::probes::{
    end, next_trigger, properties_changed, record_failure, resync_interval, run_dbus_probe, SessionEnd, Streams,
};
use crate::state::Controller;
use futures_util::StreamExt;
use ndefender_contract::system::ServiceStatus;
use std::time::Duration;
use zbus::proxy::CacheProperties;
use zbus::Connection;
use zbus_systemd::systemd1::{ManagerProxy, ServiceProxy, UnitProxy};

const UNIT_PATHS: &str = "/org/freedesktop/systemd1/unit";

pub fn spawn(ctl: Controller, bus: Bus) {
    let resync = Duration::from_secs(ctl.cfg().services.resync_s);
    let c2 = ctl.clone();
    let b2 = bus.clone();
    tokio::spawn(run_dbus_probe(
        bus,
        SYSTEMD,
        resync,
        |conn| async move {
            let s = properties_changed(&conn, UNIT_PATHS).await?;
            Ok(vec![s])
        },
        move |conn, streams| session(c2.clone(), b2.clone(), conn, streams),
        record_failure(ctl, Probe::Services, "systemd"),
    ));
}

pub async fn manager(conn: &Connection) -> Result<ManagerProxy<'static>, DbusFail> {
    ManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(DbusFail::from)
}

async fn session(ctl: Controller, bus: Bus, conn: Connection, mut streams: Streams) -> (SessionEnd, Streams) {
    let r = watch(&ctl, &bus, &conn, &mut streams).await;
    end(r, streams)
}

async fn watch(ctl: &Controller, bus: &Bus, conn: &Connection, streams: &mut Streams) -> Result<(), SessionEnd> {
    let t = Duration::from_millis(ctl.cfg().probes.dbus_timeout_ms);
    let kick = bus.kick(SYSTEMD);
    let mgr = manager(conn).await?;
    // Without Subscribe, systemd emits no unit signals at all.
    call(t, mgr.subscribe()).await?;
    let mut resync = resync_interval(Duration::from_secs(ctl.cfg().services.resync_s));
    loop {
        let entries = ctl.timed(Probe::Services, read_all(ctl, conn, &mgr, t)).await?;
        ctl.mutate(|st| {
            st.services = entries;
            st.probe_ok(Probe::Services);
        });
        next_trigger(streams, &mut resync, &kick).await?;
    }
}

async fn read_all(
    ctl: &Controller,
    conn: &Connection,
    mgr: &ManagerProxy<'static>,
    t: Duration,
) -> Result<Vec<ServiceStatus>, DbusFail> {
    let now_ms = ctl.clock().now_ms();
    let mut out = Vec::new();
    for name in &ctl.cfg().services.watch {
        out.push(read_unit(conn, mgr, name, now_ms, t).await?);
    }
    Ok(out)
}

fn not_found(name: &str) -> ServiceStatus {
    ServiceStatus {
        last_error: Some("unit_not_found".into()),
        ..crate::state::unknown_service(name)
    }
}

async fn read_unit(
    conn: &Connection,
    mgr: &ManagerProxy<'static>,
    name: &str,
    now_ms: u64,
    t: Duration,
) -> Result<ServiceStatus, DbusFail> {
    let unit = unit_name(name);
    let path = match call(t, mgr.load_unit(unit.clone())).await {
        Ok(p) => p,
        Err(DbusFail::Failed(n)) if n.ends_with("NoSuchUnit") || n.ends_with("LoadFailed") => {
            return Ok(not_found(name))
        }
        Err(e) => return Err(e),
    };
    let u = UnitProxy::builder(conn)
        .path(path.clone())
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let load = call(t, u.load_state()).await?;
    if load == "not-found" {
        return Ok(not_found(name));
    }
    let active = call(t, u.active_state()).await?;
    let sub = call(t, u.sub_state()).await?;
    let since_us = call(t, u.active_enter_timestamp()).await.unwrap_or(0);
    let (restarts, result) = if unit.ends_with(".service") {
        let s = ServiceProxy::builder(conn)
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        (
            call(t, s.n_restarts()).await.unwrap_or(0),
            call(t, s.result()).await.ok(),
        )
    } else {
        (0, None)
    };
    let since_ms = since_us / 1000;
    let last_error = if active == "failed" {
        Some(format!(
            "failed_{}",
            result.as_deref().unwrap_or("unknown").replace('-', "_")
        ))
    } else {
        None
    };
    Ok(ServiceStatus {
        name: name.to_owned(),
        uptime_s: (active == "active" && since_ms > 0).then(|| (now_ms.saturating_sub(since_ms) / 1000) as i64),
        last_restart_ms: (since_ms > 0).then_some(since_ms),
        active_state: active,
        sub_state: sub,
        restart_count: restarts as i64,
        last_error,
    })
}

/// A restart job accepted by systemd; `wait` gives the outcome.
pub struct RestartJob {
    stream: zbus_systemd::systemd1::JobRemovedStream,
    job: zbus::OwnedObjectPath,
}

/// RestartUnit(unit, "replace"), with the JobRemoved subscription taken first
/// so a fast job cannot finish unseen. The subscription is narrowed to the unit
/// (arg 2), so back-to-back restarts of different units never share a rule.
pub async fn restart(conn: &Connection, unit: &str, t: Duration) -> Result<RestartJob, DbusFail> {
    let mgr = manager(conn).await?;
    let stream = call(t, mgr.receive_job_removed_with_args(&[(2, unit)])).await?;
    let _ = call(t, mgr.subscribe()).await;
    let job = call(
        Duration::from_secs(5),
        mgr.restart_unit(unit.to_owned(), "replace".to_owned()),
    )
    .await?;
    Ok(RestartJob { stream, job })
}

impl RestartJob {
    /// `Ok(())` for `done`, else the ack reason (`job_<result>`, `job_timeout`).
    pub async fn wait(mut self, limit: Duration) -> Result<(), String> {
        let job = self.job.clone();
        let watch = async {
            while let Some(sig) = self.stream.next().await {
                if let Ok(a) = sig.args() {
                    if *a.job() == job {
                        return Some(a.result().clone());
                    }
                }
            }
            None
        };
        match tokio::time::timeout(limit, watch).await {
            Ok(Some(r)) if r == "done" => Ok(()),
            Ok(Some(r)) => Err(format!("job_{}", r.replace('-', "_"))),
            Ok(None) => Err("systemd_unavailable".into()),
            Err(_) => Err("job_timeout".into()),
        }
    }
}
