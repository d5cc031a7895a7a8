//! `ndefender-loadgen`: the aggregator benchmarks. Starts the real aggregator
//! binary on a temp dir, appends realistic RemoteID contact lines at fixed
//! rates and measures file-append → WebSocket-receive latency, loss, and the
//! daemon's RSS and CPU idle and under load. Prints a markdown table.
//!
//! `ndefender-loadgen latency [--rates 100,1000,10000] [--seconds 5] [--aggregator PATH]`
//! `ndefender-loadgen esp32-rtt [--commands 500]`
//! `ndefender-loadgen soak --minutes 30` (the whole stack under a steady load; see
//! `ndefender_devkit::soak`)
//! `ndefender-loadgen footprint [--seconds 60]` (CPU and RSS of each daemon, idle and loaded)

use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use ndefender_devkit::http::Client;
use ndefender_devkit::soak::SoakConfig;
use ndefender_devkit::stack::{find_bin, free_port, percentile, proc_usage, wait_esp32_connected, Daemon, TICKS_PER_S};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(name = "ndefender-loadgen", about = "N-Defender aggregator benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Append → WS latency at several line rates, plus RSS/CPU idle and loaded.
    Latency {
        #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
        rates: Vec<u64>,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// The aggregator binary (default: next to this one).
        #[arg(long)]
        aggregator: Option<PathBuf>,
    },
    /// ESP32 command round trip over a pseudo-terminal: REST → serial → emulator → ack → REST.
    Esp32Rtt {
        #[arg(long, default_value_t = 500)]
        commands: u32,
        #[arg(long)]
        aggregator: Option<PathBuf>,
    },
    /// The whole stack under a steady load for a given time: RSS and descriptors of
    /// each daemon, events lost, command outcomes, append → WS latency.
    Soak(SoakArgs),
    /// CPU and RSS of each daemon of the stack, idle and then under the soak's load.
    Footprint {
        /// Length of each phase in seconds (the first 10 s of each are warm-up).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Directory holding the daemon binaries (default: next to this one).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct SoakArgs {
    /// Run time in minutes (added to --seconds).
    #[arg(long, default_value_t = 0)]
    minutes: u64,
    /// Run time in seconds (added to --minutes); default 60 when neither is given.
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// Directory holding the daemon binaries (default: next to this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Run directory (default: a new one under the temp dir, removed after a passing run).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// RemoteID lines appended per second.
    #[arg(long, default_value_t = 100.0)]
    rid_rate: f64,
    /// Distinct RemoteID contacts the lines cycle through.
    #[arg(long, default_value_t = 200)]
    rid_drones: u64,
    /// Milliseconds between ESP32 commands (0: none).
    #[arg(long, default_value_t = 500)]
    cmd_interval_ms: u64,
    /// WS clients on the aggregator, the non-reading ones included.
    #[arg(long, default_value_t = 20)]
    clients: usize,
    /// How many of them never read.
    #[arg(long, default_value_t = 2)]
    stalled: usize,
    /// Seconds a non-reading client holds a connection before inspecting it and reconnecting
    /// (not a multiple of the sampling interval, so samples see its socket open and closed).
    #[arg(long, default_value_t = 70)]
    stall_cycle_s: u64,
    /// Sampling interval in seconds (default: 60, or 10 for runs under 10 minutes).
    #[arg(long)]
    sample_s: Option<u64>,
    /// Warm-up in seconds, not judged for flatness (default: one sample interval, ≤ 60).
    #[arg(long)]
    warmup_s: Option<u64>,
    /// ESP32 emulator seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

type R<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    let cli = Cli::parse();
    ndefender_devkit::tool::block_on("ndefender-loadgen", 1, async move {
        match cli.cmd {
            Cmd::Latency {
                rates,
                seconds,
                aggregator,
            } => latency(rates, seconds, aggregator).await,
            Cmd::Esp32Rtt { commands, aggregator } => esp32_rtt(commands, aggregator).await,
            Cmd::Soak(args) => soak(args).await,
            Cmd::Footprint { seconds, bin_dir } => footprint(seconds, bin_dir).await,
        }
    });
}

fn wall_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn aggregator_bin(given: Option<PathBuf>) -> R<PathBuf> {
    Ok(match given {
        Some(b) => b,
        None => find_bin(None, "ndefender-aggregator")?,
    })
}

/// The aggregator alone, on a config of its own; killed when the handle is dropped.
async fn start_aggregator(bin: &Path, dir: &Path, port: u16, esp32_port: Option<&Path>) -> R<Daemon> {
    let cfg = dir.join("aggregator.toml");
    let esp32 = match esp32_port {
        Some(p) => format!(
            "[esp32]\nport = \"{}\"\nprobe_interval_s = 0.0\n[limits]\ncommands_per_minute = 1000000\n",
            p.display()
        ),
        None => "[esp32]\nenabled = false\n".to_owned(),
    };
    std::fs::write(
        &cfg,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\nclient_queue = 65536\n[state]\ndir = \"{}\"\n[remoteid]\njsonl_path = \"{}\"\nbase_url = \"http://127.0.0.1:1\"\n[antsdr]\nenabled = false\n{esp32}[system_controller]\nenabled = false\n[tail]\nstart_position = \"end\"\n",
            dir.join("state").display(),
            dir.join("remoteid.jsonl").display()
        ),
    )?;
    let mut cmd = Command::new(bin);
    cmd.arg("--config").arg(&cfg).env("RUST_LOG", "error");
    let mut agg = Daemon::spawn("ndefender-aggregator", cmd)?;
    agg.wait_port(port).await?;
    Ok(agg)
}

async fn latency(rates: Vec<u64>, seconds: u64, aggregator: Option<PathBuf>) -> R {
    let bin = aggregator_bin(aggregator)?;
    let dir = std::env::temp_dir().join(format!("ndefender-loadgen-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = free_port()?;
    let agg = start_aggregator(&bin, &dir, port, None).await?;
    let pid = agg.pid();
    let feed = dir.join("remoteid.jsonl");
    std::fs::write(&feed, b"")?;

    // idle figures
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c0 = proc_usage(pid)?.cpu_ticks;
    let idle_s = 5.0;
    tokio::time::sleep(Duration::from_secs_f64(idle_s)).await;
    let idle = proc_usage(pid)?;
    let (rss_idle, c1) = (idle.rss_kib, idle.cpu_ticks);
    let idle_cpu = (c1 - c0) as f64 / TICKS_PER_S / idle_s * 100.0;

    println!("| line rate (lines/s) | lines | received | lost | p50 ms | p99 ms | max ms | CPU % | RSS MiB |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let url = format!("ws://127.0.0.1:{port}/api/v1/ws?events=CONTACT_*");
    for rate in rates {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await?;
        let total = rate * seconds;
        let recv = tokio::spawn(async move {
            let mut lat = Vec::with_capacity(total as usize);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds + 10);
            while (lat.len() as u64) < total {
                let m = match tokio::time::timeout_at(deadline, ws.next()).await {
                    Ok(Some(Ok(m))) => m,
                    _ => break,
                };
                let now = wall_ns();
                if let Message::Text(t) = m {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) {
                        let sent = v["data"]["model"]
                            .as_str()
                            .and_then(|s| s.strip_prefix("bench-"))
                            .and_then(|s| s.parse::<u128>().ok());
                        if let Some(s) = sent {
                            lat.push((now.saturating_sub(s)) as f64 / 1e6);
                        }
                    }
                }
            }
            lat
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cpu_a = proc_usage(pid)?.cpu_ticks;
        let t0 = Instant::now();
        // The writer runs on its own OS thread: a blocking append (ext4 journal commit)
        // must not stall the receiving client and show up as aggregator latency.
        let feed_w = feed.clone();
        let writer = std::thread::spawn(move || -> std::io::Result<()> {
            // 1 ms batches keep the rate even at 10k lines/s
            let per_ms = rate as f64 / 1000.0;
            let mut f = std::fs::OpenOptions::new().append(true).open(&feed_w)?;
            let mut sent: u64 = 0;
            let mut buf = String::new();
            while sent < total {
                let due = ((t0.elapsed().as_secs_f64() * 1000.0) * per_ms).ceil() as u64;
                let due = due.min(total);
                buf.clear();
                while sent < due {
                    let id = sent % 50;
                    let ts = wall_ns() / 1_000_000;
                    let lat = 47.0 + (sent as f64) * 1e-6;
                    buf.push_str(&format!(
                        "{{\"type\":\"CONTACT_UPDATE\",\"timestamp_ms\":{ts},\"source\":\"remoteid\",\"data\":{{\"id\":\"rid:BENCH{id:04}\",\"type\":\"REMOTE_ID\",\"last_seen_ts\":{ts},\"model\":\"bench-{}\",\"operator_id\":\"OP-{id}\",\"lat\":{lat:.7},\"lon\":8.5,\"altitude_m\":120.0,\"speed_m_s\":12.5}}}}\n",
                        wall_ns()
                    ));
                    sent += 1;
                }
                if !buf.is_empty() {
                    f.write_all(buf.as_bytes())?;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Ok(())
        });
        writer.join().map_err(|_| "writer thread panicked")??;
        let elapsed = t0.elapsed().as_secs_f64();
        let lat = recv.await?;
        let loaded = proc_usage(pid)?;
        let (rss, cpu_b) = (loaded.rss_kib, loaded.cpu_ticks);
        let cpu = (cpu_b - cpu_a) as f64 / TICKS_PER_S / elapsed.max(1e-3) * 100.0;
        let mut sorted = lat.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "| {rate} | {total} | {} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} |",
            lat.len(),
            total.saturating_sub(lat.len() as u64),
            percentile(&sorted, 50.0),
            percentile(&sorted, 99.0),
            sorted.last().copied().unwrap_or(f64::NAN),
            cpu,
            rss as f64 / 1024.0
        );
    }
    println!();
    println!(
        "idle: CPU {idle_cpu:.2} % over {idle_s} s, RSS {:.1} MiB",
        rss_idle as f64 / 1024.0
    );
    drop(agg);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn esp32_rtt(commands: u32, aggregator: Option<PathBuf>) -> R {
    use ndefender_devkit::esp32::knobs::Knobs;
    use ndefender_devkit::esp32::sim::{Esp32Sim, SimConfig};
    let bin = aggregator_bin(aggregator)?;
    let dir = std::env::temp_dir().join(format!("ndefender-loadgen-esp32-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let link = dir.join("ttyESP32");
    let sim = Esp32Sim::spawn(SimConfig {
        link: Some(link.clone()),
        knobs: Knobs::quiet(),
        ..SimConfig::default()
    })
    .await?;
    let port = free_port()?;
    let agg = start_aggregator(&bin, &dir, port, Some(&link)).await?;
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new();
    // wait for the first telemetry (connected)
    wait_esp32_connected(&client, &base, Duration::from_secs(15)).await?;
    let mut lat = Vec::with_capacity(commands as usize);
    let mut failed = 0;
    for i in 0..commands {
        let body = format!("{{\"payload\":{{\"ch\":{}}}}}", 1 + i % 3);
        let t = Instant::now();
        let status = client.post(&format!("{base}/api/v1/video/select"), &body).await?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if status == 200 {
            lat.push(ms);
        } else {
            failed += 1;
        }
    }
    lat.sort_by(f64::total_cmp);
    println!("| commands | ok | failed | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {commands} | {} | {failed} | {:.2} | {:.2} | {:.2} |",
        lat.len(),
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    drop(agg);
    sim.shutdown().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn soak(a: SoakArgs) -> R {
    let secs = a.minutes * 60 + a.seconds;
    let secs = if secs == 0 { 60 } else { secs };
    let mut cfg = SoakConfig::new(Duration::from_secs(secs));
    cfg.bin_dir = a.bin_dir;
    cfg.dir = a.dir;
    cfg.rid_rate = a.rid_rate;
    cfg.rid_drones = a.rid_drones;
    cfg.cmd_interval = Duration::from_millis(a.cmd_interval_ms);
    cfg.ws_clients = a.clients;
    cfg.ws_stalled = a.stalled;
    cfg.stall_cycle = Duration::from_secs(a.stall_cycle_s);
    cfg.seed = a.seed;
    if let Some(s) = a.sample_s {
        cfg.sample_every = Duration::from_secs(s.max(1));
        cfg.warmup = cfg.sample_every.min(Duration::from_secs(60));
    }
    if let Some(w) = a.warmup_s {
        cfg.warmup = Duration::from_secs(w);
    }
    let command = format!(
        "ndefender-loadgen {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    eprintln!(
        "soak: {secs} s; RemoteID {} lines/s, command every {} ms, {} WS clients ({} never read)",
        cfg.rid_rate,
        cfg.cmd_interval.as_millis(),
        cfg.ws_clients,
        cfg.ws_stalled
    );
    let report = ndefender_devkit::soak::run(cfg, |line| println!("{line}")).await?;
    println!();
    println!("{}", report.markdown(&command));
    if report.run_dir_removed {
        println!("(run directory {} removed)", report.run_dir.display());
    } else {
        println!("run directory kept: {}", report.run_dir.display());
    }
    let failures = report.verdict_failures();
    if !failures.is_empty() {
        return Err(format!("soak failed: {}", failures.join("; ")).into());
    }
    Ok(())
}

/// Two short soaks on fresh stacks: one with no load at all (the scanner still scans its
/// synthetic scene and the controller probes, as they always do), one with the soak's
/// default load.
async fn footprint(seconds: u64, bin_dir: Option<PathBuf>) -> R {
    let phase = |loaded: bool| {
        let mut cfg = SoakConfig::new(Duration::from_secs(seconds.max(20)));
        cfg.bin_dir = bin_dir.clone();
        cfg.sample_every = Duration::from_secs(10);
        cfg.warmup = Duration::from_secs(10);
        if !loaded {
            cfg.rid_rate = 0.0;
            cfg.cmd_interval = Duration::ZERO;
            cfg.ws_clients = 0;
            cfg.ws_stalled = 0;
        }
        cfg
    };
    let mut results = Vec::new();
    for (name, loaded) in [("idle", false), ("loaded", true)] {
        let cfg = phase(loaded);
        eprintln!(
            "footprint, {name}: {} s; RemoteID {} lines/s, command every {} ms, {} WS clients ({} never read)",
            cfg.duration.as_secs(),
            cfg.rid_rate,
            cfg.cmd_interval.as_millis(),
            cfg.ws_clients,
            cfg.ws_stalled
        );
        let report = ndefender_devkit::soak::run(cfg, |line| eprintln!("{line}")).await?;
        let failures = report.verdict_failures();
        if !failures.is_empty() {
            return Err(format!("footprint {name} phase failed: {}", failures.join("; ")).into());
        }
        results.push(report.footprints());
    }
    println!("| daemon | idle CPU (% of one core) | idle RSS end / peak MiB | loaded CPU (% of one core) | loaded RSS end / peak MiB | fds idle / loaded |");
    println!("|---|---:|---:|---:|---:|---:|");
    if let [idle, loaded] = results.as_slice() {
        for (i, l) in idle.iter().zip(loaded) {
            println!(
                "| {} | {:.2} | {:.1} / {:.1} | {:.2} | {:.1} / {:.1} | {} / {} |",
                i.daemon,
                i.cpu_pct,
                i.rss_end_mib,
                i.rss_peak_mib,
                l.cpu_pct,
                l.rss_end_mib,
                l.rss_peak_mib,
                i.fds_end,
                l.fds_end
            );
        }
    }
    Ok(())
}
