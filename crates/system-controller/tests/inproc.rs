//! The controller in-process with simulated hardware: the UPS HAT's registers,
//! a mixer and a tone output, a procfs fixture tree.

mod support;

use ndefender_contract::time::SystemClock;
use ndefender_service::Shutdown;
use ndefender_system_controller::config::{ControllerConfig, PowerBackend};
use ndefender_system_controller::probes::audio::{FakeMixer, FakeTone, Mixer};
use ndefender_system_controller::probes::procfs::SystemPaths;
use ndefender_system_controller::probes::ups_hat::{SimUps, UpsError, UpsRegisterReader};
use ndefender_system_controller::Backends;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// The simulator shared with the test, which changes registers under it.
struct Shared(Arc<Mutex<SimUps>>);

impl UpsRegisterReader for Shared {
    fn read_block(&mut self, reg: u8, buf: &mut [u8]) -> Result<(), UpsError> {
        // A clone, so a simulated hang does not hold the test's lock; the clone
        // shares the request log.
        let mut sim = self.0.lock().map_err(|_| UpsError::ReadFailed)?.clone();
        sim.read_block(reg, buf)
    }
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc")
}

struct InProc {
    base: String,
    ws: String,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl InProc {
    async fn start(cfg: ControllerConfig, backends: Backends) -> R<InProc> {
        let shutdown = Shutdown::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let s = shutdown.clone();
        let task = tokio::spawn(async move {
            ndefender_system_controller::run_with(cfg, s, backends, move |addr| {
                let _ = tx.send(addr);
            })
            .await
        });
        let addr = tokio::time::timeout(S10, rx).await??;
        Ok(InProc {
            base: format!("http://{addr}"),
            ws: format!("ws://{addr}/api/v1/ws"),
            shutdown,
            task,
        })
    }

    async fn get(&self, p: &str) -> R<serde_json::Value> {
        Ok(get_json(&format!("{}{p}", self.base)).await?.1)
    }

    async fn post(&self, p: &str, body: &str) -> R<(u16, serde_json::Value)> {
        let (s, _, v) = post_json(&format!("{}{p}", self.base), body).await?;
        Ok((s, v))
    }

    async fn wait_get(&self, p: &str, pred: impl Fn(&serde_json::Value) -> bool) -> R<serde_json::Value> {
        let deadline = std::time::Instant::now() + S10;
        loop {
            let v = self.get(p).await?;
            if pred(&v) {
                return Ok(v);
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("{p}: condition not met: {v}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) -> R {
        self.shutdown.trigger();
        tokio::time::timeout(S10, self.task).await???;
        Ok(())
    }
}

fn config(dir: &Path) -> ControllerConfig {
    let mut c = ControllerConfig::default();
    c.server.bind = "127.0.0.1:0".into();
    c.system.logs_dir = dir.display().to_string();
    c.services.watch = Vec::new();
    c.network.enabled = false;
    c.bluetooth.enabled = false;
    c.gps.enabled = false;
    c.audio.enabled = false;
    c.power.backend = PowerBackend::None;
    c
}

fn backends(paths: SystemPaths) -> Backends {
    Backends {
        clock: Arc::new(SystemClock),
        ups: Box::new(SimUps::default()),
        mixer: Box::new(|| Err("no mixer".into())),
        tone: Arc::new(FakeTone::default()),
        system_paths: paths,
    }
}

fn fixture_paths(dir: &Path, throttled: Option<&str>) -> SystemPaths {
    SystemPaths {
        proc_root: dir.to_owned(),
        thermal: dir.join("thermal_temp"),
        throttled: throttled.map(|t| dir.join(t)),
        root: "/".into(),
        logs_dir: dir.join("missing"),
    }
}

#[tokio::test]
async fn ups_hat_test_vector_deadbands_and_failures() -> R {
    let dir = tempfile::tempdir()?;
    let mut cfg = config(dir.path());
    cfg.power.backend = PowerBackend::UpsHatE;
    cfg.power.interval_ms = 100;
    cfg.events.log_event_min_interval_s = 0;
    let sim = Arc::new(Mutex::new(SimUps::test_vector()));
    let mut b = backends(fixture_paths(&fixtures(), None));
    b.ups = Box::new(Shared(sim.clone()));
    let c = InProc::start(cfg, b).await?;
    let ups = c.wait_get("/api/v1/ups", |v| v["status"] == "ok").await?;
    let mut want = json!({"status":"ok","pack_voltage_v":14.8,"current_a":-1.5,"input_vbus_v":5.0,"input_power_w":10.0,"soc_percent":80,"time_to_empty_s":720,"per_cell_v":[3.7,3.71,3.69,3.72],"state":"DISCHARGING"});
    want["timestamp_ms"] = ups["timestamp_ms"].clone();
    assert_eq!(ups, want);

    let mut ws = connect(&c.ws).await?;
    ws.frames(GREETING).await?;
    // noise under the deadbands: no UPS_UPDATE
    if let Ok(mut s) = sim.lock() {
        s.set_current_ma(-1480);
    }
    let frames = ws.collect(Duration::from_millis(800)).await?;
    assert!(frames.iter().all(|v| kind(v) != "UPS_UPDATE"), "{frames:?}");
    // a state change: one within a poll or two
    if let Ok(mut s) = sim.lock() {
        s.set_status(0xC0);
    }
    let u = ws.wait_for(S5, |v| kind(v) == "UPS_UPDATE").await?;
    assert_eq!(u["data"]["state"], "FAST_CHARGING");

    // a NACK degrades (values kept), three go offline (values dropped), recovery is automatic
    if let Ok(mut s) = sim.lock() {
        s.fail = Some(UpsError::NotFound);
    }
    let v = ws
        .wait_for(S5, |v| {
            kind(v) == "UPS_UPDATE" && v["data"]["last_error"] == "ups_not_found"
        })
        .await?;
    assert_eq!(v["data"]["status"], "degraded");
    assert_eq!(v["data"]["soc_percent"], 80);
    let v = ws
        .wait_for(S5, |v| kind(v) == "UPS_UPDATE" && v["data"]["status"] == "offline")
        .await?;
    assert!(v["data"].get("soc_percent").is_none(), "{v}");
    if let Ok(mut s) = sim.lock() {
        s.fail = None;
    }
    // the recovery LOG_EVENT is published in the same critical section, just before the update
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + S5;
    while !seen
        .iter()
        .any(|v: &serde_json::Value| kind(v) == "UPS_UPDATE" && v["data"]["status"] == "ok")
    {
        seen.push(ws.next(S5).await?.ok_or("stream ended")?);
        if std::time::Instant::now() > deadline {
            return Err("no recovery".into());
        }
    }
    assert!(
        seen.iter()
            .any(|v| kind(v) == "LOG_EVENT" && v["data"]["component"] == "power" && v["data"]["level"] == "info"),
        "{seen:?}"
    );
    // a hung bus is a read failure after the timeout, never a stuck probe
    if let Ok(mut s) = sim.lock() {
        s.hang = Some(Duration::from_millis(1500));
    }
    ws.wait_for(S10, |v| {
        kind(v) == "UPS_UPDATE" && v["data"]["last_error"] == "ups_read_failed"
    })
    .await?;
    // other reads stay fast meanwhile
    let t0 = std::time::Instant::now();
    c.get("/api/v1/status").await?;
    assert!(t0.elapsed() < Duration::from_secs(1));
    // the controller never asked for anything outside the four blocks
    let asked = sim
        .lock()
        .map(|s| s.requested.lock().map(|r| r.clone()).unwrap_or_default())
        .unwrap_or_default();
    assert!(!asked.is_empty());
    assert!(asked.iter().all(|r| [0x02, 0x10, 0x20, 0x30].contains(r)), "{asked:?}");
    c.stop().await
}

#[tokio::test]
async fn audio_volume_mute_and_beeps() -> R {
    let dir = tempfile::tempdir()?;
    let mut cfg = config(dir.path());
    cfg.audio.enabled = true;
    cfg.audio.interval_ms = 200;
    let mixer = FakeMixer::new(-1000, 1000, 0, Some(true));
    let tone = FakeTone::default();
    tone.present.store(true, Ordering::Release);
    let mut b = backends(fixture_paths(&fixtures(), None));
    let m = mixer.clone();
    b.mixer = Box::new(move || Ok(Box::new(m.clone()) as Box<dyn Mixer>));
    b.tone = Arc::new(tone.clone());
    let c = InProc::start(cfg, b).await?;
    let a = c.wait_get("/api/v1/audio", |v| v["status"] == "ok").await?;
    assert_eq!(a["volume_percent"], 50);
    assert_eq!(a["muted"], false);
    let mut ws = connect(&c.ws).await?;
    ws.frames(GREETING).await?;

    let (s, res) = c
        .post("/api/v1/audio/volume", r#"{"payload":{"volume_percent":40}}"#)
        .await?;
    assert_eq!(s, 200);
    let ack = ws.wait_for(S5, |v| ack_of(v, "audio/volume").is_some()).await?;
    // Contract v1.1: the ack carries the CommandResult's id.
    assert_eq!(
        ack["data"],
        json!({"command":"audio/volume","ok":true,"reason":null,"command_id":res["command_id"]})
    );
    // min + 40 % of the range, and the state is the read-back
    assert_eq!(mixer.state.lock().map(|s| s.raw).map_err(|e| e.to_string())?, -200);
    c.wait_get("/api/v1/audio", |v| v["volume_percent"] == 40).await?;
    for body in [
        r#"{"payload":{"volume_percent":50.0}}"#,
        r#"{"payload":{"volume_percent":true}}"#,
        r#"{"payload":{"volume_percent":101}}"#,
        r#"{"payload":{}}"#,
    ] {
        let (s, v) = c.post("/api/v1/audio/volume", body).await?;
        assert_eq!((s, v["detail"].clone()), (400, json!("invalid_payload")), "{body}");
    }
    let (s, _) = c.post("/api/v1/audio/mute", r#"{"payload":{"muted":"false"}}"#).await?;
    assert_eq!(s, 400);
    let (s, _) = c.post("/api/v1/audio/mute", r#"{"payload":{"muted":true}}"#).await?;
    assert_eq!(s, 200);
    c.wait_get("/api/v1/audio", |v| v["muted"] == true).await?;
    let (s, v) = c.post("/api/v1/audio/beep", "").await?;
    assert_eq!((s, v), (409, json!({"detail":"audio_muted"})));
    let ack = ws.wait_for(S5, |v| ack_of(v, "audio/beep").is_some()).await?;
    assert_eq!(ack["data"]["reason"], "audio_muted");
    let (s, _) = c.post("/api/v1/audio/mute", r#"{"payload":{"muted":false}}"#).await?;
    assert_eq!(s, 200);
    c.wait_get("/api/v1/audio", |v| v["muted"] == false).await?;

    // two overlapping beeps: one tone, the second acked as coalesced
    let (s, _) = c
        .post("/api/v1/audio/beep", r#"{"payload":{"duration_ms":500,"count":2}}"#)
        .await?;
    assert_eq!(s, 200);
    let (s, res) = c.post("/api/v1/audio/beep", "").await?;
    assert_eq!(s, 200);
    let first = ws.wait_for(S5, |v| ack_of(v, "audio/beep").is_some()).await?;
    assert_eq!(first["data"]["reason"], serde_json::Value::Null);
    let second = ws.wait_for(S5, |v| ack_of(v, "audio/beep").is_some()).await?;
    assert_eq!(
        second["data"],
        json!({"command":"audio/beep","ok":true,"reason":"coalesced","command_id":res["command_id"]})
    );
    let played = tone.played.lock().map(|p| p.clone()).map_err(|e| e.to_string())?;
    assert_eq!(played.len(), 1);
    assert_eq!(
        (played[0].freq_hz, played[0].duration_ms, played[0].count),
        (880, 500, 2)
    );

    // no sound card
    tokio::time::sleep(Duration::from_millis(1300)).await;
    tone.present.store(false, Ordering::Release);
    let (s, v) = c.post("/api/v1/audio/beep", "").await?;
    assert_eq!((s, v), (409, json!({"detail":"no_output_device"})));
    let a = c
        .wait_get("/api/v1/audio", |v| v["last_error"] == "no_output_device")
        .await?;
    assert_eq!(a["status"], "degraded");
    assert_eq!(a["volume_percent"], 40);
    c.stop().await
}

#[tokio::test]
async fn system_status_from_a_fixture_tree() -> R {
    let dir = tempfile::tempdir()?;
    let proc = dir.path().join("proc");
    std::fs::create_dir(&proc)?;
    for f in ["uptime", "loadavg", "meminfo", "thermal_temp", "throttled_50005"] {
        std::fs::copy(fixtures().join(f), proc.join(f))?;
    }
    std::fs::copy(fixtures().join("stat.1"), proc.join("stat"))?;
    let mut cfg = config(dir.path());
    cfg.system.interval_ms = 300;
    cfg.events.system_status_ms = 300;
    let c = InProc::start(cfg, backends(fixture_paths(&proc, Some("throttled_50005")))).await?;
    let mut ws = connect(&c.ws).await?;
    let g = ws.frames(GREETING).await?;
    let first = &g[1]["data"];
    assert_eq!(kind(&g[1]), "SYSTEM_STATUS");
    assert!(first["cpu"].get("usage_percent").is_none(), "{first}");
    assert!(first.get("cpu_usage_percent").is_none());
    assert_eq!(first["status"], "degraded");
    assert_eq!(first["last_error"], "undervoltage");
    assert_eq!(first["throttled_flags"], 0x50005);
    std::fs::copy(fixtures().join("stat.2"), proc.join("stat"))?;
    let s = ws
        .wait_for(S5, |v| {
            kind(v) == "SYSTEM_STATUS" && v["data"]["cpu"]["usage_percent"].is_number()
        })
        .await?;
    let d = &s["data"];
    assert_eq!(d["cpu"]["usage_percent"], 12.5);
    assert_eq!(d["cpu_usage_percent"], 12.5);
    assert_eq!(d["ram"], json!({"total_mb":7936,"used_mb":1210,"free_mb":6726}));
    assert_eq!(d["uptime_s"], 4671);
    assert_eq!(d["cpu"]["temp_c"], 52.3);
    assert_eq!(d["load_1m"], 0.42);
    c.stop().await
}
