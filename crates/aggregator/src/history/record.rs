//! What the history keeps, as plain records, and how they are read out of the envelopes the
//! hub publishes (the same JSON text a WebSocket client receives).

use ndefender_contract::events::kind;
use serde_json::{Map, Value};

/// The three contact kinds, spelled as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    RemoteId,
    Rf,
    Fpv,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::RemoteId, Kind::Rf, Kind::Fpv];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::RemoteId => "REMOTE_ID",
            Kind::Rf => "RF",
            Kind::Fpv => "FPV",
        }
    }

    /// `REMOTE_ID`, `remote_id`, `remoteid`, `rf`, `fpv` (any case).
    pub fn parse(s: &str) -> Option<Kind> {
        match s.to_ascii_lowercase().as_str() {
            "remote_id" | "remoteid" => Some(Kind::RemoteId),
            "rf" => Some(Kind::Rf),
            "fpv" => Some(Kind::Fpv),
            _ => None,
        }
    }
}

/// Who a contact is: whatever the sighting told, `None` where it told nothing (a later
/// sighting without a field keeps the stored value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub serial: Option<String>,
    pub operator_id: Option<String>,
    pub model: Option<String>,
    pub ua_type: Option<String>,
    pub mac: Option<String>,
    pub band: Option<String>,
    pub freq_hz: Option<f64>,
    pub class: Option<String>,
}

/// A sighting of a contact: updates first/last seen and identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    pub id: String,
    pub kind: Kind,
    pub ts: u64,
    pub identity: Identity,
}

/// One RemoteID position fix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fix {
    pub ts: u64,
    pub lat: f64,
    pub lon: f64,
    pub altitude_m: Option<f64>,
    pub speed_m_s: Option<f64>,
    pub heading_deg: Option<f64>,
    pub vspeed_m_s: Option<f64>,
    pub height_agl_m: Option<f64>,
    pub operator_lat: Option<f64>,
    pub operator_lon: Option<f64>,
    pub operator_alt_m: Option<f64>,
    pub rssi_dbm: Option<f64>,
}

/// One RF or FPV detection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detection {
    pub ts: u64,
    pub freq_hz: f64,
    /// Peak power (RF, dB) or raw RSSI (FPV receiver units).
    pub level: f64,
    pub snr_db: Option<f64>,
    pub class: Option<String>,
    pub confidence: Option<f64>,
}

/// One command audit line. `actor` is who asked (a token name once role tokens exist);
/// acks seen on the hub do not know it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditEntry {
    pub ts: u64,
    pub actor: Option<String>,
    /// Where the line comes from: `esp32`, `system`, `api`, ...
    pub source: String,
    pub action: String,
    pub target: Option<String>,
    /// `ok` or the failure reason.
    pub outcome: String,
    pub command_id: Option<String>,
}

/// The kit's own position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KitPosition {
    pub ts: u64,
    pub lat: f64,
    pub lon: f64,
    pub alt_m: Option<f64>,
}

/// Everything the writer stores.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Sighting(Sighting),
    Fix(String, Fix),
    Detection(String, Detection),
    Audit(AuditEntry),
    Kit(KitPosition),
}

fn s(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn f(m: &Map<String, Value>, k: &str) -> Option<f64> {
    m.get(k).and_then(Value::as_f64).filter(|v| v.is_finite())
}

/// The serial number inside a RemoteID id (`rid:<basic_id>`; remoteid-jsonl §id); ids made
/// from a MAC address or anything else carry none.
fn serial_of(id: &str) -> Option<String> {
    let rest = id.strip_prefix("rid:")?;
    (!rest.is_empty() && !rest.starts_with("mac:")).then(|| rest.to_owned())
}

/// Whether envelopes of this type carry records (the writer parses no others: SYSTEM_UPDATE,
/// telemetry and pass-through lines are most of the stream).
pub fn wanted(kind: &str) -> bool {
    matches!(
        kind,
        kind::CONTACT_NEW
            | kind::CONTACT_UPDATE
            | kind::CONTACT_LOST
            | kind::RF_CONTACT_NEW
            | kind::RF_CONTACT_UPDATE
            | kind::COMMAND_ACK
    )
}

/// Reads the records one published envelope carries (none for most kinds).
pub fn from_envelope(json: &str, out: &mut Vec<Record>) {
    let Ok(Value::Object(env)) = serde_json::from_str::<Value>(json) else {
        return;
    };
    let (Some(t), Some(Value::Object(d))) = (env.get("type").and_then(Value::as_str), env.get("data")) else {
        return;
    };
    let ts = env.get("timestamp_ms").and_then(Value::as_u64).unwrap_or(0);
    let last_seen = d.get("last_seen_ts").and_then(Value::as_u64).unwrap_or(ts);
    match t {
        kind::CONTACT_NEW | kind::CONTACT_UPDATE => {
            let Some(id) = s(d, "id") else { return };
            let identity = Identity {
                serial: serial_of(&id),
                operator_id: s(d, "operator_id"),
                model: s(d, "model"),
                ua_type: s(d, "ua_type"),
                mac: s(d, "mac"),
                ..Identity::default()
            };
            out.push(Record::Sighting(Sighting {
                id: id.clone(),
                kind: Kind::RemoteId,
                ts: last_seen,
                identity,
            }));
            if let (Some(lat), Some(lon)) = (f(d, "lat"), f(d, "lon")) {
                out.push(Record::Fix(
                    id,
                    Fix {
                        ts: last_seen,
                        lat,
                        lon,
                        altitude_m: f(d, "altitude_m"),
                        speed_m_s: f(d, "speed_m_s"),
                        heading_deg: f(d, "heading_deg"),
                        vspeed_m_s: f(d, "vspeed_m_s"),
                        height_agl_m: f(d, "height_agl_m"),
                        operator_lat: f(d, "operator_lat"),
                        operator_lon: f(d, "operator_lon"),
                        operator_alt_m: f(d, "operator_alt_m"),
                        rssi_dbm: f(d, "rssi_dbm"),
                    },
                ));
            }
        }
        kind::CONTACT_LOST | kind::RF_CONTACT_LOST => {
            let Some(id) = s(d, "id") else { return };
            let k = if t == kind::CONTACT_LOST {
                Kind::RemoteId
            } else {
                Kind::Rf
            };
            // LOST carries no new sighting time of its own for RF; the envelope time is when
            // the contact left, which is not a sighting either, so RF keeps its last detection.
            if k == Kind::RemoteId {
                out.push(Record::Sighting(Sighting {
                    id,
                    kind: k,
                    ts: last_seen,
                    identity: Identity::default(),
                }));
            }
        }
        kind::RF_CONTACT_NEW | kind::RF_CONTACT_UPDATE => {
            let Some(id) = s(d, "id") else { return };
            let Some(freq) = f(d, "freq_hz") else { return };
            let class = rf_class(d);
            out.push(Record::Sighting(Sighting {
                id: id.clone(),
                kind: Kind::Rf,
                ts,
                identity: Identity {
                    band: s(d, "band"),
                    freq_hz: Some(freq),
                    class: class.clone(),
                    ..Identity::default()
                },
            }));
            out.push(Record::Detection(
                id,
                Detection {
                    ts,
                    freq_hz: freq,
                    level: f(d, "peak_db").unwrap_or(0.0),
                    snr_db: f(d, "snr_db"),
                    class,
                    confidence: f(d, "confidence"),
                },
            ));
        }
        kind::COMMAND_ACK => {
            if let Some(a) = audit_from_ack(&env, d, ts) {
                out.push(Record::Audit(a));
            }
        }
        _ => {}
    }
}

/// The scanner's classification: its class path (`drone/control/elrs`), else the bandwidth class.
fn rf_class(d: &Map<String, Value>) -> Option<String> {
    let path: Vec<&str> = d
        .get("features")
        .and_then(|f| f.get("class_path"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if path.is_empty() {
        s(d, "bandwidth_class")
    } else {
        Some(path.join("/"))
    }
}

/// COMMAND_ACK data in either shape: the ESP32's `{id, ok, err, data:{cmd}}` or every other
/// route's `{command, name?, ok, reason, command_id?}`.
fn audit_from_ack(env: &Map<String, Value>, d: &Map<String, Value>, ts: u64) -> Option<AuditEntry> {
    let ok = d.get("ok").and_then(Value::as_bool)?;
    let source = s(env, "source").unwrap_or_else(|| "unknown".into());
    let (action, target, reason, command_id) = if let Some(cmd) = s(d, "command") {
        (cmd, s(d, "name"), s(d, "reason"), s(d, "command_id"))
    } else {
        let cmd = d
            .get("data")
            .and_then(|x| x.get("cmd"))
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        (format!("esp32/{cmd}"), None, s(d, "err"), s(d, "id"))
    };
    Some(AuditEntry {
        ts,
        actor: None,
        source,
        action,
        target,
        outcome: if ok {
            "ok".into()
        } else {
            reason.unwrap_or_else(|| "failed".into())
        },
        command_id,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn remoteid_update_gives_sighting_and_fix_with_v11_fields() {
        let mut out = Vec::new();
        from_envelope(
            r#"{"type":"CONTACT_UPDATE","timestamp_ms":1000,"source":"remoteid","data":{"id":"rid:ABC123","type":"REMOTE_ID","last_seen_ts":1500,"lat":48.1,"lon":11.5,"altitude_m":120.0,"speed_m_s":7.5,"heading_deg":90.0,"operator_lat":48.0,"operator_lon":11.4,"operator_id":"OP-1","model":"M3"}}"#,
            &mut out,
        );
        assert_eq!(out.len(), 2);
        let Record::Sighting(s) = &out[0] else { panic!() };
        assert_eq!(s.identity.serial.as_deref(), Some("ABC123"));
        assert_eq!(s.identity.operator_id.as_deref(), Some("OP-1"));
        assert_eq!(s.ts, 1500);
        let Record::Fix(id, f) = &out[1] else { panic!() };
        assert_eq!(id, "rid:ABC123");
        assert_eq!(
            (f.ts, f.lat, f.heading_deg, f.operator_lon),
            (1500, 48.1, Some(90.0), Some(11.4))
        );
    }

    #[test]
    fn mac_ids_have_no_serial_and_no_position_no_fix() {
        let mut out = Vec::new();
        from_envelope(
            r#"{"type":"CONTACT_NEW","timestamp_ms":1000,"source":"remoteid","data":{"id":"rid:mac:aa:bb:cc:dd:ee:ff","type":"REMOTE_ID","last_seen_ts":1000}}"#,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        let Record::Sighting(s) = &out[0] else { panic!() };
        assert_eq!(s.identity.serial, None);
    }

    #[test]
    fn rf_and_acks() {
        let mut out = Vec::new();
        from_envelope(
            r#"{"type":"RF_CONTACT_UPDATE","timestamp_ms":2000,"source":"antsdr","data":{"id":"rf:1","freq_hz":2.44e9,"bucket_hz":2.44e9,"band":"2G4","snr_db":12.0,"peak_db":-40.0,"noise_floor_db":-52.0,"bandwidth_class":"narrow","confidence":0.8,"features":{"class_path":["drone","control"]}}}"#,
            &mut out,
        );
        from_envelope(
            r#"{"type":"COMMAND_ACK","timestamp_ms":3000,"source":"esp32","data":{"id":"c1","ok":false,"err":"busy","data":{"cmd":"scan"}}}"#,
            &mut out,
        );
        from_envelope(
            r#"{"type":"COMMAND_ACK","timestamp_ms":3001,"source":"system","data":{"command":"service/restart","name":"gpsd","ok":true,"reason":null}}"#,
            &mut out,
        );
        from_envelope(
            r#"{"type":"HEARTBEAT","timestamp_ms":1,"source":"aggregator","data":{}}"#,
            &mut out,
        );
        from_envelope("not json", &mut out);
        assert_eq!(out.len(), 4);
        let Record::Detection(_, d) = &out[1] else { panic!() };
        assert_eq!((d.level, d.class.as_deref()), (-40.0, Some("drone/control")));
        let Record::Audit(a) = &out[2] else { panic!() };
        assert_eq!((a.action.as_str(), a.outcome.as_str()), ("esp32/scan", "busy"));
        let Record::Audit(a) = &out[3] else { panic!() };
        assert_eq!((a.target.as_deref(), a.outcome.as_str()), (Some("gpsd"), "ok"));
    }
}
