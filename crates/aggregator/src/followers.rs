//! Long-running upstream tasks (aggregator §8): the system-controller follower,
//! the scanner's device poll and the high-severity alert beep. Each retries
//! forever with backoff and never blocks another input.

use crate::config::AggregatorConfig;
use crate::core::controller::{self, Section};
use crate::core::Core;
use crate::upstream::Upstream;
use axum::http::{HeaderMap, Method};
use futures_util::StreamExt;
use ndefender_contract::devices::AntsdrDeviceState;
use ndefender_contract::events::SystemCommandAck;
use ndefender_contract::{kind, Source};
use ndefender_service::Backoff;
use ndefender_service::Shutdown;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BEEP_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnect delays: 1 s doubling to 10 s, ±20 % jitter so followers of a restarted daemon
/// do not reconnect in step.
fn reconnect_backoff() -> Backoff {
    Backoff::new(Duration::from_secs(1), Duration::from_secs(10)).with_jitter(0.2)
}

fn ws_url(base: &str) -> String {
    let b = base.trim_end_matches('/');
    let b = b
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| b.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or_else(|| b.to_owned());
    format!("{b}/api/v1/ws")
}

/// Follows the system controller: WS for pushes, `GET /status` on every (re)connect.
pub async fn follow_controller(cfg: Arc<AggregatorConfig>, core: Core, up: Upstream, shutdown: Shutdown) {
    let silence = Duration::from_secs_f64(cfg.system_controller.silence_timeout_s);
    let mut backoff = reconnect_backoff();
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        let exchanged = tokio::select! {
            r = session(&core, &up, silence) => r,
            _ = &mut stop => return,
        };
        if exchanged {
            backoff.reset();
        } else {
            core.mutate(controller::set_down);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.delay()) => {}
            _ = &mut stop => return,
        }
        if !exchanged {
            backoff.grow();
        }
    }
}

/// One connection; returns whether anything was exchanged (resets the backoff).
async fn session(core: &Core, up: &Upstream, silence: Duration) -> bool {
    let Ok(mut req) = ws_url(&up.base_url).into_client_request() else {
        tracing::error!(url = %up.base_url, "invalid system_controller.base_url");
        return false;
    };
    if !up.api_key.is_empty() {
        if let Ok(v) = up.api_key.parse() {
            req.headers_mut().insert("X-API-Key", v);
        }
    }
    // The same pinned rustls settings as the REST calls (an `https://` base URL without a
    // pinned certificate is refused by the config check; this client then trusts nothing).
    let connector = tokio_tungstenite::Connector::Rustls(up.http.tls.clone());
    let connect = tokio_tungstenite::connect_async_tls_with_config(req, None, false, Some(connector));
    let mut ws = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok((ws, _))) => ws,
        _ => return false,
    };
    // Per-section generation: a WS event newer than the GET wins over the GET's value.
    let mut gens: HashMap<Section, u64> = HashMap::new();
    let at_get = gens.clone();
    let status_up = up.clone();
    let mut status = Box::pin(async move {
        let a = status_up
            .call(Method::GET, "/status", HeaderMap::new(), None, STATUS_TIMEOUT)
            .await
            .ok()?;
        if !a.status.is_success() {
            return None;
        }
        serde_json::from_slice::<Value>(&a.body).ok()
    });
    let mut status_done = false;
    let mut exchanged = false;
    loop {
        tokio::select! {
            body = &mut status, if !status_done => {
                status_done = true;
                if let Some(body) = body {
                    exchanged = true;
                    core.mutate(|st| {
                        controller::set_up(st);
                        for s in Section::ALL {
                            if gens.get(&s) != at_get.get(&s) {
                                continue;
                            }
                            if let Some(v) = s.from_status(&body) {
                                if !controller::apply(st, s, v) {
                                    tracing::warn!(section = ?s, "controller /status section does not fit its contract type");
                                }
                            }
                        }
                    });
                }
            }
            msg = tokio::time::timeout(silence, ws.next()) => {
                let msg = match msg {
                    Err(_) => {
                        tracing::warn!("system controller silent; reconnecting");
                        return exchanged;
                    }
                    Ok(None) | Ok(Some(Err(_))) => return exchanged,
                    Ok(Some(Ok(m))) => m,
                };
                let Message::Text(t) = msg else { continue };
                let Ok(env) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                exchanged = true;
                on_event(core, &env, &mut gens);
            }
        }
    }
}

fn on_event(core: &Core, env: &Value, gens: &mut HashMap<Section, u64>) {
    let kind_s = env.get("type").and_then(Value::as_str).unwrap_or("");
    let data = env.get("data").cloned().unwrap_or(Value::Null);
    if kind_s == kind::COMMAND_ACK {
        // The controller's acks carry the final outcome of its commands: forwarded as they are.
        let Ok(ack) = serde_json::from_value::<SystemCommandAck>(data) else {
            tracing::warn!("controller COMMAND_ACK does not fit the contract; dropped");
            return;
        };
        let ts = ndefender_contract::time::pick_time(env.as_object().unwrap_or(&Default::default()));
        core.mutate(|st| {
            controller::set_up(st);
            let t = ts.unwrap_or_else(|| st.clock.now_ms());
            st.emit(kind::COMMAND_ACK, t, Source::System, &ack);
        });
        return;
    }
    if let Some(section) = Section::of_event(kind_s) {
        *gens.entry(section).or_default() += 1;
        core.mutate(|st| {
            controller::set_up(st);
            if !controller::apply(st, section, &data) {
                tracing::warn!(kind = kind_s, "controller event does not fit its contract type");
            }
        });
    } else {
        core.mutate(controller::set_up);
    }
}

/// Polls the scanner's `GET /api/v1/device` into the `antsdr` section (aggregator §8.2).
pub async fn poll_antsdr(cfg: Arc<AggregatorConfig>, core: Core, up: Upstream, shutdown: Shutdown) {
    let every = Duration::from_secs_f64(cfg.antsdr.poll_interval_s);
    let timeout = Duration::from_secs_f64(cfg.proxy.get_timeout_s);
    let mut ticks = crate::Ticks::new(every, &shutdown);
    while ticks.next().await {
        let r = up.get::<AntsdrDeviceState>("/device", timeout).await;
        core.mutate(|st| {
            let now = st.clock.now_ms();
            let next = match r
                .as_ref()
                .ok()
                .and_then(|v| serde_json::from_value::<AntsdrDeviceState>(v.clone()).ok())
            {
                Some(mut d) => {
                    d.timestamp_ms.get_or_insert(now);
                    d.connected.get_or_insert(false);
                    d
                }
                None => {
                    if st.snap.antsdr.last_error.as_deref() == Some("antsdr_unavailable") {
                        return;
                    }
                    AntsdrDeviceState {
                        timestamp_ms: Some(now),
                        connected: Some(false),
                        uri: st.snap.antsdr.uri.clone(),
                        temperature_c: None,
                        last_error: Some("antsdr_unavailable".into()),
                    }
                }
            };
            // The probe time alone is not a change worth a SYSTEM_UPDATE.
            let mut cmp = next.clone();
            cmp.timestamp_ms = st.snap.antsdr.timestamp_ms;
            if cmp != st.snap.antsdr {
                st.snap.antsdr = next;
                st.dirty = true;
            }
        });
    }
}

/// The alert beep: POST the controller's audio/beep when a contact first reaches
/// high severity, at most once per `alerts.beep_min_interval_s`; failures are logged only.
pub async fn beeper(cfg: Arc<AggregatorConfig>, core: Core, up: Upstream, shutdown: Shutdown) {
    let min = Duration::from_secs_f64(cfg.alerts.beep_min_interval_s.max(0.0));
    let mut last: Option<Instant> = None;
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = core.beep.notified() => {}
            _ = &mut stop => return,
        }
        if last.is_some_and(|l| l.elapsed() < min) {
            continue;
        }
        last = Some(Instant::now());
        let body = serde_json::json!({"payload":{},"confirm":false});
        let sent = up
            .call(Method::POST, "/audio/beep", HeaderMap::new(), Some(&body), BEEP_TIMEOUT)
            .await;
        match sent {
            Ok(a) if a.status.is_success() => tracing::info!("high-severity contact: alert beep sent"),
            Ok(a) => tracing::warn!(status = %a.status, "alert beep refused by the system controller"),
            Err(e) => tracing::warn!(error = %e, "alert beep failed"),
        }
    }
}
