//! `ndefender-remoteid bench`: decode throughput on a large synthetic capture (one core) and
//! the frame → JSONL latency of the decode/tracker/writer path.

use crate::capture::CaptureReader;
use crate::decode::{observe, Counters};
use crate::jsonl::JsonlWriter;
use crate::source::sim::Sim;
use crate::tracker::Tracker;
use ndefender_contract::enums::RemoteIdMode;
use ndefender_contract::envelope::TimestampField;
use std::time::Instant;

pub struct BenchReport {
    pub frames: u64,
    pub messages: u64,
    pub capture_bytes: usize,
    pub decode_s: f64,
    pub file_s: f64,
    pub latency_us: Vec<f64>,
    pub lines: u64,
}

/// Frames of `drones` simulated aircraft, all four transports, starting at `t0`.
pub fn synthetic(frames: u64, drones: u32, t0: u64) -> Vec<(u32, u64, Vec<u8>)> {
    let drones = drones.max(1);
    (0..frames)
        .map(|n| {
            let i = (n % u64::from(drones)) as u32;
            let tick = n / u64::from(drones);
            let f = Sim::frame(i, tick, t0 + tick * 500);
            (f.linktype, f.ts_ms, f.data)
        })
        .collect()
}

pub fn run(frames: u64, drones: u32) -> Result<BenchReport, String> {
    let recs = synthetic(frames, drones, 1_772_140_000_000);
    let file = crate::encode::pcapng(&recs);
    // 1. Decoder alone over records in memory: link layer + every message.
    let mut c = Counters::default();
    let t = Instant::now();
    let mut sink = 0u64;
    for (lt, ts, d) in &recs {
        if let Some(o) = observe(*lt, d, *ts, &mut c) {
            sink += u64::from(o.messages);
        }
    }
    let decode_s = t.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    // 2. The same frames read from a pcapng file in memory (the replay path's reader).
    let t = Instant::now();
    let mut c2 = Counters::default();
    let mut cap = CaptureReader::new(std::io::Cursor::new(&file)).map_err(|e| e.to_string())?;
    while let Some(r) = cap.next_record() {
        let r = r.map_err(|e| e.to_string())?;
        let _ = observe(r.linktype, r.data, r.ts_ms, &mut c2);
    }
    let file_s = t.elapsed().as_secs_f64();
    // 3. Frame → JSONL line on disk: decode, tracker, serialise, write(2), per frame that
    // caused a line.
    let dir = std::env::temp_dir().join(format!("ndefender-rid-bench-{}", std::process::id()));
    let path = dir.join("feed.jsonl");
    let mut w = JsonlWriter::open(&path, 64 * 1024 * 1024).map_err(|e| e.to_string())?;
    let mut tracker = Tracker::new(RemoteIdMode::Live);
    let mut out = Vec::new();
    let mut latency_us = Vec::new();
    let mut c3 = Counters::default();
    let mut lines = 0;
    for (lt, ts, d) in recs.iter().take(200_000) {
        let t = Instant::now();
        if let Some(o) = observe(*lt, d, *ts, &mut c3) {
            tracker.frame(&o, &mut out);
        }
        if out.is_empty() {
            continue;
        }
        for e in out.drain(..) {
            w.write_line(&e.to_json(None, TimestampField::TimestampMs))
                .map_err(|e| e.to_string())?;
            lines += 1;
        }
        latency_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let _ = std::fs::remove_dir_all(&dir);
    latency_us.sort_by(f64::total_cmp);
    Ok(BenchReport {
        frames,
        messages: c.messages,
        capture_bytes: file.len(),
        decode_s,
        file_s,
        latency_us,
        lines,
    })
}

impl BenchReport {
    fn pct(&self, p: f64) -> f64 {
        let n = self.latency_us.len();
        if n == 0 {
            return f64::NAN;
        }
        let i = ((n as f64 - 1.0) * p).round() as usize;
        self.latency_us.get(i).copied().unwrap_or(f64::NAN)
    }

    pub fn render(&self) -> String {
        format!(
            "decode_messages_per_s_per_core {:.0}\n\
             frames {} messages {} capture_bytes {}\n\
             decode_frames_per_s {:.0} (records in memory, {:.3} s)\n\
             file_messages_per_s {:.0} (pcapng reader + decode, {:.3} s)\n\
             frame_to_jsonl_us p50 {:.1} p99 {:.1} max {:.1} over {} frames ({} lines)\n",
            self.messages as f64 / self.decode_s,
            self.frames,
            self.messages,
            self.capture_bytes,
            self.frames as f64 / self.decode_s,
            self.decode_s,
            self.messages as f64 / self.file_s,
            self.file_s,
            self.pct(0.5),
            self.pct(0.99),
            self.pct(1.0),
            self.latency_us.len(),
            self.lines,
        )
    }
}
