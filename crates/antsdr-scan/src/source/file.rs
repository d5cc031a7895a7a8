//! Recorded IQ (antsdr-scan §2 `file`): raw cf32/ci16 with a configured rate and centre, or
//! SigMF whose captures are the steps. The file's plans and step order come from the file.

use super::sigmf::{self, DataType, SigmfMeta};
use super::{Capture, FileStep, IqSource, SourceError};
use crate::dsp::overloaded;
use crate::plan::{Plan, PlanSet};
use ndefender_contract::enums::GainMode;
use rustfft::num_complex::Complex32;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn is_sigmf(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()) == Some("sigmf-meta")
}

#[derive(Debug, Clone)]
pub struct RawSpec {
    pub datatype: DataType,
    pub sample_rate: f64,
    pub center_hz: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    offset: u64,
    plan_idx: usize,
    step_idx: usize,
    lo_hz: u64,
    end_ms: Option<u64>,
    gain_db: Option<f64>,
    pass_end: bool,
    sweep_seq: Option<u64>,
}

#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    data_path: PathBuf,
    datatype: DataType,
    sample_rate: f64,
    full_scale: f32,
    samples_per_step: usize,
    plans: Vec<Plan>,
    schedule: Vec<Entry>,
    pos: usize,
    current: Option<Entry>,
    file: Option<std::fs::File>,
    raw: Vec<u8>,
    looped: bool,
    realtime: bool,
}

impl FileSource {
    /// A SigMF recording (`.sigmf-meta`) or a raw file described by `raw`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        path: &Path,
        raw: Option<RawSpec>,
        plan_set: &PlanSet,
        band: &str,
        usable_fraction: f64,
        samples_per_step: usize,
        full_scale: f64,
        looped: bool,
        realtime: bool,
    ) -> Result<FileSource, String> {
        let mut src = FileSource {
            path: path.to_owned(),
            data_path: path.to_owned(),
            datatype: DataType::Cf32,
            sample_rate: 0.0,
            full_scale: full_scale as f32,
            samples_per_step,
            plans: Vec::new(),
            schedule: Vec::new(),
            pos: 0,
            current: None,
            file: None,
            raw: Vec::new(),
            looped,
            realtime,
        };
        if is_sigmf(path) {
            let meta = sigmf::read_meta(path)?;
            src.layout_sigmf(&meta, plan_set, band, usable_fraction)?;
        } else {
            let spec = raw.ok_or("raw files need file.sample_rate and file.center_hz")?;
            src.datatype = spec.datatype;
            src.sample_rate = spec.sample_rate;
            let len = std::fs::metadata(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .len();
            let bytes = (samples_per_step * spec.datatype.bytes_per_sample()) as u64;
            let step = (usable_fraction * spec.sample_rate).round() as u64;
            src.plans = vec![Plan::single("file", band, spec.center_hz, step)];
            src.schedule = (0..len / bytes.max(1))
                .map(|i| Entry {
                    offset: i * bytes,
                    plan_idx: 0,
                    step_idx: 0,
                    lo_hz: spec.center_hz,
                    end_ms: None,
                    gain_db: None,
                    pass_end: true,
                    sweep_seq: None,
                })
                .collect();
        }
        if src.schedule.is_empty() {
            return Err(format!("{}: holds no complete step", path.display()));
        }
        Ok(src)
    }

    fn layout_sigmf(&mut self, meta: &SigmfMeta, set: &PlanSet, band: &str, usable: f64) -> Result<(), String> {
        self.datatype = meta.datatype;
        self.sample_rate = meta.sample_rate;
        self.data_path = meta.data_path.clone();
        let bps = meta.datatype.bytes_per_sample() as u64;
        let step_dur_ms = self.samples_per_step as f64 / meta.sample_rate * 1000.0;
        let caps = &meta.captures;
        // Group captures into passes: by `ndefender:plan` + sweep_seq when present, otherwise
        // one plan whose pass ends before the first repeated frequency.
        let mut passes: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, c) in caps.iter().enumerate() {
            let name = c.plan.clone().unwrap_or_else(|| "file".to_owned());
            let new_pass = match passes.last() {
                None => true,
                Some((n, idx)) => {
                    let prev = &caps[idx[idx.len() - 1]];
                    *n != name
                        || (c.plan.is_some() && prev.sweep_seq != c.sweep_seq)
                        || (c.plan.is_none() && idx.iter().any(|j| caps[*j].frequency == c.frequency))
                }
            };
            if new_pass {
                passes.push((name, vec![i]));
            } else if let Some(last) = passes.last_mut() {
                last.1.push(i);
            }
        }
        for (name, idx) in &passes {
            if self.plans.iter().any(|p| &p.name == name) {
                continue;
            }
            let mut los: Vec<u64> = idx.iter().map(|j| caps[*j].frequency).collect();
            los.sort_unstable();
            los.dedup();
            let plan = match set.find(name).filter(|_| caps[idx[0]].plan.is_some()) {
                Some(p) => Plan { los, ..p.clone() },
                None => {
                    let step = (usable * meta.sample_rate).round() as u64;
                    let mut p = Plan::single(name, band, los[0], step);
                    p.stop_hz = los[los.len() - 1] + step / 2;
                    p.los = los;
                    p
                }
            };
            self.plans.push(plan);
        }
        for (name, idx) in &passes {
            let Some(pi) = self.plans.iter().position(|p| &p.name == name) else {
                continue;
            };
            for (k, j) in idx.iter().enumerate() {
                let c = &caps[*j];
                let Some(si) = self.plans[pi].los.iter().position(|lo| *lo == c.frequency) else {
                    continue;
                };
                self.schedule.push(Entry {
                    offset: c.sample_start * bps,
                    plan_idx: pi,
                    step_idx: si,
                    lo_hz: c.frequency,
                    end_ms: c.datetime_ms.map(|t| t + step_dur_ms.round() as u64),
                    gain_db: c.gain_db,
                    pass_end: k + 1 == idx.len(),
                    sweep_seq: c.sweep_seq,
                });
            }
        }
        Ok(())
    }
}

impl IqSource for FileSource {
    fn uri(&self) -> String {
        format!("file:{}", self.path.display())
    }
    fn open(&mut self) -> Result<(), SourceError> {
        let f = std::fs::File::open(&self.data_path)
            .map_err(|e| SourceError::new("file_open_failed", format!("{}: {e}", self.data_path.display())))?;
        self.file = Some(f);
        self.pos = 0;
        Ok(())
    }
    fn close(&mut self) {
        self.file = None;
    }
    fn is_open(&self) -> bool {
        self.file.is_some()
    }
    fn sample_rate(&self) -> f64 {
        self.sample_rate
    }
    fn set_gain(&mut self, _mode: GainMode, gain_db: f64) -> Result<f64, SourceError> {
        Ok(gain_db)
    }
    fn gain_limits(&self, lo_hz: u64) -> (f64, f64) {
        super::ad9361_gain_limits(lo_hz)
    }
    fn modeled_step(&self) -> Duration {
        if self.realtime {
            Duration::from_secs_f64(self.samples_per_step as f64 / self.sample_rate.max(1.0))
        } else {
            Duration::ZERO
        }
    }
    fn file_plans(&self) -> Option<Vec<Plan>> {
        Some(self.plans.clone())
    }
    fn next_file_step(&mut self) -> Option<FileStep> {
        if self.pos >= self.schedule.len() {
            if !self.looped {
                return None;
            }
            self.pos = 0;
        }
        let e = self.schedule.get(self.pos)?.clone();
        self.pos += 1;
        let step = FileStep {
            plan_idx: e.plan_idx,
            step_idx: e.step_idx,
            lo_hz: e.lo_hz,
            end_ms: e.end_ms,
            pass_end: e.pass_end,
            sweep_seq: e.sweep_seq,
        };
        self.current = Some(e);
        Some(step)
    }

    fn capture(&mut self, _lo_hz: u64, end_ms: u64, out: &mut [Complex32]) -> Result<Capture, SourceError> {
        let e = self
            .current
            .clone()
            .ok_or_else(|| SourceError::new("capture_failed", "no file step selected"))?;
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| SourceError::new("device_not_connected", "file closed"))?;
        let bps = self.datatype.bytes_per_sample();
        self.raw.resize(out.len() * bps, 0);
        f.seek(SeekFrom::Start(e.offset))
            .and_then(|_| f.read_exact(&mut self.raw))
            .map_err(|err| SourceError::new("capture_failed", format!("short recording: {err}")))?;
        match self.datatype {
            DataType::Cf32 => {
                for (o, b) in out.iter_mut().zip(self.raw.chunks_exact(8)) {
                    let re = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    let im = f32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                    *o = Complex32::new(re, im);
                }
            }
            DataType::Ci16 => {
                let inv = 1.0 / self.full_scale;
                for (o, b) in out.iter_mut().zip(self.raw.chunks_exact(4)) {
                    let re = i16::from_le_bytes([b[0], b[1]]) as f32 * inv;
                    let im = i16::from_le_bytes([b[2], b[3]]) as f32 * inv;
                    *o = Complex32::new(re, im);
                }
            }
        }
        Ok(Capture {
            end_ms: e.end_ms.unwrap_or(end_ms),
            gain_db: e.gain_db.unwrap_or(0.0),
            overload: overloaded(out),
        })
    }
}
