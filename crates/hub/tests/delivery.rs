//! Greeting, live delivery, churn, slow consumers, overflow resync, replay and heartbeat — over real sockets.

mod common;

use common::*;
use futures_util::StreamExt;
use ndefender_hub::HubConfig;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Reads VALUE frames after a greeting of value `start`, demanding exactly start+1, start+2, …
/// (and, in seq mode, consecutive seqs after `watermark`) until END. Returns how many it read.
async fn follow(ws: &mut Ws, start: u64, watermark: Option<u64>, progress: Option<&AtomicU64>) -> Res<u64> {
    let mut expect_v = start + 1;
    let mut expect_seq = watermark.map(|w| w + 1);
    loop {
        let f = recv(ws).await?;
        let k = kind(&f);
        if k != "VALUE" && k != "END" {
            return Err(format!("unexpected {k} while following at v={expect_v}").into());
        }
        if num(&f, "v") != expect_v {
            return Err(format!("gap or duplicate: got v={} expected {expect_v}", num(&f, "v")).into());
        }
        match expect_seq {
            Some(s) => {
                if f["seq"].as_u64() != Some(s) {
                    return Err(format!("seq {} expected {s}", f["seq"]).into());
                }
                expect_seq = Some(s + 1);
            }
            None => {
                if f.get("seq").is_some() {
                    return Err("seq present without ?seq=1".into());
                }
            }
        }
        if let Some(p) = progress {
            p.store(expect_v, SeqCst);
        }
        if k == "END" {
            return Ok(expect_v - start);
        }
        expect_v += 1;
    }
}

/// Reads the greeting: `(value, watermark)`; the watermark is `None` without seq mode.
async fn greeting(ws: &mut Ws, kind_expected: &str) -> Res<(u64, Option<u64>)> {
    let g = recv(ws).await?;
    if kind(&g) != kind_expected {
        return Err(format!("first frame was {g}, expected {kind_expected}").into());
    }
    Ok((num(&g, "v"), g["seq"].as_u64()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greeting_first_then_live_without_gap_or_duplicate() -> Res {
    const CLIENTS: usize = 16;
    let server = Arc::new(Server::start(cfg()).await?);
    // Widens the window between registration and greeting that the hub must bridge.
    server.svc.greeting_delay_ms.store(5, SeqCst);
    let greeted = Arc::new(AtomicUsize::new(0));

    // The publisher keeps going until every client is greeted mid-stream, then a bit more.
    let publisher = {
        let (server, greeted) = (server.clone(), greeted.clone());
        tokio::spawn(async move {
            let mut after = 0;
            while greeted.load(SeqCst) < CLIENTS || after < 2000 {
                if greeted.load(SeqCst) >= CLIENTS {
                    after += 1;
                }
                server.svc.bump(&server.hub)?;
                if server.svc.value() % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            server.svc.bump_as(&server.hub, "END")
        })
    };

    let mut clients = JoinSet::new();
    for i in 0..CLIENTS {
        let (server, greeted) = (server.clone(), greeted.clone());
        clients.spawn(async move {
            tokio::time::sleep(Duration::from_millis(3 * i as u64)).await;
            let query = if i % 2 == 0 { "seq=1" } else { "" };
            let mut ws = server.connect(query).await?;
            let (v, watermark) = greeting(&mut ws, "SNAPSHOT").await?;
            greeted.fetch_add(1, SeqCst);
            if (i % 2 == 0) != watermark.is_some() {
                return Err::<(u64, u64), Box<dyn std::error::Error + Send + Sync>>("seq mode mismatch".into());
            }
            if let Some(w) = watermark {
                // Process start in epoch ms × 1000.
                if w < 1_600_000_000_000_000 {
                    return Err(format!("watermark {w} is not epoch-ms based").into());
                }
            }
            let n = follow(&mut ws, v, watermark, None).await?;
            Ok((v, n))
        });
    }
    let end = tokio::time::timeout(PATIENCE, publisher).await???;
    let mut mid_stream = 0;
    while let Some(r) = clients.join_next().await {
        let (v, n) = r??;
        assert_eq!(v + n, end, "every client ends at END");
        if v > 0 && n > 1 {
            mid_stream += 1;
        }
    }
    assert_eq!(mid_stream, CLIENTS, "every client joined while events were flowing");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborting_clients_do_not_break_fanout() -> Res {
    const CHURN: usize = 200;
    const EVENTS: u64 = 10_000;
    let server = Arc::new(
        Server::start_with(
            HubConfig {
                max_clients: 1000,
                ..cfg()
            },
            Counter::new(false, 300),
            None,
        )
        .await?,
    );
    let mut survivor = server.connect("seq=1").await?;
    let (v0, w0) = greeting(&mut survivor, "SNAPSHOT").await?;
    let follower = tokio::spawn(async move {
        let n = follow(&mut survivor, v0, w0, None).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((survivor, n))
    });

    let publisher = {
        let server = server.clone();
        tokio::spawn(async move {
            for i in 0..EVENTS {
                server.svc.bump(&server.hub)?;
                if i % 32 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            server.svc.bump_as(&server.hub, "END")
        })
    };

    let mut churn = JoinSet::new();
    for i in 0..CHURN {
        let server = server.clone();
        churn.spawn(async move {
            let mut ws = server.connect(if i % 2 == 0 { "seq=1" } else { "" }).await?;
            // Some leave at once, some after reading a little, all with a TCP reset (SO_LINGER 0).
            for _ in 0..(i % 4) {
                let _ = tokio::time::timeout(Duration::from_millis(50), ws.next()).await;
            }
            if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
                #[allow(deprecated)] // set_linger is exactly the abrupt abort this test needs.
                tcp.set_linger(Some(Duration::ZERO))?;
            }
            drop(ws);
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        });
    }
    while let Some(r) = churn.join_next().await {
        r??;
    }
    let end = tokio::time::timeout(PATIENCE, publisher).await???;
    let (mut survivor, n) = tokio::time::timeout(PATIENCE, follower).await???;
    assert_eq!(v0 + n, end);

    // Every aborted connection is cleaned up and the survivor keeps receiving.
    server.wait_clients(1).await?;
    for _ in 0..100 {
        server.svc.bump(&server.hub)?;
    }
    let last = server.svc.bump_as(&server.hub, "END")?;
    let seq_before = server.hub.last_seq() - 101;
    assert_eq!(follow(&mut survivor, end, Some(seq_before), None).await? + end, last);

    // And the hub still admits and greets new clients.
    let mut fresh = server.connect("").await?;
    assert_eq!(greeting(&mut fresh, "SNAPSHOT").await?.0, last);
    Ok(())
}

/// Publishes `batches` × `per_batch` events, after each batch waiting until every fast
/// reader has caught up — the fast readers pace the test, the slow one must not.
async fn paced_publish(server: &Server, progress: &[Arc<AtomicU64>], batches: usize, per_batch: usize) -> Res<u64> {
    let mut v = 0;
    for _ in 0..batches {
        for _ in 0..per_batch {
            v = server.svc.bump(&server.hub)?;
        }
        tokio::time::timeout(PATIENCE, async {
            while progress.iter().any(|p| p.load(SeqCst) < v) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .map_err(|_| format!("fast readers stalled at v={v}: a slow client is delaying them"))?;
    }
    Ok(v)
}

async fn spawn_fast_readers(server: &Server, n: usize) -> Res<(Vec<Arc<AtomicU64>>, JoinSet<Res<u64>>)> {
    let mut progress = Vec::new();
    let mut set = JoinSet::new();
    for _ in 0..n {
        let mut ws = server.connect("seq=1").await?;
        let (v, w) = greeting(&mut ws, "SNAPSHOT").await?;
        let p = Arc::new(AtomicU64::new(v));
        progress.push(p.clone());
        set.spawn(async move { follow(&mut ws, v, w, Some(&p)).await });
    }
    Ok((progress, set))
}

fn slow_cfg(send_timeout_s: f64) -> HubConfig {
    HubConfig {
        client_queue: 16,
        send_timeout_s,
        ..cfg()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_client_does_not_delay_others_and_is_closed_as_slow() -> Res {
    let server = Server::start_with(slow_cfg(0.5), Counter::new(false, 1000), Some(4096)).await?;
    // Never read from: its socket buffers fill, then its queue, then its writer times out.
    let stalled = server.connect_small("", 4096).await?;
    let (progress, mut fast) = spawn_fast_readers(&server, 3).await?;
    server.wait_clients(4).await?;

    paced_publish(&server, &progress, 200, 8).await?;
    let end = server.svc.bump_as(&server.hub, "END")?;
    while let Some(r) = fast.join_next().await {
        assert_eq!(
            r??, end,
            "every fast reader got every event, in order, without a resync"
        );
    }
    // The stalled client was closed as a slow consumer (1008); the fast ones then left too.
    tokio::time::timeout(PATIENCE, async {
        while server.hub.stats().slow_closes == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await?;
    server.wait_clients(0).await?;
    assert_eq!(server.hub.stats().slow_closes, 1);
    drop(stalled);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflowing_client_is_resynced_then_continues() -> Res {
    // A long send timeout: this client is merely behind, never closed.
    let server = Server::start_with(slow_cfg(60.0), Counter::new(false, 1000), Some(4096)).await?;
    let mut lagging = server.connect_small("seq=1", 4096).await?;
    let (v0, w0) = greeting(&mut lagging, "SNAPSHOT").await?;
    let (progress, mut fast) = spawn_fast_readers(&server, 2).await?;

    // 1600 events of ~1 KiB: far more than the socket buffers and the 16-frame queue hold.
    paced_publish(&server, &progress, 200, 8).await?;
    let last = server.svc.bump_as(&server.hub, "END")?;
    while let Some(r) = fast.join_next().await {
        r??;
    }

    // Now it reads: runs of consecutive events, each overflow answered by a resync set
    // whose watermark the next event continues from, until the set reflecting END.
    let (mut expect_v, mut expect_seq) = (v0 + 1, w0.ok_or("no seq")? + 1);
    let mut resyncs = 0;
    let (resync_v, resync_seq) = loop {
        let f = recv(&mut lagging).await?;
        let seq = f["seq"].as_u64().ok_or("frame without seq")?;
        match kind(&f) {
            "VALUE" => {
                assert_eq!((num(&f, "v"), seq), (expect_v, expect_seq), "{f}");
                expect_v += 1;
                expect_seq += 1;
            }
            "RESYNC" => {
                resyncs += 1;
                assert!(
                    num(&f, "v") >= expect_v - 1 && seq >= expect_seq - 1,
                    "resync went backwards: {f}"
                );
                if num(&f, "v") == last {
                    break (last, seq);
                }
                expect_v = num(&f, "v") + 1;
                expect_seq = seq + 1;
            }
            other => return Err(format!("unexpected {other}: {f}").into()),
        }
    };
    assert!(resyncs >= 1, "the client really overflowed");
    assert_eq!(
        resync_seq,
        server.hub.last_seq(),
        "the last set's watermark is the newest seq"
    );
    assert_eq!(server.hub.stats().resyncs, resyncs);

    // Queued events at or below the watermark were dropped; new ones follow the set without a gap.
    for _ in 0..10 {
        server.svc.bump(&server.hub)?;
    }
    let end = server.svc.bump_as(&server.hub, "END")?;
    assert_eq!(
        follow(&mut lagging, resync_v, Some(resync_seq), None).await? + resync_v,
        end
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_replays_exactly_the_missed_events() -> Res {
    let server = Server::start_with(
        HubConfig {
            replay_buffer: 50,
            ..cfg()
        },
        Counter::new(true, 0),
        None,
    )
    .await?;
    let mut ws = server.connect("seq=1").await?;
    assert_eq!(kind(&recv(&mut ws).await?), "LOG_EVENT", "HELLO comes first");
    let (v0, _) = greeting(&mut ws, "SNAPSHOT").await?;
    for _ in 0..10 {
        server.svc.bump(&server.hub)?;
    }
    let mut seen = Vec::new();
    for _ in 0..5 {
        let f = recv(&mut ws).await?;
        seen.push((num(&f, "v"), f["seq"].as_u64().ok_or("no seq")?));
    }
    let (v5, s5) = seen[4];
    assert_eq!(v5, v0 + 5);
    drop(ws);
    for _ in 0..10 {
        server.svc.bump(&server.hub)?;
    }

    // Resume: HELLO (watermark = since), then exactly v6..v20, then live events.
    let mut ws = server.connect(&format!("since={s5}")).await?;
    let hello = recv(&mut ws).await?;
    assert_eq!((kind(&hello), hello["seq"].as_u64()), ("LOG_EVENT", Some(s5)));
    for i in 1..=15 {
        let f = recv(&mut ws).await?;
        assert_eq!(
            (kind(&f), num(&f, "v"), f["seq"].as_u64()),
            ("VALUE", v5 + i, Some(s5 + i)),
            "{f}"
        );
    }
    let live = server.svc.bump(&server.hub)?;
    let f = recv(&mut ws).await?;
    assert_eq!(
        (kind(&f), num(&f, "v")),
        ("VALUE", live),
        "no snapshot, no duplicate: {f}"
    );
    drop(ws);
    assert_eq!(server.hub.stats().replays.replayed, 1);

    // `?events=` filters the replay too.
    server.svc.bump_as(&server.hub, "OTHER")?;
    let other_seq = server.hub.last_seq();
    let mut ws = server.connect(&format!("since={s5}&events=OTHER")).await?;
    assert_eq!(kind(&recv(&mut ws).await?), "LOG_EVENT");
    let f = recv(&mut ws).await?;
    assert_eq!((kind(&f), f["seq"].as_u64()), ("OTHER", Some(other_seq)));
    drop(ws);

    // Too old (evicted), in the future, or from an earlier run: HELLO, then the resync set.
    for _ in 0..60 {
        server.svc.bump(&server.hub)?;
    }
    let last = server.hub.last_seq();
    for since in [s5, last + 1000, 1] {
        let mut ws = server.connect(&format!("since={since}")).await?;
        assert_eq!(kind(&recv(&mut ws).await?), "LOG_EVENT");
        let set = recv(&mut ws).await?;
        assert_eq!(
            (kind(&set), set["seq"].as_u64()),
            ("RESYNC", Some(last)),
            "since={since}"
        );
        assert_eq!(num(&set, "v"), server.svc.value());
    }
    assert_eq!(server.hub.stats().replays.snapshot, 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_is_broadcast_numbered_and_never_replayed() -> Res {
    let server = Server::start(HubConfig {
        heartbeat_ms: 40,
        ..cfg()
    })
    .await?;
    let validator = envelope_validator()?;
    // A filter that matches nothing: HEARTBEAT still arrives.
    let mut ws = server.connect("seq=1&events=NOTHING").await?;
    let (_, w) = greeting(&mut ws, "SNAPSHOT").await?;
    let before = w.ok_or("no seq")?;
    let mut seqs = Vec::new();
    for _ in 0..3 {
        let text = recv_text(&mut ws).await?;
        let hb: Value = serde_json::from_str(&text)?;
        assert_eq!((kind(&hb), hb["source"].as_str()), ("HEARTBEAT", Some("aggregator")));
        assert_eq!(hb["data"]["timestamp_ms"], hb["timestamp_ms"]);
        assert_valid(&validator, &text)?;
        seqs.push(hb["seq"].as_u64().ok_or("no seq")?);
    }
    assert!(seqs.windows(2).all(|p| p[0] < p[1]) && seqs[0] > before, "{seqs:?}");
    assert!(
        server
            .hub
            .stats()
            .events_published
            .get("HEARTBEAT")
            .copied()
            .unwrap_or(0)
            >= 3
    );

    // Without seq the frame is the exact §2 form.
    let mut plain = server.connect("").await?;
    greeting(&mut plain, "SNAPSHOT").await?;
    let text = recv_text(&mut plain).await?;
    assert!(
        text.starts_with(r#"{"type":"HEARTBEAT","timestamp_ms":"#) && text.ends_with("}}"),
        "{text}"
    );
    assert_valid(&validator, &text)?;

    // A since before the heartbeats replays nothing: they are numbered but not stored.
    let mut resumed = server.connect(&format!("since={before}&events=VALUE")).await?;
    let v = server.svc.bump(&server.hub)?;
    loop {
        let f = recv(&mut resumed).await?;
        match kind(&f) {
            "HEARTBEAT" if f["seq"].as_u64() > seqs.last().copied() => {}
            "VALUE" => {
                assert_eq!(num(&f, "v"), v);
                break;
            }
            other => return Err(format!("replayed {other}: {f}").into()),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_error_closes_only_that_connection_with_1011() -> Res {
    let server = Server::start(cfg()).await?;
    let mut healthy = server.connect("").await?;
    let (v, _) = greeting(&mut healthy, "SNAPSHOT").await?;
    server.svc.fail_next.store(true, SeqCst);
    let mut victim = server.connect("").await?;
    assert_eq!(recv_close(&mut victim).await?, 1011);
    server.wait_clients(1).await?;
    // The hub and the other connection carry on.
    server.svc.bump(&server.hub)?;
    let end = server.svc.bump_as(&server.hub, "END")?;
    assert_eq!(follow(&mut healthy, v, None, None).await? + v, end);
    let mut next = server.connect("").await?;
    assert_eq!(greeting(&mut next, "SNAPSHOT").await?.0, end);
    Ok(())
}
