//! The daemon skeleton: command line (`--config`, `--check-config`), config loading
//! (exit 2 naming the key), logging, the runtime, signals, the run, and the exit code.
//! Readiness, the watchdog and the shutdown order live in [`crate::lifecycle`], called
//! by each daemon's `run` in the order its data flows need.

use crate::config::{self, DaemonArgs, Validate};
use crate::Shutdown;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;

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
