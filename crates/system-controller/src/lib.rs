//! `ndefender-system-controller`: the kit's host health (system, services,
//! network, Bluetooth, power, GPS, audio) and guarded host commands
//! (system-controller.md). Data flows probes → [`state`] → hub.

pub mod api;
pub mod config;
pub mod dbus;
pub mod events;
pub mod gates;
pub mod health;
pub mod probes;
pub mod state;

use crate::api::Api;
use crate::config::ControllerConfig;
use crate::gates::ratelimit::{Class, Limits, RateLimiter};
use crate::probes::audio::{AlsaMixer, CpalTone, Mixer, MixerFactory, ToneOutput};
use crate::probes::bluetooth::Agent;
use crate::probes::procfs::{SystemPaths, SystemProbe};
use crate::probes::ups_hat::{LinuxI2c, UpsRegisterReader};
use crate::state::Controller;
use ndefender_contract::time::{Clock, SystemClock};
use ndefender_contract::{ErrorStyle, Source, TimestampField};
use ndefender_hub::Hub;
use ndefender_service::daemon::{self, Site};
use ndefender_service::http::parse_ips;
use ndefender_service::lifecycle;
use ndefender_service::Shutdown;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const WS_PATH: &str = "/api/v1/ws";

/// The hardware the controller talks to; tests swap in simulators.
pub struct Backends {
    pub clock: Arc<dyn Clock>,
    pub ups: Box<dyn UpsRegisterReader>,
    pub mixer: MixerFactory,
    pub tone: Arc<dyn ToneOutput>,
    pub system_paths: SystemPaths,
}

impl Backends {
    /// The real devices named by the config.
    pub fn real(cfg: &ControllerConfig) -> Backends {
        let (card, control) = (cfg.audio.card.clone(), cfg.audio.control.clone());
        Backends {
            clock: Arc::new(SystemClock),
            ups: Box::new(LinuxI2c::new(cfg.power.i2c_bus, cfg.power.i2c_addr)),
            mixer: Box::new(move || AlsaMixer::open(&card, &control).map(|m| Box::new(m) as Box<dyn Mixer>)),
            tone: Arc::new(CpalTone {
                name: cfg.audio.output_device.clone(),
            }),
            system_paths: SystemPaths::from_config(&cfg.system),
        }
    }
}

/// Command routes an operator may call; every other command is admin-only
/// (network, bluetooth, services, power).
pub const OPERATOR_ROUTES: &[&str] = &["/api/v1/audio/", "/api/v1/gps/"];

fn limits(cfg: &ControllerConfig) -> Limits {
    let l = &cfg.limits;
    Limits {
        per_minute: [
            (Class::Network, l.network_per_minute),
            (Class::Audio, l.audio_per_minute),
            (Class::Alert, l.alert_per_minute),
            (Class::Service, l.service_per_minute),
            (Class::Dangerous, l.dangerous_per_minute),
        ]
        .into_iter()
        .collect(),
    }
}

/// Runs the daemon on the real hardware until `shutdown` fires.
pub async fn run(cfg: ControllerConfig, shutdown: Shutdown) -> std::io::Result<()> {
    let backends = Backends::real(&cfg);
    run_with(cfg, shutdown, backends, |_| {}).await
}

/// Runs the daemon with the given backends; `on_bound` gets the bound address
/// (tests bind to port 0).
pub async fn run_with(
    cfg: ControllerConfig,
    shutdown: Shutdown,
    backends: Backends,
    on_bound: impl FnOnce(std::net::SocketAddr),
) -> std::io::Result<()> {
    if std::env::var_os("NDEFENDER_ALLOW_UNSAFE").is_some() {
        tracing::warn!("NDEFENDER_ALLOW_UNSAFE is ignored; use NDEFENDER_SAFETY__ALLOW_UNSAFE=true");
    }
    let cfg = Arc::new(cfg);
    let ctl = Controller::new(cfg.clone(), backends.clock.clone());
    let hub = Hub::new(
        cfg.server
            .hub_config(Source::System, TimestampField::TimestampMs, ErrorStyle::Detail),
        Arc::new(ctl.clone()),
    );
    ctl.attach_hub(hub.clone());

    let stop = shutdown.wait();
    let bus = dbus::start(ctl.clone(), stop);

    // The first probe round runs concurrently, within the startup budget (§1).
    let system_probe = Arc::new(Mutex::new(SystemProbe::new(backends.system_paths, cfg.system.clone())));
    let system_busy = Arc::new(AtomicBool::new(false));
    let budget = Duration::from_millis(cfg.probes.startup_budget_ms);
    let first = probes::system::probe_once(&ctl, &system_probe, &system_busy);
    let bus_up = bus.connected();
    let _ = tokio::time::timeout(budget, async {
        tokio::join!(first, async {
            let _ = tokio::time::timeout(budget / 3, bus_up).await;
        })
    })
    .await;

    let agent = Agent::default();
    let reader = Arc::new(Mutex::new(backends.ups));
    let gps_reconnect = Arc::new(tokio::sync::Notify::new());
    probes::system::spawn(ctl.clone(), system_probe, system_busy);
    probes::systemd::spawn(ctl.clone(), bus.clone());
    probes::network::spawn(ctl.clone(), bus.clone());
    probes::bluetooth::spawn(ctl.clone(), bus.clone(), agent.clone());
    probes::power::spawn(ctl.clone(), bus.clone(), reader);
    probes::gps::spawn(ctl.clone(), gps_reconnect.clone());
    let audio = probes::audio::start(ctl.clone(), backends.mixer, backends.tone);

    let listener = lifecycle::bind(&cfg.server.bind).await?;
    let addr = listener.local_addr()?;
    tracing::info!(bind = %addr, "system controller listening");
    on_bound(addr);

    let http_metrics = Arc::new(ndefender_service::metrics::HttpMetrics::default());
    let api = Arc::new(Api {
        ctl: ctl.clone(),
        bus,
        audio,
        agent,
        limiter: RateLimiter::new(limits(&cfg)),
        trusted: parse_ips(&cfg.server.trusted_proxies),
        known: Default::default(),
        gps_reconnect,
        in_progress: Mutex::new(Default::default()),
        bt_scan_generation: Default::default(),
        started: Instant::now(),
        http: http_metrics.clone(),
        metrics: Mutex::new(Default::default()),
    });
    let app = api::router(api).route(WS_PATH, hub.ws_route());
    let site = Site {
        name: "system controller",
        server: &cfg.server,
        audit: Some(&cfg.audit),
        style: ErrorStyle::Detail,
        ws_paths: &[WS_PATH],
        operator_routes: OPERATOR_ROUTES,
        open_paths: &[],
        metrics: http_metrics,
    };
    let status_ctl = ctl.clone();
    let alive_ctl = ctl.clone();
    lifecycle::spawn_watchdog(
        move || {
            let c = alive_ctl.clone();
            async move {
                tokio::task::spawn_blocking(move || c.read(|_| true))
                    .await
                    .unwrap_or(false)
            }
        },
        move || {
            let clients = status_ctl.hub().map(|h| h.client_count()).unwrap_or(0);
            let ok = status_ctl.read(|st| st.system.status == Some(ndefender_contract::enums::Status::Ok));
            format!("clients={clients} system_ok={ok}")
        },
    );

    let hub_for_drain = hub.clone();
    daemon::serve(site, listener, app, shutdown, async move {
        hub_for_drain.shutdown().await;
    })
    .await
}
