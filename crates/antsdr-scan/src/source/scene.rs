//! The synthetic scene file (antsdr-scan §2.1): strict TOML, every key named on error.

use serde::{Deserialize, Serialize};

pub const DEMO_SCENE: &str = include_str!("../../scenes/demo.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmitterKind {
    AnalogFm,
    Ofdm,
    Hopping,
    Cw,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Emitter {
    pub kind: EmitterKind,
    #[serde(default)]
    pub freq_hz: f64,
    pub snr_db: f64,
    /// `[[start_s, end_s], …]` on the scene clock; empty = always.
    #[serde(default)]
    pub active: Vec<[f64; 2]>,
    #[serde(default = "d_deviation")]
    pub deviation_hz: f64,
    /// OFDM occupied bandwidth (20 MHz) or a hopper's packet bandwidth (812.5 kHz).
    #[serde(default)]
    pub bandwidth_hz: Option<f64>,
    #[serde(default = "d_one")]
    pub duty: f64,
    #[serde(default = "d_burst")]
    pub burst_us: f64,
    #[serde(default)]
    pub channel_start_hz: f64,
    #[serde(default)]
    pub channel_spacing_hz: f64,
    #[serde(default)]
    pub channels: u32,
    #[serde(default = "d_rate")]
    pub packet_rate_hz: f64,
    #[serde(default = "d_airtime")]
    pub airtime_us: f64,
    #[serde(default = "d_hop_every")]
    pub hop_every: u32,
}

fn d_deviation() -> f64 {
    6e6
}
fn d_one() -> f64 {
    1.0
}
fn d_burst() -> f64 {
    500.0
}
fn d_rate() -> f64 {
    250.0
}
fn d_airtime() -> f64 {
    1000.0
}
fn d_hop_every() -> u32 {
    1
}

impl Emitter {
    pub fn is_active(&self, t_s: f64) -> bool {
        self.active.is_empty() || self.active.iter().any(|[a, b]| t_s >= *a && t_s < *b)
    }

    pub fn bandwidth(&self) -> f64 {
        match self.kind {
            EmitterKind::AnalogFm => 2.0 * self.deviation_hz,
            EmitterKind::Ofdm => self.bandwidth_hz.unwrap_or(20e6),
            EmitterKind::Hopping => self.bandwidth_hz.unwrap_or(812_500.0),
            EmitterKind::Cw => 0.0,
        }
    }

    /// Lowest and highest frequency the emitter can occupy.
    pub fn span(&self) -> (f64, f64) {
        let half = self.bandwidth() / 2.0;
        match self.kind {
            EmitterKind::Hopping => {
                let last = self.channel_start_hz + self.channel_spacing_hz * self.channels.saturating_sub(1) as f64;
                (self.channel_start_hz - half, last + half)
            }
            _ => (self.freq_hz - half, self.freq_hz + half),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scene {
    #[serde(default = "d_seed")]
    pub seed: u64,
    #[serde(default = "d_noise")]
    pub noise_dbfs: f64,
    #[serde(default = "d_true")]
    pub quantize: bool,
    #[serde(default = "d_leak")]
    pub lo_leakage_dbfs: f64,
    #[serde(default)]
    pub emitter: Vec<Emitter>,
}

fn d_seed() -> u64 {
    42
}
fn d_noise() -> f64 {
    -50.0
}
fn d_true() -> bool {
    true
}
fn d_leak() -> f64 {
    -45.0
}

impl Scene {
    /// `""` = the built-in demo scene; otherwise a file path.
    pub fn load(path: &str) -> Result<Scene, String> {
        if path.is_empty() {
            return Self::parse(DEMO_SCENE);
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        Self::parse(&text).map_err(|e| format!("{path}: {e}"))
    }

    pub fn parse(text: &str) -> Result<Scene, String> {
        let s: Scene = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        for (i, e) in s.emitter.iter().enumerate() {
            let bad = |m: &str| Err(format!("emitter[{i}]: {m}"));
            if !e.snr_db.is_finite() {
                return bad("snr_db must be finite");
            }
            if e.kind == EmitterKind::Hopping {
                if e.channels == 0 || e.packet_rate_hz <= 0.0 || e.airtime_us <= 0.0 || e.hop_every == 0 {
                    return bad("hopping needs channels, packet_rate_hz, airtime_us and hop_every > 0");
                }
            } else if e.freq_hz <= 0.0 {
                return bad("freq_hz is required");
            }
            if !(e.duty > 0.0 && e.duty <= 1.0) || e.burst_us <= 0.0 {
                return bad("duty must be in (0, 1] and burst_us positive");
            }
            if e.bandwidth() < 0.0 || !e.bandwidth().is_finite() {
                return bad("bandwidth must be positive");
            }
        }
        Ok(s)
    }

    /// A scene with only noise and LO leakage.
    pub fn empty(seed: u64) -> Scene {
        Scene {
            seed,
            noise_dbfs: d_noise(),
            quantize: true,
            lo_leakage_dbfs: d_leak(),
            emitter: Vec::new(),
        }
    }
}

impl Emitter {
    fn base(kind: EmitterKind, freq_hz: f64, snr_db: f64) -> Emitter {
        Emitter {
            kind,
            freq_hz,
            snr_db,
            active: Vec::new(),
            deviation_hz: d_deviation(),
            bandwidth_hz: None,
            duty: 1.0,
            burst_us: d_burst(),
            channel_start_hz: 0.0,
            channel_spacing_hz: 0.0,
            channels: 0,
            packet_rate_hz: d_rate(),
            airtime_us: d_airtime(),
            hop_every: 1,
        }
    }
    pub fn analog(freq_hz: f64, snr_db: f64) -> Emitter {
        Self::base(EmitterKind::AnalogFm, freq_hz, snr_db)
    }
    pub fn ofdm(freq_hz: f64, bandwidth_hz: f64, snr_db: f64) -> Emitter {
        Emitter {
            bandwidth_hz: Some(bandwidth_hz),
            ..Self::base(EmitterKind::Ofdm, freq_hz, snr_db)
        }
    }
    pub fn cw(freq_hz: f64, snr_db: f64) -> Emitter {
        Self::base(EmitterKind::Cw, freq_hz, snr_db)
    }
    pub fn hopper(start_hz: f64, spacing_hz: f64, channels: u32, bandwidth_hz: f64, snr_db: f64) -> Emitter {
        Emitter {
            channel_start_hz: start_hz,
            channel_spacing_hz: spacing_hz,
            channels,
            bandwidth_hz: Some(bandwidth_hz),
            ..Self::base(EmitterKind::Hopping, 0.0, snr_db)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_scene_parses_and_unknown_keys_are_named() -> Result<(), String> {
        let s = Scene::load("")?;
        assert_eq!(s.emitter.len(), 7);
        assert!(!s.emitter[1].is_active(150.0) && s.emitter[1].is_active(200.0));
        let e = Scene::parse("seed = 1\n[[emitter]]\nkind = \"cw\"\nfreq_hz = 1e9\nsnr_db = 3\nfreqq = 2\n")
            .err()
            .unwrap_or_default();
        assert!(e.contains("freqq"), "{e}");
        Ok(())
    }
}
