//! The daemon's two threads: the scan thread (owns the source and the [`Engine`], takes
//! control messages between steps) and the output thread (JSONL first, then WS and ring), so
//! that disk I/O never stalls the DSP.

use crate::classify::Profiles;
use crate::config::ScanConfig;
use crate::engine::{build_source, Engine, EngineStatus, Sink, Work};
use crate::output::{FsOpener, JsonlWriter};
use crate::plan::{Plan, PlanSet};
use crate::source::SourceError;
use crate::state::{rf_envelope, stats_envelope, Shared};
use crate::tracker::RfEvent;
use ndefender_contract::enums::GainMode;
use ndefender_contract::events::RfScanStats;
use ndefender_contract::time::{Clock, ManualClock};
use ndefender_contract::TimestampField;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Batches the output thread may hold before the scan thread drops (and counts) one.
const OUTPUT_QUEUE: usize = 256;

pub type Reply<T> = oneshot::Sender<T>;

/// What loading the config yields, at start and on `config/reload`: the config, its sweep
/// plans and the classifier's profiles.
pub struct Loaded {
    pub cfg: ScanConfig,
    pub plans: PlanSet,
    pub profiles: Profiles,
}

/// Requests the API sends to the scan thread; each is applied between steps.
pub enum Control {
    Start(Vec<Plan>, String, Reply<()>),
    Stop(Reply<()>),
    Gain(GainMode, f64, Reply<Result<(f64, bool), SourceError>>),
    Reset(Reply<Result<(), SourceError>>),
    Calibrate(String, Reply<Result<(), SourceError>>),
    Reload(Box<Loaded>, Reply<Result<(), String>>),
    Shutdown,
}

enum OutMsg {
    Batch(Vec<RfEvent>, Option<RfScanStats>),
    Reopen,
    Stop(oneshot::Sender<()>),
}

/// The daemon's [`Sink`]: status into the shared state, batches to the output thread.
struct DaemonSink {
    shared: Arc<Shared>,
    out: SyncSender<OutMsg>,
}

impl Sink for DaemonSink {
    fn publish(&mut self, events: Vec<RfEvent>, stats: Option<RfScanStats>) {
        match self.out.try_send(OutMsg::Batch(events, stats)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared.lock().dropped_batches += 1;
                tracing::warn!("output queue full: batch dropped");
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
    fn status(&mut self, status: &EngineStatus) {
        self.shared.lock().status = Some(status.clone());
    }
}

/// Handles to the running threads.
pub struct Threads {
    pub control: mpsc::Sender<Control>,
    out: SyncSender<OutMsg>,
    scan: Option<JoinHandle<()>>,
    output: Option<JoinHandle<()>>,
}

impl Threads {
    /// SIGHUP: reopen the JSONL before the next batch.
    pub fn reopen_output(&self) {
        let _ = self.out.try_send(OutMsg::Reopen);
    }

    /// Stops the scan thread (no LOST is emitted), then flushes and syncs the JSONL.
    pub fn stop(mut self) {
        let _ = self.control.send(Control::Shutdown);
        if let Some(h) = self.scan.take() {
            let _ = h.join();
        }
        let (tx, rx) = oneshot::channel();
        if self.out.send(OutMsg::Stop(tx)).is_ok() {
            let _ = rx.blocking_recv();
        }
        if let Some(h) = self.output.take() {
            let _ = h.join();
        }
    }
}

/// Starts the output and scan threads. `virt` is set when the scan runs on a virtual clock.
pub fn start(
    loaded: Loaded,
    clock: Arc<dyn Clock>,
    virt: Option<Arc<ManualClock>>,
    shared: Arc<Shared>,
) -> std::io::Result<Threads> {
    let Loaded { cfg, plans, profiles } = loaded;
    let (out_tx, out_rx) = mpsc::sync_channel::<OutMsg>(OUTPUT_QUEUE);
    let writer = JsonlWriter::new(
        cfg.output.jsonl_path.clone(),
        Box::new(FsOpener),
        cfg.output.fsync,
        Duration::from_millis(cfg.output.fsync_interval_ms),
    )
    .with_max_bytes(cfg.output.max_bytes);
    let out_shared = shared.clone();
    let output = std::thread::Builder::new()
        .name("antsdr-output".into())
        .spawn(move || output_loop(writer, out_rx, out_shared))?;
    let (ctl_tx, ctl_rx) = mpsc::channel::<Control>();
    let sink = DaemonSink {
        shared: shared.clone(),
        out: out_tx.clone(),
    };
    let scan = std::thread::Builder::new().name("antsdr-scan".into()).spawn(move || {
        shared.lock().scan_thread_alive = true;
        let origin = clock.now_ms();
        let engine = build_source(&cfg, &plans, origin)
            .and_then(|src| Engine::new(cfg.clone(), plans, profiles, src, clock, virt, Box::new(sink)));
        match engine {
            Ok(mut e) => {
                if cfg.scan.autostart {
                    if let Err(err) = e.start_default() {
                        tracing::error!(error = %err, "autostart failed");
                    }
                }
                scan_loop(&mut e, ctl_rx);
            }
            Err(err) => tracing::error!(error = %err, "scan engine not started"),
        }
        shared.lock().scan_thread_alive = false;
    })?;
    Ok(Threads {
        control: ctl_tx,
        out: out_tx,
        scan: Some(scan),
        output: Some(output),
    })
}

/// Applies one control message; false on shutdown.
fn handle(e: &mut Engine, c: Control) -> bool {
    match c {
        Control::Start(plans, label, r) => {
            e.start(plans, &label);
            let _ = r.send(());
        }
        Control::Stop(r) => {
            e.stop();
            let _ = r.send(());
        }
        Control::Gain(mode, g, r) => {
            let _ = r.send(e.set_gain(mode, g));
        }
        Control::Reset(r) => {
            let _ = r.send(e.reset_device());
        }
        Control::Calibrate(kind, r) => {
            let _ = r.send(e.calibrate(&kind));
        }
        Control::Reload(b, r) => {
            let Loaded { cfg, plans, profiles } = *b;
            let _ = r.send(e.reload(cfg, plans, profiles));
        }
        Control::Shutdown => return false,
    }
    true
}

fn scan_loop(e: &mut Engine, rx: Receiver<Control>) {
    loop {
        loop {
            match rx.try_recv() {
                Ok(c) => {
                    if !handle(e, c) {
                        return;
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        }
        let wait = match e.work() {
            Work::Busy => continue,
            Work::Finished => None,
            Work::Wait(t) => Some(t),
        };
        if e.is_virtual() && e.is_running() {
            if let Some(t) = wait {
                e.advance_to(t);
            }
            continue;
        }
        // Real time (or a stopped virtual scan, whose clock follows real time in ticks).
        let tick = Duration::from_millis(e.config().tracker.tick_ms.max(1));
        let d = match wait {
            Some(t) if !e.is_virtual() => t.saturating_duration_since(Instant::now()),
            _ => tick,
        };
        match rx.recv_timeout(d) {
            Ok(c) => {
                if !handle(e, c) {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if let (true, Some(t)) = (e.is_virtual(), wait) {
                    e.advance_to(t);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn output_loop(mut w: JsonlWriter, rx: Receiver<OutMsg>, shared: Arc<Shared>) {
    let poll = Duration::from_millis(200);
    loop {
        let msg = match rx.recv_timeout(poll) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = w.maybe_sync() {
                    tracing::warn!(error = %e, "jsonl sync failed");
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                let _ = w.sync();
                return;
            }
        };
        match msg {
            OutMsg::Batch(events, stats) => {
                let envs: Vec<_> = events
                    .into_iter()
                    .filter_map(|ev| rf_envelope(&ev).map(|env| (ev, env)))
                    .collect();
                let stats_env = stats.as_ref().and_then(stats_envelope);
                let mut lines: Vec<String> = envs
                    .iter()
                    .map(|(_, env)| env.to_json(None, TimestampField::TimestampMs))
                    .collect();
                if let Some(s) = &stats_env {
                    lines.push(s.to_json(None, TimestampField::TimestampMs));
                }
                let result = w.write_batch(&lines);
                {
                    let mut st = shared.lock();
                    st.jsonl_failed = result.is_err();
                    st.jsonl_write_errors = w.write_errors;
                }
                if let Err(e) = result {
                    tracing::warn!(error = %e, path = %w.path().display(), "jsonl write failed");
                }
                shared.publish(&envs, stats_env, true);
            }
            OutMsg::Reopen => w.request_reopen(),
            OutMsg::Stop(done) => {
                if let Err(e) = w.sync() {
                    tracing::warn!(error = %e, "jsonl final sync failed");
                }
                let _ = done.send(());
                return;
            }
        }
    }
}
