//! RemoteID feed lines → contacts, telemetry and replay state (aggregator §4, §6.1, §6.4).

pub use super::feedline::Outcome;
use super::feedline::{num_member, passthrough_data, str_member, uint_member, FeedLine};
use super::{Feed, FeedHealth, Removal, State};
use ndefender_contract::contact::RemoteIdFields;
use ndefender_contract::devices::RemoteIdReplayStateBody;
use ndefender_contract::enums::{LogLevel, RemoteIdHealth, RemoteIdMode, Severity};
use ndefender_contract::events::{kind, ReplayStateEvent, TelemetryUpdate};
use ndefender_contract::num::in_range;
use ndefender_contract::Source;
use serde_json::{Map, Value};

/// Replay states that mean "not replaying" (aggregator §6.4).
const INACTIVE_REPLAY: &[&str] = &[
    "",
    "stop",
    "stopped",
    "idle",
    "disabled",
    "off",
    "done",
    "finished",
    "complete",
    "completed",
    "error",
];

/// Applies one RemoteID line. Returns what happened, for counters and tests.
pub fn apply_line(st: &mut State, line: &str) -> Outcome {
    let now = st.clock.now_ms();
    let l = match st.parse_feed_line(Feed::RemoteId, line) {
        Ok(l) => l,
        Err(r) => return r.into(),
    };
    let replay = st.replay_active();
    if !replay && l.kind != "REPLAY_STATE" {
        let age_ms = now.saturating_sub(l.time_ms) as f64;
        if l.has_time && age_ms > st.cfg.remoteid.max_event_age_s * 1000.0 {
            st.counters(Feed::RemoteId).stale += 1;
            return Outcome::Stale;
        }
        if has_test_marker(&l.data, &st.cfg.remoteid.test_markers) {
            st.counters(Feed::RemoteId).test_marker += 1;
            return Outcome::TestMarker;
        }
    }
    let mono = st.clock.monotonic();
    st.last_activity.insert(Feed::RemoteId, mono);
    st.replay_last_line = Some(mono);

    let emitted = match l.kind.as_str() {
        "CONTACT_NEW" | "CONTACT_UPDATE" => contact(st, &l),
        "CONTACT_LOST" => lost(st, &l),
        "TELEMETRY_UPDATE" => telemetry(st, &l),
        "REPLAY_STATE" => replay_state(st, &l),
        _ => passthrough(st, &l),
    };
    let (kind, data) = match emitted {
        Ok(e) => e,
        Err(o) => {
            if o == Outcome::Invalid {
                st.counters(Feed::RemoteId).invalid += 1;
            }
            return o;
        }
    };
    st.counters(Feed::RemoteId).accepted += 1;
    let replay = st.replay_active();
    let dirty = &mut st.dirty;
    let sec = &mut st.snap.remote_id;
    State::set_if_changed(dirty, &mut sec.last_event_type, Some(kind.clone()));
    State::set_if_changed(dirty, &mut sec.last_event, data.as_object().cloned());
    State::set_if_changed(dirty, &mut sec.last_timestamp_ms, Some(l.time_ms));
    if kind != "TELEMETRY_UPDATE" {
        let state = if replay {
            RemoteIdHealth::Replay
        } else {
            RemoteIdHealth::Ok
        };
        State::set_if_changed(dirty, &mut sec.state, state);
        State::set_if_changed(dirty, &mut sec.capture_active, Some(true));
        State::set_if_changed(dirty, &mut sec.last_error, None);
    }
    let mode = if replay {
        RemoteIdMode::Replay
    } else if sec.mode == RemoteIdMode::Replay {
        RemoteIdMode::Live
    } else {
        sec.mode
    };
    State::set_if_changed(dirty, &mut sec.mode, mode);
    st.health.insert(Feed::RemoteId, FeedHealth::Fresh);
    st.emit(&kind, l.time_ms, Source::Remoteid, &data);
    Outcome::Emitted(kind)
}

fn has_test_marker(data: &Map<String, Value>, markers: &[String]) -> bool {
    data.values().filter_map(Value::as_str).any(|s| {
        let s = s.to_lowercase();
        markers.iter().any(|m| !m.is_empty() && s.contains(&m.to_lowercase()))
    })
}

fn contact(st: &mut State, l: &FeedLine) -> Result<(String, Value), Outcome> {
    let id = str_member(&l.data, "id").ok_or(Outcome::Invalid)?.to_owned();
    let last_seen = l
        .data
        .get("last_seen_ts")
        .and_then(ndefender_contract::time::normalize_time_value)
        .unwrap_or(l.time_ms);
    let lat = in_range(num_member(&l.data, "lat"), -90.0, 90.0);
    let lon = in_range(num_member(&l.data, "lon"), -180.0, 180.0);
    let (lat, lon) = match (lat, lon) {
        (Some(a), Some(b)) => (Some(a), Some(b)),
        _ => (None, None),
    };
    let fields = RemoteIdFields {
        model: str_member(&l.data, "model").map(str::to_owned),
        operator_id: str_member(&l.data, "operator_id").map(str::to_owned),
        lat,
        lon,
        altitude_m: num_member(&l.data, "altitude_m"),
        speed_m_s: in_range(num_member(&l.data, "speed_m_s"), 0.0, f64::MAX),
        ..v11_fields(&l.data)
    };
    let kit = st.snap.gps.position();
    let radius = st.cfg.contacts.remote_id_high_radius_m;
    let mono = st.clock.monotonic();
    let m = st.contacts.merge_rid(&id, last_seen, fields, mono, kit, radius);
    if st
        .contacts
        .rid
        .get(&id)
        .is_some_and(|c| c.contact.severity.rank() >= Severity::High.rank())
    {
        st.note_high([id.clone()]);
    }
    let kind = if m.is_new {
        kind::CONTACT_NEW
    } else {
        kind::CONTACT_UPDATE
    };
    if (l.kind == "CONTACT_NEW") != m.is_new {
        st.counters(Feed::RemoteId).lifecycle_rewrites += 1;
    }
    if m.is_new && st.contacts.rid.len() > st.cfg.contacts.max_per_kind {
        if let Some(old) = st.contacts.oldest_rid().filter(|o| *o != id) {
            evict(st, &old, Removal::Evicted);
        }
    }
    Ok((kind.to_owned(), to_value(&m.data)?))
}

/// The contract v1.1 members the RemoteID engine adds (heading, vertical speed, height, UA
/// type, operator position, transport, address, signal); each kept only when valid.
fn v11_fields(d: &Map<String, Value>) -> RemoteIdFields {
    let pair = |a: &str, b: &str| match (
        in_range(num_member(d, a), -90.0, 90.0),
        in_range(num_member(d, b), -180.0, 180.0),
    ) {
        (Some(x), Some(y)) => (Some(x), Some(y)),
        _ => (None, None),
    };
    let (operator_lat, operator_lon) = pair("operator_lat", "operator_lon");
    fn parsed<T: serde::de::DeserializeOwned>(d: &Map<String, Value>, k: &str) -> Option<T> {
        d.get(k).cloned().and_then(|v| serde_json::from_value(v).ok())
    }
    let mac = str_member(d, "mac").filter(|m| {
        m.len() == 17
            && m.bytes().enumerate().all(|(i, c)| {
                if i % 3 == 2 {
                    c == b':'
                } else {
                    c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
                }
            })
    });
    RemoteIdFields {
        heading_deg: in_range(num_member(d, "heading_deg"), 0.0, 360.0),
        vspeed_m_s: num_member(d, "vspeed_m_s"),
        height_agl_m: num_member(d, "height_agl_m"),
        ua_type: str_member(d, "ua_type").map(str::to_owned),
        operator_lat,
        operator_lon,
        operator_alt_m: num_member(d, "operator_alt_m"),
        operator_location_type: parsed(d, "operator_location_type"),
        transport: parsed(d, "transport"),
        mac: mac.map(str::to_owned),
        rssi_dbm: num_member(d, "rssi_dbm"),
        ..Default::default()
    }
}

/// Removes a RemoteID contact and emits its CONTACT_LOST (eviction and expiry).
pub fn evict(st: &mut State, id: &str, why: Removal) {
    if let Some(s) = st.contacts.rid.remove(id) {
        *st.removed.entry(("remote_id", why)).or_insert(0) += 1;
        let data = s.contact.lost_data();
        let ts = st.clock.now_ms();
        st.emit(kind::CONTACT_LOST, ts, Source::Remoteid, &data);
    }
}

fn lost(st: &mut State, l: &FeedLine) -> Result<(String, Value), Outcome> {
    let id = str_member(&l.data, "id").ok_or(Outcome::Invalid)?.to_owned();
    let Some(mut s) = st.contacts.rid.remove(&id) else {
        st.counters(Feed::RemoteId).unknown_lost += 1;
        return Err(Outcome::UnknownLost);
    };
    *st.removed.entry(("remote_id", Removal::Lost)).or_insert(0) += 1;
    if let Some(t) = l
        .data
        .get("last_seen_ts")
        .and_then(ndefender_contract::time::normalize_time_value)
    {
        s.contact.last_seen_ts = s.contact.last_seen_ts.max(t);
    }
    Ok((kind::CONTACT_LOST.to_owned(), to_value(&s.contact.lost_data())?))
}

fn telemetry(st: &mut State, l: &FeedLine) -> Result<(String, Value), Outcome> {
    let d = &l.data;
    let state = str_member(d, "state")
        .or_else(|| str_member(d, "status"))
        .map(RemoteIdHealth::parse_or_fallback)
        .unwrap_or(RemoteIdHealth::Degraded);
    let last_update = ["last_update_ms", "last_ts", "last_timestamp_ms"]
        .iter()
        .find_map(|k| d.get(*k).and_then(ndefender_contract::time::normalize_time_value))
        .unwrap_or(l.time_ms);
    let replay = st.replay_active();
    let mode = if replay {
        RemoteIdMode::Replay
    } else {
        str_member(d, "mode")
            .map(RemoteIdMode::parse_or_fallback)
            .unwrap_or(RemoteIdMode::Live)
    };
    let capture = d
        .get("capture_active")
        .and_then(Value::as_bool)
        .unwrap_or(matches!(state, RemoteIdHealth::Ok | RemoteIdHealth::Replay));
    let last_error = if state != RemoteIdHealth::Ok {
        str_member(d, "last_error").map(str::to_owned)
    } else {
        None
    };
    let count = st.contacts.rid.len() as u64;
    let engine_count = uint_member(d, "contacts_active").unwrap_or(count);
    let dirty = &mut st.dirty;
    let sec = &mut st.snap.remote_id;
    State::set_if_changed(dirty, &mut sec.state, state);
    State::set_if_changed(dirty, &mut sec.mode, mode);
    State::set_if_changed(dirty, &mut sec.capture_active, Some(capture));
    State::set_if_changed(dirty, &mut sec.last_update_ms, Some(last_update));
    State::set_if_changed(dirty, &mut sec.last_error, last_error);
    let wire_mode = if mode == RemoteIdMode::Replay {
        RemoteIdMode::Replay
    } else {
        RemoteIdMode::Live
    };
    let ev = TelemetryUpdate {
        state,
        last_update_ms: last_update,
        contacts_active: engine_count,
        mode: wire_mode,
    };
    Ok((kind::TELEMETRY_UPDATE.to_owned(), to_value(&ev)?))
}

fn replay_state(st: &mut State, l: &FeedLine) -> Result<(String, Value), Outcome> {
    let d = &l.data;
    let state = d
        .get("state")
        .and_then(Value::as_str)
        .ok_or(Outcome::Invalid)?
        .to_owned();
    let speed = num_member(d, "speed").filter(|s| *s >= 0.0).unwrap_or(1.0);
    let ev = ReplayStateEvent {
        state: state.clone(),
        speed,
        position: uint_member(d, "position"),
        total: uint_member(d, "total"),
        ts: d.get("ts").and_then(ndefender_contract::time::normalize_time_value),
    };
    let active = !INACTIVE_REPLAY.contains(&state.to_lowercase().trim());
    let was = st.snap.replay.active;
    State::set_if_changed(&mut st.dirty, &mut st.snap.replay.active, active);
    let source = if active { "remoteid" } else { "none" };
    State::set_if_changed(&mut st.dirty, &mut st.snap.replay.source, source.to_owned());
    st.replay_data = Some(RemoteIdReplayStateBody {
        timestamp_ms: Some(l.time_ms),
        active: Some(active),
        source: Some(source.to_owned()),
        state: Some(state),
        speed: Some(speed),
        position: ev.position,
        total: ev.total,
    });
    if was != active {
        let msg = if active {
            "remoteid replay started"
        } else {
            "remoteid replay ended"
        };
        st.log_transition(LogLevel::Info, "remoteid", "replay", msg.to_owned());
    }
    Ok((kind::REPLAY_STATE.to_owned(), to_value(&ev)?))
}

fn passthrough(_st: &mut State, l: &FeedLine) -> Result<(String, Value), Outcome> {
    passthrough_data(l).map(|v| (l.kind.clone(), v)).ok_or(Outcome::Invalid)
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, Outcome> {
    serde_json::to_value(v).map_err(|_| Outcome::Invalid)
}
