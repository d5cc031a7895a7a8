//! The controller's test fixtures on top of the shared harness (`ndefender-tests`): its
//! config, the daemon as a process, and the schema each REST body must satisfy.
#![allow(dead_code)]

use ndefender_contract::schema::no_nulls_or_empty_objects;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// Not every test binary uses all of them.
#[allow(unused_imports)]
pub use ndefender_tests::{dbus, kind, skip_or_fail, Ws, R};
#[allow(unused_imports)]
pub use tokio_tungstenite::tungstenite::Message;

pub const S5: Duration = Duration::from_secs(5);
pub const S10: Duration = Duration::from_secs(10);

// Not every test binary uses the bus helpers.
#[allow(unused_imports)]
pub use ndefender_tests::dbus::{bluez, calls, dcall, systemd_template, Mock, PrivateBus, MOCK};
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

/// GET with the content type and the body checked ([`check_body`]).
pub async fn get_json(url: &str) -> R<(u16, Value)> {
    let r = ndefender_tests::http::get(url).await?;
    let ct = r.header("content-type");
    if !ct.starts_with("application/json") {
        return Err(format!("{url}: content-type {ct}").into());
    }
    let v = r.json()?;
    check_body(url, r.status, &v)?;
    Ok((r.status, v))
}

/// POST a JSON text with the answer's body checked ([`check_body`]).
pub async fn post_json(url: &str, body: &str) -> R<(u16, reqwest::header::HeaderMap, Value)> {
    let r = ndefender_tests::http::post(url, body).await?;
    let v = r.json()?;
    check_body(url, r.status, &v)?;
    Ok((r.status, r.headers, v))
}

/// The controller's greeting: HELLO, SYSTEM_STATUS and the five section events.
pub const GREETING: usize = 7;

/// A WebSocket client on the controller: every envelope must name source `system`.
pub async fn connect(url: &str) -> R<Ws> {
    Ok(Ws::open(url).await?.source("system"))
}

pub fn ack_of<'a>(v: &'a Value, command: &str) -> Option<&'a Value> {
    (kind(v) == "COMMAND_ACK" && v["data"]["command"] == command).then(|| &v["data"])
}
