//! `ndefender-loadgen`: the aggregator benchmarks. Starts the real aggregator
//! binary on a temp dir, appends realistic RemoteID contact lines at fixed
//! rates and measures file-append → WebSocket-receive latency, loss, and the
//! daemon's RSS and CPU idle and under load. Prints a markdown table.
//!
//! `ndefender-loadgen latency [--rates 100,1000,10000] [--seconds 5] [--aggregator PATH]`

use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
}

type R<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(1);
        }
    };
    let r = rt.block_on(async move {
        match cli.cmd {
            Cmd::Latency {
                rates,
                seconds,
                aggregator,
            } => latency(rates, seconds, aggregator).await,
            Cmd::Esp32Rtt { commands, aggregator } => esp32_rtt(commands, aggregator).await,
        }
    });
    if let Err(e) = r {
        eprintln!("ndefender-loadgen: {e}");
        std::process::exit(1);
    }
}

fn wall_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn sibling(name: &str) -> R<PathBuf> {
    let me = std::env::current_exe()?;
    Ok(me.with_file_name(name))
}

struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (RSS in KiB, CPU ticks utime+stime) of a process.
fn proc_usage(pid: u32) -> R<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or("no VmRSS")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, a)| a).ok_or("bad stat")?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ut: u64 = f.get(11).and_then(|v| v.parse().ok()).ok_or("utime")?;
    let st: u64 = f.get(12).and_then(|v| v.parse().ok()).ok_or("stime")?;
    Ok((rss, ut + st))
}

fn ticks_per_s() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux this targets.
    100.0
}

async fn start_aggregator(bin: &Path, dir: &Path, port: u16, esp32_port: Option<&Path>) -> R<Proc> {
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
    let child = Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .spawn()?;
    let p = Proc { child };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(p);
        }
        if Instant::now() > deadline {
            return Err("aggregator did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn latency(rates: Vec<u64>, seconds: u64, aggregator: Option<PathBuf>) -> R {
    let bin = match aggregator {
        Some(b) => b,
        None => sibling("ndefender-aggregator")?,
    };
    let dir = std::env::temp_dir().join(format!("ndefender-loadgen-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let agg = start_aggregator(&bin, &dir, port, None).await?;
    let pid = agg.child.id();
    let feed = dir.join("remoteid.jsonl");
    std::fs::write(&feed, b"")?;

    // idle figures
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, c0) = proc_usage(pid)?;
    let idle_s = 5.0;
    tokio::time::sleep(Duration::from_secs_f64(idle_s)).await;
    let (rss_idle, c1) = proc_usage(pid)?;
    let idle_cpu = (c1 - c0) as f64 / ticks_per_s() / idle_s * 100.0;

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
        let (_, cpu_a) = proc_usage(pid)?;
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
        let (rss, cpu_b) = proc_usage(pid)?;
        let cpu = (cpu_b - cpu_a) as f64 / ticks_per_s() / elapsed.max(1e-3) * 100.0;
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
    let bin = match aggregator {
        Some(b) => b,
        None => sibling("ndefender-aggregator")?,
    };
    let dir = std::env::temp_dir().join(format!("ndefender-loadgen-esp32-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let link = dir.join("ttyESP32");
    let sim = Esp32Sim::spawn(SimConfig {
        link: Some(link.clone()),
        knobs: Knobs::quiet(),
        ..SimConfig::default()
    })
    .await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let agg = start_aggregator(&bin, &dir, port, Some(&link)).await?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest_like::Client::new();
    // wait for the first telemetry (connected)
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = client
            .get_json(&format!("{base}/api/v1/esp32"))
            .await
            .unwrap_or_default();
        if s["connected"] == serde_json::Value::Bool(true) {
            break;
        }
        if Instant::now() > deadline {
            return Err("ESP32 link did not come up".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// A minimal HTTP/1.1 client over one keep-alive TCP connection: enough for the
/// benchmark, and it keeps client overhead out of the measured round trip.
mod reqwest_like {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;
    use tokio::sync::Mutex;

    pub struct Client {
        conn: Mutex<Option<BufReader<TcpStream>>>,
    }

    impl Client {
        pub fn new() -> Self {
            Self { conn: Mutex::new(None) }
        }

        async fn request(&self, method: &str, url: &str, body: &str) -> std::io::Result<(u16, Vec<u8>)> {
            let rest = url.strip_prefix("http://").unwrap_or(url);
            let (host, path) = rest
                .split_once('/')
                .map(|(h, p)| (h, format!("/{p}")))
                .unwrap_or((rest, "/".into()));
            let mut guard = self.conn.lock().await;
            if guard.is_none() {
                *guard = Some(BufReader::new(TcpStream::connect(host).await?));
            }
            let Some(conn) = guard.as_mut() else {
                return Err(std::io::Error::other("no connection"));
            };
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            conn.get_mut().write_all(req.as_bytes()).await?;
            let mut status_line = String::new();
            conn.read_line(&mut status_line).await?;
            let status: u16 = status_line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                conn.read_line(&mut h).await?;
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut buf = vec![0u8; len];
            conn.read_exact(&mut buf).await?;
            Ok((status, buf))
        }

        pub async fn post(&self, url: &str, body: &str) -> std::io::Result<u16> {
            Ok(self.request("POST", url, body).await?.0)
        }

        pub async fn get_json(&self, url: &str) -> std::io::Result<serde_json::Value> {
            let (_, b) = self.request("GET", url, "").await?;
            serde_json::from_slice(&b).map_err(std::io::Error::other)
        }
    }
}
