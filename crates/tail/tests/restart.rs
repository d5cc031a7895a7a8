//! Checkpoints across graceful restarts, start positions, rotation while stopped, corrupt state (PROTOCOL.md §14.9, 14.10, 14.11).

mod common;

use common::*;
use ndefender_tail::{spawn, StartPosition, TailNotice};
use std::time::Duration;

/// A first run from the beginning delivers lines `0..n` and stops; returns the writer (for
/// what happens while the tailer is stopped) and what the run received.
fn first_run(fx: &Fixture, n: u64) -> Res<(Writer, Recorder)> {
    let mut w = Writer::open(&fx.path)?;
    let first = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::Beginning), first.clone())?;
    w.write(recs(0..n))?;
    first.wait_id(n - 1)?;
    tail.stop()?;
    Ok((w, first))
}

#[test]
fn graceful_restart_delivers_lines_appended_while_stopped_exactly_once() -> Res {
    let fx = Fixture::new()?;
    let (mut w, first) = first_run(&fx, 50)?;
    // The final checkpoint is the end of the last delivered line.
    assert_eq!(fx.checkpoint_offset()?, std::fs::metadata(&fx.path)?.len());

    w.write(recs(50..100))?;
    // A half-written line at restart time is completed later and delivered once.
    w.write(&rec(100)[..5])?;

    // `end` would skip 50..100: only the checkpoint can deliver them.
    let second = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::End), second.clone())?;
    w.write(&rec(100)[5..])?;
    w.write(recs(101..150))?;
    second.wait_id(149)?;
    tail.stop()?;
    let mut all = first.ids();
    all.extend(second.ids());
    assert_ids(&all, 0..150)
}

#[test]
fn stop_in_the_middle_of_a_backlog_loses_and_repeats_nothing() -> Res {
    let fx = Fixture::new()?;
    append(&fx.path, recs(0..3000))?;
    let mut all = Vec::new();
    let mut runs = 0;
    loop {
        runs += 1;
        let sink = Recorder::with_delay(Duration::from_micros(200));
        let tail = spawn(fx.cfg(StartPosition::Beginning), sink.clone())?;
        std::thread::sleep(Duration::from_millis(150));
        tail.stop()?;
        let ids = sink.ids();
        let done = ids.last() == Some(&2999);
        all.extend(ids);
        if done || runs > 200 {
            break;
        }
    }
    assert!(runs > 1, "the backlog was too small to be interrupted");
    assert_ids(&all, 0..3000)
}

#[test]
fn without_checkpoint_end_skips_and_beginning_delivers_existing_lines() -> Res {
    let fx = Fixture::new()?;
    let mut w = Writer::open(&fx.path)?;
    w.write(recs(0..10))?;
    // A line being written at startup is not a whole line we saw: skipped under `end`.
    w.write(&rec(10)[..6])?;

    let end = Recorder::default();
    let tail_end = spawn(fx.cfg(StartPosition::End), end.clone())?;
    let mut cfg = fx.cfg(StartPosition::Beginning);
    cfg.checkpoint_path = fx.dir.path().join("state").join("other.json");
    let beginning = Recorder::default();
    let tail_beg = spawn(cfg, beginning.clone())?;

    w.write(&rec(10)[6..])?;
    w.write(recs(11..15))?;
    end.wait_id(14)?;
    beginning.wait_id(14)?;
    assert_ids(&end.ids(), 11..15)?;
    assert_ids(&beginning.ids(), 0..15)?;
    tail_end.stop()?;
    tail_beg.stop()?;
    Ok(())
}

#[test]
fn rotated_while_stopped_delivers_rest_of_dot_one_then_new_file() -> Res {
    let fx = Fixture::new()?;
    let (mut w, _) = first_run(&fx, 20)?;

    w.write(recs(20..30))?;
    std::fs::rename(&fx.path, fx.rotated())?;
    let mut w = Writer::open(&fx.path)?;
    w.write(recs(30..40))?;

    let second = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::End), second.clone())?;
    w.write(recs(40..45))?;
    second.wait_id(44)?;
    assert_ids(&second.ids(), 20..45)?;
    assert_eq!(tail.stats().rotations(), 1);
    assert!(second.notices().contains(&TailNotice::Rotated));
    tail.stop()?;

    // And a restart now resumes in the new file, not in `.1` again.
    let third = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::Beginning), third.clone())?;
    w.write(recs(45..47))?;
    third.wait_id(46)?;
    assert_ids(&third.ids(), 45..47)?;
    tail.stop()?;
    Ok(())
}

#[test]
fn copytruncate_while_stopped_finishes_the_copy_then_reads_from_zero() -> Res {
    let fx = Fixture::new()?;
    let (mut w, _) = first_run(&fx, 20)?;

    w.write(recs(20..30))?;
    std::fs::copy(&fx.path, fx.rotated())?;
    w.file.set_len(0)?;
    w.write(recs(30..33))?;

    let second = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::End), second.clone())?;
    second.wait_id(32)?;
    assert_ids(&second.ids(), 20..33)?;
    tail.stop()?;
    Ok(())
}

#[test]
fn corrupt_checkpoint_falls_back_to_start_position_and_is_replaced() -> Res {
    let fx = Fixture::new()?;
    std::fs::create_dir_all(fx.dir.path().join("state"))?;
    let mut w = Writer::open(&fx.path)?;
    w.write(recs(0..10))?;

    let garbage = b"{\"path\": \"/x\", \"dev\": ";
    std::fs::write(&fx.checkpoint, garbage)?;
    let end = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::End), end.clone())?;
    // Not silent: counted (the aggregator's /metrics shows it) and kept aside for inspection.
    assert_eq!(tail.stats().checkpoint_errors(), 1);
    assert_eq!(std::fs::read(fx.checkpoint.with_extension("json.corrupt"))?, garbage);
    w.write(recs(10..12))?;
    end.wait_id(11)?;
    assert_ids(&end.ids(), 10..12)?;
    tail.stop()?;
    assert_eq!(fx.checkpoint_offset()?, std::fs::metadata(&fx.path)?.len());

    std::fs::write(&fx.checkpoint, b"not json at all")?;
    let beginning = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::Beginning), beginning.clone())?;
    assert_eq!(tail.stats().snapshot().checkpoint_errors, 1);
    beginning.wait_id(11)?;
    assert_ids(&beginning.ids(), 0..12)?;
    tail.stop()?;
    Ok(())
}

#[test]
fn unreadable_checkpoint_is_counted_and_a_missing_one_is_not() -> Res {
    let fx = Fixture::new()?;
    let mut w = Writer::open(&fx.path)?;
    w.write(recs(0..3))?;
    let tail = spawn(fx.cfg(StartPosition::Beginning), Recorder::default())?;
    assert_eq!(tail.stats().checkpoint_errors(), 0, "no checkpoint yet is not an error");
    tail.stop()?;
    // A directory where the checkpoint file should be: exists, cannot be read as a file.
    std::fs::remove_file(&fx.checkpoint)?;
    std::fs::create_dir(&fx.checkpoint)?;
    let sink = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::Beginning), sink.clone())?;
    assert_eq!(tail.stats().checkpoint_errors(), 1);
    sink.wait_id(2)?;
    assert_ids(&sink.ids(), 0..3)?;
    tail.stop()?;
    Ok(())
}

#[test]
fn checkpoint_follows_delivery_while_running() -> Res {
    let fx = Fixture::new()?;
    let mut w = Writer::open(&fx.path)?;
    let sink = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::End), sink.clone())?;
    w.write(recs(0..5))?;
    w.write("{\"partial\":")?;
    sink.wait_id(4)?;
    let delivered = recs(0..5).len() as u64;
    // Written within the checkpoint interval, without stopping; never past the unterminated line.
    wait_until("checkpoint at the last LF", || {
        fx.checkpoint_offset().ok() == Some(delivered)
    })?;
    assert_eq!(tail.stats().offset(), delivered);
    tail.stop()?;
    assert_eq!(fx.checkpoint_offset()?, delivered);
    Ok(())
}

#[test]
fn file_replaced_by_an_identical_copy_resumes_by_fingerprint() -> Res {
    let fx = Fixture::new()?;
    let (w, _) = first_run(&fx, 20)?;
    drop(w);

    // Restored from a copy: new inode, same bytes (the second clause of PROTOCOL.md §14.10).
    let tmp = fx.path.with_file_name("restore.tmp");
    std::fs::copy(&fx.path, &tmp)?;
    std::fs::rename(&tmp, &fx.path)?;
    append(&fx.path, recs(20..25))?;

    let second = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::Beginning), second.clone())?;
    second.wait_id(24)?;
    assert_ids(&second.ids(), 20..25)?;
    tail.stop()?;
    Ok(())
}
