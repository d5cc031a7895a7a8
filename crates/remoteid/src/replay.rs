//! Replaying a capture through the decoder and a replay-mode tracker, shared by the CLI and
//! the daemon's replay source.

use crate::capture::FileCapture;
use crate::decode::{observe, Counters};
use crate::tracker::{replay_state, Tracker};
use ndefender_contract::enums::RemoteIdMode;
use ndefender_contract::envelope::Envelope;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ReplaySummary {
    pub records: u64,
    pub lines: u64,
    pub counters: Counters,
    pub stopped: bool,
}

/// Longest single pause between frames (a capture with an hour-long gap does not stall).
const MAX_GAP: Duration = Duration::from_secs(10);

/// Runs one pass. `emit` receives every line in order; its error ends the replay.
pub fn run(
    path: &Path,
    speed: f64,
    stop: &AtomicBool,
    now_ms: &dyn Fn() -> u64,
    emit: &mut dyn FnMut(&Envelope) -> Result<(), String>,
) -> Result<ReplaySummary, String> {
    let mut cap = FileCapture::open(path).map_err(|e| e.to_string())?;
    let mut s = ReplaySummary::default();
    let mut tracker = Tracker::new(RemoteIdMode::Replay);
    let mut out = Vec::new();
    let mut send = |out: &mut Vec<Envelope>, s: &mut ReplaySummary| -> Result<(), String> {
        for e in out.drain(..) {
            emit(&e)?;
            s.lines += 1;
        }
        Ok(())
    };
    out.extend(replay_state("start", speed, Some(0), None, now_ms()));
    send(&mut out, &mut s)?;
    let mut prev_ts: Option<u64> = None;
    while let Some(rec) = cap.next_record() {
        if stop.load(Ordering::Relaxed) {
            s.stopped = true;
            break;
        }
        let rec = match rec {
            Ok(r) => r,
            // A corrupt record ends the file's readable part; what was decoded stands.
            Err(_) => break,
        };
        s.records += 1;
        if speed > 0.0 {
            if let Some(p) = prev_ts {
                let gap = Duration::from_millis(rec.ts_ms.saturating_sub(p)).div_f64(speed);
                pause(gap.min(MAX_GAP), stop);
            }
        }
        prev_ts = Some(rec.ts_ms);
        if let Some(o) = observe(rec.linktype, rec.data, rec.ts_ms, &mut s.counters) {
            tracker.frame(&o, &mut out);
            send(&mut out, &mut s)?;
        }
    }
    tracker.finish(&mut out);
    out.extend(replay_state("done", speed, Some(s.records), Some(s.records), now_ms()));
    send(&mut out, &mut s)?;
    Ok(s)
}

/// Sleeps up to `d`, waking early when `stop` is set.
fn pause(d: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(50);
    let mut left = d;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
}
