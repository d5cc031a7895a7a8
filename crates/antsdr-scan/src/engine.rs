//! The scan loop as a synchronous state machine: source → per-step DSP → band panorama →
//! detection → tracker, with the tracker timer, the cycle budget, gain changes between steps,
//! source reopen with backoff, and plan switches at pass boundaries. It owns no thread and no
//! lock: the daemon drives it from its scan thread, tests and replay drive it directly.

use crate::classify::Profiles;
use crate::config::ScanConfig;
use crate::detect::Detector;
use crate::dsp::{DspParams, StepDsp, StepSpectrum};
use crate::plan::{Plan, PlanSet};
pub use crate::source::factory::{build_source, uses_virtual_clock};
use crate::source::{IqSource, SourceError};
use crate::tracker::{PassInfo, RfEvent, Tracker};
use ndefender_contract::enums::GainMode;
use ndefender_contract::events::RfScanStats;
use ndefender_contract::time::{Clock, ManualClock};
use ndefender_service::Backoff;
use rustfft::num_complex::Complex32;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Source reopen delays: 1 s doubling to 30 s, counted on the injected clock.
fn reopen_backoff() -> Backoff {
    Backoff::new(Duration::from_secs(1), Duration::from_secs(30))
}
/// Consecutive failed steps that close and reopen the source (§2).
const REOPEN_AFTER_FAILURES: u32 = 3;
const OVERLOAD_LOG_EVERY: Duration = Duration::from_secs(10);
const OVERRUN_LOG_EVERY: Duration = Duration::from_secs(60);

/// Where the engine's output goes.
pub trait Sink {
    /// One batch: the events of one band pass, or of one timer tick, and maybe the heartbeat.
    fn publish(&mut self, events: Vec<RfEvent>, stats: Option<RfScanStats>);
    /// The engine's externally visible state changed.
    fn status(&mut self, status: &EngineStatus);
}

/// Sees every captured step (the SigMF recorder).
pub trait StepTap {
    fn step(&mut self, plan: &str, sweep_seq: u64, lo_hz: u64, start_ms: u64, gain_db: f64, iq: &[Complex32]);
}

/// A fixed-bucket histogram in seconds, shared with every daemon's `/metrics`.
pub use ndefender_service::metrics::Histogram;

const STEP_BOUNDS: &[f64] = &[0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.5, 1.0];
const SWEEP_BOUNDS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0];
const DSP_BOUNDS: &[f64] = &[0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05];

/// What the API and metrics report about the scan.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineStatus {
    pub connected: bool,
    pub uri: String,
    pub device_error: Option<String>,
    pub temperature_c: Option<f64>,
    pub running: bool,
    pub active_plan: String,
    pub last_update_ms: u64,
    pub sweep_error: Option<String>,
    pub gain_mode: GainMode,
    pub gain_db: f64,
    pub gain_limits: (f64, f64),
    pub frames_processed: u64,
    pub events_emitted: u64,
    pub noise_floor_db: Option<f64>,
    pub peaks: Option<u64>,
    pub overload_active: bool,
    pub cycles_total: u64,
    pub detections_total: u64,
    pub capture_errors_total: u64,
    pub overload_steps_total: u64,
    pub cycle_overruns_total: u64,
    pub contacts_tentative: u64,
    pub contacts_confirmed: u64,
    pub sweep_seq: u64,
    pub finished: bool,
    pub step_seconds: Histogram,
    /// One sweep cycle, first step to last (`antsdr_sweep_seconds`).
    pub sweep_seconds: Histogram,
    pub dsp_seconds: Histogram,
}

/// One step of the schedule: plan and step index, LO, and file metadata.
struct NextStep {
    plan: usize,
    step: usize,
    lo: u64,
    end_ms: Option<u64>,
    pass_end: bool,
    sweep_seq: Option<u64>,
}

struct PassCtx {
    plan: Plan,
    owned: Vec<(f64, f64)>,
    spectra: Vec<StepSpectrum>,
}

impl PassCtx {
    fn new(plan: Plan) -> Self {
        let half = plan.step_hz as f64 / 2.0;
        let owned = plan
            .los
            .iter()
            .map(|lo| (*lo as f64 - half, *lo as f64 + half))
            .collect();
        let spectra = plan.los.iter().map(|_| StepSpectrum::default()).collect();
        Self { plan, owned, spectra }
    }
}

/// What the driver should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// A step ran; call again.
    Busy,
    /// Nothing to do before this monotonic instant (next tick, cycle idle, reconnect).
    Wait(Instant),
    /// A file source reached its end.
    Finished,
}

pub struct Engine {
    cfg: ScanConfig,
    plans: PlanSet,
    passes: Vec<PassCtx>,
    label: String,
    pending: Option<(Vec<Plan>, String)>,
    source: Box<dyn IqSource>,
    file_mode: bool,
    dsp: StepDsp,
    detector: Detector,
    tracker: Tracker,
    clock: Arc<dyn Clock>,
    virt: Option<Arc<ManualClock>>,
    iq: Vec<Complex32>,
    plan_idx: usize,
    step_idx: usize,
    sweep_seq: u64,
    file_seq: Option<u64>,
    cycle_start: Option<Instant>,
    cycle_wait_until: Option<Instant>,
    next_tick: Instant,
    next_stats: Option<Instant>,
    running: bool,
    want_gain: (GainMode, f64),
    gain_dirty: bool,
    reopen_at: Instant,
    backoff: Backoff,
    failures: u32,
    pass_overload: bool,
    last_overload_log: Option<Instant>,
    last_overrun_log: Option<Instant>,
    status: EngineStatus,
    sink: Box<dyn Sink>,
    tap: Option<Box<dyn StepTap>>,
}

impl Engine {
    /// `virt` is the same clock as `clock` when the run is on a virtual clock.
    pub fn new(
        cfg: ScanConfig,
        plans: PlanSet,
        profiles: Profiles,
        source: Box<dyn IqSource>,
        clock: Arc<dyn Clock>,
        virt: Option<Arc<ManualClock>>,
        sink: Box<dyn Sink>,
    ) -> Result<Engine, String> {
        let file_mode = source.file_plans().is_some();
        // A file source brings its own plans (they replace the configured set at open).
        let active = if file_mode {
            Vec::new()
        } else {
            plans.active(&cfg.scan.plans)?
        };
        let fs = if file_mode {
            cfg.radio.sample_rate as f64
        } else {
            source.sample_rate()
        };
        let dsp = StepDsp::new(DspParams::from_radio(&cfg.radio, fs));
        let now = clock.monotonic();
        let status = EngineStatus {
            connected: false,
            uri: source.uri(),
            device_error: None,
            temperature_c: None,
            running: false,
            active_plan: "default".into(),
            last_update_ms: clock.now_ms(),
            sweep_error: None,
            gain_mode: cfg.radio.gain_mode,
            gain_db: cfg.radio.gain_db,
            gain_limits: (0.0, 0.0),
            frames_processed: 0,
            events_emitted: 0,
            noise_floor_db: None,
            peaks: None,
            overload_active: false,
            cycles_total: 0,
            detections_total: 0,
            capture_errors_total: 0,
            overload_steps_total: 0,
            cycle_overruns_total: 0,
            contacts_tentative: 0,
            contacts_confirmed: 0,
            sweep_seq: 1,
            finished: false,
            step_seconds: Histogram::new(STEP_BOUNDS),
            sweep_seconds: Histogram::new(SWEEP_BOUNDS),
            dsp_seconds: Histogram::new(DSP_BOUNDS),
        };
        let mut e = Engine {
            tracker: Tracker::new(cfg.tracker.clone(), cfg.detector.clone(), profiles),
            want_gain: (cfg.radio.gain_mode, cfg.radio.gain_db),
            iq: vec![Complex32::new(0.0, 0.0); cfg.radio.fft_size * cfg.radio.avg_frames],
            next_tick: now + Duration::from_millis(cfg.tracker.tick_ms),
            cfg,
            plans,
            passes: active.into_iter().map(PassCtx::new).collect(),
            label: "default".into(),
            pending: None,
            source,
            file_mode,
            dsp,
            detector: Detector::new(),
            clock,
            virt,
            plan_idx: 0,
            step_idx: 0,
            sweep_seq: 1,
            file_seq: None,
            cycle_start: None,
            cycle_wait_until: None,
            next_stats: None,
            running: false,
            gain_dirty: false,
            reopen_at: now,
            backoff: reopen_backoff(),
            failures: 0,
            pass_overload: false,
            last_overload_log: None,
            last_overrun_log: None,
            status,
            sink,
            tap: None,
        };
        e.status.gain_limits = e.gain_limits();
        Ok(e)
    }

    pub fn set_tap(&mut self, tap: Box<dyn StepTap>) {
        self.tap = Some(tap);
    }

    pub fn status(&self) -> &EngineStatus {
        &self.status
    }

    pub fn is_running(&self) -> bool {
        self.running
    }

    pub fn is_virtual(&self) -> bool {
        self.virt.is_some()
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    pub fn plans(&self) -> &PlanSet {
        &self.plans
    }

    pub fn config(&self) -> &ScanConfig {
        &self.cfg
    }

    pub fn active_plans(&self) -> Vec<&Plan> {
        self.passes.iter().map(|p| &p.plan).collect()
    }

    fn mono(&self) -> Instant {
        self.clock.monotonic()
    }

    fn push_status(&mut self) {
        let (t, c) = self.tracker.counts();
        self.status.contacts_tentative = t as u64;
        self.status.contacts_confirmed = c as u64;
        self.status.running = self.running;
        self.status.active_plan = self.label.clone();
        self.status.sweep_seq = self.sweep_seq;
        self.sink.status(&self.status);
    }

    /// Intersection of the gain limits of every LO of the loaded plans (§3).
    pub fn gain_limits(&self) -> (f64, f64) {
        let mut lim = (f64::NEG_INFINITY, f64::INFINITY);
        for p in &self.plans.plans {
            for lo in &p.los {
                let (a, b) = self.source.gain_limits(*lo);
                lim = (lim.0.max(a), lim.1.min(b));
            }
        }
        for p in &self.passes {
            for lo in &p.plan.los {
                let (a, b) = self.source.gain_limits(*lo);
                lim = (lim.0.max(a), lim.1.min(b));
            }
        }
        if lim.0.is_finite() && lim.1.is_finite() {
            lim
        } else {
            (0.0, 0.0)
        }
    }

    /// Starts scanning `plans` (labelled `label`), or switches at the next pass boundary.
    pub fn start(&mut self, plans: Vec<Plan>, label: &str) {
        if self.running {
            self.pending = Some((plans, label.to_owned()));
            return;
        }
        if !self.file_mode {
            self.passes = plans.into_iter().map(PassCtx::new).collect();
        }
        self.label = label.to_owned();
        self.running = true;
        self.reset_position();
        let now = self.mono();
        self.next_stats = self.stats_interval().map(|i| now + i);
        self.status.last_update_ms = self.clock.now_ms();
        self.status.finished = false;
        self.push_status();
    }

    /// Starts the configured default set.
    pub fn start_default(&mut self) -> Result<(), String> {
        let plans = if self.file_mode {
            Vec::new()
        } else {
            self.plans.active(&self.cfg.scan.plans)?
        };
        self.start(plans, "default");
        Ok(())
    }

    /// Stops after the current step; contacts stay and expire by TTL (§7.4).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        self.pending = None;
        self.reset_position();
        self.status.last_update_ms = self.clock.now_ms();
        let stats = self.scan_stats();
        self.sink.publish(Vec::new(), Some(stats));
        self.push_status();
    }

    fn reset_position(&mut self) {
        self.plan_idx = 0;
        self.step_idx = 0;
        self.cycle_start = None;
        self.cycle_wait_until = None;
        for p in &mut self.passes {
            for s in &mut p.spectra {
                s.valid = false;
            }
        }
    }

    fn stats_interval(&self) -> Option<Duration> {
        let s = self.cfg.output.stats_interval_s;
        (s > 0.0).then(|| Duration::from_secs_f64(s))
    }

    pub fn scan_stats(&self) -> RfScanStats {
        RfScanStats {
            timestamp_ms: self.clock.now_ms(),
            frames_processed: self.status.frames_processed,
            events_emitted: self.status.events_emitted,
            noise_floor_db: self.status.noise_floor_db.map(crate::classify::round1),
            peaks: self.status.peaks,
            active_plan: Some(self.label.clone()),
        }
    }

    /// Applies a gain between steps; `Ok((read_back, applied_on_connect))`.
    pub fn set_gain(&mut self, mode: GainMode, gain_db: f64) -> Result<(f64, bool), SourceError> {
        self.want_gain = (mode, gain_db);
        self.status.gain_mode = mode;
        if !self.source.is_open() {
            self.gain_dirty = true;
            self.status.gain_db = gain_db;
            self.push_status();
            return Ok((gain_db, true));
        }
        let back = self.source.set_gain(mode, gain_db)?;
        self.gain_dirty = false;
        self.status.gain_db = back;
        self.push_status();
        Ok((back, false))
    }

    /// Closes and reopens the source, re-applying every attribute (`device/reset`).
    pub fn reset_device(&mut self) -> Result<(), SourceError> {
        self.source.close();
        let r = self.try_open();
        self.push_status();
        r
    }

    pub fn calibrate(&mut self, kind: &str) -> Result<(), SourceError> {
        if !self.source.is_open() {
            return Err(SourceError::new("device_not_connected", "source not connected"));
        }
        self.source.calibrate(kind)
    }

    /// Applies a validated new config between steps; contacts of unchanged plans are kept.
    pub fn reload(&mut self, cfg: ScanConfig, plans: PlanSet, profiles: Profiles) -> Result<(), String> {
        let active = plans.active(&cfg.scan.plans)?;
        let unchanged: Vec<String> = self
            .plans
            .plans
            .iter()
            .filter(|p| plans.find(&p.name) == Some(*p))
            .map(|p| p.name.clone())
            .collect();
        self.tracker.retain_plans(&unchanged);
        self.tracker
            .reconfigure(cfg.tracker.clone(), cfg.detector.clone(), profiles);
        let dsp_changed = cfg.radio.fft_size != self.cfg.radio.fft_size
            || cfg.radio.avg_frames != self.cfg.radio.avg_frames
            || cfg.radio.usable_fraction != self.cfg.radio.usable_fraction
            || cfg.radio.dc_guard_hz != self.cfg.radio.dc_guard_hz
            || cfg.radio.cal_offset_db != self.cfg.radio.cal_offset_db;
        if dsp_changed && !self.file_mode {
            self.dsp = StepDsp::new(DspParams::from_radio(&cfg.radio, self.source.sample_rate()));
            self.iq = vec![Complex32::new(0.0, 0.0); cfg.radio.fft_size * cfg.radio.avg_frames];
        }
        let gain_changed =
            cfg.radio.gain_mode != self.cfg.radio.gain_mode || cfg.radio.gain_db != self.cfg.radio.gain_db;
        self.plans = plans;
        self.cfg = cfg;
        if gain_changed || dsp_changed {
            self.want_gain = (self.cfg.radio.gain_mode, self.cfg.radio.gain_db);
            self.gain_dirty = true;
        }
        if !self.file_mode && self.label == "default" {
            if self.running {
                self.pending = Some((active, "default".into()));
            } else {
                self.passes = active.into_iter().map(PassCtx::new).collect();
            }
        }
        self.status.gain_limits = self.gain_limits();
        self.push_status();
        Ok(())
    }

    fn try_open(&mut self) -> Result<(), SourceError> {
        match self.source.open() {
            Ok(()) => {
                self.backoff.reset();
                self.failures = 0;
                if let Some(plans) = self.source.file_plans() {
                    let fs = self.source.sample_rate();
                    if (fs - self.dsp.params().sample_rate).abs() > 0.5 {
                        self.dsp = StepDsp::new(DspParams::from_radio(&self.cfg.radio, fs));
                    }
                    if self.passes.iter().map(|p| &p.plan).ne(plans.iter()) {
                        self.label = plans.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(",");
                        self.passes = plans.into_iter().map(PassCtx::new).collect();
                    }
                }
                let (mode, gain) = self.want_gain;
                match self.source.set_gain(mode, gain) {
                    Ok(back) => {
                        self.status.gain_db = back;
                        self.gain_dirty = false;
                    }
                    Err(e) => tracing::warn!(error = %e, "gain not applied on connect"),
                }
                self.status.connected = true;
                self.status.device_error = None;
                self.status.temperature_c = self.source.temperature_c();
                self.status.gain_limits = self.gain_limits();
                tracing::info!(uri = %self.source.uri(), "source connected");
                Ok(())
            }
            Err(e) => {
                self.status.connected = false;
                self.status.device_error = Some(e.code.to_owned());
                let now = self.mono();
                let wait = self.backoff.next_delay();
                self.reopen_at = now + wait;
                tracing::warn!(error = %e, retry_s = wait.as_secs(), "source unavailable");
                Err(e)
            }
        }
    }

    /// Runs the timer when due: expiry, pending UPDATEs, the RF_SCAN_STATS heartbeat.
    pub fn run_ticks(&mut self) {
        let now = self.mono();
        if now < self.next_tick {
            return;
        }
        let tick = Duration::from_millis(self.cfg.tracker.tick_ms.max(1));
        while self.next_tick <= now {
            self.next_tick += tick;
        }
        let events = self.tracker.tick(now, self.clock.now_ms());
        let stats = match self.next_stats {
            Some(t) if self.running && now >= t => {
                self.next_stats = self.stats_interval().map(|i| now + i);
                Some(self.scan_stats())
            }
            _ => None,
        };
        self.emit(events, stats);
    }

    fn emit(&mut self, events: Vec<RfEvent>, stats: Option<RfScanStats>) {
        let had = !events.is_empty();
        self.status.events_emitted += events.len() as u64;
        if had || stats.is_some() {
            self.sink.publish(events, stats);
        }
        self.push_status();
    }

    /// Advances a virtual clock to `target`, running every tick that falls on the way.
    pub fn advance_to(&mut self, target: Instant) {
        let Some(v) = self.virt.clone() else {
            return;
        };
        loop {
            let now = v.monotonic();
            let next = self.next_tick.min(target);
            if next > now {
                // Whole milliseconds only: ManualClock's wall clock truncates to ms, and
                // advancing it by fractions would let wall and monotonic time drift apart.
                let ms = (next - now).as_nanos().div_ceil(1_000_000) as u64;
                v.advance(Duration::from_millis(ms));
            }
            self.run_ticks();
            if self.next_tick > target || next >= target {
                break;
            }
        }
    }

    /// Waits `d` on the engine's clock: virtual time advances, real time sleeps.
    fn wait(&mut self, d: Duration) {
        if d.is_zero() {
            return;
        }
        if self.virt.is_some() {
            let target = self.mono() + d;
            self.advance_to(target);
        } else {
            std::thread::sleep(d);
        }
    }

    /// One unit of work. The driver calls it in a loop and honours [`Work::Wait`].
    pub fn work(&mut self) -> Work {
        self.run_ticks();
        let now = self.mono();
        let next_tick = self.next_tick;
        if !self.running {
            return Work::Wait(next_tick);
        }
        if !self.source.is_open() {
            if now < self.reopen_at {
                return Work::Wait(next_tick.min(self.reopen_at));
            }
            let _ = self.try_open();
            self.push_status();
            return Work::Busy;
        }
        if let Some(t) = self.cycle_wait_until {
            if now < t {
                return Work::Wait(next_tick.min(t));
            }
            self.cycle_wait_until = None;
        }
        self.step()
    }

    fn next_step(&mut self) -> Option<NextStep> {
        if self.file_mode {
            let f = self.source.next_file_step()?;
            return Some(NextStep {
                plan: f.plan_idx,
                step: f.step_idx,
                lo: f.lo_hz,
                end_ms: f.end_ms,
                pass_end: f.pass_end,
                sweep_seq: f.sweep_seq,
            });
        }
        let p = self.passes.get(self.plan_idx)?;
        let lo = *p.plan.los.get(self.step_idx)?;
        Some(NextStep {
            plan: self.plan_idx,
            step: self.step_idx,
            lo,
            end_ms: None,
            pass_end: self.step_idx + 1 == p.plan.los.len(),
            sweep_seq: None,
        })
    }

    fn step(&mut self) -> Work {
        let started = Instant::now();
        let Some(ns) = self.next_step() else {
            if self.file_mode {
                self.running = false;
                self.status.finished = true;
                let stats = self.scan_stats();
                self.sink.publish(Vec::new(), Some(stats));
                self.push_status();
                return Work::Finished;
            }
            self.reset_position();
            return Work::Busy;
        };
        if ns.plan >= self.passes.len() || ns.step >= self.passes[ns.plan].spectra.len() {
            return Work::Busy;
        }
        if self.gain_dirty {
            let (mode, gain) = self.want_gain;
            if let Ok(back) = self.source.set_gain(mode, gain) {
                self.status.gain_db = back;
                self.gain_dirty = false;
            }
        }
        // Radio time of the step: modeled sources wait it out here.
        let modeled = self.source.modeled_step();
        match ns.end_ms {
            Some(end) if self.virt.is_some() => {
                let ahead = end.saturating_sub(self.clock.now_ms());
                self.wait(Duration::from_millis(ahead));
            }
            _ => self.wait(modeled),
        }
        // A recording's cycle ends where its sweep_seq changes: measured start to start,
        // like the live cycle period it was recorded with.
        if let Some(seq) = ns.sweep_seq {
            if self.file_seq.is_some_and(|s| s != seq) {
                self.end_cycle();
            }
            self.file_seq = Some(seq);
        }
        if self.cycle_start.is_none() {
            let now = self.mono();
            self.cycle_start = Some(now);
        }
        let end_ms = ns.end_ms.unwrap_or_else(|| self.clock.now_ms());
        let result = self.source.capture(ns.lo, end_ms, &mut self.iq);
        let ctx = &mut self.passes[ns.plan];
        let (own_lo, own_hi) = ctx.owned[ns.step];
        match result {
            Ok(cap) => {
                self.failures = 0;
                let t = Instant::now();
                let spec = &mut ctx.spectra[ns.step];
                self.dsp.process(&self.iq, ns.lo, own_lo, own_hi, spec);
                spec.capture_end_ms = cap.end_ms;
                spec.gain_db = cap.gain_db;
                spec.overload = cap.overload;
                self.status.dsp_seconds.observe(t.elapsed().as_secs_f64());
                self.status.frames_processed += 1;
                if cap.overload {
                    self.pass_overload = true;
                    self.status.overload_steps_total += 1;
                    let now = Instant::now();
                    if self.last_overload_log.is_none_or(|l| now - l >= OVERLOAD_LOG_EVERY) {
                        self.last_overload_log = Some(now);
                        tracing::warn!(lo_hz = ns.lo, "ADC overload: lower the gain");
                    }
                }
                self.status.gain_db = cap.gain_db;
                if let Some(tap) = self.tap.as_mut() {
                    let dur_ms = (self.iq.len() as f64 / self.dsp.params().sample_rate * 1000.0).round() as u64;
                    tap.step(
                        &ctx.plan.name,
                        self.sweep_seq,
                        ns.lo,
                        cap.end_ms.saturating_sub(dur_ms),
                        cap.gain_db,
                        &self.iq,
                    );
                }
            }
            Err(e) => {
                ctx.spectra[ns.step].valid = false;
                self.status.capture_errors_total += 1;
                self.status.device_error = Some(e.code.to_owned());
                self.failures += 1;
                tracing::debug!(error = %e, lo_hz = ns.lo, "capture failed");
                if self.failures >= REOPEN_AFTER_FAILURES {
                    tracing::warn!(error = %e, "closing the source after repeated failures");
                    self.source.close();
                    self.status.connected = false;
                    self.reopen_at = self.mono();
                }
            }
        }
        self.status.step_seconds.observe(started.elapsed().as_secs_f64());
        if ns.pass_end {
            self.finish_pass(ns.plan);
        }
        if !self.file_mode {
            self.step_idx += 1;
            if ns.pass_end {
                self.step_idx = 0;
                self.plan_idx += 1;
                if let Some((plans, label)) = self.pending.take() {
                    self.passes = plans.into_iter().map(PassCtx::new).collect();
                    self.label = label;
                    self.plan_idx = 0;
                    self.end_cycle();
                } else if self.plan_idx >= self.passes.len() {
                    self.plan_idx = 0;
                    self.end_cycle();
                }
            }
        } else if ns.sweep_seq.is_none() && ns.pass_end && ns.plan + 1 == self.passes.len() {
            self.end_cycle();
        }
        Work::Busy
    }

    fn finish_pass(&mut self, pi: usize) {
        let manual = self.want_gain.0 == GainMode::Manual;
        let ctx = &mut self.passes[pi];
        let detections = self.detector.detect(&ctx.spectra, manual, &self.cfg.detector);
        let captured: Vec<(f64, f64)> = ctx
            .spectra
            .iter()
            .zip(&ctx.owned)
            .filter(|(s, _)| s.valid)
            .map(|(_, o)| *o)
            .collect();
        let info = PassInfo {
            plan: &ctx.plan.name,
            band: &ctx.plan.band,
            sweep_seq: self.sweep_seq,
            now: self.clock.monotonic(),
            now_ms: self.clock.now_ms(),
            captured: &captured,
        };
        let events = self.tracker.process_pass(&info, &detections);
        for s in &mut ctx.spectra {
            s.valid = false;
        }
        self.status.noise_floor_db = self.detector.band_floor_db;
        self.status.peaks = Some(detections.len() as u64);
        self.status.detections_total += detections.len() as u64;
        self.status.overload_active = self.pass_overload;
        self.pass_overload = false;
        self.status.last_update_ms = self.clock.now_ms();
        if self.status.connected {
            self.status.device_error = None;
        }
        self.emit(events, None);
    }

    fn end_cycle(&mut self) {
        self.sweep_seq += 1;
        self.status.cycles_total += 1;
        let now = self.mono();
        if let Some(start) = self.cycle_start.take() {
            let took = now.saturating_duration_since(start);
            self.status.sweep_seconds.observe(took.as_secs_f64());
            if took > Duration::from_millis(self.cfg.scan.max_cycle_ms) {
                self.status.cycle_overruns_total += 1;
                let real = Instant::now();
                if self.last_overrun_log.is_none_or(|l| real - l >= OVERRUN_LOG_EVERY) {
                    self.last_overrun_log = Some(real);
                    tracing::warn!(
                        took_ms = took.as_millis() as u64,
                        "sweep cycle overran scan.max_cycle_ms"
                    );
                }
            }
            let min = Duration::from_millis(self.cfg.scan.min_cycle_ms);
            let period = took.max(min);
            self.tracker.observe_cycle(if self.file_mode { took } else { period });
            if !self.file_mode && took < min {
                self.cycle_wait_until = Some(start + min);
            }
        }
    }

    /// Runs until `cycles` more cycles completed (virtual-clock tests and the recorder).
    pub fn run_cycles(&mut self, cycles: u64) {
        let target = self.status.cycles_total + cycles;
        while self.status.cycles_total < target {
            match self.work() {
                Work::Busy => {}
                Work::Finished => return,
                Work::Wait(t) => {
                    if self.virt.is_some() {
                        self.advance_to(t);
                    } else {
                        let now = self.mono();
                        std::thread::sleep(t.saturating_duration_since(now));
                    }
                }
            }
            if !self.running {
                return;
            }
        }
    }

    /// Advances time by `d` while scanning (virtual clock).
    pub fn run_for(&mut self, d: Duration) {
        let end = self.mono() + d;
        while self.mono() < end {
            match self.work() {
                Work::Busy => {}
                Work::Finished => return,
                Work::Wait(t) => {
                    if self.virt.is_some() {
                        self.advance_to(t.min(end));
                    } else {
                        std::thread::sleep(t.min(end).saturating_duration_since(self.mono()));
                    }
                }
            }
        }
    }

    /// Runs a file source to its end (replay).
    pub fn run_to_end(&mut self) {
        self.run_to_end_with(|| true);
    }

    /// [`Engine::run_to_end`], calling `after_step` after each step so a caller can drain its
    /// sink as it goes (bounded memory); `false` stops the run.
    pub fn run_to_end_with(&mut self, mut after_step: impl FnMut() -> bool) {
        loop {
            match self.work() {
                Work::Busy => {
                    if !after_step() {
                        return;
                    }
                }
                Work::Finished => return,
                Work::Wait(t) => {
                    if !self.running {
                        return;
                    }
                    if self.virt.is_some() {
                        self.advance_to(t);
                    } else {
                        std::thread::sleep(t.saturating_duration_since(self.mono()));
                    }
                }
            }
        }
    }
}

/// Everything a collecting run produced: the batches in order and the latest status.
#[derive(Debug, Default)]
pub struct Collected {
    pub batches: Vec<(Vec<RfEvent>, Option<RfScanStats>)>,
    pub status: Option<EngineStatus>,
}

impl Collected {
    pub fn events(&self) -> impl Iterator<Item = &RfEvent> {
        self.batches.iter().flat_map(|(e, _)| e.iter())
    }
}

/// A [`Sink`] that keeps everything in memory (tests, replay, benchmarks).
#[derive(Debug, Clone, Default)]
pub struct CollectSink(pub Arc<std::sync::Mutex<Collected>>);

impl CollectSink {
    pub fn take(&self) -> Collected {
        match self.0.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }
    pub fn with<R>(&self, f: impl FnOnce(&Collected) -> R) -> R {
        match self.0.lock() {
            Ok(g) => f(&g),
            Err(p) => f(&p.into_inner()),
        }
    }
}

impl Sink for CollectSink {
    fn publish(&mut self, events: Vec<RfEvent>, stats: Option<RfScanStats>) {
        if let Ok(mut g) = self.0.lock() {
            g.batches.push((events, stats));
        }
    }
    fn status(&mut self, status: &EngineStatus) {
        if let Ok(mut g) = self.0.lock() {
            g.status = Some(status.clone());
        }
    }
}
