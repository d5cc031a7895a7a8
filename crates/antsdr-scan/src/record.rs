//! `ndefender-antsdr-scan record --plan <name> --sweeps N --out <base>` (antsdr-scan §2):
//! runs the configured source through the normal engine and writes every captured step as
//! one SigMF capture segment.

use crate::classify::Profiles;
use crate::config::ScanConfig;
use crate::engine::{build_source, uses_virtual_clock, CollectSink, Engine, StepTap};
use crate::plan::PlanSet;
use crate::source::sigmf::SigmfWriter;
use ndefender_contract::time::{Clock, ManualClock, SystemClock};
use rustfft::num_complex::Complex32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Writes each step to a shared [`SigmfWriter`]; the first write error is kept.
#[derive(Clone)]
pub struct SigmfTap {
    pub writer: Arc<Mutex<Option<SigmfWriter>>>,
    pub error: Arc<Mutex<Option<String>>>,
}

impl StepTap for SigmfTap {
    fn step(&mut self, plan: &str, sweep_seq: u64, lo_hz: u64, start_ms: u64, gain_db: f64, iq: &[Complex32]) {
        let r = match self.writer.lock() {
            Ok(mut g) => match g.as_mut() {
                Some(w) => w.add_capture(lo_hz, start_ms, gain_db, plan, sweep_seq, iq),
                None => Ok(()),
            },
            Err(_) => Ok(()),
        };
        if let Err(e) = r {
            if let Ok(mut err) = self.error.lock() {
                err.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Records `sweeps` cycles of `plan` ("default" = `scan.plans`) to `<out>.sigmf-*`.
pub fn record(cfg: &ScanConfig, plan: &str, sweeps: u64, out: &Path) -> Result<PathBuf, String> {
    let plans = PlanSet::load(cfg).map_err(|(k, m)| format!("{k}: {m}"))?;
    let profiles = Profiles::load(&cfg.classification.profiles)?;
    let chosen = if plan == "default" {
        plans.active(&cfg.scan.plans)?
    } else {
        vec![plans
            .find(plan)
            .ok_or_else(|| format!("unknown plan {plan:?}"))?
            .clone()]
    };
    let virt = uses_virtual_clock(cfg).then(|| Arc::new(ManualClock::new(cfg.synthetic.start_ms)));
    let clock: Arc<dyn Clock> = match &virt {
        Some(v) => v.clone(),
        None => Arc::new(SystemClock),
    };
    let source = build_source(cfg, &plans, clock.now_ms())?;
    let writer = SigmfWriter::create(
        out,
        source.sample_rate(),
        &format!("ndefender-antsdr-scan record --plan {plan}"),
    )
    .map_err(|e| format!("{}: {e}", out.display()))?;
    let tap = SigmfTap {
        writer: Arc::new(Mutex::new(Some(writer))),
        error: Arc::new(Mutex::new(None)),
    };
    let mut c = cfg.clone();
    c.output.stats_interval_s = 0.0;
    let mut engine = Engine::new(
        c,
        plans,
        profiles,
        source,
        clock,
        virt,
        Box::new(CollectSink::default()),
    )?;
    engine.set_tap(Box::new(tap.clone()));
    let label = if plan == "default" {
        "default".to_owned()
    } else {
        chosen[0].name.clone()
    };
    engine.start(chosen, &label);
    engine.run_cycles(sweeps);
    if let Some(e) = tap.error.lock().ok().and_then(|g| g.clone()) {
        return Err(e);
    }
    let w = tap
        .writer
        .lock()
        .ok()
        .and_then(|mut g| g.take())
        .ok_or("recorder lost its writer")?;
    w.finish().map_err(|e| e.to_string())
}
