//! Issue 13 as an attacker would try it, on the real `ndefender-aggregator` process: role
//! tokens (401/403/whoami/429), no cross-site commands (415, Origin on REST and before the
//! WebSocket upgrade), the refusal to start on the LAN without credentials, the audit
//! trail naming the token, TLS with a generated certificate, and 1 500 idle connections
//! against a daemon limited to 1 024 file descriptors.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

const VIEWER: &str = "viewer-token-0123456789abcdef";
const OPERATOR: &str = "operator-token-0123456789abcdef";
const ADMIN: &str = "admin-token-0123456789abcdef";

fn tokens_env() -> String {
    ndefender_tests::security::tokens_env(&[
        ("wall", "viewer", VIEWER),
        ("tablet", "operator", OPERATOR),
        ("chief", "admin", ADMIN),
    ])
}

use ndefender_tests::security::call;

async fn get(url: &str, token: Option<&str>) -> R<(u16, Value)> {
    call(reqwest::Method::GET, url, token, None, None).await
}

async fn post(url: &str, token: Option<&str>, body: &str) -> R<(u16, Value)> {
    let body = Some(("application/json", body));
    call(reqwest::Method::POST, url, token, body, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_tokens_and_whoami() -> R {
    let dir = tempfile::tempdir()?;
    let toks = tokens_env();
    let d = Daemon::start(dir.path(), &[("NDEFENDER_SERVER__TOKENS", &toks)]).await?;
    let b = d.base();
    // No credential, a wrong one: 401 unauthorized; /health stays open.
    assert_eq!(
        get(&format!("{b}/api/v1/status"), None).await?,
        (401, json!({"detail":"unauthorized"}))
    );
    assert_eq!(get(&format!("{b}/api/v1/status"), Some("nope")).await?.0, 401);
    assert_eq!(get(&format!("{b}/api/v1/health"), None).await?.0, 200);
    // whoami answers the token's name and role.
    assert_eq!(
        get(&format!("{b}/api/v1/auth/whoami"), Some(VIEWER)).await?,
        (200, json!({"name":"wall","role":"viewer"}))
    );
    assert_eq!(
        get(&format!("{b}/api/v1/auth/whoami"), Some(OPERATOR)).await?.1,
        json!({"name":"tablet","role":"operator"})
    );
    // A viewer reads but commands nothing; an operator tunes but does not reboot or read
    // the audit trail; an admin does everything.
    assert_eq!(get(&format!("{b}/api/v1/status"), Some(VIEWER)).await?.0, 200);
    let tune = format!("{b}/api/v1/vrx/tune");
    let body = r#"{"payload":{"vrx_id":1,"freq_mhz":5800}}"#;
    assert_eq!(
        post(&tune, Some(VIEWER), body).await?,
        (403, json!({"detail":"forbidden_role"}))
    );
    let (s, v) = post(&tune, Some(OPERATOR), body).await?;
    assert!(s != 401 && s != 403, "operator may tune: {s} {v}");
    let reboot = format!("{b}/api/v1/system/reboot");
    assert_eq!(
        post(&reboot, Some(OPERATOR), r#"{"confirm":true}"#).await?,
        (403, json!({"detail":"forbidden_role"}))
    );
    // The admin passes the role check (the reboot itself is then refused by the daemon's
    // own safety switch, `safety.allow_unsafe = false`).
    let (s, v) = post(&reboot, Some(ADMIN), r#"{"confirm":true}"#).await?;
    assert!(
        s != 401 && v["detail"] != "forbidden_role",
        "admin may ask for a reboot: {s} {v}"
    );
    assert_eq!(get(&format!("{b}/api/v1/audit"), Some(OPERATOR)).await?.0, 403);
    // The WebSocket takes ?access_token= (browsers cannot set headers) and refuses without.
    assert!(Ws::connect(&d.ws_url()).await.is_err());
    let mut ws = Ws::connect(&format!("{}?access_token={VIEWER}", d.ws_url())).await?;
    assert!(ws.next(Duration::from_secs(5)).await?.is_some(), "greeting frame");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_credentials_are_rate_limited_and_counted() -> R {
    let dir = tempfile::tempdir()?;
    let toks = tokens_env();
    let d = Daemon::start(dir.path(), &[("NDEFENDER_SERVER__TOKENS", &toks)]).await?;
    let url = format!("{}/api/v1/status", d.base());
    for i in 0..10 {
        assert_eq!(get(&url, Some("guess")).await?.0, 401, "attempt {i}");
    }
    assert_eq!(get(&url, Some("guess")).await?, (429, json!({"detail":"rate_limited"})));
    // Locked out for the minute even with a good token: guessing costs the address.
    assert_eq!(get(&url, Some(ADMIN)).await?.0, 429);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_refused_credentials() -> R {
    let dir = tempfile::tempdir()?;
    let toks = tokens_env();
    let d = Daemon::start(dir.path(), &[("NDEFENDER_SERVER__TOKENS", &toks)]).await?;
    let url = format!("{}/api/v1/status", d.base());
    for _ in 0..3 {
        assert_eq!(get(&url, Some("guess")).await?.0, 401);
    }
    let r = reqwest::Client::new()
        .get(format!("{}/metrics", d.base()))
        .bearer_auth(VIEWER)
        .send()
        .await?;
    let m = r.text().await?;
    assert!(m.contains("ndefender_auth_refusals_total{reason=\"invalid\"} 3"), "{m}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cross_site_commands() -> R {
    let dir = tempfile::tempdir()?;
    let d = Daemon::start(dir.path(), &[]).await?;
    let b = d.base();
    let tune = format!("{b}/api/v1/vrx/tune");
    let body = r#"{"payload":{"vrx_id":1,"freq_mhz":5800}}"#;
    // The form a hostile page can send without a preflight.
    let (s, v) = call(reqwest::Method::POST, &tune, None, Some(("text/plain", body)), None).await?;
    assert_eq!((s, v), (415, json!({"detail":"unsupported_media_type"})));
    let (s, _) = call(
        reqwest::Method::POST,
        &tune,
        None,
        Some(("application/x-www-form-urlencoded", "a=b")),
        None,
    )
    .await?;
    assert_eq!(s, 415);
    // A foreign Origin is refused; the daemon's own origin is not.
    let evil = Some("http://evil.example");
    let (s, v) = call(
        reqwest::Method::POST,
        &tune,
        None,
        Some(("application/json", body)),
        evil,
    )
    .await?;
    assert_eq!((s, v), (403, json!({"detail":"origin_not_allowed"})));
    let own = format!("http://127.0.0.1:{}", d.port);
    let (s, _) = call(
        reqwest::Method::GET,
        &format!("{b}/api/v1/status"),
        None,
        None,
        Some(&own),
    )
    .await?;
    assert_eq!(s, 200);
    // The WebSocket: refused before the upgrade when the Origin is foreign.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = d.ws_url().into_client_request()?;
    req.headers_mut().insert("origin", "http://evil.example".parse()?);
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 403),
        other => return Err(format!("foreign origin upgraded: {:?}", other.map(|_| ())).into()),
    }
    let mut req = d.ws_url().into_client_request()?;
    req.headers_mut().insert("origin", own.parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    ws.close(None).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_on_the_lan_without_credentials() -> R {
    let port = free_port()?;
    let bind = format!("0.0.0.0:{port}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ndefender-aggregator"))
        .env("NDEFENDER_SERVER__BIND", &bind)
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("server.tokens") && err.contains("ndefender-token") && err.contains("insecure_lan"),
        "{err}"
    );
    // With a token the same bind is accepted (--check-config stops before binding).
    let toks = tokens_env();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ndefender-aggregator"))
        .arg("--check-config")
        .env("NDEFENDER_SERVER__BIND", &bind)
        .env("NDEFENDER_SERVER__TOKENS", &toks)
        .output()?;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ndefender-aggregator"))
        .arg("--check-config")
        .env("NDEFENDER_SERVER__BIND", &bind)
        .env("NDEFENDER_SERVER__INSECURE_LAN", "true")
        .output()?;
    assert_eq!(out.status.code(), Some(0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_trail_names_the_token() -> R {
    let dir = tempfile::tempdir()?;
    let toks = tokens_env();
    let d = Daemon::start(dir.path(), &[("NDEFENDER_SERVER__TOKENS", &toks)]).await?;
    let b = d.base();
    let body = r#"{"payload":{"vrx_id":1,"freq_mhz":5800}}"#;
    let (s1, _) = post(&format!("{b}/api/v1/vrx/tune"), Some(OPERATOR), body).await?;
    let (s2, _) = post(&format!("{b}/api/v1/system/reboot"), Some(VIEWER), "{}").await?;
    assert_eq!(s2, 403);
    let text = std::fs::read_to_string(d.state_dir().join("audit.jsonl"))?;
    let lines: Vec<Value> = text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["who"], "tablet");
    assert_eq!(lines[0]["role"], "operator");
    assert_eq!(lines[0]["route"], "/api/v1/vrx/tune");
    assert_eq!(lines[0]["client"], "127.0.0.1");
    assert_eq!(lines[0]["status"], s1);
    assert_eq!(lines[1]["outcome"], "forbidden_role");
    // Admins read it back over HTTP.
    let (s, v) = get(&format!("{b}/api/v1/audit?limit=1"), Some(ADMIN)).await?;
    assert_eq!(s, 200);
    assert_eq!(v["records"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["records"][0]["who"], "wall");
    Ok(())
}

/// `GET /api/v1/health` over a fresh connection; its latency.
async fn health_latency(port: u16) -> R<Duration> {
    let t = Instant::now();
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/health"))
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 200);
    Ok(t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_flood_does_not_lock_clients_out() -> R {
    let dir = tempfile::tempdir()?;
    let mut d = Daemon::start(dir.path(), &[]).await?;
    d.terminate()?;
    // The daemon again, under systemd's default soft limit of 1 024 descriptors.
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 1024 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_ndefender-aggregator"))
        .arg("--config")
        .arg(&d.config)
        .env("RUST_LOG", "error")
        .stdin(std::process::Stdio::null())
        .spawn()?;
    d.proc.adopt(child).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while health_latency(d.port).await.is_err() {
        if Instant::now() > deadline {
            return Err("daemon did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut idle = Vec::with_capacity(1500);
    for _ in 0..1500 {
        idle.push(tokio::net::TcpStream::connect(("127.0.0.1", d.port)).await?);
    }
    // Let the daemon accept what it will.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        worst = worst.max(health_latency(d.port).await?);
    }
    println!("health with 1500 idle connections open (RLIMIT_NOFILE 1024): worst of 5 = {worst:?}");
    let m = reqwest::get(format!("http://127.0.0.1:{}/metrics", d.port))
        .await?
        .text()
        .await?;
    let evicted = m
        .lines()
        .find_map(|l| l.strip_prefix("ndefender_http_connections_evicted_total "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(evicted > 0, "the cap was never reached:\n{m}");
    drop(idle);
    Ok(())
}

/// A TLS client that trusts exactly the daemon's certificate.
fn pinned_client(cert: &std::path::Path) -> R<tokio_rustls::TlsConnector> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(cert)? {
        roots.add(c?)?;
    }
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_generated_certificate() -> R {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir()?;
    let (cert, key, names) = ndefender_service::tls::write_self_signed(&dir.path().join("tls"), &[])?;
    assert!(names.iter().any(|n| n == "localhost"));
    let mut d = Daemon::start(dir.path(), &[]).await?;
    d.terminate()?;
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ndefender-aggregator"))
        .arg("--config")
        .arg(&d.config)
        .env("RUST_LOG", "warn")
        .env("NDEFENDER_SERVER__TLS_CERT", &cert)
        .env("NDEFENDER_SERVER__TLS_KEY", &key)
        .stdin(std::process::Stdio::null())
        .spawn()?;
    d.proc.adopt(child).map_err(|e| e.to_string())?;
    let tls = pinned_client(&cert)?;
    let name = rustls_pki_types::ServerName::try_from("localhost")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let reply = loop {
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", d.port)).await?;
            let mut s = tls.connect(name.clone(), tcp).await?;
            s.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .await?;
            let mut out = Vec::new();
            s.read_to_end(&mut out).await?;
            Ok::<_, Box<dyn std::error::Error>>(String::from_utf8_lossy(&out).into_owned())
        };
        match attempt.await {
            Ok(r) => break r,
            Err(e) if Instant::now() > deadline => return Err(format!("no HTTPS answer: {e}").into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"overall_ok\""), "{reply}");
    // Plain HTTP on the TLS port gets nothing served.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/api/v1/status", d.port))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| !r.status().is_success()));
    // WSS: the same WebSocket over TLS.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", d.port)).await?;
    let s = tls.connect(name, tcp).await?;
    let url = format!("wss://localhost:{}/api/v1/ws", d.port);
    let (mut ws, _) = tokio_tungstenite::client_async(url, s).await?;
    use futures_util::StreamExt;
    let first = tokio::time::timeout(Duration::from_secs(5), ws.next()).await?;
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    Ok(())
}

/// The real system controller (its own server code, in this process) serving HTTPS and WSS
/// with `cert`/`key`, with an in-memory tone output so `audio/beep` is accepted here.
async fn https_controller(
    dir: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> R<(u16, ndefender_service::Shutdown)> {
    use ndefender_system_controller::config::{ControllerConfig, PowerBackend};
    let mut c = ControllerConfig::default();
    c.server.bind = "127.0.0.1:0".into();
    c.server.tls_cert = cert.display().to_string();
    c.server.tls_key = key.display().to_string();
    c.power.backend = PowerBackend::None;
    c.gps.gpsd = "127.0.0.1:1".into();
    c.audit.path = dir.join("controller-audit.jsonl");
    let tone = ndefender_system_controller::probes::audio::FakeTone::default();
    tone.present.store(true, std::sync::atomic::Ordering::Release);
    let mut b = ndefender_system_controller::Backends::real(&c);
    b.tone = std::sync::Arc::new(tone);
    let sd = ndefender_service::Shutdown::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(ndefender_system_controller::run_with(c, sd.clone(), b, move |a| {
        let _ = tx.send(a);
    }));
    let addr = tokio::time::timeout(Duration::from_secs(10), rx).await??;
    Ok((addr.port(), sd))
}

/// The aggregator process following the controller at `base_url`, pinning `ca_file`.
async fn pinned_aggregator(dir: &std::path::Path, base_url: &str, ca_file: &std::path::Path) -> R<Daemon> {
    std::fs::create_dir_all(dir)?;
    let ca = ca_file.display().to_string();
    let env = [
        ("NDEFENDER_SYSTEM_CONTROLLER__BASE_URL", base_url),
        ("NDEFENDER_SYSTEM_CONTROLLER__CA_FILE", ca.as_str()),
    ];
    Daemon::start(dir, &env).await
}

/// Polls the aggregator's snapshot until `pred` holds.
async fn wait_status(base: &str, what: &str, pred: impl Fn(&Value) -> bool) -> R<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, s) = get(&format!("{base}/api/v1/status"), None).await?;
        if pred(&s) {
            return Ok(s);
        }
        if Instant::now() > deadline {
            return Err(format!("{what} never happened: {s}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The upstream-error header of an aggregator proxy GET (absent: the upstream answered).
async fn proxy_error(url: &str) -> R<Option<String>> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 200);
    Ok(r.headers()
        .get("x-ndefender-upstream-error")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_reach_an_https_upstream_with_a_pinned_certificate() -> R {
    let dir = tempfile::tempdir()?;
    let (cert, key, _) = ndefender_service::tls::write_self_signed(&dir.path().join("tls"), &[])?;
    let (other, _, _) = ndefender_service::tls::write_self_signed(&dir.path().join("other"), &[])?;
    let (port, ctl) = https_controller(dir.path(), &cert, &key).await?;
    let base_url = format!("https://127.0.0.1:{port}");

    // Pinned to the controller's certificate: the follower (WSS and GET /status), a proxy
    // GET and a relayed command all go through TLS.
    let good = pinned_aggregator(&dir.path().join("good"), &base_url, &cert).await?;
    let b = good.base();
    let s = wait_status(&b, "controller sections over TLS", |s| {
        s["system"]["status"] == "ok" && s["system"]["ram"]["total_mb"].as_i64().is_some()
    })
    .await?;
    schemas().validate("StatusSnapshot.json", &s)?;
    assert_eq!(proxy_error(&format!("{b}/api/v1/network/wifi/state")).await?, None);
    let mut ws = Ws::connect(&good.ws_url()).await?;
    let (code, res) = post(&format!("{b}/api/v1/audio/beep"), None, r#"{"payload":{}}"#).await?;
    assert_eq!(code, 200, "{res}");
    assert_eq!(res["command"], "audio/beep");
    // The controller's own ack (same command_id) comes back over the WSS follower.
    let id = res["command_id"].clone();
    let ack = ws
        .wait_for(Duration::from_secs(10), |v| {
            v["type"] == "COMMAND_ACK" && v["data"]["command_id"] == id
        })
        .await?;
    assert_eq!(ack["data"]["ok"], true, "{ack}");
    let metrics = reqwest::get(format!("{b}/metrics")).await?.text().await?;
    assert!(
        metrics.contains(r#"upstream="system_controller",outcome="ok""#),
        "{metrics}"
    );

    // Pinned to another certificate: the handshake fails, so the relay answers the usual
    // unreachable-upstream 502 (not a timeout), and the snapshot marks the controller down.
    let bad = pinned_aggregator(&dir.path().join("bad"), &base_url, &other).await?;
    let b = bad.base();
    assert_eq!(
        post(&format!("{b}/api/v1/audio/beep"), None, r#"{"payload":{}}"#).await?,
        (502, json!({"detail":"system_controller_unavailable"}))
    );
    assert_eq!(
        proxy_error(&format!("{b}/api/v1/network/wifi/state")).await?,
        Some("system_controller_unavailable".to_owned())
    );
    wait_status(&b, "controller marked unavailable", |s| {
        s["system"]["last_error"] == "system_controller_unavailable"
    })
    .await?;

    // https:// without a certificate to pin is a configuration error naming the key.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ndefender-aggregator"))
        .arg("--check-config")
        .env("NDEFENDER_SYSTEM_CONTROLLER__BASE_URL", &base_url)
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("system_controller.ca_file"), "{err}");
    ctl.trigger();
    Ok(())
}
