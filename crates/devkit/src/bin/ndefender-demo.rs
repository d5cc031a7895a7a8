//! `ndefender-demo`: the stack on simulated inputs, no hardware needed.
//!
//! Starts the aggregator (the binary next to this one) on a private run
//! directory, feeds it from the RemoteID simulator (drones flying tracks),
//! prints the URLs and a live summary, and stops everything cleanly on Ctrl-C.

use clap::Parser;
use futures_util::StreamExt;
use ndefender_devkit::esp32::sim::{Esp32Sim, SimConfig};
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
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ndefender-demo: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("ndefender-demo: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> R {
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("ndefender-demo-{}", std::process::id())),
    };
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let rid_path = logs.join("remoteid_engine.jsonl");
    let rf_path = logs.join("antsdr_scan.jsonl");
    let port = args.aggregator_port;

    // The ESP32 panel: the emulator on a pseudo-terminal, reached through a symlink
    // exactly as the udev rule provides /dev/ndefender-esp32 on the kit.
    let esp32_link = dir.join("ndefender-esp32");
    let esp32 = Esp32Sim::spawn(SimConfig {
        link: Some(esp32_link.clone()),
        seed: args.seed,
        ..SimConfig::default()
    })
    .await?;

    let wiring = Wiring {
        dir: dir.clone(),
        aggregator_port: port,
        controller_port: args.controller_port,
        antsdr_port: args.antsdr_port,
        rid_path: rid_path.clone(),
        rf_path: rf_path.clone(),
        esp32_link: esp32_link.clone(),
    };

    // The RF scanner on its synthetic scene, through the real DSP, writing the JSONL the aggregator tails.
    let mut scan = Daemon::spawn(
        "ndefender-antsdr-scan",
        wiring.scanner(&sibling("ndefender-antsdr-scan")?),
    )?;
    scan.wait_port(args.antsdr_port).await?;

    // The board itself: real procfs stats of this machine; D-Bus sections degrade when no
    // system bus is reachable, GPS when no gpsd runs.
    let cmd = wiring.controller(&sibling("ndefender-system-controller")?);
    let mut ctl = Daemon::spawn("ndefender-system-controller", cmd)?;
    ctl.wait_port(args.controller_port).await?;

    // `--remoteid capture`: the RemoteID engine decodes a real capture (in a loop) into the feed.
    let capture_mode = args.remoteid == "capture";
    let mut engine = None;
    if capture_mode {
        let capture = std::fs::canonicalize(&args.remoteid_capture)
            .map_err(|e| format!("{}: {e}", args.remoteid_capture.display()))?;
        let mut d = Daemon::spawn(
            "ndefender-remoteid",
            wiring.remoteid_engine(&sibling("ndefender-remoteid")?, args.remoteid_port, &capture),
        )?;
        d.wait_port(args.remoteid_port).await?;
        engine = Some(d);
    }

    let mut agg_cmd = wiring.aggregator(&sibling("ndefender-aggregator")?);
    if capture_mode {
        let (k, v) = Wiring::remoteid_base_url_env(args.remoteid_port);
        agg_cmd.env(k, v);
    }
    let mut agg = Daemon::spawn("ndefender-aggregator", agg_cmd)?;
    agg.wait_port(port).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sim_cfg = RemoteIdSimConfig {
        path: rid_path.clone(),
        drones: args.drones,
        seed: args.seed,
        // The engine writes the feed in capture mode; the simulator stays silent.
        quiet: capture_mode,
        ..RemoteIdSimConfig::default()
    };
    let mut sim_stop = stop_rx.clone();
    let sim = tokio::spawn(async move {
        run_remoteid_sim(sim_cfg, async move {
            let _ = sim_stop.wait_for(|v| *v).await;
        })
        .await
    });

    println!("N-Defender demo running (simulated inputs; Ctrl-C stops everything)");
    println!("  run directory     {}", dir.display());
    println!("  aggregator REST   http://127.0.0.1:{port}/api/v1/status");
    println!("  aggregator WS     ws://127.0.0.1:{port}/api/v1/ws");
    println!("  RemoteID feed     {}", rid_path.display());
    if capture_mode {
        println!(
            "  RemoteID engine   http://127.0.0.1:{}/api/v1/status  (replaying {} in a loop)",
            args.remoteid_port,
            args.remoteid_capture.display()
        );
    }
    println!(
        "  ESP32 emulator    {} -> {}",
        esp32_link.display(),
        esp32.device_path().unwrap_or_default().display()
    );
    println!(
        "  AntSDR scanner    http://127.0.0.1:{}/api/v1/sweep/state  ws://127.0.0.1:{}/api/v1/events  (synthetic scene)",
        args.antsdr_port, args.antsdr_port
    );
    println!("  RF feed           {}", rf_path.display());
    println!(
        "  system controller http://127.0.0.1:{}/api/v1/status  ws://127.0.0.1:{}/api/v1/ws",
        args.controller_port, args.controller_port
    );
    println!();

    let summary = tokio::spawn(live_summary(port, stop_rx.clone()));
    let limit = async {
        if args.seconds == 0 {
            std::future::pending::<()>().await
        } else {
            tokio::time::sleep(Duration::from_secs(args.seconds)).await
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = limit => {}
    }
    println!("\nstopping…");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), sim).await;
    summary.abort();
    tokio::task::spawn_blocking(move || {
        stop(agg);
        if let Some(e) = engine {
            stop(e);
        }
        stop(scan);
        stop(ctl);
    })
    .await?;
    esp32.shutdown().await?;
    eprintln!("  ESP32 emulator stopped");
    Ok(())
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
