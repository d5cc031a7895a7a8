//! The real binary with real HTTP and WebSocket clients (antsdr-scan §10, §11, §15): config
//! checks, autostart, schema-valid REST bodies, JSONL and WS frames, errors and limits,
//! replay, rotation and SIGTERM.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::daemon::*;
use support::*;

const S5: Duration = Duration::from_secs(5);
const S10: Duration = Duration::from_secs(10);

fn kind(v: &Value) -> &str {
    v["type"].as_str().unwrap_or_default()
}

fn is_contact(v: &Value) -> bool {
    kind(v).starts_with("RF_CONTACT_")
}

fn nested_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

#[test]
fn repository_config_equals_builtin_defaults() -> R {
    use ndefender_antsdr_scan::config::ScanConfig;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/antsdr-scan.toml");
    let from_file: ScanConfig = ndefender_service::config::load(Some(&path), Vec::<(String, String)>::new())?;
    assert_eq!(from_file, ScanConfig::default());
    let text = std::fs::read_to_string(&path)?;
    let file: toml::Table = text.parse()?;
    fn walk(defaults: &toml::Table, file: &toml::Table, at: &str) {
        for (k, v) in defaults {
            let here = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
            let f = file.get(k);
            assert!(f.is_some(), "config/antsdr-scan.toml lacks {here}");
            if let (toml::Value::Table(d), Some(toml::Value::Table(f))) = (v, f) {
                walk(d, f, &here);
            }
        }
    }
    let defaults = toml::Value::try_from(ScanConfig::default())?;
    walk(defaults.as_table().ok_or("table")?, &file, "");
    Ok(())
}

#[test]
fn check_config_accepts_the_repository_file_and_names_bad_keys() -> R {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/antsdr-scan.toml");
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&repo)
        .arg("--check-config")
        .output()?;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = std::process::Command::new(BIN)
        .arg("--check-config")
        .env("NDEFENDER_API__API_KEY", "hunter2")
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("api_key = \"***\"") && !text.contains("hunter2"),
        "{text}"
    );
    let out = std::process::Command::new(BIN)
        .arg("--check-config")
        .env("NDEFENDER_RADIO__FFT_SIZ", "1024")
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("radio.fft_siz"));
    let dir = tempfile::tempdir()?;
    let bad_plan = dir.path().join("p.toml");
    std::fs::write(
        &bad_plan,
        "name = \"x\"\nband = \"B\"\nstart_hz = 900000000\nstop_hz = 910000000\nstpe_hz = 1\n",
    )?;
    let out = std::process::Command::new(BIN)
        .arg("--check-config")
        .env("NDEFENDER_SCAN__PLAN_DIR", dir.path())
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stpe_hz"));
    let out = std::process::Command::new(BIN)
        .arg("--check-config")
        .env("NDEFENDER_RADIO__SOURCE", "iio")
        .output()?;
    let want = if cfg!(feature = "iio") { 0 } else { 2 };
    assert_eq!(
        out.status.code(),
        Some(want),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn bench_dsp_prints_its_headline_first() -> R {
    let out = std::process::Command::new(BIN)
        .args(["--bench-dsp", "--seconds", "0.2"])
        .env("NDEFENDER_RADIO__FFT_SIZE", "1024")
        .output()?;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout)?;
    let first = text.lines().next().unwrap_or_default();
    let mut parts = first.split(' ');
    assert_eq!(parts.next(), Some("dsp_msps_per_core"));
    let v: f64 = parts.next().unwrap_or_default().parse()?;
    assert!(v > 0.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autostart_rest_bodies_jsonl_and_ws_frames_are_valid() -> R {
    let dir = tempfile::tempdir()?;
    let d = Daemon::start(dir.path(), "", &[]).await?;
    let s = schemas();
    let mut ws = Ws::open(&d.ws("/api/v1/events")).await?;
    let mut alias = Ws::open(&d.ws("/api/v1/ws")).await?;
    let new = ws.wait_for(S10, |v| kind(v) == "RF_CONTACT_NEW").await?;
    s.validate_envelope(&new)?;
    assert!(
        new.get("timestamp").is_some() && new.get("timestamp_ms").is_none(),
        "{new}"
    );
    assert_eq!(new["source"], "antsdr");
    alias.wait_for(S10, is_contact).await?;
    // several frames, every one valid
    for _ in 0..3 {
        let v = ws.wait_for(S10, |_| true).await?;
        s.validate_envelope(&v)?;
    }

    let base = d.base();
    for (path, schema) in [
        ("device", "AntSDRDeviceState.json"),
        ("sweep/state", "AntSDRSweepState.json"),
        ("gain", "AntSDRGainState.json"),
        ("stats", "AntSDRStats.json"),
    ] {
        let (code, _, v) = get(&format!("{base}/api/v1/{path}")).await?;
        assert_eq!(code, 200, "{path}");
        s.validate(schema, &v).map_err(|e| format!("{path}: {e}"))?;
        ndefender_contract::schema::no_nulls_or_empty_objects(&v)?;
    }
    let (_, _, st) = get(&format!("{base}/api/v1/sweep/state")).await?;
    assert_eq!(
        (st["running"].as_bool(), st["active_plan"].as_str()),
        (Some(true), Some("default"))
    );
    assert_eq!(st["plans"].as_array().map(Vec::len), Some(4));
    let (_, _, dev) = get(&format!("{base}/api/v1/device")).await?;
    assert_eq!(
        (dev["connected"].as_bool(), dev["uri"].as_str()),
        (Some(true), Some("synthetic:seed=42"))
    );
    let (_, _, g) = get(&format!("{base}/api/v1/gain")).await?;
    assert_eq!(
        (g["mode"].as_str(), g["gain_db"].as_f64()),
        (Some("manual"), Some(40.0))
    );
    let (_, _, h) = get(&format!("{base}/api/v1/health")).await?;
    assert_eq!(h["status"], "ok");
    assert_eq!(h["ws_backend_connected"], false);
    let (code, _, v) = get(&format!("{base}/api/v1/version")).await?;
    assert_eq!((code, v["version"].as_str()), (200, Some("0.1.0")));
    let (code, _, cfg) = get(&format!("{base}/api/v1/config")).await?;
    assert_eq!((code, cfg["api"]["api_key"].as_str()), (200, Some("")));
    let r = reqwest::get(format!("{base}/metrics")).await?;
    let text = r.text().await?;
    for m in [
        "antsdr_steps_total",
        "antsdr_cycles_total",
        "antsdr_sweep_seconds_count",
        "antsdr_dsp_seconds_count",
        "ndefender_ws_clients",
        "antsdr_contacts{state=\"confirmed\"}",
        "ndefender_http_requests_total{route=\"/api/v1/version\",status=\"200\"} 1\n",
        "# TYPE ndefender_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(m), "metrics lack {m}");
    }

    // events/last: oldest first, same envelope as the WS, limit bounds
    let (code, _, last) = get(&format!("{base}/api/v1/events/last?limit=3")).await?;
    assert_eq!(code, 200);
    let evs = last["events"].as_array().ok_or("events")?;
    assert!(!evs.is_empty() && evs.len() <= 3);
    let times: Vec<u64> = evs.iter().filter_map(|e| e["timestamp"].as_u64()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    for e in evs {
        s.validate_envelope(e)?;
        assert!(is_contact(e), "only RF_CONTACT_* in the ring: {e}");
    }
    let (code, _, v) = get(&format!("{base}/api/v1/events/last?limit=501")).await?;
    assert_eq!((code, nested_code(&v)), (400, "invalid_query"));
    let (code, _, v) = get(&format!("{base}/api/v1/nope")).await?;
    assert_eq!((code, nested_code(&v)), (404, "not_found"));
    let (code, _, v) = post(&format!("{base}/api/v1/stats"), "").await?;
    assert_eq!((code, nested_code(&v)), (405, "method_not_allowed"));

    // JSONL: timestamp_ms, every line valid, the heartbeat present
    d.wait_line(S10, |v| kind(v) == "RF_SCAN_STATS").await?;
    let lines = d.lines()?;
    assert!(lines.iter().any(|v| kind(v) == "RF_CONTACT_NEW"));
    for l in &lines {
        assert!(l.get("timestamp_ms").is_some() && l.get("timestamp").is_none(), "{l}");
        s.validate_envelope(l)?;
        if is_contact(l) {
            assert_eq!(l["data"]["features"].as_object().map(|o| o.len()), Some(11));
            assert!(l["data"]["freq_hz"].is_u64());
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamp_field_is_configurable() -> R {
    let dir = tempfile::tempdir()?;
    let d = Daemon::start(dir.path(), "", &[("NDEFENDER_API__TIMESTAMP_FIELD", "timestamp_ms")]).await?;
    let mut ws = Ws::open(&d.ws("/api/v1/events")).await?;
    let v = ws.wait_for(S10, is_contact).await?;
    assert!(v.get("timestamp_ms").is_some() && v.get("timestamp").is_none(), "{v}");
    schemas().validate_envelope(&v)?;
    let (_, _, last) = get(&format!("{}/api/v1/events/last?limit=1", d.base())).await?;
    assert!(last["events"][0].get("timestamp_ms").is_some(), "{last}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_is_enforced_except_on_health() -> R {
    let dir = tempfile::tempdir()?;
    let d = Daemon::start(dir.path(), "", &[("NDEFENDER_API__API_KEY", "s3cret")]).await?;
    let base = d.base();
    let (code, _, v) = get(&format!("{base}/api/v1/stats")).await?;
    assert_eq!((code, nested_code(&v)), (401, "unauthorized"));
    assert!(v["error"]["message"].is_string());
    let (code, _, _) = get(&format!("{base}/api/v1/health")).await?;
    assert_eq!(code, 200);
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/stats"))
        .header("X-API-Key", "s3cret")
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 200);
    let (code, _, _) = get(&format!("{base}/api/v1/stats?api_key=s3cret")).await?;
    assert_eq!(code, 200);
    let refused = Ws::refused(&d.ws("/api/v1/events"))
        .await?
        .ok_or("upgraded without a key")?;
    assert_eq!((refused.0, nested_code(&refused.2)), (401, "unauthorized"));
    assert!(Ws::refused(&d.ws("/api/v1/events?api_key=s3cret")).await?.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_26th_ws_client_gets_429_before_the_upgrade() -> R {
    let dir = tempfile::tempdir()?;
    let d = Daemon::start(dir.path(), "", &[]).await?;
    let mut clients = Vec::new();
    for _ in 0..25 {
        clients.push(Ws::open(&d.ws("/api/v1/events")).await?);
    }
    let (code, retry, body) = Ws::refused(&d.ws("/api/v1/ws")).await?.ok_or("26th upgraded")?;
    assert_eq!(
        (code, retry.as_deref(), nested_code(&body)),
        (429, Some("5"), "client_limit_reached")
    );
    // the admitted clients still receive events
    clients[24].wait_for(S10, is_contact).await?;
    drop(clients);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_select_plans_apply_gain_and_refuse_bad_payloads() -> R {
    let dir = tempfile::tempdir()?;
    let d = Daemon::start(dir.path(), "", &[UNSAFE_ON]).await?;
    let b = d.base();
    let (code, _, r) = post(
        &format!("{b}/api/v1/sweep/start"),
        r#"{"payload":{"plan":"analog_5g8"},"confirm":false}"#,
    )
    .await?;
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        (r["command"].as_str(), r["accepted"].as_bool()),
        (Some("sweep/start"), Some(true))
    );
    assert!(r["detail"].is_null() && r["command_id"].as_str().is_some_and(|s| s.len() == 36));
    let deadline = tokio::time::Instant::now() + S5;
    loop {
        let (_, _, st) = get(&format!("{b}/api/v1/sweep/state")).await?;
        if st["active_plan"] == "video_5g8" {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("plan not switched: {st}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, _, v) = post(&format!("{b}/api/v1/sweep/start"), r#"{"payload":{"plan":"nope"}}"#).await?;
    assert_eq!((code, nested_code(&v)), (400, "invalid_payload"));
    let (code, _, v) = post(
        &format!("{b}/api/v1/sweep/start"),
        r#"{"payload":{"plan":"video_5g8","x":1}}"#,
    )
    .await?;
    assert_eq!((code, nested_code(&v)), (400, "invalid_payload"));
    let (code, _, v) = post(&format!("{b}/api/v1/sweep/start"), "{nope").await?;
    assert_eq!((code, nested_code(&v)), (400, "invalid_json"));

    let (code, _, r) = post(
        &format!("{b}/api/v1/gain/set"),
        r#"{"payload":{"mode":"manual","gain_db":30.0}}"#,
    )
    .await?;
    assert_eq!(code, 200, "{r}");
    let (_, _, g) = get(&format!("{b}/api/v1/gain")).await?;
    assert_eq!(
        (g["mode"].as_str(), g["gain_db"].as_f64()),
        (Some("manual"), Some(30.0))
    );
    schemas().validate("AntSDRGainState.json", &g)?;
    let (code, _, v) = post(
        &format!("{b}/api/v1/gain/set"),
        r#"{"payload":{"mode":"manual","gain_db":100}}"#,
    )
    .await?;
    assert_eq!((code, nested_code(&v)), (400, "invalid_payload"));

    let (code, _, v) = post(&format!("{b}/api/v1/device/reset"), r#"{"payload":{}}"#).await?;
    assert_eq!((code, nested_code(&v)), (400, "confirm_required"));
    let (code, _, r) = post(&format!("{b}/api/v1/device/reset"), r#"{"payload":{},"confirm":true}"#).await?;
    assert_eq!((code, r["command"].as_str()), (200, Some("device/reset")));

    let (code, _, r) = post(&format!("{b}/api/v1/sweep/stop"), "").await?;
    assert_eq!(code, 200, "{r}");
    let (code, _, v) = post(&format!("{b}/api/v1/sweep/stop"), "").await?;
    assert_eq!((code, nested_code(&v)), (409, "invalid_state"));
    let (code, _, v) = post(&format!("{b}/api/v1/run/start"), "").await?;
    assert_eq!((code, v["status"].as_str()), (200, Some("ok")));
    Ok(())
}

/// `api.allow_unsafe` is off by default (issue 13 §8); tests of reset/calibrate turn it on.
const UNSAFE_ON: (&str, &str) = ("NDEFENDER_API__ALLOW_UNSAFE", "true");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_reset_and_calibrate_are_refused_by_default() -> R {
    let dir = tempfile::tempdir()?;
    let d = Daemon::start(dir.path(), "", &[]).await?;
    let b = d.base();
    for (route, body) in [
        ("device/reset", r#"{"payload":{},"confirm":true}"#),
        ("device/calibrate", r#"{"payload":{"kind":"rf_dc"},"confirm":true}"#),
    ] {
        let (code, _, v) = post(&format!("{b}/api/v1/{route}"), body).await?;
        assert_eq!((code, nested_code(&v)), (403, "unsafe_disabled"), "{route}: {v}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_have_separate_buckets_with_retry_after() -> R {
    let dir = tempfile::tempdir()?;
    let d = Daemon::start(dir.path(), "", &[UNSAFE_ON]).await?;
    let b = d.base();
    for i in 0..10 {
        let (code, _, v) = post(&format!("{b}/api/v1/sweep/start"), r#"{"payload":{"plan":"nope"}}"#).await?;
        assert_eq!(code, 400, "request {i}: {v}");
    }
    let (code, h, v) = post(&format!("{b}/api/v1/sweep/start"), "").await?;
    assert_eq!((code, nested_code(&v)), (429, "rate_limited"));
    assert!(h.get("retry-after").is_some());
    for _ in 0..2 {
        let (code, _, v) = post(&format!("{b}/api/v1/device/reset"), r#"{"confirm":true}"#).await?;
        assert_eq!(code, 200, "{v}");
    }
    let (code, h, v) = post(
        &format!("{b}/api/v1/device/calibrate"),
        r#"{"payload":{"kind":"rf_dc"},"confirm":true}"#,
    )
    .await?;
    assert_eq!((code, nested_code(&v)), (429, "rate_limited"));
    assert!(h.get("retry-after").is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_of_a_recording_goes_to_ws_and_never_to_the_live_log() -> R {
    let dir = tempfile::tempdir()?;
    let rec = dir.path().join("rec");
    let out = std::process::Command::new(BIN)
        .args(["record", "--plan", "control_915", "--sweeps", "30", "--out"])
        .arg(&rec)
        .env("NDEFENDER_SYNTHETIC__CLOCK", "virtual")
        .env("NDEFENDER_RADIO__FFT_SIZE", "1024")
        .env("NDEFENDER_RADIO__DC_GUARD_HZ", "40000.0")
        .output()?;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let meta = dir.path().join("rec.sigmf-meta");
    assert!(meta.exists());

    let d = Daemon::start(dir.path(), "", &[]).await?;
    let b = d.base();
    let body = json!({"log_path": meta}).to_string();
    let (code, _, v) = post(&format!("{b}/api/v1/run/replay"), &body).await?;
    assert_eq!((code, nested_code(&v)), (409, "invalid_state"), "live scan running");
    let (code, _, _) = post(&format!("{b}/api/v1/sweep/stop"), "").await?;
    assert_eq!(code, 200);
    let live_before = std::fs::read_to_string(d.jsonl()).unwrap_or_default();
    let mut ws = Ws::open(&d.ws("/api/v1/events")).await?;
    let (code, _, v) = post(&format!("{b}/api/v1/run/replay"), &body).await?;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["frames"], 60);
    assert!(v["events_emitted"].as_u64().is_some_and(|n| n >= 1), "{v}");
    let e = ws.wait_for(S5, |v| kind(v) == "RF_CONTACT_NEW").await?;
    assert_eq!(e["data"]["id"], "rf:915000000");
    schemas().validate_envelope(&e)?;
    let live_after = std::fs::read_to_string(d.jsonl()).unwrap_or_default();
    assert!(
        !live_after[live_before.len().min(live_after.len())..].contains("RF_CONTACT_NEW"),
        "replay wrote the live JSONL"
    );
    let out_path = dir.path().join("replayed.jsonl");
    let body2 = json!({"payload": {"log_path": meta, "output_path": out_path, "max_events": 1}}).to_string();
    let (code, _, v) = post(&format!("{b}/api/v1/run/replay"), &body2).await?;
    assert_eq!((code, v["events_emitted"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(std::fs::read_to_string(&out_path)?.lines().count(), 1);

    let live = json!({"log_path": meta, "output_path": d.jsonl()}).to_string();
    let (code, _, v) = post(&format!("{b}/api/v1/run/replay"), &live).await?;
    assert_eq!((code, nested_code(&v)), (400, "invalid_payload"));
    let (code, _, v) = post(&format!("{b}/api/v1/run/replay"), r#"{"log_path":"/etc/passwd"}"#).await?;
    assert_eq!((code, nested_code(&v)), (403, "path_not_allowed"));
    let missing = json!({"log_path": dir.path().join("missing.jsonl")}).to_string();
    let (code, _, v) = post(&format!("{b}/api/v1/run/replay"), &missing).await?;
    assert_eq!((code, nested_code(&v)), (404, "not_found"));
    Ok(())
}

/// Issue 13 §8: `run/replay` writes `output_path` only inside `replay.allowed_dirs` — no `..`,
/// no symlinked directory or file leading out — and creates nothing when it refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_output_stays_inside_the_allowed_dirs() -> R {
    let dir = tempfile::tempdir()?;
    let meta = dir.path().join("log.jsonl");
    std::fs::write(&meta, "")?;
    let d = Daemon::start(dir.path(), "", &[]).await?;
    let b = d.base();
    let outside = tempfile::tempdir()?;
    let victim = outside.path().join("victim.jsonl");
    std::fs::write(&victim, "keep\n")?;
    std::os::unix::fs::symlink(outside.path(), dir.path().join("link_dir"))?;
    std::os::unix::fs::symlink(&victim, dir.path().join("link_file.jsonl"))?;
    let dotdot = format!(
        "{}/../{}/x.jsonl",
        dir.path().display(),
        outside.path().file_name().and_then(|n| n.to_str()).unwrap_or_default()
    );
    for target in [
        outside.path().join("new.jsonl"),
        std::path::PathBuf::from(dotdot),
        dir.path().join("link_dir/new.jsonl"),
        dir.path().join("link_file.jsonl"),
    ] {
        let body = json!({"log_path": meta, "output_path": target}).to_string();
        let (code, _, v) = post(&format!("{b}/api/v1/run/replay"), &body).await?;
        assert_eq!(
            (code, nested_code(&v)),
            (403, "path_not_allowed"),
            "{}: {v}",
            target.display()
        );
    }
    assert_eq!(std::fs::read_to_string(&victim)?, "keep\n");
    assert_eq!(std::fs::read_dir(outside.path())?.count(), 1, "nothing created outside");
    // Reading follows the same rule: a symlink inside that leads out is refused.
    std::os::unix::fs::symlink(&victim, dir.path().join("in.jsonl"))?;
    let body = json!({"log_path": dir.path().join("in.jsonl")}).to_string();
    let (code, _, v) = post(&format!("{b}/api/v1/run/replay"), &body).await?;
    assert_eq!((code, nested_code(&v)), (403, "path_not_allowed"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_jsonl_is_recreated_and_no_line_is_torn() -> R {
    let dir = tempfile::tempdir()?;
    let d = Daemon::start(dir.path(), "", &[]).await?;
    d.wait_line(S10, |v| kind(v) == "RF_SCAN_STATS").await?;
    let rotated = dir.path().join("logs/antsdr_scan.jsonl.1");
    std::fs::rename(d.jsonl(), &rotated)?;
    d.wait_line(S10, |v| kind(v) == "RF_SCAN_STATS").await?;
    for p in [rotated, d.jsonl()] {
        let text = std::fs::read_to_string(&p)?;
        for l in text.lines() {
            serde_json::from_str::<Value>(l).map_err(|e| format!("{}: {e}: {l}", p.display()))?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_ws_with_1001_flushes_and_exits_0_without_lost() -> R {
    let dir = tempfile::tempdir()?;
    let mut d = Daemon::start(dir.path(), "", &[]).await?;
    let mut ws = Ws::open(&d.ws("/api/v1/events")).await?;
    ws.wait_for(S10, |v| kind(v) == "RF_CONTACT_NEW").await?;
    let t = std::time::Instant::now();
    d.sigterm()?;
    assert_eq!(ws.until_end(S5).await?, ndefender_tests::ws::End::Close(1001));
    let exit = tokio::task::spawn_blocking(move || {
        let r = d.wait_exit(Duration::from_secs(5)).map_err(|e| e.to_string());
        (r, d)
    })
    .await?;
    let (code, d) = (exit.0?, exit.1);
    assert_eq!(code, Some(0));
    assert!(t.elapsed() < Duration::from_secs(5));
    let text = std::fs::read_to_string(d.jsonl())?;
    assert!(text.ends_with('\n'));
    assert!(!text.contains("RF_CONTACT_LOST"));
    Ok(())
}
