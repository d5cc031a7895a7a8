//! The libiio AD9361 source (antsdr-scan §2 `iio`, §3), built with cargo feature `iio`.
//! Every attribute is written, then read back; a retune waits `settle_us` and discards the
//! buffers that may hold samples from before the LO write.

use super::{ad9361_gain_limits, Capture, IqSource, SourceError};
use crate::config::{AgcMode, RadioConfig};
use crate::dsp::overloaded;
use industrial_io as iio;
use ndefender_contract::enums::GainMode;
use rustfft::num_complex::Complex32;
use std::collections::HashMap;
use std::time::Duration;

const PHY: &str = "ad9361-phy";
const RX: &str = "cf-ad9361-lpc";
/// 12-bit samples in 16-bit words.
const FULL_SCALE: f32 = 2048.0;

pub struct IioSource {
    uri: String,
    sample_rate: u64,
    rf_bandwidth_hz: u64,
    samples: usize,
    settle: Duration,
    discard_buffers: u32,
    kernel_buffers: u32,
    io_timeout_ms: u64,
    mode: GainMode,
    agc: AgcMode,
    gain_db: f64,
    ctx: Option<iio::Context>,
    buf: Option<iio::Buffer>,
    limits: HashMap<u8, (f64, f64)>,
}

impl std::fmt::Debug for IioSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IioSource")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

fn e(code: &'static str, what: &str, err: impl std::fmt::Display) -> SourceError {
    SourceError::new(code, format!("{what}: {err}"))
}

/// AD9361 gain-table band of an LO (the gain limits differ per band).
fn band_of(lo_hz: u64) -> u8 {
    match lo_hz {
        0..1_300_000_000 => 0,
        1_300_000_000..4_000_000_000 => 1,
        _ => 2,
    }
}

/// `hardwaregain_available` reads `[min step max]`.
fn parse_available(s: &str) -> Option<(f64, f64)> {
    let v: Vec<f64> = s
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    match v.as_slice() {
        [min, _, max] => Some((*min, *max)),
        _ => None,
    }
}

impl IioSource {
    pub fn new(r: &RadioConfig) -> Self {
        Self {
            uri: r.uri.clone(),
            sample_rate: r.sample_rate,
            rf_bandwidth_hz: r.rf_bandwidth_hz,
            samples: r.fft_size * r.avg_frames,
            settle: Duration::from_micros(r.settle_us),
            discard_buffers: r.discard_buffers,
            kernel_buffers: r.kernel_buffers,
            io_timeout_ms: r.io_timeout_ms,
            mode: r.gain_mode,
            agc: r.agc_mode,
            gain_db: r.gain_db,
            ctx: None,
            buf: None,
            limits: HashMap::new(),
        }
    }

    fn phy(&self) -> Result<iio::Device, SourceError> {
        self.ctx
            .as_ref()
            .and_then(|c| c.find_device(PHY))
            .ok_or_else(|| SourceError::new("device_not_connected", format!("{PHY} not found")))
    }

    fn rx_chan(&self) -> Result<iio::Channel, SourceError> {
        self.phy()?
            .find_channel("voltage0", iio::Direction::Input)
            .ok_or_else(|| SourceError::new("device_error", "ad9361-phy voltage0 missing"))
    }

    fn write_int_checked(ch: &iio::Channel, attr: &str, v: i64) -> Result<i64, SourceError> {
        ch.attr_write_int(attr, v).map_err(|x| e("device_error", attr, x))?;
        ch.attr_read_int(attr).map_err(|x| e("device_error", attr, x))
    }

    fn apply_gain(&mut self) -> Result<f64, SourceError> {
        let ch = self.rx_chan()?;
        match self.mode {
            GainMode::Manual => {
                ch.attr_write_str("gain_control_mode", "manual")
                    .map_err(|x| e("device_error", "gain_control_mode", x))?;
                ch.attr_write_float("hardwaregain", self.gain_db)
                    .map_err(|x| e("device_error", "hardwaregain", x))?;
            }
            GainMode::Auto => {
                ch.attr_write_str("gain_control_mode", self.agc.as_str())
                    .map_err(|x| e("device_error", "gain_control_mode", x))?;
            }
        }
        ch.attr_read_float("hardwaregain")
            .map_err(|x| e("device_error", "hardwaregain", x))
    }

    fn write_tracking(&self) -> Result<(), SourceError> {
        let ch = self.rx_chan()?;
        for attr in [
            "bb_dc_offset_tracking_en",
            "rf_dc_offset_tracking_en",
            "quadrature_tracking_en",
        ] {
            Self::write_int_checked(&ch, attr, 1)?;
        }
        Ok(())
    }
}

impl IqSource for IioSource {
    fn uri(&self) -> String {
        self.uri.clone()
    }

    fn open(&mut self) -> Result<(), SourceError> {
        self.close();
        let ctx = iio::Context::from_uri(&self.uri).map_err(|x| e("device_not_connected", &self.uri, x))?;
        ctx.set_timeout_ms(self.io_timeout_ms)
            .map_err(|x| e("device_error", "timeout", x))?;
        self.ctx = Some(ctx);
        let ch = self.rx_chan()?;
        let fs = Self::write_int_checked(&ch, "sampling_frequency", self.sample_rate as i64)?;
        if (fs - self.sample_rate as i64).abs() > 1 {
            return Err(SourceError::new(
                "device_error",
                format!("sampling_frequency read back {fs}, wanted {}", self.sample_rate),
            ));
        }
        Self::write_int_checked(&ch, "rf_bandwidth", self.rf_bandwidth_hz as i64)?;
        self.write_tracking()?;
        self.gain_db = self.apply_gain()?;
        let rx = self
            .ctx
            .as_ref()
            .and_then(|c| c.find_device(RX))
            .ok_or_else(|| SourceError::new("device_error", format!("{RX} not found")))?;
        for name in ["voltage0", "voltage1"] {
            rx.find_channel(name, iio::Direction::Input)
                .ok_or_else(|| SourceError::new("device_error", format!("{RX} {name} missing")))?
                .enable();
        }
        rx.set_num_kernel_buffers(self.kernel_buffers.max(1))
            .map_err(|x| e("device_error", "kernel buffers", x))?;
        let buf = rx
            .create_buffer(self.samples, false)
            .map_err(|x| e("device_error", "create_buffer", x))?;
        self.buf = Some(buf);
        Ok(())
    }

    fn close(&mut self) {
        self.buf = None;
        self.ctx = None;
    }

    fn is_open(&self) -> bool {
        self.buf.is_some()
    }

    fn sample_rate(&self) -> f64 {
        self.sample_rate as f64
    }

    fn set_gain(&mut self, mode: GainMode, gain_db: f64) -> Result<f64, SourceError> {
        self.mode = mode;
        self.gain_db = gain_db;
        if self.ctx.is_none() {
            return Ok(gain_db);
        }
        let back = self.apply_gain()?;
        self.gain_db = back;
        Ok(back)
    }

    fn gain_limits(&self, lo_hz: u64) -> (f64, f64) {
        self.limits
            .get(&band_of(lo_hz))
            .copied()
            .unwrap_or_else(|| ad9361_gain_limits(lo_hz))
    }

    fn modeled_step(&self) -> Duration {
        Duration::ZERO
    }

    fn capture(&mut self, lo_hz: u64, _end_ms: u64, out: &mut [Complex32]) -> Result<Capture, SourceError> {
        let phy = self.phy()?;
        let lo = phy
            .find_channel("altvoltage0", iio::Direction::Output)
            .ok_or_else(|| SourceError::new("device_error", "RX LO altvoltage0 missing"))?;
        lo.attr_write_int("frequency", lo_hz as i64)
            .map_err(|x| e("capture_failed", "LO write", x))?;
        std::thread::sleep(self.settle);
        let rx = self
            .ctx
            .as_ref()
            .and_then(|c| c.find_device(RX))
            .ok_or_else(|| SourceError::new("device_not_connected", format!("{RX} not found")))?;
        let (ci, cq) = (
            rx.find_channel("voltage0", iio::Direction::Input)
                .ok_or_else(|| SourceError::new("device_error", "rx voltage0"))?,
            rx.find_channel("voltage1", iio::Direction::Input)
                .ok_or_else(|| SourceError::new("device_error", "rx voltage1"))?,
        );
        let buf = self
            .buf
            .as_mut()
            .ok_or_else(|| SourceError::new("device_not_connected", "no buffer"))?;
        // Buffers queued before the LO write hold samples of the old frequency.
        for _ in 0..self.discard_buffers {
            buf.refill().map_err(|x| e("capture_failed", "refill", x))?;
        }
        buf.refill().map_err(|x| e("capture_failed", "refill", x))?;
        let inv = 1.0 / FULL_SCALE;
        for (o, (i, q)) in out
            .iter_mut()
            .zip(buf.channel_iter::<i16>(&ci).zip(buf.channel_iter::<i16>(&cq)))
        {
            *o = Complex32::new(*i as f32 * inv, *q as f32 * inv);
        }
        let end_ms = ndefender_contract::time::now_ms();
        let ch = self.rx_chan()?;
        let gain = ch.attr_read_float("hardwaregain").unwrap_or(self.gain_db);
        let band = band_of(lo_hz);
        if let std::collections::hash_map::Entry::Vacant(slot) = self.limits.entry(band) {
            if let Some(l) = ch
                .attr_read_str("hardwaregain_available")
                .ok()
                .and_then(|s| parse_available(&s))
            {
                slot.insert(l);
            }
        }
        Ok(Capture {
            end_ms,
            gain_db: gain,
            overload: overloaded(out),
        })
    }

    fn temperature_c(&mut self) -> Option<f64> {
        let ch = self.phy().ok()?.find_channel("temp0", iio::Direction::Input)?;
        ch.attr_read_float("input").ok().map(|m| m / 1000.0)
    }

    fn calibrate(&mut self, kind: &str) -> Result<(), SourceError> {
        match kind {
            "rf_dc" => self
                .phy()?
                .attr_write_str("calib_mode", "rf_dc_offs")
                .map_err(|x| e("device_error", "calib_mode", x)),
            _ => self.write_tracking(),
        }
    }
}
