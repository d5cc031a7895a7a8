//! Invalid UTF-8 and oversize lines are counted and never disturb their neighbours (PROTOCOL.md §14.7, 14.8).

mod common;

use common::*;
use ndefender_tail::{spawn, LineSink, StartPosition, TailNotice};

#[test]
fn invalid_utf8_line_is_delivered_lossily_flagged_and_counted() -> Res {
    let fx = Fixture::new()?;
    append(&fx.path, "")?;
    let sink = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::End), sink.clone())?;
    let mut data = rec(1).into_bytes();
    data.extend_from_slice(b"{\"id\":2,\"model\":\"\xff\xfeX\"}\n");
    data.extend_from_slice(rec(3).as_bytes());
    append(&fx.path, data)?;
    sink.wait_id(3)?;
    let got = sink.got();
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].line, "{\"id\":2,\"model\":\"\u{FFFD}\u{FFFD}X\"}");
    assert!(got[1].invalid_utf8);
    assert!(!got[0].invalid_utf8 && !got[2].invalid_utf8);
    assert_eq!(tail.stats().invalid_utf8(), 1);
    assert_eq!(tail.stats().lines(), 3);
    tail.stop()?;
    Ok(())
}

#[test]
fn five_mib_line_is_skipped_and_counted_neighbours_intact() -> Res {
    let fx = Fixture::new()?;
    let mut w = Writer::open(&fx.path)?;
    let sink = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::End), sink.clone())?;
    w.write(rec(1))?;
    // Written in pieces so the tailer sees it grow across many reads, CRLF-terminated.
    let big = 5 * 1024 * 1024;
    let piece = vec![b'x'; 256 * 1024];
    w.write("{\"id\":2,\"blob\":\"")?;
    let mut written = 16;
    while written < big {
        w.write(&piece)?;
        written += piece.len();
    }
    w.write("\"}\r\n")?;
    written += 3;
    w.write(rec(3))?;
    sink.wait_id(3)?;
    assert_ids(&sink.ids(), [1, 3])?;
    assert_eq!(tail.stats().oversize(), 1);
    assert!(sink
        .notices()
        .contains(&TailNotice::OversizeLine { bytes: written as u64 }));
    tail.stop()?;
    Ok(())
}

/// Panics on the line with id 2.
struct Fragile(Recorder);

impl LineSink for Fragile {
    #[allow(clippy::panic)]
    fn line(&mut self, line: &str, invalid_utf8: bool) {
        if id_of(line) == Some(2) {
            panic!("sink bug on purpose");
        }
        self.0.line(line, invalid_utf8);
    }
}

#[test]
fn a_panicking_sink_costs_one_line_not_the_feed() -> Res {
    let fx = Fixture::new()?;
    append(&fx.path, "")?;
    let sink = Recorder::default();
    let tail = spawn(fx.cfg(StartPosition::End), Fragile(sink.clone()))?;
    append(&fx.path, recs(1..4))?;
    sink.wait_id(3)?;
    assert_ids(&sink.ids(), [1, 3])?;
    assert_eq!(tail.stats().sink_panics(), 1);
    tail.stop()?;
    Ok(())
}
