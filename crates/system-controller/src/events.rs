//! When a section event is due (system-controller §5): on a change that
//! survives the volatile keys and the deadbands, GPS at most once per
//! `gps_min_interval_ms`, and every section at least every `max_silence_s`.

use serde_json::Value;
use std::time::{Duration, Instant};

/// The five on-change section events, in greeting order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionEvent {
    Ups,
    Service,
    Network,
    Gps,
    Audio,
}

impl SectionEvent {
    pub const ALL: [SectionEvent; 5] = [
        SectionEvent::Ups,
        SectionEvent::Service,
        SectionEvent::Network,
        SectionEvent::Gps,
        SectionEvent::Audio,
    ];
    pub const fn kind(self) -> &'static str {
        use ndefender_contract::kind;
        match self {
            SectionEvent::Ups => kind::UPS_UPDATE,
            SectionEvent::Service => kind::SERVICE_UPDATE,
            SectionEvent::Network => kind::NETWORK_UPDATE,
            SectionEvent::Gps => kind::GPS_UPDATE,
            SectionEvent::Audio => kind::AUDIO_UPDATE,
        }
    }
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Keys that change on every probe without meaning anything changed.
const VOLATILE: [&str; 3] = ["timestamp_ms", "last_update_ms", "age_ms"];

/// Deadband per key name: smaller moves are noise (§5).
fn deadband(key: &str) -> Option<f64> {
    match key {
        "pack_voltage_v" | "input_vbus_v" => Some(0.05),
        "per_cell_v" => Some(0.01),
        "current_a" => Some(0.05),
        "input_power_w" => Some(0.1),
        "rssi_dbm" => Some(3.0),
        "link_quality" => Some(5.0),
        _ => None,
    }
}

/// True when `new` differs from `old` beyond the volatile keys and deadbands.
pub fn changed(old: &Value, new: &Value) -> bool {
    differs(old, new, None)
}

fn differs(old: &Value, new: &Value, band: Option<f64>) -> bool {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
            for k in keys {
                if VOLATILE.contains(&k.as_str()) || k == "uptime_s" && is_service_entry(a, b) {
                    continue;
                }
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => {
                        if differs(x, y, deadband(k)) {
                            return true;
                        }
                    }
                    (None, None) => {}
                    _ => return true,
                }
            }
            false
        }
        (Value::Array(a), Value::Array(b)) => a.len() != b.len() || a.iter().zip(b).any(|(x, y)| differs(x, y, band)),
        (Value::Number(x), Value::Number(y)) => match (band, x.as_f64(), y.as_f64()) {
            (Some(d), Some(x), Some(y)) => (x - y).abs() >= d - 1e-9,
            _ => x != y,
        },
        (a, b) => a != b,
    }
}

fn is_service_entry(a: &serde_json::Map<String, Value>, b: &serde_json::Map<String, Value>) -> bool {
    a.contains_key("active_state") || b.contains_key("active_state")
}

/// Book-keeping of one section event.
#[derive(Debug, Default)]
pub struct Emitter {
    last_sent: Option<Value>,
    last_at: Option<Instant>,
    /// A change held back by the GPS rate limit.
    pending: bool,
}

/// What to do with the current value of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Now,
    Later,
    No,
}

impl Emitter {
    /// Decides on a fresh value. `min_gap` is the GPS limit (zero elsewhere).
    pub fn on_value(&mut self, v: &Value, now: Instant, min_gap: Duration) -> Due {
        let is_change = self.last_sent.as_ref().is_none_or(|old| changed(old, v));
        if !is_change && !self.pending {
            return Due::No;
        }
        if self.last_at.is_some_and(|t| now.duration_since(t) < min_gap) {
            self.pending = true;
            return Due::Later;
        }
        Due::Now
    }

    /// Decides on the periodic tick: a held-back change whose gap has passed, or silence.
    pub fn on_tick(&self, now: Instant, min_gap: Duration, max_silence: Duration) -> bool {
        match self.last_at {
            None => true,
            Some(t) => {
                let since = now.duration_since(t);
                (self.pending && since >= min_gap) || since >= max_silence
            }
        }
    }

    pub fn sent(&mut self, v: Value, now: Instant) {
        self.last_sent = Some(v);
        self.last_at = Some(now);
        self.pending = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ups_deadbands() {
        let a = json!({"timestamp_ms":1,"status":"ok","pack_voltage_v":14.8,"current_a":-1.5,"per_cell_v":[3.7,3.71],"state":"DISCHARGING","soc_percent":80});
        let noise = json!({"timestamp_ms":2,"status":"ok","pack_voltage_v":14.83,"current_a":-1.47,"per_cell_v":[3.705,3.71],"state":"DISCHARGING","soc_percent":80});
        assert!(!changed(&a, &noise));
        let volt = json!({"timestamp_ms":2,"status":"ok","pack_voltage_v":14.86,"current_a":-1.5,"per_cell_v":[3.7,3.71],"state":"DISCHARGING","soc_percent":80});
        assert!(changed(&a, &volt));
        let state = json!({"timestamp_ms":2,"status":"ok","pack_voltage_v":14.8,"current_a":-1.5,"per_cell_v":[3.7,3.71],"state":"CHARGING","soc_percent":80});
        assert!(changed(&a, &state));
        let soc = json!({"timestamp_ms":2,"status":"ok","pack_voltage_v":14.8,"current_a":-1.5,"per_cell_v":[3.7,3.71],"state":"DISCHARGING","soc_percent":79});
        assert!(changed(&a, &soc));
    }

    #[test]
    fn wifi_deadbands_and_volatile_keys() {
        let a = json!({"connected":true,"wifi":{"timestamp_ms":1,"rssi_dbm":-52,"link_quality":80,"last_update_ms":1}});
        let b = json!({"connected":true,"wifi":{"timestamp_ms":9,"rssi_dbm":-53,"link_quality":78,"last_update_ms":9}});
        assert!(!changed(&a, &b));
        let c = json!({"connected":true,"wifi":{"timestamp_ms":9,"rssi_dbm":-55,"link_quality":78}});
        assert!(changed(&a, &c));
        let s1 = json!({"services":[{"name":"a","active_state":"active","uptime_s":5}]});
        let s2 = json!({"services":[{"name":"a","active_state":"active","uptime_s":7}]});
        assert!(!changed(&s1, &s2));
    }

    #[test]
    fn gps_gap_holds_back_and_tick_releases() {
        let mut e = Emitter::default();
        let t0 = Instant::now();
        let gap = Duration::from_secs(1);
        let silence = Duration::from_secs(30);
        let v1 = json!({"fix":"FIX_3D","latitude":1.0});
        assert_eq!(e.on_value(&v1, t0, gap), Due::Now);
        e.sent(v1, t0);
        let v2 = json!({"fix":"FIX_3D","latitude":1.1});
        assert_eq!(e.on_value(&v2, t0 + Duration::from_millis(100), gap), Due::Later);
        assert!(!e.on_tick(t0 + Duration::from_millis(500), gap, silence));
        assert!(e.on_tick(t0 + Duration::from_millis(1000), gap, silence));
        e.sent(v2.clone(), t0 + Duration::from_millis(1000));
        assert_eq!(e.on_value(&v2, t0 + Duration::from_millis(1100), gap), Due::No);
        assert!(e.on_tick(t0 + Duration::from_secs(31), gap, silence));
    }
}
