//! The state owner: every section, its health, and the events its changes cause,
//! mutated and published under one lock (ARCHITECTURE.md invariants).

use crate::config::{unit_name, ControllerConfig};
use crate::events::{Due, Emitter, SectionEvent};
use crate::health::{Health, Probe, Tracker, Transition};
use ndefender_contract::command::ControllerHealth;
use ndefender_contract::enums::{Fix, LogLevel, Status, UpsState};
use ndefender_contract::events::{kind, LogEvent, SystemCommandAck};
use ndefender_contract::system::*;
use ndefender_contract::time::Clock;
use ndefender_contract::{Envelope, Source};
use ndefender_hub::{Greeting, GreetingSource, Hub, Outbox, Owner};
use ndefender_service::metrics::{CounterFamily, HistogramFamily};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything the controller knows about the host.
pub struct State {
    pub cfg: Arc<ControllerConfig>,
    pub clock: Arc<dyn Clock>,
    pub system: SystemStats,
    pub ups: UpsTelemetry,
    pub services: Vec<ServiceStatus>,
    pub network: NetworkState,
    pub gps: GpsState,
    pub audio: AudioState,
    /// The power section is fed by UPower (so a lost bus degrades it).
    pub power_via_upower: bool,
    trackers: [Tracker; 7],
    emitters: [Emitter; 5],
    failures_total: BTreeMap<(Probe, String), u64>,
    /// Events of the current change, handed to the hub before the lock drops.
    out: Vec<Envelope>,
}

/// Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Controller {
    inner: Arc<Inner>,
}

struct Inner {
    owner: Owner<State>,
    cfg: Arc<ControllerConfig>,
    clock: Arc<dyn Clock>,
    /// `probe_duration_seconds{probe}`: one read of a probe's backend.
    probe_seconds: HistogramFamily,
    probe_stuck: CounterFamily,
}

const PROBE_BOUNDS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

fn pending(_t: u64) -> Option<String> {
    Some("probe_pending".into())
}

fn disabled_or_pending(enabled: bool) -> Option<String> {
    Some(if enabled { "probe_pending" } else { "disabled" }.into())
}

impl State {
    fn new(cfg: Arc<ControllerConfig>, clock: Arc<dyn Clock>) -> State {
        let t = clock.now_ms();
        let c = &cfg;
        let status_for = |enabled: bool| Some(if enabled { Status::Degraded } else { Status::Offline });
        let mut trackers: [Tracker; 7] = Default::default();
        for (p, on) in [
            (Probe::Network, c.network.enabled),
            (Probe::Bluetooth, c.bluetooth.enabled),
            (Probe::Gps, c.gps.enabled),
            (Probe::Audio, c.audio.enabled),
            (Probe::Power, c.power.backend != crate::config::PowerBackend::None),
        ] {
            if !on {
                trackers[p.index()] = Tracker::disabled();
            }
        }
        State {
            system: SystemStats {
                timestamp_ms: Some(t),
                status: Some(Status::Degraded),
                last_error: pending(t),
                ..Default::default()
            },
            ups: UpsTelemetry {
                timestamp_ms: Some(t),
                status: Some(Status::Degraded),
                state: Some(UpsState::Unknown),
                last_error: pending(t),
                ..Default::default()
            },
            services: c.services.watch.iter().map(|n| unknown_service(n)).collect(),
            network: NetworkState {
                connected: false,
                wifi: Some(WifiState {
                    timestamp_ms: Some(t),
                    last_error: disabled_or_pending(c.network.enabled),
                    ..Default::default()
                }),
                bluetooth: Some(BluetoothState {
                    timestamp_ms: Some(t),
                    last_error: disabled_or_pending(c.bluetooth.enabled),
                    ..Default::default()
                }),
                ..Default::default()
            },
            gps: GpsState {
                timestamp_ms: Some(t),
                fix: Some(Fix::NoFix),
                source: Some("gpsd".into()),
                last_error: disabled_or_pending(c.gps.enabled),
                ..Default::default()
            },
            audio: AudioState {
                timestamp_ms: Some(t),
                status: status_for(c.audio.enabled),
                last_error: disabled_or_pending(c.audio.enabled),
                ..Default::default()
            },
            power_via_upower: false,
            trackers,
            emitters: Default::default(),
            failures_total: BTreeMap::new(),
            out: Vec::new(),
            cfg,
            clock,
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn health(&self, p: Probe) -> Health {
        self.trackers[p.index()].health
    }

    pub fn failures(&self, p: Probe) -> u32 {
        self.trackers[p.index()].failures
    }

    /// `GET /status` body.
    pub fn status(&self) -> ControllerStatus {
        ControllerStatus {
            timestamp_ms: self.now_ms(),
            system: Some(self.system.clone()),
            ups: Some(self.ups.clone()),
            services: Some(self.services.clone()),
            network: Some(self.network.clone()),
            gps: Some(self.gps.clone()),
            audio: Some(self.audio.clone()),
        }
    }

    pub fn health_body(&self) -> ControllerHealth {
        let probes: BTreeMap<String, String> = Probe::ALL
            .iter()
            .map(|p| (p.name().to_owned(), self.health(*p).as_str().to_owned()))
            .collect();
        ControllerHealth {
            ok: true,
            timestamp_ms: self.now_ms(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            probes,
        }
    }

    fn section_value(&self, e: SectionEvent) -> Value {
        let v = match e {
            SectionEvent::Ups => serde_json::to_value(&self.ups),
            SectionEvent::Service => serde_json::to_value(ServiceUpdate {
                services: self.services.clone(),
            }),
            SectionEvent::Network => serde_json::to_value(&self.network),
            SectionEvent::Gps => serde_json::to_value(&self.gps),
            SectionEvent::Audio => serde_json::to_value(&self.audio),
        };
        v.unwrap_or(Value::Null)
    }

    fn envelope<T: Serialize + ?Sized>(&self, kind: &'static str, data: &T) -> Option<Envelope> {
        match Envelope::new(kind, self.now_ms(), Source::System, data) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::error!(error = %e, kind, "cannot build envelope");
                None
            }
        }
    }

    /// Queues one envelope; the owner hands it to the hub before the state lock drops, so
    /// the greeting watermark is exact.
    pub fn publish<T: Serialize + ?Sized>(&mut self, kind: &'static str, data: &T) {
        if let Some(env) = self.envelope(kind, data) {
            self.out.push(env);
        }
    }

    pub fn publish_ack(&mut self, ack: &SystemCommandAck) {
        self.publish(kind::COMMAND_ACK, ack);
    }

    pub fn publish_log(&mut self, level: LogLevel, component: &str, code: &str, message: impl Into<String>) {
        self.publish(kind::LOG_EVENT, &LogEvent::with(level, component, code, message));
    }

    pub fn publish_system_status(&mut self) {
        if let Some(env) = self.envelope(kind::SYSTEM_STATUS, &self.system) {
            self.out.push(env);
        }
    }

    /// Publishes every section event that a change (or nothing held back) makes due.
    fn emit_changes(&mut self) {
        let now = self.clock.monotonic();
        for e in SectionEvent::ALL {
            let v = self.section_value(e);
            let gap = self.min_gap(e);
            if self.emitters[e.index()].on_value(&v, now, gap) == Due::Now {
                self.send_section(e, v, now);
            }
        }
    }

    /// Periodic: held-back GPS changes and the `max_silence_s` floor.
    pub fn emit_due(&mut self) {
        let now = self.clock.monotonic();
        let silence = Duration::from_secs(self.cfg.events.max_silence_s);
        for e in SectionEvent::ALL {
            let gap = self.min_gap(e);
            if self.emitters[e.index()].on_tick(now, gap, silence) {
                let v = self.section_value(e);
                self.send_section(e, v, now);
            }
        }
    }

    fn min_gap(&self, e: SectionEvent) -> Duration {
        if e == SectionEvent::Gps {
            Duration::from_millis(self.cfg.events.gps_min_interval_ms)
        } else {
            Duration::ZERO
        }
    }

    fn send_section(&mut self, e: SectionEvent, v: Value, now: Instant) {
        self.publish(e.kind(), &v);
        self.emitters[e.index()].sent(v, now);
    }

    fn greeting(&self) -> Vec<Envelope> {
        let mut out = Vec::with_capacity(6);
        out.extend(self.envelope(kind::SYSTEM_STATUS, &self.system));
        for e in SectionEvent::ALL {
            out.extend(self.envelope(e.kind(), &self.section_value(e)));
        }
        out
    }

    /// `probe_failures_total` label sets and counts.
    pub fn failure_counts(&self) -> Vec<(String, u64)> {
        self.failures_total
            .iter()
            .map(|((p, c), n)| (format!("probe=\"{}\",code=\"{c}\"", p.name()), *n))
            .collect()
    }

    // ---- health ----------------------------------------------------------

    /// Health as the section content shows it, after a successful probe.
    fn content_health(&self, p: Probe) -> (Health, String) {
        let from_status = |s: Option<Status>, e: &Option<String>| {
            let code = e.clone().unwrap_or_else(|| "recovered".into());
            match s {
                Some(Status::Ok) => (Health::Ok, code),
                Some(Status::Offline) => (Health::Offline, code),
                _ => (Health::Degraded, code),
            }
        };
        let from_error = |e: &Option<String>| match e {
            Some(c) => (Health::Degraded, c.clone()),
            None => (Health::Ok, "recovered".into()),
        };
        match p {
            Probe::System => from_status(self.system.status, &self.system.last_error),
            Probe::Power => from_status(self.ups.status, &self.ups.last_error),
            Probe::Audio => from_status(self.audio.status, &self.audio.last_error),
            Probe::Gps => from_error(&self.gps.last_error),
            Probe::Network => from_error(&self.network.wifi.as_ref().and_then(|w| w.last_error.clone())),
            Probe::Bluetooth => from_error(&self.network.bluetooth.as_ref().and_then(|b| b.last_error.clone())),
            Probe::Services => (Health::Ok, "recovered".into()),
        }
    }

    fn settle(&mut self, p: Probe, to: Health, code: &str) {
        if self.trackers[p.index()].health == Health::Disabled {
            return;
        }
        let gap = Duration::from_secs(self.cfg.events.log_event_min_interval_s);
        let now = self.clock.monotonic();
        if let Some(Transition { to, code }) = self.trackers[p.index()].settle(to, code, now, gap) {
            let (level, word) = match to {
                Health::Ok => (LogLevel::Info, "ok"),
                Health::Degraded => (LogLevel::Warn, "degraded"),
                _ => (LogLevel::Error, "offline"),
            };
            self.publish_log(level, p.name(), &code, format!("{} {word}", p.name()));
        }
    }

    /// A probe delivered: the section was already written by the caller.
    pub fn probe_ok(&mut self, p: Probe) {
        self.trackers[p.index()].succeed();
        let (h, code) = self.content_health(p);
        self.settle(p, h, &code);
    }

    /// A probe failed with `code`: degrade (keeping values) or go offline (dropping them).
    pub fn probe_failed(&mut self, p: Probe, code: &str) {
        if self.trackers[p.index()].health == Health::Disabled {
            return;
        }
        *self.failures_total.entry((p, code.to_owned())).or_insert(0) += 1;
        let offline = self.trackers[p.index()].fail(self.cfg.probes.offline_after);
        let t = Some(self.now_ms());
        let err = Some(code.to_owned());
        let status = Some(if offline { Status::Offline } else { Status::Degraded });
        match p {
            Probe::System => {
                if offline {
                    let version = self.system.version.take();
                    self.system = SystemStats {
                        version,
                        ..Default::default()
                    };
                }
                self.system.timestamp_ms = t;
                self.system.status = status;
                self.system.last_error = err;
            }
            Probe::Power => {
                if offline {
                    self.ups = UpsTelemetry {
                        state: Some(UpsState::Unknown),
                        ..Default::default()
                    };
                }
                self.ups.timestamp_ms = t;
                self.ups.status = status;
                self.ups.last_error = err;
            }
            Probe::Audio => {
                if offline {
                    self.audio = AudioState::default();
                }
                self.audio.timestamp_ms = t;
                self.audio.status = status;
                self.audio.last_error = err;
            }
            Probe::Gps => {
                if offline {
                    self.gps = GpsState {
                        fix: Some(Fix::NoFix),
                        source: Some("gpsd".into()),
                        ..Default::default()
                    };
                }
                self.gps.timestamp_ms = t;
                self.gps.last_error = err;
            }
            Probe::Network => {
                let w = self.network.wifi.get_or_insert_with(WifiState::default);
                if offline {
                    *w = WifiState::default();
                }
                w.timestamp_ms = t;
                w.last_error = err;
                if code.ends_with("_unavailable") {
                    // Without NetworkManager the summary comes from the interfaces.
                    let (connected, v4, v6) = crate::probes::network::ifaddrs_summary();
                    self.network.connected = connected;
                    self.network.ssid = None;
                    self.network.ip_v4 = v4;
                    self.network.ip_v6 = v6;
                }
            }
            Probe::Bluetooth => {
                let b = self.network.bluetooth.get_or_insert_with(BluetoothState::default);
                if offline {
                    *b = BluetoothState::default();
                }
                b.timestamp_ms = t;
                b.last_error = err;
            }
            Probe::Services => {
                for s in &mut self.services {
                    s.last_error = err.clone();
                    s.uptime_s = None;
                }
            }
        }
        let h = if offline { Health::Offline } else { Health::Degraded };
        self.settle(p, h, code);
    }
}

pub fn unknown_service(name: &str) -> ServiceStatus {
    ServiceStatus {
        name: name.to_owned(),
        active_state: "unknown".into(),
        sub_state: "unknown".into(),
        restart_count: 0,
        uptime_s: None,
        last_restart_ms: None,
        last_error: None,
    }
}

impl Controller {
    pub fn new(cfg: Arc<ControllerConfig>, clock: Arc<dyn Clock>) -> Controller {
        Controller {
            inner: Arc::new(Inner {
                owner: Owner::new(State::new(cfg.clone(), clock.clone())),
                cfg,
                clock,
                probe_seconds: HistogramFamily::new(PROBE_BOUNDS),
                probe_stuck: CounterFamily::default(),
            }),
        }
    }

    /// Runs one read of a probe's backend, timing it for `/metrics`.
    pub async fn timed<F: std::future::Future>(&self, p: Probe, read: F) -> F::Output {
        let t = std::time::Instant::now();
        let r = read.await;
        self.observe_probe(p, t.elapsed());
        r
    }

    /// Records one read's duration, for the probes that read on their own thread.
    pub fn observe_probe(&self, p: Probe, took: std::time::Duration) {
        self.inner
            .probe_seconds
            .observe(&format!("probe=\"{}\"", p.name()), took.as_secs_f64());
    }

    /// A blocking read outlived its timeout and still holds the device (`probe_stuck_total{probe}`).
    pub fn probe_stuck(&self, p: Probe) {
        self.inner.probe_stuck.inc(&format!("probe=\"{}\"", p.name()));
    }

    pub fn probe_stuck_counts(&self) -> &CounterFamily {
        &self.inner.probe_stuck
    }

    pub fn probe_seconds(&self) -> &HistogramFamily {
        &self.inner.probe_seconds
    }

    pub fn attach_hub(&self, hub: Hub) {
        self.inner.owner.attach_hub(hub);
    }

    pub fn hub(&self) -> Option<&Hub> {
        self.inner.owner.hub()
    }

    pub fn cfg(&self) -> &Arc<ControllerConfig> {
        &self.inner.cfg
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        self.inner.owner.read(f)
    }

    /// Applies a change and publishes the events it causes (its own and the section events
    /// the change makes due), in one critical section.
    pub fn mutate<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        self.inner.owner.mutate(|st| {
            let r = f(st);
            st.emit_changes();
            r
        })
    }

    pub fn ack(&self, ack: SystemCommandAck) {
        self.inner.owner.mutate(|st| st.publish_ack(&ack));
    }

    pub fn log(&self, level: LogLevel, component: &str, code: &str, message: impl Into<String>) {
        self.inner
            .owner
            .mutate(|st| st.publish_log(level, component, code, message));
    }

    /// The periodic SYSTEM_STATUS (sent whether or not anything changed).
    pub fn publish_system_status(&self) {
        self.inner.owner.mutate(State::publish_system_status);
    }

    /// Probe names whose name is configured as a watched unit (for restart gating).
    pub fn is_watched(&self, unit: &str) -> bool {
        self.inner
            .cfg
            .services
            .watch
            .iter()
            .any(|w| unit_name(w) == unit_name(unit))
    }
}

impl GreetingSource for Controller {
    fn hello(&self) -> Vec<Envelope> {
        Envelope::new(
            kind::LOG_EVENT,
            self.inner.clock.now_ms(),
            Source::System,
            &LogEvent::message("HELLO"),
        )
        .into_iter()
        .collect()
    }

    fn greeting(&self, hub: &Hub) -> Greeting {
        self.inner.owner.greeting(hub, State::greeting)
    }

    fn resync(&self, hub: &Hub) -> Greeting {
        self.greeting(hub)
    }
}

impl Outbox for State {
    fn outbox(&mut self) -> &mut Vec<Envelope> {
        &mut self.out
    }
}
