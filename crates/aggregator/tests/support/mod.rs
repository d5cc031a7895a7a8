//! Black-box harness: the real `ndefender-aggregator` binary in a temp dir, a
//! real WebSocket client, real files.
#![allow(dead_code)]

use futures_util::StreamExt;
use ndefender_tests::{Launch, Proc};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub type R<T = ()> = Result<T, Box<dyn std::error::Error>>;

pub use ndefender_tests::schemas;

/// The shared harness's errors are `Send + Sync`; these tests use plain boxed errors.
fn h<T>(r: ndefender_tests::R<T>) -> R<T> {
    r.map_err(|e| e as Box<dyn std::error::Error>)
}

pub fn free_port() -> R<u16> {
    h(ndefender_tests::free_port())
}

/// The aggregator as a process (the shared harness's [`Proc`]) with its test config.
pub struct Daemon {
    pub proc: Proc,
    pub dir: PathBuf,
    pub port: u16,
    pub config: PathBuf,
}

impl Daemon {
    pub fn rid_path(&self) -> PathBuf {
        self.dir.join("remoteid.jsonl")
    }
    pub fn rf_path(&self) -> PathBuf {
        self.dir.join("antsdr.jsonl")
    }
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }
    pub fn base(&self) -> String {
        self.proc.base()
    }
    pub fn ws_url(&self) -> String {
        self.proc.ws("/api/v1/ws")
    }

    /// Writes a config into `dir` and starts the binary with `env` overrides.
    pub async fn start(dir: &Path, env: &[(&str, &str)]) -> R<Daemon> {
        let port = free_port()?;
        let config = dir.join("aggregator.toml");
        std::fs::write(&config, config_text(dir, port))?;
        let proc = Launch::new(
            "ndefender-aggregator",
            env!("CARGO_BIN_EXE_ndefender-aggregator"),
            dir,
            port,
        )
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

    /// Starts the daemon again (after `terminate` or `kill9`) with the same config.
    pub async fn spawn(&mut self) -> R {
        h(self.proc.restart().await)
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) -> R {
        if self.proc.pid().is_ok() {
            h(self.proc.signal(sig))?;
        }
        Ok(())
    }

    /// SIGTERM and wait; returns the exit status and how long it took.
    pub fn terminate(&mut self) -> R<(std::process::ExitStatus, Duration)> {
        h(self.proc.terminate_blocking(Duration::from_secs(10)))
    }

    pub fn kill9(&mut self) -> R {
        h(self.proc.kill9())
    }
}

/// Everything off the machine: feeds in `dir`, upstreams unreachable, ESP32 off.
fn config_text(dir: &Path, port: u16) -> String {
    format!(
        r#"[server]
bind = "127.0.0.1:{port}"
[state]
dir = "{state}"
[remoteid]
jsonl_path = "{rid}"
base_url = "http://127.0.0.1:1"
[antsdr]
jsonl_path = "{rf}"
base_url = "http://127.0.0.1:1"
[esp32]
enabled = false
[system_controller]
base_url = "http://127.0.0.1:1"
[tail]
start_position = "beginning"
[audit]
path = "{state}/audit.jsonl"
"#,
        state = dir.join("state").display(),
        rid = dir.join("remoteid.jsonl").display(),
        rf = dir.join("antsdr.jsonl").display(),
    )
}

pub fn append(path: &Path, lines: &[String]) -> R {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let mut buf = String::new();
    for l in lines {
        buf.push_str(l);
        buf.push('\n');
    }
    f.write_all(buf.as_bytes())?;
    f.flush()?;
    Ok(())
}

pub fn now_ms() -> u64 {
    ndefender_contract::time::now_ms()
}

pub fn rid_new(id: &str, extra: &str) -> String {
    let t = now_ms();
    format!(
        r#"{{"type":"CONTACT_NEW","timestamp_ms":{t},"source":"remoteid","data":{{"id":"{id}","type":"REMOTE_ID","last_seen_ts":{t}{extra}}}}}"#
    )
}

pub fn rid_update(id: &str, extra: &str) -> String {
    rid_new(id, extra).replacen("CONTACT_NEW", "CONTACT_UPDATE", 1)
}

/// A WebSocket client that validates every frame it reads.
pub struct Ws {
    pub stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    /// The first frame (the aggregator's SYSTEM_UPDATE snapshot).
    pub greeting: Option<Value>,
}

impl Ws {
    /// Connects and waits for the greeting: the hub registers a client after the
    /// HTTP upgrade completes, so only events after the greeting are this client's.
    pub async fn connect(url: &str) -> R<Ws> {
        let (stream, _) = tokio_tungstenite::connect_async(url).await?;
        let mut ws = Ws { stream, greeting: None };
        ws.greeting = ws.next(Duration::from_secs(10)).await?;
        if ws.greeting.is_none() {
            return Err("no greeting".into());
        }
        Ok(ws)
    }

    /// Next envelope (schema-validated), or None on timeout/close.
    pub async fn next(&mut self, timeout: Duration) -> R<Option<Value>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Ok(None),
                Ok(Some(m)) => m?,
            };
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str())?;
                schemas().validate_envelope(&v)?;
                return Ok(Some(v));
            }
            if let Message::Close(_) = msg {
                return Ok(None);
            }
        }
    }

    /// Reads until an envelope matches, returning it (and failing after `timeout`).
    pub async fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> R<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                Some(v) if pred(&v) => return Ok(v),
                Some(_) => {}
                None => return Err("expected envelope did not arrive".into()),
            }
        }
    }
}

pub async fn get_json(url: &str) -> R<(u16, reqwest::header::HeaderMap, Value)> {
    let r = reqwest::get(url).await?;
    let s = r.status().as_u16();
    let h = r.headers().clone();
    let v: Value = r.json().await?;
    Ok((s, h, v))
}
