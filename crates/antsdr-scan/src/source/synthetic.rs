//! The seeded synthetic scene source (antsdr-scan §2.1, §2.2): white Gaussian noise at a
//! chosen level, LO leakage, analog FM video with a PAL-like line signal, frequency-domain
//! OFDM, LoRa-like hopping packets and CW, scaled by the applied gain, quantised like the
//! AD9361. Every emitter draws from its own ChaCha8 stream, so a run is reproducible.

use super::scene::{Emitter, EmitterKind, Scene};
use super::{ad9361_gain_limits, Capture, IqSource, SourceError};
use crate::dsp::overloaded;
use ndefender_contract::enums::GainMode;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use std::f64::consts::TAU;
use std::sync::Arc;
use std::time::Duration;

/// The gain at which `noise_dbfs` and the emitters' levels are specified.
const REFERENCE_GAIN_DB: f64 = 40.0;
/// PAL-like line timing (§2.1).
const LINE_S: f64 = 64e-6;
const SYNC_S: f64 = 4.7e-6;
const BLANK_END_S: f64 = 16.7e-6;
/// Equivalent noise bandwidth of the periodic Hann window, in bins.
const HANN_ENBW: f64 = 1.5;
/// LoRa spreading factor 7: 128 chips per symbol.
const CHIRP_CHIPS: f64 = 128.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyntheticTiming {
    pub sample_rate: f64,
    pub fft_size: usize,
    pub avg_frames: usize,
    pub settle_us: u64,
    pub discard_buffers: u32,
    pub step_overhead_us: u64,
}

impl SyntheticTiming {
    /// settle + (discard + 1) × capture + overhead (§2.2): 3.96 ms at the defaults.
    pub fn step(&self) -> Duration {
        let capture_s = (self.fft_size * self.avg_frames) as f64 / self.sample_rate;
        Duration::from_micros(self.settle_us + self.step_overhead_us)
            + Duration::from_secs_f64(capture_s * (self.discard_buffers as f64 + 1.0))
    }
}

pub struct SyntheticSource {
    scene: Scene,
    timing: SyntheticTiming,
    /// Scene time 0 in epoch ms.
    origin_ms: u64,
    gain_db: f64,
    open: bool,
    noise: ChaCha8Rng,
    streams: Vec<ChaCha8Rng>,
    hops: Vec<ChaCha8Rng>,
    ofdm: OfdmGen,
}

/// Inverse FFT plan and buffers for frequency-domain OFDM synthesis, reused every step.
struct OfdmGen {
    ifft: Arc<dyn Fft<f32>>,
    buf: Vec<Complex32>,
    scratch: Vec<Complex32>,
}

impl std::fmt::Debug for SyntheticSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyntheticSource")
            .field("seed", &self.scene.seed)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

fn stream(seed: u64, index: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(index);
    r
}

impl SyntheticSource {
    pub fn new(scene: Scene, timing: SyntheticTiming, origin_ms: u64, gain_db: f64) -> Self {
        let s = timing.fft_size * timing.avg_frames;
        let ifft = FftPlanner::<f32>::new().plan_fft_inverse(s);
        let scratch = vec![Complex32::new(0.0, 0.0); ifft.get_inplace_scratch_len()];
        let seed = scene.seed;
        let n = scene.emitter.len() as u64;
        Self {
            noise: stream(seed, 0),
            streams: (0..n).map(|i| stream(seed, 1 + i)).collect(),
            hops: (0..n).map(|i| stream(seed, 1_000_000 + i)).collect(),
            scene,
            timing,
            origin_ms,
            gain_db,
            open: false,
            ofdm: OfdmGen {
                ifft,
                buf: vec![Complex32::new(0.0, 0.0); s],
                scratch,
            },
        }
    }

    fn uniform(r: &mut ChaCha8Rng) -> f64 {
        (r.next_u32() as f64 + 0.5) / 4_294_967_296.0
    }

    /// Anti-alias model: content fades out between 0.45 and 0.49 × Fs from the LO.
    fn taper(f: f64, fs: f64) -> f64 {
        let x = f.abs() / fs;
        if x <= 0.45 {
            1.0
        } else if x >= 0.49 {
            0.0
        } else {
            0.5 + 0.5 * (std::f64::consts::PI * (x - 0.45) / 0.04).cos()
        }
    }

    fn add_noise(&mut self, out: &mut [Complex32], sigma2: f64) {
        let s = (sigma2 / 2.0).sqrt();
        for o in out.iter_mut() {
            let r = (-2.0 * Self::uniform(&mut self.noise).ln()).sqrt() * s;
            let th = TAU * Self::uniform(&mut self.noise);
            *o = Complex32::new((r * th.cos()) as f32, (r * th.sin()) as f32);
        }
    }

    fn add_fm(e: &Emitter, rng: &mut ChaCha8Rng, out: &mut [Complex32], df: f64, amp: f64, t0: f64, fs: f64) {
        let dt = 1.0 / fs;
        let mut phase = 0.0_f64;
        let ramp = LINE_S - BLANK_END_S;
        for (n, o) in out.iter_mut().enumerate() {
            let tau = (t0 + n as f64 * dt).rem_euclid(LINE_S);
            let m = if tau < SYNC_S {
                -1.0
            } else if tau < BLANK_END_S {
                -0.5
            } else {
                -0.5 + 1.5 * (tau - BLANK_END_S) / ramp + 0.1 * (Self::uniform(rng) - 0.5)
            };
            let f = df + e.deviation_hz * m;
            let a = amp * Self::taper(f, fs);
            if a > 0.0 {
                *o += Complex32::new((a * phase.cos()) as f32, (a * phase.sin()) as f32);
            }
            phase = (phase + TAU * f * dt).rem_euclid(TAU);
        }
    }

    fn add_cw(out: &mut [Complex32], df: f64, amp: f64, t0: f64, fs: f64) {
        let a = amp * Self::taper(df, fs);
        if a <= 0.0 {
            return;
        }
        let w = TAU * df / fs;
        let p0 = (TAU * df * t0).rem_euclid(TAU);
        for (n, o) in out.iter_mut().enumerate() {
            let ph = p0 + w * n as f64;
            *o += Complex32::new((a * ph.cos()) as f32, (a * ph.sin()) as f32);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_hopper(
        e: &Emitter,
        hop_rng: &mut ChaCha8Rng,
        out: &mut [Complex32],
        lo: f64,
        amp: f64,
        t0: f64,
        fs: f64,
        bw: f64,
    ) {
        let period = 1.0 / e.packet_rate_hz;
        let air = e.airtime_us * 1e-6;
        let n = out.len();
        let t_end = t0 + n as f64 / fs;
        let first = ((t0 - air) / period).floor().max(0.0) as u64;
        let last = (t_end / period).floor().max(0.0) as u64;
        let t_sym = CHIRP_CHIPS / bw;
        for p in first..=last {
            let tp = p as f64 * period;
            let (a, b) = (tp.max(t0), (tp + air).min(t_end));
            if b <= a {
                continue;
            }
            let hop = p / e.hop_every.max(1) as u64;
            // Random access into the emitter's stream: packet p's channel never depends on
            // which captures happened to overlap earlier packets.
            hop_rng.set_word_pos(hop as u128 * 2);
            let ch = hop_rng.next_u64() % e.channels.max(1) as u64;
            let fc = e.channel_start_hz + ch as f64 * e.channel_spacing_hz;
            let df = fc - lo;
            if df.abs() > fs / 2.0 + bw {
                continue;
            }
            let n0 = (((a - t0) * fs).ceil() as usize).min(n);
            let n1 = (((b - t0) * fs).ceil() as usize).min(n);
            let mut phase = 0.0_f64;
            for (k, o) in out[n0..n1].iter_mut().enumerate() {
                let t = (n0 + k) as f64 / fs + t0 - tp;
                let f = df - bw / 2.0 + bw * (t / t_sym).fract();
                let g = amp * Self::taper(f, fs);
                if g > 0.0 {
                    *o += Complex32::new((g * phase.cos()) as f32, (g * phase.sin()) as f32);
                }
                phase = (phase + TAU * f / fs).rem_euclid(TAU);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_ofdm(
        e: &Emitter,
        rng: &mut ChaCha8Rng,
        gen: &mut OfdmGen,
        out: &mut [Complex32],
        lo: f64,
        per_bin: f64,
        t0: f64,
        fs: f64,
    ) {
        let s = out.len();
        let fb = fs / s as f64;
        let half_bw = e.bandwidth() / 2.0;
        let a = per_bin as f32;
        let mut bits = 0u32;
        let mut left = 0;
        for (i, x) in gen.buf.iter_mut().enumerate() {
            // Natural FFT order: index i is frequency i·fb for i < S/2, else (i − S)·fb.
            let k = if i < s / 2 { i as f64 } else { i as f64 - s as f64 };
            let f_off = k * fb;
            let f = lo + f_off;
            if (f - e.freq_hz).abs() <= half_bw && f_off.abs() < 0.49 * fs {
                if left == 0 {
                    bits = rng.next_u32();
                    left = 16;
                }
                let re = if bits & 1 == 0 { a } else { -a };
                let im = if bits & 2 == 0 { a } else { -a };
                bits >>= 2;
                left -= 1;
                *x = Complex32::new(
                    re * std::f32::consts::FRAC_1_SQRT_2,
                    im * std::f32::consts::FRAC_1_SQRT_2,
                );
            } else {
                *x = Complex32::new(0.0, 0.0);
            }
        }
        gen.ifft.process_with_scratch(&mut gen.buf, &mut gen.scratch);
        let bursty = e.duty < 1.0;
        let burst = e.burst_us * 1e-6;
        let period = burst / e.duty;
        for (n, (o, x)) in out.iter_mut().zip(&gen.buf).enumerate() {
            if bursty && (t0 + n as f64 / fs).rem_euclid(period) >= burst {
                continue;
            }
            *o += *x;
        }
    }
}

impl IqSource for SyntheticSource {
    fn uri(&self) -> String {
        format!("synthetic:seed={}", self.scene.seed)
    }
    fn open(&mut self) -> Result<(), SourceError> {
        self.open = true;
        Ok(())
    }
    fn close(&mut self) {
        self.open = false;
    }
    fn is_open(&self) -> bool {
        self.open
    }
    fn sample_rate(&self) -> f64 {
        self.timing.sample_rate
    }
    fn set_gain(&mut self, mode: GainMode, gain_db: f64) -> Result<f64, SourceError> {
        // The model has no AGC: `auto` keeps the last manual gain, like an AGC settled on noise.
        if mode == GainMode::Manual {
            self.gain_db = gain_db;
        }
        Ok(self.gain_db)
    }
    fn gain_limits(&self, lo_hz: u64) -> (f64, f64) {
        ad9361_gain_limits(lo_hz)
    }
    fn modeled_step(&self) -> Duration {
        self.timing.step()
    }

    fn capture(&mut self, lo_hz: u64, end_ms: u64, out: &mut [Complex32]) -> Result<Capture, SourceError> {
        if !self.open {
            return Err(SourceError::new("device_not_connected", "synthetic source closed"));
        }
        let fs = self.timing.sample_rate;
        let s = out.len();
        let t_end = end_ms.saturating_sub(self.origin_ms) as f64 / 1000.0;
        let t0 = t_end - s as f64 / fs;
        let t_mid = t_end - s as f64 / fs / 2.0;
        let lo = lo_hz as f64;
        let g = 10f64.powf((self.gain_db - REFERENCE_GAIN_DB) / 10.0);
        let sigma2 = 10f64.powf(self.scene.noise_dbfs / 10.0) * g;
        self.add_noise(out, sigma2);
        let leak = 10f64.powf(self.scene.lo_leakage_dbfs / 20.0) as f32;
        for o in out.iter_mut() {
            o.re += leak;
        }
        for (i, e) in self.scene.emitter.iter().enumerate() {
            let (f0, f1) = e.span();
            if !e.is_active(t_mid) || f1 < lo - fs / 2.0 || f0 > lo + fs / 2.0 {
                continue;
            }
            let snr = 10f64.powf(e.snr_db / 10.0);
            match e.kind {
                EmitterKind::AnalogFm => {
                    let amp = (snr * sigma2 / fs * e.bandwidth()).sqrt();
                    Self::add_fm(e, &mut self.streams[i], out, e.freq_hz - lo, amp, t0, fs);
                }
                EmitterKind::Cw => {
                    let amp = (snr * sigma2 * HANN_ENBW / self.timing.fft_size as f64).sqrt();
                    Self::add_cw(out, e.freq_hz - lo, amp, t0, fs);
                }
                EmitterKind::Hopping => {
                    let bw = e.bandwidth();
                    let amp = (snr * sigma2 / fs * bw).sqrt();
                    Self::add_hopper(e, &mut self.hops[i], out, lo, amp, t0, fs, bw);
                }
                EmitterKind::Ofdm => {
                    let per_bin = (snr * sigma2 / s as f64).sqrt();
                    Self::add_ofdm(e, &mut self.streams[i], &mut self.ofdm, out, lo, per_bin, t0, fs);
                }
            }
        }
        if self.scene.quantize {
            for o in out.iter_mut() {
                o.re = (o.re * 2048.0).round().clamp(-2048.0, 2047.0) / 2048.0;
                o.im = (o.im * 2048.0).round().clamp(-2048.0, 2047.0) / 2048.0;
            }
        }
        Ok(Capture {
            end_ms,
            gain_db: self.gain_db,
            overload: overloaded(out),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::{StepDsp, StepSpectrum};

    #[test]
    fn noise_floor_and_gain_scaling() -> Result<(), SourceError> {
        let timing = SyntheticTiming {
            sample_rate: 20e6,
            fft_size: 4096,
            avg_frames: 4,
            settle_us: 500,
            discard_buffers: 2,
            step_overhead_us: 1000,
        };
        assert_eq!(timing.step(), Duration::from_nanos(3_957_600));
        let mut src = SyntheticSource::new(Scene::empty(7), timing, 0, 40.0);
        src.open()?;
        let p = crate::dsp::test_params();
        let mut dsp = StepDsp::new(p);
        let mut buf = vec![Complex32::new(0.0, 0.0); p.samples_per_step()];
        let mut spec = StepSpectrum::default();
        let lo = 5_800_000_000u64;
        let mut floors = Vec::new();
        for i in 0..8 {
            src.capture(lo, 1000 + i, &mut buf)?;
            dsp.process(&buf, lo, lo as f64 - 8e6, lo as f64 + 8e6, &mut spec);
            floors.push(spec.floor_db);
        }
        let mean = floors.iter().sum::<f64>() / floors.len() as f64;
        assert!((mean - -84.36).abs() < 0.3, "floor {mean}");
        assert!(spec.p_db.iter().all(|p| *p < -70.0), "LO leakage guarded");
        src.set_gain(GainMode::Manual, 30.0)?;
        src.capture(lo, 2000, &mut buf)?;
        dsp.process(&buf, lo, lo as f64 - 8e6, lo as f64 + 8e6, &mut spec);
        assert!((spec.floor_db - (mean - 10.0)).abs() < 0.5, "{}", spec.floor_db);
        Ok(())
    }
}
