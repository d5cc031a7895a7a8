//! Per-step DSP (antsdr-scan §5): Hann window, rustfft with one plan and one scratch buffer,
//! K-frame linear averaging calibrated to dBFS, the DC/LO guard, the usable bins of the step's
//! owned region, and the step noise floor. Every buffer is allocated once; `process` allocates
//! nothing.

pub mod floor;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Added to linear power before the logarithm so an empty bin stays finite.
const POWER_EPS: f64 = 1e-20;
const POWER_EPS_F32: f32 = 1e-20;

/// DSP settings of one step (from `[radio]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DspParams {
    pub fft_size: usize,
    pub avg_frames: usize,
    pub sample_rate: f64,
    pub usable_fraction: f64,
    pub dc_guard_hz: f64,
    pub cal_offset_db: f64,
}

impl DspParams {
    pub fn from_radio(r: &crate::config::RadioConfig, sample_rate: f64) -> Self {
        Self {
            fft_size: r.fft_size,
            avg_frames: r.avg_frames,
            sample_rate,
            usable_fraction: r.usable_fraction,
            dc_guard_hz: r.dc_guard_hz,
            cal_offset_db: r.cal_offset_db,
        }
    }
    pub fn bin_hz(&self) -> f64 {
        self.sample_rate / self.fft_size as f64
    }
    pub fn samples_per_step(&self) -> usize {
        self.fft_size * self.avg_frames
    }
}

/// The calibrated spectrum of one step, restricted to its usable bins. Reused across passes.
#[derive(Debug, Clone, Default)]
pub struct StepSpectrum {
    pub lo_hz: u64,
    /// Frequency of `p_db[0]`.
    pub first_hz: f64,
    pub bin_hz: f64,
    pub p_db: Vec<f32>,
    /// True for bins replaced by the DC/LO guard interpolation.
    pub guarded: Vec<bool>,
    /// Step noise floor F_s (dBFS, mean-corrected).
    pub floor_db: f64,
    pub capture_end_ms: u64,
    pub gain_db: f64,
    pub overload: bool,
    /// False when the capture failed: the step's owned region is a gap in the panorama.
    pub valid: bool,
}

impl StepSpectrum {
    pub fn freq(&self, i: usize) -> f64 {
        self.first_hz + i as f64 * self.bin_hz
    }
}

pub struct StepDsp {
    p: DspParams,
    fft: Arc<dyn Fft<f32>>,
    window: Vec<f32>,
    buf: Vec<Complex32>,
    scratch: Vec<Complex32>,
    /// Averaged linear power per fftshifted bin (f32: the log10 per bin dominates a step,
    /// and f32 keeps > 60 dB of headroom below full scale at 1e-7 relative precision).
    power: Vec<f32>,
    select: Vec<f32>,
    inv_norm: f32,
    guard_bins: usize,
    usable_half_bins: usize,
    bias_db: f64,
}

impl std::fmt::Debug for StepDsp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepDsp")
            .field("params", &self.p)
            .finish_non_exhaustive()
    }
}

impl StepDsp {
    pub fn new(p: DspParams) -> Self {
        let n = p.fft_size;
        let fft = FftPlanner::<f32>::new().plan_fft_forward(n);
        let scratch = vec![Complex32::new(0.0, 0.0); fft.get_inplace_scratch_len()];
        // Periodic Hann: S1 = N/2, so a full-scale tone on a bin centre reads |X|² = S1².
        let window: Vec<f32> = (0..n)
            .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()) as f32)
            .collect();
        let s1: f64 = window.iter().map(|w| *w as f64).sum();
        let bin = p.bin_hz();
        let guard_bins = if p.dc_guard_hz > 0.0 {
            (p.dc_guard_hz / bin).floor() as usize
        } else {
            0
        };
        let usable_half_bins = ((p.usable_fraction * p.sample_rate / 2.0) / bin).floor() as usize;
        Self {
            fft,
            window,
            buf: vec![Complex32::new(0.0, 0.0); n],
            scratch,
            power: vec![0.0; n],
            select: Vec::with_capacity(n),
            inv_norm: (1.0 / (p.avg_frames as f64 * s1 * s1)) as f32,
            guard_bins: guard_bins.min(n / 2 - 1),
            usable_half_bins: usable_half_bins.min(n / 2 - 1),
            bias_db: floor::median_bias_db(p.avg_frames),
            p,
        }
    }

    pub fn params(&self) -> &DspParams {
        &self.p
    }

    /// Runs §5 steps 2–7 on `x` (already normalised, `avg_frames × fft_size` samples) captured
    /// at `lo_hz`, keeping the bins of the owned region `[own_lo, own_hi)`.
    pub fn process(&mut self, x: &[Complex32], lo_hz: u64, own_lo: f64, own_hi: f64, out: &mut StepSpectrum) {
        let n = self.p.fft_size;
        let half = n / 2;
        self.power.iter_mut().for_each(|v| *v = 0.0);
        for frame in x.chunks_exact(n).take(self.p.avg_frames) {
            for ((b, s), w) in self.buf.iter_mut().zip(frame).zip(&self.window) {
                *b = s * *w;
            }
            self.fft.process_with_scratch(&mut self.buf, &mut self.scratch);
            // fftshift: output bin k lands at m = (k + N/2) mod N.
            let (neg, pos) = self.buf.split_at(half);
            for (acc, c) in self.power[..half].iter_mut().zip(pos) {
                *acc += c.norm_sqr();
            }
            for (acc, c) in self.power[half..].iter_mut().zip(neg) {
                *acc += c.norm_sqr();
            }
        }
        for v in self.power.iter_mut() {
            *v *= self.inv_norm;
        }
        // DC/LO guard: linear interpolation between the nearest unguarded bins.
        let g = self.guard_bins;
        let (lo_edge, hi_edge) = (half - g - 1, half + g + 1);
        let (pl, ph) = (self.power[lo_edge], self.power[hi_edge]);
        for m in (half - g)..=(half + g) {
            let t = (m - lo_edge) as f32 / (hi_edge - lo_edge) as f32;
            self.power[m] = pl + (ph - pl) * t;
        }

        let bin = self.p.bin_hz();
        let lo = lo_hz as f64;
        let u = self.usable_half_bins as i64;
        // Usable bins that also lie in the owned region.
        let mut d_first = -u;
        while d_first <= u && lo + d_first as f64 * bin < own_lo {
            d_first += 1;
        }
        let mut d_last = u;
        while d_last >= d_first && lo + d_last as f64 * bin >= own_hi {
            d_last -= 1;
        }
        out.p_db.clear();
        out.guarded.clear();
        self.select.clear();
        out.lo_hz = lo_hz;
        out.bin_hz = bin;
        out.first_hz = lo + d_first as f64 * bin;
        let cal = self.p.cal_offset_db;
        let cal32 = cal as f32;
        for d in d_first..=d_last {
            let m = (half as i64 + d) as usize;
            let pw = self.power[m];
            let guarded = d.unsigned_abs() as usize <= g;
            out.p_db.push(10.0 * (pw + POWER_EPS_F32).log10() + cal32);
            out.guarded.push(guarded);
            if !guarded {
                self.select.push(pw);
            }
        }
        out.floor_db = match floor::median_in_place(&mut self.select) {
            Some(med) => 10.0 * (med as f64 + POWER_EPS).log10() + self.bias_db + cal,
            None => f64::NAN,
        };
        out.valid = !out.p_db.is_empty() && out.floor_db.is_finite();
    }
}

/// §5 step 1 for 12-bit samples in 16-bit words: interleaved I/Q scaled so full scale = 1.0.
pub fn normalize_ci16(raw: &[i16], full_scale: f32, out: &mut [Complex32]) {
    let inv = 1.0 / full_scale;
    for (o, iq) in out.iter_mut().zip(raw.chunks_exact(2)) {
        *o = Complex32::new(iq[0] as f32 * inv, iq[1] as f32 * inv);
    }
}

/// Share of samples with |I| or |Q| ≥ 0.98 full scale above 1e-4 → the step overloaded (§3).
pub fn overloaded(x: &[Complex32]) -> bool {
    let hits = x.iter().filter(|c| c.re.abs() >= 0.98 || c.im.abs() >= 0.98).count();
    hits as f64 > 1e-4 * x.len() as f64
}

/// The shipped radio settings (20 MS/s, 4096-point FFT averaged over 4), for unit tests.
#[cfg(test)]
pub(crate) fn test_params() -> DspParams {
    DspParams {
        fft_size: 4096,
        avg_frames: 4,
        sample_rate: 20e6,
        usable_fraction: 0.8,
        dc_guard_hz: 15_000.0,
        cal_offset_db: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> DspParams {
        test_params()
    }

    #[test]
    fn full_scale_tone_on_a_bin_centre_reads_zero_dbfs() {
        let p = params();
        let mut dsp = StepDsp::new(p);
        let k = 300.0;
        let x: Vec<Complex32> = (0..p.samples_per_step())
            .map(|n| {
                let ph = 2.0 * std::f64::consts::PI * k * n as f64 / p.fft_size as f64;
                Complex32::new(ph.cos() as f32, ph.sin() as f32)
            })
            .collect();
        let mut out = StepSpectrum::default();
        let lo = 5_800_000_000u64;
        dsp.process(&x, lo, lo as f64 - 8e6, lo as f64 + 8e6, &mut out);
        let (imax, pmax) = out
            .p_db
            .iter()
            .enumerate()
            .fold((0, f32::MIN), |a, (i, v)| if *v > a.1 { (i, *v) } else { a });
        assert!((pmax as f64).abs() < 0.1, "{pmax}");
        assert!((out.freq(imax) - (lo as f64 + k * p.bin_hz())).abs() < 1.0);
        assert_eq!(out.p_db.len(), 3277);
        assert_eq!(out.guarded.iter().filter(|g| **g).count(), 7);
    }
}
