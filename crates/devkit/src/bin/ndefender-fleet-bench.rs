//! `ndefender-fleet-bench`: simulated kits publishing through one mosquitto to
//! `ndefender-fleet` (issue 15). Each kit is its own MQTT connection publishing every
//! drone's `contacts/<id>` (retained, QoS 1) at the given rate, as the aggregator's
//! uplink does; a WebSocket client on the fleet matches every CONTACT_NEW/UPDATE to the
//! publish it came from (drone id + `last_seen_ts`, unique per publish) and reports the
//! latency from the kit's publish call to the fleet's frame, messages lost, and CPU/RSS
//! of the fleet daemon and mosquitto over the run.

use clap::Parser;
use futures_util::StreamExt;
use ndefender_devkit::mosquitto::Broker;
use ndefender_devkit::stack::{find_bin, free_port, percentile, proc_usage, Daemon, TICKS_PER_S};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Directory holding ndefender-fleet (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

type Sent = Arc<Mutex<HashMap<(String, u64), Instant>>>;

fn now_ms() -> u64 {
    ndefender_contract::time::now_ms()
}

fn contact(id: &str, ts: u64, k: usize, d: usize) -> Vec<u8> {
    json!({"id": id, "type": "REMOTE_ID", "source": "remoteid", "last_seen_ts": ts, "severity": "medium",
           "model": "Bench", "operator_id": format!("OP-{k}"), "lat": 52.0 + d as f64 * 1e-4, "lon": 13.0 + k as f64 * 1e-4,
           "altitude_m": 50.0, "speed_m_s": 5.0, "rssi_dbm": -60.0})
    .to_string()
    .into_bytes()
}

async fn kit(port: u16, k: usize, drones: usize, rate_hz: f64, until: Instant, sent: Sent) -> Result<u64, String> {
    let kit_id = format!("bench-{k:03}");
    let mut o = MqttOptions::new(format!("ndefender-{kit_id}"), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(15));
    o.set_inflight(1000);
    let (client, mut el) = AsyncClient::new(o, 1024);
    let poll = tokio::spawn(async move { while el.poll().await.is_ok() {} });
    client
        .publish(
            format!("ndefender/{kit_id}/availability"),
            QoS::AtLeastOnce,
            true,
            "online",
        )
        .await
        .map_err(|e| e.to_string())?;
    let period = Duration::from_secs_f64(1.0 / rate_hz);
    // Drones spread evenly over the period, kits offset from each other.
    let step = period / drones.max(1) as u32;
    let mut next = tokio::time::Instant::now() + step * (k % drones.max(1)) as u32 / 7;
    let mut last_ts = vec![0u64; drones];
    let mut n = 0u64;
    while Instant::now() < until {
        for (d, last) in last_ts.iter_mut().enumerate() {
            tokio::time::sleep_until(next).await;
            next += step;
            let id = format!("rid:BENCH{k:03}X{d:03}");
            let ts = now_ms().max(*last + 1);
            *last = ts;
            let payload = contact(&id, ts, k, d);
            let topic = format!("ndefender/{kit_id}/contacts/rid:BENCH{k:03}X{d:03}");
            if let Ok(mut s) = sent.lock() {
                s.insert((id, ts), Instant::now());
            }
            client
                .publish(topic, QoS::AtLeastOnce, true, payload)
                .await
                .map_err(|e| e.to_string())?;
            n += 1;
        }
    }
    // Let the last publishes leave, then clear the retained topics.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for d in 0..drones {
        let _ = client
            .publish(
                format!("ndefender/{kit_id}/contacts/rid:BENCH{k:03}X{d:03}"),
                QoS::AtLeastOnce,
                true,
                Vec::new(),
            )
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    poll.abort();
    Ok(n)
}

#[tokio::main]
async fn main() {
    let a = Args::parse();
    if let Err(e) = run(a).await {
        eprintln!("ndefender-fleet-bench: {e}");
        std::process::exit(1);
    }
}

async fn run(a: Args) -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("ndefender-fleet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let broker = Broker::start(&dir, free_port()?).await?;
    let fleet_port = free_port()?;
    let mut cmd = Command::new(find_bin(a.bin_dir.as_deref(), "ndefender-fleet")?);
    cmd.env("NDEFENDER_SERVER__BIND", format!("127.0.0.1:{fleet_port}"))
        .env("NDEFENDER_MQTT__URL", broker.url())
        .env("NDEFENDER_SERVER__CLIENT_QUEUE", "65536");
    let mut fleet = Daemon::spawn("ndefender-fleet", cmd)?;
    fleet.wait_port(fleet_port).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{fleet_port}/api/v1/ws")).await?;
    let sent: Sent = Arc::new(Mutex::new(HashMap::new()));
    let lat: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let (s2, l2) = (sent.clone(), lat.clone());
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
            let at = s2.lock().ok().and_then(|mut s| s.remove(&(id.to_owned(), ts)));
            if let (Some(at), Ok(mut l)) = (at, l2.lock()) {
                l.push(at.elapsed().as_secs_f64() * 1000.0);
            }
        }
    });

    let fleet_pid = fleet.pid();
    let broker_pid = broker.pid().ok_or("broker not running")?;
    let (f0, b0, t0) = (proc_usage(fleet_pid)?, proc_usage(broker_pid)?, Instant::now());
    let until = Instant::now() + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for k in 0..a.kits {
        tasks.push(tokio::spawn(kit(
            broker.port,
            k,
            a.drones,
            a.rate_hz,
            until,
            sent.clone(),
        )));
    }
    // Peak RSS sampled while loaded.
    let (mut f_rss, mut b_rss) = (0u64, 0u64);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        f_rss = f_rss.max(proc_usage(fleet_pid)?.rss_kib);
        b_rss = b_rss.max(proc_usage(broker_pid)?.rss_kib);
    }
    let (f1, b1, el) = (
        proc_usage(fleet_pid)?,
        proc_usage(broker_pid)?,
        t0.elapsed().as_secs_f64(),
    );
    let mut published = 0u64;
    for t in tasks {
        published += t.await?.map_err(|e| format!("kit: {e}"))?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    reader.abort();
    let lost = sent.lock().map(|s| s.len()).unwrap_or(usize::MAX);
    let mut l = lat.lock().map(|l| l.clone()).unwrap_or_default();
    l.sort_by(f64::total_cmp);
    let cpu = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / TICKS_PER_S / el * 100.0;
    println!(
        "fleet_bench kits={} drones={} rate_hz={} seconds={} published={} received={} lost={} \
         p50_ms={:.2} p99_ms={:.2} max_ms={:.2} fleet_cpu_pct={:.1} fleet_rss_mib={:.1} \
         mosquitto_cpu_pct={:.1} mosquitto_rss_mib={:.1}",
        a.kits,
        a.drones,
        a.rate_hz,
        a.seconds,
        published,
        l.len(),
        lost,
        percentile(&l, 50.0),
        percentile(&l, 99.0),
        l.last().copied().unwrap_or(f64::NAN),
        cpu(f0.cpu_ticks, f1.cpu_ticks),
        f_rss as f64 / 1024.0,
        cpu(b0.cpu_ticks, b1.cpu_ticks),
        b_rss as f64 / 1024.0,
    );
    let _ = fleet.stop(Duration::from_secs(5));
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
