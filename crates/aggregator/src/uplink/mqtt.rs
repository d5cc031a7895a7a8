//! The MQTT uplink (issue 15): the kit's state and events on a broker, under
//! `<prefix>/<kit_id>/`:
//!
//! | topic | payload | retained |
//! |---|---|---|
//! | `availability` | `online` / `offline` (the last will) | yes |
//! | `status` | the snapshot without `contacts`, at most once per `status_interval_ms` | yes |
//! | `contacts_count` | number of live contacts (for Home Assistant) | yes |
//! | `contacts/<id>` | the contact as in `/api/v1/contacts`; empty when it is gone | yes |
//! | `events` | every envelope as emitted on `/api/v1/ws` | no |
//!
//! Contact ids are escaped for topic levels ([`topic_escape`]).
//!
//! Three tasks, so that nothing here can slow the aggregator: the *state* task reads the
//! hub tap (bounded, never blocks the publisher) and, after each batch of events, the
//! contacts those events name from the core (every contact once a second); it keeps the
//! retained state the broker should hold and queues differences in the [`Outbox`]. The
//! *publisher* task hands the outbox to rumqttc while connected. The *connection* task polls rumqttc's event loop, reconnects with
//! back-off, and on every CONNACK asks the state task to queue all retained state again
//! (a restarted broker without persistence has forgotten it).

use super::ha;
use crate::config::AggregatorConfig;
use crate::core::Core;
use bytes::Bytes;
use ndefender_contract::contact::Contact;
use ndefender_contract::events::kind;
use ndefender_hub::Tap;
use ndefender_service::mqtt::topic_escape;
use ndefender_service::Shutdown;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, Packet, QoS};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Messages waiting for the broker. Retained state is keyed by topic (a newer value
/// replaces a queued one in place, so a contact that changed ten times during an outage
/// costs one message) and is never dropped; `events` are dropped oldest first once the
/// total exceeds the capacity.
#[derive(Debug, Default)]
pub struct Outbox {
    order: VecDeque<String>,
    retained: HashMap<String, Bytes>,
    events: VecDeque<Bytes>,
    cap: usize,
    pub dropped_events: u64,
}

impl Outbox {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            ..Default::default()
        }
    }

    pub fn put_retained(&mut self, topic: String, payload: Bytes) {
        if self.retained.insert(topic.clone(), payload).is_none() {
            self.order.push_back(topic);
        }
        self.trim();
    }

    pub fn push_event(&mut self, payload: Bytes) {
        self.events.push_back(payload);
        self.trim();
    }

    fn trim(&mut self) {
        while self.order.len() + self.events.len() > self.cap && self.events.pop_front().is_some() {
            self.dropped_events += 1;
        }
    }

    /// Next message: retained state first (current state matters more than history).
    pub fn pop(&mut self) -> Option<Message> {
        if let Some(topic) = self.order.pop_front() {
            let payload = self.retained.remove(&topic).unwrap_or_default();
            return Some(Message::Retained(topic, payload));
        }
        self.events.pop_front().map(Message::Event)
    }

    pub fn len(&self) -> usize {
        self.order.len() + self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Retained(String, Bytes),
    Event(Bytes),
}

/// Topic names of one kit.
#[derive(Debug, Clone)]
pub struct Topics {
    pub base: String,
}

impl Topics {
    pub fn new(prefix: &str, kit_id: &str) -> Self {
        Self {
            base: format!("{prefix}/{kit_id}"),
        }
    }
    pub fn availability(&self) -> String {
        format!("{}/availability", self.base)
    }
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }
    pub fn contacts_count(&self) -> String {
        format!("{}/contacts_count", self.base)
    }
    pub fn events(&self) -> String {
        format!("{}/events", self.base)
    }
    pub fn contact(&self, id: &str) -> String {
        format!("{}/contacts/{}", self.base, topic_escape(id))
    }
}

/// Counters for logs and tests.
#[derive(Debug, Default)]
pub struct UplinkStats {
    pub published: AtomicU64,
    pub connects: AtomicU64,
}

struct Shared {
    outbox: Mutex<Outbox>,
    wake: Notify,
    connected: AtomicBool,
    reconnected: Notify,
    stats: Arc<UplinkStats>,
}

impl Shared {
    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Starts the uplink: registers the tap now (before the feeds start), returns the tasks.
pub fn start(inputs: &super::Inputs) -> super::Tasks {
    let (cfg, core, hub, shutdown) = (inputs.cfg, inputs.core, inputs.hub, inputs.shutdown);
    let m = &cfg.mqtt;
    let kit_id = m.kit_id();
    let topics = Topics::new(&m.topic_prefix, &kit_id);
    let q = m.qos();
    let will = LastWill::new(topics.availability(), "offline", q, true);
    let opts = m
        .endpoint()
        .options(&format!("ndefender-{kit_id}"), m.keep_alive_s, Some(will))
        .map_err(std::io::Error::other)?;
    // A small request channel: while the broker is away the publisher parks on it and
    // the outbox (bounded, coalescing) holds the rest.
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let mut net = eventloop.network_options();
    net.set_connection_timeout(5);
    eventloop.set_network_options(net);
    tracing::info!(url = %m.url, kit_id = %kit_id, prefix = %m.topic_prefix, "mqtt uplink enabled");

    let shared = Arc::new(Shared {
        outbox: Mutex::new(Outbox::new(m.buffer)),
        wake: Notify::new(),
        connected: AtomicBool::new(false),
        reconnected: Notify::new(),
        stats: Arc::new(UplinkStats::default()),
    });
    // Sized like the buffer: the state task only parses and queues.
    let tap = hub.tap("mqtt", m.buffer.max(1024));
    let state = StateTask {
        core: core.clone(),
        cfg: cfg.clone(),
        topics: topics.clone(),
        ha: m.ha_discovery.then(|| ha::Ha::new(&m.ha_prefix, &kit_id, &topics)),
        desired: BTreeMap::new(),
        owned: HashMap::new(),
        shared: shared.clone(),
        last_status: None,
        status_due: true,
    };
    let max_backoff = Duration::from_secs_f64(m.reconnect_max_s);
    Ok(vec![
        tokio::spawn(state.run(tap, shutdown.clone())),
        tokio::spawn(publisher(
            client.clone(),
            shared.clone(),
            topics.events(),
            q,
            shutdown.clone(),
        )),
        tokio::spawn(connection(
            eventloop,
            client,
            shared,
            topics.availability(),
            q,
            max_backoff,
            shutdown.clone(),
        )),
    ])
}

struct StateTask {
    core: Core,
    cfg: Arc<AggregatorConfig>,
    topics: Topics,
    ha: Option<ha::Ha>,
    /// Every retained topic the broker should hold now, with its payload.
    desired: BTreeMap<String, Bytes>,
    /// The retained topics of each contact (its state, its Home Assistant entities), so that
    /// one contact's event rewrites only its own topics.
    owned: HashMap<String, Vec<String>>,
    shared: Arc<Shared>,
    last_status: Option<tokio::time::Instant>,
    status_due: bool,
}

impl StateTask {
    async fn run(mut self, mut tap: Tap, shutdown: Shutdown) {
        let stop = shutdown.wait();
        tokio::pin!(stop);
        let interval = Duration::from_millis(self.cfg.mqtt.status_interval_ms);
        // Safety net: the contact list is re-read every second even without events
        // (e.g. FPV changes arrive only as SYSTEM_UPDATE, which is throttled).
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.sync();
        loop {
            let status_at = match (self.status_due, self.last_status) {
                (true, Some(l)) => Some(l + interval),
                (true, None) => Some(tokio::time::Instant::now()),
                _ => None,
            };
            tokio::select! {
                ev = tap.recv() => {
                    let Some(ev) = ev else { return };
                    let mut changed = Changed::default();
                    self.on_event(&ev, &mut changed);
                    while let Some(ev) = tap.try_recv() {
                        self.on_event(&ev, &mut changed);
                    }
                    if changed.all {
                        self.sync();
                    } else if !changed.ids.is_empty() {
                        self.sync_contacts(&changed.ids);
                    }
                }
                _ = tick.tick() => self.sync(),
                _ = self.shared.reconnected.notified() => {
                    self.status_due = true;
                    self.sync();
                    let mut ob = self.shared.outbox();
                    for (t, p) in &self.desired {
                        ob.put_retained(t.clone(), p.clone());
                    }
                    drop(ob);
                    self.shared.wake.notify_one();
                }
                _ = sleep_until_opt(status_at) => self.publish_status(),
                _ = &mut stop => return,
            }
        }
    }

    /// Queues the event and notes what it may have changed: one contact (its id), or the
    /// whole list (a system update may move the kit, which re-ranks every contact).
    fn on_event(&mut self, ev: &ndefender_hub::TapEvent, changed: &mut Changed) {
        self.shared
            .outbox()
            .push_event(Bytes::copy_from_slice(ev.json().as_bytes()));
        self.shared.wake.notify_one();
        let k = ev.kind();
        if k == kind::SYSTEM_UPDATE {
            self.status_due = true;
            changed.all = true;
        } else if k.contains("CONTACT") {
            match serde_json::from_str::<ContactEventId>(ev.json()) {
                Ok(e) => {
                    changed.ids.insert(e.data.id);
                }
                Err(_) => changed.all = true,
            }
        }
    }

    fn publish_status(&mut self) {
        self.status_due = false;
        self.last_status = Some(tokio::time::Instant::now());
        let snap = self.core.read(|st| {
            let mut s = st.snapshot();
            s.contacts = Vec::new();
            s
        });
        let mut v = match serde_json::to_value(&snap) {
            Ok(v) => v,
            Err(_) => return,
        };
        if let Some(o) = v.as_object_mut() {
            o.remove("contacts");
        }
        if let Ok(b) = serde_json::to_vec(&v) {
            self.set(self.topics.status(), Bytes::from(b));
            self.shared.wake.notify_one();
        }
    }

    /// Makes `topic` hold `payload` on the broker; true when that queued a message.
    fn set(&mut self, topic: String, payload: Bytes) -> bool {
        if self.desired.get(&topic) == Some(&payload) {
            return false;
        }
        self.desired.insert(topic.clone(), payload.clone());
        self.shared.outbox().put_retained(topic, payload);
        true
    }

    /// Empties `topic` on the broker (an empty retained message deletes it); true when that
    /// queued a message.
    fn clear(&mut self, topic: String) -> bool {
        if self.desired.remove(&topic).is_none() {
            return false;
        }
        self.shared.outbox().put_retained(topic, Bytes::new());
        true
    }

    /// The retained topics of one contact: its state and its Home Assistant entities.
    fn contact_topics(&self, c: &Contact, out: &mut BTreeMap<String, Bytes>) {
        if let Ok(b) = serde_json::to_vec(c) {
            out.insert(self.topics.contact(c.id()), Bytes::from(b));
        }
        if let Some(ha) = &self.ha {
            ha.contact_entities(c, out);
        }
    }

    /// Rewrites the topics of the contacts in `ids` only (the ones events named): the
    /// cost of an event no longer grows with the number of contacts. Anything an event
    /// does not name (an eviction, a re-rank) is caught by the full [`Self::sync`]
    /// every second.
    fn sync_contacts(&mut self, ids: &BTreeSet<String>) {
        let (count, now) = self.core.read(|st| {
            let now: Vec<(&String, Option<Contact>)> = ids.iter().map(|id| (id, st.contacts.get(id))).collect();
            (st.contacts.len(), now)
        });
        let mut changed = false;
        for (id, c) in now {
            let mut mine = BTreeMap::new();
            if let Some(c) = &c {
                self.contact_topics(c, &mut mine);
            }
            for t in self.owned.remove(id).unwrap_or_default() {
                if !mine.contains_key(&t) {
                    changed |= self.clear(t);
                }
            }
            if c.is_some() {
                self.owned.insert(id.clone(), mine.keys().cloned().collect());
            }
            for (t, p) in mine {
                changed |= self.set(t, p);
            }
        }
        changed |= self.set(self.topics.contacts_count(), Bytes::from(count.to_string()));
        if changed {
            self.shared.wake.notify_one();
        }
    }

    /// Recomputes every retained topic (contacts, Home Assistant entities) from the core and
    /// queues the difference: changed ones, and an empty retained message for each gone.
    fn sync(&mut self) {
        let contacts = self.core.read(|st| st.contacts.sorted());
        let mut want: BTreeMap<String, Bytes> = BTreeMap::new();
        want.insert(self.topics.availability(), Bytes::from_static(b"online"));
        want.insert(self.topics.contacts_count(), Bytes::from(contacts.len().to_string()));
        if let Some(s) = self.desired.get(&self.topics.status()) {
            want.insert(self.topics.status(), s.clone());
        }
        if let Some(ha) = &self.ha {
            ha.kit_entities(&mut want);
        }
        let mut owned = HashMap::with_capacity(contacts.len());
        for c in &contacts {
            let mut mine = BTreeMap::new();
            self.contact_topics(c, &mut mine);
            owned.insert(c.id().to_owned(), mine.keys().cloned().collect());
            want.extend(mine);
        }
        self.owned = owned;
        let mut changed = false;
        // Removals first, entity configs before their states (BTreeMap order puts
        // `homeassistant/...` config topics before `ndefender/...` state topics only by
        // accident of the names, so removals of configs go out before new states anyway).
        let gone: Vec<String> = self
            .desired
            .keys()
            .filter(|t| !want.contains_key(*t))
            .cloned()
            .collect();
        for t in gone {
            changed |= self.clear(t);
        }
        for (t, p) in want {
            changed |= self.set(t, p);
        }
        if changed {
            self.shared.wake.notify_one();
        }
    }
}

/// What a batch of tap events changed.
#[derive(Default)]
struct Changed {
    all: bool,
    ids: BTreeSet<String>,
}

/// The id of a contact event (`data.id`), read without building the whole document.
#[derive(serde::Deserialize)]
struct ContactEventId {
    data: ContactEventData,
}

#[derive(serde::Deserialize)]
struct ContactEventData {
    id: String,
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn publisher(client: AsyncClient, shared: Arc<Shared>, events_topic: String, q: QoS, shutdown: Shutdown) {
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        let msg = loop {
            if shared.connected.load(Relaxed) {
                if let Some(m) = shared.outbox().pop() {
                    break m;
                }
            }
            tokio::select! {
                _ = shared.wake.notified() => {}
                // Re-check the connection now and then (CONNACK also wakes us).
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = &mut stop => return,
            }
        };
        let (topic, payload, retain) = match msg {
            Message::Retained(t, p) => (t, p, true),
            Message::Event(p) => (events_topic.clone(), p, false),
        };
        // Parks while rumqttc's request channel is full (broker away); the outbox keeps
        // filling meanwhile, bounded.
        tokio::select! {
            r = client.publish_bytes(topic, q, retain, payload) => {
                if r.is_err() {
                    return;
                }
                shared.stats.published.fetch_add(1, Relaxed);
            }
            _ = &mut stop => return,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    mut eventloop: EventLoop,
    client: AsyncClient,
    shared: Arc<Shared>,
    availability: String,
    q: QoS,
    max_backoff: Duration,
    shutdown: Shutdown,
) {
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let min_backoff = Duration::from_millis(500);
    let mut backoff = min_backoff;
    loop {
        tokio::select! {
            r = eventloop.poll() => match r {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!("mqtt uplink connected");
                    shared.stats.connects.fetch_add(1, Relaxed);
                    backoff = min_backoff;
                    shared.connected.store(true, Relaxed);
                    shared.reconnected.notify_one();
                    shared.wake.notify_one();
                }
                Ok(_) => {}
                Err(e) => {
                    if shared.connected.swap(false, Relaxed) {
                        tracing::warn!(error = %e, "mqtt uplink lost the broker; reconnecting");
                    } else {
                        tracing::debug!(error = %e, ?backoff, "mqtt uplink cannot reach the broker");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = &mut stop => break,
                    }
                    backoff = (backoff * 2).min(max_backoff);
                }
            },
            _ = &mut stop => break,
        }
    }
    // Graceful stop: say `offline` ourselves (the will fires only on a broken link) and
    // disconnect, within a second.
    if shared.connected.load(Relaxed) {
        let _ = client.try_publish(availability, q, true, "offline");
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_task(core: &Core, cfg: Arc<AggregatorConfig>) -> StateTask {
        let topics = Topics::new("ndefender", "k");
        StateTask {
            core: core.clone(),
            ha: Some(ha::Ha::new("homeassistant", "k", &topics)),
            topics,
            cfg,
            desired: BTreeMap::new(),
            owned: HashMap::new(),
            shared: Arc::new(Shared {
                outbox: Mutex::new(Outbox::new(10_000)),
                wake: Notify::new(),
                connected: AtomicBool::new(false),
                reconnected: Notify::new(),
                stats: Arc::default(),
            }),
            last_status: None,
            status_due: false,
        }
    }

    fn rid(core: &Core, kind: &str, id: &str, lat: f64, operator: &str) {
        let line = serde_json::json!({"type": kind, "timestamp_ms": 1_000, "source": "remoteid",
            "data": {"id": id, "lat": lat, "lon": 13.0, "operator_lat": 52.0, "operator_lon": 13.0,
                     "operator_location_type": operator}});
        core.mutate(|st| crate::core::remoteid::apply_line(st, &line.to_string()));
    }

    fn drain(t: &StateTask) -> BTreeMap<String, Bytes> {
        let mut out = BTreeMap::new();
        while let Some(m) = t.shared.outbox().pop() {
            if let Message::Retained(topic, p) = m {
                out.insert(topic, p);
            }
        }
        out
    }

    #[test]
    fn one_contacts_event_rewrites_only_its_topics_and_matches_a_full_sync() {
        let cfg = Arc::new(AggregatorConfig::default());
        let core = Core::new(cfg.clone(), Arc::new(ndefender_contract::time::ManualClock::new(1_000)));
        let mut t = state_task(&core, cfg);
        rid(&core, "CONTACT_NEW", "rid:A", 52.1, "live_gnss");
        rid(&core, "CONTACT_NEW", "rid:B", 52.2, "takeoff");
        t.sync();
        let first = drain(&t);
        assert!(first.contains_key("ndefender/k/contacts/rid:A") && first.contains_key("ndefender/k/contacts/rid:B"));
        assert_eq!(first.get("ndefender/k/contacts_count"), Some(&Bytes::from_static(b"2")));

        // B moves: only B's state and its tracker attributes go out.
        rid(&core, "CONTACT_UPDATE", "rid:B", 52.3, "takeoff");
        t.sync_contacts(&["rid:B".to_owned()].into());
        let moved = drain(&t);
        assert!(moved.contains_key("ndefender/k/contacts/rid:B"), "{:?}", moved.keys());
        // (Home Assistant object ids escape the `:`: `rid:A` → `rid_rid_3aA`.)
        let of_a = |k: &&String| k.contains("rid:A") || k.contains("rid_3aA");
        assert!(!moved.keys().any(|k| of_a(&k)), "{:?}", moved.keys());

        // A is gone: its state and every Home Assistant entity of it are cleared.
        core.mutate(|st| st.contacts.rid.remove("rid:A"));
        t.sync_contacts(&["rid:A".to_owned()].into());
        let gone = drain(&t);
        let cleared: Vec<&String> = gone.iter().filter(|(_, p)| p.is_empty()).map(|(k, _)| k).collect();
        let topics_of_a: Vec<&String> = first.keys().filter(of_a).collect();
        assert_eq!(
            topics_of_a.len(),
            5,
            "state, two trackers and their attributes: {topics_of_a:?}"
        );
        assert_eq!(cleared, topics_of_a, "every topic of A cleared, nothing else");
        assert_eq!(gone.get("ndefender/k/contacts_count"), Some(&Bytes::from_static(b"1")));

        // What the events built is what a full recomputation builds: nothing left to send.
        let before = t.desired.clone();
        t.sync();
        assert_eq!(t.desired, before);
        assert!(drain(&t).is_empty());
    }

    #[test]
    fn outbox_drops_oldest_events_never_state() {
        let mut o = Outbox::new(4);
        o.put_retained("a".into(), Bytes::from_static(b"1"));
        for i in 0..10u8 {
            o.push_event(Bytes::from(vec![i]));
        }
        o.put_retained("b".into(), Bytes::from_static(b"1"));
        o.put_retained("a".into(), Bytes::from_static(b"2"));
        assert_eq!(o.len(), 4);
        assert_eq!(o.dropped_events, 8);
        assert_eq!(o.pop(), Some(Message::Retained("a".into(), Bytes::from_static(b"2"))));
        assert_eq!(o.pop(), Some(Message::Retained("b".into(), Bytes::from_static(b"1"))));
        assert_eq!(o.pop(), Some(Message::Event(Bytes::from(vec![8]))));
        assert_eq!(o.pop(), Some(Message::Event(Bytes::from(vec![9]))));
        assert_eq!(o.pop(), None);
        // State beyond the capacity is kept (every event gone first).
        let mut o = Outbox::new(2);
        for t in ["x", "y", "z"] {
            o.put_retained(t.into(), Bytes::new());
        }
        assert_eq!(o.len(), 3);
    }
}
