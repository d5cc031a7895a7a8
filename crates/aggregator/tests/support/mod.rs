//! Black-box harness: the real `ndefender-aggregator` binary in a temp dir, a
//! real WebSocket client, real files.
#![allow(dead_code)]

use futures_util::StreamExt;
use ndefender_contract::schema::Schemas;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub type R<T = ()> = Result<T, Box<dyn std::error::Error>>;

pub fn schemas() -> &'static Schemas {
    Schemas::shared_or_abort()
}

pub fn free_port() -> R<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

pub struct Daemon {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub port: u16,
    pub config: PathBuf,
    pub env: Vec<(String, String)>,
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
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/api/v1/ws", self.port)
    }

    /// Writes a config into `dir` and starts the binary with `env` overrides.
    pub async fn start(dir: &Path, env: &[(&str, &str)]) -> R<Daemon> {
        let port = free_port()?;
        let config = dir.join("aggregator.toml");
        let text = format!(
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
        );
        std::fs::write(&config, text)?;
        let mut d = Daemon {
            child: None,
            dir: dir.to_owned(),
            port,
            config,
            env: env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        };
        d.spawn().await?;
        Ok(d)
    }

    pub async fn spawn(&mut self) -> R {
        let child = Command::new(env!("CARGO_BIN_EXE_ndefender-aggregator"))
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{}/api/v1/health", self.base())).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err("aggregator did not become ready".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) -> R {
        if let Some(c) = &self.child {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig)?;
        }
        Ok(())
    }

    /// SIGTERM and wait; returns the exit status and how long it took.
    pub fn terminate(&mut self) -> R<(std::process::ExitStatus, Duration)> {
        let t = Instant::now();
        self.signal(nix::sys::signal::Signal::SIGTERM)?;
        let mut child = self.child.take().ok_or("not running")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = child.try_wait()? {
                return Ok((s, t.elapsed()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("did not exit within 10 s of SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(&mut self) -> R {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
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
