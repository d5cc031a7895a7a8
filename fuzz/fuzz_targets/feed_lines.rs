//! The JSONL feed line normaliser: arbitrary bytes as a feed file, framed by the tailer's
//! `LineFramer` and handed (lossy UTF-8, as the follower does) to the functions the
//! aggregator's feed sink calls per line, `core::remoteid::apply_line` and
//! `core::antsdr::apply_line`, on one `State`, with the 1 s watchdog tick in between.
//!
//! Oracles: no panic; every line lands in exactly one per-feed counter, the one its outcome
//! names (rejections are counted, never lost); an emitted line publishes an envelope of the
//! type it reports; every envelope and the final snapshot are schema-valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndefender_aggregator::config::AggregatorConfig;
use ndefender_aggregator::core::watchdog::{self, Facts, Iface};
use ndefender_aggregator::core::{antsdr, remoteid, Feed, FeedCounters, State};
use ndefender_contract::time::ManualClock;
use ndefender_fuzz::{assert_envelopes_valid, assert_valid_body, T0_MS};
use ndefender_tail::{Frame, LineFramer};
use std::sync::Arc;
use std::time::Duration;

fn total(c: &FeedCounters) -> u64 {
    c.accepted + c.malformed + c.invalid + c.stale + c.test_marker + c.unknown_lost
}

/// Which counter an outcome must have moved.
fn counter(c: &FeedCounters, name: &str) -> u64 {
    match name {
        "accepted" => c.accepted,
        "malformed" => c.malformed,
        "invalid" => c.invalid,
        "stale" => c.stale,
        "test_marker" => c.test_marker,
        _ => c.unknown_lost,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mask, file)) = data.split_first() else {
        return;
    };
    let cfg = AggregatorConfig::default();
    let mut framer = LineFramer::new(cfg.tail.max_line_bytes);
    let mut lines = Vec::new();
    framer.feed(file, |f| {
        if let Frame::Line { data, .. } = f {
            lines.push(String::from_utf8_lossy(data).into_owned());
        }
    });
    if let Some(Frame::Line { data, .. }) = framer.finish() {
        lines.push(String::from_utf8_lossy(data).into_owned());
    }

    let clock = Arc::new(ManualClock::new(T0_MS));
    let mut st = State::new(Arc::new(cfg), clock.clone());
    let facts = Facts {
        remoteid_exists: true,
        antsdr_exists: true,
        capture_iface: Iface::State("up".into()),
        video_present: None,
    };
    for (i, line) in lines.iter().enumerate() {
        let feed = if (mask >> (i % 8)) & 1 == 0 { Feed::RemoteId } else { Feed::Antsdr };
        let before = st.counters(feed).clone();
        let (outcome, emitted) = match feed {
            Feed::RemoteId => match remoteid::apply_line(&mut st, line) {
                remoteid::Outcome::Emitted(k) => ("accepted", Some(k)),
                remoteid::Outcome::Malformed => ("malformed", None),
                remoteid::Outcome::Invalid => ("invalid", None),
                remoteid::Outcome::Stale => ("stale", None),
                remoteid::Outcome::TestMarker => ("test_marker", None),
                remoteid::Outcome::UnknownLost => ("unknown_lost", None),
            },
            Feed::Antsdr => match antsdr::apply_line(&mut st, line) {
                antsdr::Outcome::Emitted(k) => ("accepted", Some(k)),
                antsdr::Outcome::Malformed => ("malformed", None),
                antsdr::Outcome::Invalid => ("invalid", None),
                antsdr::Outcome::Stale => ("stale", None),
                antsdr::Outcome::TestMarker => ("test_marker", None),
                antsdr::Outcome::UnknownLost => ("unknown_lost", None),
            },
        };
        let after = st.counters(feed).clone();
        assert_eq!(total(&after), total(&before) + 1, "{feed:?} line counted {} times: {line}", total(&after) - total(&before));
        assert_eq!(counter(&after, outcome), counter(&before, outcome) + 1, "{outcome} not counted: {line}");
        let out = std::mem::take(&mut st.out);
        if let Some(k) = emitted {
            assert!(out.iter().any(|e| e.kind() == k), "{k} reported but not emitted");
        }
        assert_envelopes_valid(&out);
        clock.advance(Duration::from_millis(700));
        if i % 4 == 3 {
            watchdog::tick(&mut st, &facts);
            assert_envelopes_valid(&std::mem::take(&mut st.out));
        }
    }
    let snap = serde_json::to_value(st.snapshot()).unwrap_or_default();
    assert_valid_body("StatusSnapshot.json", &snap);
});
