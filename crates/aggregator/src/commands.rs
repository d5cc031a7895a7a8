//! Command routes (aggregator §12): gates P → V → C → U → L → R, then the
//! target. Every authenticated request yields exactly one COMMAND_ACK, except 429s.

use crate::api::Api;
use crate::core::esp32 as esp32_state;
use crate::esp32::{Outcome, Route, SubmitError};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Extension;
use axum::Router;
use ndefender_contract::command::{CommandRequest, CommandResult};
use ndefender_service::http::{client_addr, json_ok, ApiError, Caller};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

type S = State<Arc<Api>>;

/// Rate-limit bucket of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Cmd,
    Dangerous,
}

pub fn router(api: Arc<Api>) -> Router {
    let esp =
        |r: Route| post(move |s: S, ci: ConnectInfo<SocketAddr>, h: HeaderMap, b: Bytes| esp32_command(s, ci, h, b, r));
    Router::new()
        .route("/api/v1/vrx/tune", esp(Route::VrxTune))
        .route("/api/v1/esp32/vrx/tune", esp(Route::Esp32VrxTune))
        .route("/api/v1/scan/start", esp(Route::ScanStart))
        .route("/api/v1/scan/stop", esp(Route::ScanStop))
        .route("/api/v1/scan/lock", esp(Route::ScanLock))
        .route("/api/v1/video/select", esp(Route::VideoSelect))
        .route("/api/v1/esp32/video/select", esp(Route::Esp32VideoSelect))
        .route("/api/v1/esp32/leds", esp(Route::Esp32Leds))
        .route("/api/v1/esp32/buzzer", esp(Route::Esp32Buzzer))
        .route("/api/v1/esp32/config", esp(Route::Esp32Config))
        .route("/api/v1/esp32/buttons/simulate", esp(Route::ButtonsSimulate))
        .with_state(api)
}

/// Consumes a token of `bucket` for `client`, or answers 429 (never acked).
pub fn rate_gate(api: &Api, bucket: Bucket, client: std::net::IpAddr) -> Result<(), ApiError> {
    let w = match bucket {
        Bucket::Cmd => &api.limits.cmd,
        Bucket::Dangerous => &api.limits.dangerous,
    };
    w.check(client, Instant::now())
        .map_err(|retry| ApiError::too_many("rate_limited", retry))
}

fn esp_refuse(api: &Api, id: &str, route: Route, err: ApiError) -> Response {
    let code = err.code.clone();
    api.core
        .mutate(|st| esp32_state::emit_ack(st, id, false, Some(&code), Some(route.firmware_cmd())));
    err.into_response()
}

async fn esp32_command(
    State(api): S,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
    route: Route,
) -> Response {
    let command_id = uuid::Uuid::new_v4().to_string();
    let client = client_addr(peer, &headers, &api.trusted_proxies);
    // Gates in the order of PROTOCOL.md §11.2. Parse the command body first.
    let req = match CommandRequest::parse(&body) {
        Ok(r) => r,
        Err(e) => return esp_refuse(&api, &command_id, route, ApiError::bad_request(e.code())),
    };
    // Validate the payload by translating it to the firmware command; nothing is written yet.
    let leds = api.core.read(|st| st.snap.vrx.led);
    let cmd = match crate::esp32::translate::translate(route, &req.payload, leds) {
        Ok(c) => c,
        Err(bad) => return esp_refuse(&api, &command_id, route, ApiError::invalid_field(bad.0)),
    };
    // Button simulation is for local clients only.
    if route == Route::ButtonsSimulate && !client.is_loopback() {
        return esp_refuse(
            &api,
            &command_id,
            route,
            ApiError::new(StatusCode::FORBIDDEN, "local_only"),
        );
    }
    // Rate limit last, so requests refused above never spend a token.
    if let Err(e) = rate_gate(&api, Bucket::Cmd, client) {
        return e.into_response();
    }
    if !route.supported() {
        return esp_refuse(
            &api,
            &command_id,
            route,
            ApiError::new(StatusCode::CONFLICT, "not_supported"),
        );
    }
    let Some(link) = api.esp32.clone() else {
        return esp_refuse(
            &api,
            &command_id,
            route,
            ApiError::new(StatusCode::CONFLICT, "esp32_not_connected"),
        );
    };
    // A manual tune during a scan would be overwritten at the next scan step.
    if matches!(route, Route::VrxTune | Route::Esp32VrxTune) && api.core.read(|st| st.snap.vrx.scan_state == "scanning")
    {
        let stop_id = uuid::Uuid::new_v4().to_string();
        let stop = crate::esp32::FwCommand {
            cmd: "STOP_SCAN",
            args: vec![],
        };
        if let Err(LinkFail::Firmware(e) | LinkFail::Host(e)) = run_on_link(&link, &stop_id, stop).await {
            // The tune itself was never written, so it gets its own refusal ack.
            return esp_refuse(&api, &command_id, route, e);
        }
    }
    match run_on_link(&link, &command_id, cmd).await {
        Ok(()) => {
            let ts = api.core.read(|st| st.clock.now_ms());
            json_ok(&CommandResult::accepted(route.name(), command_id, ts))
        }
        // 429s are never acked (PROTOCOL.md §5).
        Err(LinkFail::Host(e)) if e.status == StatusCode::TOO_MANY_REQUESTS => e.into_response(),
        // The firmware's answer was already published by the link as the ack.
        Err(LinkFail::Firmware(e)) => e.into_response(),
        Err(LinkFail::Host(e)) => esp_refuse(&api, &command_id, route, e),
    }
}

/// How a command failed: the firmware refused it (its ack is already published), or the
/// host gave up (busy, not connected, timeout: the caller publishes the host-side ack).
enum LinkFail {
    Firmware(ApiError),
    Host(ApiError),
}

/// Runs one firmware command; the firmware's own ack is published by the link.
async fn run_on_link(link: &crate::esp32::Esp32Link, id: &str, cmd: crate::esp32::FwCommand) -> Result<(), LinkFail> {
    let host = |status, code: &'static str| LinkFail::Host(ApiError::new(status, code));
    let rx = match link.submit(id.to_owned(), cmd) {
        Ok(rx) => rx,
        Err(SubmitError::Busy) => return Err(LinkFail::Host(ApiError::too_many("busy", 1))),
        Err(SubmitError::NotConnected) => return Err(host(StatusCode::CONFLICT, "esp32_not_connected")),
    };
    match rx.await {
        Ok(Outcome::Ack { ok: true, .. }) => Ok(()),
        Ok(Outcome::Ack { ok: false, err }) => Err(LinkFail::Firmware(ApiError::new(
            StatusCode::CONFLICT,
            err.unwrap_or_else(|| "invalid_state".to_owned()),
        ))),
        Ok(Outcome::Timeout) => Err(host(StatusCode::GATEWAY_TIMEOUT, "esp32_timeout")),
        Ok(Outcome::NotConnected) | Err(_) => Err(host(StatusCode::CONFLICT, "esp32_not_connected")),
    }
}

/// Where a relayed route goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Controller,
    Antsdr,
    RemoteId,
}

/// A relayed route: aggregator §12's table.
#[derive(Debug, Clone, Copy)]
pub struct RelayRoute {
    /// Path below /api/v1 (also the CommandResult `command`).
    pub name: &'static str,
    pub target: Target,
    pub confirm: bool,
    pub unsafe_gate: bool,
    pub bucket: Bucket,
}

const fn rr(name: &'static str, target: Target, confirm: bool, unsafe_gate: bool, bucket: Bucket) -> RelayRoute {
    RelayRoute {
        name,
        target,
        confirm,
        unsafe_gate,
        bucket,
    }
}

/// Every relayed route but `services/{name}/restart`.
pub const RELAY_ROUTES: &[RelayRoute] = &[
    rr("system/reboot", Target::Controller, true, true, Bucket::Dangerous),
    rr("system/shutdown", Target::Controller, true, true, Bucket::Dangerous),
    rr("gps/restart", Target::Controller, true, false, Bucket::Dangerous),
    rr("audio/mute", Target::Controller, false, false, Bucket::Cmd),
    rr("audio/volume", Target::Controller, false, false, Bucket::Cmd),
    rr("audio/beep", Target::Controller, false, false, Bucket::Cmd),
    rr("network/wifi/enable", Target::Controller, false, false, Bucket::Cmd),
    rr("network/wifi/disable", Target::Controller, false, false, Bucket::Cmd),
    rr("network/wifi/connect", Target::Controller, false, false, Bucket::Cmd),
    rr("network/wifi/disconnect", Target::Controller, false, false, Bucket::Cmd),
    rr(
        "network/bluetooth/enable",
        Target::Controller,
        false,
        false,
        Bucket::Cmd,
    ),
    rr(
        "network/bluetooth/disable",
        Target::Controller,
        false,
        false,
        Bucket::Cmd,
    ),
    rr(
        "network/bluetooth/scan/start",
        Target::Controller,
        false,
        false,
        Bucket::Cmd,
    ),
    rr(
        "network/bluetooth/scan/stop",
        Target::Controller,
        false,
        false,
        Bucket::Cmd,
    ),
    rr("network/bluetooth/pair", Target::Controller, false, false, Bucket::Cmd),
    rr(
        "network/bluetooth/unpair",
        Target::Controller,
        false,
        false,
        Bucket::Cmd,
    ),
    rr("antsdr/sweep/start", Target::Antsdr, false, false, Bucket::Cmd),
    rr("antsdr/sweep/stop", Target::Antsdr, false, false, Bucket::Cmd),
    rr("antsdr/gain/set", Target::Antsdr, false, false, Bucket::Cmd),
    rr("antsdr/device/reset", Target::Antsdr, true, false, Bucket::Dangerous),
    rr(
        "antsdr/device/calibrate",
        Target::Antsdr,
        true,
        false,
        Bucket::Dangerous,
    ),
    rr("remote_id/monitor/start", Target::RemoteId, false, false, Bucket::Cmd),
    rr("remote_id/monitor/stop", Target::RemoteId, false, false, Bucket::Cmd),
    rr("remote_id/replay/start", Target::RemoteId, false, false, Bucket::Cmd),
    rr("remote_id/replay/stop", Target::RemoteId, false, false, Bucket::Cmd),
];

pub fn relay_router(api: Arc<Api>) -> Router {
    let mut r = Router::new();
    for route in RELAY_ROUTES {
        let route = *route;
        r = r.route(
            &format!("/api/v1/{}", route.name),
            post(
                move |s: S, ci: ConnectInfo<SocketAddr>, caller: Option<Extension<Caller>>, h: HeaderMap, b: Bytes| {
                    relayed_command(s, ci, caller, h, b, route, None)
                },
            ),
        );
    }
    r.route(
        "/api/v1/services/{name}/restart",
        post(
            |s: S,
             ci: ConnectInfo<SocketAddr>,
             caller: Option<Extension<Caller>>,
             axum::extract::Path(name): axum::extract::Path<String>,
             h: HeaderMap,
             b: Bytes| async move {
                let route = rr("services/restart", Target::Controller, true, false, Bucket::Dangerous);
                relayed_command(s, ci, caller, h, b, route, Some(name)).await
            },
        ),
    )
    .with_state(api)
}

fn valid_unit_name(n: &str) -> bool {
    (1..=128).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'@' | b'.' | b'_' | b':' | b'-'))
}

/// One COMMAND_ACK for a relayed command. `command_id` is the CommandResult's id on
/// success; a refused request has no CommandResult, so its ack gets an id of its own
/// (contract v1.1: every system-side ack carries one).
fn system_ack(api: &Api, route: &str, name: Option<&str>, result: Result<&str, &str>) {
    let mut ack = match result {
        Ok(id) => ndefender_contract::events::SystemCommandAck::ok(route).with_command_id(id),
        Err(code) => ndefender_contract::events::SystemCommandAck::failed(route, code)
            .with_command_id(uuid::Uuid::new_v4().to_string()),
    };
    ack.name = name.map(str::to_owned);
    api.core.mutate(|st| {
        let ts = st.clock.now_ms();
        st.emit(
            ndefender_contract::kind::COMMAND_ACK,
            ts,
            ndefender_contract::Source::System,
            &ack,
        );
    });
}

fn refuse(api: &Api, route: &str, name: Option<&str>, err: ApiError) -> Response {
    if err.status != StatusCode::TOO_MANY_REQUESTS {
        system_ack(api, route, name, Err(&err.code));
    }
    err.into_response()
}

async fn relayed_command(
    State(api): S,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Bytes,
    route: RelayRoute,
    unit: Option<String>,
) -> Response {
    let client = client_addr(peer, &headers, &api.trusted_proxies);
    let name = unit.as_deref();
    // Gates in the order of PROTOCOL.md §11.2. Parse the command body first.
    let req = match CommandRequest::parse(&body) {
        Ok(r) => r,
        Err(e) => return refuse(&api, route.name, name, ApiError::bad_request(e.code())),
    };
    // Validate the unit name of a service restart.
    if let Some(u) = name {
        if !valid_unit_name(u) {
            return refuse(&api, route.name, name, ApiError::invalid_field("name"));
        }
    }
    // Dangerous routes need `confirm: true`.
    if route.confirm && !req.confirm {
        return refuse(&api, route.name, name, ApiError::bad_request("confirm_required"));
    }
    // The unsafe switch: defence in depth; the controller has its own switch too.
    if route.unsafe_gate && !api.allow_unsafe {
        return refuse(
            &api,
            route.name,
            name,
            ApiError::new(StatusCode::FORBIDDEN, "unsafe_disabled"),
        );
    }
    // Rate limit last, so requests refused above never spend a token.
    if let Err(e) = rate_gate(&api, route.bucket, client) {
        return e.into_response();
    }
    let (up, path) = match route.target {
        Target::Controller => (
            &api.controller,
            match name {
                Some(u) => format!("services/{u}/restart"),
                None => route.name.to_owned(),
            },
        ),
        Target::Antsdr => (&api.antsdr, route.name.trim_start_matches("antsdr/").to_owned()),
        Target::RemoteId => (&api.remoteid, route.name.trim_start_matches("remote_id/").to_owned()),
    };
    let timeout = if route.name == "network/wifi/connect" {
        api.wifi_connect_timeout
    } else {
        api.command_timeout
    };
    if route.target == Target::Controller && !api.controller_enabled {
        return refuse(
            &api,
            route.name,
            name,
            ApiError::new(StatusCode::BAD_GATEWAY, "system_controller_unavailable"),
        );
    }
    let now = api.core.read(|st| st.clock.now_ms());
    // The upstream's rate limits and audit trail name the real client, not this daemon.
    let on_behalf = caller.map(|Extension(c)| crate::relay::OnBehalf {
        name: c.on_behalf_of.unwrap_or(c.identity.name),
        client,
    });
    match crate::relay::relay(up, route.name, &path, &req, timeout, now, on_behalf.as_ref()).await {
        crate::relay::Relayed::Ok(result) => {
            // The controller publishes its own (possibly asynchronous) ack, which the follower forwards.
            if route.target != Target::Controller {
                system_ack(&api, route.name, name, Ok(&result.command_id));
            }
            json_ok(&result)
        }
        crate::relay::Relayed::Refused(e) => {
            if route.target == Target::Controller || e.status == StatusCode::TOO_MANY_REQUESTS {
                e.into_response()
            } else {
                refuse(&api, route.name, name, e)
            }
        }
        crate::relay::Relayed::Failed(e) => refuse(&api, route.name, name, e),
    }
}
