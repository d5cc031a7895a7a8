//! Debian's `mosquitto` as a child process on a loopback port with a generated config
//! (issue 15): the broker of the uplink/fleet tests, the fleet benchmark and
//! `ndefender-demo --fleet`. No persistence, so a restart forgets retained state and
//! what a client republishes is all there is.

use crate::stack::Daemon;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The broker binary, if installed (`/usr/sbin` is not on every user's PATH).
pub fn find() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/sbin".into());
    dirs.into_iter().map(|d| d.join("mosquitto")).find(|p| p.is_file())
}

pub struct Broker {
    pub port: u16,
    bin: PathBuf,
    conf: PathBuf,
    log: PathBuf,
    daemon: Option<Daemon>,
}

impl Broker {
    /// Writes `<dir>/mosquitto.conf` and starts the broker on `127.0.0.1:port`.
    pub async fn start(dir: &Path, port: u16) -> io::Result<Broker> {
        let bin = find().ok_or_else(|| io::Error::other("mosquitto is not installed (scripts/deps.sh installs it)"))?;
        let conf = dir.join("mosquitto.conf");
        // Queues sized for the fleet benchmark's bursts (default 1000 per client).
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 1000000\nmax_inflight_messages 1000\nset_tcp_nodelay true\n\
                 log_dest stderr\nlog_type error\nlog_type warning\n"
            ),
        )?;
        let mut b = Broker {
            port,
            bin,
            conf,
            log: dir.join("mosquitto.log"),
            daemon: None,
        };
        b.restart().await?;
        Ok(b)
    }

    /// Starts it again (after [`kill`](Self::kill)) on the same port.
    pub async fn restart(&mut self) -> io::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-c").arg(&self.conf).stdout(Stdio::null()).stderr(log);
        let mut d = Daemon::spawn("mosquitto", cmd)?;
        d.wait_port(self.port).await?;
        self.daemon = Some(d);
        Ok(())
    }

    /// SIGKILL: the broker vanishes without a goodbye (clients see their link break).
    pub fn kill(&mut self) {
        self.daemon = None; // Daemon's drop kills and reaps
    }

    pub fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(|d| d.pid())
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}
