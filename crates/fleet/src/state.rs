//! The fleet's state owner: every kit (online, position, status age, its contacts) and
//! one merged track per contact id across kits, with `seen_by` (contract v1.1).
//!
//! A track is the freshest kit's view of the contact (largest `last_seen_ts`), with
//! `last_seen_ts` the newest of all kits and `seen_by` one entry per kit that holds the
//! contact (sorted by kit id). Events carry the aggregator's envelopes: CONTACT_NEW /
//! UPDATE / LOST for RemoteID, RF_CONTACT_* for RF; FPV tracks, like on a kit, show in
//! SYSTEM_UPDATE. As in the aggregator, a change and its events are published under
//! one lock, so greetings never show a gap or a duplicate.

use ndefender_contract::contact::{Contact, SeenBy};
use ndefender_contract::events::kind;
use ndefender_contract::snapshot::StatusSnapshot;
use ndefender_contract::time::Clock;
use ndefender_contract::{Envelope, Source};
use ndefender_hub::{Greeting, GreetingSource, Hub};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// One kit as the fleet knows it (`GET /api/v1/kits`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct KitView {
    pub kit_id: String,
    pub online: bool,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub overall_ok: Option<bool>,
    /// Epoch ms when the fleet last received the kit's status (absent: never).
    pub status_received_ms: Option<u64>,
    /// Seconds since then.
    pub status_age_s: Option<f64>,
    pub contacts: usize,
}

#[derive(Debug, Default)]
struct Kit {
    online: bool,
    lat: Option<f64>,
    lon: Option<f64>,
    overall_ok: Option<bool>,
    status_rx_ms: Option<u64>,
    /// Contact id → (the kit's contact, when the fleet received it, our clock).
    contacts: HashMap<String, (Contact, u64)>,
}

pub struct State {
    clock: Arc<dyn Clock>,
    kits: BTreeMap<String, Kit>,
    tracks: HashMap<String, Contact>,
    out: Vec<Envelope>,
    /// The snapshot (kits or FPV tracks) changed since the last SYSTEM_UPDATE.
    pub dirty: bool,
    /// Kit messages that could not be parsed (logged once per kit and topic kind).
    pub rejected: u64,
}

fn seen_by_of(kit_id: &str, c: &Contact) -> SeenBy {
    SeenBy {
        kit_id: kit_id.to_owned(),
        last_seen_ts: c.last_seen_ts(),
        rssi_dbm: match c {
            Contact::RemoteId(r) => r.fields.rssi_dbm,
            _ => None,
        },
        distance_m: None,
    }
}

fn with_seen_by(mut c: Contact, seen: Vec<SeenBy>, last_seen_ts: u64) -> Contact {
    match &mut c {
        Contact::RemoteId(r) => {
            r.last_seen_ts = last_seen_ts;
            r.fields.seen_by = Some(seen);
        }
        Contact::Rf(r) => {
            r.last_seen_ts = last_seen_ts;
            r.seen_by = Some(seen);
        }
        Contact::Fpv(f) => {
            f.last_seen_ts = last_seen_ts;
            f.seen_by = Some(seen);
        }
    }
    c
}

impl State {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            kits: BTreeMap::new(),
            tracks: HashMap::new(),
            out: Vec::new(),
            dirty: true,
            rejected: 0,
        }
    }

    /// Sources as a kit's aggregator sends them: RemoteID and RF events keep their feed's.
    fn emit<T: Serialize + ?Sized>(&mut self, k: &'static str, data: &T) {
        let source = if k.starts_with("RF_") {
            Source::Antsdr
        } else if k.starts_with("CONTACT_") {
            Source::Remoteid
        } else {
            Source::Aggregator
        };
        match Envelope::new(k, self.clock.now_ms(), source, data) {
            Ok(e) => self.out.push(e),
            Err(e) => tracing::warn!(error = %e, kind = k, "cannot build an envelope"),
        }
    }

    pub fn availability(&mut self, kit_id: &str, payload: &[u8]) {
        let online = match payload {
            b"online" => true,
            b"offline" | b"" => false,
            _ => {
                self.rejected += 1;
                return;
            }
        };
        let kit = self.kits.entry(kit_id.to_owned()).or_default();
        if kit.online != online {
            kit.online = online;
            self.dirty = true;
            tracing::info!(kit_id, online, "kit availability");
        }
        // A kit that is gone cannot vouch for its contacts any more.
        if !online {
            let ids: Vec<String> = kit.contacts.drain().map(|(id, _)| id).collect();
            for id in ids {
                self.recompute(&id);
            }
        }
    }

    pub fn status(&mut self, kit_id: &str, payload: &[u8]) {
        let kit = self.kits.entry(kit_id.to_owned()).or_default();
        if payload.is_empty() {
            return;
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else {
            self.rejected += 1;
            return;
        };
        kit.lat = v.pointer("/gps/latitude").and_then(|x| x.as_f64());
        kit.lon = v.pointer("/gps/longitude").and_then(|x| x.as_f64());
        kit.overall_ok = v.get("overall_ok").and_then(|x| x.as_bool());
        kit.status_rx_ms = Some(self.clock.now_ms());
    }

    /// `contacts/<id>` of a kit: the contact's JSON, or empty when it is gone.
    pub fn contact(&mut self, kit_id: &str, id: &str, payload: &[u8]) {
        let now = self.clock.now_ms();
        let kit = self.kits.entry(kit_id.to_owned()).or_default();
        if payload.is_empty() {
            if kit.contacts.remove(id).is_some() {
                self.recompute(id);
            }
            return;
        }
        let c = match serde_json::from_slice::<Contact>(payload) {
            Ok(c) if c.id() == id => c,
            _ => {
                self.rejected += 1;
                return;
            }
        };
        kit.contacts.insert(id.to_owned(), (c, now));
        self.recompute(id);
    }

    /// Drops kits' contacts not refreshed within `ttl_ms`.
    pub fn expire(&mut self, ttl_ms: u64) {
        let now = self.clock.now_ms();
        let mut gone = Vec::new();
        for kit in self.kits.values_mut() {
            kit.contacts.retain(|id, (_, rx)| {
                let keep = now.saturating_sub(*rx) <= ttl_ms;
                if !keep {
                    gone.push(id.clone());
                }
                keep
            });
        }
        for id in gone {
            self.recompute(&id);
        }
    }

    fn recompute(&mut self, id: &str) {
        let mut best: Option<&Contact> = None;
        let mut seen = Vec::new();
        for (kit_id, kit) in &self.kits {
            if let Some((c, _)) = kit.contacts.get(id) {
                seen.push(seen_by_of(kit_id, c));
                if best.is_none_or(|b| c.last_seen_ts() > b.last_seen_ts()) {
                    best = Some(c);
                }
            }
        }
        let Some(best) = best.cloned() else {
            if let Some(old) = self.tracks.remove(id) {
                self.lost(&old);
            }
            return;
        };
        let newest = seen.iter().map(|s| s.last_seen_ts).max().unwrap_or(0);
        let track = with_seen_by(best, seen, newest);
        let prev = self.tracks.insert(id.to_owned(), track.clone());
        if prev.as_ref() == Some(&track) {
            return;
        }
        if let Some(p) = &prev {
            if p.kind() != track.kind() {
                self.lost(p);
            }
        }
        let is_new = prev.as_ref().is_none_or(|p| p.kind() != track.kind());
        match &track {
            Contact::RemoteId(r) => {
                let k = if is_new {
                    kind::CONTACT_NEW
                } else {
                    kind::CONTACT_UPDATE
                };
                self.emit(k, &r.event_data());
            }
            Contact::Rf(r) => {
                let k = if is_new {
                    kind::RF_CONTACT_NEW
                } else {
                    kind::RF_CONTACT_UPDATE
                };
                self.emit(k, &r.data);
            }
            Contact::Fpv(_) => self.dirty = true,
        }
    }

    fn lost(&mut self, c: &Contact) {
        match c {
            Contact::RemoteId(r) => self.emit(kind::CONTACT_LOST, &r.lost_data()),
            Contact::Rf(r) => self.emit(kind::RF_CONTACT_LOST, &r.data),
            Contact::Fpv(_) => self.dirty = true,
        }
    }

    /// Tracks, newest first.
    pub fn tracks(&self) -> Vec<Contact> {
        let mut v: Vec<Contact> = self.tracks.values().cloned().collect();
        v.sort_by(|a, b| b.last_seen_ts().cmp(&a.last_seen_ts()).then_with(|| a.id().cmp(b.id())));
        v
    }

    pub fn kits(&self) -> Vec<KitView> {
        let now = self.clock.now_ms();
        self.kits
            .iter()
            .map(|(id, k)| KitView {
                kit_id: id.clone(),
                online: k.online,
                lat: k.lat,
                lon: k.lon,
                overall_ok: k.overall_ok,
                status_received_ms: k.status_rx_ms,
                status_age_s: k.status_rx_ms.map(|t| now.saturating_sub(t) as f64 / 1000.0),
                contacts: k.contacts.len(),
            })
            .collect()
    }

    /// The fleet's snapshot: the initial sections (the fleet has no hardware of its own),
    /// the merged tracks, `overall_ok` when every known kit is online and ok.
    pub fn snapshot(&self) -> StatusSnapshot {
        let now = self.clock.now_ms();
        let mut s = StatusSnapshot::initial(now);
        s.timestamp_ms = now;
        s.contacts = self.tracks();
        s.overall_ok = !self.kits.is_empty() && self.kits.values().all(|k| k.online && k.overall_ok != Some(false));
        s
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

/// The shared handle: state + hub, changes published under the state lock.
#[derive(Clone)]
pub struct Fleet {
    state: Arc<Mutex<State>>,
    hub: Arc<OnceLock<Hub>>,
}

impl Fleet {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::new(clock))),
            hub: Arc::new(OnceLock::new()),
        }
    }

    pub fn attach_hub(&self, hub: Hub) {
        let _ = self.hub.set(hub);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn mutate<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.lock();
        let r = f(&mut st);
        let out = std::mem::take(&mut st.out);
        if let Some(hub) = self.hub.get() {
            for e in out {
                hub.publish(e);
            }
        }
        r
    }

    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock())
    }

    /// SYSTEM_UPDATE when the snapshot changed, at most once per `min`.
    pub fn system_update_if_dirty(&self) {
        self.mutate(|st| {
            if std::mem::take(&mut st.dirty) {
                let snap = st.snapshot();
                st.emit(kind::SYSTEM_UPDATE, &snap);
            }
        });
    }

    fn greeting_now(&self, hub: &Hub) -> Greeting {
        let st = self.lock();
        let watermark = hub.last_seq();
        let snap = st.snapshot();
        Greeting {
            envelopes: Envelope::new(kind::SYSTEM_UPDATE, snap.timestamp_ms, Source::Aggregator, &snap)
                .into_iter()
                .collect(),
            watermark,
        }
    }
}

impl GreetingSource for Fleet {
    fn greeting(&self, hub: &Hub) -> Greeting {
        self.greeting_now(hub)
    }
    fn resync(&self, hub: &Hub) -> Greeting {
        self.greeting_now(hub)
    }
}
