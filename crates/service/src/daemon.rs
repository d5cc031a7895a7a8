//! The daemon skeleton: command line (`--config`, `--check-config`), config loading
//! (exit 2 naming the key), logging, the runtime, signals, the run, and the exit code.
//! [`serve`] is the end of every daemon's `run`: the REST conventions and the listener
//! built from `[server]`, readiness, and the shutdown order around the daemon's own drain.

use crate::audit::AuditLog;
use crate::config::{self, DaemonArgs, Validate};
use crate::http::Conventions;
use crate::lifecycle::systemd;
use crate::listen::ServeOptions;
use crate::metrics::HttpMetrics;
use crate::server::{AuditConfig, Defaults, ServerConfig};
use crate::Shutdown;
use ndefender_contract::ErrorStyle;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;

/// What a daemon may add to the common startup.
pub struct Hooks<C> {
    /// Log filter to use when `RUST_LOG` is unset (e.g. the scanner's `log.level`).
    pub log_level: fn(&C) -> Option<String>,
    /// Commands that run instead of the daemon (the scanner's `--bench-dsp`, `record`):
    /// `Some(code)` exits with it.
    pub offline: fn(&C, &DaemonArgs) -> Option<i32>,
}

impl<C> Default for Hooks<C> {
    fn default() -> Self {
        Self {
            log_level: |_| None,
            offline: |_, _| None,
        }
    }
}

/// `[log]` (the scanner, the RemoteID engine); a daemon's [`Hooks::log_level`] returns its level.
pub use crate::server::LogConfig;

/// Runs a daemon's `main` and exits the process with its code.
pub fn main<C, F, Fut>(name: &'static str, hooks: Hooks<C>, run: F) -> !
where
    C: DeserializeOwned + Serialize + Default + Validate,
    F: FnOnce(C, DaemonArgs, Shutdown) -> Fut,
    Fut: Future<Output = std::io::Result<()>>,
{
    let (cfg, args) = config::load_or_exit::<C>(name);
    if std::env::var_os("RUST_LOG").is_none() {
        if let Some(level) = (hooks.log_level)(&cfg) {
            // Before any thread exists, so setting the variable is race-free.
            std::env::set_var("RUST_LOG", level);
        }
    }
    crate::lifecycle::init_logging();
    if let Some(code) = (hooks.offline)(&cfg, &args) {
        std::process::exit(code);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async move {
        let shutdown = Shutdown::new();
        shutdown.listen_signals(|| {});
        match run(cfg, args, shutdown).await {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "{name} failed");
                1
            }
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}

/// What the serve path needs to know about one daemon besides its `[server]` section.
pub struct Site<'a, D: Defaults> {
    /// Names the daemon in the log lines.
    pub name: &'static str,
    pub server: &'a ServerConfig<D>,
    /// Commands are appended to this trail; `None` for a daemon without commands.
    pub audit: Option<&'a AuditConfig<D>>,
    pub style: ErrorStyle,
    pub ws_paths: &'a [&'a str],
    /// Command paths an operator may call; every other command is admin-only.
    pub operator_routes: &'a [&'a str],
    /// Paths served without credentials besides `/api/v1/health` (the dashboard's files).
    pub open_paths: &'a [&'a str],
    /// Shared with the daemon's `/metrics` when it renders one.
    pub metrics: Arc<HttpMetrics>,
}

/// Serves `app` as every daemon does: the conventions layer built from `[server]`
/// (credentials and roles, Origin, JSON-only command bodies, the audit of commands), the
/// listener with TLS, the header timeout and the connection cap; READY once it is about to
/// accept; on shutdown, `before_drain` (inputs stop, the hub closes its clients), the
/// in-flight grace, STOPPING.
pub async fn serve<D, F>(
    site: Site<'_, D>,
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: Shutdown,
    before_drain: F,
) -> std::io::Result<()>
where
    D: Defaults,
    F: Future<Output = ()> + Send + 'static,
{
    let opts = ServeOptions::from_server(site.server, site.metrics.clone())?;
    let mut conv = Conventions::from_server(site.style, site.server)
        .with_ws_paths(site.ws_paths)
        .with_operator_routes(site.operator_routes)
        .with_http_metrics(site.metrics);
    conv.open_paths.extend(site.open_paths.iter().map(|p| (*p).to_owned()));
    if let Some(a) = site.audit {
        conv = conv.with_audit(Arc::new(AuditLog::new(&a.path, a.max_bytes)));
    }
    let flag = conv.shutting_down.clone();
    let app = crate::http::apply(app, conv);
    systemd::ready();
    crate::lifecycle::serve(listener, app, opts, shutdown, Some(flag), before_drain).await?;
    systemd::stopping();
    tracing::info!("{} stopped", site.name);
    Ok(())
}
