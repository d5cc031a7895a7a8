//! Test harness: the real controller binary, a private dbus-daemon with
//! python-dbusmock services, WebSocket and REST clients that validate every
//! frame and body against the contract schemas.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use ndefender_contract::schema::no_nulls_or_empty_objects;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub type R<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub const S5: Duration = Duration::from_secs(5);
pub const S10: Duration = Duration::from_secs(10);

// Not every test binary uses the bus helpers.
#[allow(unused_imports)]
pub use ndefender_tests::dbus::*;
pub use ndefender_tests::{free_port, schemas};
use ndefender_tests::{Launch, Proc};

// ---- the controller ------------------------------------------------------------

/// The controller as a process (the shared harness's [`Proc`]).
pub struct Daemon {
    pub proc: Proc,
    pub port: u16,
    pub dir: PathBuf,
    pub stderr: PathBuf,
}

/// A config for tests: everything off the machine's real devices.
pub fn base_config(port: u16, dir: &Path, extra: &str) -> String {
    format!(
        r#"[server]
bind = "127.0.0.1:{port}"
[system]
logs_dir = "{logs}"
[gps]
gpsd = "127.0.0.1:1"
[audio]
enabled = false
{extra}
"#,
        logs = dir.display()
    )
}

impl Daemon {
    /// Starts the binary with `config` (TOML text; merged sections must not repeat)
    /// and `env`; waits until /health answers.
    pub async fn start(dir: &Path, config: &str, env: &[(&str, &str)]) -> R<Daemon> {
        let port = free_port()?;
        let path = dir.join("controller.toml");
        std::fs::write(&path, config.replace("{PORT}", &port.to_string()))?;
        let audit = dir.join("audit.jsonl").display().to_string();
        let mut launch = Launch::new(
            "ndefender-system-controller",
            env!("CARGO_BIN_EXE_ndefender-system-controller"),
            dir,
            port,
        )
        .config(&path)
        .envs(&[("RUST_LOG", "debug,zbus=info,hyper=info")])
        .envs(&[("NDEFENDER_AUDIT__PATH", audit.as_str())])
        .envs(env);
        launch.env_remove.push("DBUS_SYSTEM_BUS_ADDRESS".into());
        launch.log = dir.join(format!("controller-{port}.log"));
        launch.ready_within = Duration::from_secs(20);
        let stderr = launch.log.clone();
        let proc = launch.start().await?;
        Ok(Daemon {
            proc,
            port,
            dir: dir.to_owned(),
            stderr,
        })
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/api/v1/ws", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM and wait; returns the exit status and how long it took.
    pub fn terminate(&mut self) -> R<(std::process::ExitStatus, Duration)> {
        self.proc.terminate_blocking(S10)
    }

    pub async fn get(&self, path: &str) -> R<(u16, Value)> {
        get_json(&format!("{}{}", self.base(), path)).await
    }

    pub async fn post(&self, path: &str, body: &str) -> R<(u16, reqwest::header::HeaderMap, Value)> {
        post_json(&format!("{}{}", self.base(), path), body).await
    }

    /// Polls `GET path` until `pred` holds.
    pub async fn wait_get(&self, path: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> R<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, v) = self.get(path).await?;
            if pred(&v) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(format!("condition on {path} not met; last: {v}").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The schema each REST read must satisfy.
pub fn check_body(url: &str, status: u16, v: &Value) -> R {
    no_nulls_or_empty_objects(v).or_else(|e| {
        // CommandResult's `detail` is the one null a REST body may carry.
        if v.get("command_id").is_some() && e.contains("detail") {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    let path = url
        .split("/api/v1")
        .nth(1)
        .unwrap_or("")
        .split('?')
        .next()
        .unwrap_or("");
    let s = schemas();
    if status >= 400 {
        let m = v.as_object().ok_or("error body is not an object")?;
        if !m.contains_key("detail") || m.keys().any(|k| k != "detail" && k != "field") {
            return Err(format!("bad error body {v}").into());
        }
        return Ok(());
    }
    match path {
        "/system" => s.validate("SystemStats.json", v)?,
        "/ups" | "/power" => s.validate("UPS_Telemetry.json", v)?,
        "/gps" => s.validate("GPSState.json", v)?,
        "/audio" => s.validate("AudioState.json", v)?,
        "/network" => s.validate("StatusSnapshot.json#/$defs/network_state", v)?,
        "/network/wifi/state" => s.validate("WifiState.json", v)?,
        "/network/bluetooth/state" => s.validate("BluetoothState.json", v)?,
        "/network/wifi/scan" => s.validate("WifiScanResult.json", v)?,
        "/network/bluetooth/devices" => s.validate("BluetoothDeviceList.json", v)?,
        "/services" => s.validate(
            "StatusSnapshot.json",
            &serde_json::json!({"timestamp_ms": 0, "services": v}),
        )?,
        "/status" => {
            for (k, schema) in [
                ("system", "SystemStats.json"),
                ("ups", "UPS_Telemetry.json"),
                ("gps", "GPSState.json"),
                ("audio", "AudioState.json"),
                ("network", "StatusSnapshot.json#/$defs/network_state"),
            ] {
                s.validate(schema, v.get(k).ok_or(format!("status lacks {k}"))?)?;
            }
            let services = v.get("services").ok_or("status lacks services")?;
            s.validate(
                "StatusSnapshot.json",
                &serde_json::json!({"timestamp_ms": 0, "services": services}),
            )?;
        }
        p if p.starts_with("/services/") || v.get("command_id").is_some() => {
            let m = v.as_object().ok_or("not an object")?;
            let keys: Vec<&str> = m.keys().map(String::as_str).collect();
            if keys != ["command", "command_id", "accepted", "detail", "timestamp_ms"]
                || v["accepted"] != Value::Bool(true)
                || !v["detail"].is_null()
            {
                return Err(format!("bad CommandResult {v}").into());
            }
            uuid_v4(v["command_id"].as_str().unwrap_or(""))?;
        }
        _ => {}
    }
    Ok(())
}

fn uuid_v4(s: &str) -> R {
    let ok = s.len() == 36 && s.as_bytes().get(14) == Some(&b'4');
    if ok {
        Ok(())
    } else {
        Err(format!("not a uuid v4: {s}").into())
    }
}

pub async fn get_json(url: &str) -> R<(u16, Value)> {
    let r = reqwest::get(url).await?;
    let s = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !ct.starts_with("application/json") {
        return Err(format!("{url}: content-type {ct}").into());
    }
    let v: Value = r.json().await?;
    check_body(url, s, &v)?;
    Ok((s, v))
}

pub async fn post_json(url: &str, body: &str) -> R<(u16, reqwest::header::HeaderMap, Value)> {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await?;
    let s = r.status().as_u16();
    let h = r.headers().clone();
    let v: Value = r.json().await?;
    check_body(url, s, &v)?;
    Ok((s, h, v))
}

// ---- WebSocket -------------------------------------------------------------------

pub fn kind(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

pub struct Ws {
    pub stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    pub close_code: Option<u16>,
}

impl Ws {
    pub async fn connect(url: &str) -> R<Ws> {
        let (stream, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(Ws {
            stream,
            close_code: None,
        })
    }

    /// Next envelope (schema-validated), or None on timeout/close.
    pub async fn next(&mut self, timeout: Duration) -> R<Option<Value>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) | Ok(None) => return Ok(None),
                Ok(Some(m)) => m?,
            };
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str())?;
                    schemas().validate_envelope(&v)?;
                    if v.get("source").and_then(Value::as_str) != Some("system") {
                        return Err(format!("source is not system: {v}").into());
                    }
                    return Ok(Some(v));
                }
                Message::Close(f) => {
                    self.close_code = f.map(|f| u16::from(f.code));
                    return Ok(None);
                }
                _ => {}
            }
        }
    }

    pub async fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> R<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                Some(v) if pred(&v) => return Ok(v),
                Some(_) => {}
                None => return Err(format!("expected envelope did not arrive (close {:?})", self.close_code).into()),
            }
        }
    }

    /// Everything that arrives within `d`.
    pub async fn collect(&mut self, d: Duration) -> R<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + d;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(out);
            }
            match self.next(left).await? {
                Some(v) => out.push(v),
                None => return Ok(out),
            }
        }
    }

    pub async fn send(&mut self, m: Message) -> R {
        self.stream.send(m).await?;
        Ok(())
    }

    /// Reads the greeting: HELLO, SYSTEM_STATUS and the five section events.
    pub async fn greeting(&mut self) -> R<Vec<Value>> {
        let mut out = Vec::new();
        for _ in 0..7 {
            out.push(self.next(S5).await?.ok_or("greeting incomplete")?);
        }
        Ok(out)
    }
}

pub fn ack_of<'a>(v: &'a Value, command: &str) -> Option<&'a Value> {
    (kind(v) == "COMMAND_ACK" && v["data"]["command"] == command).then(|| &v["data"])
}
