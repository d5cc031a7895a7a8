//! Fault knobs (esp32-protocol.md §9.4) and the RF scene (§9.3).
//!
//! Knobs are set by name, from `--fault <name>[=value]` on the command line, from
//! `{"set":{<name>:<value>}}` on the control socket, or from [`crate::esp32::SimHandle::set_knob`].
//! One-shot faults (`stall_telemetry_ms`, `disconnect`, `reset`, and the extensions
//! `unplug`, `replug`) are returned as a [`OneShot`] to be triggered.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Persistent fault knobs, with the defaults of §9.4.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Knobs {
    /// ROM-style non-JSON lines before the first telemetry, at start and on every reset.
    pub boot_noise: bool,
    /// Nominal telemetry period (extension; the firmware uses 1000 ms).
    pub telemetry_period_ms: u64,
    /// Upper bound of the uniform extra delay per telemetry.
    pub telemetry_jitter_ms: u64,
    /// Each second the loop blocks this long (OLED redraw); 0 disables.
    pub oled_stall_ms: u64,
    /// Bytes the UART holds while the loop is blocked; the excess is lost.
    pub uart_rx_buffer: usize,
    /// Random non-JSON lines (printable text mixed with invalid UTF-8) per minute.
    pub garbage_per_min: f64,
    /// Every Nth telemetry is preceded by one overlong line (0 = off).
    pub overlong_every: u32,
    /// Length in bytes of that line (without CRLF).
    pub overlong_len: usize,
    /// Write lines in fragments of 1..N bytes with 0–20 ms pauses (0 = off).
    pub split_writes: usize,
    /// Probability that an ack is not sent (the command still takes effect).
    pub drop_ack_prob: f64,
    /// Extension: drop exactly the next N acks (deterministic variant of `drop_ack_prob`).
    pub drop_acks: u32,
    /// Every ack is delayed by this much (> 2000 produces late acks).
    pub ack_delay_ms: u64,
    /// Probability that an ack is sent twice.
    pub duplicate_ack_prob: f64,
    /// After a `disconnect`, the pty comes back after this long.
    pub reconnect_after_ms: u64,
    /// Uptime at the first boot (near 4 294 967 295 to test the wrap).
    pub uptime_start_ms: u32,
    /// Emit `log_event` lines on run-mode changes.
    pub emit_log_events: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            boot_noise: true,
            telemetry_period_ms: 1000,
            telemetry_jitter_ms: 150,
            oled_stall_ms: 120,
            uart_rx_buffer: 256,
            garbage_per_min: 0.0,
            overlong_every: 0,
            overlong_len: 3000,
            split_writes: 0,
            drop_ack_prob: 0.0,
            drop_acks: 0,
            ack_delay_ms: 0,
            duplicate_ack_prob: 0.0,
            reconnect_after_ms: 2000,
            uptime_start_ms: 0,
            emit_log_events: false,
        }
    }
}

impl Knobs {
    /// A quiet, fully deterministic profile for unit tests: no boot noise, no jitter,
    /// no OLED stall.
    pub fn quiet() -> Self {
        Self {
            boot_noise: false,
            telemetry_jitter_ms: 0,
            oled_stall_ms: 0,
            ..Self::default()
        }
    }
}

/// One-shot faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OneShot {
    /// No telemetry for that many ms; acks keep working.
    StallTelemetry(u64),
    /// Close the pty and remove the link; re-create both after `reconnect_after_ms`.
    Disconnect,
    /// Board reset: boot noise, uptime restarts at 0, boot defaults.
    Reset,
    /// Extension: close the pty and remove the link until `Replug`.
    Unplug,
    /// Extension: new pty, link re-pointed, board boots.
    Replug,
}

fn parse_bool(v: Option<&str>) -> Result<bool, String> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("on" | "true" | "1" | "yes") => Ok(true),
        Some("off" | "false" | "0" | "no") => Ok(false),
        Some(other) => Err(format!("not a boolean: {other:?}")),
    }
}

fn parse_num<T: std::str::FromStr>(name: &str, v: Option<&str>) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("{name} needs a value"))?;
    v.trim().parse().map_err(|_| format!("{name}: invalid value {v:?}"))
}

fn parse_prob(name: &str, v: Option<&str>) -> Result<f64, String> {
    let p: f64 = parse_num(name, v)?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{name}: probability must be within 0..1"))
    }
}

/// The names [`Knobs::apply`] accepts, for help texts.
pub const KNOB_NAMES: &[&str] = &[
    "boot_noise",
    "telemetry_period_ms",
    "telemetry_jitter_ms",
    "oled_stall_ms",
    "uart_rx_buffer",
    "garbage_per_min",
    "overlong_every",
    "overlong_len",
    "split_writes",
    "drop_ack_prob",
    "drop_acks",
    "ack_delay_ms",
    "duplicate_ack_prob",
    "reconnect_after_ms",
    "uptime_start_ms",
    "emit_log_events",
    "stall_telemetry_ms",
    "disconnect",
    "reset",
    "unplug",
    "replug",
];

impl Knobs {
    /// Sets one knob from its textual form (`--fault name[=value]`). Returns the
    /// one-shot to trigger when `name` is one.
    pub fn apply(&mut self, name: &str, value: Option<&str>) -> Result<Option<OneShot>, String> {
        match name {
            "boot_noise" => self.boot_noise = parse_bool(value)?,
            "emit_log_events" => self.emit_log_events = parse_bool(value)?,
            "telemetry_period_ms" => {
                let v: u64 = parse_num(name, value)?;
                if v == 0 {
                    return Err("telemetry_period_ms must be > 0".into());
                }
                self.telemetry_period_ms = v;
            }
            "telemetry_jitter_ms" => self.telemetry_jitter_ms = parse_num(name, value)?,
            "oled_stall_ms" => self.oled_stall_ms = parse_num(name, value)?,
            "uart_rx_buffer" => self.uart_rx_buffer = parse_num(name, value)?,
            "garbage_per_min" => {
                let v: f64 = parse_num(name, value)?;
                if !v.is_finite() || v < 0.0 {
                    return Err("garbage_per_min must be ≥ 0".into());
                }
                self.garbage_per_min = v;
            }
            "overlong_every" => self.overlong_every = parse_num(name, value)?,
            "overlong_len" => self.overlong_len = parse_num(name, value)?,
            "split_writes" => {
                self.split_writes = match value.map(str::to_ascii_lowercase).as_deref() {
                    None | Some("on" | "true" | "yes") => 8,
                    Some("off" | "false" | "no") => 0,
                    _ => parse_num(name, value)?,
                }
            }
            "drop_ack_prob" => self.drop_ack_prob = parse_prob(name, value)?,
            "drop_acks" => self.drop_acks = parse_num(name, value)?,
            "ack_delay_ms" => self.ack_delay_ms = parse_num(name, value)?,
            "duplicate_ack_prob" => self.duplicate_ack_prob = parse_prob(name, value)?,
            "reconnect_after_ms" => self.reconnect_after_ms = parse_num(name, value)?,
            "uptime_start_ms" => self.uptime_start_ms = parse_num(name, value)?,
            "stall_telemetry_ms" => return Ok(Some(OneShot::StallTelemetry(parse_num(name, value)?))),
            "disconnect" => return Ok(Some(OneShot::Disconnect)),
            "reset" => return Ok(Some(OneShot::Reset)),
            "unplug" => return Ok(Some(OneShot::Unplug)),
            "replug" => return Ok(Some(OneShot::Replug)),
            other => return Err(format!("unknown knob {other:?} (known: {})", KNOB_NAMES.join(", "))),
        }
        Ok(None)
    }

    /// `name[=value]` as given to `--fault`.
    pub fn apply_spec(&mut self, spec: &str) -> Result<Option<OneShot>, String> {
        match spec.split_once('=') {
            Some((k, v)) => self.apply(k.trim(), Some(v.trim())),
            None => self.apply(spec.trim(), None),
        }
    }

    /// Sets one knob from a JSON value (control socket `{"set":{…}}`).
    pub fn apply_json(&mut self, name: &str, value: &Value) -> Result<Option<OneShot>, String> {
        let text = match value {
            Value::Null => None,
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) => Some(s.clone()),
            other => return Err(format!("{name}: unsupported value {other}")),
        };
        self.apply(name, text.as_deref())
    }
}

/// One transmitter of the RF scene: a triangular response around `freq_hz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transmitter {
    pub freq_hz: u64,
    #[serde(default = "default_peak")]
    pub peak: f64,
    #[serde(default = "default_width")]
    pub width_mhz: f64,
}

fn default_peak() -> f64 {
    2600.0
}

fn default_width() -> f64 {
    8.0
}

impl Transmitter {
    pub fn new(freq_hz: u64) -> Self {
        Self {
            freq_hz,
            peak: default_peak(),
            width_mhz: default_width(),
        }
    }

    /// Parses `FREQ_HZ[:PEAK[:WIDTH_MHZ]]`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut it = s.split(':');
        let freq_hz = it
            .next()
            .and_then(|f| f.trim().parse().ok())
            .ok_or_else(|| format!("bad transmitter {s:?}: expected FREQ_HZ[:PEAK[:WIDTH_MHZ]]"))?;
        let mut t = Self::new(freq_hz);
        if let Some(p) = it.next() {
            t.peak = p.trim().parse().map_err(|_| format!("bad peak in {s:?}"))?;
        }
        if let Some(w) = it.next() {
            t.width_mhz = w.trim().parse().map_err(|_| format!("bad width in {s:?}"))?;
        }
        Ok(t)
    }

    /// Response at a synthesised frequency (MHz).
    pub fn response(&self, synth_mhz: f64) -> f64 {
        if self.width_mhz <= 0.0 {
            return 0.0;
        }
        let d = (synth_mhz - self.freq_hz as f64 / 1e6).abs();
        (self.peak * (1.0 - d / self.width_mhz)).max(0.0)
    }
}

/// The RF scene (§9.3): uniform noise plus transmitters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfScene {
    #[serde(default = "default_noise_min")]
    pub noise_min: u16,
    #[serde(default = "default_noise_max")]
    pub noise_max: u16,
    #[serde(default)]
    pub transmitters: Vec<Transmitter>,
}

fn default_noise_min() -> u16 {
    90
}

fn default_noise_max() -> u16 {
    140
}

impl Default for RfScene {
    /// Noise 90..140 and one transmitter at 5 800 000 000 Hz.
    fn default() -> Self {
        Self {
            noise_min: default_noise_min(),
            noise_max: default_noise_max(),
            transmitters: vec![Transmitter::new(5_800_000_000)],
        }
    }
}

impl RfScene {
    /// No noise, no transmitter: every RSSI reads 0.
    pub fn silent() -> Self {
        Self {
            noise_min: 0,
            noise_max: 0,
            transmitters: Vec::new(),
        }
    }

    /// The spec's example reading: noise fixed at 115 and a weak transmitter on
    /// 5 740 MHz, so that VRX 1 at boot reads 219 (and VRX 2/3 read 115).
    pub fn example_5740() -> Self {
        Self {
            noise_min: 115,
            noise_max: 115,
            transmitters: vec![Transmitter {
                freq_hz: 5_740_000_000,
                peak: 104.0 * 8.0 / 7.0,
                width_mhz: 8.0,
            }],
        }
    }
}

/// The synthesiser's tuned frequency in MHz (§7.2): a 2 MHz grid with a 479 MHz IF.
pub fn synth_mhz(freq_hz: i64) -> i64 {
    let mhz = freq_hz.div_euclid(1_000_000);
    479 + 2 * ((mhz - 479).max(0) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knob_parsing() -> Result<(), String> {
        let mut k = Knobs::default();
        assert_eq!(k.apply_spec("boot_noise=off")?, None);
        assert!(!k.boot_noise);
        k.apply_spec("drop_ack_prob=0.5")?;
        assert_eq!(k.drop_ack_prob, 0.5);
        k.apply_spec("split_writes")?;
        assert_eq!(k.split_writes, 8);
        assert_eq!(k.apply_spec("disconnect")?, Some(OneShot::Disconnect));
        assert_eq!(
            k.apply_spec("stall_telemetry_ms=3000")?,
            Some(OneShot::StallTelemetry(3000))
        );
        assert!(k.apply_spec("drop_ack_prob=2").is_err());
        assert!(k.apply_spec("nope=1").is_err());
        k.apply_json("ack_delay_ms", &Value::from(2500))?;
        assert_eq!(k.ack_delay_ms, 2500);
        k.apply_json("emit_log_events", &Value::Bool(true))?;
        assert!(k.emit_log_events);
        Ok(())
    }

    #[test]
    fn synth_grid() {
        assert_eq!(synth_mhz(5_740_000_000), 5739);
        assert_eq!(synth_mhz(5_800_000_000), 5799);
        assert_eq!(synth_mhz(5_741_999_999), 5741);
        assert_eq!(synth_mhz(100_000_000), 479);
    }

    #[test]
    fn triangle() {
        let t = Transmitter::new(5_800_000_000);
        assert_eq!(t.response(5800.0), 2600.0);
        assert_eq!(t.response(5799.0), 2275.0);
        assert_eq!(t.response(5808.0), 0.0);
        assert_eq!(t.response(5900.0), 0.0);
    }
}
