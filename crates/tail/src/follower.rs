//! The follower thread (rules in PROTOCOL.md §14): decides what to read (a new file, a rotation,
//! a truncation), reads it in bounded chunks, hands framed lines to the sink and keeps the
//! checkpoint — never giving up on an error.

use crate::checkpoint::{self, Checkpoint, Position};
use crate::hold::{self, Hold};
use crate::identity::{current_head, read_at_retry, read_head, FileId, Head};
use crate::lines::{Frame, LineFramer};
use crate::resume::{self, Opened, Resume, StartAt};
use crate::watch::{DirWatch, Msg};
use crate::{LineSink, StartPosition, TailConfig, TailNotice, TailStats};
use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// PROTOCOL.md §14.11: after an I/O error the next attempt waits this long.
const RETRY: Duration = Duration::from_secs(1);
/// Keeps a zero interval from spinning and a huge one from overflowing `Instant` arithmetic.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Longest the final checkpoint waits for a sink still settling its lines.
const FLUSH_HOLD: Duration = Duration::from_secs(1);
/// PROTOCOL.md §14.4: read size.
const CHUNK: usize = 64 * 1024;

/// One open file and how far it has been read and delivered.
struct Tracked {
    file: File,
    id: FileId,
    /// Fingerprint of the bytes read so far (up to [`crate::identity::HEAD_MAX`]).
    head: Head,
    /// Bytes handed to the framer.
    read_pos: u64,
    /// Byte after the last LF whose line the sink has returned from: the checkpoint offset.
    committed: u64,
}

impl Tracked {
    fn new(r: Resume) -> Self {
        let at = r.at.offset();
        Self::at(r.opened, r.head, at)
    }

    fn at(opened: Opened, head: Head, offset: u64) -> Self {
        Self {
            file: opened.file,
            id: opened.id,
            head,
            read_pos: offset,
            committed: offset,
        }
    }

    fn position(&self) -> Position {
        Position {
            id: self.id,
            head: self.head,
            offset: self.committed,
        }
    }
}

enum Pumped {
    Eof,
    Stopped,
}

/// The delivery side, separate from the file bookkeeping so a `Tracked` can be borrowed next to it.
struct Ctx<S> {
    feed: String,
    path: PathBuf,
    sink: S,
    framer: LineFramer,
    buf: Vec<u8>,
    stats: TailStats,
    stop: Arc<AtomicBool>,
    ckpt: Checkpointer,
}

impl<S: LineSink> Ctx<S> {
    fn stopping(&self) -> bool {
        self.stop.load(SeqCst)
    }

    fn notice(&mut self, n: TailNotice) {
        notice(&mut self.sink, &self.feed, &n);
    }

    /// Reads `t` to EOF, delivering every complete line. Stops between two lines when asked to,
    /// leaving `t.committed` exactly after the last delivered one.
    fn pump(&mut self, t: &mut Tracked) -> io::Result<Pumped> {
        loop {
            if self.stopping() {
                return Ok(Pumped::Stopped);
            }
            let n = read_at_retry(&t.file, &mut self.buf, t.read_pos)?;
            if n == 0 {
                return Ok(Pumped::Eof);
            }
            // A rewrite between the caller's head check and this read would make us deliver the new
            // file's bytes at the old offset; checking after the read closes that window.
            if t.head.len > 0 && t.read_pos >= t.head.len && read_head(&t.file, t.head.len)? != Some(t.head) {
                self.restart_from_zero(t, "rewritten in place");
                continue;
            }
            let data = self.buf.get(..n).unwrap_or_default();
            if !t.head.extend(t.read_pos, data) {
                t.head = current_head(&t.file)?;
            }
            t.read_pos += n as u64;
            self.stats.add_bytes(n as u64);

            let mut rest = data;
            while let Some(frame) = self.framer.next_frame(&mut rest) {
                let end = frame.end();
                deliver(&mut self.sink, &self.stats, &self.feed, frame);
                t.committed = end;
                if self.stop.load(SeqCst) {
                    self.stats.set_offset(t.committed);
                    return Ok(Pumped::Stopped);
                }
            }
            t.committed = self.framer.boundary();
            self.stats.set_offset(t.committed);
            // A long backlog must not leave the checkpoint seconds behind (crash repeats ≤ 1 s).
            self.ckpt
                .tick(&self.feed, &self.path, Some(t.position()), &mut self.sink);
        }
    }

    /// PROTOCOL.md §14.6: same file, but not the bytes we were reading: drop the partial line and read from 0.
    fn restart_from_zero(&mut self, t: &mut Tracked, how: &str) {
        tracing::info!(feed = %self.feed, how, old_offset = t.read_pos, "file {how}; reading from 0");
        self.framer.reset(0);
        t.read_pos = 0;
        t.committed = 0;
        t.head = Head::EMPTY;
        self.stats.truncation();
        self.stats.set_offset(0);
        self.notice(TailNotice::Truncated);
    }

    /// The file is done for good (rotated away or deleted, already read to EOF): its unterminated
    /// tail is the writer's last word, deliver it (PROTOCOL.md §14.5).
    fn finish(&mut self, t: &mut Tracked) {
        if let Some(frame) = self.framer.finish() {
            deliver(&mut self.sink, &self.stats, &self.feed, frame);
        }
        t.committed = t.read_pos;
    }
}

fn deliver<S: LineSink>(sink: &mut S, stats: &TailStats, feed: &str, frame: Frame<'_>) {
    match frame {
        Frame::Line { data, .. } => {
            let (text, invalid) = match std::str::from_utf8(data) {
                Ok(s) => (Cow::Borrowed(s), false),
                Err(_) => (String::from_utf8_lossy(data), true),
            };
            // A sink bug on one line must not stop the feed; the line counts as handled.
            if catch_unwind(AssertUnwindSafe(|| sink.line(&text, invalid))).is_err() {
                stats.sink_panic();
                tracing::error!(feed, "line sink panicked; line skipped");
            }
            stats.line(invalid);
        }
        Frame::Oversize { len, .. } => {
            stats.oversize_line();
            tracing::warn!(feed, bytes = len, "oversize line skipped");
            notice(sink, feed, &TailNotice::OversizeLine { bytes: len });
        }
    }
}

fn notice<S: LineSink>(sink: &mut S, feed: &str, n: &TailNotice) {
    if catch_unwind(AssertUnwindSafe(|| sink.notice(n))).is_err() {
        tracing::error!(feed, notice = ?n, "line sink panicked in notice");
    }
}

/// PROTOCOL.md §14.9: writes at most once per interval, only when the position moved.
/// Keeps the checkpoint (PROTOCOL.md §14.9). The atomic write (temp file, fsync, rename, fsync dir) runs
/// on its own thread: an fsync can take tens of milliseconds, and on the follower's thread
/// it would hold up line delivery once per interval.
struct Checkpointer {
    path: PathBuf,
    interval: Duration,
    /// Last position handed to the writer (assumed written unless it reports a failure).
    written: Option<Position>,
    last_attempt: Option<Instant>,
    writer: CkWriter,
    /// Positions waiting for the sink to settle their lines.
    hold: Hold,
}

type CkJob = (PathBuf, Checkpoint, Option<std::sync::mpsc::Sender<io::Result<()>>>);

struct CkWriter {
    tx: Option<std::sync::mpsc::SyncSender<CkJob>>,
    /// Set by the writer when a write failed, so the follower hands the position over again.
    failed: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CkWriter {
    fn spawn(feed: &str) -> Self {
        // Capacity 1: while a write is in progress the next position waits there and newer
        // ones are simply offered again at the next tick.
        let (tx, rx) = std::sync::mpsc::sync_channel::<CkJob>(1);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = failed.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ckpt-{feed}"))
            .spawn(move || {
                let mut failing = false;
                while let Ok((path, ck, reply)) = rx.recv() {
                    let r = checkpoint::store(&path, &ck);
                    match &r {
                        Ok(()) if failing => {
                            failing = false;
                            tracing::info!(path = %path.display(), "checkpoint writable again");
                        }
                        Ok(()) => {}
                        Err(e) => {
                            if !failing {
                                tracing::warn!(path = %path.display(), error = %e, "cannot write checkpoint");
                            }
                            failing = true;
                            flag.store(true, SeqCst);
                        }
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(r);
                    }
                }
            })
            .ok();
        if thread.is_none() {
            tracing::error!("cannot start the checkpoint writer thread; checkpoints are written inline");
        }
        Self {
            tx: thread.as_ref().map(|_| tx),
            failed,
            thread,
        }
    }
}

impl Drop for CkWriter {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Checkpointer {
    fn due_at(&self, pos: Option<Position>) -> Option<Instant> {
        if pos.is_none() || pos == self.written {
            return None;
        }
        Some(match self.last_attempt {
            Some(t) => t + self.interval,
            None => Instant::now(),
        })
    }

    /// When the follower should look at the checkpoint again: the next write, or sooner while
    /// a position waits for the sink.
    fn wake_at(&self) -> Option<Instant> {
        let write = self.due_at(self.hold.released());
        if !self.hold.waiting() {
            return write;
        }
        let recheck = Instant::now() + hold::RECHECK;
        Some(write.map_or(recheck, |w| w.min(recheck)))
    }

    fn tick<S: LineSink>(&mut self, feed: &str, followed: &Path, pos: Option<Position>, sink: &mut S) {
        let pos = self.hold.offer(feed, pos, sink, Instant::now());
        if self.writer.failed.swap(false, SeqCst) {
            self.written = None;
        }
        let (Some(due), Some(p)) = (self.due_at(pos), pos) else {
            return;
        };
        if Instant::now() < due {
            return;
        }
        self.last_attempt = Some(Instant::now());
        let job = (self.path.clone(), Checkpoint::new(followed, &p), None);
        match &self.writer.tx {
            Some(tx) => {
                if tx.try_send(job).is_ok() {
                    self.written = Some(p);
                }
            }
            None => {
                if checkpoint::store(&self.path, &job.1).is_ok() {
                    self.written = Some(p);
                }
            }
        }
    }

    /// The final checkpoint: written before this returns (graceful stop: nothing repeated).
    /// A sink still settling its lines is waited for, at most [`FLUSH_HOLD`] (within
    /// [`crate::STOP_TIMEOUT`]); what it has not settled by then is left to be read again.
    fn flush<S: LineSink>(
        &mut self,
        feed: &str,
        followed: &Path,
        pos: Option<Position>,
        sink: &mut S,
    ) -> io::Result<()> {
        let until = Instant::now() + self.hold.max().min(FLUSH_HOLD);
        let mut pos = self.hold.offer(feed, pos, sink, Instant::now());
        while self.hold.waiting() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
            pos = self.hold.offer(feed, None, sink, Instant::now());
        }
        if self.writer.failed.swap(false, SeqCst) {
            self.written = None;
        }
        let Some(p) = pos.filter(|p| Some(*p) != self.written) else {
            // Still wait for a write in flight, so the file on disk is the final one.
            return self.sync();
        };
        let ck = Checkpoint::new(followed, &p);
        let Some(tx) = &self.writer.tx else {
            return checkpoint::store(&self.path, &ck);
        };
        let (reply_tx, reply_rx) = std::sync::mpsc::channel();
        if tx.send((self.path.clone(), ck.clone(), Some(reply_tx))).is_err() {
            return checkpoint::store(&self.path, &ck);
        }
        let r = reply_rx
            .recv_timeout(Duration::from_secs(2))
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "checkpoint write timed out")));
        if r.is_ok() {
            self.written = Some(p);
        }
        r
    }

    /// Waits until every write handed to the writer has finished.
    fn sync(&mut self) -> io::Result<()> {
        let Some(tx) = self.writer.tx.take() else {
            return Ok(());
        };
        drop(tx);
        if let Some(t) = self.writer.thread.take() {
            let _ = t.join();
        }
        Ok(())
    }
}

pub(crate) struct Follower<S> {
    ctx: Ctx<S>,
    rx: Receiver<Msg>,
    watch: DirWatch,
    poll_interval: Duration,
    start_position: StartPosition,
    /// `Some` until the startup plan (PROTOCOL.md §14.10) has been applied; holds the loaded checkpoint.
    pending_start: Option<Option<Checkpoint>>,
    /// `<path>.1` being finished after a rotation that happened while stopped.
    prev: Option<Tracked>,
    cur: Option<Tracked>,
    /// Position in the last file closed, so the checkpoint still says how far it was read.
    last: Option<Position>,
    had_file: bool,
    missing_noticed: bool,
    backoff_until: Option<Instant>,
    last_error: Option<String>,
    /// Notices raised before the thread runs wait here: the sink is only ever called on the thread.
    queued: Vec<TailNotice>,
    running: bool,
}

impl<S: LineSink> Follower<S> {
    /// Does the quick part of startup on the caller's thread — load the checkpoint, open the file,
    /// pick the start offset — so `start_position = end` means the size when `spawn` returned.
    pub(crate) fn new(
        cfg: TailConfig,
        sink: S,
        stats: TailStats,
        stop: Arc<AtomicBool>,
        tx: Sender<Msg>,
        rx: Receiver<Msg>,
    ) -> Self {
        let dir = checkpoint::parent_dir(&cfg.path);
        let file_name = cfg.path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        let ck_dir = checkpoint::parent_dir(&cfg.checkpoint_path);
        if let Err(e) = std::fs::create_dir_all(&ck_dir) {
            tracing::warn!(feed = %cfg.feed, dir = %ck_dir.display(), error = %e, "cannot create checkpoint directory");
        }
        let loaded = load_checkpoint(&cfg, &stats);
        let mut watch = DirWatch::new(dir, file_name, tx);
        watch.ensure();
        let mut me = Self {
            ctx: Ctx {
                feed: cfg.feed.clone(),
                path: cfg.path.clone(),
                sink,
                framer: LineFramer::new(cfg.max_line_bytes),
                buf: vec![0; CHUNK],
                stats,
                stop,
                ckpt: Checkpointer {
                    path: cfg.checkpoint_path.clone(),
                    interval: cfg.checkpoint_interval.min(MAX_INTERVAL),
                    written: None,
                    last_attempt: None,
                    writer: CkWriter::spawn(&cfg.feed),
                    hold: Hold::new(cfg.max_hold.min(MAX_INTERVAL)),
                },
            },
            rx,
            watch,
            poll_interval: cfg.poll_interval.clamp(MIN_INTERVAL, MAX_INTERVAL),
            start_position: cfg.start_position,
            pending_start: Some(loaded),
            prev: None,
            cur: None,
            last: None,
            had_file: false,
            missing_noticed: false,
            backoff_until: None,
            last_error: None,
            queued: Vec::new(),
            running: false,
        };
        if let Err(e) = me.start() {
            me.failed(e);
        }
        me
    }

    /// The thread body. Returns the result of the final checkpoint write.
    pub(crate) fn run(mut self) -> io::Result<()> {
        self.running = true;
        for n in std::mem::take(&mut self.queued) {
            self.ctx.notice(n);
        }
        let mut next_poll = Instant::now();
        loop {
            let now = Instant::now();
            let mut deadline = next_poll;
            if let Some(d) = self.ctx.ckpt.wake_at() {
                deadline = deadline.min(d);
            }
            if let Some(b) = self.backoff_until {
                deadline = deadline.min(b);
            }
            let wait = deadline.saturating_duration_since(now);
            let mut woke = false;
            match self.rx.recv_timeout(wait) {
                Ok(msg) => {
                    woke |= self.on_msg(msg);
                    while let Ok(msg) = self.rx.try_recv() {
                        woke |= self.on_msg(msg);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                // Unreachable while the watch holds a sender; never spin if it happens anyway.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
            if self.ctx.stopping() {
                break;
            }

            let now = Instant::now();
            let poll_due = now >= next_poll;
            if poll_due {
                self.watch.ensure();
                next_poll = now + self.poll_interval;
            }
            let (retry_due, backing_off) = match self.backoff_until {
                Some(b) => (now >= b, now < b),
                None => (false, false),
            };
            if (woke || poll_due || retry_due) && !backing_off {
                self.backoff_until = None;
                // Last line of defence for "never die": a bug in one round is retried like an I/O error.
                match catch_unwind(AssertUnwindSafe(|| self.step())) {
                    Ok(Ok(())) => self.recovered(),
                    Ok(Err(e)) => self.failed(e),
                    Err(_) => self.failed(io::Error::other("internal error in the tailer (panic); retrying")),
                }
            }
            if self.ctx.stopping() {
                break;
            }
            let pos = self.position();
            self.ctx
                .ckpt
                .tick(&self.ctx.feed, &self.ctx.path, pos, &mut self.ctx.sink);
        }
        let pos = self.position();
        let result = self
            .ctx
            .ckpt
            .flush(&self.ctx.feed, &self.ctx.path, pos, &mut self.ctx.sink);
        tracing::debug!(feed = %self.ctx.feed, offset = pos.map(|p| p.offset), "tailer stopped");
        result
    }

    fn on_msg(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Stop => true,
            Msg::Fs(ev) => self.watch.relevant(&ev),
        }
    }

    fn notice(&mut self, n: TailNotice) {
        if self.running {
            self.ctx.notice(n);
        } else {
            self.queued.push(n);
        }
    }

    /// What the checkpoint should say now: the file being read, or the last one closed.
    fn position(&self) -> Option<Position> {
        self.prev
            .as_ref()
            .or(self.cur.as_ref())
            .map(Tracked::position)
            .or(self.last)
    }

    fn failed(&mut self, e: io::Error) {
        self.ctx.stats.io_error();
        let msg = e.to_string();
        // One warning and one notice per distinct failure, not one per retry.
        if self.last_error.as_deref() != Some(msg.as_str()) {
            tracing::warn!(feed = %self.ctx.feed, path = %self.ctx.path.display(), error = %msg, "tail I/O error; retrying every second");
            self.notice(TailNotice::IoError(msg.clone()));
        }
        self.last_error = Some(msg);
        self.backoff_until = Some(Instant::now() + RETRY);
    }

    fn recovered(&mut self) {
        if self.last_error.take().is_some() {
            tracing::info!(feed = %self.ctx.feed, "tail I/O recovered");
        }
    }

    /// Applies the startup plan (PROTOCOL.md §14.10) once; retried every second while it fails.
    fn start(&mut self) -> io::Result<()> {
        let Some(ck) = self.pending_start.as_ref() else {
            return Ok(());
        };
        let plan = resume::plan(&self.ctx.path, ck.as_ref(), self.start_position)?;
        self.pending_start = None;
        tracing::info!(feed = %self.ctx.feed, path = %self.ctx.path.display(), "{}", plan.why);
        if plan.rotated {
            self.ctx.stats.rotation();
            self.notice(TailNotice::Rotated);
        }
        if plan.truncated {
            self.ctx.stats.truncation();
            self.notice(TailNotice::Truncated);
        }
        let first_at = plan.prev.as_ref().or(plan.current.as_ref()).map(|r| r.at);
        self.prev = plan.prev.map(Tracked::new);
        self.cur = plan.current.map(Tracked::new);
        match first_at {
            Some(StartAt::Line(o)) => self.ctx.framer.reset(o),
            Some(StartAt::MidLine(o)) => self.ctx.framer.reset_mid_line(o),
            None => self.ctx.framer.reset(0),
        }
        if let Some(pos) = self.position() {
            self.ctx.stats.set_offset(pos.offset);
        }
        if self.cur.is_some() {
            self.had_file = true;
            self.ctx.stats.set_present(true);
            self.notice(TailNotice::Appeared);
        } else {
            self.note_missing();
        }
        Ok(())
    }

    /// One round: finish `<path>.1` if pending, then follow the path.
    fn step(&mut self) -> io::Result<()> {
        if self.pending_start.is_some() {
            self.start()?;
        }
        if let Some(mut prev) = self.prev.take() {
            match self.ctx.pump(&mut prev) {
                Ok(Pumped::Eof) => {}
                other => {
                    self.prev = Some(prev);
                    return other.map(|_| ());
                }
            }
            self.ctx.finish(&mut prev);
            self.last = Some(prev.position());
            tracing::info!(feed = %self.ctx.feed, "finished the rotated file");
            let next = self.cur.as_ref().map_or(0, |c| c.read_pos);
            self.ctx.framer.reset(next);
        }
        self.follow()
    }

    fn follow(&mut self) -> io::Result<()> {
        let at_path = match resume::stat_regular(&self.ctx.path) {
            Ok(x) => x,
            Err(e) => {
                // The path cannot be inspected, but what is already open can still be delivered.
                if let Some(mut cur) = self.cur.take() {
                    let r = self.ctx.pump(&mut cur);
                    self.cur = Some(cur);
                    r?;
                }
                return Err(e);
            }
        };
        let Some(mut cur) = self.cur.take() else {
            return match at_path {
                Some(_) => self.open_new(false),
                None => {
                    self.note_missing();
                    Ok(())
                }
            };
        };
        if let Some((id, size)) = at_path {
            if id == cur.id {
                let r = self.follow_same(&mut cur, size);
                self.cur = Some(cur);
                return r;
            }
        }
        // PROTOCOL.md §14.5: renamed away (another file or nothing at the path now) or deleted; whatever the writer
        // put in it is still readable through our descriptor.
        match self.ctx.pump(&mut cur) {
            Ok(Pumped::Eof) => {}
            other => {
                self.cur = Some(cur);
                return other.map(|_| ());
            }
        }
        self.ctx.finish(&mut cur);
        self.last = Some(cur.position());
        drop(cur);
        self.ctx.stats.set_present(false);
        if at_path.is_some() {
            self.open_new(true)
        } else {
            self.note_missing();
            Ok(())
        }
    }

    /// Same file as before: it may have grown, been truncated (copytruncate) or rewritten in place (PROTOCOL.md §14.6).
    fn follow_same(&mut self, cur: &mut Tracked, size: u64) -> io::Result<()> {
        let how = if size < cur.read_pos {
            Some("truncated")
        } else if cur.head.len > 0 && read_head(&cur.file, cur.head.len)? != Some(cur.head) {
            Some("rewritten in place")
        } else {
            None
        };
        if let Some(how) = how {
            self.ctx.restart_from_zero(cur, how);
        }
        self.ctx.pump(cur).map(|_| ())
    }

    /// PROTOCOL.md §14.3: a file (new or replacing the previous one) at the path is read from 0.
    fn open_new(&mut self, replaced: bool) -> io::Result<()> {
        let Some(opened) = resume::open_regular(&self.ctx.path)? else {
            self.note_missing();
            return Ok(());
        };
        if self.had_file {
            self.ctx.stats.rotation();
        }
        self.had_file = true;
        self.missing_noticed = false;
        self.ctx.stats.set_present(true);
        self.ctx.stats.set_offset(0);
        self.ctx.framer.reset(0);
        tracing::info!(feed = %self.ctx.feed, path = %self.ctx.path.display(), replaced, "following new file from 0");
        self.notice(if replaced {
            TailNotice::Rotated
        } else {
            TailNotice::Appeared
        });
        let mut t = Tracked::at(opened, Head::EMPTY, 0);
        let r = self.ctx.pump(&mut t);
        self.cur = Some(t);
        r.map(|_| ())
    }

    fn note_missing(&mut self) {
        self.ctx.stats.set_present(false);
        if !self.missing_noticed {
            self.missing_noticed = true;
            tracing::info!(feed = %self.ctx.feed, path = %self.ctx.path.display(), "feed file missing; waiting for it");
            self.notice(TailNotice::Missing);
        }
    }
}

/// A checkpoint for another path, or one that cannot be read, is no checkpoint (PROTOCOL.md §14.10: fall back to
/// `start_position`).
///
/// An unreadable or corrupt checkpoint is never silent: it is logged as an error, counted
/// ([`TailStats::checkpoint_errors`], the aggregator's `aggregator_feed_checkpoint_errors_total`)
/// and moved aside to `<checkpoint>.corrupt` so the evidence survives the next checkpoint write.
/// Resuming at `start_position` is the documented choice (aggregator §3 T10): with `end` the lines
/// written while the daemon was down are skipped rather than replayed — the same as a first start;
/// deployments that prefer repeats over gaps set `tail.start_position = "beginning"`.
fn load_checkpoint(cfg: &TailConfig, stats: &TailStats) -> Option<Checkpoint> {
    match checkpoint::load(&cfg.checkpoint_path) {
        Ok(Some(ck)) if ck.path == cfg.path => Some(ck),
        Ok(Some(ck)) => {
            tracing::info!(feed = %cfg.feed, checkpoint_path = %ck.path.display(), path = %cfg.path.display(),
                "checkpoint is for another path; ignoring it");
            None
        }
        Ok(None) => None,
        Err(e) => {
            stats.checkpoint_error();
            let mut aside = cfg.checkpoint_path.clone().into_os_string();
            aside.push(".corrupt");
            let aside = PathBuf::from(aside);
            let kept = std::fs::rename(&cfg.checkpoint_path, &aside).is_ok();
            tracing::error!(feed = %cfg.feed, path = %cfg.checkpoint_path.display(), error = %e,
                start_position = ?cfg.start_position, kept_aside = kept, aside = %aside.display(),
                "unreadable tail checkpoint; resuming at start_position");
            None
        }
    }
}
