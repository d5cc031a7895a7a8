//! One connected client's shared state: its bounded queue, subscription and close request.
//!
//! The publisher (under the hub's core lock), the client's reader and its writer
//! all meet here, each for a few instructions under `state`'s lock.

use crate::pattern::Subscription;
use crate::ring::Event;
use ndefender_contract::Envelope;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// A frame waiting for the writer.
#[derive(Debug)]
pub(crate) enum Item {
    Event(Arc<Event>),
    /// A control reply; `seq` is the newest broadcast seq this client's stream reflected when it was queued.
    Reply {
        envelope: Envelope,
        seq: u64,
    },
}

/// Why the server closes a connection (PROTOCOL.md §7.8). 1000 is deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    Shutdown,
    SlowConsumer,
    Silent,
    TooBig,
    Internal,
    /// The peer sent Close: only the handshake reply is owed.
    PeerClosed,
}

impl CloseReason {
    pub fn frame(self) -> Option<(u16, &'static str)> {
        match self {
            CloseReason::Shutdown => Some((1001, "server shutting down")),
            CloseReason::SlowConsumer => Some((1008, "slow consumer")),
            CloseReason::Silent => Some((1008, "no frames received")),
            CloseReason::TooBig => Some((1009, "message too big")),
            CloseReason::Internal => Some((1011, "internal error")),
            CloseReason::PeerClosed => None,
        }
    }
}

/// What the writer should do next.
#[derive(Debug)]
pub(crate) enum Step {
    Close(CloseReason),
    Resync,
    /// `out` was filled with queued items.
    Items,
    Idle,
}

#[derive(Debug)]
struct State {
    items: VecDeque<Item>,
    /// Broadcast events in `items` (replies excluded), compared against the capacity.
    events: usize,
    resync: bool,
    close: Option<CloseReason>,
    /// Set once a close was requested: the client takes no more frames.
    closing: bool,
    /// Newest broadcast seq considered for this client, delivered or filtered out.
    considered: u64,
    subscription: Subscription,
}

#[derive(Debug)]
pub(crate) struct Client {
    pub id: u64,
    /// `?seq=1` or `?since=`: every frame carries `seq`.
    pub seq_mode: bool,
    capacity: usize,
    state: Mutex<State>,
    wake: Notify,
}

/// Result of offering a broadcast event to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    Queued,
    Skipped,
    Overflowed,
}

impl Client {
    pub fn new(id: u64, seq_mode: bool, capacity: usize, subscription: Subscription, considered: u64) -> Self {
        Self {
            id,
            seq_mode,
            capacity,
            state: Mutex::new(State {
                items: VecDeque::new(),
                events: 0,
                resync: false,
                close: None,
                closing: false,
                considered,
                subscription,
            }),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not wedge the fan-out; the state stays consistent between statements.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by `publish` with the hub's core lock held. Never blocks beyond this client's state lock.
    pub fn offer(&self, event: &Arc<Event>, always: bool) -> Offer {
        let mut s = self.lock();
        if s.closing {
            return Offer::Skipped;
        }
        s.considered = event.seq;
        if !always && !s.subscription.matches(event.kind()) {
            return Offer::Skipped;
        }
        if s.events >= self.capacity {
            // The resync set is computed later and reflects this event too, so it is dropped with the rest.
            s.items.retain(|i| matches!(i, Item::Reply { .. }));
            s.events = 0;
            s.resync = true;
            drop(s);
            self.wake.notify_one();
            return Offer::Overflowed;
        }
        let was_empty = s.items.is_empty();
        s.items.push_back(Item::Event(Arc::clone(event)));
        s.events += 1;
        drop(s);
        // The writer only waits when it found the queue empty, and Notify keeps one permit.
        if was_empty {
            self.wake.notify_one();
        }
        Offer::Queued
    }

    /// Runs a control action against the subscription and queues its reply in the
    /// same critical section, so the reply's `active` matches what later events are filtered by.
    pub fn control<F>(&self, action: F)
    where
        F: FnOnce(&mut Subscription) -> Option<Envelope>,
    {
        let mut s = self.lock();
        if s.closing {
            return;
        }
        if let Some(envelope) = action(&mut s.subscription) {
            let seq = s.considered;
            s.items.push_back(Item::Reply { envelope, seq });
            drop(s);
            self.wake.notify_one();
        }
    }

    pub fn request_close(&self, reason: CloseReason) {
        let mut s = self.lock();
        if s.closing {
            return;
        }
        s.closing = true;
        s.close = Some(reason);
        // A graceful shutdown still delivers what is already queued (the hub bounds the
        // wait), so a daemon that stops its inputs first loses nothing it published.
        if reason != CloseReason::Shutdown {
            s.items.clear();
            s.events = 0;
        }
        drop(s);
        self.wake.notify_one();
    }

    /// Close first (after the queue drains, on shutdown), then a pending resync, then up
    /// to `max` queued items into `out`.
    pub fn next_step(&self, out: &mut Vec<Item>, max: usize) -> Step {
        let mut s = self.lock();
        match s.close {
            Some(CloseReason::Shutdown) if !s.items.is_empty() => {}
            Some(reason) => {
                s.close = None;
                return Step::Close(reason);
            }
            None if s.closing => return Step::Idle,
            None => {}
        }
        if s.resync && s.close.is_none() {
            s.resync = false;
            return Step::Resync;
        }
        if s.items.is_empty() {
            return Step::Idle;
        }
        let n = s.items.len().min(max);
        let state = &mut *s;
        let mut events_taken = 0;
        for item in state.items.drain(..n) {
            if matches!(item, Item::Event(_)) {
                events_taken += 1;
            }
            out.push(item);
        }
        state.events = state.events.saturating_sub(events_taken);
        Step::Items
    }

    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}
