//! Detection on the band panorama (antsdr-scan §6): the steps of one band pass stitched in
//! frequency order, effective floors, candidates, region growth with gap bridging,
//! topographic prominence, absorption, 99 % occupied bandwidth and the OFDM flatness score.
//! Buffers live in [`Detector`] and are reused from pass to pass.

use crate::config::DetectorConfig;
use crate::dsp::StepSpectrum;

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BwClass {
    Narrow,
    Medium,
    Wide,
}

impl BwClass {
    pub fn of(bw_hz: f64, d: &DetectorConfig) -> BwClass {
        if bw_hz < d.narrow_max_hz {
            BwClass::Narrow
        } else if bw_hz < d.wide_min_hz {
            BwClass::Medium
        } else {
            BwClass::Wide
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            BwClass::Narrow => "narrow",
            BwClass::Medium => "medium",
            BwClass::Wide => "wide",
        }
    }
    pub fn rank(self) -> i32 {
        self as i32
    }
}

/// One emitter found in a band pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub freq_hz: f64,
    pub f_lo: f64,
    pub f_hi: f64,
    pub bandwidth_hz: f64,
    pub bandwidth_class: BwClass,
    pub peak_db: f64,
    pub noise_floor_db: f64,
    pub snr_db: f64,
    pub prominence_db: f64,
    pub cluster_size: u64,
    pub ofdm_score: f64,
    /// Index of the apex's step within the pass.
    pub step: usize,
    /// Capture end time of the apex's step (the observation time).
    pub time_ms: u64,
}

#[derive(Debug, Clone, Copy)]
struct Region {
    lo: usize,
    hi: usize,
    apex: usize,
    prominence: f64,
    cluster: u64,
    f_lo: f64,
    f_hi: f64,
}

/// Panorama bins and scratch, reused across passes.
#[derive(Debug, Default)]
pub struct Detector {
    f: Vec<f64>,
    p: Vec<f32>,
    step: Vec<u32>,
    guarded: Vec<bool>,
    owner: Vec<u32>,
    cand: Vec<u32>,
    eff: Vec<f64>,
    sorted: Vec<f64>,
    lin: Vec<f64>,
    regions: Vec<Region>,
    /// F_band of the last pass.
    pub band_floor_db: Option<f64>,
}

impl Detector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Detects emitters in one completed band pass; `steps` are in frequency order.
    pub fn detect(&mut self, steps: &[StepSpectrum], manual_gain: bool, cfg: &DetectorConfig) -> Vec<Detection> {
        self.stitch(steps);
        self.band_floor_db = None;
        if self.f.len() < 3 {
            return Vec::new();
        }
        // F_band = lower median of the valid step floors.
        self.sorted.clear();
        self.sorted.extend(steps.iter().filter(|s| s.valid).map(|s| s.floor_db));
        self.sorted.sort_by(f64::total_cmp);
        let Some(band) = self.sorted.get((self.sorted.len().max(1) - 1) / 2).copied() else {
            return Vec::new();
        };
        self.band_floor_db = Some(band);
        self.eff.clear();
        self.eff.extend(steps.iter().map(|s| {
            if manual_gain {
                s.floor_db.min(band + cfg.floor_tolerance_db)
            } else {
                s.floor_db
            }
        }));
        self.find_candidates(cfg);
        self.grow_regions(cfg);
        self.absorb(cfg);
        let bin = steps.iter().find(|s| s.valid).map(|s| s.bin_hz).unwrap_or(1.0);
        let mut out = Vec::with_capacity(self.regions.len());
        for i in 0..self.regions.len() {
            let r = self.regions[i];
            let step = self.step[r.apex] as usize;
            let floor = self.eff[step];
            let peak = self.p[r.apex] as f64;
            let bw = (r.f_hi - r.f_lo).round().max(bin.round());
            let class = BwClass::of(bw, cfg);
            let snr = peak - floor;
            let ofdm = if class == BwClass::Narrow || snr < 10.0 {
                0.0
            } else {
                self.ofdm_score(&r)
            };
            out.push(Detection {
                freq_hz: ((r.f_lo + r.f_hi) / 2.0).round(),
                f_lo: r.f_lo,
                f_hi: r.f_hi,
                bandwidth_hz: bw,
                bandwidth_class: class,
                peak_db: peak,
                noise_floor_db: floor,
                snr_db: snr,
                prominence_db: r.prominence,
                cluster_size: r.cluster,
                ofdm_score: ofdm,
                step,
                time_ms: steps.get(step).map(|s| s.capture_end_ms).unwrap_or(0),
            });
        }
        out
    }

    fn stitch(&mut self, steps: &[StepSpectrum]) {
        self.f.clear();
        self.p.clear();
        self.step.clear();
        self.guarded.clear();
        for (si, s) in steps.iter().enumerate() {
            if !s.valid {
                continue;
            }
            for (i, (p, g)) in s.p_db.iter().zip(&s.guarded).enumerate() {
                self.f.push(s.freq(i));
                self.p.push(*p);
                self.step.push(si as u32);
                self.guarded.push(*g);
            }
        }
    }

    /// True when a missing step lies between panorama bins `a` and `a + 1`.
    fn gap_after(&self, a: usize) -> bool {
        self.step[a + 1] > self.step[a] + 1
    }

    fn thr(&self, i: usize, over: f64) -> f64 {
        self.eff[self.step[i] as usize] + over
    }

    fn find_candidates(&mut self, cfg: &DetectorConfig) {
        self.cand.clear();
        let n = self.p.len();
        for i in 1..n - 1 {
            let p = self.p[i];
            if !self.guarded[i] && p as f64 >= self.thr(i, cfg.min_snr_db) && p > self.p[i - 1] && p >= self.p[i + 1] {
                self.cand.push(i as u32);
            }
        }
        let p = &self.p;
        self.cand
            .sort_by(|a, b| p[*b as usize].total_cmp(&p[*a as usize]).then(a.cmp(b)));
    }

    fn grow_regions(&mut self, cfg: &DetectorConfig) {
        let n = self.p.len();
        self.owner.clear();
        self.owner.resize(n, NONE);
        self.regions.clear();
        let mut region_no = 0u32;
        for ci in 0..self.cand.len() {
            let apex = self.cand[ci] as usize;
            if self.owner[apex] != NONE {
                continue;
            }
            let mut lo = apex;
            let mut k = apex;
            while k > 0 && !self.gap_after(k - 1) && self.owner[k - 1] == NONE {
                k -= 1;
                if self.p[k] as f64 >= self.thr(k, cfg.region_snr_db) {
                    lo = k;
                } else if self.f[lo] - self.f[k] > cfg.merge_gap_hz {
                    break;
                }
            }
            let mut hi = apex;
            let mut k = apex;
            while k + 1 < n && !self.gap_after(k) && self.owner[k + 1] == NONE {
                k += 1;
                if self.p[k] as f64 >= self.thr(k, cfg.region_snr_db) {
                    hi = k;
                } else if self.f[k] - self.f[hi] > cfg.merge_gap_hz {
                    break;
                }
            }
            for o in &mut self.owner[lo..=hi] {
                *o = region_no;
            }
            region_no += 1;
            let prominence = self.prominence(apex, cfg.prominence_wlen_hz / 2.0);
            if prominence < cfg.min_prominence_db {
                continue;
            }
            let (f_lo, f_hi) = self.obw(lo, hi);
            self.regions.push(Region {
                lo,
                hi,
                apex,
                prominence,
                cluster: (hi - lo + 1) as u64,
                f_lo,
                f_hi,
            });
        }
    }

    fn prominence(&self, apex: usize, half_wlen: f64) -> f64 {
        let pa = self.p[apex];
        let fa = self.f[apex];
        let mut col_l = pa;
        for k in (0..apex).rev() {
            if self.p[k] > pa || fa - self.f[k] > half_wlen {
                break;
            }
            col_l = col_l.min(self.p[k]);
        }
        let mut col_r = pa;
        for k in apex + 1..self.p.len() {
            if self.p[k] > pa || self.f[k] - fa > half_wlen {
                break;
            }
            col_r = col_r.min(self.p[k]);
        }
        (pa - col_l.max(col_r)) as f64
    }

    /// 99 % power bandwidth of bins `lo..=hi` above their effective floor.
    fn obw(&mut self, lo: usize, hi: usize) -> (f64, f64) {
        self.lin.clear();
        let mut total = 0.0;
        for k in lo..=hi {
            let floor = self.eff[self.step[k] as usize];
            let v = (10f64.powf(self.p[k] as f64 / 10.0) - 10f64.powf(floor / 10.0)).max(0.0);
            total += v;
            self.lin.push(v);
        }
        let half_bin = if hi > lo {
            (self.f[hi] - self.f[lo]) / (hi - lo) as f64 / 2.0
        } else {
            0.5 * self.bin_guess()
        };
        if total <= 0.0 {
            return (self.f[lo] - half_bin, self.f[hi] + half_bin);
        }
        let edge = |target: f64, lin: &[f64], f: &[f64]| -> f64 {
            let mut acc = 0.0;
            for (j, v) in lin.iter().enumerate() {
                if acc + v >= target && *v > 0.0 {
                    let frac = ((target - acc) / v).clamp(0.0, 1.0);
                    return f[lo + j] - half_bin + frac * 2.0 * half_bin;
                }
                acc += v;
            }
            f[hi] + half_bin
        };
        let f_lo = edge(0.005 * total, &self.lin, &self.f);
        let f_hi = edge(0.995 * total, &self.lin, &self.f);
        (f_lo, f_hi)
    }

    fn bin_guess(&self) -> f64 {
        if self.f.len() >= 2 {
            self.f[1] - self.f[0]
        } else {
            1.0
        }
    }

    fn gap_between(&self, a: usize, b: usize) -> bool {
        (a..b).any(|k| self.gap_after(k))
    }

    /// Neighbouring regions closer than max(merge_gap, ½ OBW of the wider) become one.
    fn absorb(&mut self, cfg: &DetectorConfig) {
        self.regions.sort_by_key(|r| r.lo);
        loop {
            let mut merged = false;
            let mut i = 0;
            while i + 1 < self.regions.len() {
                let (a, b) = (self.regions[i], self.regions[i + 1]);
                let gap = self.f[b.lo] - self.f[a.hi];
                let wider = (a.f_hi - a.f_lo).max(b.f_hi - b.f_lo);
                if gap <= cfg.merge_gap_hz.max(0.5 * wider) && !self.gap_between(a.hi, b.lo) {
                    let top = if self.p[b.apex] > self.p[a.apex] { b } else { a };
                    let (f_lo, f_hi) = self.obw(a.lo, b.hi);
                    self.regions[i] = Region {
                        lo: a.lo,
                        hi: b.hi,
                        apex: top.apex,
                        prominence: a.prominence.max(b.prominence),
                        cluster: a.cluster + b.cluster,
                        f_lo,
                        f_hi,
                    };
                    self.regions.remove(i + 1);
                    merged = true;
                } else {
                    i += 1;
                }
            }
            if !merged {
                break;
            }
        }
    }

    /// §6 flatness: 10·log10(max/mean) of the 9-bin smoothed inner 80 % of the OBW.
    fn ofdm_score(&mut self, r: &Region) -> f64 {
        let b = r.f_hi - r.f_lo;
        let (a0, a1) = (r.f_lo + 0.1 * b, r.f_hi - 0.1 * b);
        self.lin.clear();
        for k in r.lo..=r.hi {
            if self.f[k] >= a0 && self.f[k] <= a1 {
                self.lin.push(10f64.powf(self.p[k] as f64 / 10.0));
            }
        }
        const W: usize = 9;
        if self.lin.len() < W {
            return 0.0;
        }
        let mut sum: f64 = self.lin[..W].iter().sum();
        let (mut max, mut acc, mut count) = (sum, sum, 1usize);
        for j in W..self.lin.len() {
            sum += self.lin[j] - self.lin[j - W];
            max = max.max(sum);
            acc += sum;
            count += 1;
        }
        let mean = acc / count as f64;
        if mean <= 0.0 {
            return 0.0;
        }
        let c_db = 10.0 * (max / mean).log10();
        ((8.0 - c_db) / 5.0).clamp(0.0, 1.0)
    }
}
