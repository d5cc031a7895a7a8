//! The daemon as a process: config, REST routes against the schemas, the WebSocket, the
//! simulator source end to end into the JSONL, replay commands, rotation, SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ndefender_contract::schema::Schemas;
use ndefender_remoteid::config::EngineConfig;
use ndefender_tests::{free_port, Launch, Proc, Ws, R};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ndefender-remoteid");

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/remoteid-samples")
}

/// The engine on `port` writing `<dir>/feed.jsonl`, replaying from the shipped captures; ready
/// once `/api/v1/health` answers.
async fn start(dir: &Path, port: u16, extra: &[(&str, &str)]) -> R<Proc> {
    let bind = format!("127.0.0.1:{port}");
    let feed = dir.join("feed.jsonl").display().to_string();
    let replay = samples().display().to_string();
    let base = [
        ("NDEFENDER_SERVER__BIND", bind.as_str()),
        ("NDEFENDER_OUTPUT__JSONL_PATH", feed.as_str()),
        ("NDEFENDER_REPLAY__DIR", replay.as_str()),
        ("RUST_LOG", "warn"),
    ];
    Launch::new("ndefender-remoteid", BIN, dir, port)
        .envs(&base)
        .envs(extra)
        .start()
        .await
}

/// The complete lines of the feed. The daemon may be writing while this reads: a last line
/// without its newline is not finished yet and waits for the next read.
fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn wait_for(path: &Path, what: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let l = lines(path);
        if what(&l) {
            return l;
        }
        assert!(Instant::now() < deadline, "timed out; lines: {l:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn repository_config_equals_builtin_defaults() -> R {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/remoteid.toml");
    let from_file: EngineConfig = ndefender_service::config::load(Some(&path), Vec::<(String, String)>::new())?;
    assert_eq!(from_file, EngineConfig::default());
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("--check-config")
        .output()?;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(BIN)
        .arg("--check-config")
        .env("NDEFENDER_REPLAY__SPEED", "-1")
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("replay.speed"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_to_jsonl_rest_and_ws_then_replay_and_sigterm() -> R {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let mut d = start(
        dir.path(),
        port,
        &[
            ("NDEFENDER_MONITOR__SOURCE", "sim"),
            ("NDEFENDER_MONITOR__SIM_RATE_HZ", "10"),
            ("NDEFENDER_MONITOR__SIM_DRONES", "2"),
        ],
    )
    .await?;
    let base = d.base();
    let schemas = Schemas::shared_or_abort();
    let feed = dir.path().join("feed.jsonl");
    // WebSocket first, so it sees the contact events live.
    let mut ws = Ws::open(&d.ws("/api/v1/ws")).await?;
    let l = wait_for(&feed, |l| l.iter().filter(|x| x["type"] == "CONTACT_NEW").count() >= 2).await;
    for x in &l {
        schemas.validate_envelope(x)?;
    }
    let ids: Vec<&str> = l
        .iter()
        .filter(|x| x["type"] == "CONTACT_NEW")
        .map(|x| x["data"]["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"rid:NDSIM00000") && ids.contains(&"rid:NDSIM00001"),
        "{ids:?}"
    );
    // The harness's client checks every frame against the schemas.
    ws.wait_for(Duration::from_secs(10), |v| {
        v["type"].as_str().is_some_and(|k| k.starts_with("CONTACT_"))
    })
    .await?;
    // REST reads against their schemas.
    let c = reqwest::Client::new();
    let status: Value = c.get(format!("{base}/api/v1/status")).send().await?.json().await?;
    schemas.validate("RemoteIDState.json", &status)?;
    assert_eq!(status["state"], "ok");
    let stats: Value = c.get(format!("{base}/api/v1/stats")).send().await?.json().await?;
    schemas.validate("RemoteIDStats.json", &stats)?;
    assert!(stats["frames"].as_u64().unwrap() > 2);
    let contacts: Value = c.get(format!("{base}/api/v1/contacts")).send().await?.json().await?;
    let list = contacts.as_array().unwrap();
    assert!(list.len() >= 2);
    for x in list {
        schemas.validate("Contact.json", x)?;
        assert!(x["transport"].is_string() && x["mac"].is_string() && x["operator_lat"].is_number());
    }
    // Commands: stop the monitor, replay a real capture (named inside replay.dir), refuse paths
    // outside it and unknown members.
    let post = |path: &str, body: Value| c.post(format!("{base}/api/v1/{path}")).json(&body).send();
    let r = post("monitor/stop", json!({"payload": {}, "confirm": false})).await?;
    assert_eq!(r.status(), 200);
    let ack: Value = r.json().await?;
    assert_eq!(
        (ack["command"].as_str(), ack["accepted"].as_bool()),
        (Some("monitor/stop"), Some(true))
    );
    let r = post(
        "replay/start",
        json!({"payload": {"file": "/etc/passwd"}, "confirm": false}),
    )
    .await?;
    assert_eq!(r.status(), 400);
    let r = post("replay/start", json!({"payload": {"bogus": 1}, "confirm": false})).await?;
    assert_eq!(r.status(), 400);
    let r = post(
        "replay/start",
        json!({"payload": {"file": "odid_wifi_bcn_sample.pcap", "speed": 0}, "confirm": false}),
    )
    .await?;
    assert_eq!(r.status(), 200, "{}", r.text().await?);
    let l = wait_for(&feed, |l| {
        l.iter()
            .any(|x| x["type"] == "REPLAY_STATE" && x["data"]["state"] == "done")
    })
    .await;
    assert!(l
        .iter()
        .any(|x| x["type"] == "CONTACT_NEW" && x["data"]["id"] == "rid:MFG1A0123456789"));
    let rs: Value = c
        .get(format!("{base}/api/v1/replay/state"))
        .send()
        .await?
        .json()
        .await?;
    schemas.validate("RemoteIDReplayState.json", &rs)?;
    let r = post("replay/stop", json!({})).await?;
    assert_eq!(r.status(), 200);
    let r = post("monitor/start", json!({"payload": {}, "confirm": false})).await?;
    assert_eq!(r.status(), 200);
    // SIGTERM: graceful, exit 0.
    // Graceful: exit 0 within 5 s (the harness kills it and fails the test otherwise).
    let (status, _) = d.terminate(Duration::from_secs(5)).await?;
    assert_eq!(status.code(), Some(0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wifi_source_without_a_monitor_interface_degrades_instead_of_dying() -> R {
    let dir = tempfile::tempdir()?;
    let d = start(
        dir.path(),
        free_port()?,
        &[("NDEFENDER_MONITOR__INTERFACE", "ndfnoif0")],
    )
    .await?;
    let base = d.base();
    let c = reqwest::Client::new();
    let status: Value = c.get(format!("{base}/api/v1/status")).send().await?.json().await?;
    Schemas::shared_or_abort().validate("RemoteIDState.json", &status)?;
    assert_eq!(status["state"], "offline");
    assert!(status["last_error"].as_str().unwrap().contains("ndfnoif0"), "{status}");
    let r = c
        .post(format!("{base}/api/v1/monitor/start"))
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(r.status(), 503);
    Ok(())
}

#[test]
fn jsonl_rotates_before_the_cap() -> R {
    let dir = tempfile::tempdir()?;
    let p = dir.path().join("f.jsonl");
    let mut w = ndefender_remoteid::jsonl::JsonlWriter::open(&p, 4096)?;
    let line = "x".repeat(99);
    for _ in 0..100 {
        w.write_line(&line)?;
    }
    let cur = std::fs::metadata(&p)?.len();
    let old = std::fs::metadata(dir.path().join("f.jsonl.1"))?.len();
    assert!(cur <= 4096 && old <= 4096 && old > 0, "{cur} {old}");
    assert_eq!(cur % 100, 0);
    assert_eq!(w.rotations, 2);
    Ok(())
}
