//! Command routes (system-controller §6.2–§6.4). Every handler runs the gates in
//! order — body, payload, confirm, allowlist, allow_unsafe, cooldown and rate
//! limit, backend — and every request except a 429 yields exactly one COMMAND_ACK.

use super::{dbus_error, Api, S};
use crate::config::unit_name;
use crate::dbus::DbusFail;
use crate::gates::ratelimit::Class;
use crate::gates::{
    confirm_required, conflict, forbidden, valid_bt_addr, valid_unit_name, valid_wifi_password, Payload,
};
use crate::probes::audio::Tone;
use crate::probes::logind::{self, PowerAction};
use crate::probes::{bluetooth, network, systemd};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ndefender_contract::command::{CommandRequest, CommandResult};
use ndefender_contract::enums::LogLevel;
use ndefender_contract::events::SystemCommandAck;
use ndefender_service::http::{client_addr, json_ok, ApiError};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use zbus::Connection;

/// One command request on its way through the gates.
struct Cmd {
    api: Arc<Api>,
    command: &'static str,
    name: Option<String>,
    client: IpAddr,
    /// One id per request: the CommandResult's `command_id` and every COMMAND_ACK it
    /// yields carry it (contract v1.1), so a client matches the ack of its own command.
    command_id: String,
}

impl Cmd {
    fn new(api: &Arc<Api>, command: &'static str, peer: SocketAddr, headers: &HeaderMap) -> Cmd {
        Cmd {
            api: api.clone(),
            command,
            name: None,
            client: client_addr(peer, headers, &api.trusted),
            command_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    fn ack(&self, ok: bool, reason: Option<&str>) {
        let mut a = if ok {
            SystemCommandAck::ok(self.command)
        } else {
            SystemCommandAck::failed(self.command, reason.unwrap_or("internal_error"))
        };
        if ok {
            a.reason = reason.map(str::to_owned);
        }
        if let Some(n) = &self.name {
            a = a.with_name(n.clone());
        }
        self.api.ctl.ack(a.with_command_id(self.command_id.clone()));
    }

    fn count(&self, outcome: &str) {
        self.api.count(format!(
            "commands_total{{command=\"{}\",outcome=\"{outcome}\"}}",
            self.command
        ));
    }

    /// Refusal at any stage but the rate limit: one ack, then the error.
    fn refuse(&self, e: ApiError) -> Response {
        self.ack(false, Some(&e.code));
        self.count(&e.code);
        e.into_response()
    }

    fn parse(&self, body: &Bytes) -> Early<CommandRequest> {
        CommandRequest::parse(body).map_err(|e| Box::new(self.refuse(ApiError::bad_request(e.code()))))
    }

    /// Steps 7–8: cooldown and rate limit. A 429 is counted, never acked.
    fn admit(&self, class: Class, cooldown: Option<(&str, Duration)>) -> Early<()> {
        let now = self.api.ctl.clock().monotonic();
        self.api.limiter.admit(class, self.client, cooldown, now).map_err(|r| {
            self.api
                .count(format!("rate_limited_total{{class=\"{}\"}}", class.name()));
            self.count("rate_limited");
            Box::new(ApiError::too_many("rate_limited", r.0).into_response())
        })
    }

    fn conn(&self, backend: &'static str) -> Early<Connection> {
        self.api
            .bus
            .current()
            .ok_or_else(|| Box::new(self.refuse(dbus_error(&DbusFail::NoBus, backend))))
    }

    fn result(&self) -> Response {
        json_ok(&CommandResult::accepted(
            self.command,
            self.command_id.clone(),
            self.api.ctl.clock().now_ms(),
        ))
    }

    /// Immediate success: ack first, then the 200.
    fn done(&self, reason: Option<&str>) -> Response {
        self.ack(true, reason);
        self.count("ok");
        self.result()
    }

    fn fail_dbus(&self, e: &DbusFail, backend: &'static str) -> Response {
        self.refuse(dbus_error(e, backend))
    }

    /// A payload or policy check: its refusal is answered (one ack) and returned early.
    fn check<T>(&self, r: Result<T, ApiError>) -> Early<T> {
        r.map_err(|e| Box::new(self.refuse(e)))
    }

    /// The answer to the step that completes the command: success, or its refusal.
    fn answer(&self, r: Result<(), ApiError>) -> Response {
        match r {
            Ok(()) => self.done(None),
            Err(e) => self.refuse(e),
        }
    }

    /// [`Cmd::answer`] for a D-Bus call.
    fn settle(&self, r: Result<(), DbusFail>, backend: &'static str) -> Response {
        self.answer(r.map_err(|e| dbus_error(&e, backend)))
    }

    /// The BlueZ device with this address, or the refusal (404 when there is none).
    async fn bt_device(&self, conn: &Connection, addr: &str) -> Early<bluetooth::Dev> {
        match bluetooth::find_device(&self.api.ctl, conn, addr).await {
            Ok(Some(d)) => Ok(d),
            Ok(None) => Err(Box::new(
                self.refuse(ApiError::new(StatusCode::NOT_FOUND, "device_not_found")),
            )),
            Err(e) => Err(Box::new(self.fail_dbus(&e, "bluez"))),
        }
    }

    /// Claims an asynchronous target (§6.3 "one at a time").
    fn claim(&self, target: String) -> Early<Claim> {
        let mut set = self
            .api
            .in_progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !set.insert(target.clone()) {
            drop(set);
            return Err(Box::new(self.refuse(conflict("command_in_progress"))));
        }
        Ok(Claim {
            api: self.api.clone(),
            target,
        })
    }

    /// Publishes the final outcome of an asynchronous command.
    fn finish(&self, outcome: Result<Option<&str>, &str>) {
        match outcome {
            Ok(reason) => {
                self.ack(true, reason);
                self.count("ok");
            }
            Err(code) => {
                self.ack(false, Some(code));
                self.count(code);
            }
        }
    }

    fn detached(&self) -> Cmd {
        Cmd {
            api: self.api.clone(),
            command: self.command,
            name: self.name.clone(),
            client: self.client,
            command_id: self.command_id.clone(),
        }
    }
}

/// Releases an asynchronous target when the command ends, however it ends.
struct Claim {
    api: Arc<Api>,
    target: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut s) = self.api.in_progress.lock() {
            s.remove(&self.target);
        }
    }
}

/// A gate that already answered: the response to return (boxed, it is large).
type Early<T> = Result<T, Box<Response>>;

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return *r,
        }
    };
}

type Peer = ConnectInfo<SocketAddr>;

// ---- services ------------------------------------------------------------------

pub async fn service_restart(
    State(api): S,
    ConnectInfo(peer): Peer,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut c = Cmd::new(&api, "services/restart", peer, &headers);
    if !valid_unit_name(&name) {
        return c.refuse(ApiError::not_found());
    }
    c.name = Some(name.clone());
    let req = tri!(c.parse(&body));
    if !req.confirm {
        return c.refuse(confirm_required());
    }
    if !api.ctl.cfg().restart_allowed(&name) {
        return c.refuse(forbidden("unit_not_allowed"));
    }
    let unit = unit_name(&name);
    let cd = Duration::from_secs(api.ctl.cfg().limits.unit_cooldown_s);
    tri!(c.admit(Class::Service, Some((&unit, cd))));
    restart_unit(c, unit, false).await
}

pub async fn gps_restart(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "gps/restart", peer, &headers);
    let req = tri!(c.parse(&body));
    if !req.confirm {
        return c.refuse(confirm_required());
    }
    let unit = unit_name(&api.ctl.cfg().gps.unit);
    let cd = Duration::from_secs(api.ctl.cfg().limits.unit_cooldown_s);
    // The GPS restart shares the cooldown of its unit.
    tri!(c.admit(Class::Dangerous, Some((&unit, cd))));
    restart_unit(c, unit, true).await
}

const OWN_UNIT: &str = "ndefender-system-controller.service";

async fn restart_unit(c: Cmd, unit: String, gps: bool) -> Response {
    let conn = tri!(c.conn("systemd"));
    let claim = tri!(c.claim(format!("unit:{unit}")));
    let t = Duration::from_millis(c.api.ctl.cfg().probes.dbus_timeout_ms);
    if unit == OWN_UNIT {
        // Restarting ourselves cuts the reply off: answer and ack first.
        c.ack(true, Some("self_restart"));
        c.count("ok");
        let resp = c.result();
        tokio::spawn(async move {
            let _claim = claim;
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Err(e) = systemd::restart(&conn, &unit, t).await {
                tracing::error!(error = ?e, "self restart failed");
            }
        });
        return resp;
    }
    let job = match systemd::restart(&conn, &unit, t).await {
        Ok(j) => j,
        Err(e) => return c.fail_dbus(&e, "systemd"),
    };
    let limit = Duration::from_secs(c.api.ctl.cfg().services.restart_timeout_s);
    let d = c.detached();
    tokio::spawn(async move {
        let _claim = claim;
        let outcome = job.wait(limit).await;
        match &outcome {
            Ok(()) => d.finish(Ok(None)),
            Err(code) => d.finish(Err(code)),
        }
        if gps && outcome.is_ok() {
            d.api.gps_reconnect.notify_one();
        }
    });
    c.result()
}

// ---- Wi-Fi ------------------------------------------------------------------------

fn link_loss_confirm(api: &Api, req: &CommandRequest) -> Result<(), ApiError> {
    if api.ctl.cfg().safety.confirm_link_loss && !req.confirm {
        return Err(confirm_required());
    }
    Ok(())
}

/// The `enabled` member of an enable route (default true).
fn enabled_flag(req: &CommandRequest) -> Result<bool, ApiError> {
    Ok(Payload(&req.payload).opt_bool("enabled")?.unwrap_or(true))
}

async fn set_wifi(c: Cmd, on: bool) -> Response {
    tri!(c.admit(Class::Network, None));
    let conn = tri!(c.conn("networkmanager"));
    c.settle(network::set_wireless(&c.api.ctl, &conn, on).await, "networkmanager")
}

pub async fn wifi_enable(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "network/wifi/enable", peer, &headers);
    let req = tri!(c.parse(&body));
    let on = tri!(c.check(enabled_flag(&req)));
    if !on {
        tri!(c.check(link_loss_confirm(&api, &req)));
    }
    set_wifi(c, on).await
}

pub async fn wifi_disable(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "network/wifi/disable", peer, &headers);
    let req = tri!(c.parse(&body));
    tri!(c.check(link_loss_confirm(&api, &req)));
    set_wifi(c, false).await
}

pub async fn wifi_disconnect(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "network/wifi/disconnect", peer, &headers);
    let req = tri!(c.parse(&body));
    tri!(c.check(link_loss_confirm(&api, &req)));
    tri!(c.admit(Class::Network, None));
    let conn = tri!(c.conn("networkmanager"));
    c.settle(network::disconnect(&api.ctl, &conn).await, "networkmanager")
}

pub async fn wifi_connect(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "network/wifi/connect", peer, &headers);
    let req = tri!(c.parse(&body));
    let p = Payload(&req.payload);
    let parsed = (|| {
        let ssid = p.req_str("ssid")?;
        if ssid.is_empty() || ssid.len() > 32 {
            return Err(ApiError::invalid_field("ssid"));
        }
        let password = p.opt_str("password")?;
        if password.is_some_and(|pw| !valid_wifi_password(pw)) {
            return Err(ApiError::invalid_field("password"));
        }
        let hidden = p.opt_bool("hidden")?.unwrap_or(false);
        let autoconnect = p.opt_bool("autoconnect")?.unwrap_or(false);
        let replace_psk = p.opt_bool("replace_psk")?.unwrap_or(false);
        if replace_psk && password.is_none() {
            return Err(ApiError::invalid_field("password"));
        }
        Ok(network::ConnectRequest {
            ssid: ssid.to_owned(),
            password: password.map(str::to_owned),
            hidden,
            autoconnect,
            replace_psk,
        })
    })();
    let creq = tri!(c.check(parsed));
    tri!(c.admit(Class::Network, None));
    let conn = tri!(c.conn("networkmanager"));
    let claim = tri!(c.claim("wifi".into()));
    let wifi = api.ctl.read(|st| st.network.wifi.clone());
    if wifi.as_ref().is_some_and(|w| w.enabled == Some(false)) {
        return c.refuse(conflict("wifi_disabled"));
    }
    let saved = match network::saved_profile(&api.ctl, &conn, &creq.ssid).await {
        Ok(s) => s,
        Err(e) => return c.fail_dbus(&e, "networkmanager"),
    };
    tri!(c.check(psk_policy(&c, &headers, saved.is_some(), &creq)));
    let active = match network::connect(&api.ctl, &conn, creq, saved).await {
        Ok(a) => a,
        Err(e) => return c.fail_dbus(&e, "networkmanager"),
    };
    let limit = Duration::from_secs(api.ctl.cfg().network.connect_timeout_s);
    let d = c.detached();
    tokio::spawn(async move {
        let _claim = claim;
        match network::follow_activation(&conn, &active, limit).await {
            Ok(()) => d.finish(Ok(None)),
            Err(code) => d.finish(Err(&code)),
        }
    });
    c.result()
}

/// Issue 13 §8: a saved profile's password is never overwritten by accident. A `password` for an
/// SSID that already has a profile is refused (409 `profile_exists`) unless the request says
/// `"replace_psk": true`; without a password the saved profile is used as it is.
fn psk_policy(c: &Cmd, headers: &HeaderMap, saved: bool, req: &network::ConnectRequest) -> Result<(), ApiError> {
    if !saved || req.password.is_none() {
        return Ok(());
    }
    if !req.replace_psk {
        return Err(conflict("profile_exists"));
    }
    may_replace_psk(c, headers)
}

/// Replacing a saved PSK is an admin action (issue 13 §1, §8). This is where the role check
/// gates it: roles and tokens are being added to the shared service crate; until then the only
/// credential is `server.api_key`, which means admin, so every authenticated caller may.
fn may_replace_psk(_c: &Cmd, _headers: &HeaderMap) -> Result<(), ApiError> {
    Ok(())
}

// ---- Bluetooth --------------------------------------------------------------------

async fn set_bt(c: Cmd, on: bool) -> Response {
    tri!(c.admit(Class::Network, None));
    let conn = tri!(c.conn("bluez"));
    c.settle(bluetooth::set_powered(&c.api.ctl, &conn, on).await, "bluez")
}

pub async fn bt_enable(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "network/bluetooth/enable", peer, &headers);
    let req = tri!(c.parse(&body));
    let on = tri!(c.check(enabled_flag(&req)));
    set_bt(c, on).await
}

pub async fn bt_disable(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "network/bluetooth/disable", peer, &headers);
    let _ = tri!(c.parse(&body));
    set_bt(c, false).await
}

pub async fn bt_scan_start(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "network/bluetooth/scan/start", peer, &headers);
    let _ = tri!(c.parse(&body));
    tri!(c.admit(Class::Network, None));
    let conn = tri!(c.conn("bluez"));
    if let Err(e) = bluetooth::discovery(&api.ctl, &conn, true).await {
        return c.fail_dbus(&e, "bluez");
    }
    // A field kit must not leave 2.4 GHz discovery running: stop it ourselves.
    let gen = api.bt_scan_generation.fetch_add(1, Ordering::AcqRel) + 1;
    let after = Duration::from_secs(api.ctl.cfg().bluetooth.scan_duration_s);
    let a = api.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        if a.bt_scan_generation.load(Ordering::Acquire) != gen {
            return;
        }
        if let Some(conn) = a.bus.current() {
            if let Err(e) = bluetooth::discovery(&a.ctl, &conn, false).await {
                tracing::warn!(error = ?e, "cannot stop Bluetooth discovery");
            }
        }
    });
    c.done(None)
}

pub async fn bt_scan_stop(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "network/bluetooth/scan/stop", peer, &headers);
    let _ = tri!(c.parse(&body));
    tri!(c.admit(Class::Network, None));
    let conn = tri!(c.conn("bluez"));
    api.bt_scan_generation.fetch_add(1, Ordering::AcqRel);
    c.settle(bluetooth::discovery(&api.ctl, &conn, false).await, "bluez")
}

fn bt_addr(p: &Payload<'_>) -> Result<String, ApiError> {
    let addr = p.req_str("addr")?;
    if !valid_bt_addr(addr) {
        return Err(ApiError::invalid_field("addr"));
    }
    Ok(addr.to_ascii_uppercase())
}

pub async fn bt_pair(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "network/bluetooth/pair", peer, &headers);
    let req = tri!(c.parse(&body));
    let p = Payload(&req.payload);
    let parsed = (|| {
        let addr = bt_addr(&p)?;
        let pin = p.opt_str("pin")?;
        if pin.is_some_and(|s| s.is_empty() || s.chars().count() > 16) {
            return Err(ApiError::invalid_field("pin"));
        }
        Ok((addr, pin.map(str::to_owned)))
    })();
    let (addr, pin) = tri!(c.check(parsed));
    tri!(c.admit(Class::Network, None));
    let conn = tri!(c.conn("bluez"));
    let dev = tri!(c.bt_device(&conn, &addr).await);
    if dev.paired {
        return c.done(Some("already_paired"));
    }
    let claim = tri!(c.claim(format!("bt:{addr}")));
    let d = c.detached();
    let a = api.clone();
    tokio::spawn(async move {
        let _claim = claim;
        match bluetooth::pair(&a.ctl, &conn, &a.agent, &dev, pin).await {
            Ok(()) => d.finish(Ok(None)),
            Err(code) => d.finish(Err(&code)),
        }
    });
    c.result()
}

pub async fn bt_unpair(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "network/bluetooth/unpair", peer, &headers);
    let req = tri!(c.parse(&body));
    let addr = tri!(c.check(bt_addr(&Payload(&req.payload))));
    tri!(c.admit(Class::Network, None));
    let conn = tri!(c.conn("bluez"));
    let dev = tri!(c.bt_device(&conn, &addr).await);
    c.settle(bluetooth::remove_device(&api.ctl, &conn, &dev).await, "bluez")
}

// ---- audio ------------------------------------------------------------------------

pub async fn audio_mute(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "audio/mute", peer, &headers);
    let req = tri!(c.parse(&body));
    let muted = tri!(c.check(Payload(&req.payload).req_bool("muted")));
    tri!(c.admit(Class::Audio, None));
    c.answer(api.audio.set_muted(muted).await.map_err(conflict))
}

pub async fn audio_volume(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "audio/volume", peer, &headers);
    let req = tri!(c.parse(&body));
    let pct = tri!(c.check(Payload(&req.payload).req_int("volume_percent", 0, 100))) as u8;
    tri!(c.admit(Class::Audio, None));
    c.answer(api.audio.set_volume(pct).await.map_err(conflict))
}

pub async fn audio_beep(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "audio/beep", peer, &headers);
    let req = tri!(c.parse(&body));
    let a = &api.ctl.cfg().audio;
    let p = Payload(&req.payload);
    let parsed = (|| {
        Ok::<_, ApiError>(Tone {
            freq_hz: p.opt_int("freq_hz", 100, 8000)?.map_or(a.beep_freq_hz, |v| v as u32),
            duration_ms: p
                .opt_int("duration_ms", 20, 2000)?
                .map_or(a.beep_duration_ms, |v| v as u32),
            count: p.opt_int("count", 1, 5)?.map_or(a.beep_count, |v| v as u32),
            gap_ms: p.opt_int("gap_ms", 50, 1000)?.map_or(a.beep_gap_ms, |v| v as u32),
            level: a.beep_level,
        })
    })();
    let tone = tri!(c.check(parsed));
    tri!(c.admit(Class::Alert, None));
    match api.audio.beep(tone).await {
        Ok(true) => c.done(Some("coalesced")),
        Ok(false) => c.done(None),
        Err(code) => c.refuse(conflict(code)),
    }
}

// ---- power actions ------------------------------------------------------------------

async fn power_action(api: Arc<Api>, c: Cmd, body: Bytes, action: PowerAction) -> Response {
    let req = tri!(c.parse(&body));
    if !req.confirm {
        return c.refuse(confirm_required());
    }
    if !api.ctl.cfg().safety.allow_unsafe {
        return c.refuse(forbidden("unsafe_disabled"));
    }
    let cd = Duration::from_secs(api.ctl.cfg().safety.power_cooldown_s);
    tri!(c.admit(Class::Dangerous, Some(("power", cd))));
    let conn = tri!(c.conn("logind"));
    let t = Duration::from_millis(api.ctl.cfg().probes.dbus_timeout_ms);
    match logind::permitted(&conn, action, t).await {
        Ok(true) => {}
        Ok(false) => return c.refuse(conflict("power_not_permitted")),
        Err(e) => return c.fail_dbus(&e, "logind"),
    }
    let what = match action {
        PowerAction::Reboot => "reboot",
        PowerAction::PowerOff => "shutdown",
    };
    let resp = c.done(None);
    api.ctl
        .log(LogLevel::Warn, "power", what, format!("system {what} requested"));
    let delay = Duration::from_millis(api.ctl.cfg().safety.power_action_delay_ms);
    let ctl = api.ctl.clone();
    tokio::spawn(async move {
        // Let the answer and the ack reach the clients first.
        tokio::time::sleep(delay).await;
        if let Err(e) = logind::execute(&conn, action, t).await {
            tracing::error!(error = ?e, "power action failed");
            ctl.log(
                LogLevel::Error,
                "power",
                "power_action_failed",
                format!("system {what} failed"),
            );
        }
    });
    resp
}

pub async fn system_reboot(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "system/reboot", peer, &headers);
    power_action(api, c, body, PowerAction::Reboot).await
}

pub async fn system_shutdown(State(api): S, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let c = Cmd::new(&api, "system/shutdown", peer, &headers);
    power_action(api, c, body, PowerAction::PowerOff).await
}
