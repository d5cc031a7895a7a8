//! The power section (system-controller §3.5): the UPS HAT over I2C, UPower
//! over D-Bus, auto-detection between them, and the battery warnings.

use crate::config::PowerBackend;
use crate::dbus::{proxy, Bus, DbusFail, UPOWER};
use crate::health::Probe;
use crate::probes::ups_hat::{decode, read_all, UpsError, UpsRegisterReader};
use crate::probes::{
    end, next_trigger, opt_prop, properties_changed, record_failure, resync_interval, run_dbus_probe, SessionEnd,
    Streams,
};
use crate::state::{Controller, State};
use ndefender_contract::enums::{LogLevel, Status, UpsState};
use ndefender_contract::system::UpsTelemetry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zbus::Connection;

const DISPLAY: &str = "/org/freedesktop/UPower/devices/DisplayDevice";
const IF_DEVICE: &str = "org.freedesktop.UPower.Device";

pub type SharedReader = Arc<Mutex<Box<dyn UpsRegisterReader>>>;

/// True while the section is fed over D-Bus (so a lost bus degrades it).
pub fn uses_dbus(st: &State) -> bool {
    st.power_via_upower
}

fn absent(st: &mut State, code: &str) {
    st.ups = UpsTelemetry {
        timestamp_ms: Some(st.now_ms()),
        status: Some(Status::Offline),
        state: Some(UpsState::Unknown),
        last_error: Some(code.to_owned()),
        ..Default::default()
    };
}

pub fn spawn(ctl: Controller, bus: Bus, reader: SharedReader) {
    match ctl.cfg().power.backend {
        PowerBackend::None => ctl.mutate(|st| absent(st, "ups_disabled")),
        PowerBackend::UpsHatE => {
            tokio::spawn(hat_loop(ctl, reader));
        }
        PowerBackend::Upower => {
            ctl.mutate(|st| st.power_via_upower = true);
            spawn_upower(ctl, bus);
        }
        PowerBackend::Auto => {
            tokio::spawn(auto(ctl, bus, reader));
        }
    }
}

/// `ups_hat_e` if 0x20 reads, else `upower` if its DisplayDevice is present,
/// else not present; retried every 60 s until something is found, then kept.
async fn auto(ctl: Controller, bus: Bus, reader: SharedReader) {
    loop {
        let r = reader.clone();
        let t = Duration::from_millis(ctl.cfg().power.read_timeout_ms);
        let hat = tokio::time::timeout(
            t,
            tokio::task::spawn_blocking(move || {
                let mut buf = [0u8; 12];
                let mut g = r.lock().map_err(|_| UpsError::ReadFailed)?;
                g.read_block(0x20, &mut buf)
            }),
        )
        .await;
        if matches!(hat, Ok(Ok(Ok(())))) {
            tracing::info!("power: UPS HAT (E) found");
            return hat_loop(ctl, reader).await;
        }
        let d = Duration::from_millis(ctl.cfg().probes.dbus_timeout_ms);
        let conn = match bus.current() {
            Some(c) => Some(c),
            None => tokio::time::timeout(d, bus.connected()).await.ok(),
        };
        if let Some(conn) = conn {
            if matches!(read_upower(&ctl, &conn).await, Ok(Some(_))) {
                tracing::info!("power: UPower battery found");
                ctl.mutate(|st| st.power_via_upower = true);
                spawn_upower(ctl, bus);
                return;
            }
        }
        ctl.mutate(|st| {
            absent(st, "ups_not_present");
            st.probe_ok(Probe::Power);
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

async fn hat_loop(ctl: Controller, reader: SharedReader) {
    let cfg = ctl.cfg().power.clone();
    let in_flight = Arc::new(AtomicBool::new(false));
    let mut tick = tokio::time::interval(Duration::from_millis(cfg.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warn = BatteryWarnings::default();
    loop {
        tick.tick().await;
        // A read that outlived its timeout still holds the bus: no new one until it returns.
        if in_flight.swap(true, Ordering::AcqRel) {
            tracing::warn!("ups read still stuck");
            ctl.probe_stuck(Probe::Power);
            ctl.mutate(|st| st.probe_failed(Probe::Power, "ups_read_failed"));
            continue;
        }
        let r = reader.clone();
        let flag = in_flight.clone();
        let (idle, critical) = (cfg.idle_current_ma, cfg.critical_soc_percent);
        let job = tokio::task::spawn_blocking(move || {
            let out = match r.lock() {
                Ok(mut g) => read_all(g.as_mut()).map(|b| decode(&b, idle, critical)),
                Err(_) => Err(UpsError::ReadFailed),
            };
            flag.store(false, Ordering::Release);
            out
        });
        let res = match ctl
            .timed(
                Probe::Power,
                tokio::time::timeout(Duration::from_millis(cfg.read_timeout_ms), job),
            )
            .await
        {
            Ok(Ok(r)) => r,
            _ => Err(UpsError::ReadFailed),
        };
        match res {
            Ok(mut t) => {
                let now = ctl.clock().now_ms();
                t.timestamp_ms = Some(now);
                t.sanitize();
                warn.check(&ctl, &t);
                ctl.mutate(|st| {
                    st.ups = t;
                    st.probe_ok(Probe::Power);
                });
            }
            Err(e) => ctl.mutate(|st| st.probe_failed(Probe::Power, e.code())),
        }
    }
}

/// One warn LOG_EVENT when SOC drops below `low_soc_percent`, one error below the critical level.
#[derive(Default)]
struct BatteryWarnings {
    band: u8,
}

impl BatteryWarnings {
    fn check(&mut self, ctl: &Controller, t: &UpsTelemetry) {
        let cfg = &ctl.cfg().power;
        let (Some(soc), Some(state)) = (t.soc_percent, t.state) else {
            return;
        };
        let band = if state != UpsState::Discharging {
            0
        } else if soc < cfg.critical_soc_percent {
            2
        } else if soc < cfg.low_soc_percent {
            1
        } else {
            0
        };
        if band > self.band {
            let (lvl, code) = if band == 2 {
                (LogLevel::Error, "battery_critical")
            } else {
                (LogLevel::Warn, "battery_low")
            };
            ctl.log(lvl, "power", code, format!("battery at {soc} %"));
        }
        self.band = band;
    }
}

fn spawn_upower(ctl: Controller, bus: Bus) {
    let c2 = ctl.clone();
    let b2 = bus.clone();
    tokio::spawn(run_dbus_probe(
        bus,
        UPOWER,
        Duration::from_secs(10),
        |conn| async move {
            let s = properties_changed(&conn, "/org/freedesktop/UPower").await?;
            Ok(vec![s])
        },
        move |conn, streams| session(c2.clone(), b2.clone(), conn, streams),
        record_failure(ctl, Probe::Power, "upower"),
    ));
}

async fn session(ctl: Controller, bus: Bus, conn: Connection, mut streams: Streams) -> (SessionEnd, Streams) {
    let kick = bus.kick(UPOWER);
    let mut warn = BatteryWarnings::default();
    let run = async {
        let mut resync = resync_interval(Duration::from_secs(10));
        loop {
            let t = ctl.timed(Probe::Power, read_upower(&ctl, &conn)).await?;
            ctl.mutate(|st| {
                match t.clone() {
                    Some(t) => st.ups = t,
                    None => absent(st, "ups_not_present"),
                }
                st.probe_ok(Probe::Power);
            });
            if let Some(t) = &t {
                warn.check(&ctl, t);
            }
            next_trigger(&mut streams, &mut resync, &kick).await?;
        }
    };
    let r: Result<(), SessionEnd> = run.await;
    end(r, streams)
}

/// UPower's DisplayDevice as UPS_Telemetry; None when no battery or UPS is present.
pub async fn read_upower(ctl: &Controller, conn: &Connection) -> Result<Option<UpsTelemetry>, DbusFail> {
    let d = Duration::from_millis(ctl.cfg().probes.dbus_timeout_ms);
    let p = proxy(conn, UPOWER, DISPLAY, IF_DEVICE).await?;
    let present: bool = opt_prop(&p, "IsPresent", d).await?.unwrap_or(false);
    let kind: u32 = opt_prop(&p, "Type", d).await?.unwrap_or(0);
    if !present || !matches!(kind, 2 | 3) {
        return Ok(None);
    }
    let state = match opt_prop::<u32>(&p, "State", d).await?.unwrap_or(0) {
        1 => UpsState::Charging,
        2 | 3 | 6 => UpsState::Discharging,
        4 | 5 => UpsState::Idle,
        _ => UpsState::Unknown,
    };
    let pct: Option<f64> = opt_prop(&p, "Percentage", d).await?;
    let volt: Option<f64> = opt_prop::<f64>(&p, "Voltage", d).await?.filter(|v| *v > 0.0);
    let rate: Option<f64> = opt_prop::<f64>(&p, "EnergyRate", d).await?.filter(|v| *v > 0.0);
    let tte: Option<i64> = opt_prop(&p, "TimeToEmpty", d).await?;
    let ttf: Option<i64> = opt_prop(&p, "TimeToFull", d).await?;
    let soc = pct.map(|p| p.round().clamp(0.0, 100.0) as i64);
    let current = match (rate, volt) {
        (Some(r), Some(v)) => {
            let a = crate::probes::procfs::round(r / v, 3);
            Some(if state == UpsState::Discharging { -a } else { a })
        }
        _ => None,
    };
    let critical = state == UpsState::Discharging && soc.is_some_and(|s| s <= ctl.cfg().power.critical_soc_percent);
    let charging = matches!(state, UpsState::Charging | UpsState::FastCharging);
    let mut t = UpsTelemetry {
        timestamp_ms: Some(ctl.clock().now_ms()),
        status: Some(if critical { Status::Degraded } else { Status::Ok }),
        pack_voltage_v: volt.map(|v| crate::probes::procfs::round(v, 3)),
        current_a: current,
        soc_percent: soc,
        time_to_empty_s: tte.filter(|s| *s > 0 && state == UpsState::Discharging),
        time_to_full_s: ttf.filter(|s| *s > 0 && charging),
        state: Some(state),
        last_error: critical.then(|| "battery_critical".to_owned()),
        ..Default::default()
    };
    t.sanitize();
    Ok(Some(t))
}
