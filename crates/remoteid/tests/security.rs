//! docs/SECURITY.md on the real `ndefender-remoteid` process: role tokens (401 without,
//! a viewer reads, only an operator starts/stops the capture and replays), the audit line
//! naming the token, no cross-site commands (415, foreign Origin before the WebSocket
//! upgrade), the refusal to start on the LAN without credentials, HTTPS and WSS with a
//! generated certificate.

use futures_util::StreamExt;
use ndefender_tests::security::{call, refuses_lan_without_credentials, start_tls, tokens_env, ws_upgrade_status};
use ndefender_tests::{free_port, Launch, Proc, Ws, R};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ndefender-remoteid");
const VIEWER: &str = "viewer-token-0123456789abcdef";
const OPERATOR: &str = "operator-token-0123456789abcdef";

/// The engine on a free port with no live source, its feed and audit trail in `dir`.
fn launch(dir: &Path, env: &[(&str, &str)]) -> R<Launch> {
    let port = free_port()?;
    let mut l = Launch::new("ndefender-remoteid", BIN, dir, port);
    l.env = vec![
        ("NDEFENDER_SERVER__BIND".into(), format!("127.0.0.1:{port}")),
        (
            "NDEFENDER_OUTPUT__JSONL_PATH".into(),
            dir.join("feed.jsonl").display().to_string(),
        ),
        (
            "NDEFENDER_AUDIT__PATH".into(),
            dir.join("audit.jsonl").display().to_string(),
        ),
        ("NDEFENDER_MONITOR__SOURCE".into(), "none".into()),
        ("NDEFENDER_REPLAY__DIR".into(), dir.display().to_string()),
    ];
    Ok(l.envs(env))
}

fn with_tokens() -> String {
    tokens_env(&[("wall", "viewer", VIEWER), ("tablet", "operator", OPERATOR)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_tokens_and_the_audit_trail() -> R {
    let dir = tempfile::tempdir()?;
    let toks = with_tokens();
    let d = launch(dir.path(), &[("NDEFENDER_SERVER__TOKENS", &toks)])?
        .start()
        .await?;
    let status = d.url("/api/v1/status");
    assert_eq!(
        call(Method::GET, &status, None, None, None).await?,
        (401, json!({"detail": "unauthorized"}))
    );
    assert_eq!(call(Method::GET, &status, Some("nope"), None, None).await?.0, 401);
    let (s, v) = call(Method::GET, &status, Some(VIEWER), None, None).await?;
    assert_eq!((s, &v["mode"]), (200, &json!("live")), "{v}");
    // The capture and replay controls are an operator's.
    let body = Some(("application/json", r#"{"payload":{},"confirm":false}"#));
    let start = d.url("/api/v1/monitor/start");
    assert_eq!(
        call(Method::POST, &start, Some(VIEWER), body, None).await?,
        (403, json!({"detail": "forbidden_role"}))
    );
    let (s, v) = call(Method::POST, &d.url("/api/v1/monitor/stop"), Some(OPERATOR), body, None).await?;
    assert_eq!((s, &v["accepted"]), (200, &json!(true)), "{v}");
    // The WebSocket: refused without a credential, a viewer's with ?access_token=.
    assert!(Ws::connect(&d.ws("/api/v1/ws")).await.is_err());
    Ws::connect(&d.ws(&format!("/api/v1/ws?access_token={VIEWER}"))).await?;
    // Both commands are in the trail, with the token's name.
    let text = std::fs::read_to_string(dir.path().join("audit.jsonl"))?;
    let lines: Vec<Value> = text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(
        (&lines[0]["who"], &lines[0]["outcome"], &lines[0]["route"]),
        (
            &json!("wall"),
            &json!("forbidden_role"),
            &json!("/api/v1/monitor/start")
        )
    );
    assert_eq!(
        (&lines[1]["who"], &lines[1]["role"]),
        (&json!("tablet"), &json!("operator"))
    );
    assert_eq!(lines[1]["command_id"], v["command_id"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cross_site_commands() -> R {
    let dir = tempfile::tempdir()?;
    let d = launch(dir.path(), &[])?.start().await?;
    let stop = d.url("/api/v1/monitor/stop");
    // The body a hostile page can send without a preflight.
    let plain = Some(("text/plain", r#"{"payload":{}}"#));
    assert_eq!(
        call(Method::POST, &stop, None, plain, None).await?,
        (415, json!({"detail": "unsupported_media_type"}))
    );
    let json_body = Some(("application/json", r#"{"payload":{}}"#));
    let evil = Some("http://evil.example");
    assert_eq!(
        call(Method::POST, &stop, None, json_body, evil).await?,
        (403, json!({"detail": "origin_not_allowed"}))
    );
    let own = format!("http://127.0.0.1:{}", d.port);
    assert_eq!(
        ws_upgrade_status(&d.ws("/api/v1/ws"), "http://evil.example").await?,
        403
    );
    assert_eq!(ws_upgrade_status(&d.ws("/api/v1/ws"), &own).await?, 101);
    Ok(())
}

#[test]
fn refuses_to_start_on_the_lan_without_credentials() -> R {
    refuses_lan_without_credentials(Path::new(BIN), "server", &[("NDEFENDER_MONITOR__SOURCE", "none")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_generated_certificate() -> R {
    let dir = tempfile::tempdir()?;
    let (cert, key, _) = ndefender_service::tls::write_self_signed(&dir.path().join("tls"), &[])?;
    let toks = with_tokens();
    let l = launch(dir.path(), &[("NDEFENDER_SERVER__TOKENS", &toks)])?;
    let (_d, https): (Proc, _) = start_tls(l, "server", &cert, &key).await?;
    let r = https.get("/api/v1/stats", Some(VIEWER)).await?;
    assert!(r.starts_with("HTTP/1.1 200") && r.contains("\"frames\""), "{r}");
    assert!(https.get("/api/v1/stats", None).await?.starts_with("HTTP/1.1 401"));
    let mut ws = https.ws(&format!("/api/v1/ws?access_token={VIEWER}")).await?;
    let first = tokio::time::timeout(Duration::from_secs(5), ws.next()).await?;
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    Ok(())
}
