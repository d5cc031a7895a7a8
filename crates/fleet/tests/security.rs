//! docs/SECURITY.md on the real `ndefender-fleet` process (read-only: every route is a
//! viewer's): 401 without a token, 200 for a viewer, WebSocket with ?access_token=, no
//! cross-site requests (415, foreign Origin before the upgrade), the refusal to start on
//! the LAN without credentials, HTTPS and WSS with a generated certificate. No broker is
//! needed: the daemon serves while it retries the broker.

use futures_util::StreamExt;
use ndefender_tests::security::{call, refuses_lan_without_credentials, start_tls, tokens_env, ws_upgrade_status};
use ndefender_tests::{free_port, Launch, Proc, Ws, R};
use reqwest::Method;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ndefender-fleet");
const VIEWER: &str = "viewer-token-0123456789abcdef";

/// The fleet daemon on a free port; its broker (a free port nobody listens on) is down.
fn launch(dir: &Path, env: &[(&str, &str)]) -> R<Launch> {
    let port = free_port()?;
    let mut l = Launch::new("ndefender-fleet", BIN, dir, port);
    l.env = vec![
        ("NDEFENDER_SERVER__BIND".into(), format!("127.0.0.1:{port}")),
        (
            "NDEFENDER_MQTT__URL".into(),
            format!("mqtt://127.0.0.1:{}", free_port()?),
        ),
    ];
    Ok(l.envs(env))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_token_reads_and_nothing_else_does() -> R {
    let dir = tempfile::tempdir()?;
    let toks = tokens_env(&[("wall", "viewer", VIEWER)]);
    let d = launch(dir.path(), &[("NDEFENDER_SERVER__TOKENS", &toks)])?
        .start()
        .await?;
    for path in ["/api/v1/status", "/api/v1/contacts", "/api/v1/kits"] {
        assert_eq!(
            call(Method::GET, &d.url(path), None, None, None).await?,
            (401, json!({"detail": "unauthorized"})),
            "{path}"
        );
        assert_eq!(
            call(Method::GET, &d.url(path), Some(VIEWER), None, None).await?.0,
            200,
            "{path}"
        );
    }
    let (s, v) = call(Method::GET, &d.url("/api/v1/auth/whoami"), Some(VIEWER), None, None).await?;
    assert_eq!((s, v), (200, json!({"name": "wall", "role": "viewer"})));
    assert!(Ws::connect(&d.ws("/api/v1/ws")).await.is_err());
    Ws::connect(&d.ws(&format!("/api/v1/ws?access_token={VIEWER}"))).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cross_site_requests() -> R {
    let dir = tempfile::tempdir()?;
    let d = launch(dir.path(), &[])?.start().await?;
    let plain = Some(("text/plain", "{}"));
    assert_eq!(
        call(Method::POST, &d.url("/api/v1/status"), None, plain, None).await?,
        (415, json!({"detail": "unsupported_media_type"}))
    );
    let evil = Some("http://evil.example");
    assert_eq!(
        call(Method::GET, &d.url("/api/v1/status"), None, None, evil).await?,
        (403, json!({"detail": "origin_not_allowed"}))
    );
    assert_eq!(
        ws_upgrade_status(&d.ws("/api/v1/ws"), "http://evil.example").await?,
        403
    );
    let own = format!("http://127.0.0.1:{}", d.port);
    assert_eq!(ws_upgrade_status(&d.ws("/api/v1/ws"), &own).await?, 101);
    Ok(())
}

#[test]
fn refuses_to_start_on_the_lan_without_credentials() -> R {
    refuses_lan_without_credentials(Path::new(BIN), "server", &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_generated_certificate() -> R {
    let dir = tempfile::tempdir()?;
    let (cert, key, _) = ndefender_service::tls::write_self_signed(&dir.path().join("tls"), &[])?;
    let toks = tokens_env(&[("wall", "viewer", VIEWER)]);
    let l = launch(dir.path(), &[("NDEFENDER_SERVER__TOKENS", &toks)])?;
    let (_d, https): (Proc, _) = start_tls(l, "server", &cert, &key).await?;
    let r = https.get("/api/v1/kits", Some(VIEWER)).await?;
    assert!(r.starts_with("HTTP/1.1 200") && r.contains("\"kits\""), "{r}");
    assert!(https.get("/api/v1/kits", None).await?.starts_with("HTTP/1.1 401"));
    let mut ws = https.ws(&format!("/api/v1/ws?access_token={VIEWER}")).await?;
    let first = tokio::time::timeout(Duration::from_secs(5), ws.next()).await?;
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    Ok(())
}
