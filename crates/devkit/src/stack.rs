//! The daemons as child processes: finding their binaries, starting them, waiting
//! for their port, stopping them the way systemd does (SIGTERM, then SIGKILL after
//! a grace period), and reading their resource use from procfs. Shared by
//! `ndefender-demo` and `ndefender-loadgen`.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A daemon binary: in `bin_dir` when given, else next to the running executable.
pub fn find_bin(bin_dir: Option<&Path>, name: &str) -> io::Result<PathBuf> {
    let p = match bin_dir {
        Some(d) => d.join(name),
        None => std::env::current_exe()?.with_file_name(name),
    };
    if !p.exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} not found; build the workspace first (cargo build --release)",
                p.display()
            ),
        ));
    }
    Ok(p)
}

/// Where [`free_port`] looks: below Linux's ephemeral range (32768–60999 by default).
const PORT_RANGE: std::ops::Range<u16> = 20000..32000;

/// A free TCP port on 127.0.0.1 (bound, read, released), for a daemon to bind next.
///
/// Not `bind(0)`: the kernel hands out ports from the ephemeral range, the same range every
/// outgoing connection (test clients, relays, uplinks) draws its local port from, so a port
/// released here could be taken by some client's connect before the daemon binds it (CI saw
/// exactly that). Ports below that range are never assigned implicitly. Each process starts
/// at its own offset (from its pid) and walks on, so parallel tests and parallel processes
/// do not pick the same port either.
pub fn free_port() -> io::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(PORT_RANGE.end - PORT_RANGE.start);
    // The first call seeds the walk; a race between two first calls only repeats a seed.
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        let seed = std::process::id().wrapping_mul(7919) % span;
        let _ = NEXT.compare_exchange(u32::MAX, seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let Ok(port) = u16::try_from(u32::from(PORT_RANGE.start) + offset) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    // Every port in the range is taken: fall back to the kernel's choice.
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How a daemon ended when it was stopped.
#[derive(Debug, Clone)]
pub enum StopOutcome {
    /// Exited within the grace period after SIGTERM.
    Exited { status: ExitStatus, after: Duration },
    /// Had already exited before it was asked to stop.
    AlreadyExited(ExitStatus),
    /// Did not exit within the grace period; killed.
    Killed,
    /// Its status could not be read.
    Unknown(String),
}

impl StopOutcome {
    /// Exited by itself after SIGTERM with status 0.
    pub fn clean(&self) -> bool {
        matches!(self, StopOutcome::Exited { status, .. } if status.success())
    }
}

impl std::fmt::Display for StopOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopOutcome::Exited { status, after } => {
                write!(f, "{status} {:.2} s after SIGTERM", after.as_secs_f64())
            }
            StopOutcome::AlreadyExited(s) => write!(f, "had already exited ({s})"),
            StopOutcome::Killed => f.write_str("did not stop within the grace period; killed"),
            StopOutcome::Unknown(e) => write!(f, "status unknown ({e})"),
        }
    }
}

/// A running daemon process. Dropped while still running (the launcher failed), it is
/// killed: in its own process group, nothing else would stop it.
#[derive(Debug)]
pub struct Daemon {
    pub name: &'static str,
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Daemon {
    /// Spawns `cmd` with stdin closed and `RUST_LOG` defaulting to `warn` (unless `cmd` or
    /// this process sets it), in its own
    /// process group: a Ctrl-C at the terminal reaches only the launcher, which then stops
    /// each daemon with one SIGTERM. (Getting the terminal's SIGINT as well, a daemon would
    /// take the launcher's SIGTERM as a second signal and exit without its graceful
    /// shutdown, PROTOCOL.md §7.9.)
    pub fn spawn(name: &'static str, mut cmd: Command) -> io::Result<Self> {
        use std::os::unix::process::CommandExt as _;
        let chosen = cmd.get_envs().any(|(k, _)| k == "RUST_LOG");
        if !chosen && std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let child = cmd.stdin(Stdio::null()).process_group(0).spawn()?;
        Ok(Self { name, child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `port` accepts connections (≤ 20 s), failing early if the process exits.
    pub async fn wait_port(&mut self, port: u16) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(());
            }
            if let Ok(Some(s)) = self.child.try_wait() {
                return Err(io::Error::other(format!(
                    "{} exited during startup ({s}); is port {port} free?",
                    self.name
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!("{} did not open port {port}", self.name)));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// None while running, else its exit status.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, then wait up to `grace` (SIGKILL after that). Blocking.
    pub fn stop(mut self, grace: Duration) -> StopOutcome {
        if let Ok(Some(s)) = self.child.try_wait() {
            return StopOutcome::AlreadyExited(s);
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let t0 = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    return StopOutcome::Exited {
                        status,
                        after: t0.elapsed(),
                    }
                }
                Ok(None) if t0.elapsed() < grace => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return StopOutcome::Killed;
                }
                Err(e) => return StopOutcome::Unknown(e.to_string()),
            }
        }
    }
}

/// How the simulated stack is wired (what `ndefender-demo` runs and the soak
/// loads): the scanner on its synthetic scene writes `rf_path`, the aggregator tails
/// it and `rid_path`, talks to the scanner and the controller on their ports, and
/// opens the ESP32 emulator through `esp32_link`.
#[derive(Debug, Clone)]
pub struct Wiring {
    /// Run directory (the aggregator's state goes below it).
    pub dir: PathBuf,
    pub aggregator_port: u16,
    pub controller_port: u16,
    pub antsdr_port: u16,
    pub rid_path: PathBuf,
    pub rf_path: PathBuf,
    pub esp32_link: PathBuf,
}

impl Wiring {
    /// Environment of `ndefender-antsdr-scan` on its synthetic scene, writing `rf_path`.
    pub fn scanner_env(&self) -> Vec<(String, String)> {
        vec![
            kv("NDEFENDER_API__BIND", format!("127.0.0.1:{}", self.antsdr_port)),
            kv("NDEFENDER_OUTPUT__JSONL_PATH", self.rf_path.display()),
            kv(
                "NDEFENDER_AUDIT__PATH",
                self.state_dir().join("antsdr-scan-audit.jsonl").display(),
            ),
        ]
    }

    /// Environment of `ndefender-system-controller` on this machine's procfs.
    pub fn controller_env(&self) -> Vec<(String, String)> {
        vec![
            kv("NDEFENDER_SERVER__BIND", format!("127.0.0.1:{}", self.controller_port)),
            kv(
                "NDEFENDER_AUDIT__PATH",
                self.state_dir().join("system-controller-audit.jsonl").display(),
            ),
        ]
    }

    /// Environment of `ndefender-aggregator` tailing both feeds from their beginning.
    pub fn aggregator_env(&self) -> Vec<(String, String)> {
        vec![
            kv("NDEFENDER_SERVER__BIND", format!("127.0.0.1:{}", self.aggregator_port)),
            kv("NDEFENDER_STATE__DIR", self.state_dir().display()),
            kv(
                "NDEFENDER_AUDIT__PATH",
                self.state_dir().join("aggregator-audit.jsonl").display(),
            ),
            kv("NDEFENDER_REMOTEID__JSONL_PATH", self.rid_path.display()),
            kv("NDEFENDER_ANTSDR__JSONL_PATH", self.rf_path.display()),
            kv(
                "NDEFENDER_ANTSDR__BASE_URL",
                format!("http://127.0.0.1:{}", self.antsdr_port),
            ),
            kv(
                "NDEFENDER_SYSTEM_CONTROLLER__BASE_URL",
                format!("http://127.0.0.1:{}", self.controller_port),
            ),
            kv("NDEFENDER_TAIL__START_POSITION", "beginning"),
            kv("NDEFENDER_ESP32__PORT", self.esp32_link.display()),
        ]
    }

    /// Where the aggregator keeps its tail checkpoints.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state/aggregator")
    }

    /// The scanner's command line (binary `bin`).
    pub fn scanner(&self, bin: &Path) -> Command {
        command(bin, self.scanner_env())
    }

    /// The system controller's command line.
    pub fn controller(&self, bin: &Path) -> Command {
        command(bin, self.controller_env())
    }

    /// The aggregator's command line.
    pub fn aggregator(&self, bin: &Path) -> Command {
        command(bin, self.aggregator_env())
    }

    /// Environment of `ndefender-remoteid` on `port` replaying `capture` in a loop (no live
    /// source), writing `rid_path`. The aggregator reaches it with [`Wiring::remoteid_base_url_env`].
    pub fn remoteid_engine_env(&self, port: u16, capture: &Path) -> Vec<(String, String)> {
        let dir = capture.parent().unwrap_or(Path::new("."));
        let name = capture
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        vec![
            kv("NDEFENDER_SERVER__BIND", format!("127.0.0.1:{port}")),
            kv("NDEFENDER_OUTPUT__JSONL_PATH", self.rid_path.display()),
            kv("NDEFENDER_MONITOR__SOURCE", "none"),
            kv("NDEFENDER_REPLAY__DIR", dir.display()),
            kv("NDEFENDER_REPLAY__FILE", name),
            kv("NDEFENDER_REPLAY__AUTOSTART", "true"),
            kv("NDEFENDER_REPLAY__LOOP", "true"),
        ]
    }

    /// The aggregator's `remoteid.base_url` for an engine on `port`.
    pub fn remoteid_base_url_env(port: u16) -> (String, String) {
        kv("NDEFENDER_REMOTEID__BASE_URL", format!("http://127.0.0.1:{port}"))
    }

    /// The RemoteID engine's command line (binary `bin`).
    pub fn remoteid_engine(&self, bin: &Path, port: u16, capture: &Path) -> Command {
        command(bin, self.remoteid_engine_env(port, capture))
    }
}

fn kv(k: &str, v: impl ToString) -> (String, String) {
    (k.to_owned(), v.to_string())
}

fn command(bin: &Path, env: Vec<(String, String)>) -> Command {
    let mut cmd = Command::new(bin);
    cmd.envs(env);
    cmd
}

/// Waits until the aggregator at `base` reports its ESP32 link connected.
pub async fn wait_esp32_connected(client: &crate::http::Client, base: &str, within: Duration) -> io::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let s = client
            .get_json(&format!("{base}/api/v1/esp32"))
            .await
            .unwrap_or_default();
        if s["connected"] == serde_json::Value::Bool(true) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "the ESP32 link did not come up within {} s",
                within.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Resource use of a process, from procfs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcUsage {
    /// VmRSS in KiB.
    pub rss_kib: u64,
    /// utime + stime in clock ticks.
    pub cpu_ticks: u64,
    /// Entries of /proc/<pid>/fd.
    pub fds: u64,
}

/// Clock ticks per second (sysconf(_SC_CLK_TCK) is 100 on every Linux this targets).
pub const TICKS_PER_S: f64 = 100.0;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// RSS, CPU ticks and open descriptors of `pid`.
pub fn proc_usage(pid: u32) -> io::Result<ProcUsage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("no VmRSS"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, a)| a).ok_or_else(|| bad("bad stat"))?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ut: u64 = f.get(11).and_then(|v| v.parse().ok()).ok_or_else(|| bad("utime"))?;
    let st: u64 = f.get(12).and_then(|v| v.parse().ok()).ok_or_else(|| bad("stime"))?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    Ok(ProcUsage {
        rss_kib,
        cpu_ticks: ut + st,
        fds,
    })
}

/// The `p`-th percentile (0–100) of sorted samples, nearest rank; NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 51.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn daemons_get_their_own_process_group_and_die_with_their_handle() -> io::Result<()> {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let d = Daemon::spawn("sleep", cmd)?;
        let pid = nix::unistd::Pid::from_raw(d.pid() as i32);
        let pgid = nix::unistd::getpgid(Some(pid)).map_err(io::Error::from)?;
        assert_eq!(pgid, pid, "a terminal's SIGINT to our group must not reach it");
        assert_ne!(nix::unistd::getpgid(None).map_err(io::Error::from)?, pgid);
        drop(d);
        // Killed and reaped: the pid no longer exists.
        assert!(nix::sys::signal::kill(pid, None).is_err());
        Ok(())
    }

    #[test]
    fn own_usage_is_readable() -> io::Result<()> {
        let u = proc_usage(std::process::id())?;
        assert!(u.rss_kib > 0);
        assert!(u.fds >= 3);
        Ok(())
    }
}
