//! The 1 s tick: contact expiry, replay idle, feed watchdogs and the video probe
//! (aggregator §6, §10). Filesystem facts are gathered by the caller off the
//! executor and passed in, so this stays pure and clock-driven.

use super::{antsdr, remoteid, Feed, FeedHealth, Removal, State};
use ndefender_contract::enums::{LogLevel, RemoteIdHealth, RemoteIdMode, RfStatus, VideoStatus};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::Duration;

/// Operstate of the capture interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Iface {
    Missing,
    State(String),
}

/// Filesystem facts for one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub remoteid_exists: bool,
    pub antsdr_exists: bool,
    pub capture_iface: Iface,
    /// `None` when the video probe did not run this tick.
    pub video_present: Option<bool>,
}

impl Facts {
    /// Reads the facts (blocking; call from `spawn_blocking`).
    pub fn gather(st_cfg: &crate::config::AggregatorConfig, probe_video: bool) -> Self {
        let iface = Path::new("/sys/class/net").join(&st_cfg.remoteid.capture_interface);
        let capture_iface = match std::fs::read_to_string(iface.join("operstate")) {
            Ok(s) => Iface::State(s.trim().to_owned()),
            Err(_) if iface.exists() => Iface::State("unknown".into()),
            Err(_) => Iface::Missing,
        };
        Self {
            remoteid_exists: st_cfg.remoteid.jsonl_path.exists(),
            antsdr_exists: st_cfg.antsdr.jsonl_path.exists(),
            capture_iface,
            video_present: probe_video.then(|| video_present(&st_cfg.status.video_device_glob)),
        }
    }
}

/// Whether anything matches a `<dir>/<prefix>*` glob (the only form the config uses).
pub fn video_present(glob: &str) -> bool {
    let p = Path::new(glob);
    let (Some(dir), Some(name)) = (p.parent(), p.file_name().and_then(|n| n.to_str())) else {
        return false;
    };
    let prefix = name.trim_end_matches('*');
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .any(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(prefix)))
        })
        .unwrap_or(false)
}

pub fn tick(st: &mut State, facts: &Facts) {
    expire_contacts(st);
    replay_idle(st);
    if st.cfg.antsdr.enabled {
        rf_watchdog(st, facts);
    }
    if st.cfg.remoteid.enabled {
        remoteid_watchdog(st, facts);
    }
    if let Some(present) = facts.video_present {
        let status = if present { VideoStatus::Ok } else { VideoStatus::Offline };
        State::set_if_changed(&mut st.dirty, &mut st.snap.video.status, status);
    }
}

fn expire_contacts(st: &mut State) {
    let now = st.clock.now_ms();
    let mono = st.clock.monotonic();
    let rid_ttl = Duration::from_secs_f64(st.cfg.remoteid.contact_ttl_s);
    let replay = st.replay_active();
    let expired: Vec<String> = st
        .contacts
        .rid
        .values()
        .filter(|s| {
            if replay {
                mono.saturating_duration_since(s.received) >= rid_ttl
            } else {
                now.saturating_sub(s.contact.last_seen_ts) >= rid_ttl.as_millis() as u64
            }
        })
        .map(|s| s.contact.id.clone())
        .collect();
    for id in expired {
        remoteid::evict(st, &id, Removal::Expired);
    }
    let rf_ttl_ms = (st.cfg.antsdr.contact_ttl_s * 1000.0) as u64;
    let expired: Vec<String> = st
        .contacts
        .rf
        .values()
        .filter(|s| now.saturating_sub(s.contact.last_seen_ts) >= rf_ttl_ms)
        .map(|s| s.contact.data.id.clone())
        .collect();
    for id in expired {
        antsdr::evict(st, &id, Removal::Expired);
    }
}

fn replay_idle(st: &mut State) {
    if !st.replay_active() {
        return;
    }
    let mono = st.clock.monotonic();
    let idle = st
        .replay_last_line
        .is_none_or(|t| mono.saturating_duration_since(t) >= Duration::from_secs(60));
    if idle {
        State::set_if_changed(&mut st.dirty, &mut st.snap.replay.active, false);
        State::set_if_changed(&mut st.dirty, &mut st.snap.replay.source, "none".to_owned());
        State::set_if_changed(&mut st.dirty, &mut st.snap.remote_id.mode, RemoteIdMode::Live);
        if let Some(d) = &mut st.replay_data {
            d.active = Some(false);
            d.source = Some("none".into());
        }
        st.log_transition(
            LogLevel::Info,
            "remoteid",
            "replay_idle",
            "remoteid replay ended: no line for 60 s".into(),
        );
    }
}

fn since_activity(st: &State, feed: Feed) -> Duration {
    let from = st.last_activity.get(&feed).copied().unwrap_or(st.t0_mono);
    st.clock.monotonic().saturating_duration_since(from)
}

fn last_seen_ms(st: &State, feed: Feed) -> Option<u64> {
    let t = st.last_activity.get(&feed)?;
    let ago = st.clock.monotonic().saturating_duration_since(*t);
    Some(st.clock.now_ms().saturating_sub(ago.as_millis() as u64))
}

fn reason_event(reason: &str, last_seen: Option<u64>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("reason".into(), json!(reason));
    if let Some(t) = last_seen {
        m.insert("last_seen_ms".into(), json!(t));
    }
    m
}

fn rf_watchdog(st: &mut State, facts: &Facts) {
    let next = if !facts.antsdr_exists {
        FeedHealth::Missing
    } else if since_activity(st, Feed::Antsdr).as_secs_f64() >= st.cfg.antsdr.stale_s {
        FeedHealth::Stale("no_recent_rf_events".into())
    } else {
        return;
    };
    if st.health.get(&Feed::Antsdr) == Some(&next) {
        return;
    }
    let now = st.clock.now_ms();
    let last_seen = last_seen_ms(st, Feed::Antsdr);
    let sec = &mut st.snap.rf;
    sec.scan_active = false;
    sec.last_timestamp_ms = Some(now);
    let (code, msg) = match &next {
        FeedHealth::Missing => {
            sec.status = RfStatus::Offline;
            sec.last_error = Some("rf_jsonl_missing".into());
            sec.last_event_type = Some("RF_SCAN_OFFLINE".into());
            sec.last_event = Some(reason_event("rf_jsonl_missing", None));
            ("rf_jsonl_missing", "antsdr feed file missing")
        }
        _ => {
            sec.status = RfStatus::Degraded;
            sec.last_error = Some("no_recent_rf_events".into());
            sec.last_event_type = Some("RF_SCAN_STALE".into());
            sec.last_event = Some(reason_event("no_recent_rf_events", last_seen));
            ("no_recent_rf_events", "antsdr feed stale")
        }
    };
    st.dirty = true;
    st.health.insert(Feed::Antsdr, next);
    st.log_transition(LogLevel::Warn, "antsdr", code, msg.into());
}

fn remoteid_watchdog(st: &mut State, facts: &Facts) {
    if st.replay_active() {
        return;
    }
    let (next, state, reason) = if !facts.remoteid_exists {
        (
            FeedHealth::Missing,
            RemoteIdHealth::Offline,
            Some("remoteid_jsonl_missing"),
        )
    } else if since_activity(st, Feed::RemoteId).as_secs_f64() >= st.cfg.remoteid.stale_s {
        let unit = st
            .snap
            .services
            .iter()
            .find(|s| s.name == st.cfg.remoteid.engine_unit)
            .map(|s| s.active_state == "active");
        let (state, reason) = match (&unit, &facts.capture_iface) {
            (Some(false), _) => (RemoteIdHealth::Offline, Some("remoteid_service_inactive")),
            (_, Iface::Missing) => (RemoteIdHealth::Degraded, Some("capture_interface_missing")),
            (_, Iface::State(s)) if s != "up" && s != "unknown" => {
                (RemoteIdHealth::Degraded, Some("capture_interface_down"))
            }
            (Some(true), _) => (RemoteIdHealth::Ok, None),
            _ => (RemoteIdHealth::Degraded, Some("no_odid_frames")),
        };
        (FeedHealth::Stale(reason.unwrap_or("quiet").to_owned()), state, reason)
    } else {
        return;
    };
    if st.health.get(&Feed::RemoteId) == Some(&next) {
        return;
    }
    let now = st.clock.now_ms();
    let last_seen = last_seen_ms(st, Feed::RemoteId);
    let sec = &mut st.snap.remote_id;
    sec.state = state;
    match reason {
        Some(r) => {
            sec.capture_active = Some(false);
            sec.last_error = Some(r.to_owned());
            sec.last_event_type = Some("REMOTEID_STALE".into());
            let ls = if r == "remoteid_jsonl_missing" { None } else { last_seen };
            sec.last_event = Some(reason_event(r, ls));
            sec.last_timestamp_ms = Some(now);
        }
        None => {
            sec.capture_active = Some(true);
            sec.last_error = None;
        }
    }
    st.dirty = true;
    st.health.insert(Feed::RemoteId, next);
    if let Some(r) = reason {
        st.log_transition(LogLevel::Warn, "remoteid", r, format!("remoteid feed: {r}"));
    }
}
