//! The daemon's shared state: the latest engine status, the contacts as published, the
//! `/events/last` ring and counters, behind the shared state owner (`ndefender_hub::Owner`):
//! a batch is applied and handed to the hub in one critical section, and the hub's resync set
//! is built under the same lock with `hub.last_seq()` as watermark.

use crate::config::ScanConfig;
use crate::engine::EngineStatus;
use crate::output::WireRf;
use crate::tracker::RfEvent;
use ndefender_contract::contact::RfContactData;
use ndefender_contract::devices::SweepPlanSummary;
use ndefender_contract::events::{kind, RfScanStats};
use ndefender_contract::{Envelope, Source};
use ndefender_hub::{Greeting, GreetingSource, Hub, Outbox, Owner};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, MutexGuard};
use std::time::Instant;

#[derive(Debug)]
pub struct State {
    pub cfg: ScanConfig,
    pub status: Option<EngineStatus>,
    pub plans: Vec<SweepPlanSummary>,
    /// Confirmed contacts as last published: the resync set.
    pub published: BTreeMap<String, (u64, RfContactData)>,
    pub ring: VecDeque<Envelope>,
    pub last_event_ms: Option<u64>,
    pub jsonl_failed: bool,
    pub jsonl_write_errors: u64,
    pub dropped_batches: u64,
    pub events_by_type: BTreeMap<&'static str, u64>,
    pub replay_active: bool,
    pub scan_thread_alive: bool,
    /// Events of the current change, handed to the hub before the lock drops.
    out: Vec<Envelope>,
}

impl Outbox for State {
    fn outbox(&mut self) -> &mut Vec<Envelope> {
        &mut self.out
    }
}

/// Shared between the API, the scan thread's sink, the output thread and the hub.
#[derive(Debug)]
pub struct Shared {
    owner: Owner<State>,
    pub started: Instant,
}

impl Shared {
    pub fn new(cfg: ScanConfig, plans: Vec<SweepPlanSummary>) -> Arc<Shared> {
        Arc::new(Shared {
            owner: Owner::new(State {
                cfg,
                status: None,
                plans,
                published: BTreeMap::new(),
                ring: VecDeque::new(),
                last_event_ms: None,
                jsonl_failed: false,
                jsonl_write_errors: 0,
                dropped_batches: 0,
                events_by_type: BTreeMap::new(),
                replay_active: false,
                scan_thread_alive: false,
                out: Vec::new(),
            }),
            started: Instant::now(),
        })
    }

    pub fn attach_hub(&self, hub: Hub) {
        self.owner.attach_hub(hub);
    }

    pub fn hub(&self) -> Option<&Hub> {
        self.owner.hub()
    }

    /// The state, locked, for changes that emit nothing.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.owner.lock()
    }

    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        self.owner.read(f)
    }

    /// Applies a batch (already in the JSONL when it came from the live scan) and publishes it:
    /// contacts, ring, counters and hub in one critical section. `live` = the batch belongs
    /// to the live tracker, whose confirmed contacts form the resync set.
    pub fn publish(&self, envs: &[(RfEvent, Envelope)], stats: Option<Envelope>, live: bool) {
        self.owner.mutate(|st| State::apply(st, envs, stats, live));
    }
}

impl State {
    /// The batch's effect on the state; its envelopes go to the outbox.
    fn apply(st: &mut State, envs: &[(RfEvent, Envelope)], stats: Option<Envelope>, live: bool) {
        let cap = st.cfg.api.event_buffer.max(1);
        for (ev, env) in envs {
            if live {
                if ev.kind == kind::RF_CONTACT_LOST {
                    st.published.remove(&ev.data.id);
                } else {
                    st.published
                        .insert(ev.data.id.clone(), (ev.timestamp_ms, ev.data.clone()));
                }
            }
            st.ring.push_back(env.clone());
            while st.ring.len() > cap {
                st.ring.pop_front();
            }
            st.last_event_ms = Some(ev.timestamp_ms);
            *st.events_by_type.entry(ev.kind).or_insert(0) += 1;
            st.out.push(env.clone());
        }
        if let Some(env) = stats {
            if st.cfg.api.ws_stats {
                st.out.push(env);
            }
        }
    }
}

/// The envelope of an RF_CONTACT_* event (integers where §9 says so).
pub fn rf_envelope(ev: &RfEvent) -> Option<Envelope> {
    match Envelope::new(ev.kind, ev.timestamp_ms, Source::Antsdr, &WireRf(&ev.data)) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::error!(error = %e, "event not serialisable");
            None
        }
    }
}

pub fn stats_envelope(s: &RfScanStats) -> Option<Envelope> {
    Envelope::new(kind::RF_SCAN_STATS, s.timestamp_ms, Source::Antsdr, s).ok()
}

/// The scanner's greeting is empty (clients read `/events/last`); its resync set is one
/// RF_CONTACT_UPDATE per confirmed contact (PROTOCOL.md §7.2).
#[derive(Debug, Clone)]
pub struct Greeter(pub Arc<Shared>);

impl GreetingSource for Greeter {
    fn greeting(&self, hub: &Hub) -> Greeting {
        self.0.owner.greeting(hub, |_| Vec::new())
    }

    fn resync(&self, hub: &Hub) -> Greeting {
        self.0.owner.greeting(hub, |st| {
            st.published
                .values()
                .filter_map(|(ts, data)| {
                    rf_envelope(&RfEvent {
                        kind: kind::RF_CONTACT_UPDATE,
                        timestamp_ms: *ts,
                        data: data.clone(),
                    })
                })
                .collect()
        })
    }
}
