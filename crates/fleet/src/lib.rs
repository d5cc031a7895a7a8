//! `ndefender-fleet` (issue 15): the fleet view. Every kit's aggregator publishes its
//! state to an MQTT broker (`[mqtt]` uplink, `<prefix>/<kit>/...`); this daemon subscribes
//! to `<prefix>/+/availability`, `<prefix>/+/status` and `<prefix>/+/contacts/+`, keeps
//! each kit and one track per contact across kits with `seen_by` ([`state`]), and serves
//! `/api/v1/ws` and REST with the aggregator's envelopes, so the dashboard and
//! `ndefender-watch` work against it unchanged.
//!
//! Scaling: the broker is the distributed part. A site runs one mosquitto; many sites
//! use a clustered broker (EMQX, VerneMQ, HiveMQ) or bridge site brokers upward, and run
//! one fleet daemon per site or region, each subscribed to its own topic prefix (or all
//! of it: retained state makes a restarted fleet daemon whole again on subscribe).

pub mod config;
pub mod state;

use crate::config::FleetConfig;
use crate::state::Fleet;
use axum::extract::State as AxState;
use axum::response::Response;
use axum::routing::get;
use ndefender_contract::command::ContactList;
use ndefender_contract::time::Clock;
use ndefender_contract::{ErrorStyle, Source, TimestampField};
use ndefender_hub::Hub;
use ndefender_service::daemon::{self, Site};
use ndefender_service::http::json_ok;
use ndefender_service::lifecycle;
use ndefender_service::mqtt::topic_unescape;
use ndefender_service::Shutdown;
use rumqttc::{AsyncClient, Event, Packet};
use std::sync::Arc;
use std::time::Duration;

pub const WS_PATH: &str = "/api/v1/ws";

/// Runs the daemon until `shutdown` fires.
pub async fn run(cfg: FleetConfig, shutdown: Shutdown, clock: Arc<dyn Clock>) -> std::io::Result<()> {
    let listener = lifecycle::listen("fleet", &cfg.server.bind).await?;
    let cfg = Arc::new(cfg);
    let fleet = Fleet::new(clock);
    let hub = Hub::new(
        cfg.server
            .hub_config(Source::Aggregator, TimestampField::TimestampMs, ErrorStyle::Detail),
        Arc::new(fleet.clone()),
    );
    fleet.attach_hub(hub.clone());

    let mqtt = tokio::spawn(subscriber(cfg.clone(), fleet.clone(), shutdown.clone())?);
    tokio::spawn(ticker(cfg.clone(), fleet.clone(), shutdown.clone()));

    let app = axum::Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/status", get(status))
        .route("/api/v1/contacts", get(contacts))
        .route("/api/v1/kits", get(kits))
        .with_state(fleet.clone())
        .route(WS_PATH, hub.ws_route());
    // Read-only: every route is a viewer's, so there is no command to audit.
    let site = Site {
        name: "fleet",
        server: &cfg.server,
        audit: None,
        style: ErrorStyle::Detail,
        ws_paths: &[WS_PATH],
        operator_routes: &[],
        open_paths: &[],
        metrics: Arc::default(),
    };
    daemon::serve(site, listener, app, shutdown, async move {
        let _ = tokio::time::timeout(Duration::from_secs(2), mqtt).await;
        hub.shutdown().await;
    })
    .await
}

type S = AxState<Fleet>;

async fn health(AxState(f): S) -> Response {
    let (t, kits) = f.read(|st| (st.now_ms(), st.kits()));
    let online = kits.iter().filter(|k| k.online).count();
    json_ok(&serde_json::json!({
        "status": "ok",
        "timestamp_ms": t,
        "kits": kits.len(),
        "kits_online": online,
    }))
}

async fn status(AxState(f): S) -> Response {
    json_ok(&f.read(|st| st.snapshot()))
}

async fn contacts(AxState(f): S) -> Response {
    let (t, contacts) = f.read(|st| (st.now_ms(), st.tracks()));
    json_ok(&ContactList {
        timestamp_ms: t,
        contacts,
    })
}

async fn kits(AxState(f): S) -> Response {
    let (t, kits) = f.read(|st| (st.now_ms(), st.kits()));
    json_ok(&serde_json::json!({ "timestamp_ms": t, "kits": kits }))
}

async fn ticker(cfg: Arc<FleetConfig>, fleet: Fleet, shutdown: Shutdown) {
    let ttl_ms = (cfg.fleet.contact_ttl_s * 1000.0) as u64;
    let mut ticks = shutdown.ticks(Duration::from_millis(cfg.fleet.update_min_interval_ms));
    while ticks.next().await {
        fleet.mutate(|st| st.expire(ttl_ms));
        fleet.system_update_if_dirty();
    }
}

/// Routes one message of a kit's uplink into the state.
pub fn apply_message(fleet: &Fleet, prefix: &str, topic: &str, payload: &[u8]) {
    let Some(rest) = topic.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) else {
        return;
    };
    let Some((kit, what)) = rest.split_once('/') else {
        return;
    };
    if kit.is_empty() {
        return;
    }
    match what {
        "availability" => fleet.mutate(|st| st.availability(kit, payload)),
        "status" => fleet.mutate(|st| st.status(kit, payload)),
        _ => {
            if let Some(id) = what.strip_prefix("contacts/").and_then(topic_unescape) {
                fleet.mutate(|st| st.contact(kit, &id, payload));
            }
        }
    }
}

fn subscriber(
    cfg: Arc<FleetConfig>,
    fleet: Fleet,
    shutdown: Shutdown,
) -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    let m = &cfg.mqtt;
    let client_id = if m.client_id.is_empty() {
        format!("ndefender-fleet-{}", ndefender_service::mqtt::hostname())
    } else {
        m.client_id.clone()
    };
    let opts = m
        .endpoint()
        .options(&client_id, m.keep_alive_s, None)
        .map_err(std::io::Error::other)?;
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let mut net = eventloop.network_options();
    net.set_connection_timeout(5);
    eventloop.set_network_options(net);
    let prefix = m.topic_prefix.clone();
    let q = m.qos();
    let max_backoff = Duration::from_secs_f64(m.reconnect_max_s);
    Ok(async move {
        let stop = shutdown.wait();
        tokio::pin!(stop);
        let min = Duration::from_millis(500);
        let mut backoff = min;
        let mut connected = false;
        loop {
            tokio::select! {
                r = eventloop.poll() => match r {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        tracing::info!(url = %cfg.mqtt.url, "fleet connected to the broker");
                        connected = true;
                        backoff = min;
                        // Clean session: subscribe on every connect; retained state arrives again.
                        for t in ["availability", "status", "contacts/+"] {
                            let _ = client.try_subscribe(format!("{prefix}/+/{t}"), q);
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        apply_message(&fleet, &prefix, &p.topic, &p.payload);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if std::mem::take(&mut connected) {
                            tracing::warn!(error = %e, "fleet lost the broker; reconnecting");
                        } else {
                            tracing::debug!(error = %e, "fleet cannot reach the broker");
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = &mut stop => break,
                        }
                        backoff = (backoff * 2).min(max_backoff);
                    }
                },
                _ = &mut stop => break,
            }
        }
        if connected {
            let _ = client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_millis(500), eventloop.poll()).await;
        }
    })
}
