//! The RemoteID engine as a process in the stack: a drone decoded from a real Open Drone ID
//! capture (../shared/remoteid-samples) travels engine → JSONL → aggregator → `/api/v1/ws`,
//! and the aggregator's `remote_id/replay/*` relays reach the engine.

use ndefender_devkit::stack::Wiring;
use ndefender_tests::{get_json, post_json, Proc, Stack, StackOptions, Ws, R};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/remoteid-samples")
}

fn is_contact(v: &Value, id: &str) -> bool {
    matches!(v["type"].as_str(), Some("CONTACT_NEW" | "CONTACT_UPDATE")) && v["data"]["id"] == id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_capture_reaches_the_aggregator_ws_and_relays_reach_the_engine() -> R {
    let dir = tempfile::tempdir()?;
    let feed = dir.path().join("remoteid_engine.jsonl");
    let port = ndefender_tests::free_port()?;
    let wiring = Wiring {
        dir: dir.path().to_path_buf(),
        aggregator_port: 0,
        controller_port: 0,
        antsdr_port: 0,
        rid_path: feed.clone(),
        rf_path: dir.path().join("unused.jsonl"),
        esp32_link: dir.path().join("unused-esp32"),
    };
    let env = wiring.remoteid_engine_env(port, &samples().join("odid_wifi_bcn_sample.pcap"));
    let engine = Proc::start("ndefender-remoteid", dir.path(), port, "/api/v1/health", &[], &env).await?;
    let stack = Stack::start(StackOptions {
        drones: 0,
        esp32: false,
        aggregator_env: vec![
            ("NDEFENDER_REMOTEID__JSONL_PATH".into(), feed.display().to_string()),
            Wiring::remoteid_base_url_env(port),
        ],
        ..StackOptions::default()
    })
    .await?;
    let mut ws = Ws::connect(&stack.aggregator.ws("/api/v1/ws")).await?;
    // The capture's drone, with the fields the frames carry and the aggregator keeps (v1.1).
    let v = ws
        .wait_for(Duration::from_secs(60), |v| {
            is_contact(v, "rid:MFG1A0123456789") && v["data"]["lat"].is_number()
        })
        .await?;
    let d = &v["data"];
    assert_eq!(d["operator_id"], "GBR-OP-123ABCD");
    assert_eq!(d["model"], "Recreational");
    assert_eq!(d["transport"], "wifi_beacon");
    assert_eq!(d["mac"], "84:cc:a8:60:43:24");
    let lat = d["lat"].as_f64().ok_or("lat")?;
    assert!((lat - 45.5468).abs() < 0.01, "{lat}");
    let (s, contacts) = get_json(&stack.aggregator.url("/api/v1/contacts")).await?;
    assert_eq!(s, 200);
    let list = contacts["contacts"].as_array().cloned().unwrap_or_default();
    assert!(
        list.iter()
            .any(|c| c["id"] == "rid:MFG1A0123456789" && c["operator_lat"].is_number()),
        "{contacts}"
    );

    // Relays: the aggregator's replay routes reach the engine.
    let body = json!({"payload": {}, "confirm": false});
    let (s, r) = post_json(&stack.aggregator.url("/api/v1/remote_id/replay/stop"), &body).await?;
    assert_eq!(s, 200, "{r}");
    let (_, st) = get_json(&engine.url("/api/v1/replay/state")).await?;
    assert_eq!(st["active"], false, "{st}");
    let body = json!({"payload": {"file": "odid_bt5_lr_sample.pcapng", "speed": 0}, "confirm": false});
    let (s, r) = post_json(&stack.aggregator.url("/api/v1/remote_id/replay/start"), &body).await?;
    assert_eq!(s, 200, "{r}");
    ws.wait_for(Duration::from_secs(30), |v| is_contact(v, "rid:SSEVTFG93700070"))
        .await?;
    let body = json!({"payload": {}, "confirm": false});
    let (s, r) = post_json(&stack.aggregator.url("/api/v1/remote_id/monitor/start"), &body).await?;
    // The engine has no live source in this wiring: it says so, the relay passes it on.
    assert!(s == 503 || s == 502, "{s} {r}");
    Ok(())
}
