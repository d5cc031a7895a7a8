//! `ndefender-demo` for a newcomer (issue 14): a taken port stops it at once with exit
//! 1 naming the port, and SIGTERM at any moment (even during start-up) leaves no
//! daemon behind.

use ndefender_tests::{bin, free_port, R};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Demo {
    child: Child,
    ports: [u16; 3],
    dir: tempfile::TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Never leave a daemon behind, whatever the test found.
        for pid in processes_using(self.dir.path()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn demo(ports: [u16; 3]) -> R<Demo> {
    demo_with(ports, &[])
}

/// The demo on these ports with `extra` flags, its output piped.
fn demo_with(ports: [u16; 3], extra: &[&std::ffi::OsStr]) -> R<Demo> {
    let dir = tempfile::tempdir()?;
    let child = Command::new(bin("ndefender-demo")?)
        .args(["--aggregator-port", &ports[0].to_string()])
        .args(["--controller-port", &ports[1].to_string()])
        .args(["--antsdr-port", &ports[2].to_string()])
        .args(extra)
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    Ok(Demo { child, ports, dir })
}

/// Processes whose environment names `dir` (every daemon the demo starts gets its
/// paths below its run directory).
fn processes_using(dir: &Path) -> Vec<i32> {
    let needle = dir.display().to_string();
    let me = std::process::id() as i32;
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| String::from_utf8_lossy(&env).contains(&needle))
        })
        .collect()
}

/// Live children of `parent` (from /proc/<pid>/stat's ppid).
fn children_of(parent: u32) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
                let f: Vec<&str> = st
                    .rsplit_once(')')
                    .map(|(_, a)| a)
                    .unwrap_or("")
                    .split_whitespace()
                    .collect();
                f.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) && f.first() != Some(&"Z")
            })
        })
        .collect()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
        let state = st.rsplit_once(')').map(|(_, a)| a.trim_start()).unwrap_or("");
        !state.starts_with('Z')
    })
}

fn wait_exit(c: &mut Child, within: Duration) -> R<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = c.try_wait()? {
            return Ok(s);
        }
        if Instant::now() > deadline {
            return Err(format!("ndefender-demo still running after {within:?}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn output(c: &mut Child) -> (String, String) {
    use std::io::Read as _;
    let mut out = String::new();
    let mut err = String::new();
    if let Some(o) = c.stdout.as_mut() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(e) = c.stderr.as_mut() {
        let _ = e.read_to_string(&mut err);
    }
    (out, err)
}

#[test]
fn a_taken_port_stops_the_demo_at_once_naming_it() -> R {
    for taken in 0..3 {
        // The holder is bound before anything else can take its port.
        let holder = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let mut ports = [free_port()?, free_port()?, free_port()?];
        ports[taken] = holder.local_addr()?.port();
        let mut d = demo(ports)?;
        let t0 = Instant::now();
        let status = wait_exit(&mut d.child, Duration::from_secs(10))?;
        let (out, err) = output(&mut d.child);
        assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
        assert!(
            err.contains(&format!("port {}", ports[taken])),
            "the error names the port: {err}"
        );
        assert!(t0.elapsed() < Duration::from_secs(5), "took {:?}", t0.elapsed());
        assert!(!out.contains("demo running"), "{out}");
        assert!(processes_using(d.dir.path()).is_empty(), "a daemon was left running");
    }
    Ok(())
}

#[test]
fn sigterm_at_any_moment_stops_every_daemon_it_started() -> R {
    // During start-up (before, between and after the daemons come up) and once running.
    for after_ms in [50u64, 300, 800, 1500, 3000, 8000] {
        let mut d = demo([free_port()?, free_port()?, free_port()?])?;
        std::thread::sleep(Duration::from_millis(after_ms));
        // Something was started by then (after the first moments): the check below is
        // only meaningful if daemons existed.
        let children = children_of(d.child.id());
        let before = children.len();
        kill(Pid::from_raw(d.child.id() as i32), Signal::SIGTERM)?;
        let status = wait_exit(&mut d.child, Duration::from_secs(20))?;
        let (out, err) = output(&mut d.child);
        // Its children are reaped before it exits: nothing may remain.
        let mut left = processes_using(d.dir.path());
        left.extend(children.iter().copied().filter(|&p| alive(p)));
        assert!(
            left.is_empty(),
            "SIGTERM after {after_ms} ms ({before} running then) left {left:?}\nstdout:\n{out}\nstderr:\n{err}"
        );
        for p in d.ports {
            assert!(
                std::net::TcpListener::bind(("127.0.0.1", p)).is_ok(),
                "port {p} still taken after SIGTERM at {after_ms} ms"
            );
        }
        if after_ms >= 8000 {
            assert!(before >= 3, "the stack was up: {before} processes");
            assert!(out.contains("demo running"), "{out}\n{err}");
            assert!(status.success(), "{status:?}\n{err}");
        }
        // (A SIGTERM in the first milliseconds may land before anything is printed.)
        let first = out.lines().next().unwrap_or("");
        assert!(
            out.is_empty() || first.contains(&format!("http://127.0.0.1:{}/", d.ports[0])),
            "the dashboard URL comes first: {out}"
        );
    }
    Ok(())
}

/// `ndefender-demo --remoteid capture` (issue 16's "done when"): the drone of the real Wi-Fi
/// beacon capture, decoded by the engine the demo starts, reaches the aggregator's
/// `/api/v1/ws` with the capture's serial, operator id and position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_a_drone_decoded_from_a_real_capture() -> R {
    let ports = [free_port()?, free_port()?, free_port()?];
    let rid_port = free_port()?;
    let capture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/remoteid-samples/odid_wifi_bcn_sample.pcap")
        .canonicalize()?;
    let rid_port = rid_port.to_string();
    let mut d = demo_with(
        ports,
        &[
            "--remoteid".as_ref(),
            "capture".as_ref(),
            "--remoteid-port".as_ref(),
            rid_port.as_ref(),
            "--remoteid-capture".as_ref(),
            capture.as_os_str(),
        ],
    )?;
    // Nobody reads the demo's output here: drain it so a full pipe can never stall it.
    for out in [
        d.child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        d.child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let mut out = out;
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    }
    let url = format!("ws://127.0.0.1:{}/api/v1/ws", d.ports[0]);
    // The aggregator comes up last; retry the connection until it does.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut ws = loop {
        match ndefender_tests::Ws::connect(&url).await {
            Ok(ws) => break ws,
            Err(e) if Instant::now() > deadline => return Err(format!("{url}: {e}").into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    let v = ws
        .wait_for(Duration::from_secs(60), |v| {
            matches!(v["type"].as_str(), Some("CONTACT_NEW" | "CONTACT_UPDATE"))
                && v["data"]["id"] == "rid:MFG1A0123456789"
                && v["data"]["lat"].is_number()
        })
        .await?;
    let data = &v["data"];
    assert_eq!(data["operator_id"], "GBR-OP-123ABCD", "{v}");
    assert_eq!(data["transport"], "wifi_beacon", "{v}");
    let lat = data["lat"].as_f64().ok_or("lat")?;
    assert!((lat - 45.5468).abs() < 0.01, "{lat}");
    // The engine the demo started answers on its own port too.
    let (s, _) = ndefender_tests::get_json(&format!("http://127.0.0.1:{rid_port}/api/v1/health")).await?;
    assert_eq!(s, 200);
    drop(d);
    Ok(())
}
