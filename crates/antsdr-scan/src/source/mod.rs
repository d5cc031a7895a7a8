//! IQ sources behind one trait (antsdr-scan §2): libiio AD9361 (feature `iio`), recorded
//! files (raw cf32/ci16 and SigMF) and the seeded synthetic scene.

pub mod factory;
pub mod file;
#[cfg(feature = "iio")]
pub mod iio;
pub mod scene;
pub mod sigmf;
pub mod synthetic;

use ndefender_contract::enums::GainMode;
use rustfft::num_complex::Complex32;
use std::time::Duration;

/// What went wrong with a capture or a device call; `code` is the `last_error` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub code: &'static str,
    pub message: String,
}

impl SourceError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for SourceError {}

/// The result of one step's capture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capture {
    /// Wall-clock time the last sample was taken (epoch ms).
    pub end_ms: u64,
    /// Gain read back for this step.
    pub gain_db: f64,
    pub overload: bool,
}

/// The next step of a file source: which plan and step of [`IqSource::file_plans`] it is.
#[derive(Debug, Clone, PartialEq)]
pub struct FileStep {
    pub plan_idx: usize,
    pub step_idx: usize,
    pub lo_hz: u64,
    /// Capture end in epoch ms (SigMF `core:datetime` + the step's samples) when known.
    pub end_ms: Option<u64>,
    /// Last step of a band pass.
    pub pass_end: bool,
    /// `ndefender:sweep_seq` of a recorded step.
    pub sweep_seq: Option<u64>,
}

/// A tuneable IQ source. A source is built on, and stays on, the scan thread (libiio
/// buffers cannot move between threads), so the trait does not require `Send`.
pub trait IqSource {
    /// `/device` `uri`: `ip:…`, `synthetic:seed=42`, `file:/path`.
    fn uri(&self) -> String;
    /// Opens (or reopens) the device and writes every attribute (§2, §3).
    fn open(&mut self) -> Result<(), SourceError>;
    fn close(&mut self);
    fn is_open(&self) -> bool;
    /// Sample rate the DSP must use (a file's rate replaces `radio.sample_rate`).
    fn sample_rate(&self) -> f64;
    /// Writes the gain settings and returns the read-back gain.
    fn set_gain(&mut self, mode: GainMode, gain_db: f64) -> Result<f64, SourceError>;
    /// `hardwaregain_available` at an LO.
    fn gain_limits(&self, lo_hz: u64) -> (f64, f64);
    /// Radio time one step takes that the scan loop must model by waiting (0 for hardware,
    /// whose capture call itself takes that long).
    fn modeled_step(&self) -> Duration;
    /// Tunes to `lo_hz` and fills `out` (`avg_frames × fft_size` samples, full scale = 1.0).
    /// `end_ms` is the capture end time the scan loop assigns to modeled sources.
    fn capture(&mut self, lo_hz: u64, end_ms: u64, out: &mut [Complex32]) -> Result<Capture, SourceError>;
    fn temperature_c(&mut self) -> Option<f64> {
        None
    }
    /// `device/calibrate`: `rf_dc` or `tracking`. Modeled sources accept it as a no-op.
    fn calibrate(&mut self, kind: &str) -> Result<(), SourceError> {
        let _ = kind;
        Ok(())
    }
    /// File sources dictate their plans and steps; live sources return `None` and follow
    /// the configured plans.
    fn file_plans(&self) -> Option<Vec<crate::plan::Plan>> {
        None
    }
    /// The next step of a file source; `None` at the end of the recording.
    fn next_file_step(&mut self) -> Option<FileStep> {
        None
    }
}

/// AD9361 `hardwaregain_available` by LO band (the limits differ per band).
pub fn ad9361_gain_limits(lo_hz: u64) -> (f64, f64) {
    match lo_hz {
        0..1_300_000_000 => (-1.0, 73.0),
        1_300_000_000..4_000_000_000 => (-3.0, 71.0),
        _ => (-10.0, 62.0),
    }
}
