//! Issue 15 with real components: Debian's mosquitto on a free port, aggregators as
//! processes fed by the RemoteID simulator and RF feed lines, the fleet daemon, and a
//! CoT listener on loopback (UDP and TCP).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ndefender_devkit::mosquitto::{self, Broker};
use ndefender_devkit::remoteid::{run_remoteid_sim, RemoteIdSimConfig};
use ndefender_tests::{eventually, free_port, get_json, Proc, Ws, R};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// True (after printing SKIPPED) when mosquitto is missing outside CI; under CI it never skips.
fn broker_missing() -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        return false;
    }
    if mosquitto::find().is_none() {
        println!("SKIPPED: mosquitto missing (scripts/deps.sh installs it)");
        return true;
    }
    false
}

fn kv(k: &str, v: impl ToString) -> (String, String) {
    (k.to_owned(), v.to_string())
}

fn now_ms() -> u64 {
    ndefender_contract::time::now_ms()
}

fn rf_line(kind: &str, id: &str, freq: u64) -> String {
    json!({"type": kind, "timestamp_ms": now_ms(), "source": "antsdr", "data": {
        "id": id, "freq_hz": freq, "bucket_hz": freq, "band": "5G8", "snr_db": 31.5, "peak_db": -38.2,
        "noise_floor_db": -69.7, "bandwidth_class": "wide", "confidence": 0.9,
        "features": {"prominence_db": 29.8, "cluster_size": 3686, "pattern_hint": "raceband_r1", "hop_hint": "none",
          "bandwidth_est_hz": 18000000.0, "burstiness": 0.0, "hop_rate_hz": 0.0, "control_score": 0.0,
          "class_path": ["Analog","Video","RaceBand","R1"], "classification_confidence": 0.95,
          "control_correlation": false}}})
    .to_string()
}

fn append(path: &Path, line: &str) -> R {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    writeln!(f, "{line}")?;
    Ok(())
}

/// One kit: an aggregator tailing `rid` and its own RF file, uplink to `broker_url`.
struct Kit {
    agg: Proc,
    rf: PathBuf,
    _dir: tempfile::TempDir,
}

async fn start_kit(kit_id: &str, rid: &Path, extra: Vec<(String, String)>) -> R<Kit> {
    let dir = tempfile::tempdir()?;
    let rf = dir.path().join("antsdr_scan.jsonl");
    std::fs::write(&rf, "")?;
    let port = free_port()?;
    let mut env = vec![
        kv("NDEFENDER_SERVER__BIND", format!("127.0.0.1:{port}")),
        kv("NDEFENDER_STATE__DIR", dir.path().join("state").display()),
        kv("NDEFENDER_REMOTEID__JSONL_PATH", rid.display()),
        kv("NDEFENDER_REMOTEID__CONTACT_TTL_S", "120"),
        kv("NDEFENDER_ANTSDR__JSONL_PATH", rf.display()),
        kv(
            "NDEFENDER_ANTSDR__BASE_URL",
            format!("http://127.0.0.1:{}", free_port()?),
        ),
        kv("NDEFENDER_SYSTEM_CONTROLLER__ENABLED", "false"),
        kv("NDEFENDER_ESP32__ENABLED", "false"),
        kv("NDEFENDER_TAIL__START_POSITION", "beginning"),
        kv("NDEFENDER_MQTT__KIT_ID", kit_id),
        kv("NDEFENDER_MQTT__RECONNECT_MAX_S", "1.0"),
    ];
    env.extend(extra);
    let agg = Proc::start("ndefender-aggregator", dir.path(), port, "/api/v1/health", &[], &env).await?;
    Ok(Kit { agg, rf, _dir: dir })
}

/// A kit with its TAK output to `targets` (a JSON list), the full picture every second.
async fn tak_kit(kit_id: &str, rid: &Path, targets: String, extra: Vec<(String, String)>) -> R<Kit> {
    let mut env = vec![
        kv("NDEFENDER_TAK__ENABLED", "true"),
        kv("NDEFENDER_TAK__TARGETS", targets),
        kv("NDEFENDER_TAK__INTERVAL_S", "1.0"),
    ];
    env.extend(extra);
    start_kit(kit_id, rid, env).await
}

fn mqtt_env(b: &Broker) -> Vec<(String, String)> {
    vec![
        kv("NDEFENDER_MQTT__ENABLED", "true"),
        kv("NDEFENDER_MQTT__URL", b.url()),
    ]
}

fn sim(rid: &Path, drones: usize) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = watch::channel(false);
    let cfg = RemoteIdSimConfig {
        path: rid.to_path_buf(),
        drones,
        rate_hz: 2.0,
        lifetime_ms: (600_000, 600_000),
        ..Default::default()
    };
    let h = tokio::spawn(async move {
        let _ = run_remoteid_sim(cfg, async move {
            let _ = rx.wait_for(|v| *v).await;
        })
        .await;
    });
    (tx, h)
}

/// Runs the RemoteID simulator (`drones`) until the kit holds at least `n` contacts;
/// returns them.
async fn sim_until(kit: &Kit, rid: &Path, drones: usize, n: usize) -> R<BTreeMap<String, Value>> {
    let (stop_sim, sim_task) = sim(rid, drones);
    let r = eventually(Duration::from_secs(20), "contacts on the kit", || async {
        Ok((rest_contacts(&kit.agg).await?.len() >= n).then_some(()))
    })
    .await;
    let rest = rest_contacts(&kit.agg).await;
    let _ = stop_sim.send(true);
    let _ = sim_task.await;
    r?;
    rest
}

/// (retained flag, payload) of every message under `filter` within `d` of subscribing.
async fn collect(port: u16, filter: &str, d: Duration) -> R<Vec<(String, bool, Vec<u8>)>> {
    let mut o = MqttOptions::new(format!("test-{}", free_port()?), "127.0.0.1", port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(o, 16);
    client.subscribe(filter, QoS::AtLeastOnce).await?;
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + d;
    loop {
        match tokio::time::timeout_at(end, el.poll()).await {
            Err(_) => break,
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => out.push((p.topic.clone(), p.retain, p.payload.to_vec())),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("mqtt subscriber: {e}").into()),
        }
    }
    let _ = client.disconnect().await;
    Ok(out)
}

/// The retained `contacts/<id>` of a kit as id → JSON (empty payloads mean "none").
fn retained_contacts(msgs: &[(String, bool, Vec<u8>)], base: &str) -> R<BTreeMap<String, Value>> {
    let mut m = BTreeMap::new();
    for (t, retain, p) in msgs {
        if let Some(esc) = t.strip_prefix(&format!("{base}/contacts/")) {
            if *retain && !p.is_empty() {
                let id = ndefender_service::mqtt::topic_unescape(esc).ok_or("bad topic escape")?;
                m.insert(id, serde_json::from_slice(p)?);
            }
        }
    }
    Ok(m)
}

async fn rest_contacts(kit: &Proc) -> R<BTreeMap<String, Value>> {
    let (_, v) = get_json(&kit.url("/api/v1/contacts")).await?;
    let mut m = BTreeMap::new();
    for c in v["contacts"].as_array().ok_or("no contacts array")? {
        m.insert(c["id"].as_str().ok_or("contact without id")?.to_owned(), c.clone());
    }
    Ok(m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_state_on_the_broker_survives_a_broker_restart() -> R {
    if broker_missing() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let mut broker = Broker::start(dir.path(), free_port()?).await?;
    let rid = dir.path().join("remoteid_engine.jsonl");
    std::fs::write(&rid, "")?;
    let kit = start_kit("kit-a", &rid, mqtt_env(&broker)).await?;
    let (stop_sim, sim_task) = sim(&rid, 3);
    append(&kit.rf, &rf_line("RF_CONTACT_NEW", "rf:5800", 5_800_000_000))?;
    append(&kit.rf, &rf_line("RF_CONTACT_NEW", "rf:2400", 2_400_000_000))?;
    eventually(
        Duration::from_secs(20),
        "3 drones and 2 RF contacts on the kit",
        || async {
            let c = rest_contacts(&kit.agg).await?;
            Ok((c.len() >= 5).then_some(()))
        },
    )
    .await?;

    // A new subscriber gets the kit's state as retained messages, and events live.
    let msgs = collect(broker.port, "#", Duration::from_millis(2500)).await?;
    let find = |t: &str| msgs.iter().find(|(x, r, _)| x == t && *r);
    let (_, _, av) = find("ndefender/kit-a/availability").ok_or("no retained availability")?;
    assert_eq!(av.as_slice(), b"online");
    let (_, _, st) = find("ndefender/kit-a/status").ok_or("no retained status")?;
    let st: Value = serde_json::from_slice(st)?;
    assert!(st.get("contacts").is_none() && st.get("overall_ok").is_some(), "{st}");
    let events: Vec<_> = msgs.iter().filter(|(t, _, _)| t == "ndefender/kit-a/events").collect();
    assert!(!events.is_empty(), "no live events");
    for (_, retain, p) in &events {
        assert!(!retain, "events must not be retained");
        let e: Value = serde_json::from_slice(p)?;
        assert!(
            e["type"].is_string() && e["source"].is_string() && e["data"].is_object(),
            "{e}"
        );
    }
    assert!(events
        .iter()
        .any(|(_, _, p)| { serde_json::from_slice::<Value>(p).is_ok_and(|e| e["type"] == "CONTACT_UPDATE") }));
    let retained = retained_contacts(&msgs, "ndefender/kit-a")?;
    let rest = rest_contacts(&kit.agg).await?;
    assert_eq!(
        retained.keys().collect::<BTreeSet<_>>(),
        rest.keys().collect::<BTreeSet<_>>(),
        "one retained topic per live contact"
    );
    // Home Assistant: the kit's device and a tracker per RemoteID drone.
    assert!(find("homeassistant/sensor/ndefender_kit-a/battery/config").is_some());
    let trackers = msgs
        .iter()
        .filter(|(t, r, p)| *r && !p.is_empty() && t.starts_with("homeassistant/device_tracker/ndefender_kit-a/rid_"))
        .count();
    let drones = rest.values().filter(|c| c["type"] == "REMOTE_ID").count();
    assert_eq!(trackers, drones, "one device_tracker per RemoteID drone");

    // A stalled broker (SIGSTOP: connected, never reading) does not delay the kit's WebSocket.
    let mut ws = Ws::connect(&kit.agg.ws("/api/v1/ws")).await?;
    let bpid = nix::unistd::Pid::from_raw(broker.pid().ok_or("broker not running")? as i32);
    nix::sys::signal::kill(bpid, nix::sys::signal::Signal::SIGSTOP)?;
    append(&kit.rf, &rf_line("RF_CONTACT_NEW", "rf:1200", 1_200_000_000))?;
    let seen = ws
        .wait_for(Duration::from_secs(5), |v| {
            v["type"] == "RF_CONTACT_NEW" && v["data"]["id"] == "rf:1200"
        })
        .await;
    nix::sys::signal::kill(bpid, nix::sys::signal::Signal::SIGCONT)?;
    seen?;
    ws.close().await?;

    // Broker killed mid-stream; an RF contact is lost during the outage.
    broker.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    append(&kit.rf, &rf_line("RF_CONTACT_LOST", "rf:2400", 2_400_000_000))?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    broker.restart().await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let _ = stop_sim.send(true);
    let _ = sim_task.await;

    // After reconnect the broker's retained contacts equal the kit's contacts exactly.
    eventually(
        Duration::from_secs(30),
        "retained state equals the kit's contacts",
        || async {
            let msgs = collect(broker.port, "ndefender/kit-a/#", Duration::from_millis(1500)).await?;
            let retained = retained_contacts(&msgs, "ndefender/kit-a")?;
            let rest = rest_contacts(&kit.agg).await?;
            let online = msgs
                .iter()
                .any(|(t, r, p)| t == "ndefender/kit-a/availability" && *r && p == b"online");
            Ok((online && retained == rest && !rest.contains_key("rf:2400") && rest.len() >= 5).then_some(()))
        },
    )
    .await?;

    // A graceful stop says `offline` (retained).
    drop(kit);
    let msgs = collect(broker.port, "ndefender/kit-a/availability", Duration::from_millis(800)).await?;
    assert!(
        msgs.iter().any(|(_, r, p)| *r && p == b"offline"),
        "availability after the kit stopped: {msgs:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_kits_make_one_fleet_view() -> R {
    if broker_missing() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let broker = Broker::start(dir.path(), free_port()?).await?;
    // The three kits hear the same drones (one simulated sky, one feed file each reads).
    let rid = dir.path().join("remoteid_engine.jsonl");
    std::fs::write(&rid, "")?;
    let names = ["kit-a", "kit-b", "kit-c"];
    let mut kits = Vec::new();
    for n in names {
        kits.push(start_kit(n, &rid, mqtt_env(&broker)).await?);
    }
    let fleet_port = free_port()?;
    let fleet = Proc::start(
        "ndefender-fleet",
        dir.path(),
        fleet_port,
        "/api/v1/health",
        &[],
        &[
            kv("NDEFENDER_SERVER__BIND", format!("127.0.0.1:{fleet_port}")),
            kv("NDEFENDER_MQTT__URL", broker.url()),
            kv("NDEFENDER_MQTT__RECONNECT_MAX_S", "1.0"),
        ],
    )
    .await?;
    let mut ws = Ws::connect(&fleet.ws("/api/v1/ws")).await?;
    let (stop_sim, sim_task) = sim(&rid, 4);
    // One RF emitter all three kits hear, and one only kit-b hears.
    for k in &kits {
        append(&k.rf, &rf_line("RF_CONTACT_NEW", "rf:5800", 5_800_000_000))?;
    }
    append(&kits[1].rf, &rf_line("RF_CONTACT_NEW", "rf:2400", 2_400_000_000))?;

    // Live: a drone update carrying every kit in seen_by (every frame schema-checked by Ws).
    ws.wait_for(Duration::from_secs(30), |v| {
        v["type"] == "CONTACT_UPDATE" && v["data"]["seen_by"].as_array().is_some_and(|s| s.len() == 3)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop_sim.send(true);
    let _ = sim_task.await;

    let all: BTreeSet<String> = names.iter().map(|s| (*s).to_owned()).collect();
    eventually(
        Duration::from_secs(30),
        "one merged track per drone, seen by every kit",
        || {
            let (kits, fleet, all) = (&kits, &fleet, &all);
            async move {
                let mut drone_ids = BTreeSet::new();
                for k in kits {
                    for (id, c) in rest_contacts(&k.agg).await? {
                        if c["type"] == "REMOTE_ID" {
                            drone_ids.insert(id);
                        }
                    }
                }
                let (_, v) = get_json(&fleet.url("/api/v1/contacts")).await?;
                let tracks = v["contacts"].as_array().ok_or("no contacts")?;
                let seen = |c: &Value| -> BTreeSet<String> {
                    c["seen_by"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| s["kit_id"].as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let fleet_drones: BTreeSet<String> = tracks
                    .iter()
                    .filter(|c| c["type"] == "REMOTE_ID")
                    .filter_map(|c| c["id"].as_str().map(str::to_owned))
                    .collect();
                let ok = !drone_ids.is_empty()
                    && fleet_drones == drone_ids
                    && tracks
                        .iter()
                        .filter(|c| c["type"] == "REMOTE_ID")
                        .all(|c| seen(c) == *all)
                    && tracks.iter().any(|c| c["id"] == "rf:5800" && seen(c) == *all)
                    && tracks
                        .iter()
                        .any(|c| c["id"] == "rf:2400" && seen(c) == BTreeSet::from(["kit-b".to_owned()]));
                Ok(ok.then_some(()))
            }
        },
    )
    .await?;
    let (_, v) = get_json(&fleet.url("/api/v1/kits")).await?;
    let online: BTreeSet<String> = v["kits"]
        .as_array()
        .ok_or("no kits")?
        .iter()
        .filter(|k| k["online"] == true)
        .filter_map(|k| k["kit_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(online, all);
    // The fleet's snapshot validates like a kit's.
    let (_, snap) = get_json(&fleet.url("/api/v1/status")).await?;
    ndefender_tests::schemas().validate("StatusSnapshot.json", &snap)?;

    // A kit that stops leaves every track's seen_by.
    let c = kits.pop().ok_or("no kit")?;
    drop(c);
    eventually(Duration::from_secs(15), "kit-c gone from seen_by", || {
        let fleet = &fleet;
        async move {
            let (_, v) = get_json(&fleet.url("/api/v1/contacts")).await?;
            let ok = v["contacts"].as_array().ok_or("no contacts")?.iter().all(|c| {
                c["seen_by"]
                    .as_array()
                    .is_some_and(|s| s.iter().all(|x| x["kit_id"] != "kit-c"))
            });
            Ok(ok.then_some(()))
        }
    })
    .await?;
    ws.close().await?;
    drop(broker);
    Ok(())
}

/// The CoT documents read from a stream (events back to back) within `d`.
async fn read_events(stream: &mut (impl tokio::io::AsyncRead + Unpin), d: Duration) -> Vec<Vec<u8>> {
    let (mut docs, mut buf) = (Vec::new(), Vec::new());
    let end = tokio::time::Instant::now() + d;
    let mut chunk = [0u8; 65536];
    while let Ok(Ok(n)) = tokio::time::timeout_at(end, tokio::io::AsyncReadExt::read(stream, &mut chunk)).await {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(i) = buf.windows(8).position(|w| w == b"</event>") {
            docs.push(buf.drain(..i + 8).collect());
        }
    }
    docs
}

/// One parsed CoT event.
#[derive(Debug, Clone)]
struct Cot {
    uid: String,
    kind: String,
    lat: f64,
    lon: f64,
    ce: f64,
    time: std::time::SystemTime,
    stale: std::time::SystemTime,
    stale_after_time: bool,
}

/// Parses one CoT document strictly (quick-xml: well-formed, end tags matched).
fn parse_cot(doc: &[u8]) -> R<Cot> {
    use quick_xml::events::Event as X;
    let mut r = quick_xml::Reader::from_reader(doc);
    r.config_mut().check_end_names = true;
    let mut ev = None;
    let mut point = None;
    let mut depth = 0i32;
    let mut buf = Vec::new();
    loop {
        match r.read_event_into(&mut buf)? {
            X::Eof => break,
            X::Start(e) | X::Empty(e) if e.name().as_ref() == b"event" || e.name().as_ref() == b"point" => {
                let mut a = BTreeMap::new();
                for at in e.attributes() {
                    let at = at?;
                    a.insert(
                        String::from_utf8(at.key.as_ref().to_vec())?,
                        at.unescape_value()?.into_owned(),
                    );
                }
                if e.name().as_ref() == b"event" {
                    depth += 1;
                    ev = Some(a);
                } else {
                    point = Some(a);
                }
            }
            X::End(e) if e.name().as_ref() == b"event" => depth -= 1,
            _ => {}
        }
        buf.clear();
    }
    let ev = ev.ok_or("no <event>")?;
    let p = point.ok_or("no <point>")?;
    if depth != 0 {
        return Err("unbalanced <event>".into());
    }
    let t =
        |k: &str| -> R<std::time::SystemTime> { Ok(humantime::parse_rfc3339(ev.get(k).ok_or(format!("no {k}"))?)?) };
    let f = |k: &str| -> R<f64> { Ok(p.get(k).ok_or(format!("no point {k}"))?.parse()?) };
    Ok(Cot {
        uid: ev.get("uid").ok_or("no uid")?.clone(),
        kind: ev.get("type").ok_or("no type")?.clone(),
        lat: f("lat")?,
        lon: f("lon")?,
        ce: f("ce")?,
        time: t("time")?,
        stale: t("stale")?,
        stale_after_time: t("stale")? > t("time")?,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cot_listener_receives_every_contact_and_the_kit() -> R {
    let dir = tempfile::tempdir()?;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let udp_port = udp.local_addr()?.port();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let tcp_port = tcp.local_addr()?.port();
    let rid = dir.path().join("remoteid_engine.jsonl");
    std::fs::write(&rid, "")?;
    let targets = format!(r#"["udp://127.0.0.1:{udp_port}", "tcp://127.0.0.1:{tcp_port}"]"#);
    let kit = tak_kit("kit-t", &rid, targets, vec![]).await?;
    append(&kit.rf, &rf_line("RF_CONTACT_NEW", "rf:5800", 5_800_000_000))?;
    let rest = sim_until(&kit, &rid, 3, 4).await?;

    // TCP: events back to back on one stream.
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(10), tcp.accept()).await??;
    let tcp_docs = read_events(&mut stream, Duration::from_millis(3500)).await;
    let mut chunk = [0u8; 65536];
    // UDP: one event per datagram.
    let mut udp_docs = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(Ok(n)) = tokio::time::timeout_at(end, udp.recv(&mut chunk)).await {
        udp_docs.push(chunk[..n].to_vec());
    }
    for (name, docs) in [("udp", &udp_docs), ("tcp", &tcp_docs)] {
        let mut by_uid = BTreeMap::new();
        for d in docs.iter() {
            let c = parse_cot(d).map_err(|e| format!("{name}: {e}: {}", String::from_utf8_lossy(d)))?;
            by_uid.insert(c.uid.clone(), c);
        }
        let kit_ev = by_uid.get("ndefender-kit-t").ok_or(format!("{name}: no kit event"))?;
        assert_eq!(kit_ev.kind, "a-f-G-E-S");
        for (id, c) in &rest {
            let (uid, kind) = match c["type"].as_str() {
                Some("REMOTE_ID") => (format!("ndefender-kit-t-rid-{id}"), "a-u-A-M-H-Q"),
                Some("RF") => (format!("ndefender-kit-t-rf-{id}"), "a-u-A"),
                _ => continue,
            };
            let e = by_uid.get(&uid).ok_or(format!("{name}: no event for {uid}"))?;
            assert!(e.stale_after_time, "{name}: {uid} stale not after time");
            if kind == "a-u-A-M-H-Q" {
                if e.kind == kind {
                    assert!(e.lat != 0.0 && e.lon != 0.0, "{name}: drone at 0,0");
                }
            } else {
                assert_eq!(e.kind, kind);
                assert!(e.ce >= 1000.0, "{name}: RF contact ce {}", e.ce);
            }
        }
    }
    Ok(())
}

/// A test CA, a server certificate for 127.0.0.1 and a client certificate, both signed by
/// it: `(ca PEM, server chain + key, client cert PEM, client key PEM)`.
#[allow(clippy::type_complexity)]
fn test_pki() -> R<(
    String,
    (
        Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>,
        tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>,
    ),
    String,
    String,
)> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    ca.distinguished_name.push(DnType::CommonName, "ndefender test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let server_key = KeyPair::generate()?;
    let mut sp = CertificateParams::new(vec!["127.0.0.1".to_owned()])?;
    sp.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server = sp.signed_by(&server_key, &ca)?;
    let client_key = KeyPair::generate()?;
    let mut cp = CertificateParams::new(Vec::<String>::new())?;
    cp.distinguished_name.push(DnType::CommonName, "kit-s");
    cp.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = cp.signed_by(&client_key, &ca)?;
    let key = tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    Ok((
        ca.pem(),
        (vec![server.der().clone()], key),
        client.pem(),
        client_key.serialize_pem(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cot_over_tls_with_a_client_certificate() -> R {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let dir = tempfile::tempdir()?;
    let (ca_pem, (chain, key), client_pem, client_key_pem) = test_pki()?;
    let ca_file = dir.path().join("ca.pem");
    let cert_file = dir.path().join("client.pem");
    let key_file = dir.path().join("client.key");
    std::fs::write(&ca_file, &ca_pem)?;
    std::fs::write(&cert_file, &client_pem)?;
    std::fs::write(&key_file, &client_key_pem)?;

    // The TAK server side: TLS on loopback, a client certificate from the test CA required.
    // The ring provider (the workspace's) is deprecated only for lacking post-quantum kx.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c?)?;
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let server_cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();

    let rid = dir.path().join("remoteid_engine.jsonl");
    std::fs::write(&rid, "")?;
    let tls_files = vec![
        kv("NDEFENDER_TAK__CA_FILE", ca_file.display()),
        kv("NDEFENDER_TAK__CLIENT_CERT", cert_file.display()),
        kv("NDEFENDER_TAK__CLIENT_KEY", key_file.display()),
    ];
    let kit = tak_kit("kit-s", &rid, format!(r#"["tls://127.0.0.1:{port}"]"#), tls_files).await?;
    let rest = sim_until(&kit, &rid, 2, 2).await?;

    // The aggregator retries with back-off; accept until a handshake succeeds.
    let end = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut tls = loop {
        let (tcp, _) = tokio::time::timeout_at(end, listener.accept()).await??;
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp)).await {
            break s;
        }
    };
    let peer = tls
        .get_ref()
        .1
        .peer_certificates()
        .ok_or("no client certificate")?
        .to_vec();
    let client_der = rustls::pki_types::CertificateDer::pem_slice_iter(client_pem.as_bytes())
        .next()
        .ok_or("no client cert")??;
    assert_eq!(
        peer.first(),
        Some(&client_der),
        "the kit presented its client certificate"
    );

    let docs = read_events(&mut tls, Duration::from_millis(3500)).await;
    let mut by_uid = BTreeMap::new();
    for d in &docs {
        let c = parse_cot(d).map_err(|e| format!("tls: {e}: {}", String::from_utf8_lossy(d)))?;
        by_uid.insert(c.uid.clone(), c);
    }
    assert_eq!(
        by_uid.get("ndefender-kit-s").map(|c| c.kind.as_str()),
        Some("a-f-G-E-S")
    );
    let drones: Vec<&String> = rest
        .iter()
        .filter(|(_, c)| c["type"] == "REMOTE_ID")
        .map(|(id, _)| id)
        .collect();
    assert!(!drones.is_empty());
    for id in drones {
        let e = by_uid
            .get(&format!("ndefender-kit-s-rid-{id}"))
            .ok_or(format!("no CoT event for {id} over tls: {:?}", by_uid.keys()))?;
        assert!(e.stale_after_time && e.kind.starts_with("a-u-A"), "{e:?}");
    }
    Ok(())
}

/// A RemoteID engine line for a drone with its operator position.
fn rid_line(kind: &str, id: &str, (lat, lon): (f64, f64), op: (f64, f64, &str)) -> String {
    let t = now_ms();
    json!({"type": kind, "timestamp_ms": t, "source": "remoteid", "data": {
        "id": id, "type": "REMOTE_ID", "last_seen_ts": t, "operator_id": "OP-E2E", "lat": lat, "lon": lon,
        "altitude_m": 80.0, "speed_m_s": 4.0, "operator_lat": op.0, "operator_lon": op.1, "operator_alt_m": 30.0,
        "operator_location_type": op.2}})
    .to_string()
}

/// Latest CoT event per uid from UDP datagrams until `done` holds (or `d` passes), and
/// every type each uid was sent with.
async fn cot_until(
    udp: &tokio::net::UdpSocket,
    d: Duration,
    seen: &mut BTreeMap<String, (Cot, BTreeSet<String>)>,
    done: impl Fn(&BTreeMap<String, (Cot, BTreeSet<String>)>) -> bool,
) -> R {
    let end = tokio::time::Instant::now() + d;
    let mut chunk = [0u8; 65536];
    while !done(seen) {
        let n = tokio::time::timeout_at(end, udp.recv(&mut chunk))
            .await
            .map_err(|_| format!("CoT events missing after {d:?}: have {:?}", seen.keys()))??;
        let c = parse_cot(&chunk[..n]).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&chunk[..n])))?;
        let e = seen
            .entry(c.uid.clone())
            .or_insert_with(|| (c.clone(), BTreeSet::new()));
        e.1.insert(c.kind.clone());
        e.0 = c;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cot_drone_pilot_and_home_from_a_remoteid_line() -> R {
    let dir = tempfile::tempdir()?;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let udp_port = udp.local_addr()?.port();
    let rid = dir.path().join("remoteid_engine.jsonl");
    std::fs::write(&rid, "")?;
    let kit = tak_kit("kit-p", &rid, format!(r#"["udp://127.0.0.1:{udp_port}"]"#), vec![]).await?;
    let _ = &kit;
    // Drone A reports its operator live; drone B its take-off point, then (airborne, the
    // controller's GNSS now fixed) its operator live.
    let (a, b) = ("rid:SN-E2E-AAA", "rid:SN-E2E-BBB");
    append(
        &rid,
        &rid_line("CONTACT_NEW", a, (52.5, 13.4), (52.51, 13.41, "live_gnss")),
    )?;
    append(
        &rid,
        &rid_line("CONTACT_NEW", b, (52.6, 13.5), (52.61, 13.51, "takeoff")),
    )?;
    let uid = |id: &str, what: &str| format!("ndefender-kit-p-rid-{id}{what}");
    let mut seen = BTreeMap::new();
    cot_until(&udp, Duration::from_secs(20), &mut seen, |s| {
        s.contains_key(&uid(a, "-pilot")) && s.contains_key(&uid(b, "-home"))
    })
    .await?;
    assert!(
        !seen.contains_key(&uid(b, "-pilot")),
        "a take-off position is not the pilot"
    );
    append(
        &rid,
        &rid_line("CONTACT_UPDATE", b, (52.602, 13.502), (52.615, 13.515, "live_gnss")),
    )?;
    cot_until(&udp, Duration::from_secs(20), &mut seen, |s| {
        s.contains_key(&uid(b, "-pilot"))
    })
    .await?;
    // Drone C reports its take-off point and, in the same write, its live operator: both
    // lines reach the aggregator within one picture's gap, and the home point still shows.
    let c = "rid:SN-E2E-CCC";
    append(
        &rid,
        &format!(
            "{}\n{}",
            rid_line("CONTACT_NEW", c, (52.7, 13.6), (52.71, 13.61, "takeoff")),
            rid_line("CONTACT_UPDATE", c, (52.702, 13.602), (52.715, 13.615, "live_gnss"))
        ),
    )?;
    // One more full picture with every marker.
    seen.clear();
    cot_until(&udp, Duration::from_secs(20), &mut seen, |s| {
        [
            uid(a, ""),
            uid(a, "-pilot"),
            uid(b, ""),
            uid(b, "-pilot"),
            uid(b, "-home"),
            uid(c, "-pilot"),
            uid(c, "-home"),
        ]
        .iter()
        .all(|u| s.contains_key(u))
    })
    .await?;
    let expect = [
        (uid(a, ""), "a-u-A-M-H-Q", (52.5, 13.4)),
        (uid(a, "-pilot"), "a-u-G", (52.51, 13.41)),
        (uid(b, ""), "a-u-A-M-H-Q", (52.602, 13.502)),
        (uid(b, "-pilot"), "a-u-G", (52.615, 13.515)),
        (uid(b, "-home"), "b-m-p-s-p-i", (52.61, 13.51)),
        (uid(c, "-pilot"), "a-u-G", (52.715, 13.615)),
        (uid(c, "-home"), "b-m-p-s-p-i", (52.71, 13.61)),
    ];
    for (u, kind, (lat, lon)) in &expect {
        let (c, kinds) = &seen[u];
        // Stable: one uid, always the same type.
        assert_eq!(kinds.iter().collect::<Vec<_>>(), [kind], "{u}");
        assert!((c.lat - lat).abs() < 1e-6 && (c.lon - lon).abs() < 1e-6, "{u}: {c:?}");
        // Stale from the contact TTL (120 s in start_kit).
        assert_eq!(c.stale.duration_since(c.time)?, Duration::from_secs(120), "{u}");
    }
    assert!(
        !seen.contains_key(&uid(a, "-home")),
        "no take-off point was reported for A"
    );
    Ok(())
}
