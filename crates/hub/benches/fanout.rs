//! Fan-out throughput over real WebSocket connections on loopback.
//!
//! For 1, 10 and 100 clients: publish N RF_CONTACT_UPDATE envelopes (~300 B of data,
//! ~430 B on the wire) as fast as `publish` allows and time until every client has
//! received all of them. The client queue is sized to hold the whole burst, so the
//! figures are delivery throughput, not resync behaviour. Clients run in the same
//! process and share the CPU with the hub, so these are lower bounds for the hub alone.
//!
//! Run: `cargo bench -p ndefender-hub --bench fanout`

use axum::Router;
use futures_util::StreamExt;
use ndefender_contract::{Envelope, Source};
use ndefender_hub::{Greeting, GreetingSource, Hub, HubConfig};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

type Res<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const DATA: &str = r#"{"id":"rf:5658000000","freq_hz":5658000000,"bucket_hz":5658000000,"band":"5G8","snr_db":31.5,"peak_db":-38.2,"noise_floor_db":-69.7,"bandwidth_class":"wide","confidence":0.63,"features":{"prominence_db":29.8,"cluster_size":3686,"pattern_hint":"raceband_r1","hop_hint":"none","bandwidth_est_hz":18000000.0,"burstiness":0.0,"control_score":0.0}}"#;

struct Empty;
impl GreetingSource for Empty {
    fn greeting(&self, hub: &Hub) -> Greeting {
        Greeting {
            envelopes: Vec::new(),
            watermark: hub.last_seq(),
        }
    }
    fn resync(&self, hub: &Hub) -> Greeting {
        self.greeting(hub)
    }
}

struct Row {
    clients: usize,
    events: usize,
    publish_per_s: f64,
    per_client_per_s: f64,
    slowest_client_per_s: f64,
    frames_per_s: f64,
    mib_per_s: f64,
    resyncs: u64,
}

async fn run(clients: usize, events: usize) -> Res<Row> {
    let hub = Hub::new(
        HubConfig {
            heartbeat_ms: 0,
            max_clients: clients + 1,
            client_queue: events + 16,
            ..HubConfig::default()
        },
        Arc::new(Empty),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().route("/api/v1/ws", hub.ws_route());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut readers = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/ws")).await?;
        readers.push(ws);
    }
    while hub.client_count() < clients {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for mut ws in readers {
        tasks.push(tokio::spawn(async move {
            let mut got = 0usize;
            let mut bytes = 0usize;
            while got < events {
                match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) => {
                        got += 1;
                        bytes += t.len();
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => return Err::<_, Box<dyn std::error::Error + Send + Sync>>("client stream ended early".into()),
                }
            }
            Ok((start.elapsed(), bytes))
        }));
    }

    let data: Box<RawValue> = RawValue::from_string(DATA.to_owned())?;
    let t0 = Instant::now();
    for i in 0..events {
        let env = Envelope::from_raw(
            "RF_CONTACT_UPDATE",
            1_772_140_777_119 + i as u64,
            Source::Antsdr,
            data.clone(),
        )?;
        hub.publish(env);
        if i % 256 == 255 {
            // Let readers and writers run on a 2-core box instead of queueing everything first.
            tokio::task::yield_now().await;
        }
    }
    let publish_elapsed = t0.elapsed();

    let mut slowest = Duration::ZERO;
    let mut sum_rate = 0.0;
    let mut total_bytes = 0usize;
    for t in tasks {
        let (elapsed, bytes) = t.await??;
        slowest = slowest.max(elapsed);
        sum_rate += events as f64 / elapsed.as_secs_f64();
        total_bytes += bytes;
    }
    let resyncs = hub.stats().resyncs;
    hub.shutdown().await;
    server.abort();
    Ok(Row {
        clients,
        events,
        publish_per_s: events as f64 / publish_elapsed.as_secs_f64(),
        per_client_per_s: sum_rate / clients as f64,
        slowest_client_per_s: events as f64 / slowest.as_secs_f64(),
        frames_per_s: (clients * events) as f64 / slowest.as_secs_f64(),
        mib_per_s: total_bytes as f64 / slowest.as_secs_f64() / (1024.0 * 1024.0),
        resyncs,
    })
}

fn main() -> Res {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let frame = Envelope::from_raw(
        "RF_CONTACT_UPDATE",
        1_772_140_777_119,
        Source::Antsdr,
        RawValue::from_string(DATA.to_owned())?,
    )?
    .to_json(None, ndefender_contract::TimestampField::TimestampMs);
    let rows = runtime.block_on(async {
        // Warm-up, so the first row does not pay for page faults and allocator growth.
        run(10, 5_000).await?;
        let mut rows = Vec::new();
        for (clients, events) in [(1, 50_000), (10, 50_000), (100, 10_000)] {
            rows.push(run(clients, events).await?);
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(rows)
    })?;
    println!("data {} B, frame {} B, worker threads 2", DATA.len(), frame.len());
    println!();
    println!("| clients | envelopes | publish calls/s | delivered/s per client (mean) | delivered/s slowest client | total frames/s | MiB/s | resyncs |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {} |",
            r.clients,
            r.events,
            r.publish_per_s,
            r.per_client_per_s,
            r.slowest_client_per_s,
            r.frames_per_s,
            r.mib_per_s,
            r.resyncs
        );
    }
    Ok(())
}
