//! The local REST API (antsdr-scan §10). Reads are served from the shared state; commands go
//! to the scan thread and are applied between steps. Check order for commands: auth (the
//! conventions layer) → rate → JSON → confirm → payload → state.

use crate::classify::Profiles;
use crate::config::ScanConfig;
use crate::metrics::{self, MetricsInput};
use crate::plan::PlanSet;
use crate::ratelimit::{Bucket, RateLimiter};
use crate::replay::{self, ReplayError};
use crate::runner::{Control, Loaded};
use crate::source::SourceError;
use crate::state::{rf_envelope, Shared};
use crate::tracker::RfEvent;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ndefender_contract::command::{CommandRequest, CommandResult};
use ndefender_contract::devices::{AntsdrDeviceState, AntsdrGainState, AntsdrStats, AntsdrSweepState, GainLimits};
use ndefender_contract::enums::GainMode;
use ndefender_contract::time::Clock;
use ndefender_contract::TimestampField;
use ndefender_service::http::{client_addr, json_ok, parse_ips, query_param, ApiError};
use ndefender_service::metrics::HttpMetrics;
use serde_json::{json, Map, Value};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Hardware write + read-back budget of `gain/set` and device commands (§10).
const DEVICE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Api {
    pub shared: Arc<Shared>,
    pub control: std::sync::Mutex<mpsc::Sender<Control>>,
    pub clock: Arc<dyn Clock>,
    pub limiter: RateLimiter,
    pub trusted: Vec<IpAddr>,
    pub http: Arc<HttpMetrics>,
    /// The file `config/reload` re-reads (None = built-in defaults + environment).
    pub config_path: Option<PathBuf>,
    pub time_field: TimestampField,
}

type S = State<Arc<Api>>;
type Peer = ConnectInfo<SocketAddr>;

pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/version", get(version))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/device", get(device))
        .route("/api/v1/sweep/state", get(sweep_state))
        .route("/api/v1/gain", get(gain))
        .route("/api/v1/config", get(config))
        .route("/api/v1/events/last", get(events_last))
        .route("/api/v1/metrics", get(metrics))
        .route("/metrics", get(metrics))
        .route("/api/v1/config/reload", post(config_reload))
        .route("/api/v1/run/start", post(run_start))
        .route("/api/v1/run/stop", post(run_stop))
        .route("/api/v1/run/replay", post(run_replay))
        .route("/api/v1/sweep/start", post(sweep_start))
        .route("/api/v1/sweep/stop", post(sweep_stop))
        .route("/api/v1/gain/set", post(gain_set))
        .route("/api/v1/device/reset", post(device_reset))
        .route("/api/v1/device/calibrate", post(device_calibrate))
        .with_state(api)
}

fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code).with_message(message)
}

fn invalid(message: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, "invalid_payload", message)
}

fn conflict(message: impl Into<String>) -> ApiError {
    err(StatusCode::CONFLICT, "invalid_state", message)
}

fn result(command: &str, api: &Api, detail: Option<&str>) -> Response {
    let mut r = CommandResult::accepted(command, uuid::Uuid::new_v4().to_string(), api.clock.now_ms());
    r.detail = detail.map(str::to_owned);
    json_ok(&r)
}

impl Api {
    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Rate → JSON → confirm, then the payload with only `allowed` members (§10).
    fn command(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
        body: &[u8],
        bucket: Bucket,
        needs_confirm: bool,
        allowed: &[&str],
    ) -> Result<Map<String, Value>, ApiError> {
        let ip = client_addr(peer, headers, &self.trusted);
        self.limiter
            .take(ip, bucket, Instant::now())
            .map_err(|s| ApiError::too_many("rate_limited", s))?;
        let req = CommandRequest::parse(body).map_err(|e| {
            err(
                StatusCode::BAD_REQUEST,
                e.code(),
                "body must be {\"payload\":{…},\"confirm\":bool}",
            )
        })?;
        if needs_confirm && !req.confirm {
            return Err(err(StatusCode::BAD_REQUEST, "confirm_required", "set \"confirm\":true"));
        }
        if let Some(k) = req.payload.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(invalid(format!("unknown payload member {k:?}")));
        }
        Ok(req.payload)
    }

    async fn send<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Control) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        let sent = match self.control.lock() {
            Ok(c) => c.send(make(tx)).is_ok(),
            Err(_) => false,
        };
        if !sent {
            return Err(err(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "scan thread not running",
            ));
        }
        match tokio::time::timeout(DEVICE_TIMEOUT, rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(err(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "scan thread not running",
            )),
            Err(_) => Err(err(
                StatusCode::GATEWAY_TIMEOUT,
                "device_timeout",
                "the scan thread did not answer in 2 s",
            )),
        }
    }

    fn running(&self) -> bool {
        self.shared.read(|st| st.status.as_ref().is_some_and(|s| s.running))
    }

    fn replay_active(&self) -> bool {
        self.shared.read(|st| st.replay_active)
    }
}

fn device_error(e: SourceError) -> ApiError {
    match e.code {
        "device_not_connected" => err(StatusCode::CONFLICT, "device_not_connected", e.message),
        "device_timeout" => err(StatusCode::GATEWAY_TIMEOUT, "device_timeout", e.message),
        _ => err(StatusCode::CONFLICT, "device_error", e.to_string()),
    }
}

async fn health(State(api): S) -> Response {
    let body = api.shared.read(|st| {
        let s = st.status.as_ref();
        let connected = s.is_some_and(|s| s.connected);
        let mut m = Map::new();
        m.insert(
            "status".into(),
            json!(if connected && st.scan_thread_alive {
                "ok"
            } else {
                "degraded"
            }),
        );
        m.insert("engine_running".into(), json!(st.scan_thread_alive));
        m.insert("ws_backend_connected".into(), json!(false));
        if let Some(t) = st.last_event_ms {
            m.insert("last_event_timestamp_ms".into(), json!(t));
        }
        m.insert("timestamp_ms".into(), json!(api.now()));
        Value::Object(m)
    });
    json_ok(&body)
}

async fn version() -> Response {
    json_ok(&json!({
        "version": env!("CARGO_PKG_VERSION"),
        "git_sha": option_env!("NDEFENDER_GIT_SHA").unwrap_or("unknown"),
        "build_ts": option_env!("NDEFENDER_BUILD_TS").and_then(|s| s.parse::<u64>().ok()).unwrap_or(0),
    }))
}

async fn stats(State(api): S) -> Response {
    let body = api.shared.read(|st| {
        let s = st.status.as_ref();
        let last_error = if st.jsonl_failed {
            Some("jsonl_write_failed".to_owned())
        } else if s.is_some_and(|s| s.overload_active) {
            Some("adc_overload".to_owned())
        } else {
            s.and_then(|s| s.device_error.clone())
        };
        AntsdrStats {
            timestamp_ms: Some(api.now()),
            frames_processed: Some(s.map(|s| s.frames_processed).unwrap_or(0)),
            events_emitted: Some(s.map(|s| s.events_emitted).unwrap_or(0)),
            last_event_timestamp_ms: st.last_event_ms,
            noise_floor_db: s.and_then(|s| s.noise_floor_db).map(crate::classify::round1),
            peaks: s.and_then(|s| s.peaks),
            last_error,
        }
    });
    json_ok(&body)
}

async fn device(State(api): S) -> Response {
    let body = api.shared.read(|st| {
        let s = st.status.as_ref();
        AntsdrDeviceState {
            timestamp_ms: Some(api.now()),
            connected: Some(s.is_some_and(|s| s.connected)),
            uri: s.map(|s| s.uri.clone()),
            temperature_c: s.and_then(|s| s.temperature_c),
            last_error: s.and_then(|s| s.device_error.clone()),
        }
    });
    json_ok(&body)
}

async fn sweep_state(State(api): S) -> Response {
    let body = api.shared.read(|st| {
        let s = st.status.as_ref();
        AntsdrSweepState {
            timestamp_ms: Some(api.now()),
            running: Some(s.is_some_and(|s| s.running)),
            active_plan: Some(s.map(|s| s.active_plan.clone()).unwrap_or_else(|| "default".into())),
            plans: Some(st.plans.clone()),
            last_update_ms: Some(s.map(|s| s.last_update_ms).unwrap_or_else(|| api.now())),
            last_error: s.and_then(|s| s.sweep_error.clone().or_else(|| s.device_error.clone())),
        }
    });
    json_ok(&body)
}

async fn gain(State(api): S) -> Response {
    let body = api.shared.read(|st| {
        let s = st.status.as_ref();
        AntsdrGainState {
            timestamp_ms: Some(api.now()),
            mode: Some(s.map(|s| s.gain_mode).unwrap_or(st.cfg.radio.gain_mode)),
            gain_db: Some(s.map(|s| s.gain_db).unwrap_or(st.cfg.radio.gain_db)),
            limits: s.map(|s| GainLimits {
                min_db: Some(s.gain_limits.0),
                max_db: Some(s.gain_limits.1),
            }),
        }
    });
    json_ok(&body)
}

async fn config(State(api): S) -> Response {
    let mut v = api
        .shared
        .read(|st| serde_json::to_value(&st.cfg).unwrap_or_else(|_| json!({})));
    if let Some(k) = v.pointer_mut("/api/api_key") {
        if k.as_str().is_some_and(|s| !s.is_empty()) {
            *k = json!("***");
        }
    }
    json_ok(&v)
}

async fn events_last(State(api): S, RawQuery(q): RawQuery) -> Response {
    let cap = api.shared.read(|st| st.cfg.api.event_buffer);
    let limit = match query_param(q.as_deref(), "limit") {
        None => 50.min(cap),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n <= cap => n,
            _ => {
                return err(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!("limit must be an integer 0–{cap}"),
                )
                .into_response()
            }
        },
    };
    let body = api.shared.read(|st| {
        let skip = st.ring.len().saturating_sub(limit);
        let parts: Vec<String> = st
            .ring
            .iter()
            .skip(skip)
            .map(|e| e.to_json(None, api.time_field))
            .collect();
        format!("{{\"events\":[{}]}}", parts.join(","))
    });
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn metrics(State(api): S) -> Response {
    let text = api.shared.read(|st| {
        metrics::render(&MetricsInput {
            version: env!("CARGO_PKG_VERSION"),
            git_sha: option_env!("NDEFENDER_GIT_SHA").unwrap_or("unknown"),
            uptime_s: api.shared.started.elapsed().as_secs_f64(),
            http: &api.http,
            hub: api.shared.hub().map(|h| h.stats()),
            limiter: &api.limiter,
            status: st.status.as_ref(),
            events_by_type: &st.events_by_type,
            jsonl_write_errors: st.jsonl_write_errors,
        })
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, ndefender_service::metrics::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

async fn config_reload(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        api.command(peer, &headers, &body, Bucket::Commands, false, &[])?;
        let path = api.config_path.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let cfg: ScanConfig =
                ndefender_service::config::load(path.as_deref(), std::env::vars()).map_err(|e| e.0)?;
            let plans = PlanSet::load(&cfg).map_err(|(k, m)| format!("{k}: {m}"))?;
            let profiles = Profiles::load(&cfg.classification.profiles)?;
            Ok::<_, String>((cfg, plans, profiles))
        })
        .await
        .map_err(|_| {
            err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "reload task failed",
            )
        })?;
        let (cfg, plans, profiles) = loaded.map_err(invalid)?;
        let old = api.shared.read(|st| st.cfg.clone());
        let restart = crate::config::restart_required(&old, &cfg);
        let summaries = crate::plan_summaries(&plans);
        let applied = cfg.clone();
        let loaded = Loaded { cfg, plans, profiles };
        api.send(|tx| Control::Reload(Box::new(loaded), tx))
            .await?
            .map_err(invalid)?;
        {
            let mut st = api.shared.lock();
            st.plans = summaries;
            let keep = st.cfg.clone();
            st.cfg = applied;
            // Keys that need a restart keep their running values in the effective config.
            st.cfg.api = keep.api;
            st.cfg.ws = keep.ws;
            st.cfg.output.jsonl_path = keep.output.jsonl_path;
        }
        Ok::<_, ApiError>(json_ok(&json!({"status": "ok", "restart_required": restart})))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn run_start(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        api.command(peer, &headers, &body, Bucket::Commands, false, &[])?;
        if api.replay_active() {
            return Err(conflict("replay active"));
        }
        if api.running() {
            return Err(conflict("already running"));
        }
        let (plans, names) = api
            .shared
            .read(|st| (crate::plan::PlanSet::load(&st.cfg), st.cfg.scan.plans.clone()));
        let plans = plans
            .map_err(|(k, m)| invalid(format!("{k}: {m}")))?
            .active(&names)
            .map_err(invalid)?;
        api.send(|tx| Control::Start(plans, "default".into(), tx)).await?;
        Ok(json_ok(&json!({"status": "ok"})))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn run_stop(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        api.command(peer, &headers, &body, Bucket::Commands, false, &[])?;
        if !api.running() {
            return Err(conflict("not running"));
        }
        api.send(Control::Stop).await?;
        Ok(json_ok(&json!({"status": "ok"})))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn sweep_start(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        let p = api.command(peer, &headers, &body, Bucket::Commands, false, &["plan"])?;
        let name = match p.get("plan") {
            None | Some(Value::Null) => "default".to_owned(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid("plan must be a string")),
        };
        let (set, names) = api
            .shared
            .read(|st| (PlanSet::load(&st.cfg), st.cfg.scan.plans.clone()));
        let set = set.map_err(|(k, m)| invalid(format!("{k}: {m}")))?;
        let (plans, label) = if name == "default" {
            (set.active(&names).map_err(invalid)?, "default".to_owned())
        } else {
            let plan = set
                .find(&name)
                .ok_or_else(|| invalid(format!("unknown plan {name:?}")))?;
            (vec![plan.clone()], plan.name.clone())
        };
        if api.replay_active() {
            return Err(conflict("replay active"));
        }
        api.send(|tx| Control::Start(plans, label, tx)).await?;
        Ok(result("sweep/start", &api, None))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn sweep_stop(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        api.command(peer, &headers, &body, Bucket::Commands, false, &[])?;
        if !api.running() {
            return Err(conflict("not running"));
        }
        api.send(Control::Stop).await?;
        Ok(result("sweep/stop", &api, None))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn gain_set(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        let p = api.command(peer, &headers, &body, Bucket::Commands, false, &["mode", "gain_db"])?;
        let mode = match p.get("mode") {
            None => GainMode::Manual,
            Some(Value::String(s)) => {
                GainMode::parse(s).ok_or_else(|| invalid("mode must be \"manual\" or \"auto\""))?
            }
            Some(_) => return Err(invalid("mode must be \"manual\" or \"auto\"")),
        };
        let (limits, current) = api.shared.read(|st| {
            let s = st.status.as_ref();
            (
                s.map(|s| s.gain_limits),
                s.map(|s| s.gain_db).unwrap_or(st.cfg.radio.gain_db),
            )
        });
        let gain = match (mode, p.get("gain_db")) {
            (_, Some(v)) => v
                .as_f64()
                .filter(|g| g.is_finite())
                .ok_or_else(|| invalid("gain_db must be a number"))?,
            (GainMode::Manual, None) => return Err(invalid("gain_db is required for manual gain")),
            (GainMode::Auto, None) => current,
        };
        if mode == GainMode::Manual {
            let (lo, hi) = limits.unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
            if gain < lo || gain > hi {
                return Err(invalid(format!("gain_db must be within {lo}–{hi} dB")));
            }
        }
        let (_, stored) = api
            .send(|tx| Control::Gain(mode, gain, tx))
            .await?
            .map_err(device_error)?;
        Ok(result("gain/set", &api, stored.then_some("applied_on_connect")))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

fn unsafe_allowed(api: &Api) -> Result<(), ApiError> {
    if api.shared.read(|st| st.cfg.api.allow_unsafe) {
        Ok(())
    } else {
        Err(err(
            StatusCode::FORBIDDEN,
            "unsafe_disabled",
            "api.allow_unsafe is false",
        ))
    }
}

async fn device_reset(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        api.command(peer, &headers, &body, Bucket::Dangerous, true, &[])?;
        unsafe_allowed(&api)?;
        api.send(Control::Reset).await?.map_err(device_error)?;
        Ok::<_, ApiError>(result("device/reset", &api, None))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn device_calibrate(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        let p = api.command(peer, &headers, &body, Bucket::Dangerous, true, &["kind"])?;
        unsafe_allowed(&api)?;
        let kind = match p.get("kind").and_then(Value::as_str) {
            Some(k @ ("rf_dc" | "tracking")) => k.to_owned(),
            _ => return Err(invalid("kind must be \"rf_dc\" or \"tracking\"")),
        };
        api.send(|tx| Control::Calibrate(kind, tx))
            .await?
            .map_err(device_error)?;
        Ok(result("device/calibrate", &api, None))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn run_replay(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        let ip = client_addr(peer, &headers, &api.trusted);
        api.limiter
            .take(ip, Bucket::Commands, Instant::now())
            .map_err(|s| ApiError::too_many("rate_limited", s))?;
        let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(&body)
                .map_err(|_| err(StatusCode::BAD_REQUEST, "invalid_json", "body is not JSON"))?
        };
        let Value::Object(mut top) = v else {
            return Err(invalid("body must be an object"));
        };
        let mut args = match top.remove("payload") {
            Some(Value::Object(p)) if !p.is_empty() => p,
            Some(Value::Object(_)) | None | Some(Value::Null) => top.clone(),
            Some(_) => return Err(invalid("payload must be an object")),
        };
        args.remove("confirm");
        args.remove("payload");
        if let Some(k) = args
            .keys()
            .find(|k| !["log_path", "output_path", "max_events"].contains(&k.as_str()))
        {
            return Err(invalid(format!("unknown member {k:?}")));
        }
        let log_path = args
            .get("log_path")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("log_path (string) is required"))?
            .to_owned();
        let output_path = match args.get("output_path") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(PathBuf::from(s)),
            Some(_) => return Err(invalid("output_path must be a string")),
        };
        let max_events = match args.get("max_events") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| invalid("max_events must be a non-negative integer"))? as usize,
            ),
        };
        let cfg = api.shared.read(|st| st.cfg.clone());
        let output = match &output_path {
            Some(o) => {
                Some(replay::check_output(o, &cfg.replay.allowed_dirs, &cfg.output.jsonl_path).map_err(replay_error)?)
            }
            None => None,
        };
        let path = replay::check_path(&log_path, &cfg.replay.allowed_dirs).map_err(replay_error)?;
        {
            let mut st = api.shared.lock();
            if st.status.as_ref().is_some_and(|s| s.running) {
                return Err(conflict("live scan running: stop it first"));
            }
            if st.replay_active {
                return Err(conflict("replay active"));
            }
            st.replay_active = true;
        }
        let shared = api.shared.clone();
        // Streams: each batch of events goes to `output_path` (JSONL first, one write per batch)
        // and then to the WS and the ring, so memory stays bounded whatever the file's size.
        let outcome = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut out = output.as_deref().map(replay::open_output).transpose()?;
            let plans = PlanSet::load(&cfg).map_err(|(k, m)| ReplayError::Invalid(format!("{k}: {m}")))?;
            let profiles = Profiles::load(&cfg.classification.profiles).map_err(ReplayError::Invalid)?;
            let mut emitted = 0usize;
            let mut lines = String::new();
            let mut emit = |batch: Vec<RfEvent>| -> Result<(), ReplayError> {
                let envs: Vec<_> = batch
                    .into_iter()
                    .filter_map(|ev| rf_envelope(&ev).map(|env| (ev, env)))
                    .collect();
                if let Some(f) = out.as_mut() {
                    lines.clear();
                    for (_, e) in &envs {
                        lines.push_str(&e.to_json(None, TimestampField::TimestampMs));
                        lines.push('\n');
                    }
                    f.write_all(lines.as_bytes())
                        .map_err(|_| ReplayError::Invalid("output_path cannot be written".into()))?;
                }
                emitted += envs.len();
                shared.publish(&envs, None, false);
                Ok(())
            };
            let stats = replay::run_streaming(&cfg, &plans, &profiles, &path, max_events, &mut emit)?;
            if let Some(f) = out {
                f.sync_data()
                    .map_err(|_| ReplayError::Invalid("output_path cannot be written".into()))?;
            }
            Ok::<_, ReplayError>((stats, emitted))
        })
        .await;
        api.shared.lock().replay_active = false;
        let (stats, emitted) = match outcome {
            Ok(r) => r.map_err(replay_error)?,
            Err(_) => {
                return Err(err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "replay task failed",
                ))
            }
        };
        Ok(json_ok(&json!({
            "status": "ok",
            "frames": stats.frames,
            "detections": stats.detections,
            "events_emitted": emitted,
        })))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

fn replay_error(e: ReplayError) -> ApiError {
    match e {
        ReplayError::Invalid(m) => invalid(m),
        ReplayError::NotAllowed => err(StatusCode::FORBIDDEN, "path_not_allowed", "outside replay.allowed_dirs"),
        ReplayError::NotFound => err(StatusCode::NOT_FOUND, "not_found", "no such file"),
    }
}

/// Parses `trusted_proxies` for [`Api::trusted`].
pub fn trusted(cfg: &ScanConfig) -> Vec<IpAddr> {
    parse_ips(&cfg.api.trusted_proxies)
}
