//! The offline commands: `decode FILE` and `replay FILE --jsonl OUT [--speed X]`.

use crate::capture::FileCapture;
use crate::decode::{message_objects, Counters};
use std::io::Write;
use std::path::Path;

/// Prints one JSON object per decoded message to `out`; a summary of the counters to `err`.
pub fn decode_file(path: &Path, out: &mut dyn Write, err: &mut dyn Write) -> Result<Counters, String> {
    let mut cap = FileCapture::open(path).map_err(|e| e.to_string())?;
    let mut c = Counters::default();
    while let Some(rec) = cap.next_record() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(err, "stopping at a corrupt record: {e}");
                break;
            }
        };
        for v in message_objects(rec.linktype, rec.data, rec.ts_ms, &mut c) {
            writeln!(out, "{v}").map_err(|e| e.to_string())?;
        }
    }
    let _ = writeln!(err, "{}", serde_json::to_string(&c).unwrap_or_default());
    Ok(c)
}

/// `replay FILE --jsonl OUT [--speed X]`: the capture through the tracker into the JSONL, with
/// the frames' own times, paced by the gaps between frames divided by `speed` (0 = no pacing),
/// LOST for every contact at the end, REPLAY_STATE start/done around it (wall clock).
pub fn replay_file(
    path: &Path,
    jsonl: &Path,
    speed: f64,
    max_bytes: u64,
    now_ms: &dyn Fn() -> u64,
) -> Result<crate::replay::ReplaySummary, String> {
    let mut out = crate::jsonl::JsonlWriter::open(jsonl, max_bytes).map_err(|e| format!("{}: {e}", jsonl.display()))?;
    let stop = std::sync::atomic::AtomicBool::new(false);
    crate::replay::run(path, speed, &stop, now_ms, &mut |env| {
        out.write_line(&env.to_json(None, ndefender_contract::envelope::TimestampField::TimestampMs))
            .map_err(|e| e.to_string())
    })
}
