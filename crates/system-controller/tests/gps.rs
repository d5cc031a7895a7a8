//! GPS against a fake gpsd: a TCP server in the test that speaks gpsd's JSON
//! (VERSION, DEVICES, WATCH, TPV, SKY) with scripted pauses and disconnects.

mod support;

use ndefender_tests::gpsd::{tpv, FakeGpsd, DEVICES, SKY};
use std::time::{Duration, Instant};
use support::*;

async fn controller(dir: &std::path::Path, port: u16, extra: &str) -> R<Daemon> {
    let bus = format!("unix:path={}/no-bus", dir.display());
    let cfg = format!(
        "[server]\nbind = \"127.0.0.1:{{PORT}}\"\n[system]\nlogs_dir = \"{}\"\n[audio]\nenabled = false\n[gps]\ngpsd = \"127.0.0.1:{port}\"\nstale_s = 2\n{extra}",
        dir.display()
    );
    Daemon::start(dir, &cfg, &[("DBUS_SYSTEM_BUS_ADDRESS", &bus)]).await
}

#[tokio::test]
async fn fix_dops_from_sky_no_fix_and_stale() -> R {
    let dir = tempfile::tempdir()?;
    let gpsd = FakeGpsd::start(0, DEVICES).await?;
    let d = controller(dir.path(), gpsd.port, "").await?;
    // feed until the client is connected and has the fix
    let deadline = Instant::now() + S10;
    let g = loop {
        gpsd.send(SKY);
        gpsd.send(&tpv(3, 47.3769));
        let (_, g) = d.get("/api/v1/gps").await?;
        if g["fix"] == "FIX_3D" {
            break g;
        }
        if Instant::now() > deadline {
            return Err(format!("no fix: {g}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(g["hdop"], 0.9, "DOPs come from SKY, not TPV: {g}");
    assert_eq!(g["vdop"], 1.4);
    assert_eq!(g["pdop"], 1.7);
    assert_eq!(g["altitude_m"], 408.2);
    assert_eq!(g["latitude"], 47.3769);
    assert_eq!(g["satellites"], serde_json::json!({"in_view":3,"in_use":2}));
    assert_eq!(g["source"], "gpsd");
    assert!(g["age_ms"].is_u64() && g["last_update_ms"].is_u64());
    assert!(g.get("last_error").is_none(), "{g}");

    gpsd.send(&tpv(1, 0.0));
    let g = d.wait_get("/api/v1/gps", S5, |g| g["fix"] == "NO_FIX").await?;
    assert_eq!(g["last_error"], "no_fix");
    for k in ["latitude", "longitude", "altitude_m", "speed_m_s", "heading_deg"] {
        assert!(g.get(k).is_none(), "{k} in {g}");
    }
    // silence
    let g = d
        .wait_get("/api/v1/gps", S10, |g| g["last_error"] == "gps_stale")
        .await?;
    assert_eq!(g["fix"], "NO_FIX");
    Ok(())
}

#[tokio::test]
async fn empty_devices_lost_gpsd_and_reconnect() -> R {
    let dir = tempfile::tempdir()?;
    let gpsd = FakeGpsd::start(0, r#"{"class":"DEVICES","devices":[]}"#).await?;
    let d = controller(dir.path(), gpsd.port, "").await?;
    d.wait_get("/api/v1/gps", S10, |g| g["last_error"] == "no_gps_device")
        .await?;
    let port = gpsd.kill();
    d.wait_get("/api/v1/gps", S10, |g| g["last_error"] == "gpsd_unavailable")
        .await?;
    // gpsd comes back on its port; the controller reconnects by itself
    let gpsd = FakeGpsd::start(port, DEVICES).await?;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        gpsd.send(SKY);
        gpsd.send(&tpv(3, 47.0));
        let (_, g) = d.get("/api/v1/gps").await?;
        if g["fix"] == "FIX_3D" {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("did not reconnect: {g}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test]
async fn ten_hz_tpv_is_rate_limited_and_silence_has_a_floor() -> R {
    let dir = tempfile::tempdir()?;
    let gpsd = FakeGpsd::start(0, DEVICES).await?;
    let d = controller(dir.path(), gpsd.port, "[events]\nmax_silence_s = 3\n").await?;
    let deadline = Instant::now() + S10;
    loop {
        gpsd.send(SKY);
        gpsd.send(&tpv(3, 47.0));
        if d.get("/api/v1/gps").await?.1["fix"] == "FIX_3D" {
            break;
        }
        if Instant::now() > deadline {
            return Err("no fix".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut ws = connect(&d.ws_url()).await?;
    ws.frames(GREETING).await?;
    // 10 Hz, every fix a new position, for 3.5 s
    let t0 = Instant::now();
    let feeder = {
        let tx = gpsd.tx.clone();
        tokio::spawn(async move {
            for i in 0..35 {
                let _ = tx.send(tpv(3, 47.0 + f64::from(i) * 0.001));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let frames = ws.collect(Duration::from_millis(3500)).await?;
    feeder.await?;
    let updates: Vec<_> = frames.iter().filter(|v| kind(v) == "GPS_UPDATE").collect();
    let secs = t0.elapsed().as_secs_f64();
    assert!(!updates.is_empty());
    assert!(
        updates.len() as f64 <= secs.ceil() + 1.0,
        "{} GPS_UPDATE in {secs} s",
        updates.len()
    );
    // the latest state wins
    let last = updates.last().ok_or("none")?;
    assert!(last["data"]["latitude"].as_f64().unwrap_or(0.0) > 47.02, "{last}");
    // nothing changes (the same fix over and over): still one at least every max_silence_s
    let quiet = {
        let tx = gpsd.tx.clone();
        tokio::spawn(async move {
            for _ in 0..45 {
                let _ = tx.send(tpv(3, 47.5));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frames = ws.collect(Duration::from_millis(4000)).await?;
    quiet.await?;
    let n = frames.iter().filter(|v| kind(v) == "GPS_UPDATE").count();
    assert!((1..=3).contains(&n), "{n} GPS_UPDATE while nothing changed");
    Ok(())
}
