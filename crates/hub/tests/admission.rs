//! Pre-upgrade admission (PROTOCOL.md §7.1, §5, §6) and shutdown (§7.9) over real sockets.

mod common;

use common::*;
use ndefender_contract::ErrorStyle;
use ndefender_hub::HubConfig;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Error as WsError;

/// The HTTP refusal of an upgrade: status, Retry-After, Content-Type and JSON body.
fn refusal(r: Result<Ws, WsError>) -> Res<(u16, Option<String>, Option<String>, Value)> {
    match r {
        Ok(_) => Err("upgrade was accepted".into()),
        Err(WsError::Http(resp)) => {
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or(b"null"))?;
            Ok((
                resp.status().as_u16(),
                header("retry-after"),
                header("content-type"),
                body,
            ))
        }
        Err(e) => Err(format!("unexpected error {e}").into()),
    }
}

#[tokio::test]
async fn client_limit_gives_429_with_retry_after() -> Res {
    let server = Server::start(HubConfig {
        max_clients: 2,
        ..cfg()
    })
    .await?;
    let a = server.connect("").await?;
    let _b = server.connect("").await?;
    let (status, retry, ctype, body) = refusal(server.connect_with_headers("", &[]).await)?;
    assert_eq!(status, 429);
    assert_eq!(retry.as_deref(), Some("5"));
    assert_eq!(ctype.as_deref(), Some("application/json"));
    assert_eq!(body, json!({"detail": "client_limit_reached"}));
    assert_eq!(server.hub.stats().rejected.limit, 1);

    // A leaving client frees its slot.
    drop(a);
    server.wait_clients(1).await?;
    let mut c = server.connect("").await?;
    assert_eq!(kind(&recv(&mut c).await?), "SNAPSHOT");
    assert_eq!(server.hub.stats().connections_total, 3);
    Ok(())
}

#[tokio::test]
async fn api_key_by_header_or_query() -> Res {
    let server = Server::start(HubConfig {
        api_key: "s3cr3t".into(),
        ..cfg()
    })
    .await?;
    for (query, headers) in [
        ("", vec![]),
        ("api_key=wrong", vec![]),
        ("", vec![("x-api-key", "s3cr3")]),
    ] {
        let (status, _, _, body) = refusal(server.connect_with_headers(query, &headers).await)?;
        assert_eq!(
            (status, body),
            (401, json!({"detail": "unauthorized"})),
            "{query} {headers:?}"
        );
    }
    assert_eq!(server.hub.stats().rejected.auth, 3);

    let mut by_header = server.connect_with_headers("", &[("x-api-key", "s3cr3t")]).await?;
    assert_eq!(kind(&recv(&mut by_header).await?), "SNAPSHOT");
    let mut by_query = server.connect("api_key=s3cr3t").await?;
    assert_eq!(kind(&recv(&mut by_query).await?), "SNAPSHOT");
    Ok(())
}

#[tokio::test]
async fn origin_allowlist() -> Res {
    let server = Server::start(HubConfig {
        api_key: "k".into(),
        allowed_origins: vec!["https://ui.example".into()],
        ..cfg()
    })
    .await?;
    let (status, _, _, body) = refusal(
        server
            .connect_with_headers("api_key=k", &[("origin", "https://evil.example")])
            .await,
    )?;
    assert_eq!((status, body), (403, json!({"detail": "origin_not_allowed"})));
    // Auth is checked before the origin.
    let (status, ..) = refusal(
        server
            .connect_with_headers("", &[("origin", "https://evil.example")])
            .await,
    )?;
    assert_eq!(status, 401);
    assert_eq!(
        (server.hub.stats().rejected.origin, server.hub.stats().rejected.auth),
        (1, 1)
    );

    let mut listed = server
        .connect_with_headers("api_key=k", &[("origin", "https://ui.example")])
        .await?;
    assert_eq!(kind(&recv(&mut listed).await?), "SNAPSHOT");
    // No Origin at all (CLI tools, daemons) is always allowed.
    let mut cli = server.connect("api_key=k").await?;
    assert_eq!(kind(&recv(&mut cli).await?), "SNAPSHOT");
    Ok(())
}

#[tokio::test]
async fn bad_query_is_400_before_the_upgrade() -> Res {
    let server = Server::start(cfg()).await?;
    for query in [
        "seq=yes",
        "since=-1",
        "since=1.5",
        "events=rf_*",
        "events=",
        "events=A,,B",
        "seq=1&seq=1",
    ] {
        let (status, _, _, body) = refusal(server.connect_with_headers(query, &[]).await)?;
        assert_eq!((status, body), (400, json!({"detail": "invalid_query"})), "{query}");
    }
    // Origin is checked before the query.
    let server2 = Server::start(HubConfig {
        allowed_origins: vec!["https://ui.example".into()],
        ..cfg()
    })
    .await?;
    let (status, ..) = refusal(
        server2
            .connect_with_headers("seq=x", &[("origin", "https://o.example")])
            .await,
    )?;
    assert_eq!(status, 403);
    assert_eq!(server.hub.stats().rejected.query, 7);
    Ok(())
}

#[tokio::test]
async fn plain_get_needs_an_upgrade() -> Res {
    let server = Server::start(cfg()).await?;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await?;
    let req = format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    tcp.write_all(req.as_bytes()).await?;
    let mut resp = String::new();
    tokio::time::timeout(PATIENCE, tcp.read_to_string(&mut resp)).await??;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("content-type: application/json"),
        "{resp}"
    );
    assert!(resp.ends_with(r#"{"detail":"websocket_upgrade_required"}"#), "{resp}");

    let mut tcp = tokio::net::TcpStream::connect(server.addr).await?;
    let req = format!(
        "POST /api/v1/ws HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        server.addr
    );
    tcp.write_all(req.as_bytes()).await?;
    let mut resp = String::new();
    tokio::time::timeout(PATIENCE, tcp.read_to_string(&mut resp)).await??;
    assert!(resp.starts_with("HTTP/1.1 405"), "{resp}");
    assert!(resp.ends_with(r#"{"detail":"method_not_allowed"}"#), "{resp}");
    Ok(())
}

#[tokio::test]
async fn nested_error_style() -> Res {
    let server = Server::start(HubConfig {
        error_style: ErrorStyle::Nested,
        source: ndefender_contract::Source::Antsdr,
        max_clients: 0,
        ..cfg()
    })
    .await?;
    let (status, retry, _, body) = refusal(server.connect_with_headers("", &[]).await)?;
    assert_eq!((status, retry.as_deref()), (429, Some("5")));
    assert_eq!(body["error"]["code"], "client_limit_reached");
    assert!(body["error"]["message"].is_string());
    let (status, _, _, body) = refusal(server.connect_with_headers("since=x", &[]).await)?;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("invalid_query")));
    Ok(())
}

#[tokio::test]
async fn shutdown_closes_1001_and_refuses_new_upgrades() -> Res {
    let server = Server::start(cfg()).await?;
    let mut a = server.connect("").await?;
    let mut b = server.connect("seq=1").await?;
    recv(&mut a).await?;
    recv(&mut b).await?;
    let hub = server.hub.clone();
    let closing = tokio::spawn(async move { hub.shutdown().await });
    assert_eq!(recv_close(&mut a).await?, 1001);
    assert_eq!(recv_close(&mut b).await?, 1001);
    tokio::time::timeout(PATIENCE, closing).await??;
    server.wait_clients(0).await?;
    let (status, _, _, body) = refusal(server.connect_with_headers("", &[]).await)?;
    assert_eq!((status, body), (503, json!({"detail": "shutting_down"})));
    Ok(())
}

#[tokio::test]
async fn shutdown_delivers_what_was_already_queued_before_1001() -> Res {
    let server = Server::start(HubConfig {
        client_queue: 4096,
        ..cfg()
    })
    .await?;
    let mut ws = server.connect("").await?;
    let greeting = recv(&mut ws).await?;
    let start = num(&greeting, "v");
    // Publish a burst and shut down in the same breath: most of it is still queued.
    for _ in 0..2000 {
        server.svc.bump(&server.hub)?;
    }
    // join! polls shutdown first, so every client's close is requested before its
    // writer has had a chance to drain the burst (the test runtime is single-threaded).
    let mut got = Vec::new();
    let reader = tokio::time::timeout(PATIENCE, async {
        loop {
            match futures_util::StreamExt::next(&mut ws).await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str())?;
                    if kind(&v) == "VALUE" {
                        got.push(num(&v, "v"));
                    }
                }
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(f))) => {
                    return Ok::<_, Box<dyn std::error::Error + Send + Sync>>(f.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(None),
            }
        }
    });
    let ((), code) = tokio::join!(server.hub.shutdown(), reader);
    let code = code?.map_err(|e| e.to_string())?;
    assert_eq!(code, Some(1001));
    let want: Vec<u64> = ((start + 1)..=(start + 2000)).collect();
    assert!(got == want, "queued events lost at shutdown: got {} of 2000", got.len());
    Ok(())
}
