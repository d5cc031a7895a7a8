//! `ndefender-remoteid replay` and `decode` on the shipped real captures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ndefender_contract::schema::Schemas;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ndefender-remoteid");

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/remoteid-samples")
        .join(name)
}

fn replay(name: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("feed.jsonl");
    let r = Command::new(BIN)
        .args(["replay"])
        .arg(sample(name))
        .arg("--jsonl")
        .arg(&out)
        .args(["--speed", "0"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let schemas = Schemas::shared_or_abort();
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for l in &lines {
        schemas.validate_envelope(l).unwrap();
        ndefender_contract::schema::no_nulls_or_empty_objects(l).unwrap();
        assert_eq!(l["source"], "remoteid");
    }
    lines
}

fn kinds(lines: &[Value]) -> Vec<&str> {
    lines.iter().map(|l| l["type"].as_str().unwrap()).collect()
}

#[test]
fn replay_of_the_wifi_capture_writes_the_drone() {
    let lines = replay("odid_wifi_bcn_sample.pcap");
    let k = kinds(&lines);
    assert_eq!(k.first(), Some(&"REPLAY_STATE"));
    assert_eq!(lines[0]["data"]["state"], "start");
    assert_eq!(k.last(), Some(&"REPLAY_STATE"));
    assert_eq!(lines.last().unwrap()["data"]["state"], "done");
    let news: Vec<&Value> = lines.iter().filter(|l| l["type"] == "CONTACT_NEW").collect();
    assert_eq!(news.len(), 1, "{k:?}");
    let d = &news[0]["data"];
    assert_eq!(d["id"], "rid:MFG1A0123456789");
    assert_eq!(d["operator_id"], "GBR-OP-123ABCD");
    assert_eq!(d["model"], "Recreational");
    assert_eq!(d["transport"], "wifi_beacon");
    assert_eq!(d["mac"], "84:cc:a8:60:43:24");
    assert_eq!(d["operator_location_type"], "takeoff");
    let (lat, lon) = (d["lat"].as_f64().unwrap(), d["lon"].as_f64().unwrap());
    assert!((lat - 45.5468).abs() < 0.01 && (lon + 122.9675).abs() < 0.01);
    // NEW at the second frame: its time is the capture's second frame time (2021).
    assert_eq!(news[0]["timestamp_ms"], 1_621_633_932_362u64);
    // Positions move between updates; each contact line carries the frame time.
    let updates: Vec<&Value> = lines.iter().filter(|l| l["type"] == "CONTACT_UPDATE").collect();
    assert!(updates.len() >= 10, "{}", updates.len());
    let pos: BTreeSet<String> = updates
        .iter()
        .map(|u| format!("{}{}", u["data"]["lat"], u["data"]["lon"]))
        .collect();
    assert!(pos.len() > 5);
    // End of input: LOST for the contact, then done.
    let lost: Vec<&Value> = lines.iter().filter(|l| l["type"] == "CONTACT_LOST").collect();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0]["data"]["id"], "rid:MFG1A0123456789");
    assert!(k.contains(&"TELEMETRY_UPDATE"));
    let t = lines.iter().find(|l| l["type"] == "TELEMETRY_UPDATE").unwrap();
    assert_eq!(
        (t["data"]["state"].as_str(), t["data"]["mode"].as_str()),
        (Some("replay"), Some("replay"))
    );
}

#[test]
fn replay_of_the_bt5_capture_invents_no_contact_from_corrupted_frames() {
    let lines = replay("odid_bt5_lr_sample.pcapng");
    let ids: BTreeSet<&str> = lines
        .iter()
        .filter(|l| l["type"].as_str().unwrap().starts_with("CONTACT_"))
        .map(|l| l["data"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from(["rid:SSEVTFG93700070"]));
    assert_eq!(lines.iter().filter(|l| l["type"] == "CONTACT_NEW").count(), 1);
    // Fields are sticky: the last update carries everything the frames said.
    let last = lines.iter().rfind(|l| l["type"] == "CONTACT_UPDATE").unwrap();
    let d = &last["data"];
    assert_eq!(d["operator_id"], "FIN87astrdge12kxyz8");
    assert_eq!(d["model"], "Drone ID demo");
    assert_eq!(d["transport"], "ble_long_range");
    assert_eq!(d["ua_type"], "helicopter_or_multirotor");
    assert!(
        d.get("lat").is_none() && d.get("lon").is_none(),
        "no fix in this capture: {d}"
    );
}

#[test]
fn decode_prints_one_object_per_message() {
    let r = Command::new(BIN)
        .arg("decode")
        .arg(sample("odid_wifi_bcn_sample.pcap"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0));
    let text = String::from_utf8(r.stdout).unwrap();
    let objs: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(objs.len(), 21 * 5);
    let kinds: BTreeSet<&str> = objs.iter().map(|o| o["message"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["basic_id", "location", "operator_id", "self_id", "system"])
    );
    // Usage errors exit 2; a missing file exits 1.
    assert_eq!(Command::new(BIN).arg("decode").status().unwrap().code(), Some(2));
    assert_eq!(
        Command::new(BIN)
            .args(["decode", "/nonexistent.pcap"])
            .status()
            .unwrap()
            .code(),
        Some(1)
    );
    assert_eq!(
        Command::new(BIN).args(["replay", "x.pcap"]).status().unwrap().code(),
        Some(2)
    );
}
