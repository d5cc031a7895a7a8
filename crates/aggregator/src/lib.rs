//! `ndefender-aggregator`: merges the RemoteID and AntSDR feeds (and, through
//! their own modules, the ESP32 panel, the system controller and the scanner)
//! into one StatusSnapshot and one contact list, and fans events out on
//! `/api/v1/ws` (aggregator.md). Data flows source → [`core`] → hub.

pub mod api;
pub mod commands;
pub mod config;
pub mod core;
pub mod dashboard;
pub mod esp32;
pub mod feeds;
pub mod followers;
pub mod history;
pub mod metrics;
pub mod relay;
pub mod uplink;
pub mod upstream;

use crate::api::Api;
use crate::config::AggregatorConfig;
use crate::core::watchdog::{self, Facts};
use crate::core::Core;
use crate::upstream::Upstream;
use ndefender_contract::time::{Clock, SystemClock};
use ndefender_contract::{ErrorStyle, Source, TimestampField};
use ndefender_hub::Hub;
use ndefender_service::daemon::{self, Site};
use ndefender_service::lifecycle;
use ndefender_service::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const WS_PATH: &str = "/api/v1/ws";

/// Command routes an operator may call; every other command is admin-only
/// (network, bluetooth, services, power).
pub const OPERATOR_ROUTES: &[&str] = &[
    "/api/v1/vrx/",
    "/api/v1/esp32/",
    "/api/v1/scan/",
    "/api/v1/video/",
    "/api/v1/audio/",
    "/api/v1/gps/",
    "/api/v1/antsdr/",
    "/api/v1/remote_id/",
];

/// Runs the daemon until `shutdown` fires, then stops within the wire §7.9 budget.
pub async fn run(cfg: AggregatorConfig, shutdown: Shutdown) -> std::io::Result<()> {
    run_with_clock(cfg, shutdown, Arc::new(SystemClock)).await
}

pub async fn run_with_clock(cfg: AggregatorConfig, shutdown: Shutdown, clock: Arc<dyn Clock>) -> std::io::Result<()> {
    let cfg = Arc::new(cfg);
    let listener = lifecycle::bind(&cfg.server.bind).await?;
    tracing::info!(bind = %cfg.server.bind, "aggregator listening");

    let core = Core::new(cfg.clone(), clock.clone());
    let hub = Hub::new(
        cfg.server
            .hub_config(Source::Aggregator, TimestampField::TimestampMs, ErrorStyle::Detail),
        Arc::new(core.clone()),
    );
    core.attach_hub(hub.clone());
    let history = history::History::start(&cfg, &hub, &core, clock.clone()).await;
    let uplinks = uplink::start(&cfg, &core, &hub, &shutdown)?;

    let feeds = feeds::start(&cfg, &core, history.as_ref())?;

    tokio::spawn(core.clone().run_system_updates(shutdown.wait()));
    tokio::spawn(run_ticker(core.clone(), cfg.clone(), shutdown.clone()));

    let esp32 = cfg
        .esp32
        .enabled
        .then(|| esp32::link::spawn(cfg.esp32.clone(), core.clone(), shutdown.clone()));
    let sc = &cfg.system_controller;
    let controller_up = Upstream::new("system_controller", &sc.base_url, &sc.api_key, &sc.ca_file)?;
    let antsdr_up = Upstream::new("antsdr", &cfg.antsdr.base_url, &cfg.antsdr.api_key, &cfg.antsdr.ca_file)?;
    if cfg.system_controller.enabled {
        tokio::spawn(followers::follow_controller(
            cfg.clone(),
            core.clone(),
            controller_up.clone(),
            shutdown.clone(),
        ));
        if cfg.alerts.beep_on_high_severity {
            tokio::spawn(followers::beeper(
                cfg.clone(),
                core.clone(),
                controller_up.clone(),
                shutdown.clone(),
            ));
        }
    }
    if cfg.antsdr.enabled {
        tokio::spawn(followers::poll_antsdr(
            cfg.clone(),
            core.clone(),
            antsdr_up.clone(),
            shutdown.clone(),
        ));
    }
    let http_metrics = Arc::new(ndefender_service::metrics::HttpMetrics::default());
    let api = Arc::new(Api {
        core: core.clone(),
        esp32,
        limits: api::Limits {
            cmd: ndefender_service::ratelimit::SlidingWindow::per_minute(cfg.limits.commands_per_minute),
            dangerous: ndefender_service::ratelimit::SlidingWindow::per_minute(cfg.limits.dangerous_per_minute),
        },
        trusted_proxies: ndefender_service::http::parse_ips(&cfg.server.trusted_proxies),
        started: Instant::now(),
        remoteid: Upstream::new(
            "remoteid",
            &cfg.remoteid.base_url,
            &cfg.remoteid.api_key,
            &cfg.remoteid.ca_file,
        )?,
        controller: controller_up,
        antsdr: antsdr_up,
        get_timeout: Duration::from_secs_f64(cfg.proxy.get_timeout_s),
        command_timeout: Duration::from_secs_f64(cfg.proxy.command_timeout_s),
        wifi_connect_timeout: Duration::from_secs_f64(cfg.proxy.wifi_connect_timeout_s),
        allow_unsafe: cfg.safety.allow_unsafe,
        controller_enabled: cfg.system_controller.enabled,
        feed_stats: feeds.stats.clone(),
        http: http_metrics.clone(),
        history: history.clone(),
    });
    let app = api::router(api.clone())
        .merge(commands::router(api.clone()))
        .merge(commands::relay_router(api))
        .route(WS_PATH, hub.ws_route())
        .merge(history::routes::router(history.clone(), clock));
    let app = if cfg.server.dashboard {
        app.merge(dashboard::router(&cfg.dashboard))
    } else {
        app
    };
    let site = Site {
        name: "aggregator",
        server: &cfg.server,
        audit: Some(&cfg.audit),
        style: ErrorStyle::Detail,
        ws_paths: &[WS_PATH],
        operator_routes: OPERATOR_ROUTES,
        open_paths: if cfg.server.dashboard {
            &dashboard::OPEN_PATHS[..]
        } else {
            &[]
        },
        metrics: http_metrics,
    };
    let status_core = core.clone();
    let alive_core = core.clone();
    lifecycle::spawn_watchdog(
        move || {
            let c = alive_core.clone();
            async move {
                tokio::task::spawn_blocking(move || c.read(|_| true))
                    .await
                    .unwrap_or(false)
            }
        },
        move || {
            let ok = status_core.read(|st| st.overall_ok());
            let clients = status_core.hub().map(|h| h.client_count()).unwrap_or(0);
            format!("clients={clients} overall_ok={ok}")
        },
    );

    // Ingest stops first (final checkpoints = exactly what was published), then
    // the hub delivers what it holds and closes every client with 1001.
    let hub_for_drain = hub.clone();
    daemon::serve(site, listener, app, shutdown, async move {
        feeds.stop().await;
        hub_for_drain.shutdown().await;
        if let Some(h) = history {
            h.close().await;
        }
        uplinks.stop().await;
    })
    .await
}

/// The 1 s tick: facts are read off the executor, then applied under the lock.
async fn run_ticker(core: Core, cfg: Arc<AggregatorConfig>, shutdown: Shutdown) {
    let mut ticks = Ticks::new(Duration::from_secs(1), &shutdown);
    let mut n: u64 = 0;
    while ticks.next().await {
        let probe_video = n.is_multiple_of(5);
        n += 1;
        let c = cfg.clone();
        let facts = match tokio::time::timeout(
            Duration::from_secs(2),
            tokio::task::spawn_blocking(move || Facts::gather(&c, probe_video)),
        )
        .await
        {
            Ok(Ok(f)) => f,
            _ => {
                tracing::warn!("filesystem probe timed out; skipping this tick");
                continue;
            }
        };
        core.mutate(|st| watchdog::tick(st, &facts));
    }
}

/// A fixed period until shutdown; a late tick delays the next ones instead of bunching them.
pub(crate) struct Ticks {
    tick: tokio::time::Interval,
    stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

impl Ticks {
    pub(crate) fn new(period: Duration, shutdown: &Shutdown) -> Self {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            tick,
            stop: Box::pin(shutdown.wait()),
        }
    }

    /// Waits for the next tick; false once shutdown has fired.
    pub(crate) async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.tick.tick() => true,
            _ = &mut self.stop => false,
        }
    }
}
