//! REST `/api/v1` (system-controller §6): reads from the state store, the two
//! live reads, metrics, and the command routes of [`commands`].

pub mod commands;

use crate::dbus::{Bus, DbusFail};
use crate::gates::ratelimit::RateLimiter;
use crate::probes::audio::Audio;
use crate::probes::bluetooth::{self, Agent};
use crate::probes::network::{self, SharedKnown};
use crate::state::Controller;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ndefender_contract::system::{BluetoothDeviceList, WifiScanResult};
use ndefender_service::http::{json_ok, ApiError};
use ndefender_service::metrics;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Notify;

/// What the handlers share.
pub struct Api {
    pub ctl: Controller,
    pub bus: Bus,
    pub audio: Audio,
    pub agent: Agent,
    pub limiter: RateLimiter,
    pub trusted: Vec<IpAddr>,
    pub known: SharedKnown,
    pub gps_reconnect: Arc<Notify>,
    /// Targets of asynchronous commands still running (§6.3 "one at a time").
    pub in_progress: Mutex<HashSet<String>>,
    pub bt_scan_generation: AtomicU64,
    pub started: Instant,
    pub http: Arc<ndefender_service::metrics::HttpMetrics>,
    pub metrics: Mutex<BTreeMap<String, u64>>,
}

impl Api {
    pub fn count(&self, key: String) {
        if let Ok(mut m) = self.metrics.lock() {
            *m.entry(key).or_insert(0) += 1;
        }
    }
}

pub type S = State<Arc<Api>>;

pub fn router(api: Arc<Api>) -> Router {
    use commands as c;
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/status", get(status))
        .route("/api/v1/system", get(|s: S| section(s, |st| to_v(&st.system))))
        .route("/api/v1/ups", get(|s: S| section(s, |st| to_v(&st.ups))))
        .route("/api/v1/power", get(|s: S| section(s, |st| to_v(&st.ups))))
        .route("/api/v1/services", get(|s: S| section(s, |st| to_v(&st.services))))
        .route("/api/v1/network", get(|s: S| section(s, |st| to_v(&st.network))))
        .route("/api/v1/gps", get(|s: S| section(s, |st| to_v(&st.gps))))
        .route("/api/v1/audio", get(|s: S| section(s, |st| to_v(&st.audio))))
        .route(
            "/api/v1/network/wifi/state",
            get(|s: S| section(s, |st| to_v(&st.network.wifi))),
        )
        .route(
            "/api/v1/network/bluetooth/state",
            get(|s: S| section(s, |st| to_v(&st.network.bluetooth))),
        )
        .route("/api/v1/network/wifi/scan", get(wifi_scan))
        .route("/api/v1/network/bluetooth/devices", get(bt_devices))
        .route("/metrics", get(metrics))
        .route("/api/v1/metrics", get(metrics))
        .route("/api/v1/services/{name}/restart", post(c::service_restart))
        .route("/api/v1/network/wifi/enable", post(c::wifi_enable))
        .route("/api/v1/network/wifi/disable", post(c::wifi_disable))
        .route("/api/v1/network/wifi/connect", post(c::wifi_connect))
        .route("/api/v1/network/wifi/disconnect", post(c::wifi_disconnect))
        .route("/api/v1/network/bluetooth/enable", post(c::bt_enable))
        .route("/api/v1/network/bluetooth/disable", post(c::bt_disable))
        .route("/api/v1/network/bluetooth/scan/start", post(c::bt_scan_start))
        .route("/api/v1/network/bluetooth/scan/stop", post(c::bt_scan_stop))
        .route("/api/v1/network/bluetooth/pair", post(c::bt_pair))
        .route("/api/v1/network/bluetooth/unpair", post(c::bt_unpair))
        .route("/api/v1/gps/restart", post(c::gps_restart))
        .route("/api/v1/audio/mute", post(c::audio_mute))
        .route("/api/v1/audio/volume", post(c::audio_volume))
        .route("/api/v1/audio/beep", post(c::audio_beep))
        .route("/api/v1/system/reboot", post(c::system_reboot))
        .route("/api/v1/system/shutdown", post(c::system_shutdown))
        .with_state(api)
}

fn to_v<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

async fn section(State(api): S, f: impl FnOnce(&crate::state::State) -> serde_json::Value) -> Response {
    json_ok(&api.ctl.read(f))
}

async fn status(State(api): S) -> Response {
    json_ok(&api.ctl.read(|st| st.status()))
}

async fn health(State(api): S) -> Response {
    json_ok(&api.ctl.read(|st| st.health_body()))
}

/// A D-Bus failure on a request path, as the error of §6.5.
pub fn dbus_error(e: &DbusFail, backend: &'static str) -> ApiError {
    match e {
        DbusFail::NoBus => ApiError::new(StatusCode::BAD_GATEWAY, "dbus_unavailable"),
        DbusFail::Unavailable => ApiError::new(StatusCode::BAD_GATEWAY, e.code(backend)),
        DbusFail::Timeout => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "dbus_timeout"),
        DbusFail::PermissionDenied => ApiError::new(StatusCode::FORBIDDEN, "permission_denied"),
        DbusFail::Failed(n) => match n.as_str() {
            "no_wifi_device" => ApiError::new(StatusCode::CONFLICT, "no_wifi_device"),
            "no_bluetooth_adapter" => ApiError::new(StatusCode::CONFLICT, "no_bluetooth_adapter"),
            n if n.ends_with("NoSuchUnit") => ApiError::new(StatusCode::NOT_FOUND, "unit_not_found"),
            n if n.ends_with("NotPowered") => ApiError::new(StatusCode::CONFLICT, "invalid_state"),
            _ => ApiError::new(StatusCode::CONFLICT, "invalid_state"),
        },
    }
}

async fn wifi_scan(State(api): S) -> Response {
    let Some(conn) = api.bus.current() else {
        return ApiError::new(StatusCode::BAD_GATEWAY, "networkmanager_unavailable").into_response();
    };
    match network::scan(&api.ctl, &conn, &api.known).await {
        Ok(networks) => json_ok(&WifiScanResult {
            timestamp_ms: Some(api.ctl.clock().now_ms()),
            networks: Some(networks),
        }),
        Err(DbusFail::NoBus) => ApiError::new(StatusCode::BAD_GATEWAY, "networkmanager_unavailable").into_response(),
        Err(e) => dbus_error(&e, "networkmanager").into_response(),
    }
}

async fn bt_devices(State(api): S) -> Response {
    let Some(conn) = api.bus.current() else {
        return ApiError::new(StatusCode::BAD_GATEWAY, "bluez_unavailable").into_response();
    };
    match bluetooth::adapter(&api.ctl, &conn).await {
        Ok(view) => json_ok(&BluetoothDeviceList {
            timestamp_ms: Some(api.ctl.clock().now_ms()),
            devices: Some(bluetooth::device_list(&view)),
        }),
        Err(DbusFail::NoBus) => ApiError::new(StatusCode::BAD_GATEWAY, "bluez_unavailable").into_response(),
        Err(e) => dbus_error(&e, "bluez").into_response(),
    }
}

async fn metrics(State(api): S) -> Response {
    let mut out = String::with_capacity(8192);
    let sha = crate::probes::procfs::version_info().git_sha.unwrap_or_default();
    metrics::write_build_info(
        &mut out,
        env!("CARGO_PKG_VERSION"),
        &sha,
        api.started.elapsed().as_secs_f64(),
    );
    api.http.write_prometheus(&mut out);
    if let Some(hub) = api.ctl.hub() {
        hub.stats().write_prometheus(&mut out);
    }
    api.ctl.probe_seconds().write(&mut out, "probe_duration_seconds");
    api.ctl.probe_stuck_counts().write(&mut out, "probe_stuck_total");
    let _ = writeln!(out, "# TYPE probe_failures_total counter");
    for (k, v) in api.ctl.read(|st| st.failure_counts()) {
        let _ = writeln!(out, "probe_failures_total{{{k}}} {v}");
    }
    if let Ok(m) = api.metrics.lock() {
        // Keys are `name{labels}`: one `# TYPE` line per family.
        let mut family = "";
        for (k, v) in m.iter() {
            let name = k.split('{').next().unwrap_or(k);
            if name != family {
                let _ = writeln!(out, "# TYPE {name} counter");
                family = name;
            }
            let _ = writeln!(out, "{k} {v}");
        }
        // The common family of PROTOCOL.md §9, from the same counts.
        let _ = writeln!(out, "# TYPE ndefender_rate_limited_total counter");
        for (k, v) in m.iter() {
            if let Some(class) = k.strip_prefix("rate_limited_total{class=") {
                let _ = writeln!(out, "ndefender_rate_limited_total{{bucket={class} {v}");
            }
        }
    }
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], out).into_response()
}
