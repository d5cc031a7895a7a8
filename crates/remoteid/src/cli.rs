//! The offline commands, run instead of the daemon: `decode FILE`, `replay FILE --jsonl OUT
//! [--speed X]` and `bench [--frames N] [--drones N]`.

use crate::capture::FileCapture;
use crate::config::EngineConfig;
use crate::decode::{message_objects, Counters};
use ndefender_service::config::DaemonArgs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const NAME: &str = "ndefender-remoteid";

fn usage(msg: &str) -> i32 {
    eprintln!("{NAME}: {msg}");
    eprintln!(
        "usage: {NAME} [--config FILE] [--check-config]\n       \
         {NAME} decode FILE\n       \
         {NAME} replay FILE --jsonl OUT [--speed X]\n       \
         {NAME} bench [--frames N] [--drones N]"
    );
    2
}

fn flag_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `log.level` unless `RUST_LOG` says otherwise.
pub fn log_level(cfg: &EngineConfig) -> Option<String> {
    Some(cfg.log.level.clone())
}

/// `Some(exit code)` when the arguments name an offline command (or are wrong); `None`
/// runs the daemon.
pub fn offline(cfg: &EngineConfig, args: &DaemonArgs) -> Option<i32> {
    let args = &args.extra;
    let code = match args.first().map(String::as_str)? {
        "decode" => {
            let Some(file) = args.get(1) else {
                return Some(usage("decode needs FILE"));
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let r = decode_file(&PathBuf::from(file), &mut out, &mut std::io::stderr());
            // The process exits right after: flush the buffered lines first.
            let flushed = std::io::Write::flush(&mut out);
            match r.and(flushed.map_err(|e| e.to_string())) {
                Ok(_) => 0,
                Err(e) => {
                    eprintln!("{NAME}: {e}");
                    1
                }
            }
        }
        "replay" => {
            let Some(file) = args.get(1).filter(|a| !a.starts_with("--")) else {
                return Some(usage("replay needs FILE"));
            };
            let Some(out) = flag_value(args, "--jsonl") else {
                return Some(usage("replay needs --jsonl OUT"));
            };
            let speed = match flag_value(args, "--speed").map(str::parse::<f64>) {
                None => 1.0,
                Some(Ok(v)) if v.is_finite() && v >= 0.0 => v,
                Some(_) => return Some(usage("--speed needs a number ≥ 0 (0 = as fast as possible)")),
            };
            let max = cfg.output.max_bytes;
            match replay_file(&PathBuf::from(file), &PathBuf::from(out), speed, max, &now_ms) {
                Ok(s) => {
                    eprintln!("{}", serde_json::to_string(&s).unwrap_or_default());
                    0
                }
                Err(e) => {
                    eprintln!("{NAME}: {e}");
                    1
                }
            }
        }
        "bench" => {
            let num = |k: &str, d: u64| match flag_value(args, k) {
                None => Ok(d),
                Some(v) => v.parse::<u64>().map_err(|_| usage(&format!("{k} needs an integer"))),
            };
            let (frames, drones) = match (num("--frames", 1_000_000), num("--drones", 200)) {
                (Ok(f), Ok(d)) => (f, u32::try_from(d).unwrap_or(200)),
                (Err(c), _) | (_, Err(c)) => return Some(c),
            };
            match crate::bench::run(frames, drones) {
                Ok(r) => {
                    print!("{}", r.render());
                    0
                }
                Err(e) => {
                    eprintln!("{NAME}: bench failed: {e}");
                    1
                }
            }
        }
        a => usage(&format!("unknown argument {a:?}")),
    };
    Some(code)
}

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
