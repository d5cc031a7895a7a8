//! The soak's inputs: numbered RemoteID lines appended to the feed at a steady
//! rate, and ESP32 commands through the aggregator's REST.

use super::ws::{lock, soak_model, stopped, wall_ns};
use crate::http::Client;
use crate::remoteid::{LineFormat, RidEvent, RidEventKind};
use serde_json::json;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Line `n` of the soak feed: contact `n % drones`, NEW the first time, then UPDATE,
/// moving a little each time; `model` carries `n` and the append time.
pub(crate) fn rid_line(n: u64, drones: u64, now_ns: u64) -> String {
    let drone = n % drones.max(1);
    let round = n / drones.max(1);
    let ms = now_ns / 1_000_000;
    let kind = if round == 0 {
        RidEventKind::ContactNew
    } else {
        RidEventKind::ContactUpdate
    };
    let lat = 47.3 + drone as f64 * 1e-3 + (round % 1000) as f64 * 1e-6;
    let lon = 8.5 + drone as f64 * 1e-3;
    RidEvent {
        kind,
        timestamp_ms: ms,
        data: json!({
            "id": format!("rid:SOAK{drone:05}"),
            "type": "REMOTE_ID",
            "last_seen_ts": ms,
            "model": soak_model(n, now_ns),
            "operator_id": format!("OP-SOAK-{drone}"),
            "lat": (lat * 1e7).round() / 1e7,
            "lon": (lon * 1e7).round() / 1e7,
            "altitude_m": 100.0 + (round % 50) as f64,
            "speed_m_s": 8.5,
        }),
    }
    .to_line(LineFormat::default())
}

/// Appends soak lines to `path` at `rate` lines/s until `stop` is set, on its own OS
/// thread (a blocking append must not stall the readers and show up as latency).
/// `appended` counts lines written.
pub(crate) fn spawn_rid_writer(
    path: PathBuf,
    rate: f64,
    drones: u64,
    appended: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<io::Result<()>> {
    std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().append(true).create(true).open(&path)?;
        let t0 = Instant::now();
        let mut sent: u64 = 0;
        let mut buf = String::new();
        while !stop.load(Relaxed) {
            let due = (t0.elapsed().as_secs_f64() * rate).floor() as u64;
            buf.clear();
            while sent < due {
                buf.push_str(&rid_line(sent, drones, wall_ns()));
                buf.push('\n');
                sent += 1;
            }
            if !buf.is_empty() {
                f.write_all(buf.as_bytes())?;
                appended.store(sent, Relaxed);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    })
}

/// Outcomes of the ESP32 commands.
#[derive(Debug, Default, Clone)]
pub(crate) struct CommandStats {
    pub sent: u64,
    pub ok: u64,
    /// Non-200 answers, by status and detail.
    pub failed: Vec<String>,
    /// No answer within the client timeout.
    pub timeouts: u64,
    /// Transport errors other than timeouts.
    pub errors: Vec<String>,
    /// `command_id`s of the 200 answers.
    pub ok_ids: Vec<String>,
    pub rtt_ms: Vec<f64>,
}

/// One `video/select` every `every` until `stop`, one at a time.
pub(crate) async fn run_commands(
    base: String,
    every: Duration,
    out: Arc<Mutex<CommandStats>>,
    mut stop: watch::Receiver<bool>,
) {
    // Longer than the worst legitimate answer: queue wait 10 s + 2 × 2 s ack timeouts.
    let client = Client::with_timeout(Duration::from_secs(20));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let url = format!("{base}/api/v1/video/select");
    let mut i: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stopped(&mut stop) => return,
        }
        let body = format!("{{\"payload\":{{\"ch\":{}}}}}", 1 + i % 3);
        i += 1;
        let t = Instant::now();
        let r = client.request("POST", &url, &body).await;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let mut s = lock(&out);
        s.sent += 1;
        match r {
            Ok((200, b)) => {
                s.ok += 1;
                s.rtt_ms.push(ms);
                let id = serde_json::from_slice::<serde_json::Value>(&b)
                    .ok()
                    .and_then(|v| v["command_id"].as_str().map(str::to_owned));
                if let Some(id) = id {
                    s.ok_ids.push(id);
                }
            }
            Ok((status, b)) => {
                let detail = serde_json::from_slice::<serde_json::Value>(&b)
                    .ok()
                    .and_then(|v| v["detail"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                s.failed.push(format!("{status} {detail}"));
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => s.timeouts += 1,
            Err(e) => s.errors.push(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::ws::parse_soak_model;

    #[test]
    fn lines_are_numbered_contacts() -> Result<(), serde_json::Error> {
        let first: serde_json::Value = serde_json::from_str(&rid_line(3, 200, 1_700_000_000_123_456_789))?;
        assert_eq!(first["type"], "CONTACT_NEW");
        assert_eq!(first["timestamp_ms"], 1_700_000_000_123u64);
        assert_eq!(first["data"]["id"], "rid:SOAK00003");
        let model = first["data"]["model"].as_str().unwrap_or_default();
        assert_eq!(parse_soak_model(model), Some((3, 1_700_000_000_123_456_789)));
        let later: serde_json::Value = serde_json::from_str(&rid_line(203, 200, 1))?;
        assert_eq!(later["type"], "CONTACT_UPDATE");
        assert_eq!(later["data"]["id"], "rid:SOAK00003");
        Ok(())
    }
}
