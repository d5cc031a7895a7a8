//! `ndefender-fleet-bench`: simulated kits publishing through one mosquitto to
//! `ndefender-fleet` (issue 15), measured from the kit's RemoteID line append.
//!
//! Default (`--mode line`): each kit is a real `ndefender-aggregator` process tailing its
//! own RemoteID JSONL file with its MQTT uplink on (distinct `kit_id`, no scanner,
//! controller, ESP32 or history). The bench appends one line per drone per second to
//! each kit's file (spread over the second) and stamps the append; a WebSocket client
//! on the fleet matches every CONTACT_NEW/UPDATE to the line it came from (drone id +
//! `last_seen_ts`, unique per line). The path measured is the whole chain: inotify tail →
//! aggregator core → uplink → mosquitto → fleet → WebSocket.
//!
//! `--mode publish` skips the aggregators: each kit is one MQTT connection publishing
//! `contacts/<id>` as the uplink would, timed from the publish call (the broker and
//! fleet alone).
//!
//! A line whose state was replaced by a newer line of the same drone before it left the
//! kit (the uplink keeps the *current* state per retained topic) is counted as
//! superseded; one neither delivered nor superseded by the end is lost.

use clap::{Parser, ValueEnum};
use futures_util::StreamExt;
use ndefender_devkit::fleet::kit_command;
use ndefender_devkit::mosquitto::Broker;
use ndefender_devkit::stack::{find_bin, free_port, percentile, proc_usage, Daemon, TICKS_PER_S};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Real aggregators tailing RemoteID JSONL files; latency from the line append.
    Line,
    /// MQTT clients publishing like the uplink; latency from the publish call.
    Publish,
}

#[derive(Parser, Debug)]
#[command(about = "Fleet benchmark: N simulated kits × M drones through mosquitto to ndefender-fleet")]
struct Args {
    #[arg(long, default_value_t = 20)]
    kits: usize,
    #[arg(long, default_value_t = 50)]
    drones: usize,
    /// Updates per second per drone.
    #[arg(long, default_value_t = 1.0)]
    rate_hz: f64,
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    #[arg(long, value_enum, default_value_t = Mode::Line)]
    mode: Mode,
    /// Directory holding ndefender-fleet and ndefender-aggregator (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

/// Per drone id: `last_seen_ts` → when that state left the kit's source (append or publish).
type Sent = Arc<Mutex<HashMap<String, BTreeMap<u64, Instant>>>>;

fn now_ms() -> u64 {
    ndefender_contract::time::now_ms()
}

fn drone_id(k: usize, d: usize) -> String {
    format!("rid:BENCH{k:03}X{d:03}")
}

/// The RemoteID fields of drone `d` of kit `k` (as the engine writes them).
fn drone_data(id: &str, ts: u64, k: usize, d: usize) -> Value {
    json!({"id": id, "type": "REMOTE_ID", "last_seen_ts": ts, "model": "Bench", "operator_id": format!("OP-{k}"),
           "lat": 52.0 + d as f64 * 1e-4, "lon": 13.0 + k as f64 * 1e-4, "altitude_m": 50.0, "speed_m_s": 5.0,
           "rssi_dbm": -60.0})
}

/// Where a kit's updates go.
enum Sink {
    /// The kit's RemoteID JSONL file (its aggregator tails it).
    File(std::fs::File),
    /// An MQTT connection publishing like the uplink.
    Mqtt(AsyncClient, String, tokio::task::JoinHandle<()>),
}

impl Sink {
    async fn mqtt(port: u16, kit_id: &str) -> Result<Sink, String> {
        let mut o = MqttOptions::new(format!("ndefender-{kit_id}"), "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(15));
        o.set_inflight(1000);
        let (client, mut el) = AsyncClient::new(o, 1024);
        let poll = tokio::spawn(async move { while el.poll().await.is_ok() {} });
        let base = format!("ndefender/{kit_id}");
        client
            .publish(format!("{base}/availability"), QoS::AtLeastOnce, true, "online")
            .await
            .map_err(|e| e.to_string())?;
        Ok(Sink::Mqtt(client, base, poll))
    }

    /// Sends one update; `stamp` is called right before it leaves.
    async fn send(&mut self, id: &str, data: Value, stamp: impl FnOnce()) -> Result<(), String> {
        match self {
            Sink::File(f) => {
                let ts = data["last_seen_ts"].as_u64().unwrap_or(0);
                let line = json!({"type": "CONTACT_UPDATE", "timestamp_ms": ts, "source": "remoteid", "data": data});
                let mut b = line.to_string().into_bytes();
                b.push(b'\n');
                stamp();
                // One small append to the page cache: microseconds, fine on the executor.
                f.write_all(&b).map_err(|e| e.to_string())
            }
            Sink::Mqtt(client, base, _) => {
                let mut c = data;
                if let Some(o) = c.as_object_mut() {
                    o.insert("source".into(), "remoteid".into());
                    o.insert("severity".into(), "medium".into());
                }
                let topic = format!("{base}/contacts/{id}");
                stamp();
                client
                    .publish(topic, QoS::AtLeastOnce, true, c.to_string().into_bytes())
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Clears the retained topics (publish mode; aggregators clean up themselves).
    async fn finish(self, ids: &[String]) {
        if let Sink::Mqtt(client, base, poll) = self {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for id in ids {
                let _ = client
                    .publish(format!("{base}/contacts/{id}"), QoS::AtLeastOnce, true, Vec::new())
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            poll.abort();
        }
    }
}

async fn kit(mut sink: Sink, k: usize, drones: usize, rate_hz: f64, until: Instant, sent: Sent) -> Result<u64, String> {
    let period = Duration::from_secs_f64(1.0 / rate_hz);
    // Drones spread evenly over the period, kits offset from each other.
    let step = period / drones.max(1) as u32;
    let mut next = tokio::time::Instant::now() + step * (k % drones.max(1)) as u32 / 7;
    let ids: Vec<String> = (0..drones).map(|d| drone_id(k, d)).collect();
    let mut last_ts = vec![0u64; drones];
    let mut n = 0u64;
    while Instant::now() < until {
        for (d, last) in last_ts.iter_mut().enumerate() {
            tokio::time::sleep_until(next).await;
            next += step;
            let id = &ids[d];
            let ts = now_ms().max(*last + 1);
            *last = ts;
            let stamp = || {
                if let Ok(mut s) = sent.lock() {
                    s.entry(id.clone()).or_default().insert(ts, Instant::now());
                }
            };
            sink.send(id, drone_data(id, ts, k, d), stamp).await?;
            n += 1;
        }
    }
    sink.finish(&ids).await;
    Ok(n)
}

#[derive(Default)]
struct Received {
    lat_ms: Vec<f64>,
    superseded: u64,
}

#[tokio::main]
async fn main() {
    let a = Args::parse();
    if let Err(e) = run(a).await {
        eprintln!("ndefender-fleet-bench: {e}");
        std::process::exit(1);
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Sum of CPU ticks and of RSS (KiB) over `pids`, and the largest RSS.
fn usage_sum(pids: &[u32]) -> Result<(u64, u64, u64), std::io::Error> {
    let (mut ticks, mut rss, mut max) = (0, 0, 0);
    for p in pids {
        let u = proc_usage(*p)?;
        ticks += u.cpu_ticks;
        rss += u.rss_kib;
        max = max.max(u.rss_kib);
    }
    Ok((ticks, rss, max))
}

async fn run(a: Args) -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("ndefender-fleet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let r = bench(&a, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    r
}

async fn bench(a: &Args, dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let broker = Broker::start(dir, free_port()?).await?;
    let fleet_port = free_port()?;
    let mut cmd = Command::new(find_bin(a.bin_dir.as_deref(), "ndefender-fleet")?);
    cmd.env("NDEFENDER_SERVER__BIND", format!("127.0.0.1:{fleet_port}"))
        .env("NDEFENDER_MQTT__URL", broker.url())
        .env("NDEFENDER_SERVER__CLIENT_QUEUE", "65536");
    let mut fleet = Daemon::spawn("ndefender-fleet", cmd)?;
    fleet.wait_port(fleet_port).await?;

    // The kits' sources (and, in line mode, their aggregators).
    let mut sinks = Vec::new();
    let mut aggs: Vec<Daemon> = Vec::new();
    for k in 0..a.kits {
        let kit_id = format!("bench-{k:03}");
        match a.mode {
            Mode::Publish => sinks.push(Sink::mqtt(broker.port, &kit_id).await?),
            Mode::Line => {
                let kd = dir.join(&kit_id);
                std::fs::create_dir_all(&kd)?;
                let rid = kd.join("remoteid_engine.jsonl");
                let file = std::fs::OpenOptions::new().create(true).append(true).open(&rid)?;
                let port = free_port()?;
                let mut cmd = kit_command(a.bin_dir.as_deref(), &kit_id, port, &kd, &rid, &broker.url())?;
                cmd.env("NDEFENDER_HISTORY__ENABLED", "false")
                    .env("NDEFENDER_REMOTEID__CONTACT_TTL_S", "120");
                let mut d = Daemon::spawn("ndefender-aggregator (kit)", cmd)?;
                d.wait_port(port).await?;
                aggs.push(d);
                sinks.push(Sink::File(file));
            }
        }
    }
    // Every kit's uplink connected and said `online` before the clock starts.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{fleet_port}/api/v1/ws")).await?;
    let sent: Sent = Arc::new(Mutex::new(HashMap::new()));
    let got: Arc<Mutex<Received>> = Arc::new(Mutex::new(Received::default()));
    let (s2, g2) = (sent.clone(), got.clone());
    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            let Ok(t) = m.to_text() else { continue };
            let Ok(v) = serde_json::from_str::<Value>(t) else {
                continue;
            };
            if v["type"] != "CONTACT_NEW" && v["type"] != "CONTACT_UPDATE" {
                continue;
            }
            let (Some(id), Some(ts)) = (v["data"]["id"].as_str(), v["data"]["last_seen_ts"].as_u64()) else {
                continue;
            };
            let (Ok(mut s), Ok(mut g)) = (s2.lock(), g2.lock()) else {
                continue;
            };
            let Some(per) = s.get_mut(id) else { continue };
            if let Some(at) = per.remove(&ts) {
                g.lat_ms.push(at.elapsed().as_secs_f64() * 1000.0);
            }
            // Older states of this drone never delivered: replaced by this one at the kit.
            let newer = per.split_off(&ts);
            g.superseded += per.len() as u64;
            *per = newer;
        }
    });

    let fleet_pid = fleet.pid();
    let broker_pid = broker.pid().ok_or("broker not running")?;
    let agg_pids: Vec<u32> = aggs.iter().map(Daemon::pid).collect();
    let load0 = loadavg();
    let (f0, b0, a0, t0) = (
        proc_usage(fleet_pid)?,
        proc_usage(broker_pid)?,
        usage_sum(&agg_pids)?,
        Instant::now(),
    );
    let until = Instant::now() + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for (k, sink) in sinks.into_iter().enumerate() {
        tasks.push(tokio::spawn(kit(sink, k, a.drones, a.rate_hz, until, sent.clone())));
    }
    // Peak RSS sampled while loaded.
    let (mut f_rss, mut b_rss, mut a_rss, mut a_rss_max) = (0u64, 0u64, 0u64, 0u64);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        f_rss = f_rss.max(proc_usage(fleet_pid)?.rss_kib);
        b_rss = b_rss.max(proc_usage(broker_pid)?.rss_kib);
        let (_, sum, max) = usage_sum(&agg_pids)?;
        a_rss = a_rss.max(sum);
        a_rss_max = a_rss_max.max(max);
    }
    let (f1, b1, a1, el) = (
        proc_usage(fleet_pid)?,
        proc_usage(broker_pid)?,
        usage_sum(&agg_pids)?,
        t0.elapsed().as_secs_f64(),
    );
    let load1 = loadavg();
    let mut published = 0u64;
    for t in tasks {
        published += t.await?.map_err(|e| format!("kit: {e}"))?;
    }
    // Drain: whatever is still in flight gets up to 10 s more.
    let pending = || {
        sent.lock()
            .map(|s| s.values().map(|p| p.len()).sum::<usize>())
            .unwrap_or(0)
    };
    let drain_end = Instant::now() + Duration::from_secs(10);
    while pending() > 0 && Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    reader.abort();
    let lost = pending();
    let (mut l, superseded) = got.lock().map(|g| (g.lat_ms.clone(), g.superseded)).unwrap_or_default();
    l.sort_by(f64::total_cmp);
    let cpu = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / TICKS_PER_S / el * 100.0;
    let mode = match a.mode {
        Mode::Line => "line",
        Mode::Publish => "publish",
    };
    println!(
        "fleet_bench mode={mode} kits={} drones={} rate_hz={} seconds={} sent={} received={} superseded={} lost={} \
         p50_ms={:.2} p99_ms={:.2} max_ms={:.2} fleet_cpu_pct={:.1} fleet_rss_mib={:.1} \
         mosquitto_cpu_pct={:.1} mosquitto_rss_mib={:.1} aggregators_cpu_pct={:.1} aggregators_rss_mib={:.1} \
         aggregator_rss_max_mib={:.1} loadavg_start={load0} loadavg_end={load1}",
        a.kits,
        a.drones,
        a.rate_hz,
        a.seconds,
        published,
        l.len(),
        superseded,
        lost,
        percentile(&l, 50.0),
        percentile(&l, 99.0),
        l.last().copied().unwrap_or(f64::NAN),
        cpu(f0.cpu_ticks, f1.cpu_ticks),
        f_rss as f64 / 1024.0,
        cpu(b0.cpu_ticks, b1.cpu_ticks),
        b_rss as f64 / 1024.0,
        cpu(a0.0, a1.0),
        a_rss as f64 / 1024.0,
        a_rss_max as f64 / 1024.0,
    );
    // Stop the kits all at once (each says `offline` within its grace period).
    let stops: Vec<_> = aggs
        .into_iter()
        .map(|d| tokio::task::spawn_blocking(move || d.stop(Duration::from_secs(5))))
        .collect();
    for s in stops {
        let _ = s.await;
    }
    let _ = fleet.stop(Duration::from_secs(5));
    drop(broker);
    Ok(())
}
