//! A real browser for the dashboard tests: Debian's `chromium` driven through
//! `chromedriver` (WebDriver, via fantoccini), headless, with a fresh profile. Its
//! console is read back through chromedriver's log endpoint, so a test sees what a
//! developer would see in the devtools console.

use crate::proc::free_port;
use crate::R;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Chromium as root in a container needs these; the rest keep it off the network
/// and quiet (no first-run, sync, component or QUIC traffic).
const FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
];

pub struct Browser {
    pub client: Client,
    driver: Child,
    // Last: the profile outlives the browser using it.
    _profile: tempfile::TempDir,
}

/// Chromium and its driver, or the reason they cannot run (a visible SKIPPED line;
/// under `CI` a failure, since scripts/deps.sh installs both).
pub fn available() -> Result<(), String> {
    for p in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(p).exists() {
            return Err(format!("{p} is missing (Debian packages chromium, chromium-driver)"));
        }
    }
    Ok(())
}

impl Browser {
    /// Starts chromedriver on a free port and a headless chromium with a viewport of
    /// `width`×`height`.
    pub async fn start(width: u32, height: u32) -> R<Browser> {
        Self::start_with(width, height, &[]).await
    }

    /// [`start`](Self::start) with extra chromium flags.
    pub async fn start_with(width: u32, height: u32, extra: &[&str]) -> R<Browser> {
        available()?;
        let port = free_port()?;
        use std::os::unix::process::CommandExt as _;
        // Its own process group: chromium and its helpers join it, and one killpg
        // stops them all, whatever state the session is in.
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Some(s) = driver.try_wait()? {
                return Err(format!("chromedriver exited ({s})").into());
            }
            if Instant::now() > deadline {
                kill_group(&mut driver);
                return Err("chromedriver did not open its port".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir()?;
        let mut args: Vec<String> = FLAGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--window-size={width},{height}"));
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args }));
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let connected = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = match connected {
            Ok(c) => c,
            Err(e) => {
                kill_group(&mut driver);
                return Err(format!("chromium session: {e}").into());
            }
        };
        Ok(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    /// Console messages since the last call: (level, message).
    pub async fn console(&self) -> R<Vec<(String, String)>> {
        let v = self.client.issue_cmd(GetLog).await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or("").to_owned(),
                            e["message"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The viewport (CSS pixels) as the page sees it.
    pub async fn viewport(&self) -> R<(u64, u64)> {
        let v = self.client.execute("return [innerWidth, innerHeight]", vec![]).await?;
        Ok((v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0)))
    }

    /// Sets the viewport to `width`×`height` CSS pixels (the window is resized until the
    /// page reports that size: headless chromium has no window decorations, but be exact).
    pub async fn set_viewport(&self, width: u32, height: u32) -> R {
        let (mut w, mut h) = (width, height);
        for _ in 0..3 {
            self.client.set_window_size(w, h).await?;
            let (iw, ih) = self.viewport().await?;
            if (iw, ih) == (u64::from(width), u64::from(height)) {
                return Ok(());
            }
            w = (w as i64 + i64::from(width) - iw as i64).max(100) as u32;
            h = (h as i64 + i64::from(height) - ih as i64).max(100) as u32;
        }
        Err(format!(
            "could not set the viewport to {width}x{height}: {:?}",
            self.viewport().await?
        )
        .into())
    }

    pub async fn screenshot(&self, path: &Path) -> R {
        let png = self.client.screenshot().await?;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Evaluates `expr` (a JS expression) in the page.
    pub async fn eval(&self, expr: &str) -> R<Value> {
        Ok(self.client.execute(&format!("return ({expr});"), vec![]).await?)
    }

    /// Polls `expr` every 100 ms until it is truthy; fails with `what` after `within`.
    pub async fn until(&self, within: Duration, what: &str, expr: &str) -> R<Value> {
        let deadline = Instant::now() + within;
        loop {
            let v = self.eval(expr).await?;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(format!("{what}: not within {within:?} (last value {v})").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session and stops chromedriver.
    pub async fn close(mut self) -> R {
        let r = self.client.clone().close().await;
        kill_group(&mut self.driver);
        r?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// SIGKILL to chromedriver's process group (chromium included), then reap it.
fn kill_group(driver: &mut Child) {
    let pgid = nix::unistd::Pid::from_raw(driver.id() as i32);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let _ = driver.wait();
}

/// Where screenshots go: `target/dashboard/` of the workspace.
pub fn shots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("dashboard")
}

/// chromedriver's (non-W3C) console log endpoint.
#[derive(Debug)]
struct GetLog;

impl WebDriverCompatibleCommand for GetLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or("")))
    }
    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}
