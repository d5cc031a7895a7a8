//! The one WebSocket fan-out every N-Defender daemon mounts (PROTOCOL.md §7).
//!
//! A service owns a [`Hub`], calls [`Hub::publish`] while holding the lock that
//! orders its state changes, and mounts [`Hub::ws_route`]. The hub owns admission,
//! greetings and resyncs (through the service's [`GreetingSource`]), per-client
//! queues and writer tasks, subscriptions, sequence numbers, replay, liveness and
//! shutdown.
//!
//! Lock order: service state lock → hub core lock → one client's state lock.
//! The hub never calls into the [`GreetingSource`] while holding a lock of its own.

mod admission;
mod client;
mod config;
mod connection;
mod owner;
mod pattern;
mod payload;
mod reader;
mod ring;
mod stats;
mod tap;
mod writer;

pub use config::HubConfig;
pub use owner::{Outbox, Owner};
pub use pattern::{PatternError, Subscription};
pub use reader::{apply_control, parse_control, ControlFrame};
pub use stats::{HubStats, IgnoredCounts, RejectedCounts, ReplayCounts};
pub use tap::{Tap, TapEvent};

use admission::Params;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, Uri};
use axum::routing::MethodRouter;
use client::{Client, CloseReason, Offer};
use ndefender_contract::Envelope;
use ring::{Event, Ring};
use stats::Counters;
use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::{timeout_at, Instant, MissedTickBehavior};
use writer::Start;

/// How long [`Hub::shutdown`] waits for writers to deliver their close frames.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// A greeting or resync set and the seq of the newest broadcast envelope it reflects.
#[derive(Debug, Clone, Default)]
pub struct Greeting {
    pub envelopes: Vec<Envelope>,
    /// Read with [`Hub::last_seq`] under the same lock the set was built under.
    pub watermark: u64,
}

/// The service side of a connection's first frames (PROTOCOL.md §7.2).
///
/// Called from the client's writer task on a Tokio worker, never under a hub lock: keep
/// each call short (a briefly held `std::sync::Mutex` is fine, I/O is not). A panic costs
/// only that connection, which is closed with 1011.
pub trait GreetingSource: Send + Sync + 'static {
    /// Envelopes sent first on every connection, before the greeting, the resync set or a
    /// `since` replay (the system controller's HELLO). They must not be repeated in
    /// [`greeting`](Self::greeting) or [`resync`](Self::resync). Default: none.
    fn hello(&self) -> Vec<Envelope> {
        Vec::new()
    }

    /// Full greeting. Take your own state lock, read `hub.last_seq()` as the watermark
    /// while holding it, and build the envelopes under it.
    fn greeting(&self, hub: &Hub) -> Greeting;

    /// Resync set, sent after a queue overflow or an unusable `since`. Same locking rule.
    fn resync(&self, hub: &Hub) -> Greeting;
}

/// The WebSocket fan-out. Cheap to clone; all clones are the same hub.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: HubConfig,
    greeting: Arc<dyn GreetingSource>,
    /// Written only under `core`, so a greeting may read it without taking any hub lock.
    last_seq: AtomicU64,
    core: Mutex<Core>,
    /// Admitted connections, including upgrades in flight.
    slots: AtomicUsize,
    next_client: AtomicU64,
    shutting_down: AtomicBool,
    /// Woken whenever a slot is released, so shutdown can wait for the last writer.
    released: Notify,
    heartbeat_started: AtomicBool,
    counters: Counters,
}

struct Core {
    ring: Ring,
    clients: Vec<Arc<Client>>,
    taps: Vec<tap::TapSender>,
    published: BTreeMap<String, u64>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("source", &self.inner.cfg.source)
            .field("last_seq", &self.last_seq())
            .field("clients", &self.client_count())
            .finish_non_exhaustive()
    }
}

/// Process start in epoch ms × 1000 (PROTOCOL.md §7.6), shared by every hub in the process so that
/// a seq from an earlier run is always below anything this run can replay.
fn initial_seq() -> u64 {
    static START: OnceLock<u64> = OnceLock::new();
    *START.get_or_init(|| payload::now_ms().saturating_mul(1000))
}

impl Hub {
    /// Builds the hub. Starts the HEARTBEAT task now if called inside a Tokio runtime,
    /// otherwise on the first accepted upgrade.
    pub fn new(cfg: HubConfig, greeting: Arc<dyn GreetingSource>) -> Hub {
        let initial = initial_seq();
        let hub = Hub {
            inner: Arc::new(Inner {
                core: Mutex::new(Core {
                    ring: Ring::new(cfg.replay_buffer, initial),
                    clients: Vec::new(),
                    taps: Vec::new(),
                    published: BTreeMap::new(),
                }),
                cfg,
                greeting,
                last_seq: AtomicU64::new(initial),
                slots: AtomicUsize::new(0),
                next_client: AtomicU64::new(1),
                shutting_down: AtomicBool::new(false),
                released: Notify::new(),
                heartbeat_started: AtomicBool::new(false),
                counters: Counters::default(),
            }),
        };
        hub.ensure_heartbeat();
        hub
    }

    /// Assigns the next seq, stores the envelope for replay (HEARTBEAT excepted) and queues
    /// it on every matching client. Never blocks on a client and never serialises under
    /// the lock.
    pub fn publish(&self, env: Envelope) -> u64 {
        let always = env.kind() == "HEARTBEAT";
        // Serialised before the lock; the seq is filled in under it.
        let mut event = Event::new(0, &env, self.inner.cfg.time_field);
        drop(env);
        let mut core = self.core();
        // Only writer of `last_seq`, and it runs under `core`, so load-then-store cannot race.
        let seq = self.inner.last_seq.load(Relaxed).saturating_add(1);
        self.inner.last_seq.store(seq, Release);
        event.seq = seq;
        let event = Arc::new(event);
        match core.published.get_mut(event.kind()) {
            Some(n) => *n += 1,
            None => {
                core.published.insert(event.kind().to_owned(), 1);
            }
        }
        if !always {
            core.ring.push(&event);
            // A tap whose receiver is gone is forgotten here rather than on a timer.
            core.taps.retain(|tap| tap.offer(&event));
        }
        for client in &core.clients {
            if client.offer(&event, always) == Offer::Overflowed {
                tracing::debug!(client = client.id, "client queue overflowed; resync pending");
            }
        }
        seq
    }

    /// Registers an in-process subscriber that receives every envelope published from now on
    /// (HEARTBEAT excepted) through a queue of `capacity`; see [`Tap`].
    pub fn tap(&self, name: &str, capacity: usize) -> Tap {
        let (sender, tap) = Tap::new(name, capacity);
        self.core().taps.push(sender);
        tap
    }

    /// Names of the registered taps (for diagnostics).
    pub fn tap_names(&self) -> Vec<String> {
        self.core().taps.iter().map(|t| t.name.clone()).collect()
    }

    /// The newest broadcast seq. A lock-free read, safe to call from a greeting.
    pub fn last_seq(&self) -> u64 {
        self.inner.last_seq.load(Acquire)
    }

    /// The `GET` route to mount, e.g. `Router::new().route("/api/v1/ws", hub.ws_route())`.
    pub fn ws_route<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        let (hub, style) = (self.clone(), self.inner.cfg.error_style);
        axum::routing::get(
            move |headers: HeaderMap, uri: Uri, ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>| {
                let hub = hub.clone();
                async move { admission::upgrade(hub, headers, uri, ws).await }
            },
        )
        // Other methods get the service's error body rather than axum's empty 405.
        .fallback(move || async move { admission::method_not_allowed(style) })
    }

    /// Refuses new upgrades (503 `shutting_down`), sends close 1001 to every client and waits,
    /// at most about a second, for the writers to finish.
    pub async fn shutdown(&self) {
        {
            let core = self.core();
            self.inner.shutting_down.store(true, Release);
            for client in &core.clients {
                client.request_close(CloseReason::Shutdown);
            }
        }
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        loop {
            let mut released = pin!(self.inner.released.notified());
            // Registered before the check so a release between the two is not missed.
            released.as_mut().enable();
            if self.client_count() == 0 {
                return;
            }
            if timeout_at(deadline, released).await.is_err() {
                tracing::warn!(clients = self.client_count(), "hub shutdown: writers still busy");
                return;
            }
        }
    }

    /// Open connections, counting upgrades in flight (`ndefender_ws_clients`).
    pub fn client_count(&self) -> usize {
        self.inner.slots.load(Acquire)
    }

    pub fn stats(&self) -> HubStats {
        let published = self.core().published.clone();
        self.inner.counters.snapshot(self.client_count(), published)
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.cfg
    }

    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Acquire)
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        // Every critical section leaves `Core` consistent, so a poisoned lock is still usable.
        self.inner.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    pub(crate) fn greeting_source(&self) -> &Arc<dyn GreetingSource> {
        &self.inner.greeting
    }

    /// Claims a client slot, or `None` at `max_clients`.
    pub(crate) fn reserve_slot(&self) -> Option<Slot> {
        let max = self.inner.cfg.max_clients;
        self.inner
            .slots
            .fetch_update(Release, Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| Slot {
                inner: Arc::clone(&self.inner),
            })
    }

    /// Puts the client on the live stream and decides how it starts, in one critical
    /// section with `publish`: a replay and the live events after it neither overlap nor gap.
    pub(crate) fn register(&self, params: &Params) -> Option<(Arc<Client>, Start)> {
        let id = self.inner.next_client.fetch_add(1, Relaxed);
        let mut core = self.core();
        if self.is_shutting_down() {
            return None;
        }
        let last = self.last_seq();
        let counters = &self.inner.counters;
        let start = match params.since {
            None => Start::Greeting,
            Some(since) => match core.ring.after(since, last) {
                Some(mut events) => {
                    events.retain(|e| params.subscription.matches(e.kind()));
                    counters.replayed.fetch_add(1, Relaxed);
                    Start::Replay { since, events }
                }
                None => {
                    counters.snapshot.fetch_add(1, Relaxed);
                    Start::Resync
                }
            },
        };
        let client = Arc::new(Client::new(
            id,
            params.seq_mode,
            self.inner.cfg.queue_capacity(),
            params.subscription.clone(),
            last,
        ));
        core.clients.push(Arc::clone(&client));
        counters.connections.fetch_add(1, Relaxed);
        Some((client, start))
    }

    pub(crate) fn deregister(&self, id: u64) {
        let mut core = self.core();
        if let Some(i) = core.clients.iter().position(|c| c.id == id) {
            core.clients.swap_remove(i);
        }
    }

    /// Starts the HEARTBEAT task once, if enabled and a runtime is available.
    pub(crate) fn ensure_heartbeat(&self) {
        let Some(every) = self.inner.cfg.heartbeat() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.heartbeat_started.swap(true, Relaxed) {
            return;
        }
        // Weak, so a dropped hub ends the task instead of being kept alive by it.
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let source = self.inner.cfg.source;
        runtime.spawn(async move {
            let mut tick = tokio::time::interval_at(Instant::now() + every, every);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let hub = Hub { inner };
                if hub.is_shutting_down() {
                    return;
                }
                if let Some(env) = payload::heartbeat(source) {
                    hub.publish(env);
                }
            }
        });
    }
}

/// A claimed client slot; releasing it is what [`Hub::shutdown`] waits for.
pub(crate) struct Slot {
    inner: Arc<Inner>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.inner.slots.fetch_sub(1, Release);
        self.inner.released.notify_waiters();
    }
}
