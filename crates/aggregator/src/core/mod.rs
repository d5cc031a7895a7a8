//! The single state owner (aggregator §1): every mutation and the events it
//! causes are applied and published in one critical section, which is what makes
//! hub watermarks exact (PROTOCOL.md §7.2). Domain logic is synchronous and takes its
//! time from an injected [`Clock`], so TTLs and watchdogs are tested by moving a
//! manual clock.

pub mod antsdr;
pub mod contacts;
pub mod controller;
pub mod esp32;
pub mod feedline;
pub mod remoteid;
pub mod watchdog;

use crate::config::AggregatorConfig;
use contacts::ContactStore;
use ndefender_contract::devices::RemoteIdReplayStateBody;
use ndefender_contract::enums::{LogLevel, RemoteIdHealth, RfStatus, Status};
use ndefender_contract::events::{kind, LogEvent};
use ndefender_contract::snapshot::StatusSnapshot;
use ndefender_contract::time::Clock;
use ndefender_contract::{Envelope, Source};
use ndefender_hub::{Greeting, GreetingSource, Hub, Owner};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Per-feed line outcomes (aggregator §14 `aggregator_feed_lines_total`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FeedCounters {
    pub accepted: u64,
    pub malformed: u64,
    pub invalid: u64,
    pub stale: u64,
    pub test_marker: u64,
    pub oversize: u64,
    pub unknown_lost: u64,
    pub lifecycle_rewrites: u64,
}

/// Which feed a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feed {
    RemoteId,
    Antsdr,
}

impl Feed {
    pub const fn name(self) -> &'static str {
        match self {
            Feed::RemoteId => "remoteid",
            Feed::Antsdr => "antsdr",
        }
    }
}

/// Watchdog state of a feed; sections are written only on a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedHealth {
    /// A line was accepted since the last fault (or nothing judged yet).
    Fresh,
    Missing,
    Stale(String),
}

/// Everything the aggregator knows. Sections of `snap` are updated field-wise.
pub struct State {
    pub cfg: Arc<AggregatorConfig>,
    pub clock: Arc<dyn Clock>,
    pub t0_mono: Instant,
    pub snap: StatusSnapshot,
    pub contacts: ContactStore,
    pub counters: HashMap<Feed, FeedCounters>,
    pub last_activity: HashMap<Feed, Instant>,
    pub health: HashMap<Feed, FeedHealth>,
    pub replay_data: Option<RemoteIdReplayStateBody>,
    pub replay_last_line: Option<Instant>,
    pub esp32_link: esp32::LinkState,
    pub controller_up: bool,
    /// Contacts that already triggered the high-severity alert beep.
    pub beeped: std::collections::HashSet<String>,
    /// A contact newly reached high severity since the beeper last looked.
    pub beep_wanted: bool,
    /// A non-contact section (or the FPV set) changed since the last SYSTEM_UPDATE.
    pub dirty: bool,
    /// Events produced by the current mutation, published before the lock drops.
    pub out: Vec<Envelope>,
    log_limiter: HashMap<String, Instant>,
    /// `aggregator_contacts_removed_total{kind,reason}`.
    pub removed: std::collections::BTreeMap<(&'static str, Removal), u64>,
    /// `aggregator_system_updates_total`: SYSTEM_UPDATE broadcasts (greetings not counted).
    pub system_updates: u64,
}

/// Why a contact left the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Removal {
    /// The feed said CONTACT_LOST.
    Lost,
    /// Not seen within its TTL.
    Expired,
    /// Pushed out by `contacts.max_per_kind`.
    Evicted,
}

impl Removal {
    pub fn label(self) -> &'static str {
        match self {
            Removal::Lost => "lost",
            Removal::Expired => "expired",
            Removal::Evicted => "evicted",
        }
    }
}

impl State {
    pub fn new(cfg: Arc<AggregatorConfig>, clock: Arc<dyn Clock>) -> Self {
        let t0 = clock.now_ms();
        let mut snap = StatusSnapshot::initial(t0);
        let disabled = || Some("disabled".to_owned());
        if !cfg.remoteid.enabled {
            snap.remote_id.last_error = disabled();
        }
        if !cfg.antsdr.enabled {
            snap.rf.status = RfStatus::Offline;
            snap.rf.last_error = disabled();
            snap.antsdr.last_error = disabled();
        }
        if !cfg.esp32.enabled {
            snap.esp32.last_error = disabled();
        }
        if !cfg.system_controller.enabled {
            for s in [
                &mut snap.system.last_error,
                &mut snap.power.last_error,
                &mut snap.audio.last_error,
            ] {
                *s = disabled();
            }
            snap.gps.last_error = disabled();
        }
        let mono = clock.monotonic();
        Self {
            cfg,
            clock,
            t0_mono: mono,
            snap,
            contacts: ContactStore::default(),
            counters: HashMap::new(),
            last_activity: HashMap::new(),
            health: HashMap::new(),
            replay_data: None,
            replay_last_line: None,
            esp32_link: esp32::LinkState::default(),
            controller_up: false,
            beeped: std::collections::HashSet::new(),
            beep_wanted: false,
            dirty: false,
            out: Vec::new(),
            log_limiter: HashMap::new(),
            removed: Default::default(),
            system_updates: 0,
        }
    }

    pub fn counters(&mut self, feed: Feed) -> &mut FeedCounters {
        self.counters.entry(feed).or_default()
    }

    /// The common front of both feeds: parses a line (receipt time = now), counting
    /// the rejections. Invalid UTF-8 is counted by the tailer (`TailStats`).
    pub fn parse_feed_line(&mut self, feed: Feed, line: &str) -> Result<feedline::FeedLine, feedline::Reject> {
        let r = feedline::parse(line, self.clock.now_ms());
        match r {
            Err(feedline::Reject::Malformed) => self.counters(feed).malformed += 1,
            Err(feedline::Reject::Invalid) => self.counters(feed).invalid += 1,
            Ok(_) => {}
        }
        r
    }

    /// Queues an event for publication at the end of the critical section.
    pub fn emit<T: serde::Serialize + ?Sized>(&mut self, kind: &str, ts: u64, source: Source, data: &T) {
        match Envelope::new(kind.to_owned(), ts, source, data) {
            Ok(e) => self.out.push(e),
            Err(e) => tracing::error!(error = %e, kind, "cannot build envelope"),
        }
    }

    /// LOG_EVENT for a link/feed/watchdog transition, at most one per kind per 10 s.
    pub fn log_transition(&mut self, level: LogLevel, component: &str, code: &str, message: String) {
        let now = self.clock.monotonic();
        let key = format!("{component}:{code}");
        if let Some(prev) = self.log_limiter.get(&key) {
            if now.saturating_duration_since(*prev) < Duration::from_secs(10) {
                return;
            }
        }
        self.log_limiter.insert(key, now);
        match level {
            LogLevel::Error => tracing::error!(component, code, "{message}"),
            LogLevel::Warn => tracing::warn!(component, code, "{message}"),
            LogLevel::Info => tracing::info!(component, code, "{message}"),
        }
        let ev = LogEvent::with(level, component, code, message);
        let ts = self.clock.now_ms();
        self.emit(kind::LOG_EVENT, ts, Source::Aggregator, &ev);
    }

    /// Records contacts that reached high severity; the first time for an id asks for a beep.
    pub fn note_high(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if self.beeped.insert(id) {
                self.beep_wanted = true;
            }
        }
        // Bounded: ids of contacts long gone need not be remembered forever.
        if self.beeped.len() > 4 * self.cfg.contacts.max_per_kind {
            let live: std::collections::HashSet<String> = self
                .contacts
                .rid
                .keys()
                .chain(self.contacts.rf.keys())
                .cloned()
                .collect();
            self.beeped.retain(|id| live.contains(id));
        }
    }

    pub fn replay_active(&self) -> bool {
        self.snap.replay.active
    }

    /// Sets a section value and marks the snapshot dirty when it changed.
    pub fn set_if_changed<T: PartialEq>(dirty: &mut bool, slot: &mut T, v: T) {
        if *slot != v {
            *slot = v;
            *dirty = true;
        }
    }

    /// The full snapshot at this instant (aggregator §9).
    pub fn snapshot(&self) -> StatusSnapshot {
        let mut s = self.snap.clone();
        s.timestamp_ms = self.clock.now_ms();
        s.contacts = self.contacts.sorted();
        s.remote_id.contacts_active = Some(self.contacts.rid.len() as u64);
        s.overall_ok = self.overall_ok();
        s
    }

    /// aggregator §9.2.
    pub fn overall_ok(&self) -> bool {
        let cfg = &self.cfg;
        let bad = |st: Option<Status>| matches!(st, Some(Status::Degraded) | Some(Status::Offline) | None);
        cfg.status.overall_ok_sections.iter().all(|sec| match sec.as_str() {
            "system" if cfg.system_controller.enabled => !bad(self.snap.system.status),
            "power" if cfg.system_controller.enabled => !bad(self.snap.power.status),
            "audio" if cfg.system_controller.enabled => !bad(self.snap.audio.status),
            "rf" if cfg.antsdr.enabled => !matches!(self.snap.rf.status, RfStatus::Degraded | RfStatus::Offline),
            "remote_id" if cfg.remoteid.enabled => !matches!(
                self.snap.remote_id.state,
                RemoteIdHealth::Degraded | RemoteIdHealth::Offline
            ),
            "esp32" if cfg.esp32.enabled => self.snap.esp32.connected == Some(true),
            _ => true,
        })
    }
}

impl ndefender_hub::Outbox for State {
    fn outbox(&mut self) -> &mut Vec<Envelope> {
        &mut self.out
    }
}

/// The shared handle to the state owner (state and hub behind one lock, the shared
/// `ndefender_hub::Owner`) and the SYSTEM_UPDATE coalescer.
#[derive(Clone)]
pub struct Core {
    owner: Arc<Owner<State>>,
    changed: Arc<Notify>,
    /// Woken when a contact first reaches high severity.
    pub beep: Arc<Notify>,
}

impl Core {
    pub fn new(cfg: Arc<AggregatorConfig>, clock: Arc<dyn Clock>) -> Self {
        Self {
            owner: Arc::new(Owner::new(State::new(cfg, clock))),
            changed: Arc::new(Notify::new()),
            beep: Arc::new(Notify::new()),
        }
    }

    /// Attaches the hub (once; the hub needs the core as its greeting source first).
    pub fn attach_hub(&self, hub: Hub) {
        self.owner.attach_hub(hub);
    }

    pub fn hub(&self) -> Option<&Hub> {
        self.owner.hub()
    }

    /// Runs a mutation and publishes what it emitted, in one critical section; then wakes
    /// the SYSTEM_UPDATE coalescer and the beeper if the change asks for them.
    pub fn mutate<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let (changed, beep) = (&self.changed, &self.beep);
        self.owner
            .mutate_then(f, |st| {
                if st.dirty {
                    changed.notify_one();
                }
                if std::mem::take(&mut st.beep_wanted) {
                    beep.notify_one();
                }
            })
            .0
    }

    /// Read-only access (REST reads).
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        self.owner.read(f)
    }

    /// Broadcasts SYSTEM_UPDATE at most once per `update_min_interval_ms`, with a
    /// trailing edge so the latest state is always sent (aggregator §9.3).
    pub async fn run_system_updates(self, shutdown: impl std::future::Future<Output = ()>) {
        let min = Duration::from_millis(self.read(|s| s.cfg.status.update_min_interval_ms));
        let mut last: Option<tokio::time::Instant> = None;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = &mut shutdown => return,
            }
            if let Some(l) = last {
                tokio::select! {
                    _ = tokio::time::sleep_until(l + min) => {}
                    _ = &mut shutdown => return,
                }
            }
            let sent = self.mutate(|st| {
                if !st.dirty {
                    return false;
                }
                st.dirty = false;
                let snap = st.snapshot();
                let ts = snap.timestamp_ms;
                st.emit(kind::SYSTEM_UPDATE, ts, Source::Aggregator, &snap);
                st.system_updates += 1;
                true
            });
            if sent {
                last = Some(tokio::time::Instant::now());
            }
        }
    }

    fn snapshot_greeting(&self, hub: &Hub) -> Greeting {
        self.owner.greeting(hub, |st| {
            let snap = st.snapshot();
            Envelope::new(kind::SYSTEM_UPDATE, snap.timestamp_ms, Source::Aggregator, &snap)
                .into_iter()
                .collect()
        })
    }
}

impl GreetingSource for Core {
    fn greeting(&self, hub: &Hub) -> Greeting {
        self.snapshot_greeting(hub)
    }
    fn resync(&self, hub: &Hub) -> Greeting {
        self.snapshot_greeting(hub)
    }
}
