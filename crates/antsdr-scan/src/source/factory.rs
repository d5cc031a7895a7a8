//! The source factory: which [`IqSource`] a config asks for, and whether it runs on a virtual
//! clock. The engine, the runner, replay and recording all build their source here.

use crate::config::{ClockMode, Pace, ScanConfig, SourceKind};
use crate::plan::PlanSet;
use crate::source::file::{FileSource, RawSpec};
use crate::source::scene::Scene;
use crate::source::sigmf::DataType;
use crate::source::synthetic::{SyntheticSource, SyntheticTiming};
use crate::source::IqSource;
#[cfg(not(feature = "iio"))]
use crate::source::SourceError;
#[cfg(not(feature = "iio"))]
use ndefender_contract::enums::GainMode;
#[cfg(not(feature = "iio"))]
use rustfft::num_complex::Complex32;
#[cfg(not(feature = "iio"))]
use std::time::Duration;

/// A source that can never open (`radio.source = "iio"` in a build without the feature).
#[cfg(not(feature = "iio"))]
struct Unavailable(&'static str, String);

#[cfg(not(feature = "iio"))]
impl IqSource for Unavailable {
    fn uri(&self) -> String {
        self.1.clone()
    }
    fn open(&mut self) -> Result<(), SourceError> {
        Err(SourceError::new(self.0, "source not available in this build"))
    }
    fn close(&mut self) {}
    fn is_open(&self) -> bool {
        false
    }
    fn sample_rate(&self) -> f64 {
        1.0
    }
    fn set_gain(&mut self, _: GainMode, g: f64) -> Result<f64, SourceError> {
        Ok(g)
    }
    fn gain_limits(&self, lo: u64) -> (f64, f64) {
        crate::source::ad9361_gain_limits(lo)
    }
    fn modeled_step(&self) -> Duration {
        Duration::ZERO
    }
    fn capture(&mut self, _: u64, _: u64, _: &mut [Complex32]) -> Result<crate::source::Capture, SourceError> {
        Err(SourceError::new(self.0, "source not available in this build"))
    }
}

/// Builds the configured source. `origin_ms` is scene time 0 of a synthetic source.
pub fn build_source(cfg: &ScanConfig, plans: &PlanSet, origin_ms: u64) -> Result<Box<dyn IqSource>, String> {
    let r = &cfg.radio;
    match r.source {
        SourceKind::Synthetic => {
            let scene = Scene::load(&cfg.synthetic.scene)?;
            Ok(Box::new(SyntheticSource::new(
                scene,
                SyntheticTiming {
                    sample_rate: r.sample_rate as f64,
                    fft_size: r.fft_size,
                    avg_frames: r.avg_frames,
                    settle_us: r.settle_us,
                    discard_buffers: r.discard_buffers,
                    step_overhead_us: cfg.synthetic.step_overhead_us,
                },
                origin_ms,
                r.gain_db,
            )))
        }
        SourceKind::File => {
            let f = &cfg.file;
            let raw = RawSpec {
                datatype: match f.format {
                    crate::config::RawFormat::Cf32 => DataType::Cf32,
                    crate::config::RawFormat::Ci16 => DataType::Ci16,
                },
                sample_rate: f.sample_rate as f64,
                center_hz: f.center_hz,
            };
            let src = FileSource::new(
                std::path::Path::new(&f.path),
                Some(raw),
                plans,
                &f.band,
                r.usable_fraction,
                r.fft_size * r.avg_frames,
                f.full_scale,
                f.looped,
                f.pace == Pace::Realtime,
            )?;
            Ok(Box::new(src))
        }
        SourceKind::Iio => {
            #[cfg(feature = "iio")]
            {
                Ok(Box::new(crate::source::iio::IioSource::new(r)))
            }
            #[cfg(not(feature = "iio"))]
            {
                Ok(Box::new(Unavailable("iio_support_not_built", r.uri.clone())))
            }
        }
    }
}

/// Whether this config runs on a virtual clock (synthetic `virtual`, or file `fast`).
pub fn uses_virtual_clock(cfg: &ScanConfig) -> bool {
    match cfg.radio.source {
        SourceKind::Synthetic => cfg.synthetic.clock == ClockMode::Virtual,
        SourceKind::File => cfg.file.pace == Pace::Fast,
        SourceKind::Iio => false,
    }
}
