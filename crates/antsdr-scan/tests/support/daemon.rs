//! The scanner's black-box fixtures on top of the shared harness (`ndefender-tests`): its
//! config, the daemon as a process, its JSONL.

use super::R;
use ndefender_tests::{Launch, Proc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// Not every test binary uses all of them.
#[allow(unused_imports)]
pub use ndefender_tests::{free_port, Ws};

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
            .await?;
        Ok(Daemon {
            proc,
            dir: dir.to_owned(),
            port,
            config,
        })
    }

    pub fn sigterm(&self) -> R {
        self.proc.signal(nix::sys::signal::Signal::SIGTERM)
    }

    /// Waits for the process to exit; its code.
    pub fn wait_exit(&mut self, within: Duration) -> R<Option<i32>> {
        Ok(self.proc.wait_exit_blocking(within)?.code())
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

/// GET: status, headers, body (JSON, or the text as a JSON string).
pub async fn get(url: &str) -> R<(u16, reqwest::header::HeaderMap, Value)> {
    let r = ndefender_tests::http::get(url).await?;
    Ok((r.status, r.headers, r.body))
}

/// POST a JSON text: status, headers, body (JSON, or the text as a JSON string).
pub async fn post(url: &str, body: &str) -> R<(u16, reqwest::header::HeaderMap, Value)> {
    let r = ndefender_tests::http::post(url, body).await?;
    Ok((r.status, r.headers, r.body))
}
