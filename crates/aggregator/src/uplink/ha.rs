//! Home Assistant MQTT discovery for the uplink (issue 15): one device per kit with
//! sensors read from the kit's retained `status`, a `device_tracker` for the kit's own
//! GPS position, and one `device_tracker` per RemoteID drone and per pilot/home position
//! (removed, by an empty retained config, when the drone leaves the contact list).
//!
//! Discovery topics: `<ha_prefix>/<component>/ndefender_<kit>/<object>/config`; tracker
//! positions go to `<prefix>/<kit>/ha/<object>` as JSON attributes (`latitude`,
//! `longitude`, `gps_accuracy`, ...), which is how HA's MQTT device tracker takes a
//! position without a state topic.

use super::mqtt::Topics;
use bytes::Bytes;
use ndefender_contract::contact::{Contact, OperatorLocationType};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// HA object ids allow `[a-zA-Z0-9_-]`; other bytes become `_xx` (hex), so distinct
/// contact ids stay distinct.
pub fn object_id(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

pub struct Ha {
    prefix: String,
    node: String,
    kit_id: String,
    topics: Topics,
    device: Value,
}

impl Ha {
    pub fn new(ha_prefix: &str, kit_id: &str, topics: &Topics) -> Self {
        let node = format!("ndefender_{}", object_id(kit_id));
        Self {
            prefix: ha_prefix.to_owned(),
            device: json!({
                "identifiers": [node.clone()],
                "name": format!("ndefender {kit_id}"),
                "manufacturer": "ndefender",
                "model": "drone-detection kit",
            }),
            node,
            kit_id: kit_id.to_owned(),
            topics: topics.clone(),
        }
    }

    fn config_topic(&self, component: &str, object: &str) -> String {
        format!("{}/{component}/{}/{object}/config", self.prefix, self.node)
    }

    fn attributes_topic(&self, object: &str) -> String {
        format!("{}/ha/{object}", self.topics.base)
    }

    fn put(&self, out: &mut BTreeMap<String, Bytes>, topic: String, v: &Value) {
        if let Ok(b) = serde_json::to_vec(v) {
            out.insert(topic, Bytes::from(b));
        }
    }

    fn entity(&self, object: &str, name: &str, extra: Value) -> Value {
        let mut v = json!({
            "name": name,
            "unique_id": format!("{}_{object}", self.node),
            "availability_topic": self.topics.availability(),
            "device": self.device,
        });
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        v
    }

    /// The kit's device: sensors over `status` and a tracker for its own position.
    pub fn kit_entities(&self, out: &mut BTreeMap<String, Bytes>) {
        let status = self.topics.status();
        let sensors = [
            (
                "battery",
                "Battery",
                json!({"state_topic": status, "value_template": "{{ value_json.power.soc_percent }}",
                       "device_class": "battery", "unit_of_measurement": "%", "state_class": "measurement"}),
            ),
            (
                "power_source",
                "Power source",
                json!({"state_topic": status, "value_template": "{{ value_json.power.state }}"}),
            ),
            (
                "gps_fix",
                "GPS fix",
                json!({"state_topic": status, "value_template": "{{ value_json.gps.fix }}"}),
            ),
            (
                "contacts",
                "Contacts",
                json!({"state_topic": self.topics.contacts_count(), "state_class": "measurement"}),
            ),
        ];
        for (obj, name, extra) in sensors {
            let v = self.entity(obj, name, extra);
            self.put(out, self.config_topic("sensor", obj), &v);
        }
        let ok = self.entity(
            "overall_ok",
            "Overall OK",
            json!({"state_topic": status,
                   "value_template": "{{ 'ON' if value_json.overall_ok else 'OFF' }}"}),
        );
        self.put(out, self.config_topic("binary_sensor", "overall_ok"), &ok);
        let kit = self.entity(
            "kit_position",
            "Kit position",
            json!({"json_attributes_topic": status,
                   "json_attributes_template":
                       "{{ {'latitude': value_json.gps.latitude, 'longitude': value_json.gps.longitude} | tojson }}",
                   "source_type": "gps"}),
        );
        self.put(out, self.config_topic("device_tracker", "kit_position"), &kit);
    }

    /// Trackers for a RemoteID drone (when it reported a position) and its pilot or home
    /// point (when it reported one). RF and FPV contacts have no position.
    pub fn contact_entities(&self, c: &Contact, out: &mut BTreeMap<String, Bytes>) {
        let Contact::RemoteId(r) = c else { return };
        let f = &r.fields;
        let obj = format!("rid_{}", object_id(&r.id));
        if let (Some(lat), Some(lon)) = (f.lat, f.lon) {
            let cfg = self.entity(
                &obj,
                &format!("Drone {}", r.id),
                json!({"json_attributes_topic": self.attributes_topic(&obj), "source_type": "gps",
                       "icon": "mdi:quadcopter"}),
            );
            self.put(out, self.config_topic("device_tracker", &obj), &cfg);
            let attrs = json!({
                "latitude": lat, "longitude": lon, "gps_accuracy": 10,
                "altitude_m": f.altitude_m, "speed_m_s": f.speed_m_s, "heading_deg": f.heading_deg,
                "serial": r.id, "operator_id": f.operator_id, "model": f.model,
                "severity": r.severity, "last_seen_ts": r.last_seen_ts, "kit_id": self.kit_id,
            });
            self.put(out, self.attributes_topic(&obj), &attrs);
        }
        if let (Some(lat), Some(lon)) = (f.operator_lat, f.operator_lon) {
            let role = match f.operator_location_type {
                Some(OperatorLocationType::Takeoff) => "home",
                _ => "pilot",
            };
            let pobj = format!("{obj}_pilot");
            let cfg = self.entity(
                &pobj,
                &format!("{} of {}", if role == "home" { "Home" } else { "Pilot" }, r.id),
                json!({"json_attributes_topic": self.attributes_topic(&pobj), "source_type": "gps",
                       "icon": if role == "home" { "mdi:home-map-marker" } else { "mdi:account" }}),
            );
            self.put(out, self.config_topic("device_tracker", &pobj), &cfg);
            let attrs = json!({
                "latitude": lat, "longitude": lon, "gps_accuracy": 10, "role": role,
                "serial": r.id, "operator_id": f.operator_id, "last_seen_ts": r.last_seen_ts,
                "kit_id": self.kit_id,
            });
            self.put(out, self.attributes_topic(&pobj), &attrs);
        }
    }
}
