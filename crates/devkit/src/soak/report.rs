//! The soak's report: the verdict and a markdown block ready to paste.

use super::load::CommandStats;
use super::ws::{ReaderStats, StallOutcome};
use super::{metric, metric_all, Sample, SoakConfig, DAEMONS};
use crate::esp32::device::SimStats;
use crate::stack::{percentile, ProcUsage, StopOutcome};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// Everything a soak run measured.
#[derive(Debug)]
pub struct SoakReport {
    pub(crate) cfg: SoakConfig,
    pub(crate) load_time: Duration,
    pub(crate) drain_time: Duration,
    pub(crate) samples: Vec<Sample>,
    pub(crate) rid_appended: u64,
    pub(crate) readers: Vec<ReaderStats>,
    pub(crate) ctl_reader: ReaderStats,
    pub(crate) scan_reader: ReaderStats,
    pub(crate) latencies_ms: Vec<f32>,
    pub(crate) commands: CommandStats,
    pub(crate) acks_seen: HashSet<String>,
    pub(crate) stalled: Vec<StallOutcome>,
    pub(crate) rf_lines: BTreeMap<String, u64>,
    pub(crate) agg_metrics: String,
    pub(crate) scan_metrics: String,
    pub(crate) sim_start: SimStats,
    pub(crate) sim_end: SimStats,
    pub(crate) sim_discarded_bytes: u64,
    /// Aggregator, controller, scanner.
    pub(crate) stops: [Option<StopOutcome>; 3],
    pub(crate) unexpected_exits: Vec<String>,
    pub(crate) writer_error: Option<String>,
    pub run_dir: PathBuf,
    pub run_dir_removed: bool,
}

/// One daemon's resource use over the judged part of a run (after the warm-up).
#[derive(Debug, Clone, PartialEq)]
pub struct Footprint {
    pub daemon: &'static str,
    /// Mean CPU over the window, in % of one core (utime + stime).
    pub cpu_pct: f64,
    pub rss_end_mib: f64,
    pub rss_peak_mib: f64,
    pub fds_end: u64,
}

impl SoakReport {
    /// CPU, RSS and descriptors of each daemon between the first sample at or after the
    /// warm-up and the last one (the load stops after the last sample).
    pub fn footprints(&self) -> Vec<Footprint> {
        footprints(&self.samples, self.cfg.warmup)
    }
}

fn footprints(samples: &[Sample], warmup: Duration) -> Vec<Footprint> {
    let mut out = Vec::new();
    for (i, daemon) in DAEMONS.iter().enumerate() {
        let judged: Vec<(Duration, ProcUsage)> = samples
            .iter()
            .filter(|s| s.t >= warmup)
            .filter_map(|s| s.procs[i].map(|p| (s.t, p)))
            .collect();
        let (Some((t0, first)), Some((t1, last))) = (judged.first(), judged.last()) else {
            continue;
        };
        let secs = (*t1 - *t0).as_secs_f64();
        let cpu_pct = if secs > 0.0 {
            last.cpu_ticks.saturating_sub(first.cpu_ticks) as f64 / crate::stack::TICKS_PER_S / secs * 100.0
        } else {
            f64::NAN
        };
        out.push(Footprint {
            daemon,
            cpu_pct,
            rss_end_mib: mib(last.rss_kib),
            rss_peak_mib: judged.iter().map(|(_, p)| mib(p.rss_kib)).fold(0.0, f64::max),
            fds_end: last.fds,
        });
    }
    out
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.2}")
    }
}

fn fmt_t(t: Duration) -> String {
    let s = t.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

/// One line per sample for the live log.
pub(crate) fn progress_line(s: &Sample) -> String {
    let mut line = format!("[{:>6}] rid appended {:>7}", fmt_t(s.t), s.rid_appended);
    let _ = write!(
        line,
        " | latency p50 {} p99 {} max {} ms (n={})",
        ms(s.lat.0),
        ms(s.lat.1),
        ms(s.lat.2),
        s.lat_n
    );
    for (name, p) in DAEMONS.iter().zip(&s.procs) {
        let short = name.trim_start_matches("ndefender-");
        match p {
            Some(p) => {
                let _ = write!(line, " | {short} {:.1} MiB {} fds", mib(p.rss_kib), p.fds);
            }
            None => {
                let _ = write!(line, " | {short} ?");
            }
        }
    }
    let f = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v}"));
    let _ = write!(
        line,
        " | agg ws clients {} resyncs {} slow closes {}",
        f(s.agg_ws_clients),
        f(s.agg_resyncs),
        f(s.agg_slow_closes)
    );
    line
}

/// Start / after warm-up / end / max of one daemon's series, and its trend.
struct Series {
    start: u64,
    warm: u64,
    end: u64,
    max: u64,
    /// Highest value in the first and in the second half of the post-warm-up samples.
    max_first_half: u64,
    max_second_half: u64,
    /// Least-squares slope after warm-up, per hour.
    slope_h: f64,
}

impl Series {
    fn of(samples: &[Sample], warmup: Duration, i: usize, f: impl Fn(&ProcUsage) -> u64) -> Option<Series> {
        let pts: Vec<(Duration, u64)> = samples
            .iter()
            .filter_map(|s| Some((s.t, f(s.procs.get(i)?.as_ref()?))))
            .collect();
        let start = pts.first()?.1;
        let end = pts.last()?.1;
        let max = pts.iter().map(|p| p.1).max()?;
        let after: Vec<(f64, u64)> = pts
            .iter()
            .filter(|p| p.0 >= warmup)
            .map(|p| (p.0.as_secs_f64(), p.1))
            .collect();
        let warm = after.first()?.1;
        let half = after.len().div_ceil(2);
        let max_first_half = after.iter().take(half).map(|p| p.1).max()?;
        let max_second_half = after.iter().skip(half).map(|p| p.1).max().unwrap_or(max_first_half);
        let n = after.len() as f64;
        let mx = after.iter().map(|p| p.0).sum::<f64>() / n;
        let my = after.iter().map(|p| p.1 as f64).sum::<f64>() / n;
        let sxx: f64 = after.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let sxy: f64 = after.iter().map(|p| (p.0 - mx) * (p.1 as f64 - my)).sum();
        let slope_h = if sxx > 0.0 { sxy / sxx * 3600.0 } else { 0.0 };
        Some(Series {
            start,
            warm,
            end,
            max,
            max_first_half,
            max_second_half,
            slope_h,
        })
    }

    /// No upward trend: the second half of the post-warm-up samples peaks at most
    /// `slack` above the first half.
    fn flat(&self, slack: u64) -> bool {
        self.max_second_half <= self.max_first_half + slack
    }
}

/// RSS slack: max(2 MiB, 5 %).
fn rss_slack(s: &Series) -> u64 {
    (s.max_first_half / 20).max(2048)
}

impl SoakReport {
    fn stalled_clients_slack(&self, daemon: usize) -> u64 {
        // A stalled client's socket may be open or not at a given sample.
        if daemon == 0 {
            self.cfg.ws_stalled as u64 + 2
        } else {
            2
        }
    }

    fn rid_lost(&self) -> Vec<(u64, u64, u64)> {
        self.readers
            .iter()
            .map(|r| {
                let (got, dup) = r.rid_received(self.rid_appended);
                (got, self.rid_appended - got, dup)
            })
            .collect()
    }

    fn rf_file_total(&self) -> u64 {
        self.rf_lines.values().sum()
    }

    fn agg_feed(&self, feed: &str, result: &str) -> u64 {
        metric(
            &self.agg_metrics,
            "aggregator_feed_lines_total",
            &format!("{{feed=\"{feed}\",result=\"{result}\"}}"),
        )
        .unwrap_or(0.0) as u64
    }

    fn agg_feed_total(&self, feed: &str) -> u64 {
        ["accepted", "malformed", "invalid", "stale", "test_marker", "oversize"]
            .iter()
            .map(|r| self.agg_feed(feed, r))
            .sum()
    }

    fn published(&self, prefix: &str) -> u64 {
        metric_all(&self.agg_metrics, "ndefender_ws_events_published_total")
            .iter()
            .filter(|(l, _)| l.starts_with(&format!("{{type=\"{prefix}")))
            .map(|(_, v)| *v as u64)
            .sum()
    }

    fn acks_missing(&self) -> usize {
        self.commands
            .ok_ids
            .iter()
            .filter(|id| !self.acks_seen.contains(*id))
            .count()
    }

    /// Everything that makes the run a failure; empty when it passed.
    pub fn verdict_failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(self.unexpected_exits.iter().cloned());
        if let Some(e) = &self.writer_error {
            out.push(format!("RemoteID writer: {e}"));
        }
        let lost: u64 = self.rid_lost().iter().map(|l| l.1).sum();
        if lost > 0 {
            out.push(format!("{lost} RemoteID lines lost (summed over the reading clients)"));
        }
        for (name, rs) in [
            ("aggregator", &self.readers[..]),
            ("controller", std::slice::from_ref(&self.ctl_reader)),
            ("scanner", std::slice::from_ref(&self.scan_reader)),
        ] {
            let gaps: u64 = rs.iter().map(|r| r.seq_gaps + r.seq_backwards).sum();
            if gaps > 0 {
                out.push(format!("{gaps} seq gaps/reorderings on the {name} readers"));
            }
            let drops: usize = rs.iter().map(|r| r.drops.len()).sum();
            if drops > 0 {
                out.push(format!("{drops} reader connections on the {name} were dropped"));
            }
        }
        let rf_file = self.rf_file_total();
        let rf_read = self.agg_feed_total("antsdr");
        if rf_file != rf_read {
            out.push(format!(
                "RF: {rf_file} lines in the file, the aggregator read {rf_read}"
            ));
        }
        for feed in ["antsdr", "remoteid"] {
            let bad = self.agg_feed_total(feed) - self.agg_feed(feed, "accepted");
            if bad > 0 {
                out.push(format!(
                    "{feed}: {bad} lines not accepted (malformed/invalid/stale/oversize)"
                ));
            }
        }
        let c = &self.commands;
        if !c.failed.is_empty() || c.timeouts > 0 || !c.errors.is_empty() {
            out.push(format!(
                "ESP32 commands: {} failed, {} timeouts, {} errors",
                c.failed.len(),
                c.timeouts,
                c.errors.len()
            ));
        }
        if self.acks_missing() > 0 {
            out.push(format!(
                "{} commands without a COMMAND_ACK on the WS",
                self.acks_missing()
            ));
        }
        for (i, name) in DAEMONS.iter().enumerate() {
            if let Some(s) = Series::of(&self.samples, self.cfg.warmup, i, |p| p.rss_kib) {
                if !s.flat(rss_slack(&s)) {
                    out.push(format!(
                        "{name}: RSS still rising after warm-up: peak {:.1} MiB in the first half, {:.1} MiB in the second",
                        mib(s.max_first_half),
                        mib(s.max_second_half)
                    ));
                }
            }
            if let Some(s) = Series::of(&self.samples, self.cfg.warmup, i, |p| p.fds) {
                if !s.flat(self.stalled_clients_slack(i)) {
                    out.push(format!(
                        "{name}: descriptors still rising after warm-up: peak {} in the first half, {} in the second",
                        s.max_first_half, s.max_second_half
                    ));
                }
            }
            match &self.stops[i] {
                Some(o) if o.clean() => {}
                Some(o) => out.push(format!("{name}: {o}")),
                None => out.push(format!("{name}: stop status unknown")),
            }
        }
        out
    }

    /// The markdown block (also the console report).
    pub fn markdown(&self, command: &str) -> String {
        let mut o = String::new();
        let cfg = &self.cfg;
        let n_readers = self.readers.len();
        let _ = writeln!(o, "Command: `{command}`\n");
        let _ = writeln!(
            o,
            "Load for {:.1} min: RemoteID {} lines/s over {} contacts, the scanner's synthetic scene, ESP32 emulator telemetry (~1 Hz) and one `POST /api/v1/video/select` every {} ms, {} WS clients on the aggregator ({} reading with `?seq=1`, {} never reading), one reader on the controller and one on the scanner. Drain after the load: {:.1} s. Samples every {} s; warm-up (not judged) {} s.\n",
            self.load_time.as_secs_f64() / 60.0,
            cfg.rid_rate,
            cfg.rid_drones,
            cfg.cmd_interval.as_millis(),
            cfg.ws_clients,
            n_readers,
            cfg.ws_stalled,
            self.drain_time.as_secs_f64(),
            cfg.sample_every.as_secs(),
            cfg.warmup.as_secs(),
        );

        let _ = writeln!(o, "| daemon | RSS start MiB | RSS after warm-up | RSS end | RSS max | RSS peak 1st / 2nd half after warm-up | RSS slope after warm-up | fds start | fds after warm-up | fds end | fds max | SIGTERM → exit |");
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        for (i, name) in DAEMONS.iter().enumerate() {
            let rss = Series::of(&self.samples, cfg.warmup, i, |p| p.rss_kib);
            let fds = Series::of(&self.samples, cfg.warmup, i, |p| p.fds);
            let stop = self.stops[i].as_ref().map_or("?".into(), |s| s.to_string());
            match (rss, fds) {
                (Some(r), Some(f)) => {
                    let _ = writeln!(
                        o,
                        "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {:+.2} MiB/h | {} | {} | {} | {} | {stop} |",
                        mib(r.start),
                        mib(r.warm),
                        mib(r.end),
                        mib(r.max),
                        mib(r.max_first_half),
                        mib(r.max_second_half),
                        r.slope_h / 1024.0,
                        f.start,
                        f.warm,
                        f.end,
                        f.max
                    );
                }
                _ => {
                    let _ = writeln!(o, "| {name} | ? | ? | ? | ? | ? | ? | ? | ? | ? | ? | {stop} |");
                }
            }
        }
        o.push('\n');

        // Streams.
        let lost = self.rid_lost();
        let got_min = lost.iter().map(|l| l.0).min().unwrap_or(0);
        let got_max = lost.iter().map(|l| l.0).max().unwrap_or(0);
        let lost_sum: u64 = lost.iter().map(|l| l.1).sum();
        let dup_sum: u64 = lost.iter().map(|l| l.2).sum();
        let agg_gaps: u64 = self.readers.iter().map(|r| r.seq_gaps).sum();
        let agg_back: u64 = self.readers.iter().map(|r| r.seq_backwards).sum();
        let agg_frames_min = self.readers.iter().map(|r| r.frames).min().unwrap_or(0);
        let agg_frames_max = self.readers.iter().map(|r| r.frames).max().unwrap_or(0);
        let rf_file = self.rf_file_total();
        let rf_read = self.agg_feed_total("antsdr");
        let rf_acc = self.agg_feed("antsdr", "accepted");
        let rf_malformed = self.agg_feed("antsdr", "malformed");
        let rf_pub = self.published("RF_");
        let rf_contact_file: u64 = self
            .rf_lines
            .iter()
            .filter(|(k, _)| k.starts_with("RF_CONTACT_"))
            .map(|(_, v)| *v)
            .sum();
        let rf_file_types = self
            .rf_lines
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let scan_rf = self
            .scan_reader
            .by_type
            .iter()
            .filter(|(k, _)| k.starts_with("RF_CONTACT_"))
            .map(|(_, v)| *v)
            .sum::<u64>();
        let scan_emitted: u64 = metric_all(&self.scan_metrics, "antsdr_events_total")
            .iter()
            .map(|(_, v)| *v as u64)
            .sum();
        let scan_pub: u64 = metric_all(&self.scan_metrics, "ndefender_ws_events_published_total")
            .iter()
            .filter(|(l, _)| l.starts_with("{type=\"RF_CONTACT_"))
            .map(|(_, v)| *v as u64)
            .sum();
        let tel_sim = self.sim_end.firmware.telemetry;
        let tel_agg = metric(&self.agg_metrics, "esp32_lines_total", "{type=\"telemetry\"}").unwrap_or(0.0) as u64;
        let tel_pub = self.published("ESP32_TELEMETRY");
        let tel_reader = self
            .readers
            .first()
            .map_or(0, |r| r.by_type.get("ESP32_TELEMETRY").copied().unwrap_or(0));
        let rid_pub = self.published("CONTACT_NEW") + self.published("CONTACT_UPDATE");
        let rid_acc = self.agg_feed("remoteid", "accepted");

        let _ = writeln!(o, "| stream | sent | received | lost | how it is counted |");
        let _ = writeln!(o, "|---|---|---|---|---|");
        let _ = writeln!(
            o,
            "| RemoteID lines → aggregator WS | {} appended | {got_min}–{got_max} per client ({n_readers} clients) | {lost_sum} (duplicates {dup_sum}) | each line carries its number; every reading client marks the numbers it receives; aggregator accepted {rid_acc} lines and published {rid_pub} CONTACT_NEW/UPDATE |",
            self.rid_appended
        );
        let _ = writeln!(
            o,
            "| all aggregator events (seq) | – | {agg_frames_min}–{agg_frames_max} frames per client | {agg_gaps} gaps, {agg_back} out of order | `?seq=1`, no filter: every broadcast envelope (RF, ESP32, SYSTEM_UPDATE, HEARTBEAT, …) must arrive in sequence |"
        );
        let _ = writeln!(
            o,
            "| RF lines → aggregator | {rf_file} in the scanner's JSONL ({rf_file_types}) | {rf_read} read by the tail, {rf_acc} accepted, {rf_malformed} malformed; {rf_pub} RF_* events published | {} | file counted after the scanner stopped and the aggregator drained; delivery to clients covered by the seq check |",
            rf_file as i64 - rf_read as i64
        );
        let _ = writeln!(
            o,
            "| scanner WS | {rf_contact_file} RF_CONTACT_* lines in the JSONL; {scan_emitted} events counted by `antsdr_events_total`, {scan_pub} RF_CONTACT_* published on its hub | {scan_rf} RF_CONTACT_* frames (the client connects after the scanner started) | {} gaps | `?seq=1` on `/api/v1/events` |",
            self.scan_reader.seq_gaps + self.scan_reader.seq_backwards
        );
        let _ = writeln!(
            o,
            "| controller WS | – | {} frames ({} SYSTEM_STATUS) | {} gaps | `?seq=1` on `/api/v1/ws` |",
            self.ctl_reader.frames,
            self.ctl_reader.by_type.get("SYSTEM_STATUS").copied().unwrap_or(0),
            self.ctl_reader.seq_gaps + self.ctl_reader.seq_backwards
        );
        let _ = writeln!(
            o,
            "| ESP32 telemetry → aggregator | {tel_sim} emitted by the emulator ({} before the load window; {} bytes discarded while no host had the pty open) | {tel_agg} telemetry lines read, {tel_pub} ESP32_TELEMETRY published, {tel_reader} received by client 1 | {} | emulator counter vs the aggregator's `esp32_lines_total` |",
            self.sim_start.firmware.telemetry,
            self.sim_discarded_bytes,
            tel_sim as i64 - tel_agg as i64
        );
        let c = &self.commands;
        let mut rtt = c.rtt_ms.clone();
        rtt.sort_by(f64::total_cmp);
        let _ = writeln!(
            o,
            "| ESP32 commands (`video/select`) | {} | {} × 200 CommandResult, {} COMMAND_ACK on the WS | {} failed, {} timeouts, {} errors | round trip p50 {} / p99 {} / max {} ms; emulator acks {} (dropped {}, UART bytes lost {}) |",
            c.sent,
            c.ok,
            c.ok_ids.len() - self.acks_missing(),
            c.failed.len(),
            c.timeouts,
            c.errors.len(),
            ms(percentile(&rtt, 50.0)),
            ms(percentile(&rtt, 99.0)),
            ms(rtt.last().copied().unwrap_or(f64::NAN)),
            self.sim_end.device.acks_sent - self.sim_start.device.acks_sent,
            self.sim_end.device.acks_dropped - self.sim_start.device.acks_dropped,
            self.sim_end.device.uart_bytes_lost,
        );
        if !c.failed.is_empty() || !c.errors.is_empty() {
            let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
            for f in c.failed.iter().chain(&c.errors) {
                *kinds.entry(f.as_str()).or_default() += 1;
            }
            let _ = writeln!(o, "\nCommand failures: {kinds:?}");
        }
        o.push('\n');

        let mut lat: Vec<f64> = self.latencies_ms.iter().map(|v| f64::from(*v)).collect();
        lat.sort_by(f64::total_cmp);
        let _ = writeln!(
            o,
            "RemoteID append → WS receive latency over {} receipts ({} lines × {} clients): p50 {} ms, p99 {} ms, max {} ms.\n",
            lat.len(),
            self.rid_appended,
            n_readers,
            ms(percentile(&lat, 50.0)),
            ms(percentile(&lat, 99.0)),
            ms(lat.last().copied().unwrap_or(f64::NAN))
        );

        // The non-reading clients.
        let mut ends: BTreeMap<String, (u64, u64, u64, f64)> = BTreeMap::new();
        for s in &self.stalled {
            let e = ends.entry(s.end.clone()).or_insert((0, u64::MAX, 0, f64::MAX));
            e.0 += 1;
            e.1 = e.1.min(s.frames_buffered);
            e.2 = e.2.max(s.frames_buffered);
            e.3 = e.3.min(s.held.as_secs_f64());
        }
        let slow = metric(&self.agg_metrics, "ndefender_ws_slow_closes_total", "").unwrap_or(f64::NAN);
        let resyncs = metric(&self.agg_metrics, "ndefender_ws_resyncs_total", "").unwrap_or(f64::NAN);
        let conns = metric(&self.agg_metrics, "ndefender_ws_connections_total", "").unwrap_or(f64::NAN);
        let _ = writeln!(
            o,
            "Non-reading clients: {} connections, each left unread for {} s and then inspected (what the kernel had buffered for it, and how it ended) before reconnecting:",
            self.stalled.len(),
            cfg.stall_cycle.as_secs()
        );
        for (end, (n, lo, hi, held)) in &ends {
            let _ = writeln!(
                o,
                "- {n} × {end} ({lo}–{hi} frames still buffered; shortest hold {held:.0} s)"
            );
        }
        let _ = writeln!(
            o,
            "- aggregator counters at the end: `ndefender_ws_slow_closes_total` {slow} (closes after a write blocked longer than `send_timeout_s`; the other 1008 is \"no frames received\" after 2 × `ping_interval_s`: a client that never reads never answers a ping), `ndefender_ws_resyncs_total` {resyncs}, `ndefender_ws_connections_total` {conns}; the reading clients saw {} drops and {} per-client envelopes.\n",
            self.readers.iter().map(|r| r.drops.len()).sum::<usize>(),
            self.readers.iter().map(|r| r.per_client).sum::<u64>()
        );

        // Time series.
        let _ = writeln!(o, "<details><summary>Time series</summary>\n");
        let _ = writeln!(o, "| t | aggregator RSS MiB / fds | controller RSS MiB / fds | scanner RSS MiB / fds | RemoteID appended | latency p50 / p99 / max ms | agg WS clients | resyncs | slow closes |");
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|");
        for s in &self.samples {
            let p = |i: usize| {
                s.procs
                    .get(i)
                    .and_then(|p| p.as_ref())
                    .map_or("?".into(), |p| format!("{:.1} / {}", mib(p.rss_kib), p.fds))
            };
            let f = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v}"));
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} / {} / {} | {} | {} | {} |",
                fmt_t(s.t),
                p(0),
                p(1),
                p(2),
                s.rid_appended,
                ms(s.lat.0),
                ms(s.lat.1),
                ms(s.lat.2),
                f(s.agg_ws_clients),
                f(s.agg_resyncs),
                f(s.agg_slow_closes)
            );
        }
        let _ = writeln!(o, "\n</details>\n");

        let failures = self.verdict_failures();
        if failures.is_empty() {
            let _ = writeln!(
                o,
                "Verdict: PASS: no loss, every command answered, no upward trend after warm-up (the second half of the samples peaks within max(2 MiB, 5 %) of the first half for RSS, within the non-reading clients' sockets + 2 for descriptors), clean SIGTERM exits."
            );
        } else {
            let _ = writeln!(o, "Verdict: FAIL:");
            for f in failures {
                let _ = writeln!(o, "- {f}");
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: u64, rss_kib: [u64; 3], ticks: [u64; 3]) -> Sample {
        Sample {
            t: Duration::from_secs(t),
            procs: [0, 1, 2].map(|i| {
                Some(ProcUsage {
                    rss_kib: rss_kib[i],
                    cpu_ticks: ticks[i],
                    fds: 10 + i as u64,
                })
            }),
            rid_appended: 0,
            lat_n: 0,
            lat: (f64::NAN, f64::NAN, f64::NAN),
            agg_ws_clients: None,
            agg_resyncs: None,
            agg_slow_closes: None,
        }
    }

    #[test]
    fn footprint_is_taken_after_the_warmup() {
        let samples = [
            // Start-up burst: excluded by the 10 s warm-up.
            sample(0, [1024, 1024, 1024], [0, 0, 0]),
            sample(10, [2048, 3072, 1024], [500, 100, 0]),
            sample(20, [4096, 2048, 1024], [1500, 105, 0]),
            sample(30, [3072, 2048, 1024], [2500, 110, 0]),
        ];
        let f = footprints(&samples, Duration::from_secs(10));
        assert_eq!(f.len(), 3);
        // 2000 ticks = 20 s of CPU over 20 s.
        assert_eq!(f[0].cpu_pct, 100.0);
        assert_eq!((f[0].rss_end_mib, f[0].rss_peak_mib, f[0].fds_end), (3.0, 4.0, 10));
        assert_eq!(f[1].cpu_pct, 0.5);
        assert_eq!(f[1].rss_peak_mib, 3.0);
        assert_eq!(f[2].cpu_pct, 0.0);
        assert!(footprints(&samples[..1], Duration::ZERO)[0].cpu_pct.is_nan());
    }
}
