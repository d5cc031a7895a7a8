//! The aggregator following its upstreams: a scripted system controller and a
//! scripted scanner served on loopback (real HTTP and WebSocket), the aggregator
//! in process with real clients. The real daemons are exercised end to end in tests/.

mod support;

use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path as AxPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use ndefender_aggregator::config::AggregatorConfig;
use ndefender_service::Shutdown;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use tokio::sync::broadcast;

/// A scripted upstream: `/api/v1/status`, `/api/v1/device`, a WS that relays pushed
/// envelopes, and POST routes answering with a canned status and body.
#[derive(Clone)]
struct Fake {
    status: Arc<Mutex<Value>>,
    events: broadcast::Sender<String>,
    answers: Arc<Mutex<Vec<(String, u16, Value)>>>,
    posts: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Fake {
    fn new() -> Self {
        let (events, _) = broadcast::channel(256);
        Self {
            status: Arc::new(Mutex::new(json!({}))),
            events,
            answers: Arc::new(Mutex::new(Vec::new())),
            posts: Arc::new(Mutex::new(Vec::new())),
        }
    }
    fn answer(&self, path: &str, status: u16, body: Value) {
        if let Ok(mut a) = self.answers.lock() {
            a.push((path.to_owned(), status, body));
        }
    }
    fn push(&self, kind: &str, data: Value) {
        let env = json!({"type": kind, "timestamp_ms": now_ms(), "source": "system", "data": data});
        let _ = self.events.send(env.to_string());
    }
    fn posts(&self, path: &str) -> Vec<Value> {
        self.posts
            .lock()
            .map(|p| p.iter().filter(|(q, _)| q == path).map(|(_, b)| b.clone()).collect())
            .unwrap_or_default()
    }
}

async fn fake_ws(State(f): State<Fake>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |mut socket: WebSocket| async move {
        let mut rx = f.events.subscribe();
        let hello = json!({"type":"LOG_EVENT","timestamp_ms":now_ms(),"source":"system","data":{"message":"HELLO"}});
        if socket.send(AxMessage::Text(hello.to_string().into())).await.is_err() {
            return;
        }
        while let Ok(text) = rx.recv().await {
            if socket.send(AxMessage::Text(text.into())).await.is_err() {
                return;
            }
        }
    })
}

async fn fake_post(State(f): State<Fake>, AxPath(path): AxPath<String>, body: String) -> Response {
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if let Ok(mut p) = f.posts.lock() {
        p.push((path.clone(), v));
    }
    let ans = f
        .answers
        .lock()
        .ok()
        .and_then(|a| a.iter().rev().find(|(p, _, _)| *p == path).cloned());
    match ans {
        Some((_, s, b)) => (StatusCode::from_u16(s).unwrap_or(StatusCode::OK), Json(b)).into_response(),
        None => (
            StatusCode::OK,
            Json(json!({"command": path, "command_id": "11111111-2222-4333-8444-555555555555", "accepted": true, "detail": null, "timestamp_ms": now_ms()})),
        )
            .into_response(),
    }
}

async fn serve_fake(f: Fake) -> R<(String, tokio::task::JoinHandle<()>)> {
    let app = Router::new()
        .route("/api/v1/ws", any(fake_ws))
        .route(
            "/api/v1/status",
            get(|State(f): State<Fake>| async move { Json(f.status.lock().map(|s| s.clone()).unwrap_or_default()) }),
        )
        .route(
            "/api/v1/device",
            get(|| async { Json(json!({"timestamp_ms": now_ms(), "connected": true, "uri": "synthetic:"})) }),
        )
        .route("/api/v1/{*path}", post(fake_post))
        .with_state(f);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let h = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    Ok((format!("http://{addr}"), h))
}

struct Agg {
    base: String,
    ws: String,
    shutdown: Shutdown,
    _dir: tempfile::TempDir,
}

impl Agg {
    async fn start(controller: &str, antsdr: &str, tweak: impl FnOnce(&mut AggregatorConfig)) -> R<Agg> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut cfg = AggregatorConfig::default();
        cfg.server.bind = format!("127.0.0.1:{port}");
        cfg.state.dir = dir.path().join("state");
        cfg.remoteid.jsonl_path = dir.path().join("rid.jsonl");
        cfg.antsdr.jsonl_path = dir.path().join("rf.jsonl");
        cfg.esp32.enabled = false;
        cfg.system_controller.base_url = controller.to_owned();
        cfg.antsdr.base_url = antsdr.to_owned();
        cfg.antsdr.poll_interval_s = 0.5;
        tweak(&mut cfg);
        let shutdown = Shutdown::new();
        tokio::spawn(ndefender_aggregator::run(cfg, shutdown.clone()));
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while reqwest::get(format!("{base}/api/v1/health")).await.is_err() {
            if Instant::now() > deadline {
                return Err("aggregator did not start".into());
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        Ok(Agg {
            ws: format!("ws://127.0.0.1:{port}/api/v1/ws"),
            base,
            shutdown,
            _dir: dir,
        })
    }
    async fn status(&self) -> R<Value> {
        Ok(reqwest::get(format!("{}/api/v1/status", self.base))
            .await?
            .json()
            .await?)
    }
    async fn wait_status(&self, what: &str, pred: impl Fn(&Value) -> bool) -> R<Value> {
        // Generous: reconnect backoff can reach 12 s (10 s + 20 % jitter).
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.status().await?;
            if pred(&s) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(format!("{what} never happened: {s}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    async fn post(&self, route: &str, body: Value) -> R<(u16, reqwest::header::HeaderMap, Value)> {
        post_json(&format!("{}/api/v1/{route}", self.base), &body).await
    }
}

impl Drop for Agg {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

fn controller_status() -> Value {
    json!({
        "timestamp_ms": now_ms(),
        "system": {"timestamp_ms": now_ms(), "status": "ok", "uptime_s": 100, "cpu": {"temp_c": 45.0, "load1": 0.4}, "unknown_key": 1},
        "ups": {"timestamp_ms": now_ms(), "pack_voltage_v": 16.4, "soc_percent": 90, "state": "discharging", "extra": null},
        "services": [{"name": "ndefender-remoteid-engine", "active_state": "active", "sub_state": "running", "restart_count": 0}],
        "network": {"connected": true, "ssid": "KitNet", "wifi": {"timestamp_ms": now_ms(), "enabled": true}, "bluetooth": {"timestamp_ms": now_ms(), "enabled": false}},
        "gps": {"timestamp_ms": now_ms(), "fix": "FIX_3D", "latitude": 47.0, "longitude": 8.0, "hdop": 0.9},
        "audio": {"timestamp_ms": now_ms(), "volume_percent": 60, "muted": false}
    })
}

/// A fake controller reporting [`controller_status`] and an aggregator following it,
/// once the aggregator shows the controller up.
async fn with_controller_up() -> R<(Fake, Agg, tokio::task::JoinHandle<()>)> {
    let fake = Fake::new();
    if let Ok(mut s) = fake.status.lock() {
        *s = controller_status();
    }
    let (ctl, h) = serve_fake(fake.clone()).await?;
    let agg = Agg::start(&ctl, "http://127.0.0.1:1", |_| {}).await?;
    agg.wait_status("controller up", |s| s["system"]["status"] == "ok")
        .await?;
    Ok((fake, agg, h))
}

#[tokio::test]
async fn sections_fill_from_status_and_events_and_forward_acks() -> R {
    let fake = Fake::new();
    if let Ok(mut s) = fake.status.lock() {
        *s = controller_status();
    }
    let (ctl, _h) = serve_fake(fake.clone()).await?;
    let agg = Agg::start(&ctl, "http://127.0.0.1:1", |_| {}).await?;
    let s = agg
        .wait_status("controller sections", |s| s["system"]["status"] == "ok")
        .await?;
    schemas().validate("StatusSnapshot.json", &s)?;
    ndefender_contract::schema::no_nulls_or_empty_objects(&s)?;
    assert_eq!(s["power"]["status"], "ok", "status inferred from the metrics");
    assert_eq!(s["power"]["state"], "DISCHARGING");
    assert_eq!(s["audio"]["status"], "ok");
    assert_eq!(s["gps"]["fix"], "FIX_3D");
    assert_eq!(s["services"][0]["name"], "ndefender-remoteid-engine");
    assert!(s["system"].get("unknown_key").is_none(), "unknown keys dropped");

    let mut ws = Ws::connect(&agg.ws).await?;
    ws.wait_for(Duration::from_secs(5), |v| v["type"] == "SYSTEM_UPDATE")
        .await?;
    // a power change arrives as SYSTEM_UPDATE within ~1 s
    let t = Instant::now();
    fake.push(
        "UPS_UPDATE",
        json!({"timestamp_ms": now_ms(), "status":"degraded", "soc_percent": 12, "state":"DISCHARGING"}),
    );
    let upd = ws
        .wait_for(Duration::from_secs(3), |v| {
            v["type"] == "SYSTEM_UPDATE" && v["data"]["power"]["soc_percent"] == 12
        })
        .await?;
    assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());
    assert_eq!(upd["data"]["overall_ok"], false);
    // the controller's own section events are consumed, never re-broadcast
    fake.push(
        "COMMAND_ACK",
        json!({"command":"services/restart","name":"gpsd","ok":true,"reason":null}),
    );
    let ack = ws
        .wait_for(Duration::from_secs(3), |v| v["type"] == "COMMAND_ACK")
        .await?;
    assert_eq!(ack["source"], "system");
    assert_eq!(
        ack["data"],
        json!({"command":"services/restart","name":"gpsd","ok":true,"reason":null})
    );
    let mut again = 0;
    while let Some(v) = ws.next(Duration::from_millis(700)).await? {
        assert!(
            !["UPS_UPDATE", "SYSTEM_STATUS", "LOG_EVENT"].contains(&v["type"].as_str().unwrap_or(""))
                || v["source"] == "aggregator"
        );
        if v["type"] == "COMMAND_ACK" {
            again += 1;
        }
    }
    assert_eq!(again, 0, "forwarded exactly once");
    Ok(())
}

#[tokio::test]
async fn relayed_commands_gates_and_ack_ownership() -> R {
    let (fake, agg, _h) = with_controller_up().await?;
    let mut ws = Ws::connect(&agg.ws).await?;

    // accepted by the controller: CommandResult with the aggregator's route name, body forwarded
    let (code, _, body) = agg
        .post("audio/volume", json!({"payload":{"volume_percent":40}}))
        .await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["command"], "audio/volume");
    assert_eq!(body["command_id"], "11111111-2222-4333-8444-555555555555");
    assert_eq!(
        fake.posts("audio/volume"),
        vec![json!({"payload":{"volume_percent":40},"confirm":false})]
    );
    // the controller owns that ack (the aggregator publishes none of its own)
    assert!(ws
        .wait_for(Duration::from_millis(800), |v| v["type"] == "COMMAND_ACK")
        .await
        .is_err());

    // upstream refusal passes through with its code
    fake.answer("services/sshd/restart", 403, json!({"detail":"unit_not_allowed"}));
    let (code, _, body) = agg.post("services/sshd/restart", json!({"confirm":true})).await?;
    assert_eq!((code, body), (403, json!({"detail":"unit_not_allowed"})));

    // aggregator gates: confirm, then unsafe; each one ack, no token spent
    let (code, _, body) = agg.post("system/reboot", json!({})).await?;
    assert_eq!((code, body), (400, json!({"detail":"confirm_required"})));
    let ack = ws
        .wait_for(Duration::from_secs(2), |v| v["type"] == "COMMAND_ACK")
        .await?;
    // Contract v1.1: a refused request has no CommandResult; its ack still carries an id.
    let id = ack["data"]["command_id"].as_str().unwrap_or("").to_owned();
    assert_eq!(id.len(), 36, "{ack}");
    assert_eq!(
        ack["data"],
        json!({"command":"system/reboot","ok":false,"reason":"confirm_required","command_id":id})
    );
    let (code, _, body) = agg.post("system/reboot", json!({"confirm":true})).await?;
    assert_eq!((code, body), (403, json!({"detail":"unsafe_disabled"})));
    let ack = ws
        .wait_for(Duration::from_secs(2), |v| v["type"] == "COMMAND_ACK")
        .await?;
    assert_eq!(ack["data"]["reason"], "unsafe_disabled");
    assert!(fake.posts("system/reboot").is_empty(), "refused at the aggregator");
    let (code, _, body) = agg.post("services/bad name/restart", json!({"confirm":true})).await?;
    assert_eq!((code, body["detail"].clone()), (400, json!("invalid_payload")));
    Ok(())
}

#[tokio::test]
async fn separate_buckets_for_commands_and_dangerous() -> R {
    let fake = Fake::new();
    let (ctl, _h) = serve_fake(fake.clone()).await?;
    let agg = Agg::start(&ctl, "http://127.0.0.1:1", |c| c.safety.allow_unsafe = true).await?;
    for i in 0..10 {
        let (code, _, _) = agg.post("audio/mute", json!({"payload":{"muted":true}})).await?;
        assert_eq!(code, 200, "command {i}");
    }
    let (code, h, body) = agg.post("audio/mute", json!({"payload":{"muted":false}})).await?;
    assert_eq!((code, body), (429, json!({"detail":"rate_limited"})));
    assert!(h.get("retry-after").is_some());
    // refused dangerous requests cost nothing; a confirmed reboot still passes
    let (code, _, _) = agg.post("system/reboot", json!({})).await?;
    assert_eq!(code, 400);
    let (code, _, _) = agg.post("system/reboot", json!({"confirm":true})).await?;
    assert_eq!(code, 200);
    let (code, _, _) = agg.post("gps/restart", json!({"confirm":true})).await?;
    assert_eq!(code, 200);
    let (code, _, body) = agg.post("system/shutdown", json!({"confirm":true})).await?;
    assert_eq!(
        (code, body),
        (429, json!({"detail":"rate_limited"})),
        "3rd dangerous within 60 s"
    );
    Ok(())
}

#[tokio::test]
async fn controller_down_then_back() -> R {
    // nothing listens yet on the controller's port
    let port = free_port()?;
    let ctl = format!("http://127.0.0.1:{port}");
    let agg = Agg::start(&ctl, "http://127.0.0.1:1", |c| {
        c.system_controller.silence_timeout_s = 2.0
    })
    .await?;
    let s = agg
        .wait_status("sections offline", |s| {
            s["system"]["last_error"] == "system_controller_unavailable"
        })
        .await?;
    schemas().validate("StatusSnapshot.json", &s)?;
    assert_eq!(s["power"]["status"], "offline");
    assert_eq!(s["audio"]["status"], "offline");
    assert_eq!(s["gps"]["fix"], "NO_FIX");
    let (code, _, body) = agg.post("audio/mute", json!({"payload":{"muted":true}})).await?;
    assert_eq!((code, body), (502, json!({"detail":"system_controller_unavailable"})));
    let r = reqwest::get(format!("{}/api/v1/network/wifi/scan", agg.base)).await?;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()
            .get("x-ndefender-upstream-error")
            .and_then(|v| v.to_str().ok()),
        Some("system_controller_unavailable")
    );
    let v: Value = r.json().await?;
    schemas().validate("WifiScanResult.json", &v)?;

    // the controller comes up on that port: recovered without a restart
    let fake = Fake::new();
    if let Ok(mut s) = fake.status.lock() {
        *s = controller_status();
    }
    let app_fake = fake.clone();
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let app = Router::new()
        .route("/api/v1/ws", any(fake_ws))
        .route(
            "/api/v1/status",
            get(|State(f): State<Fake>| async move { Json(f.status.lock().map(|s| s.clone()).unwrap_or_default()) }),
        )
        .with_state(app_fake);
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    agg.wait_status("recovered", |s| s["system"]["status"] == "ok").await?;
    Ok(())
}

#[tokio::test]
async fn antsdr_routes_poll_and_confirm() -> R {
    let fake = Fake::new();
    let (scanner, _h) = serve_fake(fake.clone()).await?;
    let agg = Agg::start("http://127.0.0.1:1", &scanner, |_| {}).await?;
    let s = agg
        .wait_status("device polled", |s| s["antsdr"]["connected"] == true)
        .await?;
    assert_eq!(s["antsdr"]["uri"], "synthetic:");
    let mut ws = Ws::connect(&agg.ws).await?;
    let (code, _, body) = agg
        .post("antsdr/sweep/start", json!({"payload":{"plan":"video_5g8"}}))
        .await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["command"], "antsdr/sweep/start");
    assert_eq!(
        fake.posts("sweep/start"),
        vec![json!({"payload":{"plan":"video_5g8"},"confirm":false})]
    );
    let ack = ws
        .wait_for(Duration::from_secs(2), |v| v["type"] == "COMMAND_ACK")
        .await?;
    // Contract v1.1: the ack carries the CommandResult's id.
    assert_eq!(
        ack["data"],
        json!({"command":"antsdr/sweep/start","ok":true,"reason":null,"command_id":body["command_id"]})
    );
    // scanner error body {"error":{"code"}} maps to {"detail"}
    fake.answer(
        "gain/set",
        400,
        json!({"error":{"code":"invalid_payload","message":"gain_db out of range"}}),
    );
    let (code, _, body) = agg.post("antsdr/gain/set", json!({"payload":{"gain_db":999}})).await?;
    assert_eq!((code, body), (400, json!({"detail":"invalid_payload"})));
    let ack = ws
        .wait_for(Duration::from_secs(2), |v| v["type"] == "COMMAND_ACK")
        .await?;
    assert_eq!(ack["data"]["reason"], "invalid_payload");
    let (code, _, body) = agg.post("antsdr/device/reset", json!({})).await?;
    assert_eq!((code, body), (400, json!({"detail":"confirm_required"})));
    fake.answer(
        "device/calibrate",
        500,
        json!({"error":{"code":"internal_error","message":"x"}}),
    );
    let (code, _, body) = agg.post("antsdr/device/calibrate", json!({"confirm":true})).await?;
    assert_eq!((code, body), (502, json!({"detail":"antsdr_error"})));
    Ok(())
}

#[tokio::test]
async fn antsdr_down_is_502_and_section_offline() -> R {
    let agg = Agg::start("http://127.0.0.1:1", "http://127.0.0.1:1", |_| {}).await?;
    let (code, _, body) = agg.post("antsdr/sweep/stop", json!({})).await?;
    assert_eq!((code, body), (502, json!({"detail":"antsdr_unavailable"})));
    let s = agg
        .wait_status("antsdr unavailable", |s| {
            s["antsdr"]["last_error"] == "antsdr_unavailable"
        })
        .await?;
    assert_eq!(s["antsdr"]["connected"], false);
    Ok(())
}

#[tokio::test]
async fn first_high_severity_contact_beeps_once() -> R {
    let (fake, agg, _h) = with_controller_up().await?;
    let rf = agg._dir.path().join("rf.jsonl");
    let t = now_ms();
    append(
        &rf,
        &[
            format!(
                r#"{{"type":"RF_CONTACT_NEW","timestamp_ms":{t},"data":{{"id":"rf:1","freq_hz":5658000000,"confidence":0.9}}}}"#
            ),
            format!(
                r#"{{"type":"RF_CONTACT_NEW","timestamp_ms":{t},"data":{{"id":"rf:2","freq_hz":5700000000,"confidence":0.95}}}}"#
            ),
            format!(
                r#"{{"type":"RF_CONTACT_UPDATE","timestamp_ms":{t},"data":{{"id":"rf:1","freq_hz":5658000000,"confidence":0.9}}}}"#
            ),
        ],
    )?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.posts("audio/beep").is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fake.posts("audio/beep"),
        vec![json!({"payload":{},"confirm":false})],
        "one beep within the interval"
    );
    Ok(())
}

/// The real system controller (in process, on this machine's procfs, D-Bus and GPS
/// degraded) stopped and restarted under a running aggregator.
#[tokio::test]
async fn real_controller_stopped_and_restarted() -> R {
    use ndefender_system_controller::config::{ControllerConfig, PowerBackend};
    let port = free_port()?;
    let start_ctl = move || {
        let mut c = ControllerConfig::default();
        c.server.bind = format!("127.0.0.1:{port}");
        c.power.backend = PowerBackend::None;
        c.gps.gpsd = "127.0.0.1:1".into();
        let sd = Shutdown::new();
        let task = tokio::spawn(ndefender_system_controller::run(c, sd.clone()));
        (sd, task)
    };
    let (ctl_sd, ctl_task) = start_ctl();
    let agg = Agg::start(&format!("http://127.0.0.1:{port}"), "http://127.0.0.1:1", |c| {
        c.system_controller.silence_timeout_s = 3.0;
    })
    .await?;
    let s = agg
        .wait_status("real stats from the controller", |s| {
            s["system"]["ram"]["total_mb"].as_i64().is_some()
        })
        .await?;
    schemas().validate("StatusSnapshot.json", &s)?;
    assert_eq!(s["system"]["status"], "ok");

    ctl_sd.trigger();
    tokio::time::timeout(Duration::from_secs(10), ctl_task).await???;
    let s = agg
        .wait_status("offline while the controller is down", |s| {
            s["system"]["last_error"] == "system_controller_unavailable"
        })
        .await?;
    assert_eq!(s["system"]["status"], "offline");
    schemas().validate("StatusSnapshot.json", &s)?;

    let (ctl_sd, _task) = start_ctl();
    agg.wait_status("recovered without restarting the aggregator", |s| {
        s["system"]["status"] == "ok"
    })
    .await?;
    ctl_sd.trigger();
    Ok(())
}
