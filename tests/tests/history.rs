//! Detection history on the real binaries (issue 18): the aggregator killed with SIGKILL while
//! it records 200 fixes/s, and a full filesystem under the database. Each test prints what it
//! measured (`--nocapture`) for docs/RELIABILITY.md.
//!
//! "Acknowledged" fix: one the history API returned (GET /api/v1/history/tracks/{id}) before
//! the kill. The API reads committed transactions only, so an acknowledged fix is one whose
//! batch commit had returned; after a SIGKILL every one of them must still be there.

use ndefender_tests::{eventually, get_json, metric, Stack, StackOptions, Ws, R};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIN: Duration = Duration::from_secs(60);
const DRONES: u64 = 4;

/// Both tests run a whole stack; one at a time keeps them inside the machine's two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

fn drone(prefix: &str, d: u64) -> String {
    format!("rid:{prefix}{d}")
}

/// One RemoteID fix line (contract v1.1 fields included).
fn fix_line(id: &str, ts: u64, i: u64) -> String {
    let x = i as f64 * 1e-5;
    format!(
        r#"{{"type":"CONTACT_UPDATE","timestamp_ms":{ts},"source":"remoteid","data":{{"id":"{id}","type":"REMOTE_ID","last_seen_ts":{ts},"lat":{},"lon":{},"altitude_m":120.5,"speed_m_s":7.25,"heading_deg":90.0,"operator_lat":48.0,"operator_lon":11.0,"operator_id":"OP-{id}","model":"TestCopter"}}}}"#,
        48.1 + x,
        11.5 + x
    )
}

/// Appends fix lines round-robin over the drones at `per_s` lines a second until `stop` or
/// `max` lines; returns (drone id, ts) of every line written, in order.
fn spawn_writer(
    path: PathBuf,
    prefix: &'static str,
    per_s: u64,
    max: u64,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<std::io::Result<Vec<(String, u64)>>> {
    std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        let mut written = Vec::new();
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        let start = Instant::now();
        for i in 0..max {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let id = drone(prefix, i % DRONES);
            // Distinct times per drone even when the clock did not move.
            let prev = last.get(&id).copied().unwrap_or(0);
            let ts = ndefender_contract::time::now_ms().max(prev + 1);
            last.insert(id.clone(), ts);
            f.write_all(format!("{}\n", fix_line(&id, ts, i)).as_bytes())?;
            written.push((id, ts));
            // Paced against the start, so the rate holds whatever a write cost.
            let due = start + Duration::from_micros((i + 1) * 1_000_000 / per_s);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        Ok(written)
    })
}

async fn text(url: &str) -> R<(u16, String)> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    Ok((r.status().as_u16(), r.text().await?))
}

/// The fix times the history returns for `id` (CSV export; 404 → none yet).
async fn track_times(s: &Stack, id: &str) -> R<BTreeSet<u64>> {
    let (code, body) = text(&s.aggregator.url(&format!("/api/v1/history/tracks/{id}?format=csv"))).await?;
    if code == 404 {
        return Ok(BTreeSet::new());
    }
    if code != 200 {
        return Err(format!("track {id}: {code} {body}").into());
    }
    let mut out = BTreeSet::new();
    for line in body.lines().skip(1) {
        let t = line.split(',').next().ok_or("empty CSV row")?;
        if !out.insert(t.parse::<u64>()?) {
            return Err(format!("track {id}: time {t} twice").into());
        }
    }
    Ok(out)
}

async fn all_fixes(s: &Stack, prefix: &str) -> R<BTreeSet<(String, u64)>> {
    let mut all = BTreeSet::new();
    for d in 0..DRONES {
        let id = drone(prefix, d);
        all.extend(track_times(s, &id).await?.into_iter().map(|t| (id.clone(), t)));
    }
    Ok(all)
}

async fn metrics(s: &Stack) -> R<String> {
    Ok(text(&s.aggregator.url("/metrics")).await?.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_keeps_every_acknowledged_fix_through_kill_9_and_resumes() -> R {
    let _one = SERIAL.lock().await;
    const RATE: u64 = 200;
    const KILLS: usize = 3;
    let mut s = Stack::start(StackOptions {
        drones: 0,
        esp32: false,
        aggregator_env: vec![
            kv("NDEFENDER_REMOTEID__CONTACT_TTL_S", "600"),
            // A feed checkpoint every 20 ms instead of every second: without the history
            // watermark it is then almost always ahead of the last history commit (every
            // 200 ms) when the kill comes, so a lost line shows on (nearly) every kill.
            kv("NDEFENDER_TAIL__CHECKPOINT_INTERVAL_MS", "20"),
        ],
        ..StackOptions::default()
    })
    .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(s.rid_path.clone(), "HK", RATE, 200 * 60, stop.clone());
    let mut acked_total = 0;
    let mut back = Duration::ZERO;
    for kill in 1..=KILLS {
        // Let it record for a while, then take what the API acknowledges and kill at once.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let acked = all_fixes(&s, "HK").await?;
        s.aggregator.kill9()?;
        let killed = Instant::now();
        if acked.len() < 200 * kill {
            return Err(format!("only {} fixes acknowledged before kill {kill} at {RATE}/s", acked.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        s.aggregator.restart().await?;
        back = back.max(killed.elapsed());
        let body = metrics(&s).await?;
        assert_eq!(
            metric(&body, "history_up"),
            Some(1.0),
            "the database opens after kill {kill}"
        );
        // Every acknowledged fix survived.
        let after = all_fixes(&s, "HK").await?;
        let missing: Vec<_> = acked.difference(&after).take(5).collect();
        assert!(
            missing.is_empty(),
            "kill {kill}: {} acknowledged fixes gone, e.g. {missing:?}",
            acked.difference(&after).count()
        );
        acked_total = acked.len();
    }
    // Writing resumes: three more seconds of lines, then everything written after the restart
    // is in the history.
    let restarted_at = ndefender_contract::time::now_ms();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().map_err(|_| "writer panicked")??;
    let want_new: BTreeSet<(String, u64)> = written.iter().filter(|(_, t)| *t > restarted_at).cloned().collect();
    let last = written.last().cloned().ok_or("nothing written")?;
    eventually(MIN, "the last line's fix is recorded", || async {
        let all = all_fixes(&s, "HK").await?;
        Ok(all.contains(&last).then_some(()))
    })
    .await?;
    // The four tracks are read one after the other: read them again now that the last line's
    // commit is visible, so no drone's track predates it.
    let fin = all_fixes(&s, "HK").await?;
    let not_new: Vec<_> = want_new.difference(&fin).take(5).collect();
    assert!(not_new.is_empty(), "lines after the restart missing: {not_new:?}");
    let all_written: BTreeSet<(String, u64)> = written.iter().cloned().collect();
    assert!(fin.is_subset(&all_written), "nothing but what was written");
    // Nothing lost on power loss: the feed checkpoint never runs ahead of the history commit,
    // so the lines published but not yet committed at the kill are read again after the
    // restart — every line appended before the kill ends up in the history.
    let before_kill = all_written.iter().filter(|(_, t)| *t <= restarted_at).count();
    let lost: Vec<_> = all_written.difference(&fin).take(5).collect();
    assert!(
        lost.is_empty(),
        "{} of {} lines appended never reached the history ({before_kill} appended before the last restart), e.g. {lost:?}",
        all_written.difference(&fin).count(),
        all_written.len()
    );

    // The list after the restart: the drones of the first run, with their fix counts.
    let (code, list) = get_json(&s.aggregator.url("/api/v1/history/contacts?type=remote_id&q=HK")).await?;
    assert_eq!(code, 200, "{list}");
    let rows = list["contacts"].as_array().ok_or("contacts")?;
    assert_eq!(rows.len() as u64, DRONES, "{list}");
    let counted: u64 = rows.iter().filter_map(|r| r["fixes"].as_u64()).sum();
    assert_eq!(counted, fin.len() as u64, "fix counts match the tracks");
    for row in rows {
        let id = row["id"].as_str().ok_or("contact id")?;
        let appended = written.iter().filter(|(i, _)| i == id).count() as u64;
        assert_eq!(row["fixes"].as_u64(), Some(appended), "{id}: fixes = lines appended");
    }
    assert_eq!(
        rows[0]["operator_id"].as_str().map(|o| o.starts_with("OP-rid:HK")),
        Some(true)
    );
    let id0 = drone("HK", 0);
    let (code, g) = get_json(
        &s.aggregator
            .url(&format!("/api/v1/history/tracks/{id0}?format=geojson")),
    )
    .await?;
    assert_eq!(code, 200);
    assert_eq!(g["type"], "FeatureCollection");
    assert_eq!(g["features"][0]["geometry"]["type"], "LineString");
    let n0 = fin.iter().filter(|(i, _)| *i == id0).count();
    assert_eq!(
        g["features"][0]["geometry"]["coordinates"].as_array().map(Vec::len),
        Some(n0)
    );
    // (heading and operator position reach the envelope once the RemoteID engine's v1.1 fields
    // are merged by the core; the store keeps them when present — unit-tested in the crate.)
    assert_eq!(g["features"][1]["properties"]["altitude_m"], 120.5);
    assert_eq!(g["features"][1]["properties"]["speed_m_s"], 7.25);
    let (code, kml) = text(&s.aggregator.url(&format!("/api/v1/history/tracks/{id0}?format=kml"))).await?;
    assert!(code == 200 && kml.matches("<when>").count() == n0, "{code}");
    let (code, d) = get_json(&s.aggregator.url(&format!("/api/v1/history/contacts/{id0}"))).await?;
    assert_eq!((code, d["fixes"].as_u64()), (200, Some(n0 as u64)), "{d}");
    assert!(d["last_fix"]["lat"].as_f64().is_some(), "{d}");
    let (code, sum) = get_json(&s.aggregator.url("/api/v1/history/summary")).await?;
    assert_eq!(code, 200);
    assert!(
        sum["totals"].as_array().is_some_and(|t| t
            .iter()
            .any(|k| k["type"] == "REMOTE_ID" && k["contacts"].as_u64() >= Some(DRONES))),
        "{sum}"
    );
    // Bad parameters are named; unknown ids are 404.
    for (q, field) in [
        ("contacts?type=boat", "type"),
        ("contacts?since=yesterday", "since"),
        ("contacts?limit=0", "limit"),
        ("contacts?since=2000&until=1000", "until"),
        ("summary?since=1000&until=999999999999", "since"),
        ("tracks/x?format=gpx", "format"),
    ] {
        let (code, v) = get_json(&s.aggregator.url(&format!("/api/v1/history/{q}"))).await?;
        assert_eq!((code, v["field"].as_str()), (400, Some(field)), "{q}: {v}");
    }
    for q in ["contacts/rid:nobody", "tracks/rid:nobody?format=csv"] {
        let (code, _) = text(&s.aggregator.url(&format!("/api/v1/history/{q}"))).await?;
        assert_eq!(code, 404, "{q}");
    }
    eprintln!(
        "history {KILLS}× kill -9 at {RATE} fixes/s: {acked_total} fixes acknowledged before the last kill, all \
         present after each restart (back up within {back:?} after a kill); {} lines written in all ({before_kill} \
         before the last restart), all {} recorded; all {} lines written after the last restart recorded",
        written.len(),
        fin.len(),
        want_new.len()
    );
    Ok(())
}

/// Mounts a tmpfs of `size` at `at` (root with CAP_SYS_ADMIN only).
fn mount_tmpfs(at: &Path, size: &str) -> bool {
    std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Unmount(PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn fill(path: &Path) -> std::io::Result<u64> {
    let mut f = std::fs::File::create(path)?;
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    while f.write_all(&[0u8]).is_ok() {}
    let _ = f.sync_all();
    Ok(f.metadata()?.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_on_a_full_disk_counts_errors_and_live_streaming_goes_on() -> R {
    let _one = SERIAL.lock().await;
    let disk = tempfile::tempdir()?;
    if !mount_tmpfs(disk.path(), "2m") {
        if std::env::var_os("CI").is_some() {
            return Err("CI: cannot mount a tmpfs for the full-disk test (needs root)".into());
        }
        eprintln!("SKIPPED: history full-disk test needs root to mount a tmpfs");
        return Ok(());
    }
    let _unmount = Unmount(disk.path().to_owned());
    let db = disk.path().join("history.sqlite");
    let s = Stack::start(StackOptions {
        drones: 0,
        esp32: false,
        aggregator_env: vec![
            kv("NDEFENDER_REMOTEID__CONTACT_TTL_S", "600"),
            kv("NDEFENDER_HISTORY__PATH", &db.display().to_string()),
        ],
        ..StackOptions::default()
    })
    .await?;
    assert_eq!(metric(&metrics(&s).await?, "history_up"), Some(1.0));
    let filler = disk.path().join("filler");
    let filled = fill(&filler)?;

    let mut ws = Ws::connect(&s.aggregator.ws("/api/v1/ws")).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(s.rid_path.clone(), "FD", 200, 200 * 120, stop.clone());
    let full = |b: &str| metric(b, "history_write_errors_total{reason=\"disk_full\"}").unwrap_or(0.0);
    let errors = eventually(MIN, "disk_full errors counted", || async {
        let b = metrics(&s).await?;
        Ok((full(&b) >= 3.0).then(|| full(&b)))
    })
    .await?;
    // Two more seconds of lines on the full disk.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().map_err(|_| "writer panicked")??;
    // Live streaming unaffected: every line written reached the WebSocket client.
    let want: BTreeSet<(String, u64)> = written.iter().cloned().collect();
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + MIN;
    while seen.len() < want.len() && Instant::now() < deadline {
        let Some(v) = ws.next(Duration::from_secs(10)).await? else {
            break;
        };
        if let (Some(id), Some(t)) = (ndefender_tests::ws::data_id(&v), v["data"]["last_seen_ts"].as_u64()) {
            if id.starts_with("rid:FD") {
                seen.insert((id.to_owned(), t));
            }
        }
    }
    let missed = want.difference(&seen).count();
    assert_eq!(
        missed,
        0,
        "{missed} of {} lines never reached the WebSocket client",
        want.len()
    );
    let body = metrics(&s).await?;
    let lost = metric(&body, "history_records_lost_total").unwrap_or(0.0);
    assert!(lost > 0.0, "the failed batches are counted as lost");
    assert_eq!(metric(&body, "history_up"), Some(1.0), "the writer keeps going");
    let (code, _) = get_json(&s.aggregator.url("/api/v1/contacts")).await?;
    assert_eq!(code, 200);

    // Space comes back: writing resumes.
    std::fs::remove_file(&filler)?;
    let fixes_at = |b: &str| metric(b, "history_records_total{record=\"fix\"}").unwrap_or(0.0);
    let f0 = fixes_at(&body);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(s.rid_path.clone(), "FE", 200, 400, stop);
    let written2 = writer.join().map_err(|_| "writer panicked")??;
    let last = written2.last().cloned().ok_or("nothing written")?;
    eventually(MIN, "fixes recorded again", || async {
        let times = track_times(&s, &last.0).await?;
        Ok(times.contains(&last.1).then_some(()))
    })
    .await?;
    let f1 = fixes_at(&metrics(&s).await?);
    assert!(f1 >= f0 + 100.0, "{f0} → {f1}");
    eprintln!(
        "history full disk (2 MiB tmpfs, {filled} B filler): {} lines streamed to the WebSocket client, 0 missed; \
         {errors} disk_full write errors and {lost} records lost counted in /metrics; after freeing space the \
         history recorded again ({f0} → {f1} fixes)",
        want.len()
    );
    Ok(())
}
