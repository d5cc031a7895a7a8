//! Client frames and control actions (PROTOCOL.md §7.5) over real sockets.

mod common;

use common::*;
use futures_util::SinkExt;
use ndefender_hub::HubConfig;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Sends a ping with `id` and collects every frame up to its PONG. The PONG is queued
/// behind everything published before the ping, so this is a delivery barrier.
async fn until_pong(ws: &mut Ws, id: &str) -> Res<Vec<Value>> {
    send_json(ws, json!({"action": "ping", "id": id})).await?;
    let mut frames = Vec::new();
    loop {
        let f = recv(ws).await?;
        if kind(&f) == "PONG" && f["data"]["id"] == id {
            return Ok(frames);
        }
        frames.push(f);
    }
}

fn kinds(frames: &[Value]) -> Vec<&str> {
    frames.iter().map(kind).collect()
}

async fn publish_kinds(server: &Server, kinds: &[&'static str]) -> Res {
    for k in kinds {
        server.svc.bump_as(&server.hub, k)?;
    }
    Ok(())
}

const MIX: [&str; 6] = [
    "RF_CONTACT_NEW",
    "CONTACT_NEW",
    "SYSTEM_UPDATE",
    "RF_CONTACT_LOST",
    "CONTACT_NEWS",
    "RF_X",
];

#[tokio::test]
async fn subscribe_unsubscribe_and_query_filters() -> Res {
    let server = Server::start(HubConfig {
        max_patterns: 4,
        ..cfg()
    })
    .await?;
    let validator = envelope_validator()?;
    let mut ws = server.connect("").await?;
    assert_eq!(kind(&recv(&mut ws).await?), "SNAPSHOT");

    // Implicit "all".
    publish_kinds(&server, &MIX).await?;
    assert_eq!(kinds(&until_pong(&mut ws, "a").await?), MIX);

    // The first subscribe replaces "all".
    send_json(
        &mut ws,
        json!({"action": "subscribe", "events": ["RF_CONTACT_*", "CONTACT_NEW"]}),
    )
    .await?;
    let text = recv_text(&mut ws).await?;
    assert_valid(&validator, &text)?;
    let reply: Value = serde_json::from_str(&text)?;
    assert_eq!(kind(&reply), "SUBSCRIBED");
    assert_eq!(reply["source"], "aggregator");
    assert_eq!(
        reply["data"],
        json!({"events": ["RF_CONTACT_*", "CONTACT_NEW"], "active": ["RF_CONTACT_*", "CONTACT_NEW"]})
    );
    publish_kinds(&server, &MIX).await?;
    assert_eq!(
        kinds(&until_pong(&mut ws, "b").await?),
        ["RF_CONTACT_NEW", "CONTACT_NEW", "RF_CONTACT_LOST"]
    );

    // Later subscribes add.
    send_json(&mut ws, json!({"action": "subscribe", "events": ["SYSTEM_*"]})).await?;
    let reply = recv(&mut ws).await?;
    assert_eq!(
        reply["data"],
        json!({"events": ["SYSTEM_*"], "active": ["RF_CONTACT_*", "CONTACT_NEW", "SYSTEM_*"]})
    );

    // Invalid pattern and too many patterns: ERROR, subscription unchanged.
    send_json(&mut ws, json!({"action": "subscribe", "events": ["rf_contact_new"]})).await?;
    let text = recv_text(&mut ws).await?;
    assert_valid(&validator, &text)?;
    let err: Value = serde_json::from_str(&text)?;
    assert_eq!((kind(&err), &err["data"]["code"]), ("ERROR", &json!("invalid_pattern")));
    assert!(err["data"]["message"].is_string());
    send_json(&mut ws, json!({"action": "subscribe", "events": ["A", "B"]})).await?;
    let err = recv(&mut ws).await?;
    assert_eq!(
        err["data"],
        json!({"code": "too_many_patterns", "message": "at most 4 patterns"})
    );
    send_json(&mut ws, json!({"action": "subscribe", "events": "RF_*"})).await?;
    assert_eq!(recv(&mut ws).await?["data"]["code"], "invalid_pattern");

    // Unsubscribe removes exact patterns only.
    send_json(
        &mut ws,
        json!({"action": "unsubscribe", "events": ["CONTACT_NEW", "RF_*"]}),
    )
    .await?;
    let reply = recv(&mut ws).await?;
    assert_eq!(kind(&reply), "UNSUBSCRIBED");
    assert_eq!(
        reply["data"],
        json!({"events": ["CONTACT_NEW", "RF_*"], "active": ["RF_CONTACT_*", "SYSTEM_*"]})
    );
    publish_kinds(&server, &MIX).await?;
    assert_eq!(
        kinds(&until_pong(&mut ws, "c").await?),
        ["RF_CONTACT_NEW", "SYSTEM_UPDATE", "RF_CONTACT_LOST"]
    );

    // Without `events` it removes everything; replies still arrive.
    send_json(&mut ws, json!({"action": "unsubscribe"})).await?;
    assert_eq!(recv(&mut ws).await?["data"], json!({"events": [], "active": []}));
    publish_kinds(&server, &MIX).await?;
    assert!(until_pong(&mut ws, "d").await?.is_empty());

    // `?events=` sets the initial subscription; a subscribe then adds to it.
    let mut q = server.connect("events=RF_*_NEW,CONTACT_NEW").await?;
    assert_eq!(
        kind(&recv(&mut q).await?),
        "SNAPSHOT",
        "greeting is delivered whatever the filter"
    );
    publish_kinds(&server, &MIX).await?;
    assert_eq!(
        kinds(&until_pong(&mut q, "e").await?),
        ["RF_CONTACT_NEW", "CONTACT_NEW"]
    );
    send_json(&mut q, json!({"action": "subscribe", "events": ["*_LOST"]})).await?;
    assert_eq!(
        recv(&mut q).await?["data"]["active"],
        json!(["RF_*_NEW", "CONTACT_NEW", "*_LOST"])
    );
    Ok(())
}

#[tokio::test]
async fn ping_gets_pong() -> Res {
    let server = Server::start(cfg()).await?;
    let validator = envelope_validator()?;
    let mut ws = server.connect("").await?;
    recv(&mut ws).await?;
    send_json(&mut ws, json!({"action": "ping", "id": "c1"})).await?;
    let text = recv_text(&mut ws).await?;
    assert_valid(&validator, &text)?;
    let pong: Value = serde_json::from_str(&text)?;
    assert_eq!((kind(&pong), pong["source"].as_str()), ("PONG", Some("aggregator")));
    assert_eq!(pong["data"]["id"], "c1");
    assert!(pong["data"]["timestamp_ms"]
        .as_u64()
        .is_some_and(|t| t > 1_600_000_000_000));
    assert!(pong.get("seq").is_none());

    send_json(&mut ws, json!({"action": "ping"})).await?;
    let pong = recv(&mut ws).await?;
    assert_eq!(kind(&pong), "PONG");
    assert!(pong["data"].get("id").is_none());

    // With seq, a reply carries the newest seq the client's stream reflects.
    let mut seq_ws = server.connect("seq=1").await?;
    recv(&mut seq_ws).await?;
    server.svc.bump(&server.hub)?;
    let value = recv(&mut seq_ws).await?;
    send_json(&mut seq_ws, json!({"action": "ping", "id": "s"})).await?;
    assert_eq!(recv(&mut seq_ws).await?["seq"], value["seq"]);
    Ok(())
}

#[tokio::test]
async fn junk_frames_are_ignored_and_counted() -> Res {
    let server = Server::start(cfg()).await?;
    let mut ws = server.connect("").await?;
    recv(&mut ws).await?;
    ws.send(Message::binary(vec![1u8, 2, 3])).await?;
    ws.send(Message::text("not json")).await?;
    send_json(&mut ws, json!({"action": "dance"})).await?;
    send_json(&mut ws, json!({"hello": 1})).await?;
    send_json(&mut ws, json!({"action": "ping", "id": "x".repeat(65)})).await?;
    // Still open and answering.
    assert!(until_pong(&mut ws, "alive").await?.is_empty());
    let ignored = server.hub.stats().ignored;
    assert_eq!(
        (ignored.binary, ignored.text, ignored.action, ignored.rate),
        (1, 1, 3, 0)
    );
    server.svc.bump(&server.hub)?;
    assert_eq!(kind(&recv(&mut ws).await?), "VALUE");
    Ok(())
}

#[tokio::test]
async fn control_frames_are_rate_limited() -> Res {
    let server = Server::start(cfg()).await?;
    let mut ws = server.connect("").await?;
    recv(&mut ws).await?;
    // A burst well inside one second: at most 20 are processed, the rest counted as "rate".
    for i in 0..25 {
        ws.feed(Message::text(
            json!({"action": "ping", "id": i.to_string()}).to_string(),
        ))
        .await?;
    }
    ws.flush().await?;
    let mut pongs = 0;
    while pongs < 20 {
        assert_eq!(kind(&recv(&mut ws).await?), "PONG");
        pongs += 1;
    }
    common::wait_for(|| server.hub.stats().ignored.rate == 5).await?;
    Ok(())
}

#[tokio::test]
async fn oversized_messages_get_close_1009() -> Res {
    let server = Server::start(cfg()).await?;
    let mut ws = server.connect("").await?;
    recv(&mut ws).await?;
    ws.send(Message::text("x".repeat(70_000))).await?;
    assert_eq!(recv_close(&mut ws).await?, 1009);

    let mut ws = server.connect("").await?;
    recv(&mut ws).await?;
    ws.send(Message::binary(vec![0u8; 65_537])).await?;
    assert_eq!(recv_close(&mut ws).await?, 1009);

    // Exactly the limit is fine.
    let mut ws = server.connect("").await?;
    recv(&mut ws).await?;
    ws.send(Message::text("y".repeat(65_536))).await?;
    assert!(until_pong(&mut ws, "ok").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn silent_client_is_closed_1008_but_a_ponging_one_stays() -> Res {
    use futures_util::StreamExt;
    let server = Server::start(HubConfig {
        ping_interval_s: 0.2,
        ..cfg()
    })
    .await?;
    let mut ws = server.connect("").await?;
    assert_eq!(kind(&recv(&mut ws).await?), "SNAPSHOT");
    // Only reading: tungstenite answers each server Ping with a Pong, which is enough to stay.
    let mut pings = 0;
    let reading = tokio::time::timeout(std::time::Duration::from_millis(1500), async {
        while let Some(msg) = ws.next().await {
            match msg? {
                Message::Ping(_) => pings += 1,
                other => return Err::<(), Box<dyn std::error::Error + Send + Sync>>(format!("got {other:?}").into()),
            }
        }
        Err("stream ended".into())
    })
    .await;
    assert!(reading.is_err(), "only pings arrive: {reading:?}");
    assert!(pings >= 2, "pings: {pings}");
    assert!(until_pong(&mut ws, "still-open").await?.is_empty());

    // A raw client that never sends a frame after the handshake is closed with 1008.
    let (code, _) = common::raw_upgrade_then_wait(server.addr).await?;
    assert_eq!(code, 1008);
    Ok(())
}
