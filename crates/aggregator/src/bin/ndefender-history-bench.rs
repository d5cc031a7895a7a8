//! Detection history benchmark (issue 18, docs/BENCHMARKS.md):
//!
//! 1. builds a 30-day database the way the daemon's writer does (envelope JSON → records →
//!    batched transactions of `writer::MAX_BATCH` records): `--flights-per-day` flights of
//!    `--flight-s` seconds at 1 fix/s each day, plus one drone flying the last 24 h at 1 Hz;
//!    reports the sustained insert rate and the database size per million fixes;
//! 2. times the 24 h track (GeoJSON and CSV, query + formatting) and the 30-day summary on a
//!    read connection (median of 11);
//! 3. starts the release aggregator on that database and reads its RSS after serving the same
//!    queries over HTTP (and, for comparison, with `[history] enabled = false`).
//!
//! `cargo build --release -p ndefender-aggregator && target/release/ndefender-history-bench \
//!  [--days 30] [--flights-per-day 100] [--flight-s 900] [--dir DIR]`
//!
//! A binary of the aggregator package (not an example) so that a release build of it needs only
//! the daemon's own dependencies.

use ndefender_aggregator::history::export;
use ndefender_aggregator::history::query;
use ndefender_aggregator::history::record::{self, Record};
use ndefender_aggregator::history::store::{self, Store};
use ndefender_aggregator::history::writer::MAX_BATCH;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

type R<T = ()> = Result<T, Box<dyn std::error::Error>>;
const DAY_S: u64 = 86_400;

fn arg(args: &[String], name: &str, default: u64) -> R<u64> {
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args.get(i + 1).ok_or(format!("{name} needs a value"))?.parse()?),
        None => Ok(default),
    }
}

fn envelope(id: &str, ts: u64, k: u64) -> String {
    let x = (k % 900) as f64 * 1e-4;
    format!(
        r#"{{"type":"CONTACT_UPDATE","timestamp_ms":{ts},"source":"remoteid","data":{{"id":"{id}","type":"REMOTE_ID","last_seen_ts":{ts},"model":"Mavic 3","operator_id":"FIN87astrdge12k8","lat":{},"lon":{},"altitude_m":{},"speed_m_s":8.5}}}}"#,
        48.137 + x,
        11.575 + x * 0.7,
        80.0 + (k % 60) as f64
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn time_n<T>(n: usize, mut f: impl FnMut() -> R<T>) -> R<(Duration, T)> {
    let mut times = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        last = Some(f()?);
        times.push(t.elapsed());
    }
    Ok((median(times), last.ok_or("no run")?))
}

fn main() -> R {
    let args: Vec<String> = std::env::args().collect();
    let days = arg(&args, "--days", 30)?;
    let per_day = arg(&args, "--flights-per-day", 100)?.max(1);
    let flight_s = arg(&args, "--flight-s", 900)?;
    let (dir, scratch) = match args.iter().position(|a| a == "--dir") {
        Some(i) => (PathBuf::from(args.get(i + 1).ok_or("--dir needs a value")?), false),
        None => (
            std::env::temp_dir().join(format!("ndefender-history-bench-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("history.sqlite");
    let _ = std::fs::remove_file(&db);

    // 1. Build: the events in time order, as the tap delivers them.
    let now_s = ndefender_contract::time::now_ms() / 1000;
    let end = now_s;
    let start = end - days * DAY_S + 7200;
    let spacing = DAY_S / per_day;
    let mut st = Store::open(&db, now_s * 1000)?;
    let mut batch: Vec<Record> = Vec::with_capacity(MAX_BATCH + 2);
    let (mut fixes, mut ingest, mut commit) = (0u64, Duration::ZERO, Duration::ZERO);
    let wall = Instant::now();
    let flush = |batch: &mut Vec<Record>, st: &mut Store, fixes: &mut u64, commit: &mut Duration| -> R {
        let t = Instant::now();
        let a = st.apply(batch)?;
        *commit += t.elapsed();
        *fixes += a.fixes;
        batch.clear();
        Ok(())
    };
    for t in start..end {
        let since = t - start;
        let k = since / spacing;
        // The flights whose window contains t (a flight may outlast the spacing).
        let first = k.saturating_sub(flight_s / spacing + 1);
        for f in first..=k {
            let f_start = f * spacing;
            if since >= f_start && since - f_start < flight_s {
                let e = envelope(&format!("rid:BENCH{f:06}"), t * 1000, since - f_start);
                let i = Instant::now();
                record::from_envelope(&e, &mut batch);
                ingest += i.elapsed();
            }
        }
        if t >= end - DAY_S {
            let e = envelope("rid:LONG24H", t * 1000, t);
            let i = Instant::now();
            record::from_envelope(&e, &mut batch);
            ingest += i.elapsed();
        }
        if batch.len() >= MAX_BATCH {
            flush(&mut batch, &mut st, &mut fixes, &mut commit)?;
        }
    }
    flush(&mut batch, &mut st, &mut fixes, &mut commit)?;
    let built = wall.elapsed();
    st.vacuum_free_pages()?;
    let bytes = st.disk_bytes();
    drop(st);
    let rate = fixes as f64 / (ingest + commit).as_secs_f64();
    println!("history bench: {days} days, {per_day} flights/day of {flight_s} s at 1 Hz + one 24 h drone");
    println!(
        "insert: {fixes} fixes in {:.1} s of parse+commit ({:.1} s wall incl. generating the JSON): {rate:.0} fixes/s \
         (commit alone {:.0} fixes/s, batches of {MAX_BATCH} records)",
        (ingest + commit).as_secs_f64(),
        built.as_secs_f64(),
        fixes as f64 / commit.as_secs_f64()
    );
    println!(
        "size: {:.1} MiB for {fixes} fixes = {:.1} MiB per million fixes",
        bytes as f64 / 1048576.0,
        bytes as f64 / 1048576.0 / (fixes as f64 / 1e6)
    );

    // 2. Queries on a read connection.
    let c = store::open_reader(&db)?;
    let (since, until) = ((end - DAY_S) * 1000, end * 1000);
    let (tq, n) = time_n(11, || {
        let t = query::track(&c, "rid:LONG24H", Some(since), Some(until), query::MAX_TRACK_POINTS)
            .map_err(|e| format!("{e:?}"))?;
        Ok(t.points.len())
    })?;
    let (tg, glen) = time_n(11, || {
        let t = query::track(&c, "rid:LONG24H", Some(since), Some(until), query::MAX_TRACK_POINTS)
            .map_err(|e| format!("{e:?}"))?;
        Ok(export::geojson(&t).len())
    })?;
    let (tc, clen) = time_n(11, || {
        let t = query::track(&c, "rid:LONG24H", Some(since), Some(until), query::MAX_TRACK_POINTS)
            .map_err(|e| format!("{e:?}"))?;
        Ok(export::csv(&t).len())
    })?;
    let (ts, buckets) = time_n(11, || {
        let s = query::summary(&c, start * 1000, end * 1000).map_err(|e| format!("{e:?}"))?;
        Ok(s.buckets.len())
    })?;
    drop(c);
    println!(
        "24 h track ({n} points): query {:.1} ms, + GeoJSON {:.1} ms ({:.1} MB), + CSV {:.1} ms ({:.1} MB) (median of 11)",
        ms(tq),
        ms(tg),
        glen as f64 / 1e6,
        ms(tc),
        clen as f64 / 1e6
    );
    println!(
        "{days}-day summary ({buckets} hour×kind buckets): {:.2} ms (median of 11)",
        ms(ts)
    );

    // 3. The daemon on that database.
    for history in [true, false] {
        match daemon_rss(&dir, &db, history, since, until, start * 1000, end * 1000) {
            Ok(s) => println!("{s}"),
            Err(e) => println!("aggregator run skipped: {e}"),
        }
    }
    if scratch {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> R<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn aggregator_bin() -> R<PathBuf> {
    // The daemon sits next to this binary (target/release/).
    let exe = std::env::current_exe()?;
    let p = exe.parent().ok_or("no target dir")?.join("ndefender-aggregator");
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} not built (cargo build --release -p ndefender-aggregator)",
            p.display()
        )
        .into())
    }
}

/// Starts the aggregator on `db`, serves the 24 h track and the summary over HTTP, and reads
/// its RSS.
fn daemon_rss(dir: &Path, db: &Path, history: bool, since: u64, until: u64, s0: u64, s1: u64) -> R<String> {
    let bin = aggregator_bin()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let state = dir.join("state");
    std::fs::create_dir_all(&state)?;
    let mut child = std::process::Command::new(bin)
        .env("RUST_LOG", "warn")
        .env("NDEFENDER_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("NDEFENDER_STATE__DIR", &state)
        .env("NDEFENDER_REMOTEID__JSONL_PATH", dir.join("rid.jsonl"))
        .env("NDEFENDER_ANTSDR__JSONL_PATH", dir.join("rf.jsonl"))
        .env("NDEFENDER_ANTSDR__ENABLED", "false")
        .env("NDEFENDER_ESP32__ENABLED", "false")
        .env("NDEFENDER_SYSTEM_CONTROLLER__ENABLED", "false")
        .env("NDEFENDER_HISTORY__ENABLED", history.to_string())
        .env("NDEFENDER_HISTORY__PATH", db)
        .stdin(std::process::Stdio::null())
        .spawn()?;
    let pid = child.id();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let r = rt.block_on(async {
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(format!("{base}/api/v1/health")).send().await.is_err() {
            if Instant::now() > deadline {
                return Err::<String, Box<dyn std::error::Error>>("aggregator not ready".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let idle = rss_kib(pid)?;
        if !history {
            return Ok(format!(
                "aggregator RSS with history disabled: {:.1} MiB",
                idle as f64 / 1024.0
            ));
        }
        let track = format!("{base}/api/v1/history/tracks/rid:LONG24H?format=geojson&since={since}&until={until}");
        let summary = format!("{base}/api/v1/history/summary?since={s0}&until={s1}");
        let (mut th, mut tsum, mut len) = (Vec::new(), Vec::new(), 0);
        for _ in 0..5 {
            let t = Instant::now();
            let r = client.get(&track).send().await?;
            if !r.status().is_success() {
                return Err(format!("track: {}", r.status()).into());
            }
            len = r.bytes().await?.len();
            th.push(t.elapsed());
            let t = Instant::now();
            client.get(&summary).send().await?.bytes().await?;
            tsum.push(t.elapsed());
        }
        let after = rss_kib(pid)?;
        Ok(format!(
            "aggregator on the full DB: RSS {:.1} MiB idle, {:.1} MiB after serving; over HTTP the 24 h GeoJSON \
             track ({:.1} MB) {:.0} ms, the summary {:.1} ms (median of 5)",
            idle as f64 / 1024.0,
            after as f64 / 1024.0,
            len as f64 / 1e6,
            ms(median(th)),
            ms(median(tsum))
        ))
    });
    // SIGKILL is fine here: the history survives it (tests/tests/history.rs).
    let _ = child.kill();
    let _ = child.wait();
    r
}
