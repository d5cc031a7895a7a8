//! `--bench-dsp` (antsdr-scan §13, interfaces.md): §5 steps 1–7 on pre-generated 12-bit frames
//! of the configured size on one core, then a full default-cycle compute (28 steps of DSP,
//! panorama detection, tracking, classification) on pre-generated IQ.

use crate::classify::Profiles;
use crate::config::ScanConfig;
use crate::detect::Detector;
use crate::dsp::{normalize_ci16, DspParams, StepDsp, StepSpectrum};
use crate::plan::PlanSet;
use crate::source::scene::Scene;
use crate::source::synthetic::{SyntheticSource, SyntheticTiming};
use crate::source::IqSource;
use crate::tracker::{PassInfo, Tracker};
use rustfft::num_complex::Complex32;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    pub msps_per_core: f64,
    pub step_us: f64,
    pub steps: u64,
    pub cycle_ms: f64,
    pub cycle_steps: usize,
    pub cycles: u64,
    pub dsp_working_set_bytes: usize,
}

impl BenchReport {
    /// First line `dsp_msps_per_core <float>`, then detail lines.
    pub fn render(&self, cfg: &ScanConfig) -> String {
        format!(
            "dsp_msps_per_core {:.1}\n\
             fft_size {} avg_frames {} samples_per_step {}\n\
             dsp_step_us {:.2} over {} steps\n\
             default_cycle_compute_ms {:.3} ({} steps, mean of {} cycles, IQ pre-generated)\n\
             dsp_working_set_bytes {}\n",
            self.msps_per_core,
            cfg.radio.fft_size,
            cfg.radio.avg_frames,
            cfg.radio.fft_size * cfg.radio.avg_frames,
            self.step_us,
            self.steps,
            self.cycle_ms,
            self.cycle_steps,
            self.cycles,
            self.dsp_working_set_bytes,
        )
    }
}

/// The synthetic source's step timing from a config (the benchmark's and the tests' engines).
pub fn timing(cfg: &ScanConfig) -> SyntheticTiming {
    SyntheticTiming {
        sample_rate: cfg.radio.sample_rate as f64,
        fft_size: cfg.radio.fft_size,
        avg_frames: cfg.radio.avg_frames,
        settle_us: cfg.radio.settle_us,
        discard_buffers: cfg.radio.discard_buffers,
        step_overhead_us: cfg.synthetic.step_overhead_us,
    }
}

/// Runs both measurements, spending about `seconds` on the DSP throughput part.
pub fn run(cfg: &ScanConfig, seconds: f64) -> Result<BenchReport, String> {
    let scene = Scene::load(&cfg.synthetic.scene)?;
    let plans = PlanSet::load(cfg).map_err(|(k, m)| format!("{k}: {m}"))?;
    let active = plans.active(&cfg.scan.plans)?;
    let profiles = Profiles::load(&cfg.classification.profiles)?;
    let n = cfg.radio.fft_size * cfg.radio.avg_frames;
    let origin = cfg.synthetic.start_ms;
    let mut src = SyntheticSource::new(scene, timing(cfg), origin, cfg.radio.gain_db);
    src.open().map_err(|e| e.to_string())?;

    // IQ for every step of the default cycle, generated once, outside the timed loops.
    let mut cycle_iq: Vec<(usize, usize, u64, Vec<Complex32>)> = Vec::new();
    let mut t = origin + 1000;
    for (pi, p) in active.iter().enumerate() {
        for (si, lo) in p.los.iter().enumerate() {
            let mut buf = vec![Complex32::new(0.0, 0.0); n];
            src.capture(*lo, t, &mut buf).map_err(|e| e.to_string())?;
            cycle_iq.push((pi, si, *lo, buf));
            t += 4;
        }
    }
    // 12-bit words for the throughput loop, as the AD9361 delivers them.
    let raw: Vec<Vec<i16>> = cycle_iq
        .iter()
        .take(8)
        .map(|(_, _, _, x)| {
            x.iter()
                .flat_map(|c| [(c.re * 2048.0) as i16, (c.im * 2048.0) as i16])
                .collect()
        })
        .collect();

    let params = DspParams::from_radio(&cfg.radio, cfg.radio.sample_rate as f64);
    let mut dsp = StepDsp::new(params);
    let mut spec = StepSpectrum::default();
    let mut x = vec![Complex32::new(0.0, 0.0); n];
    let half = cfg.radio.usable_span_hz() / 2.0;
    let budget = Duration::from_secs_f64(seconds.max(0.1));
    // One step of the throughput loop: 12-bit words → normalised IQ → spectrum.
    let mut step = |r: &[i16]| {
        normalize_ci16(r, 2048.0, &mut x);
        dsp.process(
            &x,
            5_800_000_000,
            5_800_000_000.0 - half,
            5_800_000_000.0 + half,
            &mut spec,
        );
        spec.floor_db
    };
    // Warm-up: first-touch page faults and FFT twiddles stay out of the measurement.
    for r in &raw {
        step(r);
    }
    let started = Instant::now();
    let mut steps = 0u64;
    while started.elapsed() < budget {
        for r in &raw {
            black_box(step(r));
            steps += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let msps = steps as f64 * n as f64 / secs / 1e6;

    // Full default cycle: DSP of every step, detection per pass, tracking and classification.
    let mut spectra: Vec<Vec<StepSpectrum>> = active
        .iter()
        .map(|p| p.los.iter().map(|_| StepSpectrum::default()).collect())
        .collect();
    let mut detector = Detector::new();
    let mut tracker = Tracker::new(cfg.tracker.clone(), cfg.detector.clone(), profiles);
    let base = Instant::now();
    let cycle_budget = Duration::from_secs_f64((seconds / 2.0).max(0.2));
    let started = Instant::now();
    let mut cycles = 0u64;
    while started.elapsed() < cycle_budget || cycles < 3 {
        for (pi, p) in active.iter().enumerate() {
            let half_step = p.step_hz as f64 / 2.0;
            for (qi, si, lo, iq) in cycle_iq.iter().filter(|c| c.0 == pi) {
                let s = &mut spectra[*qi][*si];
                dsp.process(iq, *lo, *lo as f64 - half_step, *lo as f64 + half_step, s);
                s.capture_end_ms = origin + cycles * 500;
            }
            let dets = detector.detect(&spectra[pi], true, &cfg.detector);
            let captured: Vec<(f64, f64)> = p
                .los
                .iter()
                .map(|lo| (*lo as f64 - half_step, *lo as f64 + half_step))
                .collect();
            let info = PassInfo {
                plan: &p.name,
                band: &p.band,
                sweep_seq: cycles + 1,
                now: base + Duration::from_millis(cycles * 500),
                now_ms: origin + cycles * 500,
                captured: &captured,
            };
            black_box(tracker.process_pass(&info, &dets));
        }
        cycles += 1;
    }
    let cycle_ms = started.elapsed().as_secs_f64() * 1000.0 / cycles as f64;
    let cycle_steps = cycle_iq.len();
    let bins = cfg.radio.fft_size;
    // window f32 + buffer, scratch c32 + power f64 + select f32 + one spectrum (f32 + bool).
    let dsp_working_set_bytes = bins * (4 + 8 + 8 + 8 + 4) + bins * 5 + n * 8;
    Ok(BenchReport {
        msps_per_core: msps,
        step_us: secs * 1e6 / steps.max(1) as f64,
        steps,
        cycle_ms,
        cycle_steps,
        cycles,
        dsp_working_set_bytes,
    })
}
