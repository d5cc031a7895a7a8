//! The ESP32 link against the devkit emulator on a real pseudo-terminal, opened
//! through tokio-serial exactly like /dev/ttyACM0; real HTTP and WS clients.

mod support;

use ndefender_aggregator::config::AggregatorConfig;
use ndefender_devkit::esp32::knobs::Knobs;
use ndefender_devkit::esp32::sim::{Esp32Sim, SimConfig, SimHandle};
use ndefender_service::Shutdown;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

struct Rig {
    base: String,
    ws: String,
    sim: Option<SimHandle>,
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn start(knobs: Knobs, tweak: impl FnOnce(&mut AggregatorConfig)) -> R<Rig> {
        let dir = tempfile::tempdir()?;
        let link = dir.path().join("ttyESP32");
        let sim = Esp32Sim::spawn(SimConfig {
            link: Some(link.clone()),
            knobs,
            ..SimConfig::default()
        })
        .await?;
        let port = free_port()?;
        let mut cfg = AggregatorConfig::default();
        cfg.server.bind = format!("127.0.0.1:{port}");
        cfg.state.dir = dir.path().join("state");
        cfg.remoteid.jsonl_path = dir.path().join("rid.jsonl");
        cfg.antsdr.jsonl_path = dir.path().join("rf.jsonl");
        cfg.system_controller.enabled = false;
        cfg.esp32.port = link.to_string_lossy().into_owned();
        cfg.esp32.probe_interval_s = 0.0;
        cfg.limits.commands_per_minute = 100_000;
        tweak(&mut cfg);
        let shutdown = Shutdown::new();
        let task = tokio::spawn(ndefender_aggregator::run(cfg, shutdown.clone()));
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while reqwest::get(format!("{base}/api/v1/health")).await.is_err() {
            if Instant::now() > deadline {
                return Err("aggregator did not start".into());
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        Ok(Rig {
            ws: format!("ws://127.0.0.1:{port}/api/v1/ws"),
            base,
            sim: Some(sim),
            shutdown,
            task: Some(task),
            _dir: dir,
        })
    }

    fn sim(&self) -> R<ndefender_devkit::esp32::sim::SimControl> {
        Ok(self.sim.as_ref().ok_or("no sim")?.control())
    }

    async fn status(&self) -> R<Value> {
        Ok(reqwest::get(format!("{}/api/v1/status", self.base))
            .await?
            .json()
            .await?)
    }

    async fn wait_connected(&self, want: bool, within: Duration) -> R<Value> {
        let deadline = Instant::now() + within;
        loop {
            let s = self.status().await?;
            if s["esp32"]["connected"] == json!(want) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(format!("esp32.connected never became {want}: {}", s["esp32"]).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn post(&self, route: &str, body: Value) -> R<(u16, reqwest::header::HeaderMap, Value)> {
        post_json(&format!("{}/api/v1/{route}", self.base), &body).await
    }

    async fn stop(mut self) -> R {
        self.shutdown.trigger();
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(5), t).await???;
        }
        if let Some(s) = self.sim.take() {
            s.shutdown().await?;
        }
        Ok(())
    }
}

fn cmd_count(sim: &ndefender_devkit::esp32::sim::SimControl, name: &str) -> usize {
    sim.commands().iter().filter(|c| c.cmd.as_deref() == Some(name)).count()
}

#[tokio::test]
async fn telemetry_fills_the_snapshot_and_the_fpv_contact() -> R {
    let rig = Rig::start(Knobs::quiet(), |_| {}).await?;
    let mut ws = Ws::connect(&rig.ws).await?;
    let s = rig.wait_connected(true, Duration::from_secs(10)).await?;
    schemas().validate("StatusSnapshot.json", &s)?;
    assert_eq!(s["vrx"]["vrx"].as_array().map(Vec::len), Some(3));
    assert_eq!(s["vrx"]["sys"]["status"], "CONNECTED");
    assert_eq!(s["video"]["selected"], 1);
    assert_eq!(s["esp32"]["capabilities"]["leds"], true);
    let tel = ws
        .wait_for(Duration::from_secs(5), |v| v["type"] == "ESP32_TELEMETRY")
        .await?;
    assert_eq!(tel["source"], "esp32");
    assert_eq!(tel["data"]["type"], "telemetry", "the line as received");
    // the default scene has a transmitter on 5800 MHz: VRX 2 is the strongest
    let s = rig.status().await?;
    let fpv: Vec<&Value> = s["contacts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == "FPV")
        .collect();
    assert_eq!(fpv.len(), 1, "exactly one FPV contact");
    assert_eq!(fpv[0]["id"], "fpv:2");
    schemas().validate("Contact.json", fpv[0])?;
    // a second telemetry gives a measured heartbeat interval
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let s = rig.status().await?;
    let iv = s["esp32"]["heartbeat"]["interval_ms"].as_u64().unwrap_or(0);
    assert!((800..2000).contains(&iv), "interval {iv}");
    rig.stop().await
}

#[tokio::test]
async fn command_routes_write_the_right_lines_and_map_acks() -> R {
    let rig = Rig::start(Knobs::quiet(), |_| {}).await?;
    rig.wait_connected(true, Duration::from_secs(10)).await?;
    let sim = rig.sim()?;
    let mut ws = Ws::connect(&rig.ws).await?;

    let (code, _, body) = rig
        .post("vrx/tune", json!({"payload":{"vrx_id":1,"freq_hz":5740000000u64}}))
        .await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["command"], "vrx/tune");
    assert_eq!(body["accepted"], true);
    assert_eq!(body["detail"], Value::Null);
    let id = body["command_id"].as_str().ok_or("id")?.to_owned();
    let got = sim
        .commands()
        .into_iter()
        .find(|c| c.id == id)
        .ok_or("emulator never got the command")?;
    assert_eq!(got.cmd.as_deref(), Some("SET_VRX_FREQ"));
    assert_eq!(got.args, Some(json!({"vrx_id":1,"freq_hz":5740000000u64})));
    let ack = ws
        .wait_for(Duration::from_secs(3), |v| v["type"] == "COMMAND_ACK")
        .await?;
    assert_eq!(ack["source"], "esp32");
    assert_eq!(
        ack["data"],
        json!({"id": id, "ok": true, "err": null, "data": {"cmd": "SET_VRX_FREQ"}})
    );

    let (code, _, body) = rig
        .post(
            "esp32/leds",
            json!({"payload":{"red":true,"yellow":false,"green":true}}),
        )
        .await?;
    assert_eq!(code, 200, "{body}");
    let id = body["command_id"].as_str().unwrap_or_default().to_owned();
    let got = sim.commands().into_iter().find(|c| c.id == id).ok_or("no SET_LEDS")?;
    assert_eq!(got.args, Some(json!({"r":1,"y":0,"g":1})));

    let (code, _, body) = rig.post("video/select", json!({"payload":{"sel":2}})).await?;
    assert_eq!(code, 200, "{body}");
    let id = body["command_id"].as_str().unwrap_or_default().to_owned();
    let got = sim
        .commands()
        .into_iter()
        .find(|c| c.id == id)
        .ok_or("no VIDEO_SELECT")?;
    assert_eq!(got.args, Some(json!({"ch":2})));

    let (code, _, body) = rig.post("scan/start", json!({})).await?;
    assert_eq!(code, 200, "{body}");
    let id = body["command_id"].as_str().unwrap_or_default().to_owned();
    let got = sim.commands().into_iter().find(|c| c.id == id).ok_or("no START_SCAN")?;
    assert_eq!(
        got.args,
        Some(json!({"dwell_ms":200,"step_hz":2000000,"start_hz":5645000000u64,"stop_hz":5865000000u64}))
    );
    let s = rig.status().await?;
    assert_eq!(s["vrx"]["scan_state"], "scanning");
    assert_eq!(s["fpv"]["scan_state"], "scanning");

    // a manual tune while scanning stops the scan first, so the tune sticks
    let before = cmd_count(&sim, "STOP_SCAN");
    let (code, _, _) = rig
        .post("esp32/vrx/tune", json!({"payload":{"vrx_id":3,"freq_mhz":5865}}))
        .await?;
    assert_eq!(code, 200);
    assert_eq!(cmd_count(&sim, "STOP_SCAN"), before + 1);
    assert_eq!(rig.status().await?["vrx"]["scan_state"], "manual");

    // firmware rejection: lock a receiver with no best value
    let (code, _, body) = rig.post("scan/lock", json!({"payload":{"vrx_id":1}})).await?;
    assert_eq!((code, body), (409, json!({"detail":"no_best"})));
    let ack = ws
        .wait_for(Duration::from_secs(3), |v| {
            v["type"] == "COMMAND_ACK" && v["data"]["ok"] == false
        })
        .await?;
    assert_eq!(ack["data"]["err"], "no_best");
    rig.stop().await
}

#[tokio::test]
async fn refusals_touch_nothing_and_are_acked() -> R {
    let rig = Rig::start(Knobs::quiet(), |_| {}).await?;
    rig.wait_connected(true, Duration::from_secs(10)).await?;
    let sim = rig.sim()?;
    let mut ws = Ws::connect(&rig.ws).await?;
    let before = sim.received_lines().len();

    let (code, _, body) = rig
        .post("vrx/tune", json!({"payload":{"vrx_id":1,"freq_hz":7e9}}))
        .await?;
    assert_eq!(
        (code, body),
        (400, json!({"detail":"invalid_payload","field":"freq_hz"}))
    );
    let ack = ws
        .wait_for(Duration::from_secs(3), |v| v["type"] == "COMMAND_ACK")
        .await?;
    assert_eq!(ack["data"]["ok"], false);
    assert_eq!(ack["data"]["err"], "invalid_payload");
    assert_eq!(ack["data"]["data"]["cmd"], "SET_VRX_FREQ");

    let (code, _, body) = rig.post("esp32/buzzer", json!({})).await?;
    assert_eq!((code, body), (409, json!({"detail":"not_supported"})));
    let ack = ws
        .wait_for(Duration::from_secs(3), |v| v["type"] == "COMMAND_ACK")
        .await?;
    assert_eq!(ack["data"]["err"], "not_supported");
    assert_eq!(ack["data"]["data"]["cmd"], "SET_BUZZER");
    let (code, _, _) = rig.post("esp32/config", json!({})).await?;
    assert_eq!(code, 409);

    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/esp32/buttons/simulate", rig.base))
        .header("X-Forwarded-For", "192.0.2.7")
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(r.json::<Value>().await?, json!({"detail":"local_only"}));

    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/video/select", rig.base))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<Value>().await?, json!({"detail":"invalid_json"}));

    // nothing reached the wire (telemetry is device→host only)
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sim.received_lines().len(), before, "refused commands were written");
    rig.stop().await
}

#[tokio::test]
async fn dropped_ack_retries_with_the_same_id_and_all_dropped_times_out() -> R {
    let rig = Rig::start(Knobs::quiet(), |_| {}).await?;
    rig.wait_connected(true, Duration::from_secs(10)).await?;
    let sim = rig.sim()?;
    let mut ws = Ws::connect(&rig.ws).await?;

    sim.drop_next_acks(1).await?;
    let (code, _, body) = rig.post("video/select", json!({"payload":{"ch":2}})).await?;
    assert_eq!(code, 200, "{body}");
    let id = body["command_id"].as_str().unwrap_or_default().to_owned();
    let copies: Vec<_> = sim.commands().into_iter().filter(|c| c.id == id).collect();
    assert_eq!(copies.len(), 2, "one retry");
    assert_eq!(copies[0].raw, copies[1].raw, "the retry is the identical line");

    sim.drop_next_acks(2).await?;
    let t = Instant::now();
    let (code, _, body) = rig.post("video/select", json!({"payload":{"ch":3}})).await?;
    let took = t.elapsed();
    assert_eq!((code, body), (504, json!({"detail":"esp32_timeout"})));
    assert!(
        took >= Duration::from_millis(3500) && took < Duration::from_secs(8),
        "{took:?}"
    );
    let ack = ws
        .wait_for(Duration::from_secs(3), |v| {
            v["type"] == "COMMAND_ACK" && v["data"]["ok"] == false
        })
        .await?;
    assert_eq!(ack["data"]["err"], "esp32_timeout");
    rig.stop().await
}

#[tokio::test]
async fn late_ack_is_published_and_matched_to_nothing_harmful() -> R {
    let rig = Rig::start(Knobs::quiet(), |c| c.esp32.command_retries = 0).await?;
    rig.wait_connected(true, Duration::from_secs(10)).await?;
    let sim = rig.sim()?;
    let mut ws = Ws::connect(&rig.ws).await?;
    sim.set_ack_delay(Duration::from_millis(2600)).await?;
    let (code, _, _) = rig.post("video/select", json!({"payload":{"ch":2}})).await?;
    assert_eq!(code, 504);
    let host = ws
        .wait_for(Duration::from_secs(3), |v| {
            v["type"] == "COMMAND_ACK" && v["data"]["err"] == "esp32_timeout"
        })
        .await?;
    let id = host["data"]["id"].clone();
    let late = ws
        .wait_for(Duration::from_secs(5), |v| {
            v["type"] == "COMMAND_ACK" && v["data"]["ok"] == true
        })
        .await?;
    assert_eq!(late["data"]["id"], id, "the real outcome reaches clients");
    // the next command is not confused by the late ack
    sim.set_ack_delay(Duration::ZERO).await?;
    let (code, _, _) = rig.post("video/select", json!({"payload":{"ch":1}})).await?;
    assert_eq!(code, 200);
    rig.stop().await
}

#[tokio::test]
async fn garbage_and_overlong_lines_lose_no_telemetry() -> R {
    let mut knobs = Knobs::quiet();
    knobs.garbage_per_min = 600.0;
    knobs.overlong_every = 1;
    knobs.overlong_len = 10 * 1024;
    knobs.boot_noise = true;
    let rig = Rig::start(knobs, |_| {}).await?;
    rig.wait_connected(true, Duration::from_secs(10)).await?;
    let mut ws = Ws::connect(&rig.ws).await?;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let t = ws
            .wait_for(Duration::from_secs(4), |v| v["type"] == "ESP32_TELEMETRY")
            .await?;
        seen.push(t["data"]["timestamp_ms"].as_u64().unwrap_or(0));
    }
    assert!(seen.windows(2).all(|w| w[1] > w[0]), "{seen:?}");
    let (code, _, _) = rig.post("video/select", json!({"payload":{"ch":2}})).await?;
    assert_eq!(code, 200, "commands still work amid garbage");
    rig.stop().await
}

#[tokio::test]
async fn unplug_fails_fast_then_replug_recovers() -> R {
    let rig = Rig::start(Knobs::quiet(), |_| {}).await?;
    let s = rig.wait_connected(true, Duration::from_secs(10)).await?;
    assert!(s["contacts"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "FPV")));
    let sim = rig.sim()?;
    let mut ws = Ws::connect(&rig.ws).await?;
    ws.wait_for(Duration::from_secs(3), |v| v["type"] == "SYSTEM_UPDATE")
        .await?;

    // a command pending when the port closes fails at once
    sim.set_ack_delay(Duration::from_millis(1500)).await?;
    let pending = {
        let base = rig.base.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let r = reqwest::Client::new()
                .post(format!("{base}/api/v1/video/select"))
                .json(&json!({"payload":{"ch":2}}))
                .send()
                .await;
            (t, r)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let unplugged = Instant::now();
    sim.unplug().await?;
    let (_, r) = pending.await?;
    let r = r?;
    assert_eq!(r.status().as_u16(), 409);
    assert_eq!(r.json::<Value>().await?, json!({"detail":"esp32_not_connected"}));
    assert!(
        unplugged.elapsed() < Duration::from_millis(1200),
        "failed at once, not at the ack timeout"
    );

    // connected:false is pushed, with the FPV contact gone
    let upd = ws
        .wait_for(Duration::from_secs(4), |v| {
            v["type"] == "SYSTEM_UPDATE" && v["data"]["esp32"]["connected"] == false
        })
        .await?;
    assert!(unplugged.elapsed() < Duration::from_millis(3500));
    assert_eq!(upd["data"]["overall_ok"], false);
    assert!(upd["data"]["contacts"]
        .as_array()
        .is_some_and(|c| c.iter().all(|c| c["type"] != "FPV")));
    assert_eq!(upd["data"]["vrx"]["sys"]["status"], "DISCONNECTED");
    schemas().validate("StatusSnapshot.json", &upd["data"])?;

    let (code, _, body) = rig.post("video/select", json!({"payload":{"ch":2}})).await?;
    assert_eq!((code, body), (409, json!({"detail":"esp32_not_connected"})));

    sim.set_ack_delay(Duration::ZERO).await?;
    sim.replug().await?;
    rig.wait_connected(true, Duration::from_secs(15)).await?;
    let (code, _, _) = rig.post("video/select", json!({"payload":{"ch":1}})).await?;
    assert_eq!(code, 200);
    rig.stop().await
}

#[tokio::test]
async fn eighteen_concurrent_commands_one_in_flight_sixteen_queued_one_busy() -> R {
    // The claim needs the first command on the wire (in flight) before the other 17 arrive,
    // and all of them in before its ack frees a slot: the test waits until the board has
    // the first line, the ack is held for 600 ms, and the timeouts are widened so the
    // 17 × 600 ms of serial acks cannot expire a queued command.
    let rig = Rig::start(Knobs::quiet(), |c| {
        c.esp32.command_timeout_s = 5.0;
        c.esp32.queue_timeout_s = 60.0;
        c.proxy.command_timeout_s = 60.0;
    })
    .await?;
    rig.wait_connected(true, Duration::from_secs(10)).await?;
    let sim = rig.sim()?;
    sim.set_ack_delay(Duration::from_millis(600)).await?;
    let mut ws = Ws::connect(&rig.ws).await?;
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..18 {
        let c = client.clone();
        let url = format!("{}/api/v1/video/select", rig.base);
        tasks.push(tokio::spawn(async move {
            let r = c.post(url).json(&json!({"payload":{"ch": 1 + i % 3}})).send().await;
            match r {
                Ok(r) => (r.status().as_u16(), r.headers().get("retry-after").is_some()),
                Err(_) => (0, false),
            }
        }));
        if i == 0 {
            let first = rig.sim.as_ref().ok_or("no sim")?;
            let on_wire = first
                .wait_for_command(|c| c.cmd.as_deref() == Some("VIDEO_SELECT"), Duration::from_secs(10))
                .await;
            assert!(on_wire.is_some(), "the first command reaches the board");
        }
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await?);
    }
    let ok = codes.iter().filter(|(c, _)| *c == 200).count();
    let busy: Vec<_> = codes.iter().filter(|(c, _)| *c == 429).collect();
    assert_eq!((ok, busy.len()), (17, 1), "{codes:?}");
    assert!(busy[0].1, "429 carries Retry-After");
    // exactly 17 acks, none for the 429
    let mut acks = 0;
    while let Some(v) = ws.next(Duration::from_millis(800)).await? {
        if v["type"] == "COMMAND_ACK" {
            acks += 1;
        }
    }
    assert_eq!(acks, 17);
    rig.stop().await
}

#[tokio::test]
async fn a_thousand_commands_in_a_row_no_lost_or_mismatched_ack() -> R {
    let rig = Rig::start(Knobs::quiet(), |_| {}).await?;
    rig.wait_connected(true, Duration::from_secs(10)).await?;
    let mut ws = Ws::connect(&rig.ws).await?;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..1000u32 {
        let r = client
            .post(format!("{}/api/v1/video/select", rig.base))
            .json(&json!({"payload":{"ch": 1 + i % 3}}))
            .send()
            .await?;
        assert_eq!(r.status().as_u16(), 200, "command {i}");
        let v: Value = r.json().await?;
        ids.push(v["command_id"].as_str().unwrap_or_default().to_owned());
    }
    let mut acked = Vec::new();
    while acked.len() < ids.len() {
        match ws.next(Duration::from_secs(3)).await? {
            Some(v) if v["type"] == "COMMAND_ACK" => {
                assert_eq!(v["data"]["ok"], true);
                acked.push(v["data"]["id"].as_str().unwrap_or_default().to_owned());
            }
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(acked, ids, "every ack, in order, matching its command");
    let m = reqwest::get(format!("{}/metrics", rig.base)).await?.text().await?;
    assert!(
        m.contains("esp32_commands_total{cmd=\"VIDEO_SELECT\",outcome=\"ok\"} 1000\n"),
        "{m}"
    );
    assert!(m.contains("esp32_ack_rtt_seconds_count 1000\n"), "{m}");
    assert!(
        m.contains("ndefender_http_requests_total{route=\"/api/v1/video/select\",status=\"200\"} 1000\n"),
        "{m}"
    );
    rig.stop().await
}

#[tokio::test]
async fn command_rate_limit_is_per_client_with_retry_after() -> R {
    let rig = Rig::start(Knobs::quiet(), |c| c.limits.commands_per_minute = 10).await?;
    rig.wait_connected(true, Duration::from_secs(10)).await?;
    for i in 0..10 {
        let (code, _, _) = rig.post("video/select", json!({"payload":{"ch":1}})).await?;
        assert_eq!(code, 200, "command {i}");
    }
    // an invalid request is refused before the limiter and costs nothing, but
    let (code, h, body) = rig.post("video/select", json!({"payload":{"ch":1}})).await?;
    assert_eq!((code, body), (429, json!({"detail":"rate_limited"})));
    let ra: u64 = h
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=60).contains(&ra), "Retry-After {ra}");
    // another client address (through the trusted local proxy) has its own bucket
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/video/select", rig.base))
        .header("X-Forwarded-For", "192.0.2.9")
        .json(&json!({"payload":{"ch":2}}))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 200);
    rig.stop().await
}
