//! Broadcast events with their shared wire bytes, and the replay ring (PROTOCOL.md §7.6).

use axum::extract::ws::Utf8Bytes;
use ndefender_contract::{Envelope, TimestampField};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

/// One broadcast envelope as the live fan-out shares it between client queues.
///
/// The plain text is serialised once, before the hub lock. The `?seq=1` form is that
/// text with `,"seq":N` spliced in before the closing brace, built by the first writer
/// that needs it and shared by the others; it goes away with the last queue holding the
/// event, because the ring keeps only the plain text (see [`Ring`]).
#[derive(Debug)]
pub struct Event {
    pub seq: u64,
    kind: Cow<'static, str>,
    plain: Utf8Bytes,
    with_seq: OnceLock<Utf8Bytes>,
}

impl Event {
    pub fn new(seq: u64, envelope: &Envelope, time_field: TimestampField) -> Self {
        Self::from_plain(
            seq,
            envelope.kind_cow(),
            Utf8Bytes::from(envelope.to_json(None, time_field)),
        )
    }

    fn from_plain(seq: u64, kind: Cow<'static, str>, plain: Utf8Bytes) -> Self {
        Self {
            seq,
            kind,
            plain,
            with_seq: OnceLock::new(),
        }
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The plain wire text (no seq member).
    pub fn plain_str(&self) -> &str {
        self.plain.as_str()
    }

    pub fn frame(&self, seq: bool) -> Utf8Bytes {
        if !seq {
            return self.plain.clone();
        }
        self.with_seq
            .get_or_init(|| {
                // `to_json` always ends the object with '}'; the seq member goes last, as
                // in `Envelope::to_json(Some(seq), …)`.
                let body = self.plain.as_str();
                let body = body.strip_suffix('}').unwrap_or(body);
                let mut out = String::with_capacity(body.len() + 32);
                out.push_str(body);
                let _ = write!(out, ",\"seq\":{}}}", self.seq);
                Utf8Bytes::from(out)
            })
            .clone()
    }
}

/// What the ring keeps of an event: its plain text (shared with the live event, not
/// copied) and what filtering and ordering need. A full ring (4096 entries by default,
/// PROTOCOL.md §7.7) costs one serialised copy of each envelope.
#[derive(Debug)]
struct Stored {
    seq: u64,
    kind: Cow<'static, str>,
    plain: Utf8Bytes,
}

/// The last `capacity` broadcast envelopes, HEARTBEAT excluded.
#[derive(Debug)]
pub struct Ring {
    capacity: usize,
    events: VecDeque<Stored>,
    /// Highest seq no longer guaranteed to be held: the last evicted entry, or the
    /// counter's initial value. Every stored envelope with a larger seq is in `events`.
    floor: u64,
}

impl Ring {
    pub fn new(capacity: usize, initial_seq: u64) -> Self {
        Self {
            capacity,
            events: VecDeque::with_capacity(capacity.min(4096)),
            floor: initial_seq,
        }
    }

    pub fn push(&mut self, event: &Event) {
        if self.capacity == 0 {
            self.floor = event.seq;
            return;
        }
        while self.events.len() >= self.capacity {
            if let Some(old) = self.events.pop_front() {
                self.floor = old.seq;
            }
        }
        self.events.push_back(Stored {
            seq: event.seq,
            kind: event.kind.clone(),
            plain: event.plain.clone(),
        });
    }

    /// Every stored envelope with seq > `since`, or `None` when the ring no longer
    /// holds all of them or `since` lies beyond `last_seq` (another run, or garbage).
    pub fn after(&self, since: u64, last_seq: u64) -> Option<Vec<Arc<Event>>> {
        if since < self.floor || since > last_seq {
            return None;
        }
        let start = self.events.partition_point(|e| e.seq <= since);
        Some(
            self.events
                .range(start..)
                .map(|e| Arc::new(Event::from_plain(e.seq, e.kind.clone(), e.plain.clone())))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndefender_contract::Source;

    fn ev(seq: u64) -> Result<Arc<Event>, Box<dyn std::error::Error>> {
        let env = Envelope::new("X", 1, Source::System, &serde_json::json!({"n": seq}))?;
        Ok(Arc::new(Event::new(seq, &env, TimestampField::TimestampMs)))
    }

    fn seqs(v: Option<Vec<Arc<Event>>>) -> Option<Vec<u64>> {
        v.map(|v| v.iter().map(|e| e.seq).collect())
    }

    #[test]
    fn replay_window() -> Result<(), Box<dyn std::error::Error>> {
        let mut r = Ring::new(3, 100);
        assert_eq!(seqs(r.after(100, 100)), Some(vec![]));
        for s in [101, 102, 104, 105] {
            r.push(&*ev(s)?);
        }
        // 103 was a heartbeat: numbered, never stored.
        assert_eq!(seqs(r.after(101, 105)), Some(vec![102, 104, 105]));
        assert_eq!(seqs(r.after(102, 105)), Some(vec![104, 105]));
        assert_eq!(seqs(r.after(103, 105)), Some(vec![104, 105]));
        assert_eq!(seqs(r.after(105, 105)), Some(vec![]));
        assert_eq!(seqs(r.after(100, 105)), None, "101 was evicted");
        assert_eq!(seqs(r.after(106, 105)), None, "future");
        assert_eq!(seqs(r.after(7, 105)), None, "earlier run");
        Ok(())
    }

    #[test]
    fn both_forms_match_the_envelope_and_the_plain_one_is_shared() -> Result<(), Box<dyn std::error::Error>> {
        let data = serde_json::json!({"n": 7, "s": "}\"é", "nested": {"a": [1, {}]}});
        for tf in [TimestampField::TimestampMs, TimestampField::Timestamp] {
            let env = Envelope::new("RF_CONTACT_NEW", 1, Source::Antsdr, &data)?;
            let e = Event::new(9_007_199_254_740_000, &env, tf);
            assert_eq!(e.kind(), "RF_CONTACT_NEW");
            assert_eq!(e.frame(false).as_str(), env.to_json(None, tf));
            assert_eq!(e.frame(true).as_str(), env.to_json(Some(e.seq), tf));
            assert_eq!(e.frame(false).as_str().as_ptr(), e.frame(false).as_str().as_ptr());
            assert_eq!(e.frame(true).as_str().as_ptr(), e.frame(true).as_str().as_ptr());
            // The ring shares the plain text and rebuilds the seq form on replay.
            let mut r = Ring::new(2, e.seq - 1);
            r.push(&e);
            let replayed = r.after(e.seq - 1, e.seq).unwrap_or_default();
            assert_eq!(replayed.len(), 1);
            assert_eq!(
                replayed[0].frame(false).as_str().as_ptr(),
                e.frame(false).as_str().as_ptr()
            );
            assert_eq!(replayed[0].frame(true).as_str(), e.frame(true).as_str());
        }
        let e = ev(7)?;
        assert_eq!(
            e.frame(true).as_str(),
            r#"{"type":"X","timestamp_ms":1,"source":"system","data":{"n":7},"seq":7}"#
        );
        Ok(())
    }
}
