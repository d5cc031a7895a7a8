//! The daemon's shared state: the latest engine status, the contacts as published, the
//! `/events/last` ring and counters. One mutex orders state and publishing (ARCHITECTURE.md):
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
use ndefender_hub::{Greeting, GreetingSource, Hub};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
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
}

/// Shared between the API, the scan thread's sink, the output thread and the hub.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    hub: OnceLock<Hub>,
    pub started: Instant,
}

impl Shared {
    pub fn new(cfg: ScanConfig, plans: Vec<SweepPlanSummary>) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
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
            }),
            hub: OnceLock::new(),
            started: Instant::now(),
        })
    }

    pub fn attach_hub(&self, hub: Hub) {
        let _ = self.hub.set(hub);
    }

    pub fn hub(&self) -> Option<&Hub> {
        self.hub.get()
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves State consistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock())
    }

    /// Applies a batch (already in the JSONL when it came from the live scan) and publishes it:
    /// contacts, ring, counters and hub in one critical section. `live` = the batch belongs
    /// to the live tracker, whose confirmed contacts form the resync set.
    pub fn publish(&self, envs: &[(RfEvent, Envelope)], stats: Option<Envelope>, live: bool) {
        let mut st = self.lock();
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
            if let Some(hub) = self.hub.get() {
                hub.publish(env.clone());
            }
        }
        if let Some(env) = stats {
            if st.cfg.api.ws_stats {
                if let Some(hub) = self.hub.get() {
                    hub.publish(env);
                }
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
        let _st = self.0.lock();
        Greeting {
            envelopes: Vec::new(),
            watermark: hub.last_seq(),
        }
    }

    fn resync(&self, hub: &Hub) -> Greeting {
        let st = self.0.lock();
        let envelopes = st
            .published
            .values()
            .filter_map(|(ts, data)| {
                rf_envelope(&RfEvent {
                    kind: kind::RF_CONTACT_UPDATE,
                    timestamp_ms: *ts,
                    data: data.clone(),
                })
            })
            .collect();
        Greeting {
            envelopes,
            watermark: hub.last_seq(),
        }
    }
}
