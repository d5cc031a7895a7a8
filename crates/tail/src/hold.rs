//! Holding the checkpoint back for a sink whose lines become durable some time after `line`
//! returns (the aggregator's history database commits in batches): a position is checkpointed
//! only once the sink says every line up to it is settled, or once it has waited
//! [`crate::TailConfig::max_hold`] — a sink that stalls or fails must never stop the checkpoint
//! for good (then a crash repeats at most that much more, it never loses lines the sink had).

use crate::checkpoint::Position;
use crate::LineSink;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Positions waiting for the sink. A long backlog read in 64 KiB chunks offers one position per
/// chunk; beyond this many the newest entry is replaced instead (its mark covers the older one).
const MAX_PENDING: usize = 1024;
/// How often a held position is looked at again while nothing else wakes the follower.
pub const RECHECK: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy)]
struct Held {
    pos: Position,
    mark: u64,
    since: Instant,
}

#[derive(Debug)]
pub struct Hold {
    max: Duration,
    pending: VecDeque<Held>,
    /// Newest position whose lines are settled (or waited for long enough).
    released: Option<Position>,
    /// A position was released unsettled and the sink has not settled one since (one warning).
    forcing: bool,
}

impl Hold {
    pub fn new(max: Duration) -> Self {
        Self {
            max,
            pending: VecDeque::new(),
            released: None,
            forcing: false,
        }
    }

    pub fn max(&self) -> Duration {
        self.max
    }

    pub fn released(&self) -> Option<Position> {
        self.released
    }

    /// Positions still waiting for the sink.
    pub fn waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Records `pos` (every line delivered so far) with the sink's mark taken now, then
    /// releases what the sink has settled or what waited too long. Returns the newest released
    /// position: the one the checkpoint may say.
    pub fn offer<S: LineSink>(
        &mut self,
        feed: &str,
        pos: Option<Position>,
        sink: &mut S,
        now: Instant,
    ) -> Option<Position> {
        if let Some(p) = pos {
            let newest = self.pending.back().map(|h| h.pos).or(self.released);
            if newest != Some(p) {
                // A sink that panics here cannot hold anything back.
                let mark = catch_unwind(AssertUnwindSafe(|| sink.mark())).unwrap_or(0);
                let held = Held {
                    pos: p,
                    mark,
                    since: now,
                };
                if self.pending.len() >= MAX_PENDING {
                    self.pending.pop_back();
                }
                self.pending.push_back(held);
            }
        }
        while let Some(front) = self.pending.front().copied() {
            let settled = catch_unwind(AssertUnwindSafe(|| sink.settled(front.mark))).unwrap_or(true);
            if settled {
                if std::mem::take(&mut self.forcing) {
                    tracing::info!(feed, "line sink settles again; checkpoint follows it");
                }
            } else if now.saturating_duration_since(front.since) >= self.max {
                if !std::mem::replace(&mut self.forcing, true) {
                    tracing::warn!(feed, max_hold = ?self.max,
                        "line sink has not settled its lines; checkpoint advanced anyway (a crash now may lose them downstream)");
                }
            } else {
                break;
            }
            self.released = Some(front.pos);
            self.pending.pop_front();
        }
        self.released
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{FileId, Head};

    /// Marks are the number of lines delivered; `durable` of them are settled.
    struct Batched {
        delivered: u64,
        durable: u64,
    }

    impl LineSink for Batched {
        fn line(&mut self, _: &str, _: bool) {
            self.delivered += 1;
        }
        fn mark(&mut self) -> u64 {
            self.delivered
        }
        fn settled(&mut self, mark: u64) -> bool {
            mark <= self.durable
        }
    }

    fn at(offset: u64) -> Option<Position> {
        Some(Position {
            id: FileId { dev: 1, ino: 2 },
            head: Head::EMPTY,
            offset,
        })
    }

    #[test]
    fn a_position_is_released_once_its_lines_are_settled() {
        let mut s = Batched {
            delivered: 0,
            durable: 0,
        };
        let mut h = Hold::new(Duration::from_secs(5));
        let t0 = Instant::now();
        s.line("a", false);
        assert_eq!(h.offer("t", at(10), &mut s, t0), None, "line 1 not durable yet");
        s.line("b", false);
        assert_eq!(h.offer("t", at(20), &mut s, t0), None);
        s.durable = 1;
        assert_eq!(h.offer("t", None, &mut s, t0), at(10), "only up to the settled line");
        assert!(h.waiting());
        s.durable = 2;
        assert_eq!(h.offer("t", at(20), &mut s, t0), at(20));
        assert!(!h.waiting());
    }

    #[test]
    fn a_sink_that_never_settles_holds_the_checkpoint_for_max_hold_only() {
        let mut s = Batched {
            delivered: 0,
            durable: 0,
        };
        let max = Duration::from_secs(5);
        let mut h = Hold::new(max);
        let t0 = Instant::now();
        s.line("a", false);
        assert_eq!(h.offer("t", at(10), &mut s, t0), None);
        assert_eq!(h.offer("t", None, &mut s, t0 + max - Duration::from_millis(1)), None);
        assert_eq!(h.offer("t", None, &mut s, t0 + max), at(10));
    }

    #[test]
    fn the_default_sink_releases_at_once_and_the_queue_stays_bounded() {
        let mut plain = |_: &str, _: bool| {};
        let mut h = Hold::new(Duration::from_secs(5));
        assert_eq!(h.offer("t", at(7), &mut plain, Instant::now()), at(7));
        let mut s = Batched {
            delivered: 0,
            durable: 0,
        };
        let t0 = Instant::now();
        for i in 1..=(MAX_PENDING as u64 * 3) {
            s.line("x", false);
            h.offer("t", at(100 + i), &mut s, t0);
        }
        assert_eq!(h.pending.len(), MAX_PENDING);
        s.durable = s.delivered;
        assert_eq!(h.offer("t", None, &mut s, t0), at(100 + MAX_PENDING as u64 * 3));
    }
}
