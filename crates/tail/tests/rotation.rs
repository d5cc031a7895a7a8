//! Rename rotation, copytruncate and in-place rewrites while running (PROTOCOL.md §14.5, 14.6).

mod common;

use common::*;
use ndefender_tail::{spawn, StartPosition, TailNotice};
use std::os::unix::fs::FileExt;
use std::time::Duration;

#[test]
fn rename_rotation_delivers_old_tail_and_new_file_in_order_none_twice() -> Res {
    let fx = Fixture::new()?;
    // A slow consumer is still far behind when the rename happens: the old lines can then only
    // come from draining the renamed file.
    let sink = Recorder::with_delay(Duration::from_micros(300));
    let mut w = Writer::open(&fx.path)?;
    let tail = spawn(fx.cfg(StartPosition::End), sink.clone())?;
    let mut next = 0u64;
    let mut expected = Vec::new();
    for round in 0..3 {
        // Lines appended right before the rename, the last one without its LF (PROTOCOL.md §14.5: still delivered).
        for _ in 0..300 {
            w.write(rec(next))?;
            expected.push(next);
            next += 1;
        }
        w.write(rec(next).trim_end())?;
        expected.push(next);
        next += 1;
        std::fs::rename(&fx.path, fx.rotated())?;
        // The new file and its first lines follow within a few milliseconds.
        w = Writer::open(&fx.path)?;
        for _ in 0..50 {
            w.write(rec(next))?;
            expected.push(next);
            next += 1;
        }
        sink.wait_id(next - 1).map_err(|e| format!("round {round}: {e}"))?;
    }
    assert_ids(&sink.ids(), expected)?;
    assert_eq!(tail.stats().rotations(), 3);
    tail.stop()?;
    Ok(())
}

#[test]
fn copytruncate_delivers_every_later_line() -> Res {
    let fx = Fixture::new()?;
    let sink = Recorder::default();
    let mut w = Writer::open(&fx.path)?;
    let tail = spawn(fx.cfg(StartPosition::End), sink.clone())?;
    w.write(recs(0..100))?;
    sink.wait_id(99)?;
    for round in 1..=3u64 {
        std::fs::copy(&fx.path, fx.rotated())?;
        w.file.set_len(0)?;
        let base = round * 1000;
        // Fewer bytes than before, and more bytes than before: both must be read from 0.
        let n = if round == 2 { 300 } else { 5 };
        w.write(recs(base..base + n))?;
        sink.wait_id(base + n - 1)?;
        assert_eq!(tail.stats().truncations(), round);
    }
    assert_ids(
        &sink.ids(),
        (0..100).chain(1000..1005).chain(2000..2300).chain(3000..3005),
    )?;
    assert!(sink.notices().contains(&TailNotice::Truncated));
    tail.stop()?;
    Ok(())
}

#[test]
fn in_place_rewrite_of_the_head_rereads_from_zero() -> Res {
    let fx = Fixture::new()?;
    let sink = Recorder::default();
    std::fs::write(&fx.path, "{\"id\":1}\n{\"id\":2}\n")?;
    let tail = spawn(fx.cfg(StartPosition::Beginning), sink.clone())?;
    sink.wait_id(2)?;
    let ino_before = std::fs::metadata(&fx.path).map(|m| std::os::unix::fs::MetadataExt::ino(&m))?;
    // Same inode, never shorter than what was read: only the fingerprint can tell.
    let f = std::fs::OpenOptions::new().write(true).open(&fx.path)?;
    f.write_all_at(b"{\"id\":7}\n{\"id\":8}\n{\"id\":9}\n", 0)?;
    drop(f);
    assert_eq!(
        std::fs::metadata(&fx.path).map(|m| std::os::unix::fs::MetadataExt::ino(&m))?,
        ino_before
    );
    sink.wait_id(9)?;
    // Without the check the tailer would resume at byte 18 and deliver only id 9.
    assert_ids(&sink.ids(), [1, 2, 7, 8, 9])?;
    assert_eq!(tail.stats().truncations(), 1);
    // Stable afterwards: no spurious re-read on later ticks.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(tail.stats().truncations(), 1);
    assert_eq!(sink.count(), 5);
    tail.stop()?;
    Ok(())
}
