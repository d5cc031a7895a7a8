//! The aggregator's test fixtures on top of the shared harness (`ndefender-tests`): its
//! config, the daemon as a process, feed lines.
#![allow(dead_code)]

use ndefender_tests::{Launch, Proc};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

// Not every test binary uses all of them.
#[allow(unused_imports)]
pub use ndefender_tests::{free_port, schemas, Ws, R};

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
        .await?;
        Ok(Daemon {
            proc,
            dir: dir.to_owned(),
            port,
            config,
        })
    }

    /// Starts the daemon again (after `terminate` or `kill9`) with the same config.
    pub async fn spawn(&mut self) -> R {
        self.proc.restart().await
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) -> R {
        if self.proc.pid().is_ok() {
            self.proc.signal(sig)?;
        }
        Ok(())
    }

    /// SIGTERM and wait; returns the exit status and how long it took.
    pub fn terminate(&mut self) -> R<(std::process::ExitStatus, Duration)> {
        self.proc.terminate_blocking(Duration::from_secs(10))
    }

    pub fn kill9(&mut self) -> R {
        self.proc.kill9()
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

/// GET: status, headers and the JSON body.
pub async fn get_json(url: &str) -> R<(u16, reqwest::header::HeaderMap, Value)> {
    let r = ndefender_tests::http::get(url).await?;
    let v = r.json()?;
    Ok((r.status, r.headers, v))
}

/// POST a JSON value: status, headers and the JSON answer.
pub async fn post_json(url: &str, body: &Value) -> R<(u16, reqwest::header::HeaderMap, Value)> {
    let r = ndefender_tests::http::post(url, &body.to_string()).await?;
    let v = r.json()?;
    Ok((r.status, r.headers, v))
}
