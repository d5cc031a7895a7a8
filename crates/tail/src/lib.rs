//! JSONL tailer: follows one append-only file across rename rotation, copytruncate, in-place
//! rewrites, deletion and restarts, handing each complete line to a [`LineSink`] exactly once per
//! graceful run (at least once across a crash) — the rules of PROTOCOL.md §14.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use ndefender_tail::{spawn, TailConfig};
//! let cfg = TailConfig::new("remoteid", "/opt/ndefender/logs/remoteid_engine.jsonl", "/var/lib/ndefender/aggregator/tail-remoteid.json");
//! let handle = spawn(cfg, |line: &str, _invalid_utf8: bool| println!("{line}"))?;
//! // … later, off the async executor (e.g. in spawn_blocking):
//! handle.stop()?;
//! # Ok(()) }
//! ```
//!
//! Linux only (inotify, `st_dev`/`st_ino`).

mod checkpoint;
mod follower;
mod hold;
mod identity;
mod lines;
mod resume;
mod stats;
mod watch;

pub use checkpoint::Checkpoint;
pub use identity::fnv1a64;
pub use lines::{Frame, LineFramer};
pub use stats::{TailStats, TailStatsSnapshot};

use serde::{Deserialize, Serialize};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;
use watch::Msg;

/// Where to start when there is no usable checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartPosition {
    /// Skip what the file holds at startup (a line being written at that moment is skipped too).
    #[default]
    End,
    /// Deliver the whole file.
    Beginning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailConfig {
    /// Name for logs and metrics, e.g. `"remoteid"`.
    pub feed: String,
    pub path: PathBuf,
    /// E.g. `<state.dir>/tail-remoteid.json`; its directory is created if missing.
    pub checkpoint_path: PathBuf,
    pub start_position: StartPosition,
    /// Stat poll period; the backstop for everything inotify misses.
    pub poll_interval: Duration,
    /// Minimum time between two checkpoint writes (bounds what a crash can repeat).
    pub checkpoint_interval: Duration,
    /// Longer lines are discarded and counted.
    pub max_line_bytes: usize,
    /// How long the checkpoint waits for a sink that settles its lines later than `line`
    /// returns ([`LineSink::settled`]) before it advances anyway. Sinks that keep the default
    /// `settled` are never waited for.
    pub max_hold: Duration,
}

impl TailConfig {
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
    pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
    pub const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;
    pub const DEFAULT_MAX_HOLD: Duration = Duration::from_secs(5);

    /// A config with the spec defaults (`end`, 1 s, 1 s, 1 MiB).
    pub fn new(feed: impl Into<String>, path: impl Into<PathBuf>, checkpoint_path: impl Into<PathBuf>) -> Self {
        Self {
            feed: feed.into(),
            path: path.into(),
            checkpoint_path: checkpoint_path.into(),
            start_position: StartPosition::End,
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
            checkpoint_interval: Self::DEFAULT_CHECKPOINT_INTERVAL,
            max_line_bytes: Self::DEFAULT_MAX_LINE_BYTES,
            max_hold: Self::DEFAULT_MAX_HOLD,
        }
    }
}

/// Receives the lines, on the tailer's own thread, one at a time and in file order.
pub trait LineSink: Send + 'static {
    /// One complete line (CR stripped, lossily decoded). When this returns, the line counts as
    /// applied (checkpointable). A panic here is caught, counted and the line treated as applied.
    fn line(&mut self, line: &str, invalid_utf8: bool);
    /// Notable tail events (rotation, truncation, oversize line skipped, file appeared, file
    /// missing, io error) — default no-op.
    fn notice(&mut self, _n: &TailNotice) {}
    /// For a sink whose lines become durable only later (a database committing in batches): a
    /// mark covering every line it has returned from so far, e.g. the last sequence number
    /// those lines were published under. Taken with each checkpoint candidate.
    fn mark(&mut self) -> u64 {
        0
    }
    /// Whether every line covered by `mark` is durable downstream. Until it is, the checkpoint
    /// stays before those lines (a crash then repeats them instead of losing them), for at most
    /// [`TailConfig::max_hold`]. Default: settled as soon as `line` returns.
    fn settled(&mut self, _mark: u64) -> bool {
        true
    }
}

impl<F> LineSink for F
where
    F: FnMut(&str, bool) + Send + 'static,
{
    fn line(&mut self, line: &str, invalid_utf8: bool) {
        self(line, invalid_utf8)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailNotice {
    /// A file is present at the path and being followed (at startup, or after it was missing).
    Appeared,
    /// No file at the path (at startup, or after the followed one was deleted and drained).
    Missing,
    /// The path now names another file; the old one was drained and the new one is read from 0.
    /// Also raised at startup when the checkpointed file was rotated while stopped.
    Rotated,
    /// The file was truncated or rewritten in place and is read again from 0.
    Truncated,
    /// A line over `max_line_bytes` was discarded.
    OversizeLine { bytes: u64 },
    /// An I/O operation failed (raised once per distinct error; retried every second).
    IoError(String),
}

/// How long [`TailHandle::stop`] waits for the thread.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Owns a running tailer. Dropping it asks the thread to stop without waiting; use
/// [`TailHandle::stop`] to wait for the final checkpoint.
#[derive(Debug)]
pub struct TailHandle {
    stop: Arc<AtomicBool>,
    tx: Sender<Msg>,
    /// In a mutex only so the handle is `Sync` (it may sit in shared daemon state).
    done: Mutex<Receiver<io::Result<()>>>,
    thread: Option<JoinHandle<()>>,
    stats: TailStats,
}

impl TailHandle {
    pub fn stats(&self) -> TailStats {
        self.stats.clone()
    }

    /// Whether the thread has ended (only after a stop request, or a thread failure).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stop: finish the line being delivered, write the final checkpoint, join. Waits at most
    /// [`STOP_TIMEOUT`]. Blocking: from async code call it inside `spawn_blocking`.
    pub fn stop(self) -> io::Result<()> {
        self.stop_within(STOP_TIMEOUT)
    }

    /// [`TailHandle::stop`] with another bound. On timeout (a sink blocked inside `line`) the thread
    /// is left to finish on its own; it still writes the final checkpoint when it gets there.
    pub fn stop_within(mut self, limit: Duration) -> io::Result<()> {
        self.signal();
        let outcome = self
            .done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv_timeout(limit);
        match outcome {
            Ok(result) => {
                if let Some(t) = self.thread.take() {
                    // The thread has sent its result, so this join returns at once.
                    let _ = t.join();
                }
                result
            }
            Err(RecvTimeoutError::Timeout) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("tailer did not stop within {limit:?}"),
            )),
            Err(RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
                Err(io::Error::other("tailer thread ended abnormally"))
            }
        }
    }

    fn signal(&self) {
        self.stop.store(true, SeqCst);
        // The thread may already be gone; nothing to wake then.
        let _ = self.tx.send(Msg::Stop);
    }
}

impl Drop for TailHandle {
    fn drop(&mut self) {
        self.signal();
    }
}

/// Starts following `cfg.path` on a dedicated thread. The checkpoint is loaded and the start offset
/// fixed before this returns (so `start_position = end` means "what exists now"); every later
/// problem is logged, counted, reported as a notice and retried — the tailer does not give up.
pub fn spawn(cfg: TailConfig, sink: impl LineSink) -> io::Result<TailHandle> {
    if cfg.path.file_name().is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("tail path {} has no file name", cfg.path.display()),
        ));
    }
    if cfg.checkpoint_path.file_name().is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("checkpoint path {} has no file name", cfg.checkpoint_path.display()),
        ));
    }
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = TailStats::new();
    let name = format!("tail-{}", cfg.feed);
    let follower = follower::Follower::new(cfg, sink, stats.clone(), stop.clone(), tx.clone(), rx);
    let (done_tx, done) = mpsc::sync_channel(1);
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        let _ = done_tx.send(follower.run());
    })?;
    Ok(TailHandle {
        stop,
        tx,
        done: Mutex::new(done),
        thread: Some(thread),
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn handle_and_stats_can_live_in_shared_async_state() {
        send_sync::<TailHandle>();
        send_sync::<TailStats>();
    }

    #[test]
    fn start_position_config_spelling() -> Result<(), serde_json::Error> {
        assert_eq!(serde_json::from_str::<StartPosition>("\"end\"")?, StartPosition::End);
        assert_eq!(
            serde_json::from_str::<StartPosition>("\"beginning\"")?,
            StartPosition::Beginning
        );
        assert!(serde_json::from_str::<StartPosition>("\"start\"").is_err());
        assert_eq!(StartPosition::default(), StartPosition::End);
        Ok(())
    }

    #[test]
    fn spec_defaults() {
        let c = TailConfig::new("remoteid", "/x/f.jsonl", "/s/tail-remoteid.json");
        assert_eq!(c.poll_interval, Duration::from_secs(1));
        assert_eq!(c.checkpoint_interval, Duration::from_secs(1));
        assert_eq!(c.max_line_bytes, 1 << 20);
        assert_eq!(c.start_position, StartPosition::End);
    }

    #[test]
    fn path_without_file_name_is_refused() {
        let c = TailConfig::new("x", "/", "/tmp/ck.json");
        assert_eq!(
            spawn(c, |_: &str, _: bool| {}).err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidInput)
        );
    }
}
