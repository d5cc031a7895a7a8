//! `ndefender-demo`: the stack on simulated inputs, no hardware needed.
//!
//! Starts the aggregator (the binary next to this one) on a private run
//! directory, feeds it from the RemoteID simulator (drones flying tracks),
//! prints the URLs and a live summary, and stops everything cleanly on Ctrl-C.

use clap::Parser;
use futures_util::StreamExt;
use ndefender_devkit::esp32::sim::{Esp32Sim, SimConfig, SimHandle};
use ndefender_devkit::remoteid::{run_remoteid_sim, RemoteIdSimConfig};
use ndefender_devkit::stack::{find_bin, Daemon, Wiring};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(name = "ndefender-demo", about = "Run the N-Defender stack on simulated inputs")]
struct Args {
    /// Run directory for feeds and state (default: a new one under the temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Aggregator port.
    #[arg(long, default_value_t = 8001)]
    aggregator_port: u16,
    /// System controller port.
    #[arg(long, default_value_t = 8002)]
    controller_port: u16,
    /// AntSDR scanner port.
    #[arg(long, default_value_t = 8890)]
    antsdr_port: u16,
    /// Simulated RemoteID drones.
    #[arg(long, default_value_t = 4)]
    drones: usize,
    /// Simulator seed (same seed, same flights).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Stop after this many seconds (0 = until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// Also run N simulated kits with the MQTT uplink, a mosquitto and ndefender-fleet (issue 15).
    #[arg(long, default_value_t = 0)]
    fleet: usize,
    /// Fleet daemon port (with --fleet).
    #[arg(long, default_value_t = 8003)]
    fleet_port: u16,
    /// mosquitto port (with --fleet).
    #[arg(long, default_value_t = 1883)]
    mqtt_port: u16,
    /// RemoteID input: `sim` (the JSONL simulator) or `capture` (the ndefender-remoteid engine
    /// replaying a real Open Drone ID capture in a loop).
    #[arg(long, default_value = "sim", value_parser = ["sim", "capture"])]
    remoteid: String,
    /// RemoteID engine port (`--remoteid capture`).
    #[arg(long, default_value_t = 9001)]
    remoteid_port: u16,
    /// Capture the engine replays (`--remoteid capture`).
    #[arg(long, default_value = "../shared/remoteid-samples/odid_wifi_bcn_sample.pcap")]
    remoteid_capture: PathBuf,
}

type R<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn sibling(name: &str) -> R<PathBuf> {
    Ok(find_bin(None, name)?)
}

/// SIGTERM, then wait up to 5 s (SIGKILL after that), and say how it ended.
fn stop(d: Daemon) {
    let name = d.name;
    eprintln!("  {name}: {}", d.stop(Duration::from_secs(5)));
}

fn main() {
    ndefender_devkit::tool::block_on("ndefender-demo", 2, run(Args::parse()));
}

/// Everything the demo started, stopped together whenever the demo ends: after
/// Ctrl-C, on SIGTERM (even half-way through start-up) or on a start-up error.
#[derive(Default)]
struct Started {
    daemons: Vec<Daemon>,
    esp32: Option<SimHandle>,
}

impl Started {
    async fn stop(self) {
        let daemons = self.daemons;
        // Reverse start order: the aggregator before the daemons it follows.
        let _ = tokio::task::spawn_blocking(move || daemons.into_iter().rev().for_each(stop)).await;
        if let Some(e) = self.esp32 {
            if e.shutdown().await.is_ok() {
                eprintln!("  ESP32 emulator stopped");
            }
        }
    }
}

/// Ctrl-C or SIGTERM, whichever comes first.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// The three ports, each free, or an error naming the first that is taken (a daemon on
/// a taken port would exit, and the demo would show another process's data).
fn check_ports(args: &Args) -> R {
    let mut ports = vec![
        (args.aggregator_port, "aggregator (--aggregator-port)"),
        (args.controller_port, "system controller (--controller-port)"),
        (args.antsdr_port, "AntSDR scanner (--antsdr-port)"),
    ];
    if args.remoteid == "capture" {
        ports.push((args.remoteid_port, "RemoteID engine (--remoteid-port)"));
    }
    if args.fleet > 0 {
        ports.push((args.fleet_port, "fleet daemon (--fleet-port)"));
        ports.push((args.mqtt_port, "mosquitto (--mqtt-port)"));
    }
    for (port, who) in ports {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return Err(
                format!("port {port} for the {who} is not free ({e}); stop what uses it or pick another port").into(),
            );
        }
    }
    Ok(())
}

async fn run(args: Args) -> R {
    // First, so a signal at any later moment stops what was started.
    let mut signals = Signals::install()?;
    check_ports(&args)?;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("ndefender-demo-{}", std::process::id())),
    };
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let wiring = Wiring {
        dir: dir.clone(),
        aggregator_port: args.aggregator_port,
        controller_port: args.controller_port,
        antsdr_port: args.antsdr_port,
        rid_path: logs.join("remoteid_engine.jsonl"),
        rf_path: logs.join("antsdr_scan.jsonl"),
        // The ESP32 panel's emulator is reached through a symlink, exactly as the udev
        // rule provides /dev/ndefender-esp32 on the kit.
        esp32_link: dir.join("ndefender-esp32"),
    };
    println!(
        "N-Defender dashboard: http://127.0.0.1:{}/   (starting the stack…)",
        args.aggregator_port
    );

    let mut started = Started::default();
    let up = tokio::select! {
        r = start_stack(&args, &wiring, &mut started) => r,
        _ = signals.recv() => Err("stopped during start-up".into()),
    };
    if let Err(e) = up {
        eprintln!("stopping…");
        started.stop().await;
        return Err(e);
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sim_cfg = RemoteIdSimConfig {
        path: wiring.rid_path.clone(),
        drones: args.drones,
        seed: args.seed,
        // The engine writes the feed in capture mode; the simulator stays silent.
        quiet: args.remoteid == "capture",
        ..RemoteIdSimConfig::default()
    };
    let mut sim_stop = stop_rx.clone();
    let sim = tokio::spawn(async move {
        run_remoteid_sim(sim_cfg, async move {
            let _ = sim_stop.wait_for(|v| *v).await;
        })
        .await
    });

    let fleet = if args.fleet > 0 {
        let f = ndefender_devkit::fleet::FleetDemo::start(
            &dir,
            args.fleet,
            args.drones,
            args.seed,
            args.fleet_port,
            args.mqtt_port,
        )
        .await?;
        Some(f)
    } else {
        None
    };
    banner(&args, &wiring, started.esp32.as_ref());
    if let Some(f) = &fleet {
        f.print();
    }
    let summary = tokio::spawn(live_summary(args.aggregator_port, stop_rx.clone()));
    let limit = async {
        if args.seconds == 0 {
            std::future::pending::<()>().await
        } else {
            tokio::time::sleep(Duration::from_secs(args.seconds)).await
        }
    };
    tokio::select! {
        _ = signals.recv() => {}
        _ = limit => {}
    }
    println!("\nstopping…");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), sim).await;
    summary.abort();
    if let Some(f) = fleet {
        f.stop().await;
    }
    started.stop().await;
    Ok(())
}

/// Starts the emulator and the three daemons, each recorded in `started` as soon as
/// it exists, and returns once every daemon answers its health route.
async fn start_stack(args: &Args, wiring: &Wiring, started: &mut Started) -> R {
    started.esp32 = Some(
        Esp32Sim::spawn(SimConfig {
            link: Some(wiring.esp32_link.clone()),
            seed: args.seed,
            ..SimConfig::default()
        })
        .await?,
    );
    // The RF scanner on its synthetic scene, through the real DSP, writing the JSONL the
    // aggregator tails; the board itself (real procfs; D-Bus sections degrade without a
    // system bus, GPS without gpsd); then the aggregator following both.
    let plan = [
        (
            "ndefender-antsdr-scan",
            wiring.scanner(&sibling("ndefender-antsdr-scan")?),
            args.antsdr_port,
        ),
        (
            "ndefender-system-controller",
            wiring.controller(&sibling("ndefender-system-controller")?),
            args.controller_port,
        ),
    ];
    for (name, cmd, port) in plan {
        started.daemons.push(Daemon::spawn(name, cmd)?);
        if let Some(d) = started.daemons.last_mut() {
            d.wait_port(port).await?;
        }
    }
    // `--remoteid capture`: the RemoteID engine decodes a real capture (in a loop) into the
    // feed, and the aggregator's remote_id relays reach it.
    let mut aggregator = wiring.aggregator(&sibling("ndefender-aggregator")?);
    if args.remoteid == "capture" {
        let capture = std::fs::canonicalize(&args.remoteid_capture)
            .map_err(|e| format!("{}: {e}", args.remoteid_capture.display()))?;
        let cmd = wiring.remoteid_engine(&sibling("ndefender-remoteid")?, args.remoteid_port, &capture);
        started.daemons.push(Daemon::spawn("ndefender-remoteid", cmd)?);
        if let Some(d) = started.daemons.last_mut() {
            d.wait_port(args.remoteid_port).await?;
        }
        let (k, v) = Wiring::remoteid_base_url_env(args.remoteid_port);
        aggregator.env(k, v);
    }
    for (name, cmd, port) in [("ndefender-aggregator", aggregator, args.aggregator_port)] {
        started.daemons.push(Daemon::spawn(name, cmd)?);
        if let Some(d) = started.daemons.last_mut() {
            d.wait_port(port).await?;
        }
    }
    let client = ndefender_devkit::http::Client::with_timeout(Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(20);
    for port in [args.antsdr_port, args.controller_port, args.aggregator_port] {
        let url = format!("http://127.0.0.1:{port}/api/v1/health");
        loop {
            if matches!(client.request("GET", &url, "").await, Ok((200, _))) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("the daemon on port {port} does not answer {url}").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

fn banner(args: &Args, w: &Wiring, esp32: Option<&SimHandle>) {
    let port = args.aggregator_port;
    println!("N-Defender demo running (simulated inputs; Ctrl-C stops everything)");
    println!("  dashboard         http://127.0.0.1:{port}/");
    println!("  run directory     {}", w.dir.display());
    println!("  aggregator REST   http://127.0.0.1:{port}/api/v1/status");
    println!("  aggregator WS     ws://127.0.0.1:{port}/api/v1/ws");
    println!("  RemoteID feed     {}", w.rid_path.display());
    if args.remoteid == "capture" {
        println!(
            "  RemoteID engine   http://127.0.0.1:{}/api/v1/status  (replaying {} in a loop)",
            args.remoteid_port,
            args.remoteid_capture.display()
        );
    }
    println!(
        "  ESP32 emulator    {} -> {}",
        w.esp32_link.display(),
        esp32.and_then(|e| e.device_path()).unwrap_or_default().display()
    );
    println!(
        "  AntSDR scanner    http://127.0.0.1:{}/api/v1/sweep/state  ws://127.0.0.1:{}/api/v1/events  (synthetic scene)",
        args.antsdr_port, args.antsdr_port
    );
    println!("  RF feed           {}", w.rf_path.display());
    println!(
        "  system controller http://127.0.0.1:{}/api/v1/status  ws://127.0.0.1:{}/api/v1/ws",
        args.controller_port, args.controller_port
    );
    println!();
}

/// One line every few seconds from the aggregator's own stream.
async fn live_summary(port: u16, mut stop: tokio::sync::watch::Receiver<bool>) {
    let url = format!("ws://127.0.0.1:{port}/api/v1/ws");
    loop {
        if *stop.borrow() {
            return;
        }
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&url).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let mut events: u64 = 0;
        let mut last_print = Instant::now();
        loop {
            let msg = tokio::select! {
                m = ws.next() => m,
                _ = stop.changed() => return,
            };
            let t = match msg {
                Some(Ok(Message::Text(t))) => t,
                // Pings are answered by the library; only a close or an error ends the stream.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => continue,
            };
            events += 1;
            let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) else {
                continue;
            };
            if v["type"] == "SYSTEM_UPDATE" && last_print.elapsed() >= Duration::from_secs(3) {
                let d = &v["data"];
                let contacts = d["contacts"].as_array().cloned().unwrap_or_default();
                let count = |k: &str| contacts.iter().filter(|c| c["type"] == k).count();
                let rssi: Vec<String> = d["vrx"]["vrx"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|v| format!("{}MHz:{}", v["freq_hz"].as_f64().unwrap_or(0.0) / 1e6, v["rssi_raw"]))
                            .collect()
                    })
                    .unwrap_or_default();
                println!(
                    "[{}] contacts: remoteid={} rf={} fpv={} | remote_id={} rf={} esp32={} vrx=[{}] | system={} cpu={}% | overall_ok={} | {} events",
                    chrono_like(d["timestamp_ms"].as_u64().unwrap_or(0)),
                    count("REMOTE_ID"),
                    count("RF"),
                    count("FPV"),
                    d["remote_id"]["state"].as_str().unwrap_or("?"),
                    d["rf"]["status"].as_str().unwrap_or("?"),
                    if d["esp32"]["connected"] == true { "connected" } else { "down" },
                    rssi.join(" "),
                    d["system"]["status"].as_str().unwrap_or("?"),
                    d["system"]["cpu"]["usage_percent"].as_f64().map(|c| format!("{c:.0}")).unwrap_or_else(|| "?".into()),
                    d["overall_ok"],
                    events
                );
                last_print = Instant::now();
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// HH:MM:SS (UTC) of an epoch-ms time.
fn chrono_like(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}
