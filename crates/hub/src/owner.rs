//! The one state owner every daemon builds on (PROTOCOL.md §7.2): a daemon's state and the
//! hub behind one lock, so that a change and the events it causes reach the hub in the same
//! critical section, and a greeting or resync set is built under that same lock with
//! [`Hub::last_seq`] as its watermark. Together with the hub's rule (nothing at or below a
//! watermark is delivered after the set) a client never sees a gap or a duplicate.
//!
//! Mutations do not publish directly: they push envelopes to the state's outbox
//! ([`Outbox`]), and [`Owner::mutate`] hands them to the hub, in order, before the lock drops.

use crate::{Greeting, Hub};
use ndefender_contract::Envelope;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// State whose mutations emit envelopes.
pub trait Outbox {
    /// Envelopes emitted by the current mutation, not yet handed to the hub.
    fn outbox(&mut self) -> &mut Vec<Envelope>;
}

/// A daemon's state and its hub behind one lock.
#[derive(Debug)]
pub struct Owner<S> {
    state: Mutex<S>,
    hub: OnceLock<Hub>,
}

impl<S: Outbox> Owner<S> {
    pub fn new(state: S) -> Self {
        Self {
            state: Mutex::new(state),
            hub: OnceLock::new(),
        }
    }

    /// Attaches the hub, once (the hub needs the owner as its greeting source first). Events
    /// emitted before that are dropped: no client can be connected yet.
    pub fn attach_hub(&self, hub: Hub) {
        let _ = self.hub.set(hub);
    }

    pub fn hub(&self) -> Option<&Hub> {
        self.hub.get()
    }

    /// The state, locked. A poisoned lock means a bug panicked mid-change; the state is still
    /// the best there is, so the daemon keeps serving rather than going down.
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Consistent read-only access.
    pub fn read<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.lock())
    }

    /// Applies a change and hands the events it emitted to the hub, in one critical section.
    pub fn mutate<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        self.mutate_then(f, |_| ()).0
    }

    /// [`Self::mutate`], then `after` on the state still under the lock (e.g. to wake a task
    /// that reacts to the change).
    pub fn mutate_then<R, A>(&self, f: impl FnOnce(&mut S) -> R, after: impl FnOnce(&mut S) -> A) -> (R, A) {
        let mut st = self.lock();
        let r = f(&mut st);
        let out = std::mem::take(st.outbox());
        if let Some(hub) = self.hub.get() {
            for e in out {
                hub.publish(e);
            }
        }
        let a = after(&mut st);
        (r, a)
    }

    /// A greeting or resync set built by `build` under the lock, with the hub's newest seq
    /// read under the same lock as its watermark.
    pub fn greeting(&self, hub: &Hub, build: impl FnOnce(&S) -> Vec<Envelope>) -> Greeting {
        let st = self.lock();
        let watermark = hub.last_seq();
        Greeting {
            envelopes: build(&st),
            watermark,
        }
    }
}
