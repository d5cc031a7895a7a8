//! RemoteID feed simulator: deterministic, schema-valid, engine-like lifecycle.

use ndefender_contract::schema::Schemas;
use ndefender_devkit::remoteid::{
    generate_lines, run_remoteid_sim, FileFaults, GeneratorConfig, LineFormat, RemoteIdGenerator, RemoteIdSimConfig,
    RotateMode, Scenario, LOST_AFTER_MS, MAX_SPEED_M_S,
};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

type R = Result<(), Box<dyn std::error::Error>>;

const T0: u64 = 1_772_140_777_000;

fn cfg(seed: u64) -> GeneratorConfig {
    GeneratorConfig {
        drones: 3,
        rate_hz: 4.0,
        seed,
        lifetime_ms: (20_000, 40_000),
        ..GeneratorConfig::default()
    }
}

fn parse(lines: &[String]) -> Result<Vec<Value>, serde_json::Error> {
    lines.iter().map(|l| serde_json::from_str(l)).collect()
}

#[test]
fn same_seed_same_lines_other_seed_other_lines() {
    let a = generate_lines(cfg(5), LineFormat::default(), T0, 60_000, 137);
    let b = generate_lines(cfg(5), LineFormat::default(), T0, 60_000, 137);
    let c = generate_lines(cfg(6), LineFormat::default(), T0, 60_000, 137);
    assert!(a.len() > 100);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // The step of the injected clock does not change the content.
    let d = generate_lines(cfg(5), LineFormat::default(), T0, 60_000, 1000);
    assert_eq!(a[..50], d[..50]);
}

#[test]
fn every_line_validates_against_the_contract() -> R {
    let schemas = Schemas::load()?;
    let mut g = cfg(9);
    g.blip_prob = 0.2;
    let lines = generate_lines(g, LineFormat::default(), T0, 180_000, 250);
    let mut kinds = HashSet::new();
    for (line, v) in lines.iter().zip(parse(&lines)?) {
        schemas.validate_envelope(&v).map_err(|e| format!("{line}: {e}"))?;
        assert_eq!(v["source"], "remoteid");
        let keys: Vec<&str> = v
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(keys, ["type", "timestamp_ms", "source", "data"], "{line}");
        assert_eq!(&serde_json::to_string(&v)?, line, "compact JSON");
        kinds.insert(v["type"].as_str().unwrap_or_default().to_owned());
        if let Some(id) = v["data"]["id"].as_str() {
            assert!(id.starts_with("rid:"), "{id}");
        }
        if let Some(lat) = v["data"]["lat"].as_f64() {
            assert!(v["data"]["lon"].is_number(), "lat and lon together");
            assert_eq!((lat * 1e7).round() / 1e7, lat, "7 decimals");
        }
    }
    for k in ["CONTACT_NEW", "CONTACT_UPDATE", "CONTACT_LOST", "TELEMETRY_UPDATE"] {
        assert!(kinds.contains(k), "no {k} in {kinds:?}");
    }
    Ok(())
}

#[test]
fn lifecycle_mirrors_the_engine() -> R {
    let lines = generate_lines(cfg(3), LineFormat::default(), T0, 200_000, 100);
    let events = parse(&lines)?;
    let mut first_seen: HashMap<String, (String, u64)> = HashMap::new();
    let mut last_seen: HashMap<String, u64> = HashMap::new();
    let mut last_event: HashMap<String, (u64, Value)> = HashMap::new();
    let mut lost = 0;
    let mut telemetry_times = Vec::new();
    for e in &events {
        let ty = e["type"].as_str().unwrap_or_default();
        let ts = e["timestamp_ms"].as_u64().unwrap_or_default();
        let d = &e["data"];
        match ty {
            "CONTACT_NEW" | "CONTACT_UPDATE" => {
                let id = d["id"].as_str().unwrap_or_default().to_owned();
                assert_eq!(
                    d["last_seen_ts"].as_u64(),
                    Some(ts),
                    "contact lines carry the frame time"
                );
                first_seen.entry(id.clone()).or_insert((ty.to_owned(), ts));
                if let Some((prev_ts, prev)) = last_event.get(&id) {
                    let moved = prev.get("lat") != d.get("lat") || prev.get("lon") != d.get("lon");
                    let op = prev.get("operator_id") != d.get("operator_id");
                    assert!(ts - prev_ts >= 1000 || moved || op, "UPDATE rule: {e}");
                    // Sticky fields: a model once known stays.
                    if prev.get("model").is_some() {
                        assert_eq!(prev.get("model"), d.get("model"));
                    }
                    // ≤ 25 m/s between events (plus rounding).
                    if let (Some(la0), Some(lo0), Some(la1), Some(lo1)) = (
                        prev["lat"].as_f64(),
                        prev["lon"].as_f64(),
                        d["lat"].as_f64(),
                        d["lon"].as_f64(),
                    ) {
                        let dy = (la1 - la0) * 111_320.0;
                        let dx = (lo1 - lo0) * 111_320.0 * la0.to_radians().cos();
                        let dt = (ts - prev_ts) as f64 / 1000.0;
                        assert!(dx.hypot(dy) <= MAX_SPEED_M_S * dt + 0.1, "too fast: {e}");
                    }
                    assert!(d["speed_m_s"].as_f64().unwrap_or(0.0) <= MAX_SPEED_M_S);
                }
                last_seen.insert(id.clone(), ts);
                last_event.insert(id, (ts, d.clone()));
            }
            "CONTACT_LOST" => {
                lost += 1;
                let id = d["id"].as_str().unwrap_or_default();
                let seen = d["last_seen_ts"].as_u64().unwrap_or_default();
                assert!(ts - seen > LOST_AFTER_MS, "LOST strictly after 15 s: {e}");
                assert!(ts - seen <= LOST_AFTER_MS + 1000, "LOST promptly: {e}");
                if let Some(l) = last_seen.get(id) {
                    assert!(*l <= seen);
                }
                last_event.remove(id);
            }
            "TELEMETRY_UPDATE" => {
                assert_eq!(d["state"], "ok");
                assert_eq!(d["mode"], "live");
                assert_eq!(d["last_update_ms"].as_u64(), Some(ts));
                telemetry_times.push(ts);
            }
            other => return Err(format!("unexpected {other}").into()),
        }
    }
    assert!(
        first_seen.values().all(|(ty, _)| ty == "CONTACT_NEW"),
        "NEW before any UPDATE"
    );
    assert!(first_seen.len() > 3, "drones come and go");
    assert!(lost >= 3);
    assert!(
        telemetry_times.windows(2).all(|w| w[1] - w[0] >= 1000),
        "≤ 1 TELEMETRY_UPDATE/s"
    );
    Ok(())
}

#[test]
fn legacy_formats() -> R {
    let fmt = LineFormat {
        legacy_timestamp: true,
        legacy_last_ts: true,
        seconds: true,
    };
    let lines = generate_lines(cfg(1), fmt, T0, 5_000, 500);
    let events = parse(&lines)?;
    assert!(!events.is_empty());
    for e in &events {
        assert!(e.get("timestamp_ms").is_none());
        let ts = e["timestamp"].as_f64().ok_or("no timestamp")?;
        assert!(ts < 1e11, "seconds");
        if e["type"] == "TELEMETRY_UPDATE" {
            assert!(e["data"].get("last_ts").is_some() && e["data"].get("last_update_ms").is_none());
        }
    }
    Ok(())
}

#[test]
fn markers_only_when_asked() -> R {
    let plain = generate_lines(cfg(2), LineFormat::default(), T0, 30_000, 250).join("\n");
    assert!(!plain.to_lowercase().contains("testdrone") && !plain.contains("warmstart"));
    let mut c = cfg(2);
    c.marker = Some("testdrone".into());
    let marked = generate_lines(c, LineFormat::default(), T0, 30_000, 250);
    assert!(marked.iter().any(|l| l.contains("testdrone")));
    Ok(())
}

#[test]
fn replay_scenario() -> R {
    let schemas = Schemas::load()?;
    let mut c = cfg(4);
    c.scenario = Scenario::Replay {
        speed: 2.0,
        recorded_age_ms: 3_600_000,
        frames: 120,
        progress_every: Some(40),
    };
    let lines = generate_lines(c, LineFormat::default(), T0, 60_000, 100);
    let events = parse(&lines)?;
    for e in &events {
        schemas.validate_envelope(e)?;
    }
    let states: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "REPLAY_STATE")
        .filter_map(|e| e["data"]["state"].as_str())
        .collect();
    assert_eq!(states, ["start", "progress", "progress", "done"]);
    assert_eq!(
        events.first().map(|e| e["type"].clone()),
        Some(Value::from("REPLAY_STATE"))
    );
    assert_eq!(
        events.last().map(|e| e["data"]["position"].clone()),
        Some(Value::from(120))
    );
    for e in events
        .iter()
        .filter(|e| e["type"] == "CONTACT_NEW" || e["type"] == "CONTACT_UPDATE")
    {
        let ts = e["timestamp_ms"].as_u64().unwrap_or_default();
        assert!(ts < T0 - 3_000_000, "recorded (old) frame times");
    }
    assert!(events
        .iter()
        .filter(|e| e["type"] == "TELEMETRY_UPDATE")
        .all(|e| e["data"]["mode"] == "replay" && e["data"]["state"] == "replay"));
    Ok(())
}

#[test]
fn next_wake_is_monotonic_and_finite() {
    let mut g = RemoteIdGenerator::new(cfg(8), T0);
    let mut now = T0;
    for _ in 0..500 {
        g.advance(now);
        let w = g.next_wake().unwrap_or(now + 1000);
        assert!(w >= now, "wake {w} before now {now}");
        now = w.max(now + 1);
    }
    assert!(now > T0 + 10_000);
}

#[tokio::test(start_paused = true)]
async fn file_writer_appends_lines_and_faults() -> R {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("remoteid_engine.jsonl");
    let sim = RemoteIdSimConfig {
        path: path.clone(),
        drones: 2,
        rate_hz: 5.0,
        seed: 11,
        faults: FileFaults {
            crlf: true,
            invalid_utf8_every: 10,
            malformed_every: 15,
            partial_every: 3,
            partial_pause_ms: 5,
            ..FileFaults::default()
        },
        ..RemoteIdSimConfig::default()
    };
    run_remoteid_sim(sim, tokio::time::sleep(Duration::from_secs(20))).await?;
    let bytes = std::fs::read(&path)?;
    assert!(bytes.ends_with(b"\r\n"));
    let text = String::from_utf8_lossy(&bytes);
    let mut ok = 0;
    let mut bad = 0;
    for l in text.split("\r\n").filter(|l| !l.is_empty()) {
        match serde_json::from_str::<Value>(l) {
            Ok(v) if v.get("data").is_some() => ok += 1,
            _ => bad += 1,
        }
    }
    assert!(ok > 20, "{ok}");
    assert!(bad >= 2, "{bad}");
    assert!(std::str::from_utf8(&bytes).is_err(), "invalid UTF-8 injected");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn file_writer_quiet_and_rotation() -> R {
    let dir = tempfile::tempdir()?;
    let quiet = dir.path().join("quiet.jsonl");
    run_remoteid_sim(
        RemoteIdSimConfig {
            path: quiet.clone(),
            quiet: true,
            ..RemoteIdSimConfig::default()
        },
        tokio::time::sleep(Duration::from_secs(10)),
    )
    .await?;
    assert_eq!(std::fs::metadata(&quiet)?.len(), 0);

    for mode in [RotateMode::Rename, RotateMode::CopyTruncate] {
        let path = dir.path().join(format!("{mode:?}.jsonl"));
        run_remoteid_sim(
            RemoteIdSimConfig {
                path: path.clone(),
                faults: FileFaults {
                    rotate_every: 25,
                    rotate_mode: Some(mode),
                    ..FileFaults::default()
                },
                ..RemoteIdSimConfig::default()
            },
            tokio::time::sleep(Duration::from_secs(30)),
        )
        .await?;
        let rotated = std::fs::read_to_string(dir.path().join(format!("{mode:?}.jsonl.1")))?;
        assert_eq!(rotated.lines().count(), 25, "{mode:?}");
        let current = std::fs::read_to_string(&path)?;
        assert!(current.lines().count() < 25, "{mode:?}");
        for l in rotated.lines().chain(current.lines()) {
            serde_json::from_str::<Value>(l)?;
        }
    }
    Ok(())
}
