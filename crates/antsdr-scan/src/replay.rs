//! `run/replay` (antsdr-scan §10): a JSONL log re-emits its RF_CONTACT_* lines; an IQ
//! recording runs through the real DSP with a virtual clock and its own tracker. Replay never
//! writes the live JSONL.
//!
//! Memory is bounded whatever the file's size: a JSONL log is read in 64 KiB chunks and framed
//! by the tailer's [`LineFramer`] (lines over [`MAX_LINE_BYTES`] are skipped), and events reach
//! the caller in batches of at most [`BATCH`] as they are produced ([`run_streaming`]).

use crate::classify::Profiles;
use crate::config::{ClockMode, Pace, RawFormat, ScanConfig, SourceKind};
use crate::engine::{build_source, CollectSink, Engine};
use crate::plan::PlanSet;
use crate::source::sigmf;
use crate::tracker::RfEvent;
use ndefender_contract::contact::RfContactData;
use ndefender_contract::events::kind;
use ndefender_contract::time::{pick_time, Clock, ManualClock};
use ndefender_tail::{Frame, LineFramer};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Events handed to the caller at once.
pub const BATCH: usize = 256;
/// Longer JSONL lines are skipped (the scanner writes ≤ 4 KiB lines; the tailer's default cap).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
const CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    /// 400 `invalid_payload`.
    Invalid(String),
    /// 403 `path_not_allowed`.
    NotAllowed,
    /// 404 `not_found`.
    NotFound,
}

#[derive(Debug, Clone, Default)]
pub struct ReplayOutcome {
    pub frames: u64,
    pub detections: u64,
    pub events: Vec<RfEvent>,
}

/// Totals of a streamed replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub frames: u64,
    pub detections: u64,
    /// Events handed to the caller (after `max_events`).
    pub events: u64,
}

/// Where the caller's batches go; an error stops the replay and is returned.
pub type Emit<'a> = dyn FnMut(Vec<RfEvent>) -> Result<(), ReplayError> + 'a;

/// Counts events against `max_events` and hands them on in batches of ≤ [`BATCH`].
struct Batcher<'a, 'e> {
    emit: &'a mut Emit<'e>,
    pending: Vec<RfEvent>,
    left: usize,
    sent: u64,
}

impl Batcher<'_, '_> {
    /// `false` once `max_events` is reached.
    fn push(&mut self, ev: RfEvent) -> Result<bool, ReplayError> {
        if self.left == 0 {
            return Ok(false);
        }
        self.left -= 1;
        self.pending.push(ev);
        if self.pending.len() >= BATCH {
            self.flush()?;
        }
        Ok(self.left > 0)
    }
    fn flush(&mut self) -> Result<(), ReplayError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        self.sent += batch.len() as u64;
        (self.emit)(batch)
    }
}

/// Whether the canonical `q` lies inside one of the (canonicalised) `allowed` directories.
fn inside(q: &Path, allowed: &[PathBuf]) -> bool {
    allowed.iter().any(|d| {
        let d = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
        q.starts_with(&d)
    })
}

/// An absolute path without `..`: anything else is refused before the filesystem is asked.
fn plain_absolute(p: &Path, what: &str) -> Result<(), ReplayError> {
    if !p.is_absolute() {
        return Err(ReplayError::Invalid(format!("{what} must be absolute")));
    }
    if p.components().any(|c| c == std::path::Component::ParentDir) {
        return Err(ReplayError::NotAllowed);
    }
    Ok(())
}

/// Canonical path of an existing regular file inside one of `allowed` (403 otherwise, 404 if
/// missing). Symlinks are resolved first, so one pointing outside is refused.
pub fn check_path(path: &str, allowed: &[PathBuf]) -> Result<PathBuf, ReplayError> {
    let p = Path::new(path);
    plain_absolute(p, "log_path")?;
    match std::fs::canonicalize(p) {
        Ok(c) if inside(&c, allowed) => {
            // A FIFO or device would block the replay thread or never end.
            if std::fs::metadata(&c).is_ok_and(|m| m.is_file()) {
                Ok(c)
            } else {
                Err(ReplayError::Invalid("log_path is not a regular file".into()))
            }
        }
        Ok(_) => Err(ReplayError::NotAllowed),
        Err(_) if inside(p, allowed) => Err(ReplayError::NotFound),
        Err(_) => Err(ReplayError::NotAllowed),
    }
}

/// Checks `output_path` before anything is written: only inside one of `allowed`
/// (`replay.allowed_dirs`, the directories replay reads from), no `..`, the directory
/// canonicalised (a symlinked directory pointing outside is refused), not a symlink itself, and
/// not the live JSONL (`live`). Returns the canonical target for [`open_output`].
pub fn check_output(path: &Path, allowed: &[PathBuf], live: &Path) -> Result<PathBuf, ReplayError> {
    plain_absolute(path, "output_path")?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(ReplayError::Invalid("output_path must name a file".into()));
    };
    let dir = std::fs::canonicalize(dir)
        .map_err(|_| ReplayError::Invalid("output_path's directory does not exist".into()))?;
    if !inside(&dir, allowed) {
        return Err(ReplayError::NotAllowed);
    }
    let target = dir.join(name);
    let live_in_dir = live
        .parent()
        .and_then(|d| std::fs::canonicalize(d).ok())
        .zip(live.file_name())
        .map(|(d, n)| d.join(n));
    let live_file = std::fs::canonicalize(live).ok();
    if path == live || [live_in_dir, live_file].iter().flatten().any(|l| *l == target) {
        return Err(ReplayError::Invalid(
            "output_path must not be the live output.jsonl_path".into(),
        ));
    }
    match std::fs::symlink_metadata(&target) {
        Ok(m) if m.file_type().is_symlink() => Err(ReplayError::NotAllowed),
        Ok(m) if !m.is_file() => Err(ReplayError::Invalid("output_path is not a regular file".into())),
        _ => Ok(target),
    }
}

/// Opens a target from [`check_output`] for appending. `O_NOFOLLOW` closes the window between
/// the check and the open: a symlink put there meanwhile is refused, never followed.
pub fn open_output(target: &Path) -> Result<std::fs::File, ReplayError> {
    use nix::fcntl::OFlag;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        // NONBLOCK: opening a FIFO must not hang the replay; it is refused just below.
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
        .open(target)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == nix::errno::Errno::ELOOP as i32 => ReplayError::NotAllowed,
            _ => ReplayError::Invalid("output_path cannot be written".into()),
        })?;
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(file),
        _ => Err(ReplayError::Invalid("output_path is not a regular file".into())),
    }
}

/// Runs a replay to completion, collecting every event (tests and small files; the daemon uses
/// [`run_streaming`]). Blocking: call it off the executor.
pub fn run(
    cfg: &ScanConfig,
    plans: &PlanSet,
    profiles: &Profiles,
    path: &Path,
    max_events: Option<usize>,
) -> Result<ReplayOutcome, ReplayError> {
    let mut events = Vec::new();
    let stats = run_streaming(cfg, plans, profiles, path, max_events, &mut |b| {
        events.extend(b);
        Ok(())
    })?;
    Ok(ReplayOutcome {
        frames: stats.frames,
        detections: stats.detections,
        events,
    })
}

/// Runs a replay to completion, handing its events to `emit` in file order, in batches of at
/// most [`BATCH`], as they are produced. Blocking: call it off the executor.
pub fn run_streaming(
    cfg: &ScanConfig,
    plans: &PlanSet,
    profiles: &Profiles,
    path: &Path,
    max_events: Option<usize>,
    emit: &mut Emit<'_>,
) -> Result<ReplayStats, ReplayError> {
    let name = path.to_string_lossy();
    let mut b = Batcher {
        emit,
        pending: Vec::with_capacity(BATCH),
        left: max_events.unwrap_or(usize::MAX),
        sent: 0,
    };
    let (frames, detections) = if name.ends_with(".jsonl") {
        replay_jsonl(path, &mut b)?
    } else if name.ends_with(".sigmf-meta") || name.ends_with(".cf32") || name.ends_with(".ci16") {
        replay_iq(cfg, plans, profiles, path, &mut b)?
    } else {
        return Err(ReplayError::Invalid(
            "log_path must be .jsonl, .sigmf-meta, .cf32 or .ci16".into(),
        ));
    };
    b.flush()?;
    Ok(ReplayStats {
        frames,
        detections,
        events: b.sent,
    })
}

/// One JSONL line → a contact event, or `None` for anything else.
fn contact_event(line: &[u8]) -> Option<RfEvent> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(line) else {
        return None;
    };
    let k = match obj.get("type").and_then(Value::as_str) {
        Some("RF_CONTACT_NEW" | "CONTACT_NEW") => kind::RF_CONTACT_NEW,
        Some("RF_CONTACT_UPDATE" | "CONTACT_UPDATE") => kind::RF_CONTACT_UPDATE,
        Some("RF_CONTACT_LOST" | "CONTACT_LOST") => kind::RF_CONTACT_LOST,
        _ => return None,
    };
    let mut data = serde_json::from_value::<RfContactData>(obj.get("data")?.clone()).ok()?;
    data.sanitize();
    Some(RfEvent {
        kind: k,
        timestamp_ms: pick_time(&obj).unwrap_or_else(ndefender_contract::time::now_ms),
        data,
    })
}

/// Reads the log chunk by chunk: memory is one chunk, one line and one batch.
fn replay_jsonl(path: &Path, b: &mut Batcher<'_, '_>) -> Result<(u64, u64), ReplayError> {
    let mut file = std::fs::File::open(path).map_err(|_| ReplayError::NotFound)?;
    let mut framer = LineFramer::new(MAX_LINE_BYTES);
    let mut chunk = vec![0u8; CHUNK];
    let mut frames = 0u64;
    let mut more = true;
    let mut take = |data: &[u8], frames: &mut u64| -> Result<bool, ReplayError> {
        match contact_event(data) {
            Some(ev) => {
                *frames += 1;
                b.push(ev)
            }
            None => Ok(true),
        }
    };
    while more {
        let n = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReplayError::Invalid(format!("log_path cannot be read: {e}"))),
        };
        let mut input = &chunk[..n];
        while let Some(f) = framer.next_frame(&mut input) {
            if let Frame::Line { data, .. } = f {
                if !take(data, &mut frames)? {
                    more = false;
                    break;
                }
            }
        }
    }
    if more {
        if let Some(Frame::Line { data, .. }) = framer.finish() {
            take(data, &mut frames)?;
        }
    }
    Ok((frames, 0))
}

fn replay_iq(
    cfg: &ScanConfig,
    plans: &PlanSet,
    profiles: &Profiles,
    path: &Path,
    b: &mut Batcher<'_, '_>,
) -> Result<(u64, u64), ReplayError> {
    let mut c = cfg.clone();
    c.radio.source = SourceKind::File;
    c.synthetic.clock = ClockMode::Virtual;
    c.file.path = path.to_string_lossy().into_owned();
    c.file.pace = Pace::Fast;
    c.file.looped = false;
    c.output.stats_interval_s = 0.0;
    let name = c.file.path.clone();
    let start_ms = if name.ends_with(".sigmf-meta") {
        let meta = sigmf::read_meta(path).map_err(ReplayError::Invalid)?;
        meta.captures
            .iter()
            .find_map(|x| x.datetime_ms)
            .unwrap_or(cfg.synthetic.start_ms)
    } else {
        c.file.format = if name.ends_with(".ci16") {
            RawFormat::Ci16
        } else {
            RawFormat::Cf32
        };
        if c.file.sample_rate == 0 || c.file.center_hz == 0 {
            return Err(ReplayError::Invalid(
                "raw IQ replay needs file.sample_rate and file.center_hz in the config".into(),
            ));
        }
        cfg.synthetic.start_ms
    };
    let clock = Arc::new(ManualClock::new(start_ms));
    let source = build_source(&c, plans, clock.now_ms()).map_err(ReplayError::Invalid)?;
    let sink = CollectSink::default();
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let mut engine = Engine::new(
        c,
        plans.clone(),
        profiles.clone(),
        source,
        dyn_clock,
        Some(clock),
        Box::new(sink.clone()),
    )
    .map_err(ReplayError::Invalid)?;
    engine.start_default().map_err(ReplayError::Invalid)?;
    // The sink is drained after every step, so it holds one step's events at most.
    let mut failed = None;
    let mut drain = |b: &mut Batcher<'_, '_>| -> bool {
        for (events, _) in sink.take().batches {
            for ev in events {
                match b.push(ev) {
                    Ok(true) => {}
                    Ok(false) => return false,
                    Err(e) => {
                        failed = Some(e);
                        return false;
                    }
                }
            }
        }
        true
    };
    engine.run_to_end_with(|| drain(b));
    drain(b);
    if let Some(e) = failed {
        return Err(e);
    }
    let status = engine.status().clone();
    if status.frames_processed == 0 {
        return Err(ReplayError::Invalid(
            status.device_error.unwrap_or_else(|| "no step could be read".into()),
        ));
    }
    Ok((status.frames_processed, status.detections_total))
}
