//! System-controller sections under the state lock (aggregator §8.1): values pass
//! through their contract types, missing status is inferred, and an unreachable
//! controller turns its sections offline (services and network keep their last
//! values: they have no status field).

use super::State;
use ndefender_contract::enums::{Fix, LogLevel, Status};
use ndefender_contract::system::{AudioState, GpsState, NetworkState, ServiceStatus, SystemStats, UpsTelemetry};
use serde_json::Value;

/// One controller-fed section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    System,
    Power,
    Services,
    Network,
    Gps,
    Audio,
}

impl Section {
    pub const ALL: [Section; 6] = [
        Section::System,
        Section::Power,
        Section::Services,
        Section::Network,
        Section::Gps,
        Section::Audio,
    ];

    /// The section a controller WS event updates.
    pub fn of_event(kind: &str) -> Option<Section> {
        Some(match kind {
            "SYSTEM_STATUS" => Section::System,
            "UPS_UPDATE" => Section::Power,
            "SERVICE_UPDATE" => Section::Services,
            "NETWORK_UPDATE" => Section::Network,
            "GPS_UPDATE" => Section::Gps,
            "AUDIO_UPDATE" => Section::Audio,
            _ => return None,
        })
    }

    /// Its value in the controller's `GET /status` body (`power`, else `ups`).
    pub fn from_status(self, body: &Value) -> Option<&Value> {
        match self {
            Section::System => body.get("system"),
            Section::Power => body.get("power").or_else(|| body.get("ups")),
            Section::Services => body.get("services"),
            Section::Network => body.get("network"),
            Section::Gps => body.get("gps"),
            Section::Audio => body.get("audio"),
        }
    }
}

/// Applies one section value; returns false (and changes nothing) for a value
/// that does not fit its contract type.
pub fn apply(st: &mut State, section: Section, v: &Value) -> bool {
    let now = st.clock.now_ms();
    match section {
        Section::System => {
            let Ok(mut s) = serde_json::from_value::<SystemStats>(v.clone()) else {
                return false;
            };
            if s.status.is_none() {
                s.status = Some(if s.has_metrics() { Status::Ok } else { Status::Degraded });
            }
            s.timestamp_ms.get_or_insert(now);
            State::set_if_changed(&mut st.dirty, &mut st.snap.system, s);
        }
        Section::Power => {
            let Ok(mut s) = serde_json::from_value::<UpsTelemetry>(v.clone()) else {
                return false;
            };
            s.sanitize();
            if s.status.is_none() {
                s.status = Some(if s.has_metrics() { Status::Ok } else { Status::Degraded });
            }
            s.timestamp_ms.get_or_insert(now);
            State::set_if_changed(&mut st.dirty, &mut st.snap.power, s);
        }
        Section::Services => {
            let list = v.get("services").unwrap_or(v);
            let Ok(s) = serde_json::from_value::<Vec<ServiceStatus>>(list.clone()) else {
                return false;
            };
            State::set_if_changed(&mut st.dirty, &mut st.snap.services, s);
        }
        Section::Network => {
            let Ok(s) = serde_json::from_value::<NetworkState>(v.clone()) else {
                return false;
            };
            State::set_if_changed(&mut st.dirty, &mut st.snap.network, s);
        }
        Section::Gps => {
            let Ok(mut s) = serde_json::from_value::<GpsState>(v.clone()) else {
                return false;
            };
            s.sanitize();
            s.timestamp_ms.get_or_insert(now);
            s.fix.get_or_insert(Fix::NoFix);
            let moved = s.position() != st.snap.gps.position();
            State::set_if_changed(&mut st.dirty, &mut st.snap.gps, s);
            if moved {
                let kit = st.snap.gps.position();
                let radius = st.cfg.contacts.remote_id_high_radius_m;
                let raised = st.contacts.rerank_rid(kit, radius);
                if !raised.is_empty() {
                    st.note_high(raised);
                }
            }
        }
        Section::Audio => {
            let Ok(mut s) = serde_json::from_value::<AudioState>(v.clone()) else {
                return false;
            };
            if s.status.is_none() {
                s.status = Some(if s.muted.is_some() || s.volume_percent.is_some() {
                    Status::Ok
                } else {
                    Status::Degraded
                });
            }
            s.timestamp_ms.get_or_insert(now);
            State::set_if_changed(&mut st.dirty, &mut st.snap.audio, s);
        }
    }
    true
}

/// The controller is unreachable (WS down and GET failing).
pub fn set_down(st: &mut State) {
    if !st.controller_up && st.snap.system.last_error.as_deref() == Some("system_controller_unavailable") {
        return;
    }
    let was = st.controller_up;
    st.controller_up = false;
    let now = st.clock.now_ms();
    let err = || Some("system_controller_unavailable".to_owned());
    let offline = |_: ()| (Some(now), Some(Status::Offline), err());
    let (t, s, e) = offline(());
    st.snap.system = SystemStats {
        timestamp_ms: t,
        status: s,
        last_error: e,
        ..Default::default()
    };
    let (t, s, e) = offline(());
    st.snap.power = UpsTelemetry {
        timestamp_ms: t,
        status: s,
        last_error: e,
        ..Default::default()
    };
    let (t, s, e) = offline(());
    st.snap.audio = AudioState {
        timestamp_ms: t,
        status: s,
        last_error: e,
        ..Default::default()
    };
    st.snap.gps = GpsState {
        timestamp_ms: Some(now),
        fix: Some(Fix::NoFix),
        last_error: err(),
        ..Default::default()
    };
    st.dirty = true;
    if was {
        st.log_transition(
            LogLevel::Warn,
            "system_controller",
            "system_controller_unavailable",
            "system controller unavailable".into(),
        );
    }
}

pub fn set_up(st: &mut State) {
    if !st.controller_up {
        st.controller_up = true;
        st.log_transition(
            LogLevel::Info,
            "system_controller",
            "system_controller_up",
            "system controller connected".into(),
        );
    }
}
