//! A sink whose lines become durable later than `line` returns (a database committing in
//! batches): the checkpoint waits for it, at most `max_hold`, and a graceful stop leaves what
//! it has not settled to be read again.

mod common;

use common::*;
use ndefender_tail::{spawn, LineSink, StartPosition};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// Marks are line counts; the test decides how many are durable.
#[derive(Clone, Default)]
struct Batched {
    delivered: Arc<AtomicU64>,
    durable: Arc<AtomicU64>,
}

impl LineSink for Batched {
    fn line(&mut self, _line: &str, _invalid_utf8: bool) {
        self.delivered.fetch_add(1, SeqCst);
    }
    fn mark(&mut self) -> u64 {
        self.delivered.load(SeqCst)
    }
    fn settled(&mut self, mark: u64) -> bool {
        mark <= self.durable.load(SeqCst)
    }
}

fn offset_or_zero(fx: &Fixture) -> u64 {
    fx.checkpoint_offset().unwrap_or(0)
}

/// A tailer from the beginning of a fresh feed into a [`Batched`] sink, ten lines appended.
fn start(max_hold: Duration) -> Res<(Fixture, ndefender_tail::TailConfig, Batched, ndefender_tail::TailHandle)> {
    let fx = Fixture::new()?;
    let mut cfg = fx.cfg(StartPosition::Beginning);
    cfg.max_hold = max_hold;
    let sink = Batched::default();
    let tail = spawn(cfg.clone(), sink.clone())?;
    append(&fx.path, recs(0..10))?;
    Ok((fx, cfg, sink, tail))
}

#[test]
fn checkpoint_follows_what_the_sink_settled() -> Res {
    let (fx, _, sink, tail) = start(Duration::from_secs(600))?;
    wait_until("10 lines delivered", || sink.delivered.load(SeqCst) == 10)?;
    // Several checkpoint intervals (200 ms) pass: nothing settled, nothing checkpointed.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(offset_or_zero(&fx), 0);
    sink.durable.store(10, SeqCst);
    let len = std::fs::metadata(&fx.path)?.len();
    wait_until("checkpoint at the end", || offset_or_zero(&fx) == len)?;
    tail.stop()?;
    assert_eq!(fx.checkpoint_offset()?, len);
    Ok(())
}

#[test]
fn a_sink_that_never_settles_holds_the_checkpoint_for_max_hold_only() -> Res {
    let (fx, _, _, tail) = start(Duration::from_millis(300))?;
    let len = std::fs::metadata(&fx.path)?.len();
    wait_until("checkpoint at the end after max_hold", || offset_or_zero(&fx) == len)?;
    tail.stop()?;
    Ok(())
}

#[test]
fn graceful_stop_leaves_unsettled_lines_to_be_read_again() -> Res {
    let (fx, cfg, sink, tail) = start(Duration::from_secs(600))?;
    wait_until("10 lines delivered", || sink.delivered.load(SeqCst) == 10)?;
    tail.stop()?;
    assert_eq!(offset_or_zero(&fx), 0, "nothing settled, nothing checkpointed");

    let again = Recorder::default();
    let tail = spawn(cfg, again.clone())?;
    assert_ids(
        &again
            .wait_count(10)?
            .iter()
            .filter_map(|l| id_of(l))
            .collect::<Vec<_>>(),
        0..10,
    )?;
    tail.stop()?;
    Ok(())
}
