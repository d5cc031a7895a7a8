//! The JSONL ground truth (antsdr-scan §9): one compact line per event, `O_APPEND`, one write
//! per batch, an fsync policy, rotation by rename or copytruncate, and torn writes isolated
//! on their own line, and a size cap (`output.max_bytes`) that renames the file to `<path>.1`
//! (one generation, the name the aggregator's tailer drains after a rename). File operations sit behind [`Opener`]/[`OutputFile`] so a full disk can
//! be simulated.

use crate::config::FsyncPolicy;
use ndefender_contract::contact::{RfContactData, RfFeatures};
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The `data` of an RF_CONTACT_* line with `freq_hz`, `bucket_hz`, `bandwidth_est_hz` and
/// `cluster_size` as JSON integers (§9), in the contract's key order.
pub struct WireRf<'a>(pub &'a RfContactData);

struct WireFeatures<'a>(&'a RfFeatures);

fn int(v: f64) -> i64 {
    if v.is_finite() {
        v.round() as i64
    } else {
        0
    }
}

impl Serialize for WireRf<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let mut m = s.serialize_struct("RfContactData", 10)?;
        m.serialize_field("id", &d.id)?;
        m.serialize_field("freq_hz", &int(d.freq_hz))?;
        m.serialize_field("bucket_hz", &int(d.bucket_hz))?;
        m.serialize_field("band", &d.band)?;
        m.serialize_field("snr_db", &d.snr_db)?;
        m.serialize_field("peak_db", &d.peak_db)?;
        m.serialize_field("noise_floor_db", &d.noise_floor_db)?;
        m.serialize_field("bandwidth_class", &d.bandwidth_class)?;
        m.serialize_field("confidence", &d.confidence)?;
        m.serialize_field("features", &WireFeatures(&d.features))?;
        m.end()
    }
}

impl Serialize for WireFeatures<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut m = s.serialize_struct("RfFeatures", 11)?;
        m.serialize_field("prominence_db", &f.prominence_db)?;
        m.serialize_field("cluster_size", &f.cluster_size)?;
        m.serialize_field("pattern_hint", &f.pattern_hint)?;
        m.serialize_field("hop_hint", &f.hop_hint)?;
        m.serialize_field("bandwidth_est_hz", &int(f.bandwidth_est_hz).max(0))?;
        m.serialize_field("burstiness", &f.burstiness)?;
        m.serialize_field("hop_rate_hz", &f.hop_rate_hz)?;
        m.serialize_field("control_score", &f.control_score)?;
        m.serialize_field("class_path", &f.class_path)?;
        m.serialize_field("classification_confidence", &f.classification_confidence)?;
        m.serialize_field("control_correlation", &f.control_correlation)?;
        m.end()
    }
}

/// An open output file.
pub trait OutputFile: Send {
    /// One `write(2)`: may be short.
    fn write_once(&mut self, buf: &[u8]) -> io::Result<usize>;
    fn sync_data(&mut self) -> io::Result<()>;
    /// (dev, inode) of the open file.
    fn identity(&self) -> Option<(u64, u64)>;
    /// Current size of the open file (fstat: someone else's copytruncate shows at once).
    fn size(&self) -> io::Result<u64>;
}

/// Opens output files and stats paths.
pub trait Opener: Send {
    fn open_append(&mut self, path: &Path) -> io::Result<Box<dyn OutputFile>>;
    /// (dev, inode) of whatever is at `path` now; `None` when missing.
    fn identity_of(&mut self, path: &Path) -> Option<(u64, u64)>;
    /// Size rotation: `from` becomes `to`, replacing an older `to`.
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsOpener;

struct FsFile(std::fs::File);

impl OutputFile for FsFile {
    fn write_once(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::Write::write(&mut self.0, buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn identity(&self) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        self.0.metadata().ok().map(|m| (m.dev(), m.ino()))
    }
    fn size(&self) -> io::Result<u64> {
        self.0.metadata().map(|m| m.len())
    }
}

impl Opener for FsOpener {
    fn open_append(&mut self, path: &Path) -> io::Result<Box<dyn OutputFile>> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new().recursive(true).mode(0o755).create(parent)?;
        }
        let f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(path)?;
        Ok(Box::new(FsFile(f)))
    }
    fn identity_of(&mut self, path: &Path) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
}

/// `<path>.1`: the single older generation kept by the size cap.
pub fn rotated_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Rotation-friendly append-only writer.
pub struct JsonlWriter {
    path: PathBuf,
    opener: Box<dyn Opener>,
    file: Option<Box<dyn OutputFile>>,
    policy: FsyncPolicy,
    interval: Duration,
    last_sync: Instant,
    dirty: bool,
    torn: bool,
    reopen: bool,
    buf: Vec<u8>,
    /// `output.max_bytes`; 0 = no cap.
    max_bytes: u64,
    pub write_errors: u64,
    pub lines_written: u64,
    /// Size rotations done (file renamed to `<path>.1`).
    pub rotations: u64,
}

impl std::fmt::Debug for JsonlWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl JsonlWriter {
    pub fn new(path: PathBuf, opener: Box<dyn Opener>, policy: FsyncPolicy, interval: Duration) -> Self {
        Self {
            path,
            opener,
            file: None,
            policy,
            interval,
            last_sync: Instant::now(),
            dirty: false,
            torn: false,
            reopen: false,
            buf: Vec::with_capacity(16 * 1024),
            max_bytes: 0,
            write_errors: 0,
            lines_written: 0,
            rotations: 0,
        }
    }

    /// Caps the file at `max_bytes` (0 = no cap): a batch that would take it past the cap first
    /// renames it to `<path>.1` (replacing the previous one) and starts a new file. Lines are
    /// never split, so a file exceeds the cap only when one batch alone is larger.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Renames the open file away when `incoming` more bytes would exceed the cap. A failed
    /// rename is logged and the file keeps growing: losing lines would be worse than a big file.
    fn rotate_if_full(&mut self, incoming: usize) -> io::Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        let size = f.size()?;
        if self.max_bytes == 0 || size == 0 || size.saturating_add(incoming as u64) <= self.max_bytes {
            return Ok(());
        }
        // What is already written reaches the disk before the file changes its name.
        let _ = f.sync_data();
        let to = rotated_path(&self.path);
        match self.opener.rename(&self.path, &to) {
            Ok(()) => {
                self.rotations += 1;
                tracing::info!(path = %self.path.display(), size, "JSONL reached output.max_bytes; rotated to .1");
                self.file = None;
                self.ensure_open()
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot rotate the JSONL; it keeps growing");
                Ok(())
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SIGHUP: reopen before the next batch.
    pub fn request_reopen(&mut self) {
        self.reopen = true;
    }

    fn ensure_open(&mut self) -> io::Result<()> {
        let at_path = self.opener.identity_of(&self.path);
        let stale = match (&self.file, at_path) {
            (None, _) => true,
            (Some(_), None) => true,
            (Some(f), Some(id)) => f.identity() != Some(id),
        };
        if stale || self.reopen {
            if let Some(mut old) = self.file.take() {
                // Lines already written to a rotated file still reach the disk.
                let _ = old.sync_data();
            }
            self.reopen = false;
            self.file = Some(self.opener.open_append(&self.path)?);
        }
        Ok(())
    }

    /// Writes one batch of lines (each without its newline) with a single write.
    /// Errors are counted; the caller records `jsonl_write_failed`.
    pub fn write_batch<S: AsRef<str>>(&mut self, lines: &[S]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        if self.torn {
            self.buf.push(b'\n');
        }
        for l in lines {
            self.buf.extend_from_slice(l.as_ref().as_bytes());
            self.buf.push(b'\n');
        }
        let result = self.ensure_open().and_then(|()| {
            self.rotate_if_full(self.buf.len())?;
            let f = self
                .file
                .as_mut()
                .ok_or_else(|| io::Error::other("output file not open"))?;
            let n = f.write_once(&self.buf)?;
            if n < self.buf.len() {
                return Err(io::Error::new(io::ErrorKind::WriteZero, format!("short write {n}")));
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                self.torn = false;
                self.dirty = true;
                self.lines_written += lines.len() as u64;
                match self.policy {
                    FsyncPolicy::Batch => self.sync()?,
                    FsyncPolicy::Interval => self.maybe_sync()?,
                    FsyncPolicy::Never => {}
                }
                Ok(())
            }
            Err(e) => {
                self.write_errors += 1;
                // A partial line may be on disk: the next batch starts on a fresh line.
                self.torn = true;
                Err(e)
            }
        }
    }

    /// `fdatasync` when the interval has passed and data was written.
    pub fn maybe_sync(&mut self) -> io::Result<()> {
        if self.dirty && self.policy == FsyncPolicy::Interval && self.last_sync.elapsed() >= self.interval {
            self.sync()?;
        }
        Ok(())
    }

    pub fn sync(&mut self) -> io::Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.sync_data()?;
        }
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A disk that fails writes while `full` is set, keeping what it accepted.
    struct FakeDisk {
        data: Arc<Mutex<Vec<u8>>>,
        full: Arc<Mutex<bool>>,
    }
    struct FakeFile {
        data: Arc<Mutex<Vec<u8>>>,
        full: Arc<Mutex<bool>>,
    }
    impl OutputFile for FakeFile {
        fn write_once(&mut self, buf: &[u8]) -> io::Result<usize> {
            let full = self.full.lock().map(|g| *g).unwrap_or(true);
            let mut d = self.data.lock().map_err(|_| io::Error::other("poisoned"))?;
            if full {
                // ENOSPC after part of the batch reached the file.
                d.extend_from_slice(&buf[..buf.len() / 2]);
                return Err(io::Error::from_raw_os_error(28));
            }
            d.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn sync_data(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn identity(&self) -> Option<(u64, u64)> {
            Some((1, 1))
        }
        fn size(&self) -> io::Result<u64> {
            Ok(self.data.lock().map_err(|_| io::Error::other("poisoned"))?.len() as u64)
        }
    }
    impl Opener for FakeDisk {
        fn open_append(&mut self, _: &Path) -> io::Result<Box<dyn OutputFile>> {
            Ok(Box::new(FakeFile {
                data: self.data.clone(),
                full: self.full.clone(),
            }))
        }
        fn identity_of(&mut self, _: &Path) -> Option<(u64, u64)> {
            Some((1, 1))
        }
        fn rename(&mut self, _: &Path, _: &Path) -> io::Result<()> {
            Err(io::Error::other("the fake disk has no rotation"))
        }
    }

    #[test]
    fn enospc_is_counted_and_the_torn_fragment_stays_on_its_own_line() -> Result<(), Box<dyn std::error::Error>> {
        let data = Arc::new(Mutex::new(Vec::new()));
        let full = Arc::new(Mutex::new(false));
        let disk = FakeDisk {
            data: data.clone(),
            full: full.clone(),
        };
        let mut w = JsonlWriter::new("/x".into(), Box::new(disk), FsyncPolicy::Batch, Duration::from_secs(1));
        w.write_batch(&["{\"a\":1}"])?;
        *full.lock().map_err(|_| "poisoned")? = true;
        assert!(w.write_batch(&["{\"b\":2}", "{\"c\":3}"]).is_err());
        assert_eq!(w.write_errors, 1);
        *full.lock().map_err(|_| "poisoned")? = false;
        w.write_batch(&["{\"d\":4}"])?;
        let text = String::from_utf8(data.lock().map_err(|_| "poisoned")?.clone())?;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.first(), Some(&"{\"a\":1}"));
        assert_eq!(lines.last(), Some(&"{\"d\":4}"));
        assert!(
            lines
                .iter()
                .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_err())
                .count()
                == 1
        );
        Ok(())
    }

    #[test]
    fn size_cap_renames_to_dot_1_without_splitting_lines() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("out.jsonl");
        let mut w = JsonlWriter::new(
            p.clone(),
            Box::new(FsOpener),
            FsyncPolicy::Never,
            Duration::from_secs(1),
        )
        .with_max_bytes(20);
        w.write_batch(&["{\"n\":1}", "{\"n\":2}"])?; // 16 bytes
        w.write_batch(&["{\"n\":3}"])?; // 24 > 20: rotate first
        assert_eq!(std::fs::read_to_string(rotated_path(&p))?, "{\"n\":1}\n{\"n\":2}\n");
        assert_eq!(std::fs::read_to_string(&p)?, "{\"n\":3}\n");
        // A batch larger than the cap goes whole into a fresh file; the previous .1 is replaced.
        w.write_batch(&["{\"n\":4}", "{\"n\":5}", "{\"n\":6}"])?;
        assert_eq!(std::fs::read_to_string(rotated_path(&p))?, "{\"n\":3}\n");
        assert_eq!(std::fs::read_to_string(&p)?, "{\"n\":4}\n{\"n\":5}\n{\"n\":6}\n");
        assert_eq!(w.rotations, 2);
        // 0 = no cap.
        let q = dir.path().join("free.jsonl");
        let mut w = JsonlWriter::new(
            q.clone(),
            Box::new(FsOpener),
            FsyncPolicy::Never,
            Duration::from_secs(1),
        );
        for _ in 0..10 {
            w.write_batch(&["{\"n\":7}"; 10])?;
        }
        assert_eq!(std::fs::metadata(&q)?.len(), 800);
        assert!(!rotated_path(&q).exists());
        Ok(())
    }

    #[test]
    fn rename_rotation_reopens_at_the_path() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("sub/out.jsonl");
        let mut w = JsonlWriter::new(
            p.clone(),
            Box::new(FsOpener),
            FsyncPolicy::Interval,
            Duration::from_secs(1),
        );
        w.write_batch(&["{\"n\":1}"])?;
        std::fs::rename(&p, dir.path().join("sub/out.jsonl.1"))?;
        w.write_batch(&["{\"n\":2}"])?;
        assert_eq!(std::fs::read_to_string(&p)?, "{\"n\":2}\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sub/out.jsonl.1"))?,
            "{\"n\":1}\n"
        );
        Ok(())
    }
}
