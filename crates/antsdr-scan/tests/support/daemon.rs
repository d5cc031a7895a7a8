//! Black-box harness: the real `ndefender-antsdr-scan` binary in a temp dir, real HTTP and
//! WebSocket clients.

use super::R;
use futures_util::StreamExt;
use ndefender_tests::{Launch, Proc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The shared harness's errors are `Send + Sync`; these tests use plain boxed errors.
fn h<T>(r: ndefender_tests::R<T>) -> R<T> {
    r.map_err(|e| e as Box<dyn std::error::Error>)
}

pub fn free_port() -> R<u16> {
    h(ndefender_tests::free_port())
}

pub const BIN: &str = env!("CARGO_BIN_EXE_ndefender-antsdr-scan");

/// The scanner as a process (the shared harness's [`Proc`]) with its test config.
pub struct Daemon {
    pub proc: Proc,
    pub dir: PathBuf,
    pub port: u16,
    pub config: PathBuf,
}

impl Daemon {
    pub fn jsonl(&self) -> PathBuf {
        self.dir.join("logs/antsdr_scan.jsonl")
    }
    pub fn base(&self) -> String {
        self.proc.base()
    }
    pub fn ws(&self, path: &str) -> String {
        self.proc.ws(path)
    }

    /// A small, fast config (1024-point FFT, 1 s heartbeat) plus `extra` TOML, and `env`.
    pub async fn start(dir: &Path, extra: &str, env: &[(&str, &str)]) -> R<Daemon> {
        let port = free_port()?;
        let config = dir.join("antsdr-scan.toml");
        let text = format!(
            r#"[api]
bind = "127.0.0.1:{port}"
[radio]
fft_size = 1024
dc_guard_hz = 40000.0
[output]
jsonl_path = "{jsonl}"
stats_interval_s = 1.0
[replay]
allowed_dirs = ["{dir}"]
{extra}
[audit]
path = "{dir}/audit.jsonl"
"#,
            jsonl = dir.join("logs/antsdr_scan.jsonl").display(),
            dir = dir.display(),
        );
        std::fs::write(&config, text)?;
        let proc = Launch::new("ndefender-antsdr-scan", BIN, dir, port)
            .config(&config)
            .envs(env)
            .start()
            .await
            .map_err(|e| e as Box<dyn std::error::Error>)?;
        Ok(Daemon {
            proc,
            dir: dir.to_owned(),
            port,
            config,
        })
    }

    pub fn sigterm(&self) -> R {
        h(self.proc.signal(nix::sys::signal::Signal::SIGTERM))
    }

    /// Waits for the process to exit; its code.
    pub fn wait_exit(&mut self, within: Duration) -> R<Option<i32>> {
        Ok(h(self.proc.wait_exit_blocking(within))?.code())
    }

    /// JSONL lines as parsed JSON (ignoring a partial last line).
    pub fn lines(&self) -> R<Vec<Value>> {
        let text = std::fs::read_to_string(self.jsonl()).unwrap_or_default();
        Ok(text
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| serde_json::from_str(l.trim_end()))
            .collect::<Result<Vec<_>, _>>()?)
    }

    pub async fn wait_line(&self, within: Duration, f: impl Fn(&Value) -> bool) -> R<Value> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = self.lines()?.into_iter().find(|v| f(v)) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err("JSONL line did not appear".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub async fn get(url: &str) -> R<(u16, reqwest::header::HeaderMap, Value)> {
    let r = reqwest::Client::new().get(url).send().await?;
    let code = r.status().as_u16();
    let h = r.headers().clone();
    let text = r.text().await?;
    Ok((code, h, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

pub async fn post(url: &str, body: &str) -> R<(u16, reqwest::header::HeaderMap, Value)> {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await?;
    let code = r.status().as_u16();
    let h = r.headers().clone();
    let text = r.text().await?;
    Ok((code, h, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

pub type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Ws(pub WsStream);

/// What a WS read produced.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Close(Option<u16>),
}

impl Ws {
    pub async fn connect(url: &str) -> R<Ws> {
        let (s, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(Ws(s))
    }

    /// HTTP status of a refused upgrade (None when it was accepted).
    pub async fn refused(url: &str) -> R<Option<(u16, Option<String>, Value)>> {
        match tokio_tungstenite::connect_async(url).await {
            Ok(_) => Ok(None),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let retry = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = resp
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                Ok(Some((resp.status().as_u16(), retry, body)))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn next(&mut self, within: Duration) -> R<Option<Frame>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let m = match tokio::time::timeout_at(deadline, self.0.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Ok(Some(Frame::Close(None))),
                Ok(Some(m)) => m?,
            };
            match m {
                Message::Text(t) => return Ok(Some(Frame::Json(serde_json::from_str(t.as_str())?))),
                Message::Close(c) => return Ok(Some(Frame::Close(c.map(|c| u16::from(c.code))))),
                _ => {}
            }
        }
    }

    pub async fn wait_for(&mut self, within: Duration, f: impl Fn(&Value) -> bool) -> R<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                Some(Frame::Json(v)) if f(&v) => return Ok(v),
                Some(Frame::Json(_)) => {}
                Some(Frame::Close(c)) => return Err(format!("closed {c:?}").into()),
                None => return Err("timed out waiting for a frame".into()),
            }
        }
    }
}
