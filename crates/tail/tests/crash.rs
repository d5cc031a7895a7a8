//! `kill -9` (PROTOCOL.md §14.11): a child process running the tailer is SIGKILLed mid-stream; the restarted
//! tailer must lose nothing and may repeat only what followed the last checkpoint.
//!
//! The child is this very test binary, re-run on the ignored `crash_child` test.

mod common;

use common::*;
use ndefender_tail::{spawn, LineSink, StartPosition};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const DIR_VAR: &str = "NDEFENDER_TAIL_CRASH_DIR";

/// Appends each delivered line's id to a file with one `write(2)`, so what the child delivered
/// survives its death.
struct IdLog(std::fs::File);

impl LineSink for IdLog {
    fn line(&mut self, line: &str, _invalid_utf8: bool) {
        if let Some(id) = id_of(line) {
            let _ = self.0.write_all(format!("{id}\n").as_bytes());
        }
    }
}

fn fixture_in(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    (
        dir.join("feed.jsonl"),
        dir.join("state").join("tail-feed.json"),
        dir.join("delivered-by-child.txt"),
    )
}

/// Runs only as the child of `sigkill_loses_nothing_and_repeats_only_after_the_checkpoint`.
#[test]
#[ignore = "child process of the crash test"]
fn crash_child() -> Res {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return Ok(());
    };
    let (path, checkpoint, out) = fixture_in(std::path::Path::new(&dir));
    let mut cfg = ndefender_tail::TailConfig::new("crash", path, checkpoint);
    cfg.start_position = StartPosition::Beginning;
    cfg.poll_interval = Duration::from_millis(100);
    cfg.checkpoint_interval = Duration::from_millis(100);
    let log = OpenOptions::new().create(true).append(true).open(out)?;
    let _tail = spawn(cfg, IdLog(log))?;
    // Until killed.
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn sigkill_loses_nothing_and_repeats_only_after_the_checkpoint() -> Res {
    let dir = tempfile::tempdir()?;
    let (path, checkpoint, out) = fixture_in(dir.path());
    let mut w = Writer::open(&path)?;
    w.write(recs(0..200))?;

    let mut child = Command::new(std::env::current_exe()?)
        .args(["crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(DIR_VAR, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let delivered_by_child = || -> Vec<u64> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    };
    let res = (|| -> Res {
        wait_until("child started delivering", || delivered_by_child().len() >= 200)?;
        wait_until("child's first checkpoint", || checkpoint.exists())?;
        // Keep the child busy right up to the kill so some lines follow the last checkpoint.
        for i in 200..2000u64 {
            w.write(rec(i))?;
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    })();
    child.kill()?;
    child.wait()?;
    res?;

    let first = delivered_by_child();
    let ck: serde_json::Value = serde_json::from_slice(&std::fs::read(&checkpoint)?)?;
    let ck_offset = ck["offset"].as_u64().ok_or("checkpoint without offset")?;

    // More lines while down, then a restart in-process.
    w.write(recs(2000..2100))?;
    let mut cfg = ndefender_tail::TailConfig::new("crash", &path, &checkpoint);
    cfg.start_position = StartPosition::End;
    let sink = Recorder::default();
    let tail = spawn(cfg, sink.clone())?;
    w.write(recs(2100..2200))?;
    sink.wait_id(2199)?;
    tail.stop()?;
    let second = sink.ids();

    // The child delivered a prefix, in order, without repeats.
    assert_ids(&first, 0..first.len() as u64)?;
    // The restart starts exactly at the checkpoint and continues to the end.
    let ck_line = ids_before(ck_offset);
    assert!(
        ck_line <= first.len() as u64,
        "checkpoint {ck_line} ahead of delivery {}",
        first.len()
    );
    assert_ids(&second, ck_line..2200)?;
    // So nothing is lost, and what repeats is only what the child delivered after its last checkpoint.
    let repeated = first.len() as u64 - ck_line;
    eprintln!(
        "child delivered {}, checkpoint at line {ck_line}, repeated {repeated}",
        first.len()
    );
    Ok(())
}

/// Number of lines (all `rec(i)`, ids from 0) that end at or before `offset`; the offset must be a
/// line boundary.
fn ids_before(offset: u64) -> u64 {
    let mut at = 0u64;
    let mut i = 0u64;
    while at < offset {
        at += rec(i).len() as u64;
        i += 1;
    }
    assert_eq!(at, offset, "checkpoint offset is not a line boundary");
    i
}
