//! A daemon as a child process: start, readiness, signals, resource readings.

use crate::R;
use ndefender_devkit::stack::proc_usage;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Where the daemons come from instead of the test's own build: a directory of
/// (possibly foreign-architecture) binaries, e.g. the arm64 build of scripts/pi.sh.
pub const BIN_DIR_ENV: &str = "NDEFENDER_BIN_DIR";
/// A command line every daemon is started through, split on spaces, e.g.
/// `qemu-aarch64-static -cpu cortex-a72 -L /` to run arm64 binaries here.
pub const LAUNCHER_ENV: &str = "NDEFENDER_BIN_LAUNCHER";

/// A workspace binary: in `$NDEFENDER_BIN_DIR` when set, else next to the running test
/// executable (`target/<profile>/<name>`).
pub fn bin(name: &str) -> R<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test>-<hash> → target/<profile>/<name>
    let own = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("test executable has no target directory")?;
    let chosen = std::env::var_os(BIN_DIR_ENV).map(PathBuf::from);
    let dir = chosen.as_deref().unwrap_or(own);
    let p = dir.join(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} not built; run `cargo test --workspace` (or `cargo build --bins`)",
            p.display()
        )
        .into())
    }
}

pub fn free_port() -> R<u16> {
    Ok(ndefender_devkit::stack::free_port()?)
}

/// How to start one daemon process: what every crate's black-box tests and the stack tests share.
#[derive(Debug, Clone)]
pub struct Launch {
    pub name: &'static str,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Applied after `RUST_LOG=warn`, so a `RUST_LOG` here wins.
    pub env: Vec<(String, String)>,
    /// Variables removed from the inherited environment (e.g. `DBUS_SYSTEM_BUS_ADDRESS`).
    pub env_remove: Vec<String>,
    /// stderr goes here (appended across restarts).
    pub log: PathBuf,
    pub port: u16,
    /// GET path that answers 200 once the daemon is ready.
    pub health: &'static str,
    pub ready_within: Duration,
}

impl Launch {
    /// `program` on `port`, stderr to `<dir>/<name>.log`, ready when `/api/v1/health` answers.
    pub fn new(name: &'static str, program: impl Into<PathBuf>, dir: &Path, port: u16) -> Launch {
        Launch {
            name,
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            log: dir.join(format!("{name}.log")),
            port,
            health: "/api/v1/health",
            ready_within: Duration::from_secs(30),
        }
    }

    /// `--config <path>`.
    pub fn config(mut self, path: &Path) -> Launch {
        self.args = vec!["--config".into(), path.display().to_string()];
        self
    }

    pub fn envs<'a>(mut self, env: impl IntoIterator<Item = &'a (&'a str, &'a str)>) -> Launch {
        self.env
            .extend(env.into_iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())));
        self
    }

    /// Starts the process and waits until it is ready.
    pub async fn start(self) -> R<Proc> {
        let mut p = Proc {
            name: self.name,
            port: self.port,
            log: self.log.clone(),
            launch: self,
            child: None,
        };
        p.restart().await?;
        Ok(p)
    }
}

/// `program` run directly, or through `$NDEFENDER_BIN_LAUNCHER` when set (the launcher is
/// then the process that gets the signals; qemu-user forwards them to its guest).
pub fn launcher_command(program: &Path) -> Command {
    let launcher = std::env::var(LAUNCHER_ENV).unwrap_or_default();
    let mut words = launcher.split_whitespace();
    match words.next() {
        Some(first) => {
            let mut c = Command::new(first);
            c.args(words).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// One daemon process. Killed on drop if still running.
pub struct Proc {
    pub name: &'static str,
    pub port: u16,
    pub log: PathBuf,
    launch: Launch,
    child: Option<Child>,
}

impl Proc {
    /// Starts the workspace binary `name` with `env` overrides, stderr to `<dir>/<name>.log`,
    /// and waits until `health` answers 200.
    pub async fn start(
        name: &'static str,
        dir: &Path,
        port: u16,
        health: &'static str,
        args: &[&str],
        env: &[(String, String)],
    ) -> R<Proc> {
        let mut l = Launch::new(name, bin(name)?, dir, port);
        l.health = health;
        l.args = args.iter().map(|a| (*a).to_owned()).collect();
        l.env = env.to_vec();
        l.start().await
    }

    /// Starts the process again with the same command line (after a stop or a kill).
    pub async fn restart(&mut self) -> R {
        if self.child.is_some() {
            return Err(format!("{} is still running", self.launch.name).into());
        }
        let l = &self.launch;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&l.log)?;
        let mut cmd = launcher_command(&l.program);
        cmd.args(&l.args).env("RUST_LOG", "warn");
        for k in &l.env_remove {
            cmd.env_remove(k);
        }
        let child = cmd
            .envs(l.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        self.wait_ready(self.launch.ready_within).await
    }

    async fn wait_ready(&mut self, within: Duration) -> R {
        let url = format!("{}{}", self.base(), self.launch.health);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = client.get(&url).timeout(Duration::from_secs(2)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if let Some(c) = self.child.as_mut() {
                if let Some(s) = c.try_wait()? {
                    self.child = None;
                    return Err(
                        format!("{} exited during startup ({s}): {}", self.launch.name, self.log_text()).into(),
                    );
                }
            }
            if Instant::now() > deadline {
                return Err(format!("{} not ready within {within:?}: {}", self.launch.name, self.log_text()).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.launch.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    pub fn ws(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.launch.port)
    }

    /// Takes over a process the test started itself with a command line the launch cannot
    /// express (e.g. under `ulimit`), so it is signalled, waited for and killed on drop like
    /// any other; the previous process must have been stopped.
    pub fn adopt(&mut self, child: Child) -> R {
        if self.child.is_some() {
            return Err(format!("{} is still running", self.name).into());
        }
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> R<i32> {
        Ok(self.child.as_ref().ok_or("not running")?.id() as i32)
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.launch.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: Signal) -> R {
        kill(Pid::from_raw(self.pid()?), sig)?;
        Ok(())
    }

    /// Sends SIGTERM and waits for the exit (SIGKILL after `limit`); returns the
    /// status and how long the daemon took.
    pub async fn terminate(&mut self, limit: Duration) -> R<(ExitStatus, Duration)> {
        let t = Instant::now();
        self.signal(Signal::SIGTERM)?;
        let mut child = self.child.take().ok_or("not running")?;
        loop {
            if let Some(s) = child.try_wait()? {
                return Ok((s, t.elapsed()));
            }
            if t.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{} did not exit within {limit:?} of SIGTERM", self.name).into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// [`Self::terminate`] for synchronous callers: SIGTERM, then wait (SIGKILL after `limit`).
    pub fn terminate_blocking(&mut self, limit: Duration) -> R<(ExitStatus, Duration)> {
        let t = Instant::now();
        self.signal(Signal::SIGTERM)?;
        let status = self.wait_exit_blocking(limit)?;
        Ok((status, t.elapsed()))
    }

    /// Waits for the process to exit on its own (SIGKILL and an error after `within`).
    pub fn wait_exit_blocking(&mut self, within: Duration) -> R<ExitStatus> {
        let mut child = self.child.take().ok_or("not running")?;
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = child.try_wait()? {
                return Ok(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{} did not exit within {within:?}", self.launch.name).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill9(&mut self) -> R {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Resident set size in KiB (VmRSS).
    pub fn rss_kib(&self) -> R<u64> {
        Ok(proc_usage(self.pid()? as u32)?.rss_kib)
    }

    /// Open file descriptors.
    pub fn fds(&self) -> R<u64> {
        Ok(proc_usage(self.pid()? as u32)?.fds)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
