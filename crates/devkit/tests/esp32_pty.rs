//! The emulator on a real pty: a host opens the link as a tty, reads CRLF
//! telemetry, sends commands and gets acks; unplug/replug; the control socket; the
//! binary. Timeouts are generous and nothing asserts speed.

use ndefender_devkit::esp32::{start_emulator, Knobs, SimConfig, SimHandle};
use nix::fcntl::OFlag;
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

type R = Result<(), Box<dyn std::error::Error>>;

const T: Duration = Duration::from_secs(10);

fn open_tty(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(OFlag::O_NOCTTY.bits())
        .open(path)
}

/// A host: a reader thread splitting the tty's bytes into `\n`-terminated lines.
struct Host {
    writer: File,
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
}

impl Host {
    fn open(path: &Path) -> io::Result<Self> {
        let f = open_tty(path)?;
        let mut reader = f.try_clone()?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut line = Vec::new();
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => {
                        let _ = tx.send(Err(io::Error::from(io::ErrorKind::UnexpectedEof)));
                        return;
                    }
                    Ok(n) => {
                        for &b in &buf[..n] {
                            line.push(b);
                            if b == b'\n' && tx.send(Ok(std::mem::take(&mut line))).is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        Ok(Self { writer: f, rx })
    }

    /// Sends GET_STATUS with `id` and waits for its ack.
    fn get_status(&mut self, id: &str) -> io::Result<()> {
        self.send(&format!("{{\"id\":\"{id}\",\"cmd\":\"GET_STATUS\",\"args\":{{}}}}\n"))?;
        self.wait_for("ack", ack_with_id(id)).map(drop)
    }

    fn send(&mut self, line: &str) -> io::Result<()> {
        self.writer.write_all(line.as_bytes())?;
        self.writer.flush()
    }

    /// The next line matching `pred` (lines include their terminator).
    fn wait_for(&self, what: &str, pred: impl Fn(&[u8]) -> bool) -> io::Result<Vec<u8>> {
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Ok(l)) if pred(&l) => return Ok(l),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, format!("no {what}"))),
            }
        }
    }

    /// Waits until the reader sees EOF or an error (after an unplug).
    fn wait_closed(&self) -> io::Result<()> {
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Ok(()),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "port still open"))
                }
            }
        }
    }
}

fn is_telemetry(l: &[u8]) -> bool {
    l.starts_with(b"{\"type\":\"telemetry\"")
}

fn ack_with_id(id: &str) -> impl Fn(&[u8]) -> bool {
    let needle = format!("\"id\":\"{id}\"");
    move |l: &[u8]| l.starts_with(b"{\"type\":\"command_ack\"") && String::from_utf8_lossy(l).contains(&needle)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}

/// The emulator with `knobs` and the test config.
async fn emulator(dir: &Path, knobs: Knobs) -> io::Result<SimHandle> {
    start_emulator(SimConfig { knobs, ..cfg(dir) }).await
}

fn cfg(dir: &Path) -> SimConfig {
    SimConfig {
        link: Some(dir.join("ttyESP32")),
        ..SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_and_command_over_the_pty() -> R {
    let dir = tempfile::tempdir()?;
    let sim = start_emulator(cfg(dir.path())).await?;
    let link = sim.path();
    assert_eq!(std::fs::read_link(&link)?, sim.device_path().ok_or("no device")?);
    let (boot, tel, ack) = blocking(move || {
        let mut host = Host::open(&link)?;
        // The first open sees the boot noise, then telemetry.
        let boot = host.wait_for("boot noise", |l| l.starts_with(b"ESP-ROM:"))?;
        let tel = host.wait_for("telemetry", is_telemetry)?;
        host.send("{\"id\":\"t1\",\"cmd\":\"SET_VRX_FREQ\",\"args\":{\"vrx_id\":1,\"freq_hz\":5745000000}}\n")?;
        let ack = host.wait_for("ack", ack_with_id("t1"))?;
        Ok((boot, tel, ack))
    })
    .await?;
    assert!(boot.ends_with(b"\r\n"));
    assert!(tel.ends_with(b"}\r\n"), "CRLF telemetry: {tel:?}");
    let v: Value = serde_json::from_slice(&tel)?;
    assert_eq!(v["sel"], 1);
    assert_eq!(v["vrx"].as_array().map(Vec::len), Some(3));
    let text = String::from_utf8(ack)?;
    assert!(
        text.starts_with("{\"type\":\"command_ack\",\"timestamp_ms\":"),
        "{text}"
    );
    assert!(
        text.ends_with(",\"id\":\"t1\",\"ok\":true,\"err\":null,\"data\":{\"cmd\":\"SET_VRX_FREQ\"}}\r\n"),
        "{text}"
    );
    let got = sim
        .wait_for_command(|c| c.cmd.as_deref() == Some("SET_VRX_FREQ"), T)
        .await
        .ok_or("emulator did not record the command")?;
    assert_eq!(got.args, Some(json!({"vrx_id": 1, "freq_hz": 5745000000u64})));
    assert_eq!(got.id, "t1");
    let stats = sim.stats().await?;
    assert_eq!(stats.firmware.commands.get("SET_VRX_FREQ"), Some(&1));
    sim.shutdown().await?;
    assert!(
        std::fs::symlink_metadata(dir.path().join("ttyESP32")).is_err(),
        "link removed"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_can_close_and_reopen() -> R {
    let dir = tempfile::tempdir()?;
    let sim = emulator(dir.path(), Knobs::quiet()).await?;
    let link = sim.path();
    blocking(move || {
        let host = Host::open(&link)?;
        host.wait_for("telemetry", is_telemetry)?;
        drop(host);
        std::thread::sleep(Duration::from_millis(200));
        let mut host = Host::open(&link)?;
        host.wait_for("telemetry after reopen", is_telemetry)?;
        host.get_status("r")?;
        Ok(())
    })
    .await?;
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplug_gives_eof_and_replug_gives_a_new_device() -> R {
    let dir = tempfile::tempdir()?;
    let sim = emulator(
        dir.path(),
        Knobs {
            boot_noise: true,
            ..Knobs::quiet()
        },
    )
    .await?;
    let link: PathBuf = sim.path();
    let l2 = link.clone();
    let host = blocking(move || {
        let host = Host::open(&l2)?;
        host.wait_for("telemetry", is_telemetry)?;
        Ok(host)
    })
    .await?;
    sim.unplug().await?;
    let host = blocking(move || host.wait_closed().map(|()| host)).await?;
    drop(host);
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "link removed while unplugged"
    );
    assert_eq!(sim.device_path(), None);

    let new_dev = sim.replug().await?;
    assert_eq!(std::fs::read_link(&link)?, new_dev);
    let l2 = link.clone();
    blocking(move || {
        let mut host = Host::open(&l2)?;
        // The board booted again: ROM text, then telemetry from uptime ~1000.
        host.wait_for("boot noise", |l| l.starts_with(b"rst:0x15"))?;
        let t = host.wait_for("telemetry", is_telemetry)?;
        let v: Value = serde_json::from_slice(&t).map_err(io::Error::other)?;
        if v["timestamp_ms"].as_u64().is_none_or(|u| u > 5000) {
            return Err(io::Error::other(format!("uptime did not restart: {v}")));
        }
        host.get_status("after")?;
        Ok(())
    })
    .await?;
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_reconnects_by_itself() -> R {
    let dir = tempfile::tempdir()?;
    let sim = emulator(
        dir.path(),
        Knobs {
            reconnect_after_ms: 300,
            ..Knobs::quiet()
        },
    )
    .await?;
    let link = sim.path();
    let l2 = link.clone();
    let host = blocking(move || {
        let host = Host::open(&l2)?;
        host.wait_for("telemetry", is_telemetry)?;
        Ok(host)
    })
    .await?;
    sim.disconnect().await?;
    blocking(move || host.wait_closed()).await?;
    let l2 = link.clone();
    blocking(move || {
        let deadline = Instant::now() + T;
        while std::fs::metadata(&l2).is_err() {
            if Instant::now() > deadline {
                return Err(io::Error::other("link did not come back"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let host = Host::open(&l2)?;
        host.wait_for("telemetry", is_telemetry)?;
        Ok(())
    })
    .await?;
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_ack_then_retry_with_same_id() -> R {
    let dir = tempfile::tempdir()?;
    let sim = emulator(dir.path(), Knobs::quiet()).await?;
    sim.drop_next_acks(1).await?;
    let link = sim.path();
    blocking(move || {
        let mut host = Host::open(&link)?;
        host.wait_for("telemetry", is_telemetry)?;
        let line = "{\"id\":\"same\",\"cmd\":\"VIDEO_SELECT\",\"args\":{\"ch\":2}}\n";
        host.send(line)?;
        // The first ack is dropped: the next line with that id answers the retry.
        host.wait_for("telemetry", is_telemetry)?;
        host.send(line)?;
        host.wait_for("ack of the retry", ack_with_id("same"))?;
        let t = host.wait_for("telemetry", is_telemetry)?;
        let v: Value = serde_json::from_slice(&t).map_err(io::Error::other)?;
        if v["video"]["selected"] != 2 {
            return Err(io::Error::other(format!("video not switched: {v}")));
        }
        Ok(())
    })
    .await?;
    let stats = sim.stats().await?;
    assert_eq!(stats.device.acks_dropped, 1);
    assert_eq!(stats.firmware.commands.get("VIDEO_SELECT"), Some(&2));
    sim.shutdown().await?;
    Ok(())
}

fn control_call(sock: &Path, req: &str) -> io::Result<Value> {
    let mut s = std::os::unix::net::UnixStream::connect(sock)?;
    s.set_read_timeout(Some(T))?;
    s.write_all(req.as_bytes())?;
    s.write_all(b"\n")?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(io::Error::other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_socket() -> R {
    let dir = tempfile::tempdir()?;
    let sock = dir.path().join("ctl.sock");
    let sim = start_emulator(SimConfig {
        knobs: Knobs::quiet(),
        control: Some(sock.clone()),
        ..cfg(dir.path())
    })
    .await?;
    let s2 = sock.clone();
    let replies = blocking(move || {
        Ok(vec![
            control_call(&s2, r#"{"set":{"drop_ack_prob":0.5,"ack_delay_ms":2500}}"#)?,
            control_call(&s2, r#"{"set":{"scene":[{"freq_hz":5740000000}]}}"#)?,
            control_call(&s2, r#"{"fault":"stall_telemetry_ms","value":100}"#)?,
            control_call(&s2, r#"{"fault":"reset"}"#)?,
            control_call(&s2, r#"{"get":"stats"}"#)?,
            control_call(&s2, r#"{"set":{"drop_ack_prob":7}}"#)?,
            control_call(&s2, r#"{"nope":1}"#)?,
            control_call(&s2, r#"{"get":"knobs"}"#)?,
        ])
    })
    .await?;
    for r in &replies[..5] {
        assert_eq!(r["ok"], true, "{r}");
    }
    let stats = &replies[4]["stats"];
    for key in [
        "lines_received",
        "acks_sent",
        "rx_errors",
        "rx_overflow",
        "commands",
        "mode",
        "best_rssi",
    ] {
        assert!(stats.get(key).is_some(), "stats lack {key}: {stats}");
    }
    assert_eq!(stats["resets"], 1);
    assert_eq!(stats["mode"], "IDLE");
    assert_eq!(replies[5]["ok"], false);
    assert_eq!(replies[6]["ok"], false);
    assert_eq!(replies[7]["knobs"]["ack_delay_ms"], 2500);
    let k = sim.knobs().await?;
    assert_eq!(k.drop_ack_prob, 0.5);
    assert_eq!(sim.scene().await?.transmitters[0].freq_hz, 5_740_000_000);
    sim.shutdown().await?;
    assert!(!sock.exists(), "socket removed");
    Ok(())
}

#[test]
fn binary_prints_the_path_and_exits_0_on_sigterm() -> R {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let dir = tempfile::tempdir()?;
    let link = dir.path().join("esp32");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ndefender-esp32-sim"))
        .arg("--link")
        .arg(&link)
        .args([
            "--seed",
            "3",
            "--fault",
            "boot_noise=off",
            "--fault",
            "telemetry_jitter_ms=0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first)?;
    let dev = PathBuf::from(first.trim());
    assert!(dev.starts_with("/dev/pts"), "{first:?}");
    assert_eq!(std::fs::read_link(&link)?, dev);
    let host = Host::open(&link)?;
    let t = host.wait_for("telemetry", is_telemetry)?;
    assert!(t.ends_with(b"\r\n"));
    kill(Pid::from_raw(i32::try_from(child.id())?), Signal::SIGTERM)?;
    let status = child.wait()?;
    assert!(status.success(), "{status:?}");
    assert!(std::fs::symlink_metadata(&link).is_err(), "link removed on exit");
    host.wait_closed()?;

    // A bad knob is a usage error.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ndefender-esp32-sim"))
        .arg("--link")
        .arg(&link)
        .args(["--fault", "no_such_knob=1"])
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn runs_on_paused_tokio_time() -> R {
    let sim = start_emulator(SimConfig {
        knobs: Knobs::quiet(),
        ..SimConfig::default()
    })
    .await?;
    assert!(sim.link_path().is_none());
    assert!(sim.path().starts_with("/dev/pts"));
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    let s = sim.stats().await?;
    assert_eq!(s.firmware.telemetry, 10, "one telemetry per 1000 ms of tokio time");
    sim.stall_telemetry(Duration::from_secs(3)).await?;
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert_eq!(sim.stats().await?.firmware.telemetry, 10, "stalled");
    sim.shutdown().await?;
    Ok(())
}
