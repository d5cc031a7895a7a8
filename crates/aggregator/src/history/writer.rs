//! The one writer: a thread of its own (never an executor worker) that takes the hub tap's
//! envelopes, the audit entry point's lines and the kit/FPV samples, and commits them in
//! batches. A failed commit (a full disk) loses that batch, counted, and the next batch tries
//! again; nothing here can hold up the publisher or a WebSocket client.

use super::record::{self, AuditEntry, Detection, Identity, Kind, KitPosition, Record, Sighting};
use super::store::{Applied, Store, HOUR_MS};
use super::Stats;
use ndefender_contract::time::Clock;
use ndefender_hub::Tap;
use rusqlite::ErrorCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// A batch is committed once it is this old…
pub const COMMIT_AFTER: Duration = Duration::from_millis(200);
/// …or this large.
pub const MAX_BATCH: usize = 4096;
/// The kit's own position is kept at most this often.
pub const KIT_EVERY_MS: u64 = 10_000;
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
const SIZE_CHECK_EVERY: Duration = Duration::from_secs(5);
const AGE_CHECK_EVERY: Duration = Duration::from_secs(60);

/// What the writer reads from the state owner once a second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub kit: Option<KitPosition>,
    /// The current FPV contact: id, frequency, raw RSSI, last seen.
    pub fpv: Option<(String, f64, f64, u64)>,
}

pub struct Limits {
    pub retention_ms: u64,
    pub max_bytes: u64,
}

pub struct Writer {
    pub store: Store,
    pub tap: Tap,
    pub audit: mpsc::Receiver<AuditEntry>,
    pub sampler: Box<dyn FnMut() -> Sample + Send>,
    pub clock: Arc<dyn Clock>,
    pub stats: Arc<Stats>,
    pub limits: Limits,
    pub stop: watch::Receiver<bool>,
}

enum Input {
    Tap(Option<ndefender_hub::TapEvent>),
    Audit(Option<AuditEntry>),
    Wake,
    Stop,
}

/// `disk_full` (SQLITE_FULL or ENOSPC underneath), `io` (any other I/O failure) or `other`.
pub fn error_reason(e: &rusqlite::Error) -> &'static str {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::DiskFull => "disk_full",
            ErrorCode::SystemIoFailure | ErrorCode::CannotOpen | ErrorCode::ReadOnly => "io",
            _ => "other",
        },
        _ => "other",
    }
}

impl Writer {
    /// Runs until `stop` turns true (or the hub is gone); the last batch is committed first.
    pub fn run(mut self, rt: tokio::runtime::Handle) {
        let mut batch: Vec<Record> = Vec::with_capacity(MAX_BATCH);
        let mut first_at: Option<Instant> = None;
        let now = Instant::now();
        let mut next_sample = now;
        let mut next_size = now;
        let mut next_age = now + Duration::from_secs(2);
        let mut last_kit: Option<u64> = None;
        let mut last_fpv: Option<(String, u64)> = None;
        // Seq of the newest tap event taken: settled once the batch holding its records is.
        let mut received = 0;
        self.refresh_size();
        loop {
            let mut wake = next_sample.min(next_size).min(next_age);
            if let Some(t) = first_at {
                wake = wake.min(t + COMMIT_AFTER);
            }
            let input = {
                let tap = &mut self.tap;
                let audit = &mut self.audit;
                let stop = &mut self.stop;
                rt.block_on(async {
                    tokio::select! {
                        biased;
                        _ = stop.wait_for(|s| *s) => Input::Stop,
                        e = tap.recv() => Input::Tap(e),
                        a = audit.recv() => Input::Audit(a),
                        _ = tokio::time::sleep_until(wake.into()) => Input::Wake,
                    }
                })
            };
            let mut done = false;
            match input {
                Input::Tap(Some(e)) => {
                    let mut next = Some(e);
                    while let Some(e) = next {
                        received = e.seq();
                        if record::wanted(e.kind()) {
                            record::from_envelope(e.json(), &mut batch);
                        }
                        next = if batch.len() < MAX_BATCH {
                            self.tap.try_recv()
                        } else {
                            None
                        };
                    }
                }
                Input::Tap(None) | Input::Stop => done = true,
                Input::Audit(Some(a)) => batch.push(Record::Audit(a)),
                Input::Audit(None) | Input::Wake => {}
            }
            let now = Instant::now();
            if now >= next_sample {
                next_sample = now + SAMPLE_EVERY;
                let s = (self.sampler)();
                if let Some(k) = s.kit {
                    if last_kit.is_none_or(|t| k.ts >= t + KIT_EVERY_MS) {
                        last_kit = Some(k.ts);
                        batch.push(Record::Kit(k));
                    }
                }
                if let Some((id, freq, rssi, seen)) = s.fpv {
                    if last_fpv.as_ref() != Some(&(id.clone(), seen)) {
                        last_fpv = Some((id.clone(), seen));
                        batch.push(Record::Sighting(Sighting {
                            id: id.clone(),
                            kind: Kind::Fpv,
                            ts: seen,
                            identity: Identity {
                                freq_hz: Some(freq),
                                band: Some(crate::core::antsdr::band_for(freq).to_owned()),
                                class: Some("fpv_video".into()),
                                ..Identity::default()
                            },
                        }));
                        batch.push(Record::Detection(
                            id,
                            Detection {
                                ts: seen,
                                freq_hz: freq,
                                level: rssi,
                                class: Some("fpv_video".into()),
                                ..Detection::default()
                            },
                        ));
                    }
                }
            }
            if !batch.is_empty() && first_at.is_none() {
                first_at = Some(now);
            }
            let due = first_at.is_some_and(|t| now >= t + COMMIT_AFTER);
            if !batch.is_empty() && (done || due || batch.len() >= MAX_BATCH) {
                self.commit(&mut batch);
                first_at = None;
            }
            if batch.is_empty() {
                // Committed or given up (counted): either way no longer worth holding the
                // feed checkpoints for.
                self.stats.watermark.fetch_max(received, Relaxed);
            }
            if done {
                return;
            }
            if now >= next_age {
                next_age = now + AGE_CHECK_EVERY;
                self.retain_age();
            }
            if now >= next_size {
                next_size = now + SIZE_CHECK_EVERY;
                self.retain_size();
            }
        }
    }

    fn commit(&mut self, batch: &mut Vec<Record>) {
        match self.store.apply(batch) {
            Ok(a) => self.stats.applied(&a),
            Err(e) => self.failed("commit", &e, batch.len() as u64),
        }
        batch.clear();
    }

    fn failed(&self, what: &str, e: &rusqlite::Error, lost: u64) {
        let reason = error_reason(e);
        self.stats.error(reason);
        self.stats.lost.fetch_add(lost, Relaxed);
        // One line per failure streak, not one per batch.
        if self.stats.failing.swap(true, Relaxed) {
            tracing::debug!(error = %e, what, reason, "history write failed again");
        } else {
            tracing::error!(error = %e, what, reason, lost, "history write failed; live streaming unaffected");
        }
    }

    fn refresh_size(&self) {
        self.stats.db_bytes.store(self.store.disk_bytes(), Relaxed);
    }

    /// Deletes records older than the retention, an hour at a time (short transactions).
    fn retain_age(&mut self) {
        let cutoff = self.clock.now_ms().saturating_sub(self.limits.retention_ms);
        let mut deleted = 0;
        for _ in 0..48 {
            let oldest = match self.store.span() {
                Ok(Some((o, _))) if o < cutoff => o,
                Ok(_) => break,
                Err(e) => return self.failed("retention", &e, 0),
            };
            match self.store.delete_before(cutoff.min(oldest + HOUR_MS)) {
                Ok(n) => deleted += n,
                Err(e) => return self.failed("retention", &e, 0),
            }
        }
        if deleted > 0 {
            self.stats.retention_age.fetch_add(deleted, Relaxed);
            if let Err(e) = self.store.vacuum_free_pages() {
                self.failed("vacuum", &e, 0);
            }
        }
        self.refresh_size();
    }

    /// Over `max_bytes`: deletes the oldest twentieth of the stored time span at a time until
    /// the data fits in 90 % of it, then gives the pages back.
    fn retain_size(&mut self) {
        if self.store.disk_bytes() <= self.limits.max_bytes {
            self.refresh_size();
            return;
        }
        let target = self.limits.max_bytes / 10 * 9;
        let mut deleted = 0;
        for _ in 0..100 {
            match self.store.used_bytes() {
                Ok(u) if u <= target => break,
                Ok(_) => {}
                Err(e) => return self.failed("retention", &e, 0),
            }
            let (old, new) = match self.store.span() {
                Ok(Some(s)) => s,
                Ok(None) => break,
                Err(e) => return self.failed("retention", &e, 0),
            };
            let step = ((new.saturating_sub(old)) / 20).max(1000);
            match self.store.delete_before(old + step) {
                Ok(n) => deleted += n,
                Err(e) => return self.failed("retention", &e, 0),
            }
        }
        self.stats.retention_size.fetch_add(deleted, Relaxed);
        if let Err(e) = self.store.vacuum_free_pages() {
            self.failed("vacuum", &e, 0);
        }
        self.refresh_size();
    }
}

impl Stats {
    pub(super) fn applied(&self, a: &Applied) {
        self.commits.fetch_add(1, Relaxed);
        self.failing.store(false, Relaxed);
        for (c, n) in [
            (&self.sightings, a.sightings),
            (&self.fixes, a.fixes),
            (&self.detections, a.detections),
            (&self.audit, a.audit),
            (&self.kit, a.kit),
            (&self.duplicates, a.duplicates),
        ] {
            c.fetch_add(n, Relaxed);
        }
    }

    pub(super) fn error(&self, reason: &str) {
        let c = match reason {
            "disk_full" => &self.errors_disk_full,
            "io" => &self.errors_io,
            _ => &self.errors_other,
        };
        c.fetch_add(1, Relaxed);
    }
}
