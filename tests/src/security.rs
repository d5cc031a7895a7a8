//! What a daemon's security tests share (docs/SECURITY.md): role tokens for the config,
//! requests with a credential, a body type and an Origin, the refusal to start on the LAN,
//! and HTTPS/WSS to a daemon serving TLS with its own self-signed certificate, which the
//! client pins (as a tablet with the kit's `cert.pem` installed does).

use crate::{Launch, Proc, R};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

pub type WssStream = tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>>;

/// A client of `https://localhost:<port>` trusting exactly the certificate in `cert`.
pub struct Pinned {
    connector: TlsConnector,
    port: u16,
}

impl Pinned {
    pub fn new(cert: &Path, port: u16) -> R<Pinned> {
        let cfg = ndefender_service::tls::pinned_client_config(cert)?;
        Ok(Pinned {
            connector: TlsConnector::from(Arc::new(cfg)),
            port,
        })
    }

    async fn connect(&self) -> R<TlsStream<TcpStream>> {
        let t = Duration::from_secs(5);
        let tcp = tokio::time::timeout(t, TcpStream::connect(("127.0.0.1", self.port))).await??;
        let name = rustls_pki_types::ServerName::try_from("localhost")?;
        Ok(tokio::time::timeout(t, self.connector.connect(name, tcp)).await??)
    }

    /// `GET path` over a fresh connection; the raw response (status line, headers, body).
    pub async fn get(&self, path: &str, token: Option<&str>) -> R<String> {
        let mut s = self.connect().await?;
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await??;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// [`Self::get`] retried until the daemon answers 200 (it may still be starting).
    pub async fn wait_ok(&self, path: &str, token: Option<&str>, within: Duration) -> R<String> {
        let deadline = Instant::now() + within;
        loop {
            let last = match self.get(path, token).await {
                Ok(r) if r.starts_with("HTTP/1.1 200") => return Ok(r),
                Ok(r) => r.lines().next().unwrap_or_default().to_owned(),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(format!("no HTTPS 200 from {path} within {within:?}: {last}").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A WebSocket over TLS (`wss://localhost:<port><path_and_query>`), upgraded.
    pub async fn ws(&self, path_and_query: &str) -> R<WssStream> {
        let s = self.connect().await?;
        let url = format!("wss://localhost:{}{path_and_query}", self.port);
        let (ws, _) = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::client_async(url, s)).await??;
        Ok(ws)
    }
}

/// `server.tokens` as an inline TOML array (for `NDEFENDER_SERVER__TOKENS`): one
/// `(name, role, token)` each, stored as the token's SHA-256.
pub fn tokens_env(tokens: &[(&str, &str, &str)]) -> String {
    let entries: Vec<String> = tokens
        .iter()
        .map(|(name, role, token)| {
            format!(
                "{{name=\"{name}\",role=\"{role}\",sha256=\"{}\"}}",
                ndefender_service::auth::sha256_hex(token)
            )
        })
        .collect();
    format!("[{}]", entries.join(","))
}

/// One request: `Authorization: Bearer <token>`, a `(content type, body)`, an `Origin`.
/// Returns the status and the JSON answer (`null` when it is not JSON).
pub async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
    origin: Option<&str>,
) -> R<(u16, Value)> {
    let mut r = reqwest::Client::new()
        .request(method, url)
        .timeout(Duration::from_secs(10));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some((ct, b)) = body {
        r = r.header("content-type", ct).body(b.to_owned());
    }
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    let resp = r.send().await?;
    let s = resp.status().as_u16();
    Ok((s, resp.json::<Value>().await.unwrap_or(Value::Null)))
}

/// The status of a WebSocket upgrade of `url` sent with this `Origin` (101 when upgraded).
pub async fn ws_upgrade_status(url: &str, origin: &str) -> R<u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request()?;
    req.headers_mut().insert("origin", origin.parse()?);
    match tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(req)).await? {
        Ok((mut ws, resp)) => {
            let _ = ws.close(None).await;
            Ok(resp.status().as_u16())
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Ok(resp.status().as_u16()),
        Err(e) => Err(e.into()),
    }
}

/// Runs `program` on a non-loopback bind (`section.bind` = `0.0.0.0:<free port>`) without
/// credentials and checks the refusal: exit 2 naming the fix. Then `--check-config` with a
/// token, and with `insecure_lan`, accepts the same bind.
pub fn refuses_lan_without_credentials(program: &Path, section: &str, env: &[(&str, &str)]) -> R {
    let bind = format!("0.0.0.0:{}", crate::free_port()?);
    let key = |k: &str| format!("NDEFENDER_{}__{k}", section.to_ascii_uppercase());
    let run = |extra: &[(String, String)], check: bool| {
        let mut c = std::process::Command::new(program);
        if check {
            c.arg("--check-config");
        }
        c.envs(env.iter().copied())
            .env(key("BIND"), &bind)
            .envs(extra.iter().cloned())
            .stdin(std::process::Stdio::null())
            .output()
    };
    let out = run(&[], false)?;
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2) {
        return Err(format!(
            "expected exit 2 on {bind} without credentials, got {:?}: {err}",
            out.status
        )
        .into());
    }
    for fix in [
        format!("{section}.tokens"),
        "ndefender-token".into(),
        "insecure_lan".into(),
    ] {
        if !err.contains(&fix) {
            return Err(format!("the refusal does not name {fix}: {err}").into());
        }
    }
    let token = (
        key("TOKENS"),
        tokens_env(&[("tablet", "viewer", "a-token-0123456789abcdef")]),
    );
    for extra in [token, (key("INSECURE_LAN"), "true".to_owned())] {
        let out = run(std::slice::from_ref(&extra), true)?;
        if out.status.code() != Some(0) {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!("{} should make {bind} acceptable: {err}", extra.0).into());
        }
    }
    Ok(())
}

/// Starts `launch` serving TLS with `cert`/`key` (`section.tls_cert`/`tls_key`) and waits
/// until `health` answers over HTTPS; the process and a client pinning `cert`.
pub async fn start_tls(launch: Launch, section: &str, cert: &Path, key: &Path) -> R<(Proc, Pinned)> {
    let k = |name: &str| format!("NDEFENDER_{}__{name}", section.to_ascii_uppercase());
    // The plain start proves the command line; it is then restarted with TLS (a plain
    // readiness probe cannot see a TLS daemon).
    let program = launch.program.clone();
    let args = launch.args.clone();
    let env = launch.env.clone();
    let health = launch.health;
    let port = launch.port;
    let mut p = launch.start().await?;
    p.terminate(Duration::from_secs(10)).await?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&p.log)?;
    let child = crate::proc::launcher_command(&program)
        .args(&args)
        .env("RUST_LOG", "warn")
        .envs(env)
        .env(k("TLS_CERT"), cert)
        .env(k("TLS_KEY"), key)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()?;
    p.adopt(child)?;
    let pinned = Pinned::new(cert, port)?;
    pinned.wait_ok(health, None, Duration::from_secs(20)).await?;
    Ok((p, pinned))
}
