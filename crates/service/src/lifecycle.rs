//! Process lifecycle (PROTOCOL.md §7.9): signals, graceful shutdown, systemd notify and
//! watchdog, logging.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// In-flight requests get this long after the listener stops (PROTOCOL.md §7.9).
pub const IN_FLIGHT_GRACE: Duration = Duration::from_secs(2);

/// A cloneable shutdown trigger/observer.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Self { tx: Arc::new(tx), rx }
    }
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }
    /// Resolves once shutdown is triggered.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.rx.clone();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    }

    /// Triggers on the first SIGTERM/SIGINT; on a second one runs `force`
    /// (flush checkpoints) and exits at once.
    pub fn listen_signals(&self, force: impl Fn() + Send + Sync + 'static) {
        use tokio::signal::unix::{signal, SignalKind};
        let this = self.clone();
        tokio::spawn(async move {
            let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                tracing::error!("cannot install signal handlers");
                return;
            };
            let mut seen = 0;
            loop {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
                seen += 1;
                if seen == 1 {
                    tracing::info!("shutdown requested");
                    this.trigger();
                } else {
                    tracing::warn!("second signal: exiting now");
                    force();
                    std::process::exit(0);
                }
            }
        });
    }
}

/// Serves `app` with peer addresses until `shutdown` (TLS, timeouts and the connection
/// cap as `opts` say), then stops accepting and gives in-flight requests
/// [`IN_FLIGHT_GRACE`]. `before_drain` runs right after the trigger (the hub closes its
/// sockets with 1001 there, since upgraded connections would otherwise hold the drain open).
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    opts: crate::listen::ServeOptions,
    shutdown: Shutdown,
    conv_flag: Option<Arc<std::sync::atomic::AtomicBool>>,
    before_drain: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let wait = shutdown.wait();
    let trigger = async move {
        wait.await;
        if let Some(flag) = conv_flag {
            flag.store(true, Ordering::Relaxed);
        }
    };
    crate::listen::run(listener, app, opts, trigger, before_drain, IN_FLIGHT_GRACE).await
}

/// The ticks of a periodic task that ends with the daemon (see [`Shutdown::ticks`]).
pub struct Ticks {
    interval: tokio::time::Interval,
    stop: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Ticks {
    /// Waits for the next tick; false once shutdown fired (the task then returns).
    pub async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.interval.tick() => true,
            _ = &mut self.stop => false,
        }
    }
}

impl Shutdown {
    /// Every `period` until shutdown; a late tick is delayed, never bunched with the next.
    pub fn ticks(&self, period: Duration) -> Ticks {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ticks {
            interval,
            stop: Box::pin(self.wait()),
        }
    }
}

/// Binds the daemon's listener, naming the address in the error, and logs it.
pub async fn listen(daemon: &str, addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let l = bind(addr).await?;
    tracing::info!(bind = %addr, "{daemon} listening");
    Ok(l)
}

/// Binds a TCP listener, naming the address in the error.
pub async fn bind(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))
}

/// systemd notification (no-ops without NOTIFY_SOCKET).
pub mod systemd {
    use sd_notify::NotifyState;
    use std::time::Duration;

    pub fn ready() {
        let _ = sd_notify::notify(&[NotifyState::Ready]);
    }
    pub fn stopping() {
        let _ = sd_notify::notify(&[NotifyState::Stopping]);
    }
    pub fn status(line: &str) {
        let _ = sd_notify::notify(&[NotifyState::Status(line)]);
    }
    pub fn watchdog() {
        let _ = sd_notify::notify(&[NotifyState::Watchdog]);
    }
    /// Half the watchdog period when `WATCHDOG_USEC` is set for this process.
    pub fn watchdog_interval() -> Option<Duration> {
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID") {
            if pid.parse::<u32>().ok() != Some(std::process::id()) {
                return None;
            }
        }
        Some(Duration::from_micros(usec / 2))
    }
}

/// Pets the systemd watchdog every half period, only while `alive` answers
/// within 1 s (so a wedged core task gets the daemon restarted).
pub fn spawn_watchdog<F, Fut>(alive: F, status: impl Fn() -> String + Send + 'static)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let Some(period) = systemd::watchdog_interval() else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            if matches!(tokio::time::timeout(Duration::from_secs(1), alive()).await, Ok(true)) {
                systemd::watchdog();
                systemd::status(&status());
            } else {
                tracing::error!("core task did not answer; withholding watchdog");
            }
        }
    });
}

/// Logs to stderr; `RUST_LOG` sets the filter (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
