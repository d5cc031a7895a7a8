//! The scanner's size rotation (`output.max_bytes`, rename to `<path>.1`) as the aggregator sees
//! it: the real `JsonlWriter` writes while the real tailer (`ndefender-tail`, the aggregator's
//! feed follower) follows the path. Every line arrives exactly once, in order, across each
//! rotation — including the lines written to the old file just before it was renamed.

use ndefender_antsdr_scan::config::FsyncPolicy;
use ndefender_antsdr_scan::output::{rotated_path, FsOpener, JsonlWriter};
use ndefender_tail::{spawn, StartPosition, TailConfig};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type R<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn line(n: u64) -> String {
    // ~100 bytes, like a short RF_CONTACT line.
    format!(
        r#"{{"type":"RF_SCAN_STATS","timestamp_ms":{n},"source":"antsdr","data":{{"n":{n},"pad":"{}"}}}}"#,
        "x".repeat(20)
    )
}

fn wait_for(got: &Arc<Mutex<Vec<u64>>>, n: usize) -> R {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let have = got.lock().map_err(|_| "poisoned")?.len();
        if have >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("tailer delivered {have} of {n} lines").into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn tailer_loses_no_line_across_size_rotations() -> R {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("logs/antsdr_scan.jsonl");
    let max = 4096;
    let mut w = JsonlWriter::new(
        path.clone(),
        Box::new(FsOpener),
        FsyncPolicy::Never,
        Duration::from_secs(1),
    )
    .with_max_bytes(max);
    w.write_batch(&[line(0)])?;

    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let mut cfg = TailConfig::new("antsdr", &path, dir.path().join("state/tail-antsdr.json"));
    cfg.start_position = StartPosition::Beginning;
    cfg.poll_interval = Duration::from_millis(100);
    let tail = spawn(cfg, move |l: &str, _bad: bool| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
        if let (Ok(mut g), Some(n)) = (sink.lock(), v["data"]["n"].as_u64()) {
            g.push(n);
        }
    })?;

    let mut next = 1u64;
    let rounds = 6;
    for _ in 0..rounds {
        // Fill the file to just under the cap and let the tailer catch up, so it holds the file open.
        let before = w.rotations;
        while std::fs::metadata(&path)?.len() + 2 * line(next).len() as u64 + 2 < max {
            w.write_batch(&[line(next)])?;
            next += 1;
        }
        wait_for(&got, next as usize)?;
        // Then, with no pause: a last line into the old file and a batch that renames it to .1.
        w.write_batch(&[line(next)])?;
        next += 1;
        let batch: Vec<String> = (next..next + 5).map(line).collect();
        next += 5;
        w.write_batch(&batch)?;
        assert_eq!(w.rotations, before + 1, "the cap forced exactly one rotation");
        // One generation only: wait for the tailer before the next rotation replaces `.1`.
        wait_for(&got, next as usize)?;
    }
    assert!(rotated_path(&path).exists());
    assert!(std::fs::metadata(&path)?.len() <= max);
    let stats = tail.stats();
    tail.stop()?;
    let got = got.lock().map_err(|_| "poisoned")?.clone();
    assert_eq!(got, (0..next).collect::<Vec<_>>(), "every line exactly once, in order");
    assert_eq!(stats.rotations(), rounds);
    Ok(())
}
