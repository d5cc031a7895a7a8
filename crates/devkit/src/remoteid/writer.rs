//! The RemoteID simulator's file side: appends the generator's lines to a JSONL file the way
//! the engine does (flushed per line), with the optional tailer faults (rotation, truncation,
//! partial and malformed lines) the aggregator's tests inject.

use super::{GeneratorConfig, LineFormat, RemoteIdGenerator, Scenario};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How the file is rotated (tailer tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateMode {
    /// `path` is renamed to `path.1` and a new `path` is created.
    Rename,
    /// `path` is copied to `path.1`, then truncated to 0 in place.
    CopyTruncate,
}

/// Fault injection for tailer tests (§4). All off by default. "Every N" counters
/// count the regular lines written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileFaults {
    /// Every Nth line is written in two parts, flushed separately with a pause.
    pub partial_every: u32,
    /// Pause between the two parts.
    pub partial_pause_ms: u64,
    /// End lines with `\r\n`.
    pub crlf: bool,
    /// After every Nth line, an extra line holding invalid UTF-8.
    pub invalid_utf8_every: u32,
    /// After every Nth line, an extra line longer than 1 MiB.
    pub huge_line_every: u32,
    /// After every Nth line, an extra malformed (truncated) JSON line.
    pub malformed_every: u32,
    /// Rotate the file after every N lines.
    pub rotate_every: u64,
    pub rotate_mode: Option<RotateMode>,
}

/// Settings of [`run_remoteid_sim`].
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteIdSimConfig {
    /// The JSONL file (appended to; created when missing).
    pub path: PathBuf,
    pub drones: usize,
    /// Frames per second per drone (1..=10).
    pub rate_hz: f64,
    pub seed: u64,
    /// Centre of the area (lat, lon).
    pub origin: (f64, f64),
    pub format: LineFormat,
    /// Write nothing at all (an empty sky).
    pub quiet: bool,
    pub scenario: Scenario,
    /// Test marker put into model texts (`testdrone`, `warmstart`); None by default.
    pub marker: Option<String>,
    pub lifetime_ms: (u64, u64),
    pub blip_prob: f64,
    pub faults: FileFaults,
}

impl Default for RemoteIdSimConfig {
    fn default() -> Self {
        let g = GeneratorConfig::default();
        Self {
            path: PathBuf::from("/opt/ndefender/logs/remoteid_engine.jsonl"),
            drones: g.drones,
            rate_hz: g.rate_hz,
            seed: g.seed,
            origin: g.origin,
            format: LineFormat::default(),
            quiet: false,
            scenario: Scenario::Live,
            marker: None,
            lifetime_ms: g.lifetime_ms,
            blip_prob: g.blip_prob,
            faults: FileFaults::default(),
        }
    }
}

impl RemoteIdSimConfig {
    pub fn generator(&self) -> GeneratorConfig {
        GeneratorConfig {
            drones: self.drones,
            rate_hz: self.rate_hz,
            seed: self.seed,
            origin: self.origin,
            lifetime_ms: self.lifetime_ms,
            blip_prob: self.blip_prob,
            marker: self.marker.clone(),
            scenario: self.scenario.clone(),
        }
    }
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn open_append(path: &Path) -> io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new().create(true).append(true).open(path).await
}

/// Writes lines with the file faults applied.
struct FeedWriter {
    path: PathBuf,
    file: tokio::fs::File,
    faults: FileFaults,
    lines: u64,
}

impl FeedWriter {
    async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes).await?;
        self.file.flush().await
    }

    async fn write_line(&mut self, line: &str) -> io::Result<()> {
        self.lines += 1;
        let n = self.lines;
        let every = |e: u32| e > 0 && n.is_multiple_of(u64::from(e));
        let eol: &[u8] = if self.faults.crlf { b"\r\n" } else { b"\n" };
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(eol);
        if every(self.faults.partial_every) && bytes.len() > 2 {
            let cut = bytes.len() / 2;
            self.write_raw(&bytes[..cut]).await?;
            tokio::time::sleep(Duration::from_millis(self.faults.partial_pause_ms)).await;
            self.write_raw(&bytes[cut..]).await?;
        } else {
            self.write_raw(&bytes).await?;
        }
        if every(self.faults.invalid_utf8_every) {
            let mut junk = b"remoteid \xff\xfe invalid \xc3\x28 utf8 \xe2\x82".to_vec();
            junk.extend_from_slice(eol);
            self.write_raw(&junk).await?;
        }
        if every(self.faults.malformed_every) {
            let mut bad =
                b"{\"type\":\"CONTACT_UPDATE\",\"timestamp_ms\":1,\"source\":\"remoteid\",\"data\":{\"id\":\"rid:"
                    .to_vec();
            bad.extend_from_slice(eol);
            self.write_raw(&bad).await?;
        }
        if every(self.faults.huge_line_every) {
            let mut huge = b"{\"type\":\"CONTACT_UPDATE\",\"pad\":\"".to_vec();
            huge.resize(huge.len() + (1 << 20) + 1024, b'x');
            huge.extend_from_slice(b"\"}");
            huge.extend_from_slice(eol);
            self.write_raw(&huge).await?;
        }
        if self.faults.rotate_every > 0 && n.is_multiple_of(self.faults.rotate_every) {
            self.rotate().await?;
        }
        Ok(())
    }

    async fn rotate(&mut self) -> io::Result<()> {
        let mut rotated = self.path.clone().into_os_string();
        rotated.push(".1");
        match self.faults.rotate_mode {
            Some(RotateMode::Rename) => {
                tokio::fs::rename(&self.path, &rotated).await?;
                self.file = open_append(&self.path).await?;
            }
            Some(RotateMode::CopyTruncate) => {
                tokio::fs::copy(&self.path, &rotated).await?;
                self.file.set_len(0).await?;
            }
            None => {}
        }
        Ok(())
    }
}

/// Appends feed lines to `cfg.path` (flushed per line) until `shutdown` resolves.
/// Time is tokio time anchored to the wall clock at the start, so a paused runtime
/// drives it deterministically.
pub async fn run_remoteid_sim(cfg: RemoteIdSimConfig, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let start_wall = epoch_ms();
    let t0 = tokio::time::Instant::now();
    let mut gen = RemoteIdGenerator::new(cfg.generator(), start_wall);
    let mut writer = FeedWriter {
        file: open_append(&cfg.path).await?,
        path: cfg.path.clone(),
        faults: cfg.faults.clone(),
        lines: 0,
    };
    tokio::pin!(shutdown);
    loop {
        let now = start_wall + t0.elapsed().as_millis() as u64;
        for ev in gen.advance(now) {
            if !cfg.quiet {
                writer.write_line(&ev.to_line(cfg.format)).await?;
            }
        }
        let wake = gen.next_wake().unwrap_or(now + 1000).clamp(now + 1, now + 1000);
        let at = t0 + Duration::from_millis(wake - start_wall);
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep_until(at) => {}
        }
    }
}
