//! The `ndefender-remoteid` daemon: live source (Wi-Fi monitor, BlueZ LE scan or simulator) and
//! file replay → decoder → tracker → JSONL feed + hub (`/api/v1/ws`), and the REST routes the
//! aggregator relays to. One lock (`Engine::st`) orders state changes, JSONL lines and hub publishing.

use crate::config::{EngineConfig, SourceKind};
use crate::decode::{observe, Counters};
use crate::jsonl::JsonlWriter;
use crate::source::{ble::BleScan, pcap_live::PcapLive, sim::Sim, FrameSource, RawFrame};
use crate::tracker::{replay_state, Tracker};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ndefender_contract::command::{CommandRequest, CommandResult};
use ndefender_contract::contact::{RemoteIdContact, RemoteIdSourceTag, RemoteIdTag};
use ndefender_contract::devices::{RemoteIdReplayStateBody, RemoteIdStateBody, RemoteIdStats};
use ndefender_contract::enums::{RemoteIdHealth, RemoteIdMode, Severity};
use ndefender_contract::envelope::{Envelope, TimestampField};
use ndefender_contract::time::Clock;
use ndefender_contract::{ErrorStyle, Source};
use ndefender_hub::{Greeting, GreetingSource, Hub};
use ndefender_service::daemon::{self, Site};
use ndefender_service::http::{json_ok, ApiError};
use ndefender_service::lifecycle;
use ndefender_service::Shutdown;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// Frames queued between the capture thread and the engine thread; beyond it frames are
/// dropped (counted), the capture never blocks on the engine.
const FRAME_QUEUE: usize = 4096;

#[derive(Debug, Default, Clone)]
pub struct ReplayInfo {
    pub active: bool,
    pub state: String,
    pub speed: f64,
    pub position: u64,
    pub file: String,
}

pub struct EngineState {
    pub tracker: Tracker,
    pub counters: Counters,
    pub queue_drops: u64,
    writer: Option<JsonlWriter>,
    pub monitor_active: bool,
    pub replay: ReplayInfo,
    pub last_error: Option<String>,
    pub lines: u64,
}

pub struct Engine {
    st: Mutex<EngineState>,
    hub: OnceLock<Hub>,
    pub clock: Arc<dyn Clock>,
    pub cfg: EngineConfig,
    monitor: Mutex<Option<Worker>>,
    replay: Mutex<Option<Worker>>,
    frames_tx: SyncSender<RawFrame>,
}

struct Worker {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Worker {
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.join();
    }
}

impl Engine {
    pub fn lock(&self) -> MutexGuard<'_, EngineState> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes a line and publishes it, under the state lock the caller holds.
    fn emit(&self, st: &mut EngineState, env: Envelope) {
        if let Some(w) = st.writer.as_mut() {
            if let Err(e) = w.write_line(&env.to_json(None, TimestampField::TimestampMs)) {
                tracing::warn!(error = %e, "cannot write the JSONL feed");
                st.last_error = Some("jsonl_write_failed".into());
            }
        }
        st.lines += 1;
        if let Some(h) = self.hub.get() {
            h.publish(env);
        }
    }

    fn apply_frame(&self, f: &RawFrame) {
        let mut st = self.lock();
        let st = &mut *st;
        let Some(o) = observe(f.linktype, &f.data, f.ts_ms, &mut st.counters) else {
            return;
        };
        let mut out = Vec::new();
        st.tracker.frame(&o, &mut out);
        for e in out {
            self.emit(st, e);
        }
    }

    fn tick(&self) {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        let st = &mut *st;
        let mut out = Vec::new();
        st.tracker.expire(now, &mut out);
        for e in out {
            self.emit(st, e);
        }
    }

    pub fn start_monitor(self: &Arc<Self>) -> Result<(), String> {
        let mut slot = self.monitor.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            return Ok(());
        }
        let mut src: Box<dyn FrameSource> = match self.cfg.monitor.source {
            SourceKind::Wifi => Box::new(PcapLive::open(&self.cfg.monitor.interface)?),
            SourceKind::Sim => Box::new(Sim::new(
                self.clock.clone(),
                self.cfg.monitor.sim_drones,
                self.cfg.monitor.sim_rate_hz,
            )),
            SourceKind::Ble => Box::new(BleScan::open(&self.cfg.monitor.ble_adapter)?),
            SourceKind::None => return Err("no live source configured".into()),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let tx = self.frames_tx.clone();
        let engine = self.clone();
        let s2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("rid-capture".into())
            .spawn(move || {
                while !s2.load(Ordering::Relaxed) {
                    match src.next_frame() {
                        Ok(Some(f)) => {
                            if tx.try_send(f).is_err() {
                                engine.lock().queue_drops += 1;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "capture source failed");
                            let mut st = engine.lock();
                            st.last_error = Some(e);
                            st.monitor_active = false;
                            return;
                        }
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        *slot = Some(Worker { stop, handle });
        let mut st = self.lock();
        st.monitor_active = true;
        st.last_error = None;
        Ok(())
    }

    pub fn stop_monitor(&self) {
        let w = self.monitor.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = w {
            w.stop();
        }
        self.lock().monitor_active = false;
    }

    /// Resolves a capture a request names: relative names in `replay.dir`; nothing outside it.
    fn capture_path(&self, name: &str) -> Result<PathBuf, String> {
        let dir = Path::new(&self.cfg.replay.dir);
        let p = if Path::new(name).is_absolute() {
            PathBuf::from(name)
        } else {
            dir.join(name)
        };
        let p = p.canonicalize().map_err(|e| format!("{name}: {e}"))?;
        let dir = dir.canonicalize().map_err(|e| format!("replay.dir: {e}"))?;
        if !p.starts_with(&dir) {
            return Err(format!("{name}: outside replay.dir"));
        }
        Ok(p)
    }

    pub fn start_replay(self: &Arc<Self>, name: &str, speed: f64) -> Result<(), String> {
        let path = self.capture_path(name)?;
        let mut slot = self.replay.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = slot.as_ref() {
            if !w.handle.is_finished() {
                return Err("replay_active".into());
            }
        }
        if let Some(w) = slot.take() {
            w.stop();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let engine = self.clone();
        let s2 = stop.clone();
        let repeat = self.cfg.replay.repeat;
        {
            let mut st = self.lock();
            st.replay = ReplayInfo {
                active: true,
                state: "start".into(),
                speed,
                position: 0,
                file: path.display().to_string(),
            };
        }
        let handle = std::thread::Builder::new()
            .name("rid-replay".into())
            .spawn(move || loop {
                let clock = engine.clock.clone();
                let now = move || clock.now_ms();
                let r = crate::replay::run(&path, speed, &s2, &now, &mut |env| {
                    let mut st = engine.lock();
                    st.replay.state = match env.kind() {
                        "REPLAY_STATE" => "running".into(),
                        _ => st.replay.state.clone(),
                    };
                    st.replay.position += u64::from(env.kind().starts_with("CONTACT_"));
                    engine.emit(&mut st, env.clone());
                    Ok(())
                });
                let mut st = engine.lock();
                if let Err(e) = r {
                    st.last_error = Some(e);
                }
                if !repeat || s2.load(Ordering::Relaxed) {
                    st.replay.active = false;
                    st.replay.state = "done".into();
                    return;
                }
                drop(st);
                std::thread::sleep(Duration::from_millis(200));
            })
            .map_err(|e| e.to_string())?;
        *slot = Some(Worker { stop, handle });
        Ok(())
    }

    pub fn stop_replay(&self) -> bool {
        let w = self.replay.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(w) = w else { return false };
        let was_running = !w.handle.is_finished();
        w.stop();
        let mut st = self.lock();
        st.replay.active = false;
        st.replay.state = "stopped".into();
        if was_running {
            let speed = st.replay.speed;
            if let Some(e) = replay_state("stopped", speed, Some(st.replay.position), None, self.clock.now_ms()) {
                self.emit(&mut st, e);
            }
        }
        was_running
    }

    pub fn stop_all(&self) {
        self.stop_monitor();
        self.stop_replay();
    }
}

struct Greeter(Arc<OnceLock<Arc<Engine>>>);

impl GreetingSource for Greeter {
    fn greeting(&self, hub: &Hub) -> Greeting {
        self.resync(hub)
    }

    /// The contacts the engine tracks, as CONTACT_UPDATE, with the watermark read under the
    /// same lock.
    fn resync(&self, hub: &Hub) -> Greeting {
        let Some(e) = self.0.get() else {
            return Greeting {
                envelopes: Vec::new(),
                watermark: hub.last_seq(),
            };
        };
        let st = e.lock();
        let envelopes = st
            .tracker
            .contacts()
            .iter()
            .filter_map(|c| Envelope::new("CONTACT_UPDATE", c.last_seen_ts, Source::Remoteid, &c.event_data()).ok())
            .collect();
        Greeting {
            envelopes,
            watermark: hub.last_seq(),
        }
    }
}

/// The engine, its hub, and the engine thread with its stop flag.
pub type Built = (Arc<Engine>, Hub, JoinHandle<()>, Arc<AtomicBool>);

/// Builds the engine, its hub and its threads (engine + optional autostarted sources).
pub fn build(cfg: EngineConfig, clock: Arc<dyn Clock>) -> std::io::Result<Built> {
    let writer = JsonlWriter::open(Path::new(&cfg.output.jsonl_path), cfg.output.max_bytes)?;
    let (tx, rx) = sync_channel(FRAME_QUEUE);
    let slot = Arc::new(OnceLock::new());
    let hub = Hub::new(
        cfg.server
            .hub_config(Source::Remoteid, TimestampField::TimestampMs, ErrorStyle::Detail),
        Arc::new(Greeter(slot.clone())),
    );
    let engine = Arc::new(Engine {
        st: Mutex::new(EngineState {
            tracker: Tracker::new(RemoteIdMode::Live),
            counters: Counters::default(),
            queue_drops: 0,
            writer: Some(writer),
            monitor_active: false,
            replay: ReplayInfo::default(),
            last_error: None,
            lines: 0,
        }),
        hub: OnceLock::new(),
        clock,
        cfg,
        monitor: Mutex::new(None),
        replay: Mutex::new(None),
        frames_tx: tx,
    });
    let _ = engine.hub.set(hub.clone());
    let _ = slot.set(engine.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let handle = spawn_engine_thread(engine.clone(), rx, stop.clone())?;
    Ok((engine, hub, handle, stop))
}

fn spawn_engine_thread(
    engine: Arc<Engine>,
    rx: Receiver<RawFrame>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("rid-engine".into()).spawn(move || {
        let mut last_tick = engine.clock.monotonic();
        while !stop.load(Ordering::Relaxed) {
            match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(f) => engine.apply_frame(&f),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if engine.clock.monotonic().duration_since(last_tick) >= Duration::from_secs(1) {
                last_tick = engine.clock.monotonic();
                engine.tick();
            }
        }
    })
}

type S = State<Arc<Engine>>;

fn state_body(e: &Engine) -> RemoteIdStateBody {
    let now = e.clock.now_ms();
    let st = e.lock();
    let replay = st.replay.active;
    let last = st.tracker.last_frame_ts();
    let state = if replay {
        RemoteIdHealth::Replay
    } else if !st.monitor_active {
        RemoteIdHealth::Offline
    } else if last.is_some_and(|t| now.saturating_sub(t) <= 5000) {
        RemoteIdHealth::Ok
    } else {
        RemoteIdHealth::Degraded
    };
    let last_error = st.last_error.clone().or_else(|| match state {
        RemoteIdHealth::Offline => Some("monitor_stopped".into()),
        RemoteIdHealth::Degraded => Some("no_frames".into()),
        _ => None,
    });
    RemoteIdStateBody {
        timestamp_ms: Some(now),
        state: Some(state),
        mode: Some(if replay {
            RemoteIdMode::Replay
        } else {
            RemoteIdMode::Live
        }),
        capture_active: Some(st.monitor_active || replay),
        contacts_active: Some(st.tracker.active() as u64),
        last_update_ms: last,
        last_error,
    }
}

async fn health(State(e): S) -> Response {
    let now = e.clock.now_ms();
    let st = e.lock();
    json_ok(&json!({
        "status": if st.last_error.is_none() { "ok" } else { "degraded" },
        "monitor_active": st.monitor_active,
        "replay_active": st.replay.active,
        "timestamp_ms": now,
    }))
}

async fn status(State(e): S) -> Response {
    json_ok(&state_body(&e))
}

async fn contacts(State(e): S) -> Response {
    let st = e.lock();
    let list: Vec<RemoteIdContact> = st
        .tracker
        .contacts()
        .into_iter()
        .map(|c| RemoteIdContact {
            id: c.id.clone(),
            kind: RemoteIdTag::RemoteId,
            source: RemoteIdSourceTag::Remoteid,
            last_seen_ts: c.last_seen_ts,
            // The kit's own position is the aggregator's; here the distance is unknown.
            severity: Severity::Unknown,
            fields: c.fields.clone(),
        })
        .collect();
    json_ok(&list)
}

async fn stats(State(e): S) -> Response {
    let now = e.clock.now_ms();
    let st = e.lock();
    json_ok(&RemoteIdStats {
        timestamp_ms: Some(now),
        frames: Some(st.counters.frames),
        decoded: Some(st.counters.messages),
        dropped: Some(st.counters.dropped() + st.queue_drops),
        dedupe_hits: Some(st.tracker.dedupe_hits),
        last_error: st.last_error.clone(),
    })
}

async fn replay_get(State(e): S) -> Response {
    let now = e.clock.now_ms();
    let st = e.lock();
    json_ok(&RemoteIdReplayStateBody {
        timestamp_ms: Some(now),
        active: Some(st.replay.active),
        source: Some(if st.replay.active {
            "remoteid".into()
        } else {
            "none".into()
        }),
        state: Some(if st.replay.state.is_empty() {
            "idle".into()
        } else {
            st.replay.state.clone()
        }),
        speed: (st.replay.speed > 0.0).then_some(st.replay.speed),
        position: Some(st.replay.position),
        total: None,
    })
}

fn bad(code: &'static str, msg: String) -> Response {
    let mut e = ApiError::new(StatusCode::BAD_REQUEST, code);
    e.message = Some(msg);
    e.into_response()
}

fn conflict(code: &'static str) -> Response {
    ApiError::new(StatusCode::CONFLICT, code).into_response()
}

fn parse(body: &[u8], allowed: &[&str]) -> Result<serde_json::Map<String, serde_json::Value>, Box<Response>> {
    let req = CommandRequest::parse(body)
        .map_err(|e| Box::new(bad(e.code(), "body must be {\"payload\":{…},\"confirm\":bool}".into())))?;
    if let Some(k) = req.payload.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Box::new(bad(
            "invalid_payload",
            format!("unknown payload member {k:?}"),
        )));
    }
    Ok(req.payload)
}

fn done(e: &Engine, command: &str) -> Response {
    json_ok(&CommandResult::accepted(
        command,
        uuid::Uuid::new_v4().to_string(),
        e.clock.now_ms(),
    ))
}

async fn monitor_start(State(e): S, body: Bytes) -> Response {
    if let Err(r) = parse(&body, &[]) {
        return *r;
    }
    let e2 = e.clone();
    match tokio::task::spawn_blocking(move || e2.start_monitor()).await {
        Ok(Ok(())) => done(&e, "monitor/start"),
        Ok(Err(m)) => {
            e.lock().last_error = Some(m.clone());
            let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "capture_unavailable");
            err.message = Some(m);
            err.into_response()
        }
        Err(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error").into_response(),
    }
}

async fn monitor_stop(State(e): S, body: Bytes) -> Response {
    if let Err(r) = parse(&body, &[]) {
        return *r;
    }
    let e2 = e.clone();
    let _ = tokio::task::spawn_blocking(move || e2.stop_monitor()).await;
    done(&e, "monitor/stop")
}

async fn replay_start(State(e): S, body: Bytes) -> Response {
    let p = match parse(&body, &["file", "speed"]) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let file = match p.get("file") {
        None => e.cfg.replay.file.clone(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(_) => return bad("invalid_payload", "file must be a string".into()),
    };
    if file.is_empty() {
        return bad("invalid_payload", "no file given and replay.file is empty".into());
    }
    let speed = match p.get("speed") {
        None => e.cfg.replay.speed,
        Some(v) => match v.as_f64() {
            Some(s) if s.is_finite() && (0.0..=1000.0).contains(&s) => s,
            _ => return bad("invalid_payload", "speed must be a number from 0 to 1000".into()),
        },
    };
    let e2 = e.clone();
    match tokio::task::spawn_blocking(move || e2.start_replay(&file, speed)).await {
        Ok(Ok(())) => done(&e, "replay/start"),
        Ok(Err(m)) if m == "replay_active" => conflict("replay_active"),
        Ok(Err(m)) => bad("invalid_payload", m),
        Err(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error").into_response(),
    }
}

async fn replay_stop(State(e): S, body: Bytes) -> Response {
    if let Err(r) = parse(&body, &[]) {
        return *r;
    }
    let e2 = e.clone();
    let _ = tokio::task::spawn_blocking(move || e2.stop_replay()).await;
    done(&e, "replay/stop")
}

pub const WS_PATHS: [&str; 1] = ["/api/v1/ws"];

/// Command routes an operator may call (the capture and replay controls); every other
/// command would be admin-only.
pub const OPERATOR_ROUTES: &[&str] = &["/api/v1/monitor/", "/api/v1/replay/"];

pub fn router(e: Arc<Engine>) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/status", get(status))
        .route("/api/v1/contacts", get(contacts))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/replay/state", get(replay_get))
        .route("/api/v1/monitor/start", post(monitor_start))
        .route("/api/v1/monitor/stop", post(monitor_stop))
        .route("/api/v1/replay/start", post(replay_start))
        .route("/api/v1/replay/stop", post(replay_stop))
        .with_state(e)
}

/// Runs the daemon until `shutdown` fires.
pub async fn run(cfg: EngineConfig, shutdown: Shutdown, clock: Arc<dyn Clock>) -> std::io::Result<()> {
    let listener = lifecycle::listen("remoteid", &cfg.server.bind).await?;
    let (engine, hub, engine_thread, engine_stop) = build(cfg.clone(), clock)?;
    if cfg.monitor.autostart && cfg.monitor.source != SourceKind::None {
        let e = engine.clone();
        if let Ok(Err(m)) = tokio::task::spawn_blocking(move || e.start_monitor()).await {
            tracing::warn!(error = %m, "live source not started");
            engine.lock().last_error = Some(m);
        }
    }
    if cfg.replay.autostart && !cfg.replay.file.is_empty() {
        if let Err(m) = engine.start_replay(&cfg.replay.file, cfg.replay.speed) {
            tracing::warn!(error = %m, "replay not started");
            engine.lock().last_error = Some(m);
        }
    }
    let mut ws = Router::new();
    for p in WS_PATHS {
        ws = ws.route(p, hub.ws_route());
    }
    let app = router(engine.clone()).merge(ws);
    let site = Site {
        name: "remoteid",
        server: &cfg.server,
        audit: Some(&cfg.audit),
        style: ErrorStyle::Detail,
        ws_paths: &WS_PATHS,
        operator_routes: OPERATOR_ROUTES,
        open_paths: &[],
        metrics: Arc::default(),
    };
    // Sources stop first (their last lines reach the JSONL and the hub), then the hub
    // closes every client with 1001.
    daemon::serve(site, listener, app, shutdown, async move {
        let e = engine.clone();
        let _ = tokio::task::spawn_blocking(move || {
            e.stop_all();
            engine_stop.store(true, Ordering::Relaxed);
            let _ = engine_thread.join();
        })
        .await;
        hub.shutdown().await;
    })
    .await
}
