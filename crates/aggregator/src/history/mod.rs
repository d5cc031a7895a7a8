//! Detection history (issue 18): every contact, RemoteID position fix, RF/FPV detection,
//! command audit line and the kit's own position, kept on the kit in SQLite, bounded by age and
//! size, and queryable over `/api/v1/history/...`.
//!
//! Data flow: hub tap → [`writer`] thread → [`store`] (one writer connection, batched
//! transactions); queries run on separate read connections off the executor with a timeout
//! ([`History::query`]). The tap never blocks the publisher: when the writer falls behind,
//! envelopes are dropped for the history only and counted (`history_tap_dropped_total`).

pub mod export;
pub mod query;
pub mod record;
pub mod routes;
pub mod store;
#[cfg(test)]
mod tests;
pub mod writer;

use crate::config::AggregatorConfig;
use crate::core::Core;
use ndefender_contract::time::Clock;
use ndefender_hub::Hub;
use record::{AuditEntry, KitPosition};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// `[history]` (interfaces.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryConfig {
    pub enabled: bool,
    /// Empty: `<state.dir>/history.sqlite`.
    pub path: PathBuf,
    pub retention_days: u32,
    pub max_bytes: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: PathBuf::new(),
            retention_days: 30,
            max_bytes: 512 * 1024 * 1024,
        }
    }
}

impl HistoryConfig {
    pub fn db_path(&self, state_dir: &Path) -> PathBuf {
        if self.path.as_os_str().is_empty() {
            state_dir.join("history.sqlite")
        } else {
            self.path.clone()
        }
    }

    pub fn validate(&self) -> Result<(), (String, String)> {
        if !self.path.as_os_str().is_empty() && !self.path.is_absolute() {
            return Err(("history.path".into(), "must be an absolute path (or empty)".into()));
        }
        if !(1..=3650).contains(&self.retention_days) {
            return Err(("history.retention_days".into(), "must be 1 to 3650".into()));
        }
        if self.max_bytes < 1024 * 1024 {
            return Err(("history.max_bytes".into(), "must be at least 1048576 (1 MiB)".into()));
        }
        Ok(())
    }
}

/// Tap queue: about 10 s of a busy stack, so a commit stall (an SD card's fsync) drops nothing.
pub const TAP_CAPACITY: usize = 16_384;
/// How long a history query may run before it is interrupted (503 `history_timeout`).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
const READERS: usize = 2;

/// Counters for /metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub up: AtomicBool,
    pub sightings: AtomicU64,
    pub fixes: AtomicU64,
    pub detections: AtomicU64,
    pub audit: AtomicU64,
    pub kit: AtomicU64,
    pub duplicates: AtomicU64,
    pub commits: AtomicU64,
    pub errors_disk_full: AtomicU64,
    pub errors_io: AtomicU64,
    pub errors_other: AtomicU64,
    /// Records in batches that could not be committed.
    pub lost: AtomicU64,
    pub retention_age: AtomicU64,
    pub retention_size: AtomicU64,
    pub db_bytes: AtomicU64,
    pub audit_dropped: AtomicU64,
    pub queries_timed_out: AtomicU64,
    /// Highest hub seq whose records are settled: committed, or given up and counted in
    /// `lost` (see [`History::settled`]).
    pub watermark: AtomicU64,
    pub(crate) failing: AtomicBool,
    tap_dropped: Mutex<Option<Arc<AtomicU64>>>,
}

impl Stats {
    pub fn tap_dropped(&self) -> u64 {
        self.tap_dropped
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|c| c.load(Relaxed)))
            .unwrap_or(0)
    }

    pub fn write_prometheus(&self, out: &mut String) {
        let g = |a: &AtomicU64| a.load(Relaxed);
        let _ = writeln!(
            out,
            "# HELP history_up 1 while the history database is open for writing.\n# TYPE history_up gauge\nhistory_up {}",
            u8::from(self.up.load(Relaxed))
        );
        let _ = writeln!(out, "# TYPE history_records_total counter");
        for (r, v) in [
            ("sighting", &self.sightings),
            ("fix", &self.fixes),
            ("detection", &self.detections),
            ("audit", &self.audit),
            ("kit_position", &self.kit),
        ] {
            let _ = writeln!(out, "history_records_total{{record=\"{r}\"}} {}", g(v));
        }
        let _ = writeln!(out, "# TYPE history_write_errors_total counter");
        for (r, v) in [
            ("disk_full", &self.errors_disk_full),
            ("io", &self.errors_io),
            ("other", &self.errors_other),
        ] {
            let _ = writeln!(out, "history_write_errors_total{{reason=\"{r}\"}} {}", g(v));
        }
        let _ = writeln!(out, "# TYPE history_retention_deleted_total counter");
        for (r, v) in [("age", &self.retention_age), ("size", &self.retention_size)] {
            let _ = writeln!(out, "history_retention_deleted_total{{reason=\"{r}\"}} {}", g(v));
        }
        for (name, kind, v) in [
            ("history_duplicates_total", "counter", g(&self.duplicates)),
            ("history_commits_total", "counter", g(&self.commits)),
            ("history_records_lost_total", "counter", g(&self.lost)),
            ("history_tap_dropped_total", "counter", self.tap_dropped()),
            ("history_audit_dropped_total", "counter", g(&self.audit_dropped)),
            ("history_queries_timed_out_total", "counter", g(&self.queries_timed_out)),
            ("history_db_bytes", "gauge", g(&self.db_bytes)),
        ] {
            let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {v}");
        }
    }
}

/// Why a history query gave no answer.
#[derive(Debug)]
pub enum QueryError {
    /// A request parameter is wrong (400 naming it).
    BadField(&'static str, String),
    NotFound,
    Timeout,
    Unavailable,
    Db(rusqlite::Error),
}

impl From<rusqlite::Error> for QueryError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::OperationInterrupted => {
                QueryError::Timeout
            }
            _ => QueryError::Db(e),
        }
    }
}

struct Reader {
    conn: Mutex<Connection>,
    interrupt: Arc<rusqlite::InterruptHandle>,
}

struct Inner {
    stats: Arc<Stats>,
    path: PathBuf,
    readers: Vec<Reader>,
    next: AtomicUsize,
    audit_tx: mpsc::Sender<AuditEntry>,
    stop: watch::Sender<bool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    query_timeout: Duration,
}

/// The handle the daemon keeps: queries, the audit entry point, metrics, shutdown.
#[derive(Clone)]
pub struct History {
    inner: Arc<Inner>,
}

/// Reads what the writer samples once a second from the state owner: the kit's GPS position
/// and the current FPV contact (neither has an event of its own on the hub).
fn core_sampler(core: Core) -> Box<dyn FnMut() -> writer::Sample + Send> {
    Box::new(move || {
        core.read(|st| {
            let now = st.clock.now_ms();
            let gps = &st.snap.gps;
            writer::Sample {
                kit: gps.position().map(|(lat, lon)| KitPosition {
                    ts: now,
                    lat,
                    lon,
                    alt_m: gps.altitude_m,
                }),
                fpv: st
                    .contacts
                    .fpv
                    .as_ref()
                    .map(|f| (f.id.clone(), f.freq_hz, f.rssi_raw as f64, f.last_seen_ts)),
            }
        })
    })
}

impl History {
    /// Opens the database and starts the writer on the hub's `history` tap. Call right after the
    /// hub exists, before the feeds start. `None` when `[history] enabled = false`; a database
    /// that cannot be opened gives a handle whose queries answer 503 (`history_up 0`), and the
    /// daemon runs on without history.
    pub async fn start(cfg: &AggregatorConfig, hub: &Hub, core: &Core, clock: Arc<dyn Clock>) -> Option<History> {
        if !cfg.history.enabled {
            return None;
        }
        let tap = hub.tap("history", TAP_CAPACITY);
        let path = cfg.history.db_path(&cfg.state.dir);
        let limits = writer::Limits {
            retention_ms: u64::from(cfg.history.retention_days) * 86_400_000,
            max_bytes: cfg.history.max_bytes,
        };
        Some(Self::start_with(path, tap, limits, core_sampler(core.clone()), clock).await)
    }

    /// [`History::start`] with its parts given (tests, benchmarks).
    pub async fn start_with(
        path: PathBuf,
        tap: ndefender_hub::Tap,
        limits: writer::Limits,
        sampler: Box<dyn FnMut() -> writer::Sample + Send>,
        clock: Arc<dyn Clock>,
    ) -> History {
        let stats = Arc::new(Stats::default());
        if let Ok(mut g) = stats.tap_dropped.lock() {
            *g = Some(tap.dropped_counter());
        }
        let (audit_tx, audit_rx) = mpsc::channel(1024);
        let (stop, stop_rx) = watch::channel(false);
        let now = clock.now_ms();
        let p = path.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let store = store::Store::open(&p, now)?;
            let readers = (0..READERS)
                .map(|_| {
                    let c = store::open_reader(&p)?;
                    Ok(Reader {
                        interrupt: Arc::new(c.get_interrupt_handle()),
                        conn: Mutex::new(c),
                    })
                })
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok::<_, rusqlite::Error>((store, readers))
        })
        .await;
        let (store, readers) = match opened {
            Ok(Ok(x)) => (Some(x.0), x.1),
            Ok(Err(e)) => {
                tracing::error!(path = %path.display(), error = %e, "history database cannot be opened; running without history");
                (None, Vec::new())
            }
            Err(e) => {
                tracing::error!(error = %e, "history open task failed");
                (None, Vec::new())
            }
        };
        let mut thread = None;
        if let Some(store) = store {
            stats.up.store(true, Relaxed);
            let w = writer::Writer {
                store,
                tap,
                audit: audit_rx,
                sampler,
                clock,
                stats: stats.clone(),
                limits,
                stop: stop_rx,
            };
            let rt = tokio::runtime::Handle::current();
            let st = stats.clone();
            match std::thread::Builder::new()
                .name("history-writer".into())
                .spawn(move || {
                    w.run(rt);
                    st.up.store(false, Relaxed);
                }) {
                Ok(h) => thread = Some(h),
                Err(e) => {
                    stats.up.store(false, Relaxed);
                    tracing::error!(error = %e, "cannot start the history writer thread");
                }
            }
        }
        History {
            inner: Arc::new(Inner {
                stats,
                path,
                readers,
                next: AtomicUsize::new(0),
                audit_tx,
                stop,
                thread: Mutex::new(thread),
                query_timeout: QUERY_TIMEOUT,
            }),
        }
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.inner.stats
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether every envelope published up to hub seq `mark` is settled in the history: its
    /// records committed, or their batch given up (a full disk: counted in
    /// `history_records_lost_total`). A history that is not writing (database unavailable,
    /// writer stopped) settles everything: it must never hold the feed checkpoints back. The
    /// feeds' checkpoints wait on this (bounded by `TailConfig::max_hold`), so a line
    /// published but not yet committed when the power goes is read again at the next start.
    pub fn settled(&self, mark: u64) -> bool {
        let st = &self.inner.stats;
        !st.up.load(Relaxed) || st.watermark.load(Relaxed) >= mark
    }

    /// The audit trail's entry point: queues one line for the writer, never waits (a full
    /// queue drops the line, counted in `history_audit_dropped_total`).
    pub fn audit(&self, entry: AuditEntry) {
        if self.inner.audit_tx.try_send(entry).is_err() {
            self.inner.stats.audit_dropped.fetch_add(1, Relaxed);
        }
    }

    /// Runs `f` on a read connection off the executor; interrupted after the query timeout.
    pub async fn query<T, F>(&self, f: F) -> Result<T, QueryError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, QueryError> + Send + 'static,
    {
        let n = self.inner.readers.len();
        if n == 0 {
            return Err(QueryError::Unavailable);
        }
        let i = self.inner.next.fetch_add(1, Relaxed) % n;
        let interrupt = self.inner.readers[i].interrupt.clone();
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || {
            let conn = inner.readers[i].conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        });
        match tokio::time::timeout(self.inner.query_timeout, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(QueryError::Unavailable),
            Err(_) => {
                interrupt.interrupt();
                self.inner.stats.queries_timed_out.fetch_add(1, Relaxed);
                Err(QueryError::Timeout)
            }
        }
    }

    /// Stops the writer after it committed what it holds (bounded: 5 s).
    pub async fn close(&self) {
        let _ = self.inner.stop.send(true);
        let handle = self.inner.thread.lock().ok().and_then(|mut g| g.take());
        if let Some(h) = handle {
            let joined = tokio::task::spawn_blocking(move || h.join());
            if tokio::time::timeout(Duration::from_secs(5), joined).await.is_err() {
                tracing::warn!("history writer did not stop within 5 s");
            }
        }
    }
}
