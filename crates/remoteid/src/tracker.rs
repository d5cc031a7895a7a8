//! Contacts from observations, per ../shared/spec/remoteid-jsonl.md §2: ids, NEW at the 2nd
//! accepted frame, UPDATE at ≥ 1 s or at once on a new position/operator id, sticky fields,
//! LOST after 15 s without frames (strictly), TELEMETRY_UPDATE at most once a second.
//!
//! Pure: time comes in with each call (frame time for frames, the caller's clock for expiry),
//! so live capture, replay and tests drive it alike.

use crate::decode::{mac_text, Observation};
use crate::odid::HeightRef;
use ndefender_contract::contact::{OperatorLocationType, RemoteIdContactEvent, RemoteIdContactLost, RemoteIdFields};
use ndefender_contract::enums::{RemoteIdHealth, RemoteIdMode};
use ndefender_contract::envelope::Envelope;
use ndefender_contract::events::{ReplayStateEvent, TelemetryUpdate};
use ndefender_contract::Source;
use std::collections::HashMap;

pub const LOST_AFTER_MS: u64 = 15_000;
pub const UPDATE_EVERY_MS: u64 = 1_000;
pub const TELEMETRY_EVERY_MS: u64 = 1_000;
pub const OK_WITHIN_MS: u64 = 5_000;
/// Bounded state: at most this many contacts; the oldest is expired (LOST) to make room.
pub const MAX_CONTACTS: usize = 4096;

#[derive(Debug, Clone)]
pub struct Contact {
    pub id: String,
    pub last_seen_ts: u64,
    pub frames: u64,
    pub announced: bool,
    last_event_ts: Option<u64>,
    pub fields: RemoteIdFields,
}

impl Contact {
    pub fn event_data(&self) -> RemoteIdContactEvent {
        RemoteIdContactEvent::new(&self.id, self.last_seen_ts, self.fields.clone())
    }
}

#[derive(Debug)]
pub struct Tracker {
    mode: RemoteIdMode,
    contacts: HashMap<String, Contact>,
    /// Transmitter address → contact id, so frames without a Basic ID (a BT4 advert carries one
    /// message) join the aircraft their address already named.
    by_mac: HashMap<[u8; 6], String>,
    last_frame_ts: Option<u64>,
    last_telemetry_ts: Option<u64>,
    /// Frames that repeated the previous frame's counter for the same transmitter.
    pub dedupe_hits: u64,
    last_counter: HashMap<[u8; 6], u8>,
}

fn env<T: serde::Serialize>(kind: &'static str, ts: u64, data: &T) -> Option<Envelope> {
    Envelope::new(kind, ts, Source::Remoteid, data).ok()
}

impl Tracker {
    pub fn new(mode: RemoteIdMode) -> Self {
        Self {
            mode,
            contacts: HashMap::new(),
            by_mac: HashMap::new(),
            last_frame_ts: None,
            last_telemetry_ts: None,
            dedupe_hits: 0,
            last_counter: HashMap::new(),
        }
    }

    pub fn set_mode(&mut self, mode: RemoteIdMode) {
        self.mode = mode;
        self.last_telemetry_ts = None;
    }

    pub fn mode(&self) -> RemoteIdMode {
        self.mode
    }

    pub fn active(&self) -> usize {
        self.contacts.len()
    }

    pub fn last_frame_ts(&self) -> Option<u64> {
        self.last_frame_ts
    }

    /// Contacts that reached NEW, sorted by id.
    pub fn contacts(&self) -> Vec<&Contact> {
        let mut v: Vec<&Contact> = self.contacts.values().filter(|c| c.announced).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    fn contact_id(&self, o: &Observation) -> String {
        if let Some(id) = o.uas_id {
            return format!("rid:{}", id.to_text());
        }
        if let Some(id) = o.mac.and_then(|m| self.by_mac.get(&m)) {
            return id.clone();
        }
        if let Some(m) = o.mac {
            return format!("rid:mac:{}", mac_text(&m));
        }
        if let Some(op) = o.operator_id {
            return format!("rid:op:{op}");
        }
        "rid:anon".into()
    }

    /// Applies one accepted frame (time = its capture time); returns the lines it causes.
    pub fn frame(&mut self, o: &Observation, out: &mut Vec<Envelope>) {
        let ts = o.ts_ms;
        if let Some(m) = o.mac {
            if self.last_counter.insert(m, o.counter) == Some(o.counter) {
                self.dedupe_hits += 1;
            }
        }
        let id = self.contact_id(o);
        if let Some(m) = o.mac {
            if o.uas_id.is_some() && self.by_mac.get(&m) != Some(&id) {
                // Frames from this address before the Basic ID arrived formed an address-named
                // contact: it is the same aircraft, so it goes (LOST) and the named one goes on.
                let old = format!("rid:mac:{}", mac_text(&m));
                if let Some(c) = self.contacts.remove(&old) {
                    out.extend(lost_env(&c, ts));
                }
                if self.by_mac.len() < MAX_CONTACTS * 2 {
                    self.by_mac.insert(m, id.clone());
                }
            }
        }
        if !self.contacts.contains_key(&id) && self.contacts.len() >= MAX_CONTACTS {
            self.evict_oldest(ts, out);
        }
        let c = self.contacts.entry(id.clone()).or_insert_with(|| Contact {
            id,
            last_seen_ts: ts,
            frames: 0,
            announced: false,
            last_event_ts: None,
            fields: RemoteIdFields::default(),
        });
        let before = (c.fields.lat, c.fields.lon, c.fields.operator_id.clone());
        merge(&mut c.fields, o);
        c.frames += 1;
        c.last_seen_ts = c.last_seen_ts.max(ts);
        let changed = before != (c.fields.lat, c.fields.lon, c.fields.operator_id.clone());
        if c.frames >= 2 && !c.announced {
            c.announced = true;
            c.last_event_ts = Some(ts);
            out.extend(env("CONTACT_NEW", ts, &c.event_data()));
        } else if c.announced {
            let due = c.last_event_ts.is_none_or(|t| ts.saturating_sub(t) >= UPDATE_EVERY_MS);
            if due || changed {
                c.last_event_ts = Some(ts);
                out.extend(env("CONTACT_UPDATE", ts, &c.event_data()));
            }
        }
        self.last_frame_ts = Some(self.last_frame_ts.map_or(ts, |t| t.max(ts)));
        self.expire(ts, out);
        let telemetry_due = self
            .last_telemetry_ts
            .is_none_or(|t| ts.saturating_sub(t) >= TELEMETRY_EVERY_MS || ts < t);
        if telemetry_due {
            self.last_telemetry_ts = Some(ts);
            out.extend(self.telemetry(ts));
        }
    }

    pub fn telemetry(&self, now: u64) -> Option<Envelope> {
        let state = match self.mode {
            RemoteIdMode::Replay => RemoteIdHealth::Replay,
            _ => match self.last_frame_ts {
                Some(t) if now.saturating_sub(t) <= OK_WITHIN_MS => RemoteIdHealth::Ok,
                Some(_) => RemoteIdHealth::Degraded,
                None => RemoteIdHealth::Offline,
            },
        };
        let mode = match self.mode {
            RemoteIdMode::Replay => RemoteIdMode::Replay,
            _ => RemoteIdMode::Live,
        };
        env(
            "TELEMETRY_UPDATE",
            now,
            &TelemetryUpdate {
                state,
                last_update_ms: self.last_frame_ts.unwrap_or(now),
                contacts_active: self.contacts.len() as u64,
                mode,
            },
        )
    }

    /// LOST for every contact silent for more than 15 s at `now` (also those never announced).
    pub fn expire(&mut self, now: u64, out: &mut Vec<Envelope>) {
        if self
            .contacts
            .values()
            .all(|c| now.saturating_sub(c.last_seen_ts) <= LOST_AFTER_MS)
        {
            return;
        }
        let mut gone: Vec<Contact> = Vec::new();
        self.contacts.retain(|_, c| {
            let keep = now.saturating_sub(c.last_seen_ts) <= LOST_AFTER_MS;
            if !keep {
                gone.push(c.clone());
            }
            keep
        });
        gone.sort_by(|a, b| a.last_seen_ts.cmp(&b.last_seen_ts).then(a.id.cmp(&b.id)));
        for c in &gone {
            self.by_mac.retain(|_, id| id != &c.id);
            out.extend(lost_env(c, now));
        }
    }

    /// End of input (replay): every remaining contact is LOST, at its expiry time.
    pub fn finish(&mut self, out: &mut Vec<Envelope>) {
        let end = self.contacts.values().map(|c| c.last_seen_ts).max().unwrap_or(0);
        self.expire(end + LOST_AFTER_MS + 1, out);
    }

    fn evict_oldest(&mut self, now: u64, out: &mut Vec<Envelope>) {
        let oldest = self
            .contacts
            .values()
            .min_by(|a, b| a.last_seen_ts.cmp(&b.last_seen_ts).then(a.id.cmp(&b.id)))
            .map(|c| c.id.clone());
        if let Some(c) = oldest.and_then(|id| self.contacts.remove(&id)) {
            self.by_mac.retain(|_, id| id != &c.id);
            out.extend(lost_env(&c, now));
        }
    }
}

fn lost_env(c: &Contact, now: u64) -> Option<Envelope> {
    env("CONTACT_LOST", now, &RemoteIdContactLost::new(&c.id, c.last_seen_ts))
}

/// REPLAY_STATE at the wall clock `now`.
pub fn replay_state(state: &str, speed: f64, position: Option<u64>, total: Option<u64>, now: u64) -> Option<Envelope> {
    env(
        "REPLAY_STATE",
        now,
        &ReplayStateEvent {
            state: state.into(),
            speed,
            position,
            total,
            ts: None,
        },
    )
}

/// Sticky merge: what the frame says replaces, what it does not say stays.
fn merge(f: &mut RemoteIdFields, o: &Observation) {
    fn set<T>(dst: &mut Option<T>, v: Option<T>) {
        if v.is_some() {
            *dst = v;
        }
    }
    set(&mut f.model, o.self_id.map(str::to_owned));
    set(&mut f.operator_id, o.operator_id.map(str::to_owned));
    set(&mut f.ua_type, o.ua_type.map(str::to_owned));
    f.transport = Some(o.transport);
    set(&mut f.mac, o.mac.as_ref().map(mac_text));
    set(&mut f.rssi_dbm, o.rssi_dbm.map(f64::from));
    if let Some(l) = &o.location {
        if let (Some(lat), Some(lon)) = (l.lat, l.lon) {
            f.lat = Some(lat);
            f.lon = Some(lon);
        }
        set(&mut f.altitude_m, l.geodetic_alt_m.or(l.pressure_alt_m));
        set(&mut f.speed_m_s, l.speed_m_s);
        set(&mut f.heading_deg, l.direction_deg);
        set(&mut f.vspeed_m_s, l.vspeed_m_s);
        if l.height_ref == HeightRef::Ground {
            set(&mut f.height_agl_m, l.height_m);
        }
    }
    if let Some(s) = &o.system {
        if let (Some(lat), Some(lon)) = (s.operator_lat, s.operator_lon) {
            f.operator_lat = Some(lat);
            f.operator_lon = Some(lon);
        }
        set(&mut f.operator_alt_m, s.operator_alt_m);
        set(
            &mut f.operator_location_type,
            match s.operator_location_type {
                Some("takeoff") => Some(OperatorLocationType::Takeoff),
                Some("live_gnss") => Some(OperatorLocationType::LiveGnss),
                Some("fixed") => Some(OperatorLocationType::Fixed),
                _ => None,
            },
        );
    }
}
