//! Shared fixtures: a recording sink, a writer that appends like a real feed producer, polling waits.
#![allow(dead_code)]

use ndefender_tail::{LineSink, StartPosition, TailConfig, TailNotice};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub type Res<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Only keeps a broken test from hanging; never a speed assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `cond` until it holds or [`PATIENCE`] runs out.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) -> Res {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if cond() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if cond() {
        return Ok(());
    }
    Err(format!("timed out waiting for {what}").into())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    pub line: String,
    pub invalid_utf8: bool,
}

/// Records everything the tailer hands over; clones share the record.
#[derive(Clone, Default)]
pub struct Recorder {
    lines: Arc<Mutex<Vec<Got>>>,
    notices: Arc<Mutex<Vec<TailNotice>>>,
    /// Per-line pause, to make a backlog take a while.
    pub delay: Option<Duration>,
}

impl LineSink for Recorder {
    fn line(&mut self, line: &str, invalid_utf8: bool) {
        if let Some(d) = self.delay {
            std::thread::sleep(d);
        }
        self.lines.lock().unwrap_or_else(PoisonError::into_inner).push(Got {
            line: line.to_owned(),
            invalid_utf8,
        });
    }

    fn notice(&mut self, n: &TailNotice) {
        self.notices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(n.clone());
    }
}

impl Recorder {
    pub fn with_delay(delay: Duration) -> Self {
        Self {
            delay: Some(delay),
            ..Self::default()
        }
    }

    pub fn got(&self) -> Vec<Got> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn lines(&self) -> Vec<String> {
        self.got().into_iter().map(|g| g.line).collect()
    }

    pub fn count(&self) -> usize {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    pub fn notices(&self) -> Vec<TailNotice> {
        self.notices.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Ids of the `{"id":N}` lines received, in order (other lines are skipped).
    pub fn ids(&self) -> Vec<u64> {
        self.lines().iter().filter_map(|l| id_of(l)).collect()
    }

    pub fn wait_count(&self, n: usize) -> Res<Vec<String>> {
        wait_until(&format!("{n} lines"), || self.count() >= n).map_err(|e| format!("{e}; got {:?}", self.tail(5)))?;
        Ok(self.lines())
    }

    /// Waits until a line with this id has arrived.
    pub fn wait_id(&self, id: u64) -> Res {
        wait_until(&format!("id {id}"), || self.ids().contains(&id)).map_err(|e| {
            let ids = self.ids();
            format!("{e}; have {} ids, last {:?}", ids.len(), ids.last()).into()
        })
    }

    fn tail(&self, n: usize) -> Vec<String> {
        let l = self.lines();
        l[l.len().saturating_sub(n)..].to_vec()
    }
}

pub fn id_of(line: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("id")?.as_u64()
}

pub fn rec(id: u64) -> String {
    format!("{{\"id\":{id},\"model\":\"test-drone\",\"rssi\":-60}}\n")
}

pub fn recs(ids: std::ops::Range<u64>) -> String {
    ids.map(rec).collect()
}

/// An `O_APPEND` writer kept open across writes, like the feed producers.
pub struct Writer {
    pub file: File,
}

impl Writer {
    pub fn open(path: &Path) -> Res<Self> {
        Ok(Self {
            file: OpenOptions::new().create(true).append(true).open(path)?,
        })
    }

    pub fn write(&mut self, data: impl AsRef<[u8]>) -> Res {
        self.file.write_all(data.as_ref())?;
        Ok(())
    }
}

pub fn append(path: &Path, data: impl AsRef<[u8]>) -> Res {
    Writer::open(path)?.write(data)
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub checkpoint: PathBuf,
}

impl Fixture {
    pub fn new() -> Res<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("logs").join("feed.jsonl");
        std::fs::create_dir_all(dir.path().join("logs"))?;
        let checkpoint = dir.path().join("state").join("tail-feed.json");
        Ok(Self { dir, path, checkpoint })
    }

    /// Short intervals keep the suite quick; the inotify-only test sets its own.
    pub fn cfg(&self, start: StartPosition) -> TailConfig {
        let mut cfg = TailConfig::new("test", &self.path, &self.checkpoint);
        cfg.start_position = start;
        cfg.poll_interval = Duration::from_millis(200);
        cfg.checkpoint_interval = Duration::from_millis(200);
        cfg
    }

    pub fn rotated(&self) -> PathBuf {
        self.path.with_file_name("feed.jsonl.1")
    }

    pub fn checkpoint_offset(&self) -> Res<u64> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&self.checkpoint)?)?;
        v.get("offset")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| "checkpoint without offset".into())
    }
}

/// `ids` must be exactly `expected`, in order.
pub fn assert_ids(got: &[u64], expected: impl IntoIterator<Item = u64>) -> Res {
    let expected: Vec<u64> = expected.into_iter().collect();
    if got == expected.as_slice() {
        return Ok(());
    }
    let first_diff = got.iter().zip(&expected).position(|(a, b)| a != b);
    Err(format!(
        "ids differ: got {} ids, expected {}; first difference at index {first_diff:?}; got head {:?} tail {:?}",
        got.len(),
        expected.len(),
        &got[..got.len().min(10)],
        &got[got.len().saturating_sub(10)..]
    )
    .into())
}
