//! The fleet daemon's config and merge rules (the broker-level behaviour is in
//! tests/tests/uplink.rs, with a real mosquitto).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ndefender_contract::time::ManualClock;
use ndefender_fleet::config::FleetConfig;
use ndefender_fleet::state::Fleet;
use serde_json::json;
use std::sync::Arc;

type R = Result<(), Box<dyn std::error::Error>>;

#[test]
fn repository_config_equals_builtin_defaults() -> R {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/fleet.toml");
    let from_file: FleetConfig = ndefender_service::config::load(Some(&path), Vec::<(String, String)>::new())?;
    assert_eq!(from_file, FleetConfig::default());
    let text = std::fs::read_to_string(&path)?;
    let defaults = toml::Value::try_from(FleetConfig::default())?;
    let file: toml::Table = text.parse()?;
    for (section, keys) in defaults.as_table().ok_or("table")? {
        for key in keys.as_table().ok_or("section")?.keys() {
            assert!(
                file.get(section).and_then(|s| s.get(key)).is_some(),
                "config/fleet.toml lacks {section}.{key}"
            );
        }
    }
    Ok(())
}

#[test]
fn a_broker_beyond_loopback_needs_credentials() {
    let env = vec![("NDEFENDER_MQTT__URL".to_owned(), "mqtt://10.0.0.5:1883".to_owned())];
    let r = ndefender_service::config::load::<FleetConfig>(None, env);
    assert!(r.is_err_and(|e| e.to_string().contains("mqtt.username")));
}

fn rid(id: &str, ts: u64, rssi: f64, lat: f64) -> Vec<u8> {
    json!({"id": id, "type": "REMOTE_ID", "source": "remoteid", "last_seen_ts": ts, "severity": "medium",
           "lat": lat, "lon": 13.0, "rssi_dbm": rssi})
    .to_string()
    .into_bytes()
}

#[test]
fn tracks_merge_across_kits_with_seen_by() -> R {
    let schemas = ndefender_contract::schema::Schemas::shared_or_abort();
    let fleet = Fleet::new(Arc::new(ManualClock::new(1_000_000)));
    fleet.mutate(|st| {
        st.availability("kit-a", b"online");
        st.availability("kit-b", b"online");
        st.contact("kit-a", "rid:1", &rid("rid:1", 100, -60.0, 52.0));
        st.contact("kit-b", "rid:1", &rid("rid:1", 200, -70.0, 52.1));
        st.contact("kit-b", "rid:1", b"not json"); // refused, state unchanged
        st.contact("kit-a", "rid:2", &rid("rid:3", 100, -60.0, 52.0)); // id mismatch: refused
    });
    let tracks = fleet.read(|st| st.tracks());
    assert_eq!(tracks.len(), 1);
    let v = serde_json::to_value(&tracks[0])?;
    schemas.validate("Contact.json", &v)?;
    // The freshest kit's view, the newest time, every kit with its own RSSI.
    assert_eq!(v["lat"], 52.1);
    assert_eq!(v["last_seen_ts"], 200);
    assert_eq!(
        v["seen_by"],
        json!([{"kit_id": "kit-a", "last_seen_ts": 100, "rssi_dbm": -60.0},
               {"kit_id": "kit-b", "last_seen_ts": 200, "rssi_dbm": -70.0}])
    );
    assert_eq!(fleet.read(|st| st.rejected), 2);
    // kit-b clears its topic: the track stays, seen by kit-a only; kit-a goes offline: lost.
    fleet.mutate(|st| st.contact("kit-b", "rid:1", b""));
    let v = serde_json::to_value(&fleet.read(|st| st.tracks())[0])?;
    assert_eq!(v["seen_by"].as_array().map(Vec::len), Some(1));
    fleet.mutate(|st| st.availability("kit-a", b"offline"));
    assert!(fleet.read(|st| st.tracks()).is_empty());
    let kits = fleet.read(|st| st.kits());
    assert_eq!(kits.iter().filter(|k| k.online).count(), 1);
    Ok(())
}
