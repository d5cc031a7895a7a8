//! `ndefender-antsdr-scan`: the AntSDR RF scanner (antsdr-scan.md). Data flows IQ source →
//! per-step DSP ([`dsp`]) → band panorama ([`detect`]) → [`tracker`] + [`classify`] → JSONL
//! ([`output`]) and the hub, driven by the [`engine`] on a dedicated thread ([`runner`]).

pub mod api;
pub mod bench;
pub mod classify;
pub mod cli;
pub mod config;
pub mod detect;
pub mod dsp;
pub mod engine;
pub mod metrics;
pub mod output;
pub mod plan;
pub mod ratelimit;
pub mod record;
pub mod replay;
pub mod runner;
pub mod source;
pub mod state;
pub mod tracker;

use crate::api::Api;
use crate::classify::Profiles;
use crate::config::ScanConfig;
use crate::plan::PlanSet;
use crate::state::{Greeter, Shared};
use ndefender_contract::devices::SweepPlanSummary;
use ndefender_contract::time::{Clock, ManualClock, SystemClock};
use ndefender_contract::{ErrorStyle, Source};
use ndefender_hub::Hub;
use ndefender_service::daemon::{self, Site};
use ndefender_service::lifecycle;
use ndefender_service::Shutdown;
use std::path::PathBuf;
use std::sync::Arc;

pub const WS_PATHS: [&str; 2] = ["/api/v1/events", "/api/v1/ws"];

/// Command routes an operator may call; `config/reload` stays admin-only.
pub const OPERATOR_ROUTES: &[&str] = &["/api/v1/run/", "/api/v1/sweep/", "/api/v1/gain/", "/api/v1/device/"];

/// `/sweep/state` `plans`: every loaded plan.
pub fn plan_summaries(plans: &PlanSet) -> Vec<SweepPlanSummary> {
    plans
        .plans
        .iter()
        .map(|p| SweepPlanSummary {
            name: Some(p.name.clone()),
            start_hz: Some(p.start_hz as f64),
            end_hz: Some(p.stop_hz as f64),
            step_hz: Some(p.step_hz as f64),
        })
        .collect()
}

/// Runs the daemon until `shutdown` fires. `config_path` is what `config/reload` re-reads.
pub async fn run(cfg: ScanConfig, config_path: Option<PathBuf>, shutdown: Shutdown) -> std::io::Result<()> {
    let virt = engine::uses_virtual_clock(&cfg).then(|| Arc::new(ManualClock::new(cfg.synthetic.start_ms)));
    let clock: Arc<dyn Clock> = match &virt {
        Some(v) => v.clone(),
        None => Arc::new(SystemClock),
    };
    run_with_clock(cfg, config_path, shutdown, clock, virt).await
}

pub async fn run_with_clock(
    cfg: ScanConfig,
    config_path: Option<PathBuf>,
    shutdown: Shutdown,
    clock: Arc<dyn Clock>,
    virt: Option<Arc<ManualClock>>,
) -> std::io::Result<()> {
    let listener = lifecycle::bind(&cfg.api.bind).await?;
    tracing::info!(bind = %cfg.api.bind, "antsdr-scan listening");
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    let plans = PlanSet::load(&cfg).map_err(|(k, m)| invalid(format!("{k}: {m}")))?;
    let profiles = Profiles::load(&cfg.classification.profiles).map_err(invalid)?;

    let shared = Shared::new(cfg.clone(), plan_summaries(&plans));
    let hub = Hub::new(
        cfg.ws.hub_config(
            &cfg.api.server,
            Source::Antsdr,
            cfg.api.timestamp_field,
            ErrorStyle::Nested,
        ),
        Arc::new(Greeter(shared.clone())),
    );
    shared.attach_hub(hub.clone());

    let loaded = runner::Loaded {
        cfg: cfg.clone(),
        plans,
        profiles,
    };
    let threads = runner::start(loaded, clock.clone(), virt, shared.clone())?;
    let http_metrics = Arc::new(ndefender_service::metrics::HttpMetrics::default());
    let api = Arc::new(Api {
        shared: shared.clone(),
        control: std::sync::Mutex::new(threads.control.clone()),
        clock,
        limiter: ratelimit::RateLimiter::new(cfg.limits.commands_per_minute, cfg.limits.dangerous_per_minute),
        trusted: api::trusted(&cfg),
        http: http_metrics.clone(),
        config_path,
        time_field: cfg.api.timestamp_field,
    });
    let mut ws = axum::Router::new();
    for p in WS_PATHS {
        ws = ws.route(p, hub.ws_route());
    }
    let app = api::router(api).merge(ws);
    let site = Site {
        name: "antsdr-scan",
        server: &cfg.api.server,
        audit: Some(&cfg.audit),
        style: ErrorStyle::Nested,
        ws_paths: &WS_PATHS,
        operator_routes: OPERATOR_ROUTES,
        open_paths: &[],
        metrics: http_metrics,
    };

    let threads = Arc::new(std::sync::Mutex::new(Some(threads)));
    spawn_sighup(threads.clone(), shutdown.clone());

    let alive = shared.clone();
    let status = shared.clone();
    lifecycle::spawn_watchdog(
        move || {
            let s = alive.clone();
            async move { s.read(|st| st.scan_thread_alive) }
        },
        move || {
            let clients = status.hub().map(|h| h.client_count()).unwrap_or(0);
            let running = status.read(|st| st.status.as_ref().is_some_and(|s| s.running));
            format!("clients={clients} scanning={running}")
        },
    );

    // Inputs stop first (no LOST on shutdown), the JSONL is flushed and synced, then the hub
    // closes every client with 1001.
    let hub_for_drain = hub.clone();
    daemon::serve(site, listener, app, shutdown, async move {
        let t = threads.lock().ok().and_then(|mut g| g.take());
        if let Some(t) = t {
            let _ = tokio::task::spawn_blocking(move || t.stop()).await;
        }
        hub_for_drain.shutdown().await;
    })
    .await
}

/// SIGHUP reopens the JSONL (logrotate without `copytruncate`).
fn spawn_sighup(threads: Arc<std::sync::Mutex<Option<runner::Threads>>>, shutdown: Shutdown) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot install the SIGHUP handler");
            return;
        };
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    if let Ok(g) = threads.lock() {
                        if let Some(t) = g.as_ref() {
                            t.reopen_output();
                        }
                    }
                }
                _ = &mut stop => return,
            }
        }
    });
}
