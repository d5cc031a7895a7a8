//! Broadcast events with their lazily built wire bytes, and the replay ring (wire §7.6).

use axum::extract::ws::Utf8Bytes;
use ndefender_contract::{Envelope, TimestampField};
use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

/// One broadcast envelope, shared by every client queue and the ring.
///
/// The two wire forms are built on first use by whichever writer needs them, so
/// `publish` never serialises under the hub lock and no form is built twice.
#[derive(Debug)]
pub struct Event {
    pub seq: u64,
    envelope: Envelope,
    time_field: TimestampField,
    plain: OnceLock<Utf8Bytes>,
    with_seq: OnceLock<Utf8Bytes>,
}

impl Event {
    pub fn new(seq: u64, envelope: Envelope, time_field: TimestampField) -> Self {
        Self {
            seq,
            envelope,
            time_field,
            plain: OnceLock::new(),
            with_seq: OnceLock::new(),
        }
    }

    pub fn kind(&self) -> &str {
        self.envelope.kind()
    }

    pub fn frame(&self, seq: bool) -> Utf8Bytes {
        let (cell, seq) = if seq {
            (&self.with_seq, Some(self.seq))
        } else {
            (&self.plain, None)
        };
        cell.get_or_init(|| Utf8Bytes::from(self.envelope.to_json(seq, self.time_field)))
            .clone()
    }
}

/// The last `capacity` broadcast envelopes, HEARTBEAT excluded.
#[derive(Debug)]
pub struct Ring {
    capacity: usize,
    events: VecDeque<Arc<Event>>,
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

    pub fn push(&mut self, event: Arc<Event>) {
        if self.capacity == 0 {
            self.floor = event.seq;
            return;
        }
        while self.events.len() >= self.capacity {
            if let Some(old) = self.events.pop_front() {
                self.floor = old.seq;
            }
        }
        self.events.push_back(event);
    }

    /// Every stored envelope with seq > `since`, or `None` when the ring no longer
    /// holds all of them or `since` lies beyond `last_seq` (another run, or garbage).
    pub fn after(&self, since: u64, last_seq: u64) -> Option<Vec<Arc<Event>>> {
        if since < self.floor || since > last_seq {
            return None;
        }
        let start = self.events.partition_point(|e| e.seq <= since);
        Some(self.events.range(start..).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndefender_contract::Source;

    fn ev(seq: u64) -> Result<Arc<Event>, Box<dyn std::error::Error>> {
        let env = Envelope::new("X", 1, Source::System, &serde_json::json!({"n": seq}))?;
        Ok(Arc::new(Event::new(seq, env, TimestampField::TimestampMs)))
    }

    fn seqs(v: Option<Vec<Arc<Event>>>) -> Option<Vec<u64>> {
        v.map(|v| v.iter().map(|e| e.seq).collect())
    }

    #[test]
    fn replay_window() -> Result<(), Box<dyn std::error::Error>> {
        let mut r = Ring::new(3, 100);
        assert_eq!(seqs(r.after(100, 100)), Some(vec![]));
        for s in [101, 102, 104, 105] {
            r.push(ev(s)?);
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
    fn frames_are_shared() -> Result<(), Box<dyn std::error::Error>> {
        let e = ev(7)?;
        assert_eq!(
            e.frame(false).as_str(),
            r#"{"type":"X","timestamp_ms":1,"source":"system","data":{"n":7}}"#
        );
        assert_eq!(
            e.frame(true).as_str(),
            r#"{"type":"X","timestamp_ms":1,"source":"system","data":{"n":7},"seq":7}"#
        );
        assert_eq!(e.frame(true).as_str().as_ptr(), e.frame(true).as_str().as_ptr());
        Ok(())
    }
}
