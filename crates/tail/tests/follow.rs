//! Live following: appends, split lines, CRLF, bursts, appearance and deletion — real files, real inotify.

mod common;

use common::*;
use ndefender_tail::{spawn, StartPosition, TailNotice};
use std::time::Duration;

#[test]
fn appended_line_is_delivered_by_the_watch_alone() -> Res {
    let fx = Fixture::new()?;
    append(&fx.path, "")?;
    let mut cfg = fx.cfg(StartPosition::End);
    // Longer than PATIENCE: only an inotify wake-up can deliver in time.
    cfg.poll_interval = Duration::from_secs(3600);
    let sink = Recorder::default();
    let tail = spawn(cfg, sink.clone())?;
    // The first checkpoint is written right after the first (immediate) check: from then on only a
    // wake-up can deliver.
    wait_until("first checkpoint", || fx.checkpoint.exists())?;
    append(&fx.path, rec(1))?;
    sink.wait_id(1)?;
    append(&fx.path, rec(2))?;
    sink.wait_id(2)?;
    assert_ids(&sink.ids(), [1, 2])?;
    tail.stop()?;
    Ok(())
}

#[test]
fn line_written_in_two_parts_500ms_apart_is_delivered_once_intact() -> Res {
    let fx = Fixture::new()?;
    let mut w = Writer::open(&fx.path)?;
    let sink = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::End), sink.clone())?;
    let full = rec(7);
    let (a, b) = full.split_at(12);
    w.write(a)?;
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.count(), 0, "half a line was delivered");
    w.write(b)?;
    w.write(rec(8))?;
    sink.wait_id(8)?;
    assert_eq!(
        sink.lines(),
        vec![full.trim_end().to_owned(), rec(8).trim_end().to_owned()]
    );
    tail.stop()?;
    Ok(())
}

#[test]
fn crlf_lines_lose_their_cr() -> Res {
    let fx = Fixture::new()?;
    append(&fx.path, "")?;
    let sink = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::End), sink.clone())?;
    append(&fx.path, "{\"id\":1}\r\n   \r\n{\"id\":2}\r\n")?;
    sink.wait_id(2)?;
    assert_eq!(sink.lines(), vec!["{\"id\":1}", "{\"id\":2}"]);
    tail.stop()?;
    Ok(())
}

#[test]
fn burst_of_10k_lines_arrives_complete_and_in_order() -> Res {
    let fx = Fixture::new()?;
    let mut w = Writer::open(&fx.path)?;
    let sink = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::End), sink.clone())?;
    for i in 0..10_000 {
        w.write(rec(i))?;
    }
    sink.wait_id(9_999)?;
    assert_ids(&sink.ids(), 0..10_000)?;
    assert_eq!(tail.stats().lines(), 10_000);
    tail.stop()?;
    Ok(())
}

#[test]
fn file_absent_at_start_is_read_from_its_first_line() -> Res {
    let fx = Fixture::new()?;
    let sink = Recorder::default();
    // `end` must not apply to a file that appears later.
    let tail = spawn(fx.cfg(StartPosition::End), sink.clone())?;
    wait_until("missing notice", || sink.notices().contains(&TailNotice::Missing))?;
    append(&fx.path, recs(0..5))?;
    sink.wait_id(4)?;
    assert_ids(&sink.ids(), 0..5)?;
    assert!(sink.notices().contains(&TailNotice::Appeared));
    tail.stop()?;
    Ok(())
}

#[test]
fn parent_directory_absent_at_start_is_polled_then_watched() -> Res {
    let fx = Fixture::new()?;
    let path = fx.dir.path().join("later").join("feed.jsonl");
    let mut cfg = fx.cfg(StartPosition::End);
    cfg.path = path.clone();
    let sink = Recorder::default();
    let tail = spawn(cfg, sink.clone())?;
    std::fs::create_dir_all(fx.dir.path().join("later"))?;
    append(&path, recs(0..3))?;
    sink.wait_id(2)?;
    append(&path, recs(3..6))?;
    sink.wait_id(5)?;
    assert_ids(&sink.ids(), 0..6)?;
    tail.stop()?;
    Ok(())
}

#[test]
fn deleted_then_recreated_file_is_read_from_start() -> Res {
    let fx = Fixture::new()?;
    let sink = Recorder::default();
    append(&fx.path, "")?;
    let tail = spawn(fx.cfg(StartPosition::End), sink.clone())?;
    append(&fx.path, recs(0..3))?;
    sink.wait_id(2)?;
    // The writer's last, unterminated words before deleting are still delivered (PROTOCOL.md §14.5).
    append(&fx.path, rec(3).trim_end())?;
    std::fs::remove_file(&fx.path)?;
    wait_until("missing notice", || sink.notices().contains(&TailNotice::Missing))?;
    assert!(!tail.stats().present());
    append(&fx.path, recs(10..13))?;
    sink.wait_id(12)?;
    assert_ids(&sink.ids(), (0..4).chain(10..13))?;
    assert_eq!(tail.stats().rotations(), 1);
    tail.stop()?;
    Ok(())
}

#[test]
fn dropping_the_handle_stops_the_thread() -> Res {
    let fx = Fixture::new()?;
    append(&fx.path, recs(0..3))?;
    let sink = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::Beginning), sink.clone())?;
    sink.wait_id(2)?;
    tail.stop()?;
    let sink2 = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::Beginning), sink2.clone())?;
    let stats = tail.stats();
    drop(tail);
    std::thread::sleep(Duration::from_millis(300));
    append(&fx.path, rec(3))?;
    std::thread::sleep(Duration::from_millis(600));
    assert!(sink2.ids().is_empty(), "a dropped tailer kept delivering");
    assert_eq!(stats.lines(), 0);
    Ok(())
}
