//! The serial link task (PROTOCOL.md §15.1–15.8, aggregator §7): one task owns the
//! port; it frames lines, applies them under the core lock, runs one command at a
//! time with ack correlation and retries, probes RTT while idle, and reopens with
//! backoff when the board goes away.

use super::line::{self, AckFields, DeviceInput};
use super::port::{select_port, PortRoots};
use super::translate::FwCommand;
use crate::config::Esp32Config;
use crate::core::{esp32 as state, Core};
use ndefender_contract::events::kind;
use ndefender_service::metrics::{CounterFamily, Histogram};
use ndefender_service::Backoff;
use ndefender_service::Shutdown;
use ndefender_tail::{Frame, LineFramer};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The firmware answered (its COMMAND_ACK is already published).
    Ack { ok: bool, err: Option<String> },
    /// The link was down at submit or dropped while queued or in flight.
    NotConnected,
    /// No ack after the retries, or not sent within the queue timeout.
    Timeout,
}

/// Why a command could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    NotConnected,
    Busy,
}

struct Job {
    id: String,
    cmd: FwCommand,
    enqueued: Instant,
    reply: oneshot::Sender<Outcome>,
}

/// Counters for `/metrics` (aggregator §14).
#[derive(Debug, Default)]
pub struct LinkStats {
    pub telemetry: AtomicU64,
    pub acks: AtomicU64,
    pub log_events: AtomicU64,
    pub other_types: AtomicU64,
    pub overlong: AtomicU64,
    pub invalid: AtomicU64,
    pub invalid_utf8: AtomicU64,
    pub late_acks: AtomicU64,
    pub duplicate_acks: AtomicU64,
    pub unknown_acks: AtomicU64,
    pub reconnects: AtomicU64,
    pub timeouts: AtomicU64,
    /// `esp32_commands_total{cmd,outcome}`: every submitted command, once, by how it ended.
    pub commands: CounterFamily,
    /// `esp32_ack_rtt_seconds`: write of the command line → its ack.
    pub ack_rtt: AckRtt,
}

const RTT_BOUNDS: &[f64] = &[0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0];

#[derive(Debug)]
pub struct AckRtt(pub std::sync::Mutex<Histogram>);

impl Default for AckRtt {
    fn default() -> Self {
        Self(std::sync::Mutex::new(Histogram::new(RTT_BOUNDS)))
    }
}

impl Job {
    /// Answers the submitter and counts the outcome.
    fn finish(self, stats: &LinkStats, o: Outcome) {
        let outcome = match &o {
            Outcome::Ack { ok: true, .. } => "ok",
            Outcome::Ack { ok: false, .. } => "error",
            Outcome::NotConnected => "not_connected",
            Outcome::Timeout => "timeout",
        };
        stats
            .commands
            .inc(&format!("cmd=\"{}\",outcome=\"{outcome}\"", self.cmd.cmd));
        let _ = self.reply.send(o);
    }
}

/// The handle the REST side submits commands through.
#[derive(Clone)]
pub struct Esp32Link {
    tx: mpsc::Sender<Job>,
    connected: Arc<AtomicBool>,
    pub stats: Arc<LinkStats>,
}

impl Esp32Link {
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Queues a command (FIFO behind the one in flight). Fails at once when the
    /// link is down or the queue is full.
    pub fn submit(&self, id: String, cmd: FwCommand) -> Result<oneshot::Receiver<Outcome>, SubmitError> {
        if !self.is_connected() {
            return Err(SubmitError::NotConnected);
        }
        let (reply, rx) = oneshot::channel();
        let job = Job {
            id,
            cmd,
            enqueued: Instant::now(),
            reply,
        };
        match self.tx.try_send(job) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::TrySendError::Full(_)) => Err(SubmitError::Busy),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SubmitError::NotConnected),
        }
    }
}

/// Starts the link task.
pub fn spawn(cfg: Esp32Config, core: Core, shutdown: Shutdown) -> Esp32Link {
    spawn_with_roots(cfg, core, shutdown, PortRoots::default())
}

pub fn spawn_with_roots(cfg: Esp32Config, core: Core, shutdown: Shutdown, roots: PortRoots) -> Esp32Link {
    let (tx, rx) = mpsc::channel(cfg.queue_len.max(1));
    let connected = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(LinkStats::default());
    let link = Esp32Link {
        tx,
        connected: connected.clone(),
        stats: stats.clone(),
    };
    tokio::spawn(run(cfg, core, rx, connected, stats, shutdown, roots));
    link
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Eof,
    ReadError,
    WriteError,
    TelemetryTimeout,
    Shutdown,
}

impl End {
    fn code(self) -> &'static str {
        match self {
            End::Eof => "serial_eof",
            End::ReadError | End::WriteError => "serial_read_error",
            End::TelemetryTimeout => "telemetry_timeout",
            End::Shutdown => "shutting_down",
        }
    }
}

/// Reopen delays 1, 2, 4, 8, 10, 10… s (PROTOCOL.md §15.6).
fn reopen_backoff() -> Backoff {
    Backoff::new(Duration::from_secs(1), Duration::from_secs(10))
}
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
const OPEN_TIMEOUT: Duration = Duration::from_secs(2);

async fn run(
    cfg: Esp32Config,
    core: Core,
    mut rx: mpsc::Receiver<Job>,
    connected: Arc<AtomicBool>,
    stats: Arc<LinkStats>,
    shutdown: Shutdown,
    roots: PortRoots,
) {
    let mut backoff = reopen_backoff();
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let mut first = true;
    loop {
        if shutdown.is_triggered() {
            return;
        }
        if !first {
            stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        let configured = cfg.port.clone();
        let r = roots.clone();
        let path = tokio::task::spawn_blocking(move || select_port(&configured, &r))
            .await
            .unwrap_or_else(|_| roots.fallback.clone());
        let opened = tokio::time::timeout(OPEN_TIMEOUT, async {
            let p = path.to_string_lossy().into_owned();
            let b = tokio_serial::new(p, cfg.baud)
                .data_bits(tokio_serial::DataBits::Eight)
                .parity(tokio_serial::Parity::None)
                .stop_bits(tokio_serial::StopBits::One)
                .flow_control(tokio_serial::FlowControl::None);
            tokio_serial::SerialStream::open(&b)
        })
        .await;
        let end = match opened {
            Ok(Ok(port)) => {
                tracing::info!(port = %path.display(), "esp32 port open");
                session(&cfg, &core, port, &mut rx, &connected, &stats, &mut backoff, &shutdown).await
            }
            Ok(Err(e)) => {
                let code = if path.exists() {
                    "serial_open_failed"
                } else {
                    "serial_port_not_found"
                };
                tracing::debug!(port = %path.display(), error = %e, code, "esp32 open failed");
                core.mutate(|st| state::on_link_down(st, code));
                End::Eof
            }
            Err(_) => {
                core.mutate(|st| state::on_link_down(st, "serial_open_failed"));
                End::Eof
            }
        };
        connected.store(false, Ordering::Release);
        if end != End::Shutdown {
            core.mutate(|st| state::on_link_down(st, end.code()));
        }
        // Everything still queued fails now rather than at its timeout.
        while let Ok(job) = rx.try_recv() {
            job.finish(&stats, Outcome::NotConnected);
        }
        if end == End::Shutdown {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = &mut stop => return,
        }
    }
}

struct InFlight {
    job: Job,
    line: String,
    attempts: u32,
    deadline: Instant,
    written: Instant,
}

/// Ids remembered for late/duplicate ack classification.
const REMEMBER: usize = 64;

fn remember(q: &mut VecDeque<(String, FwCommand)>, id: String, cmd: FwCommand) {
    if q.len() >= REMEMBER {
        q.pop_front();
    }
    q.push_back((id, cmd));
}

#[allow(clippy::too_many_arguments)]
async fn session(
    cfg: &Esp32Config,
    core: &Core,
    port: tokio_serial::SerialStream,
    rx: &mut mpsc::Receiver<Job>,
    connected: &AtomicBool,
    stats: &LinkStats,
    backoff: &mut Backoff,
    shutdown: &Shutdown,
) -> End {
    let (mut rd, mut wr) = tokio::io::split(port);
    let mut framer = LineFramer::new(cfg.max_line_bytes);
    let mut buf = vec![0u8; 4096];
    let opened = Instant::now();
    let stale = Duration::from_secs_f64(cfg.stale_s);
    let ack_timeout = Duration::from_secs_f64(cfg.command_timeout_s);
    let queue_timeout = Duration::from_secs_f64(cfg.queue_timeout_s);
    let probe_every = (cfg.probe_interval_s > 0.0).then(|| Duration::from_secs_f64(cfg.probe_interval_s));
    let mut last_tel: Option<Instant> = None;
    let mut inflight: Option<InFlight> = None;
    let mut timed_out: VecDeque<(String, FwCommand)> = VecDeque::new();
    let mut done: VecDeque<(String, FwCommand)> = VecDeque::new();
    let mut probe: Option<(String, Instant)> = None;
    let mut probe_seq: u64 = 0;
    let mut last_exchange = Instant::now();
    let mut check = tokio::time::interval(Duration::from_millis(100));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown.wait();
    tokio::pin!(stop);

    let end = loop {
        tokio::select! {
            r = rd.read(&mut buf) => {
                let n = match r {
                    Ok(0) => break End::Eof,
                    Ok(n) => n,
                    Err(e) => {
                        tracing::debug!(error = %e, "esp32 read error");
                        break End::ReadError;
                    }
                };
                let mut lines: Vec<Option<DeviceInput>> = Vec::new();
                framer.feed(&buf[..n], |f| match f {
                    Frame::Line { data, .. } => {
                        let (input, invalid_utf8) = line::classify(data);
                        if invalid_utf8 {
                            stats.invalid_utf8.fetch_add(1, Ordering::Relaxed);
                        }
                        if input == DeviceInput::NotJson {
                            let text = String::from_utf8_lossy(data);
                            tracing::debug!(line = %text.chars().take(80).collect::<String>(), "esp32: non-JSON line");
                        }
                        lines.push(Some(input));
                    }
                    Frame::Oversize { .. } => lines.push(None),
                });
                for l in lines {
                    let Some(input) = l else {
                        stats.overlong.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    match input {
                        DeviceInput::Blank => {}
                        DeviceInput::NotJson => {
                            stats.invalid.fetch_add(1, Ordering::Relaxed);
                        }
                        DeviceInput::Legacy => core.mutate(state::on_legacy_protocol),
                        DeviceInput::Telemetry(obj) => {
                            stats.telemetry.fetch_add(1, Ordering::Relaxed);
                            core.mutate(|st| state::on_telemetry(st, &obj));
                            last_tel = Some(Instant::now());
                            connected.store(true, Ordering::Release);
                            backoff.reset();
                        }
                        DeviceInput::CommandAck(obj) => {
                            stats.acks.fetch_add(1, Ordering::Relaxed);
                            let ack = AckFields::from_obj(&obj);
                            on_ack(core, stats, ack, &mut inflight, &mut probe, &mut timed_out, &mut done);
                            last_exchange = Instant::now();
                        }
                        DeviceInput::LogEvent(obj) => {
                            stats.log_events.fetch_add(1, Ordering::Relaxed);
                            core.mutate(|st| state::on_log_event(st, &obj));
                        }
                        DeviceInput::OtherType => {
                            stats.other_types.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            job = rx.recv(), if inflight.is_none() && last_tel.is_some() => {
                let Some(job) = job else { break End::Shutdown };
                if job.enqueued.elapsed() > queue_timeout {
                    stats.timeouts.fetch_add(1, Ordering::Relaxed);
                    job.finish(stats, Outcome::Timeout);
                    continue;
                }
                let line = job.cmd.line(&job.id);
                if !write_line(&mut wr, &line).await {
                    job.finish(stats, Outcome::NotConnected);
                    break End::WriteError;
                }
                let now = Instant::now();
                inflight = Some(InFlight { job, line, attempts: 1, deadline: now + ack_timeout, written: now });
                last_exchange = now;
            }
            _ = check.tick() => {
                let now = Instant::now();
                let since = last_tel.map_or(now.saturating_duration_since(opened), |t| now.saturating_duration_since(t));
                if since > stale {
                    break End::TelemetryTimeout;
                }
                if let Some(f) = &mut inflight {
                    if now >= f.deadline {
                        if f.attempts <= cfg.command_retries {
                            // Same id: the firmware may have executed the first copy.
                            f.attempts += 1;
                            f.deadline = now + ack_timeout;
                            let line = f.line.clone();
                            if !write_line(&mut wr, &line).await {
                                break End::WriteError;
                            }
                        } else if let Some(f) = inflight.take() {
                            stats.timeouts.fetch_add(1, Ordering::Relaxed);
                            remember(&mut timed_out, f.job.id.clone(), f.job.cmd.clone());
                            f.job.finish(stats, Outcome::Timeout);
                        }
                    }
                }
                if let Some(every) = probe_every {
                    if inflight.is_none() && probe.is_none() && last_tel.is_some() && now.saturating_duration_since(last_exchange) >= every {
                        probe_seq += 1;
                        let id = format!("probe-{probe_seq}");
                        let line = FwCommand { cmd: "GET_STATUS", args: vec![] }.line(&id);
                        if !write_line(&mut wr, &line).await {
                            break End::WriteError;
                        }
                        probe = Some((id, now));
                        last_exchange = now;
                    }
                }
                if probe.as_ref().is_some_and(|(_, t)| now.saturating_duration_since(*t) > ack_timeout * 2) {
                    probe = None;
                }
            }
            _ = &mut stop => break End::Shutdown,
        }
    };
    if let Some(f) = inflight.take() {
        f.job.finish(stats, Outcome::NotConnected);
    }
    end
}

async fn write_line<W: AsyncWriteExt + Unpin>(wr: &mut W, line: &str) -> bool {
    match tokio::time::timeout(WRITE_TIMEOUT, async {
        wr.write_all(line.as_bytes()).await?;
        wr.flush().await
    })
    .await
    {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "esp32 write failed");
            false
        }
        Err(_) => {
            tracing::warn!("esp32 write blocked > 1 s");
            false
        }
    }
}

fn on_ack(
    core: &Core,
    stats: &LinkStats,
    ack: AckFields,
    inflight: &mut Option<InFlight>,
    probe: &mut Option<(String, Instant)>,
    timed_out: &mut VecDeque<(String, FwCommand)>,
    done: &mut VecDeque<(String, FwCommand)>,
) {
    let AckFields {
        id,
        ok,
        err,
        cmd: cmd_name,
    } = ack;
    let now = Instant::now();
    if probe.as_ref().is_some_and(|(p, _)| *p == id) {
        if let Some((_, sent)) = probe.take() {
            let rtt = now.saturating_duration_since(sent).as_millis() as u64;
            core.mutate(|st| state::set_rtt(st, rtt));
        }
        return;
    }
    if inflight.as_ref().is_some_and(|f| f.job.id == id) {
        let Some(f) = inflight.take() else { return };
        let rtt_d = now.saturating_duration_since(f.written);
        if let Ok(mut h) = stats.ack_rtt.0.lock() {
            h.observe(rtt_d.as_secs_f64());
        }
        let rtt = rtt_d.as_millis() as u64;
        let cmd = f.job.cmd.clone();
        core.mutate(|st| {
            state::set_rtt(st, rtt);
            state::emit_ack(st, &id, ok, err.as_deref(), cmd_name.as_deref());
            state::on_command_result(st, cmd.cmd, cmd.arg("vrx_id"), ok, err.as_deref());
        });
        remember(done, id, cmd);
        f.job.finish(stats, Outcome::Ack { ok, err });
        return;
    }
    if let Some(pos) = timed_out.iter().position(|(t, _)| *t == id) {
        // The client already got 504; the late ack tells everyone the real outcome.
        stats.late_acks.fetch_add(1, Ordering::Relaxed);
        if let Some((id, cmd)) = timed_out.remove(pos) {
            core.mutate(|st| {
                state::emit_ack(st, &id, ok, err.as_deref(), cmd_name.as_deref());
                state::on_command_result(st, cmd.cmd, cmd.arg("vrx_id"), ok, err.as_deref());
            });
            remember(done, id, cmd);
        }
        return;
    }
    if done.iter().any(|(d, _)| *d == id) || id.starts_with("probe-") {
        stats.duplicate_acks.fetch_add(1, Ordering::Relaxed);
        return;
    }
    stats.unknown_acks.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(id = %id, kind = kind::COMMAND_ACK, "esp32 ack for an unknown id ignored");
}
