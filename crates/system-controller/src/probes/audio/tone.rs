//! The real tone output: a cpal output stream playing the beep.

use super::{alsa_quiet, Tone, ToneOutput};
use std::sync::mpsc;
use std::time::Duration;

/// The cpal default host's output: the device whose name contains `name`, or the default.
pub struct CpalTone {
    pub name: String,
}

impl CpalTone {
    fn device(&self) -> Option<cpal::Device> {
        alsa_quiet("output device lookup", || self.device_inner())
    }

    fn device_inner(&self) -> Option<cpal::Device> {
        use cpal::traits::{DeviceTrait, HostTrait};
        let host = cpal::default_host();
        if self.name.is_empty() {
            return host.default_output_device();
        }
        host.output_devices()
            .ok()?
            .find(|d| d.description().is_ok_and(|x| x.name().contains(self.name.as_str())))
    }

    fn stream(&self, tone: Tone) -> Result<cpal::Stream, String> {
        use cpal::traits::{DeviceTrait, StreamTrait};
        let dev = self.device().ok_or("no_output_device")?;
        let sup = dev.default_output_config().map_err(|e| e.to_string())?;
        let cfg = sup.config();
        let stream = match sup.sample_format() {
            cpal::SampleFormat::F32 => build::<f32>(&dev, cfg, tone),
            cpal::SampleFormat::I16 => build::<i16>(&dev, cfg, tone),
            cpal::SampleFormat::U16 => build::<u16>(&dev, cfg, tone),
            other => Err(format!("unsupported sample format {other:?}")),
        }?;
        stream.play().map_err(|e| e.to_string())?;
        Ok(stream)
    }
}

fn build<T>(dev: &cpal::Device, cfg: cpal::StreamConfig, tone: Tone) -> Result<cpal::Stream, String>
where
    T: cpal::SizedSample + cpal::FromSample<f32>,
{
    use cpal::traits::DeviceTrait;
    let channels = usize::from(cfg.channels.max(1));
    let rate = cfg.sample_rate;
    let mut i: u64 = 0;
    dev.build_output_stream::<T, _, _>(
        cfg,
        move |data: &mut [T], _| {
            for frame in data.chunks_mut(channels) {
                let v = T::from_sample(tone.sample(i, rate));
                frame.iter_mut().for_each(|s| *s = v);
                i += 1;
            }
        },
        |e| tracing::warn!(error = %e, "beep stream error"),
        None,
    )
    .map_err(|e| e.to_string())
}

impl ToneOutput for CpalTone {
    /// A device that cannot name a default config (ALSA's "default" PCM with no
    /// card behind it) cannot play anything: not present.
    fn present(&self) -> bool {
        use cpal::traits::DeviceTrait;
        self.device().is_some_and(|d| d.default_output_config().is_ok())
    }
    fn play(&self, tone: Tone, started: mpsc::Sender<Result<(), String>>) {
        match self.stream(tone) {
            Ok(stream) => {
                let _ = started.send(Ok(()));
                std::thread::sleep(tone.total() + Duration::from_millis(100));
                drop(stream);
            }
            Err(e) => {
                let _ = started.send(Err(e));
            }
        }
    }
}
