//! Counters shared with the owner (metrics, watchdogs) without any lock on the follower thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Live counters of one tailer. Cheap to clone; all clones see the same values.
#[derive(Debug, Clone)]
pub struct TailStats {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    epoch: Instant,
    lines: AtomicU64,
    bytes: AtomicU64,
    invalid_utf8: AtomicU64,
    oversize: AtomicU64,
    rotations: AtomicU64,
    truncations: AtomicU64,
    io_errors: AtomicU64,
    sink_panics: AtomicU64,
    checkpoint_errors: AtomicU64,
    offset: AtomicU64,
    /// Nanoseconds after `epoch` + 1; 0 = no line yet.
    last_line: AtomicU64,
    present: AtomicBool,
}

/// A point-in-time copy of [`TailStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TailStatsSnapshot {
    pub lines: u64,
    pub bytes: u64,
    pub invalid_utf8: u64,
    pub oversize: u64,
    pub rotations: u64,
    pub truncations: u64,
    pub io_errors: u64,
    pub sink_panics: u64,
    pub checkpoint_errors: u64,
    pub offset: u64,
    pub present: bool,
}

impl Default for TailStats {
    fn default() -> Self {
        Self::new()
    }
}

impl TailStats {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                epoch: Instant::now(),
                lines: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                invalid_utf8: AtomicU64::new(0),
                oversize: AtomicU64::new(0),
                rotations: AtomicU64::new(0),
                truncations: AtomicU64::new(0),
                io_errors: AtomicU64::new(0),
                sink_panics: AtomicU64::new(0),
                checkpoint_errors: AtomicU64::new(0),
                offset: AtomicU64::new(0),
                last_line: AtomicU64::new(0),
                present: AtomicBool::new(false),
            }),
        }
    }

    /// Lines handed to the sink.
    pub fn lines(&self) -> u64 {
        self.inner.lines.load(Relaxed)
    }
    /// Bytes read from the followed file(s), skipped and blank lines included.
    pub fn bytes(&self) -> u64 {
        self.inner.bytes.load(Relaxed)
    }
    /// Lines delivered with U+FFFD replacements.
    pub fn invalid_utf8(&self) -> u64 {
        self.inner.invalid_utf8.load(Relaxed)
    }
    /// Lines discarded for exceeding `max_line_bytes`.
    pub fn oversize(&self) -> u64 {
        self.inner.oversize.load(Relaxed)
    }
    /// Switches to a new file at the path (rename rotation, deletion + recreation, `.1` drained at startup).
    pub fn rotations(&self) -> u64 {
        self.inner.rotations.load(Relaxed)
    }
    /// Re-reads from offset 0 of the same file (copytruncate, in-place rewrite).
    pub fn truncations(&self) -> u64 {
        self.inner.truncations.load(Relaxed)
    }
    /// I/O failures (each followed by a retry after one second).
    pub fn io_errors(&self) -> u64 {
        self.inner.io_errors.load(Relaxed)
    }
    /// Panics caught in [`crate::LineSink::line`] (the line is then treated as delivered).
    pub fn sink_panics(&self) -> u64 {
        self.inner.sink_panics.load(Relaxed)
    }
    /// Checkpoints found at startup that could not be read or parsed (the tailer then started
    /// at `start_position`; the bad file is kept beside it as `<checkpoint>.corrupt`).
    pub fn checkpoint_errors(&self) -> u64 {
        self.inner.checkpoint_errors.load(Relaxed)
    }
    /// Offset in the current file up to which lines are delivered (the checkpoint offset).
    pub fn offset(&self) -> u64 {
        self.inner.offset.load(Relaxed)
    }
    /// Whether a file is currently open at the path.
    pub fn present(&self) -> bool {
        self.inner.present.load(Relaxed)
    }
    /// When the last line was handed to the sink.
    pub fn last_line_at(&self) -> Option<Instant> {
        match self.inner.last_line.load(Relaxed) {
            0 => None,
            n => self.inner.epoch.checked_add(Duration::from_nanos(n - 1)),
        }
    }
    /// Time since the last line, for a `last_line_age_seconds` gauge.
    pub fn last_line_age(&self) -> Option<Duration> {
        self.last_line_at().map(|t| t.elapsed())
    }

    pub fn snapshot(&self) -> TailStatsSnapshot {
        TailStatsSnapshot {
            lines: self.lines(),
            bytes: self.bytes(),
            invalid_utf8: self.invalid_utf8(),
            oversize: self.oversize(),
            rotations: self.rotations(),
            truncations: self.truncations(),
            io_errors: self.io_errors(),
            sink_panics: self.sink_panics(),
            checkpoint_errors: self.checkpoint_errors(),
            offset: self.offset(),
            present: self.present(),
        }
    }

    pub(crate) fn line(&self, invalid_utf8: bool) {
        self.inner.lines.fetch_add(1, Relaxed);
        if invalid_utf8 {
            self.inner.invalid_utf8.fetch_add(1, Relaxed);
        }
        let nanos = u64::try_from(self.inner.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        self.inner.last_line.store(nanos.saturating_add(1), Relaxed);
    }
    pub(crate) fn add_bytes(&self, n: u64) {
        self.inner.bytes.fetch_add(n, Relaxed);
    }
    pub(crate) fn oversize_line(&self) {
        self.inner.oversize.fetch_add(1, Relaxed);
    }
    pub(crate) fn rotation(&self) {
        self.inner.rotations.fetch_add(1, Relaxed);
    }
    pub(crate) fn truncation(&self) {
        self.inner.truncations.fetch_add(1, Relaxed);
    }
    pub(crate) fn io_error(&self) {
        self.inner.io_errors.fetch_add(1, Relaxed);
    }
    pub(crate) fn sink_panic(&self) {
        self.inner.sink_panics.fetch_add(1, Relaxed);
    }
    pub(crate) fn checkpoint_error(&self) {
        self.inner.checkpoint_errors.fetch_add(1, Relaxed);
    }
    pub(crate) fn set_offset(&self, offset: u64) {
        self.inner.offset.store(offset, Relaxed);
    }
    pub(crate) fn set_present(&self, present: bool) {
        self.inner.present.store(present, Relaxed);
    }
}
