//! REST reads (aggregator §11), served from the state store.

use crate::core::{Core, Feed};
use crate::upstream::{Upstream, UpstreamError};
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ndefender_contract::command::{AggregatorHealth, ContactList};
use ndefender_contract::devices::*;
use ndefender_contract::enums::{RemoteIdHealth, RfStatus, Status};
use ndefender_contract::system::{BluetoothDeviceList, BluetoothState, WifiScanResult, WifiState};
use ndefender_service::http::{json_ok, UPSTREAM_ERROR_HEADER};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the handlers share.
pub struct Api {
    pub core: Core,
    pub esp32: Option<crate::esp32::Esp32Link>,
    pub limits: Limits,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub started: Instant,
    pub remoteid: Upstream,
    pub controller: Upstream,
    pub antsdr: Upstream,
    pub get_timeout: Duration,
    pub command_timeout: Duration,
    pub wifi_connect_timeout: Duration,
    pub allow_unsafe: bool,
    pub controller_enabled: bool,
    pub feed_stats: Vec<(crate::core::Feed, ndefender_tail::TailStats)>,
    pub http: Arc<ndefender_service::metrics::HttpMetrics>,
    /// Detection history (`None` when disabled).
    pub history: Option<crate::history::History>,
}

/// The two rate-limit buckets (aggregator §13).
pub struct Limits {
    pub cmd: ndefender_service::ratelimit::SlidingWindow,
    pub dangerous: ndefender_service::ratelimit::SlidingWindow,
}

type S = State<Arc<Api>>;

pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/status", get(status))
        .route("/api/v1/contacts", get(contacts))
        .route("/api/v1/system", get(|s: S| section(s, |st| to_v(&st.snap.system))))
        .route("/api/v1/power", get(|s: S| section(s, |st| to_v(&st.snap.power))))
        .route("/api/v1/rf", get(|s: S| section(s, |st| to_v(&st.snap.rf))))
        .route("/api/v1/video", get(|s: S| section(s, |st| to_v(&st.snap.video))))
        .route("/api/v1/network", get(|s: S| section(s, |st| to_v(&st.snap.network))))
        .route("/api/v1/audio", get(|s: S| section(s, |st| to_v(&st.snap.audio))))
        .route("/api/v1/gps", get(|s: S| section(s, |st| to_v(&st.snap.gps))))
        .route("/api/v1/esp32", get(|s: S| section(s, |st| to_v(&st.snap.esp32))))
        .route("/api/v1/antsdr", get(|s: S| section(s, |st| to_v(&st.snap.antsdr))))
        .route("/api/v1/services", get(|s: S| section(s, |st| to_v(&st.snap.services))))
        .route("/api/v1/esp32/config", get(esp32_config))
        .route("/api/v1/remote_id", get(remote_id))
        .route("/api/v1/remote_id/status", get(remote_id))
        .route("/api/v1/remote_id/contacts", get(remote_id_contacts))
        .route("/api/v1/remote_id/replay/state", get(replay_state))
        .route("/api/v1/remote_id/stats", get(remote_id_stats))
        .route("/api/v1/network/wifi/state", get(wifi_state))
        .route("/api/v1/network/wifi/scan", get(wifi_scan))
        .route("/api/v1/network/bluetooth/state", get(bt_state))
        .route("/api/v1/network/bluetooth/devices", get(bt_devices))
        .route("/api/v1/antsdr/device", get(antsdr_device))
        .route("/api/v1/antsdr/sweep/state", get(antsdr_sweep))
        .route("/api/v1/antsdr/gain", get(antsdr_gain))
        .route("/api/v1/antsdr/stats", get(antsdr_stats))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/api/v1/metrics", get(crate::metrics::metrics))
        .with_state(api)
}

fn to_v<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|_| json!({}))
}

async fn section(State(api): S, f: impl FnOnce(&crate::core::State) -> Value) -> Response {
    let v = api.core.read(f);
    json_ok(&v)
}

async fn status(State(api): S) -> Response {
    let snap = api.core.read(|st| st.snapshot());
    json_ok(&snap)
}

async fn contacts(State(api): S) -> Response {
    let (t, contacts) = api.core.read(|st| (st.clock.now_ms(), st.contacts.sorted()));
    json_ok(&ContactList {
        timestamp_ms: t,
        contacts,
    })
}

async fn remote_id_contacts(State(api): S) -> Response {
    let (t, contacts) = api.core.read(|st| (st.clock.now_ms(), st.contacts.sorted_rid()));
    json_ok(&ContactList {
        timestamp_ms: t,
        contacts,
    })
}

async fn health(State(api): S) -> Response {
    let body = api.core.read(|st| {
        let cfg = &st.cfg;
        let mut inputs = std::collections::BTreeMap::new();
        let rid = if !cfg.remoteid.enabled {
            "disabled"
        } else {
            match st.snap.remote_id.state {
                RemoteIdHealth::Ok | RemoteIdHealth::Replay => "ok",
                RemoteIdHealth::Degraded => "degraded",
                RemoteIdHealth::Offline => "offline",
            }
        };
        let rf = if !cfg.antsdr.enabled {
            "disabled"
        } else {
            match st.snap.rf.status {
                RfStatus::Ok => "ok",
                RfStatus::Offline => "offline",
                RfStatus::Degraded | RfStatus::Unknown => "degraded",
            }
        };
        let esp = if !cfg.esp32.enabled {
            "disabled"
        } else if st.snap.esp32.connected == Some(true) {
            "ok"
        } else {
            "offline"
        };
        let ctl = if !cfg.system_controller.enabled {
            "disabled"
        } else {
            match st.snap.system.status {
                Some(Status::Ok) => "ok",
                Some(Status::Degraded) => "degraded",
                _ => "offline",
            }
        };
        inputs.insert(Feed::RemoteId.name().to_owned(), rid.to_owned());
        inputs.insert(Feed::Antsdr.name().to_owned(), rf.to_owned());
        inputs.insert("esp32".to_owned(), esp.to_owned());
        inputs.insert("system_controller".to_owned(), ctl.to_owned());
        let all_ok = inputs.values().all(|v| v == "ok" || v == "disabled");
        AggregatorHealth {
            status: if all_ok { "ok" } else { "degraded" }.to_owned(),
            timestamp_ms: st.clock.now_ms(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_s: api.started.elapsed().as_secs(),
            inputs,
        }
    });
    json_ok(&body)
}

async fn esp32_config(State(api): S) -> Response {
    let body = api.core.read(|st| {
        let c = &st.cfg.esp32;
        let mut config = Map::new();
        let port = if c.port.is_empty() { "auto" } else { c.port.as_str() };
        config.insert("port".into(), json!(port));
        config.insert("baud".into(), json!(c.baud));
        config.insert(
            "scan_defaults".into(),
            json!({"dwell_ms":200,"step_hz":2000000u64,"start_hz":5645000000u64,"stop_hz":5865000000u64}),
        );
        Esp32ConfigBody {
            timestamp_ms: st.clock.now_ms(),
            schema_version: Some("1".into()),
            config,
        }
    });
    json_ok(&body)
}

async fn remote_id(State(api): S) -> Response {
    let body = api.core.read(|st| {
        let s = &st.snap.remote_id;
        RemoteIdStateBody {
            timestamp_ms: Some(st.clock.now_ms()),
            state: Some(s.state),
            mode: Some(s.mode),
            capture_active: s.capture_active,
            contacts_active: Some(st.contacts.rid.len() as u64),
            last_update_ms: s.last_update_ms,
            last_error: s.last_error.clone(),
        }
    });
    json_ok(&body)
}

async fn replay_state(State(api): S) -> Response {
    let body = api.core.read(|st| {
        let mut b = st.replay_data.clone().unwrap_or_else(|| RemoteIdReplayStateBody {
            active: Some(false),
            source: Some("none".into()),
            ..Default::default()
        });
        b.timestamp_ms = Some(st.clock.now_ms());
        b
    });
    json_ok(&body)
}

/// Proxies a GET; on failure answers 200 with `fallback` and the upstream-error header.
async fn proxied<T: DeserializeOwned + Serialize>(
    api: &Api,
    up: &Upstream,
    path: &str,
    fallback: impl FnOnce(UpstreamError) -> Value,
) -> Response {
    match up.get::<T>(path, api.get_timeout).await {
        Ok(v) => json_ok(&v),
        Err(e) => {
            let code = e.code(up.name);
            tracing::debug!(upstream = up.name, path, code, "proxy fallback");
            let mut r = json_ok(&fallback(e)).into_response();
            if let Ok(h) = HeaderValue::from_str(&code) {
                r.headers_mut().insert(UPSTREAM_ERROR_HEADER, h);
            }
            r
        }
    }
}

fn now(api: &Api) -> u64 {
    api.core.read(|st| st.clock.now_ms())
}

async fn remote_id_stats(State(api): S) -> Response {
    let t = now(&api);
    let up = api.remoteid.clone();
    proxied::<RemoteIdStats>(
        &api,
        &up,
        "/stats",
        |e| json!({"timestamp_ms": t, "last_error": e.code("remoteid")}),
    )
    .await
}

async fn wifi_state(State(api): S) -> Response {
    let cached = api.core.read(|st| st.snap.network.wifi.clone().unwrap_or_default());
    let t = now(&api);
    let up = api.controller.clone();
    proxied::<WifiState>(&api, &up, "/network/wifi/state", |e| {
        let mut c = cached;
        c.timestamp_ms = Some(t);
        c.last_error = Some(e.code("system_controller"));
        to_v(&c)
    })
    .await
}

async fn wifi_scan(State(api): S) -> Response {
    let t = now(&api);
    let up = api.controller.clone();
    proxied::<WifiScanResult>(
        &api,
        &up,
        "/network/wifi/scan",
        |_| json!({"timestamp_ms": t, "networks": []}),
    )
    .await
}

async fn bt_state(State(api): S) -> Response {
    let cached = api
        .core
        .read(|st| st.snap.network.bluetooth.clone().unwrap_or_default());
    let t = now(&api);
    let up = api.controller.clone();
    proxied::<BluetoothState>(&api, &up, "/network/bluetooth/state", |e| {
        let mut c = cached;
        c.timestamp_ms = Some(t);
        c.last_error = Some(e.code("system_controller"));
        to_v(&c)
    })
    .await
}

async fn bt_devices(State(api): S) -> Response {
    let t = now(&api);
    let up = api.controller.clone();
    proxied::<BluetoothDeviceList>(
        &api,
        &up,
        "/network/bluetooth/devices",
        |_| json!({"timestamp_ms": t, "devices": []}),
    )
    .await
}

async fn antsdr_device(State(api): S) -> Response {
    let cached = api.core.read(|st| st.snap.antsdr.clone());
    let t = now(&api);
    let up = api.antsdr.clone();
    proxied::<AntsdrDeviceState>(&api, &up, "/device", |_| {
        let mut c = cached;
        c.timestamp_ms = Some(t);
        c.last_error = Some("antsdr_unavailable".into());
        to_v(&c)
    })
    .await
}

async fn antsdr_sweep(State(api): S) -> Response {
    let t = now(&api);
    let up = api.antsdr.clone();
    proxied::<AntsdrSweepState>(
        &api,
        &up,
        "/sweep/state",
        |_| json!({"timestamp_ms": t, "last_error": "antsdr_unavailable"}),
    )
    .await
}

async fn antsdr_gain(State(api): S) -> Response {
    let t = now(&api);
    let up = api.antsdr.clone();
    proxied::<AntsdrGainState>(&api, &up, "/gain", |_| json!({"timestamp_ms": t})).await
}

async fn antsdr_stats(State(api): S) -> Response {
    let t = now(&api);
    let up = api.antsdr.clone();
    proxied::<AntsdrStats>(
        &api,
        &up,
        "/stats",
        |_| json!({"timestamp_ms": t, "last_error": "antsdr_unavailable"}),
    )
    .await
}
