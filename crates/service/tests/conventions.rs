//! The REST conventions against a real server: every error is a JSON body in the
//! service's style, whatever produced it; auth, origins, CORS, shutdown.

use axum::routing::{get, post};
use axum::Router;
use ndefender_contract::ErrorStyle;
use ndefender_service::http::{self, ApiError, Conventions};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

type R = Result<(), Box<dyn std::error::Error>>;

#[allow(clippy::panic)]
async fn boom() -> &'static str {
    panic!("handler bug")
}

async fn start(conv: Conventions) -> Result<String, Box<dyn std::error::Error>> {
    let app = Router::new()
        .route("/api/v1/health", get(|| async { http::json_ok(&json!({"ok":true})) }))
        .route(
            "/api/v1/status",
            get(|| async { http::json_ok(&json!({"timestamp_ms":1})) }),
        )
        .route("/api/v1/boom", get(boom))
        .route(
            "/api/v1/limited",
            get(|| async { ApiError::too_many("rate_limited", 7) }),
        )
        .route(
            "/api/v1/echo",
            post(|b: axum::body::Bytes| async move { http::json_ok(&json!({"len": b.len()})) }),
        );
    let app = http::apply(app, conv);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    Ok(format!("http://{addr}"))
}

async fn body(r: reqwest::Response) -> Result<(StatusCode, Value), Box<dyn std::error::Error>> {
    let s = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let v: Value = r.json().await?;
    assert_eq!(ct, "application/json");
    Ok((s, v))
}

#[tokio::test]
async fn every_error_is_json_detail() -> R {
    let base = start(Conventions::new(ErrorStyle::Detail, "", &["*".into()], 86400)).await?;
    let c = reqwest::Client::new();
    let (s, v) = body(c.get(format!("{base}/api/v1/nope")).send().await?).await?;
    assert_eq!((s, v), (StatusCode::NOT_FOUND, json!({"detail":"not_found"})));
    let (s, v) = body(c.post(format!("{base}/api/v1/status")).send().await?).await?;
    assert_eq!(
        (s, v),
        (StatusCode::METHOD_NOT_ALLOWED, json!({"detail":"method_not_allowed"}))
    );
    let big = vec![b'x'; 70 * 1024];
    let (s, v) = body(
        c.post(format!("{base}/api/v1/echo"))
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(
        (s, v),
        (StatusCode::PAYLOAD_TOO_LARGE, json!({"detail":"payload_too_large"}))
    );
    let (s, v) = body(c.get(format!("{base}/api/v1/boom")).send().await?).await?;
    assert_eq!(
        (s, v),
        (StatusCode::INTERNAL_SERVER_ERROR, json!({"detail":"internal_error"}))
    );
    // the process keeps serving after a handler panic
    let (s, _) = body(c.get(format!("{base}/api/v1/status")).send().await?).await?;
    assert_eq!(s, StatusCode::OK);
    let r = c.get(format!("{base}/api/v1/limited")).send().await?;
    assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("7"));
    let (s, v) = body(r).await?;
    assert_eq!(
        (s, v),
        (StatusCode::TOO_MANY_REQUESTS, json!({"detail":"rate_limited"}))
    );
    Ok(())
}

#[tokio::test]
async fn nested_style_for_the_scanner() -> R {
    let base = start(Conventions::new(ErrorStyle::Nested, "", &["*".into()], 86400)).await?;
    let c = reqwest::Client::new();
    let (s, v) = body(c.get(format!("{base}/api/v1/nope")).send().await?).await?;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found");
    assert!(v["error"]["message"].is_string());
    let (_, v) = body(c.get(format!("{base}/api/v1/limited")).send().await?).await?;
    assert_eq!(v["error"]["code"], "rate_limited");
    Ok(())
}

#[tokio::test]
async fn api_key_and_open_health() -> R {
    let base = start(Conventions::new(ErrorStyle::Detail, "s3cret", &["*".into()], 86400)).await?;
    let c = reqwest::Client::new();
    let (s, v) = body(c.get(format!("{base}/api/v1/status")).send().await?).await?;
    assert_eq!((s, v), (StatusCode::UNAUTHORIZED, json!({"detail":"unauthorized"})));
    let r = c.get(format!("{base}/api/v1/status?api_key=s3cret")).send().await?;
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .get(format!("{base}/api/v1/status"))
        .header("X-API-Key", "s3cret")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .get(format!("{base}/api/v1/status"))
        .header("X-API-Key", "wrong")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c.get(format!("{base}/api/v1/health")).send().await?;
    assert_eq!(r.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn origins_and_cors() -> R {
    let base = start(Conventions::new(
        ErrorStyle::Detail,
        "",
        &["http://ok.example".into()],
        600,
    ))
    .await?;
    let c = reqwest::Client::new();
    let (s, v) = body(
        c.get(format!("{base}/api/v1/status"))
            .header("Origin", "http://evil.example")
            .send()
            .await?,
    )
    .await?;
    assert_eq!((s, v), (StatusCode::FORBIDDEN, json!({"detail":"origin_not_allowed"})));
    let r = c
        .get(format!("{base}/api/v1/status"))
        .header("Origin", "http://ok.example")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers();
    assert_eq!(
        h.get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("http://ok.example")
    );
    assert_eq!(h.get("vary").and_then(|v| v.to_str().ok()), Some("Origin"));
    // no Origin (CLI, daemons) is always allowed
    assert_eq!(
        c.get(format!("{base}/api/v1/status")).send().await?.status(),
        StatusCode::OK
    );
    let r = c
        .request(reqwest::Method::OPTIONS, format!("{base}/api/v1/echo"))
        .header("Origin", "http://ok.example")
        .header("Access-Control-Request-Headers", "content-type, x-api-key")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let h = r.headers();
    assert_eq!(
        h.get("access-control-max-age").and_then(|v| v.to_str().ok()),
        Some("600")
    );
    assert_eq!(
        h.get("access-control-allow-headers").and_then(|v| v.to_str().ok()),
        Some("content-type, x-api-key")
    );
    assert_eq!(
        h.get("access-control-expose-headers").and_then(|v| v.to_str().ok()),
        Some("Retry-After, X-NDefender-Upstream-Error")
    );

    let any = start(Conventions::new(ErrorStyle::Detail, "", &["*".into()], 600)).await?;
    let r = c
        .get(format!("{any}/api/v1/status"))
        .header("Origin", "http://x")
        .send()
        .await?;
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*")
    );
    Ok(())
}

#[tokio::test]
async fn shutting_down_is_503() -> R {
    let conv = Conventions::new(ErrorStyle::Detail, "", &["*".into()], 600);
    let flag = conv.shutting_down.clone();
    let base = start(conv).await?;
    flag.store(true, Ordering::Relaxed);
    let (s, v) = body(reqwest::get(format!("{base}/api/v1/status")).await?).await?;
    assert_eq!(
        (s, v),
        (StatusCode::SERVICE_UNAVAILABLE, json!({"detail":"shutting_down"}))
    );
    Ok(())
}
