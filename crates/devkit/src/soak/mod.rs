//! `ndefender-loadgen soak`: the whole stack under a steady load for a long time.
//!
//! The three daemons run as real processes (binaries from `bin_dir` or next to the
//! loadgen) on free ports and a private run directory; the ESP32 emulator runs in
//! process on a pty. Load: numbered RemoteID lines appended to the feed, the
//! scanner's synthetic scene producing RF lines, the emulator's telemetry, one ESP32
//! command through the aggregator's REST every `cmd_interval`, `ws_clients` clients
//! on the aggregator's WS of which `ws_stalled` never read, plus one reader on the
//! controller's and one on the scanner's stream.
//!
//! Accounting (what "lost" means):
//! * RemoteID: every appended line carries its number; each reading client marks
//!   the numbers it receives in CONTACT_NEW/UPDATE; lost = appended − distinct
//!   received, per client, after a drain.
//! * Every reading client (aggregator, controller, scanner) connects with `?seq=1`
//!   and no filter, so a jump in the hub's sequence numbers is a lost event of any
//!   type (RF, ESP32, SYSTEM_UPDATE, …).
//! * RF: the scanner's JSONL lines (counted in the file after the scanner stopped)
//!   against the aggregator's tail counters (`aggregator_feed_lines_total`) and its
//!   published RF events; delivery to the clients is covered by the seq check.
//! * ESP32: each command must get a 200 CommandResult and a COMMAND_ACK on the WS.
//!
//! RSS and descriptors of each daemon are sampled from procfs every
//! `sample_every`; flatness is judged on the samples after `warmup`.

mod load;
mod report;
mod ws;

use crate::esp32::sim::{Esp32Sim, SimConfig};
use crate::http::Client;
use crate::stack::{find_bin, free_port, proc_usage, wait_esp32_connected, Daemon, ProcUsage, StopOutcome, Wiring};
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use ws::lock;

pub use report::{Footprint, SoakReport};

/// Soak settings.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    pub duration: Duration,
    /// Where the daemon binaries are (default: next to the running executable).
    pub bin_dir: Option<PathBuf>,
    /// Run directory (default: a new one under the temp dir, removed afterwards).
    pub dir: Option<PathBuf>,
    /// RemoteID lines per second.
    pub rid_rate: f64,
    /// Distinct RemoteID contacts the lines cycle through.
    pub rid_drones: u64,
    /// Interval between ESP32 commands (0: none).
    pub cmd_interval: Duration,
    /// WS clients on the aggregator, the stalled ones included.
    pub ws_clients: usize,
    /// How many of them never read.
    pub ws_stalled: usize,
    /// How long a stalled client holds a connection before looking at it and reconnecting
    /// (default 70 s: the server closes it after 40–60 s, and it drifts against the samples).
    pub stall_cycle: Duration,
    /// RSS/fd sampling interval.
    pub sample_every: Duration,
    /// Samples before this are warm-up, not judged for flatness.
    pub warmup: Duration,
    /// Upper bound on waiting for the last events after the load stops.
    pub drain: Duration,
    pub seed: u64,
}

impl SoakConfig {
    /// Defaults for a run of `duration`: samples every minute, or every 10 s for runs
    /// under 10 minutes (warm-up: one sample interval, at most a minute).
    pub fn new(duration: Duration) -> Self {
        let sample_every = if duration >= Duration::from_secs(600) {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(10)
        };
        Self {
            duration,
            bin_dir: None,
            dir: None,
            rid_rate: 100.0,
            rid_drones: 200,
            cmd_interval: Duration::from_millis(500),
            ws_clients: 20,
            ws_stalled: 2,
            stall_cycle: Duration::from_secs(70),
            sample_every,
            warmup: sample_every.min(Duration::from_secs(60)),
            drain: Duration::from_secs(15),
            seed: 7,
        }
    }
}

/// Which daemon, in report order.
pub(crate) const DAEMONS: [&str; 3] = [
    "ndefender-aggregator",
    "ndefender-system-controller",
    "ndefender-antsdr-scan",
];

/// One row of the time series.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub t: Duration,
    /// Per daemon, in [`DAEMONS`] order; None if it could not be read.
    pub procs: [Option<ProcUsage>; 3],
    pub rid_appended: u64,
    /// Latency samples in the interval and their p50/p99/max (ms).
    pub lat_n: usize,
    pub lat: (f64, f64, f64),
    pub agg_ws_clients: Option<f64>,
    pub agg_resyncs: Option<f64>,
    pub agg_slow_closes: Option<f64>,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Values of `name` (labels as written, e.g. `{feed="antsdr",result="accepted"}`) in Prometheus text.
pub(crate) fn metric(text: &str, name: &str, labels: &str) -> Option<f64> {
    let key = format!("{name}{labels}");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(&key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Every `name{…} value` line of a metric, as (labels, value).
pub(crate) fn metric_all(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, v) = rest.rsplit_once(' ')?;
            if !(labels.is_empty() || labels.starts_with('{')) {
                return None;
            }
            Some((labels.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Counts the lines of a JSONL file by `type`.
fn count_lines_by_type(path: &Path) -> io::Result<BTreeMap<String, u64>> {
    let text = std::fs::read(path)?;
    let mut out = BTreeMap::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let ty = serde_json::from_slice::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "<malformed>".into());
        *out.entry(ty).or_default() += 1;
    }
    Ok(out)
}

struct Stack {
    daemons: Vec<Option<Daemon>>,
    pids: [u32; 3],
    agg_port: u16,
    ctl_port: u16,
    scan_port: u16,
}

/// `cmd` with its stderr in `log`.
fn logged(mut cmd: Command, log: &Path) -> io::Result<Command> {
    cmd.stderr(std::fs::File::create(log)?)
        .stdout(std::process::Stdio::null());
    Ok(cmd)
}

async fn start_stack(cfg: &SoakConfig, dir: &Path, esp32_link: &Path) -> io::Result<Stack> {
    let bin = |n: &str| find_bin(cfg.bin_dir.as_deref(), n);
    let w = Wiring {
        dir: dir.to_path_buf(),
        aggregator_port: free_port()?,
        controller_port: free_port()?,
        antsdr_port: free_port()?,
        rid_path: dir.join("logs/remoteid_engine.jsonl"),
        rf_path: dir.join("logs/antsdr_scan.jsonl"),
        esp32_link: esp32_link.to_path_buf(),
    };
    let cmd = logged(w.scanner(&bin("ndefender-antsdr-scan")?), &dir.join("antsdr-scan.log"))?;
    let mut scan = Daemon::spawn("ndefender-antsdr-scan", cmd)?;
    scan.wait_port(w.antsdr_port).await?;

    let cmd = logged(
        w.controller(&bin("ndefender-system-controller")?),
        &dir.join("system-controller.log"),
    )?;
    let mut ctl = Daemon::spawn("ndefender-system-controller", cmd)?;
    ctl.wait_port(w.controller_port).await?;

    let mut cmd = logged(w.aggregator(&bin("ndefender-aggregator")?), &dir.join("aggregator.log"))?;
    // The soak's commands are far above the operator's 10/min.
    cmd.env("NDEFENDER_LIMITS__COMMANDS_PER_MINUTE", "1000000");
    let mut agg = Daemon::spawn("ndefender-aggregator", cmd)?;
    agg.wait_port(w.aggregator_port).await?;

    Ok(Stack {
        pids: [agg.pid(), ctl.pid(), scan.pid()],
        daemons: vec![Some(agg), Some(ctl), Some(scan)],
        agg_port: w.aggregator_port,
        ctl_port: w.controller_port,
        scan_port: w.antsdr_port,
    })
}

impl Stack {
    /// SIGTERM daemon `i` and wait ≤ 5 s, off the executor.
    async fn stop(&mut self, i: usize) -> Option<StopOutcome> {
        let d = self.daemons.get_mut(i)?.take()?;
        tokio::task::spawn_blocking(move || d.stop(Duration::from_secs(5)))
            .await
            .ok()
    }

    /// Names of daemons that exited on their own.
    fn exited(&mut self) -> Vec<String> {
        self.daemons
            .iter_mut()
            .flatten()
            .filter_map(|d| d.exited().map(|s| format!("{} exited unexpectedly ({s})", d.name)))
            .collect()
    }
}

/// Runs the soak and returns its report. `progress` gets one line per sample.
pub async fn run(cfg: SoakConfig, progress: impl Fn(&str)) -> io::Result<SoakReport> {
    if cfg.ws_stalled > cfg.ws_clients {
        return Err(io_err("more stalled clients than clients"));
    }
    let (dir, own_dir) = match &cfg.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("ndefender-soak-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(dir.join("logs"))?;
    let rid_path = dir.join("logs/remoteid_engine.jsonl");
    let rf_path = dir.join("logs/antsdr_scan.jsonl");
    std::fs::write(&rid_path, b"")?;

    let esp32_link = dir.join("ttyESP32");
    let sim = Esp32Sim::spawn(SimConfig {
        link: Some(esp32_link.clone()),
        seed: cfg.seed,
        ..SimConfig::default()
    })
    .await?;
    let sim_ctl = sim.control();
    let mut stack = match start_stack(&cfg, &dir, &esp32_link).await {
        Ok(s) => s,
        Err(e) => {
            let _ = sim.shutdown().await;
            return Err(e);
        }
    };
    // Where to point a browser at the loaded aggregator (the dashboard benchmark does).
    progress(&format!("aggregator http://127.0.0.1:{}/", stack.agg_port));
    let r = drive(&cfg, &mut stack, &sim_ctl, &rid_path, &rf_path, &progress).await;
    // Whatever happened, nothing is left running.
    for i in 0..3 {
        let _ = stack.stop(i).await;
    }
    let _ = sim.shutdown().await;
    let mut report = r?;
    report.run_dir = dir.clone();
    if own_dir && report.verdict_failures().is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
        report.run_dir_removed = true;
    }
    Ok(report)
}

async fn drive(
    cfg: &SoakConfig,
    stack: &mut Stack,
    sim: &crate::esp32::sim::SimControl,
    rid_path: &Path,
    rf_path: &Path,
    progress: &impl Fn(&str),
) -> io::Result<SoakReport> {
    let agg = format!("http://127.0.0.1:{}", stack.agg_port);
    let http = Client::with_timeout(Duration::from_secs(5));
    wait_esp32_connected(&http, &agg, Duration::from_secs(20)).await?;

    // Clients.
    let (stop_tx, stop_rx) = watch::channel(false);
    let latencies = Arc::new(Mutex::new(ws::Latencies::default()));
    let acks = Arc::new(Mutex::new(HashSet::new()));
    let n_readers = cfg.ws_clients - cfg.ws_stalled;
    let mut readers = Vec::new();
    let mut tasks = Vec::new();
    let agg_ws = format!("ws://127.0.0.1:{}/api/v1/ws?seq=1", stack.agg_port);
    for i in 0..n_readers {
        let r = Arc::new(ws::Reader::default());
        let taps = ws::AggTaps {
            latencies: Arc::clone(&latencies),
            acks: (i == 0).then(|| Arc::clone(&acks)),
        };
        tasks.push(tokio::spawn(ws::run_reader(
            agg_ws.clone(),
            Arc::clone(&r),
            Some(taps),
            stop_rx.clone(),
        )));
        readers.push(r);
    }
    let ctl_reader = Arc::new(ws::Reader::default());
    tasks.push(tokio::spawn(ws::run_reader(
        format!("ws://127.0.0.1:{}/api/v1/ws?seq=1", stack.ctl_port),
        Arc::clone(&ctl_reader),
        None,
        stop_rx.clone(),
    )));
    let scan_reader = Arc::new(ws::Reader::default());
    tasks.push(tokio::spawn(ws::run_reader(
        format!("ws://127.0.0.1:{}/api/v1/events?seq=1", stack.scan_port),
        Arc::clone(&scan_reader),
        None,
        stop_rx.clone(),
    )));
    // Every aggregator and controller reader has its greeting before the load starts.
    for r in readers.iter().chain(std::iter::once(&ctl_reader)) {
        tokio::time::timeout(Duration::from_secs(10), r.first_frame.notified())
            .await
            .map_err(|_| io_err("a WS reader got no greeting within 10 s"))?;
    }
    let stalled_out = Arc::new(Mutex::new(Vec::new()));
    let mut stalled_tasks = Vec::new();
    for _ in 0..cfg.ws_stalled {
        stalled_tasks.push(tokio::spawn(ws::run_stalled(
            format!("ws://127.0.0.1:{}/api/v1/ws", stack.agg_port),
            cfg.stall_cycle,
            Arc::clone(&stalled_out),
            stop_rx.clone(),
        )));
    }

    // Load.
    let t0 = Instant::now();
    let sim_start = sim.stats().await?;
    let appended = Arc::new(AtomicU64::new(0));
    let writer_stop = Arc::new(AtomicBool::new(false));
    let writer = load::spawn_rid_writer(
        rid_path.to_path_buf(),
        cfg.rid_rate,
        cfg.rid_drones,
        Arc::clone(&appended),
        Arc::clone(&writer_stop),
    );
    let (load_stop_tx, load_stop_rx) = watch::channel(false);
    let commands = Arc::new(Mutex::new(load::CommandStats::default()));
    let cmd_task = (!cfg.cmd_interval.is_zero()).then(|| {
        tokio::spawn(load::run_commands(
            agg.clone(),
            cfg.cmd_interval,
            Arc::clone(&commands),
            load_stop_rx.clone(),
        ))
    });

    let mut samples = Vec::new();
    let mut unexpected = Vec::new();
    let pids = stack.pids;
    let take_sample = |t: Duration, metrics: &str| {
        let procs = pids.map(|p| proc_usage(p).ok());
        let mut l = lock(&latencies);
        let mut iv = std::mem::take(&mut l.interval);
        drop(l);
        iv.sort_by(f32::total_cmp);
        let iv: Vec<f64> = iv.into_iter().map(f64::from).collect();
        Sample {
            t,
            procs,
            rid_appended: appended.load(Relaxed),
            lat_n: iv.len(),
            lat: (
                crate::stack::percentile(&iv, 50.0),
                crate::stack::percentile(&iv, 99.0),
                iv.last().copied().unwrap_or(f64::NAN),
            ),
            agg_ws_clients: metric(metrics, "ndefender_ws_clients", ""),
            agg_resyncs: metric(metrics, "ndefender_ws_resyncs_total", ""),
            agg_slow_closes: metric(metrics, "ndefender_ws_slow_closes_total", ""),
        }
    };
    let metrics_url = format!("{agg}/metrics");
    let m = http.get_text(&metrics_url).await.unwrap_or_default();
    let s = take_sample(Duration::ZERO, &m);
    progress(&report::progress_line(&s));
    samples.push(s);
    let end_at = t0 + cfg.duration;
    let mut next = t0 + cfg.sample_every;
    loop {
        let at = next.min(end_at);
        tokio::time::sleep_until(at).await;
        let m = http.get_text(&metrics_url).await.unwrap_or_default();
        let s = take_sample(at - t0, &m);
        progress(&report::progress_line(&s));
        samples.push(s);
        unexpected.extend(stack.exited());
        if at >= end_at || !unexpected.is_empty() {
            break;
        }
        next += cfg.sample_every;
    }
    let load_time = t0.elapsed();

    // Stop the load, then the scanner (it flushes its JSONL), then let everything drain.
    writer_stop.store(true, Relaxed);
    let writer_result = tokio::task::spawn_blocking(move || writer.join()).await;
    let _ = load_stop_tx.send(true);
    if let Some(t) = cmd_task {
        let _ = t.await;
    }
    let appended_total = appended.load(Relaxed);
    let scan_metrics = http
        .get_text(&format!("http://127.0.0.1:{}/metrics", stack.scan_port))
        .await
        .unwrap_or_default();
    let scan_stop = stack.stop(2).await;
    let drain_start = Instant::now();
    loop {
        let behind = readers
            .iter()
            .any(|r| lock(&r.stats).rid_received(appended_total).0 < appended_total);
        if (!behind && drain_start.elapsed() >= Duration::from_secs(3)) || drain_start.elapsed() >= cfg.drain {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain_time = drain_start.elapsed();
    let agg_metrics = http.get_text(&metrics_url).await.unwrap_or_default();
    let sim_end = sim.stats().await?;
    let sim_status = sim.status().await?;

    // The stalled clients look at their last connection; then the rest stop.
    let _ = stop_tx.send(true);
    for t in stalled_tasks {
        let _ = t.await;
    }
    let agg_stop = stack.stop(0).await;
    let ctl_stop = stack.stop(1).await;
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(3), t).await;
    }
    let rf_lines = count_lines_by_type(rf_path)?;

    let mut writer_error = None;
    match writer_result {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => writer_error = Some(e.to_string()),
        Ok(Err(_)) | Err(_) => writer_error = Some("the RemoteID writer thread panicked".into()),
    }
    let all_lat = std::mem::take(&mut lock(&latencies).all);
    let stalled = lock(&stalled_out).clone();
    let commands = lock(&commands).clone();
    let acks = lock(&acks).clone();
    let ctl_stats = lock(&ctl_reader.stats).clone();
    let scan_stats = lock(&scan_reader.stats).clone();
    Ok(SoakReport {
        cfg: cfg.clone(),
        load_time,
        drain_time,
        samples,
        rid_appended: appended_total,
        readers: readers.iter().map(|r| lock(&r.stats).clone()).collect(),
        ctl_reader: ctl_stats,
        scan_reader: scan_stats,
        latencies_ms: all_lat,
        commands,
        acks_seen: acks,
        stalled,
        rf_lines,
        agg_metrics,
        scan_metrics,
        sim_start,
        sim_end,
        sim_discarded_bytes: sim_status.output_bytes_discarded,
        stops: [agg_stop, ctl_stop, scan_stop],
        unexpected_exits: unexpected,
        writer_error,
        run_dir: PathBuf::new(),
        run_dir_removed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE x counter\nndefender_ws_clients 20\naggregator_feed_lines_total{feed=\"antsdr\",result=\"accepted\"} 1234\naggregator_feed_lines_total{feed=\"antsdr\",result=\"malformed\"} 0\nndefender_ws_clients_x 3\n";

    #[test]
    fn metrics_are_found_by_name_and_labels() {
        assert_eq!(metric(TEXT, "ndefender_ws_clients", ""), Some(20.0));
        assert_eq!(
            metric(
                TEXT,
                "aggregator_feed_lines_total",
                "{feed=\"antsdr\",result=\"accepted\"}"
            ),
            Some(1234.0)
        );
        assert_eq!(metric(TEXT, "nope", ""), None);
        assert_eq!(metric_all(TEXT, "aggregator_feed_lines_total").len(), 2);
        assert_eq!(metric_all(TEXT, "ndefender_ws_clients").len(), 1);
    }
}
