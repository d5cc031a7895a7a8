//! The audit trail: one JSON line per command (who, from where, which route, how it
//! ended, its command_id), appended to `audit.path`, renamed to `<path>.1` once the file
//! reaches `audit.max_bytes`; admins read the newest lines at `GET /api/v1/audit?limit=N`.

use serde::Serialize;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const AUDIT_PATH: &str = "/api/v1/audit";
/// `limit` when the query gives none, and the most one answer returns.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// One audit line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub ts_ms: u64,
    /// Token name, `api_key`, or `anonymous` (no credential configured).
    pub who: String,
    pub role: &'static str,
    /// The client address as seen behind trusted proxies.
    pub client: String,
    /// Set when another daemon relayed the command for `who`: the relay's own identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relayed_by: Option<String>,
    pub method: String,
    pub route: String,
    pub status: u16,
    /// `accepted` for a 2xx answer, else the error code.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
}

/// The append-only file, shared by every request of a daemon.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    max_bytes: u64,
    lock: Mutex<()>,
    failures: std::sync::atomic::AtomicU64,
}

impl AuditLog {
    pub fn new(path: impl Into<PathBuf>, max_bytes: u64) -> Self {
        Self {
            path: path.into(),
            max_bytes,
            lock: Mutex::new(()),
            failures: Default::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines that could not be written (`ndefender_audit_write_failures_total`).
    pub fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Appends one line (blocking; call off the executor). A failure is logged and
    /// counted: the command already ran, so refusing it now would not undo it.
    pub fn append(&self, rec: &Record) {
        if let Err(e) = self.try_append(rec) {
            self.failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the audit trail");
        }
    }

    fn try_append(&self, rec: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let size = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if size > 0 && size + line.len() as u64 > self.max_bytes {
            std::fs::rename(&self.path, rotated(&self.path))?;
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        f.write_all(&line)
    }

    /// The newest `limit` lines, oldest first, from the current and the rotated file
    /// (blocking; call off the executor).
    pub fn tail(&self, limit: usize) -> std::io::Result<Vec<serde_json::Value>> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut lines = std::collections::VecDeque::with_capacity(limit + 1);
        for p in [rotated(&self.path), self.path.clone()] {
            let f = match std::fs::File::open(&p) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for l in std::io::BufReader::new(f).lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&l?) else {
                    continue;
                };
                lines.push_back(v);
                if lines.len() > limit {
                    lines.pop_front();
                }
            }
        }
        Ok(lines.into())
    }
}

fn rotated(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".1");
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u64) -> Record {
        Record {
            ts_ms: i,
            who: "tablet".into(),
            role: "operator",
            client: "10.0.0.2".into(),
            relayed_by: None,
            method: "POST".into(),
            route: "/api/v1/vrx/tune".into(),
            status: 200,
            outcome: "accepted".into(),
            command_id: Some(format!("c{i}")),
        }
    }

    #[test]
    fn appends_rotates_and_tails() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let log = AuditLog::new(dir.path().join("a/audit.jsonl"), 4096);
        for i in 0..100 {
            log.append(&rec(i));
        }
        assert_eq!(log.failures(), 0);
        assert!(std::fs::metadata(dir.path().join("a/audit.jsonl"))?.len() <= 4096);
        assert!(dir.path().join("a/audit.jsonl.1").exists());
        let t = log.tail(5)?;
        let ts: Vec<u64> = t.iter().filter_map(|v| v["ts_ms"].as_u64()).collect();
        assert_eq!(ts, vec![95, 96, 97, 98, 99]);
        assert_eq!(t[4]["who"], "tablet");
        assert_eq!(t[4]["command_id"], "c99");
        Ok(())
    }
}
