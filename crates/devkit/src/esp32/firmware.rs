//! The pure panel-firmware model (esp32-protocol.md §3–§8): line assembly and the
//! §6 parser, the §4 command checks, the §7.3 scan/lock engine, RSSI sampling from
//! an [`RfScene`] and the telemetry schedule. No I/O and no clock: every call takes
//! `now`, milliseconds on a monotonic clock chosen by the caller.
//!
//! Faults that do not belong to the firmware itself (boot noise, garbage, dropped or
//! late acks, the OLED stall, …) live in [`super::device`].

use super::knobs::{synth_mhz, RfScene};
use super::parser::{field_i32, field_i64, field_str};
use ndefender_contract::esp32::{
    encode_ack_firmware, Esp32CommandName, Esp32ErrorCode, LedTelemetry, LogEventLine, Telemetry, VrxTelemetry,
    BOOT_FREQS_HZ, MAX_COMMAND_LINE_BYTES, MAX_FREQ_HZ, MIN_FREQ_HZ,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// RSSI sampling period (§7.1).
pub const RSSI_PERIOD_MS: u64 = 120;
/// ADC reads averaged per sample.
pub const RSSI_READS: u32 = 6;
/// Nominal free heap reported in telemetry.
const HEAP_BASE: u32 = 312_345;

/// Internal run mode (readable only through the control API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mode {
    #[serde(rename = "IDLE")]
    Idle,
    #[serde(rename = "SCAN")]
    Scan,
    #[serde(rename = "LOCK")]
    Lock,
    #[serde(rename = "MAN")]
    Manual,
}

impl Mode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Idle => "IDLE",
            Mode::Scan => "SCAN",
            Mode::Lock => "LOCK",
            Mode::Manual => "MAN",
        }
    }
}

/// A `command_ack` as the firmware builds it: raw id/cmd bytes (truncated to 63).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub timestamp_ms: u32,
    pub id: Vec<u8>,
    pub err: Option<Esp32ErrorCode>,
    pub cmd: Option<Vec<u8>>,
}

impl Ack {
    /// Exact firmware bytes, CRLF included.
    pub fn to_wire(&self) -> Vec<u8> {
        encode_ack_firmware(
            self.timestamp_ms,
            &self.id,
            self.err.map(Esp32ErrorCode::as_str),
            self.cmd.as_deref(),
        )
    }

    pub fn ok(&self) -> bool {
        self.err.is_none()
    }
}

/// A line the firmware writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Telemetry(Telemetry),
    Ack(Ack),
    Log(LogEventLine),
}

impl Output {
    /// Exact bytes on the wire, CRLF included.
    pub fn to_wire(&self) -> Vec<u8> {
        match self {
            Output::Telemetry(t) => t.to_wire(),
            Output::Ack(a) => a.to_wire(),
            Output::Log(l) => l.to_wire(),
        }
    }

    /// The acks among `outputs`, in order (a host expects exactly one per command line).
    pub fn acks(outputs: &[Output]) -> Vec<Ack> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Ack(a) => Some(a.clone()),
                _ => None,
            })
            .collect()
    }
}

/// What became of one received line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LineOutcome {
    /// Parsed and acknowledged (the ack may still be dropped by a fault knob).
    Acked {
        id: String,
        cmd: Option<String>,
        err: Option<Esp32ErrorCode>,
    },
    /// ≥ 512 content bytes: dropped whole, `rx_overflow` counted, no ack.
    Overflow { len: usize },
    /// First non-space byte is not `{`: dropped, `rx_errors` counted, no ack.
    NotAnObject,
}

/// One complete line as the firmware saw it (`\r` removed; overlong lines keep
/// only their first 511 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedLine {
    /// Caller clock (ms) when the line was processed.
    pub at_ms: u64,
    pub raw: Vec<u8>,
    pub outcome: LineOutcome,
}

/// A received command line, decoded for test assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedCommand {
    pub at_ms: u64,
    /// The id as echoed (lossy UTF-8, ≤ 63 bytes) or `"unknown"`.
    pub id: String,
    /// The command name as received (None for `missing_cmd`).
    pub cmd: Option<String>,
    /// `args` when the line is valid JSON with an `args` object.
    pub args: Option<Value>,
    /// The error code of the ack, None when `ok`.
    pub err: Option<Esp32ErrorCode>,
    /// The whole line (lossy UTF-8).
    pub raw: String,
}

impl ReceivedLine {
    /// The decoded command, for lines that were acknowledged.
    pub fn command(&self) -> Option<ReceivedCommand> {
        let LineOutcome::Acked { id, cmd, err } = &self.outcome else {
            return None;
        };
        let args = serde_json::from_slice::<Value>(&self.raw)
            .ok()
            .and_then(|v| v.get("args").cloned())
            .filter(Value::is_object);
        Some(ReceivedCommand {
            at_ms: self.at_ms,
            id: id.clone(),
            cmd: cmd.clone(),
            args,
            err: *err,
            raw: String::from_utf8_lossy(&self.raw).into_owned(),
        })
    }
}

/// Counters and engine state, readable through the control API.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FirmwareStats {
    /// Complete non-empty lines received (acked or dropped).
    pub lines_received: u64,
    /// Acks built (before any ack fault).
    pub acks: u64,
    pub telemetry: u64,
    pub rx_errors: u64,
    pub rx_overflow: u64,
    /// Acks per received `cmd` name (unknown names included).
    pub commands: BTreeMap<String, u64>,
    pub mode: Option<Mode>,
    pub scanning: bool,
    pub best_rssi: [u16; 3],
    pub best_freq_hz: [i64; 3],
    pub boots: u64,
}

#[derive(Debug, Clone)]
struct Scan {
    dwell_ms: u64,
    step_hz: i64,
    start_hz: i64,
    stop_hz: i64,
    current_hz: i64,
    next_step_at: u64,
}

/// The panel firmware state machine.
#[derive(Debug, Clone)]
pub struct Firmware {
    rng: StdRng,
    scene: RfScene,
    period_ms: u64,
    jitter_ms: u64,
    emit_log_events: bool,
    boot_at: u64,
    uptime_base: u32,
    freq: [i64; 3],
    rssi: [u16; 3],
    video: i32,
    led: [i32; 3],
    mode: Mode,
    scan: Option<Scan>,
    best_rssi: [u16; 3],
    best_freq: [i64; 3],
    next_sample_at: u64,
    next_telemetry_at: u64,
    telemetry_paused_until: u64,
    rx: Vec<u8>,
    rx_overflow: bool,
    journal: Vec<ReceivedLine>,
    stats: FirmwareStats,
}

/// Static settings of a [`Firmware`].
#[derive(Debug, Clone)]
pub struct FirmwareConfig {
    pub seed: u64,
    pub scene: RfScene,
    pub telemetry_period_ms: u64,
    pub telemetry_jitter_ms: u64,
    pub emit_log_events: bool,
    /// Uptime at boot.
    pub uptime_start_ms: u32,
}

impl Default for FirmwareConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            scene: RfScene::default(),
            telemetry_period_ms: 1000,
            telemetry_jitter_ms: 150,
            emit_log_events: false,
            uptime_start_ms: 0,
        }
    }
}

impl Firmware {
    /// Boots at `now` with the boot defaults of §7.1.
    pub fn new(cfg: FirmwareConfig, now: u64) -> Self {
        let mut fw = Self {
            rng: StdRng::seed_from_u64(cfg.seed),
            scene: cfg.scene,
            period_ms: cfg.telemetry_period_ms.max(1),
            jitter_ms: cfg.telemetry_jitter_ms,
            emit_log_events: cfg.emit_log_events,
            boot_at: now,
            uptime_base: cfg.uptime_start_ms,
            freq: [0; 3],
            rssi: [0; 3],
            video: 1,
            led: [0, 0, 1],
            mode: Mode::Idle,
            scan: None,
            best_rssi: [0; 3],
            best_freq: [0; 3],
            next_sample_at: now,
            next_telemetry_at: now,
            telemetry_paused_until: 0,
            rx: Vec::new(),
            rx_overflow: false,
            journal: Vec::new(),
            stats: FirmwareStats::default(),
        };
        fw.boot(now, cfg.uptime_start_ms);
        fw
    }

    fn boot(&mut self, now: u64, uptime_base: u32) {
        self.boot_at = now;
        self.uptime_base = uptime_base;
        self.freq = BOOT_FREQS_HZ.map(|f| i64::try_from(f).unwrap_or(i64::MAX));
        self.rssi = [0; 3];
        self.video = 1;
        self.led = [0, 0, 1];
        self.mode = Mode::Idle;
        self.scan = None;
        self.best_rssi = [0; 3];
        self.best_freq = self.freq;
        self.next_sample_at = now;
        self.next_telemetry_at = now + self.next_period();
        self.telemetry_paused_until = 0;
        self.rx.clear();
        self.rx_overflow = false;
        self.stats.boots += 1;
    }

    /// Board reset: uptime restarts at 0, boot defaults, receive buffer cleared.
    pub fn reset(&mut self, now: u64) {
        self.boot(now, 0);
    }

    fn next_period(&mut self) -> u64 {
        let jitter = if self.jitter_ms == 0 {
            0
        } else {
            self.rng.random_range(0..=self.jitter_ms)
        };
        self.period_ms + jitter
    }

    /// Device uptime (`millis()`), wrapping at 2^32.
    pub fn uptime(&self, now: u64) -> u32 {
        self.uptime_base.wrapping_add(now.saturating_sub(self.boot_at) as u32)
    }

    pub fn set_scene(&mut self, scene: RfScene) {
        self.scene = scene;
    }

    pub fn scene(&self) -> &RfScene {
        &self.scene
    }

    /// Applies telemetry-related knobs (take effect from the next telemetry on).
    pub fn set_timing(&mut self, period_ms: u64, jitter_ms: u64, emit_log_events: bool) {
        self.period_ms = period_ms.max(1);
        self.jitter_ms = jitter_ms;
        self.emit_log_events = emit_log_events;
    }

    /// No telemetry until `now + ms` (one-shot `stall_telemetry_ms`).
    pub fn stall_telemetry(&mut self, now: u64, ms: u64) {
        self.telemetry_paused_until = now + ms;
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn scanning(&self) -> bool {
        self.scan.is_some()
    }

    /// Requested frequency per VRX.
    pub fn freqs(&self) -> [i64; 3] {
        self.freq
    }

    /// Latest RSSI sample per VRX.
    pub fn rssi(&self) -> [u16; 3] {
        self.rssi
    }

    pub fn best(&self) -> ([u16; 3], [i64; 3]) {
        (self.best_rssi, self.best_freq)
    }

    pub fn video(&self) -> i32 {
        self.video
    }

    pub fn leds(&self) -> [i32; 3] {
        self.led
    }

    pub fn stats(&self) -> FirmwareStats {
        let mut s = self.stats.clone();
        s.mode = Some(self.mode);
        s.scanning = self.scan.is_some();
        s.best_rssi = self.best_rssi;
        s.best_freq_hz = self.best_freq;
        s
    }

    /// Lines processed since the last call.
    pub fn drain_journal(&mut self) -> Vec<ReceivedLine> {
        std::mem::take(&mut self.journal)
    }

    /// The earliest time [`Firmware::tick`] has work to do.
    pub fn next_deadline(&self) -> u64 {
        let mut d = self
            .next_sample_at
            .min(self.next_telemetry_at.max(self.telemetry_paused_until));
        if let Some(s) = &self.scan {
            d = d.min(s.next_step_at);
        }
        d
    }

    /// Serial bytes from the host (§6 items 1–2): `\r` dropped, lines split on `\n`,
    /// bytes past 511 discarded and the line then dropped whole. Every complete line
    /// is processed in order.
    pub fn feed(&mut self, bytes: &[u8], now: u64) -> Vec<Output> {
        let mut out = Vec::new();
        for &b in bytes {
            match b {
                b'\r' => {}
                b'\n' => {
                    let line = std::mem::take(&mut self.rx);
                    if std::mem::take(&mut self.rx_overflow) {
                        self.overflow(line, now);
                    } else {
                        out.extend(self.handle_line(&line, now));
                    }
                }
                _ if self.rx.len() < MAX_COMMAND_LINE_BYTES => self.rx.push(b),
                _ => self.rx_overflow = true,
            }
        }
        out
    }

    fn overflow(&mut self, raw: Vec<u8>, now: u64) {
        self.stats.lines_received += 1;
        self.stats.rx_overflow += 1;
        let len = raw.len().max(MAX_COMMAND_LINE_BYTES + 1);
        self.journal.push(ReceivedLine {
            at_ms: now,
            raw,
            outcome: LineOutcome::Overflow { len },
        });
    }

    /// Processes one complete line (without its `\n`): §6 items 2–9 and §4.
    /// Returns the ack (plus a `log_event` on a mode change when enabled), or
    /// nothing for an empty, overlong or non-`{` line.
    pub fn handle_line(&mut self, line: &[u8], now: u64) -> Vec<Output> {
        let line: Vec<u8> = line.iter().copied().filter(|&b| b != b'\r').collect();
        if line.is_empty() {
            return Vec::new();
        }
        if line.len() > MAX_COMMAND_LINE_BYTES {
            let mut raw = line;
            let len = raw.len();
            raw.truncate(MAX_COMMAND_LINE_BYTES);
            self.stats.lines_received += 1;
            self.stats.rx_overflow += 1;
            self.journal.push(ReceivedLine {
                at_ms: now,
                raw,
                outcome: LineOutcome::Overflow { len },
            });
            return Vec::new();
        }
        self.stats.lines_received += 1;
        let first = line.iter().copied().find(|&b| b != b' ' && b != b'\t');
        if first != Some(b'{') {
            self.stats.rx_errors += 1;
            self.journal.push(ReceivedLine {
                at_ms: now,
                raw: line,
                outcome: LineOutcome::NotAnObject,
            });
            return Vec::new();
        }
        let mode_before = self.mode;
        let cmd = field_str(&line, "cmd");
        let id = field_str(&line, "id");
        let (ack_id, err) = match (&cmd, &id) {
            (None, id) => (
                id.clone().unwrap_or_else(|| b"unknown".to_vec()),
                Some(Esp32ErrorCode::MissingCmd),
            ),
            (Some(_), None) => (b"unknown".to_vec(), Some(Esp32ErrorCode::MissingId)),
            (Some(cmd), Some(id)) => (id.clone(), self.dispatch(cmd, &line, now).err()),
        };
        if let Some(c) = &cmd {
            *self
                .stats
                .commands
                .entry(String::from_utf8_lossy(c).into_owned())
                .or_default() += 1;
        }
        self.stats.acks += 1;
        let ack = Ack {
            timestamp_ms: self.uptime(now),
            id: ack_id,
            err,
            cmd: if err == Some(Esp32ErrorCode::MissingCmd) {
                None
            } else {
                cmd.clone()
            },
        };
        self.journal.push(ReceivedLine {
            at_ms: now,
            raw: line,
            outcome: LineOutcome::Acked {
                id: String::from_utf8_lossy(&ack.id).into_owned(),
                cmd: ack.cmd.as_deref().map(|c| String::from_utf8_lossy(c).into_owned()),
                err,
            },
        });
        let mut out = vec![Output::Ack(ack)];
        if self.emit_log_events && self.mode != mode_before {
            let mut data = Map::new();
            data.insert("mode".into(), Value::from(self.mode.as_str()));
            data.insert("prev".into(), Value::from(mode_before.as_str()));
            out.push(Output::Log(LogEventLine::new(
                self.uptime(now),
                "info",
                format!("mode {}", self.mode.as_str()),
                data,
            )));
        }
        out
    }

    fn dispatch(&mut self, cmd: &[u8], line: &[u8], now: u64) -> Result<(), Esp32ErrorCode> {
        use Esp32ErrorCode as E;
        let Some(name) = Esp32CommandName::parse(cmd) else {
            return Err(E::UnknownCmd);
        };
        match name {
            Esp32CommandName::GetStatus => Ok(()),
            Esp32CommandName::SetLeds => {
                let (Some(r), Some(y), Some(g)) = (field_i32(line, "r"), field_i32(line, "y"), field_i32(line, "g"))
                else {
                    return Err(E::MissingArgs);
                };
                if [r, y, g].iter().any(|v| !(0..=1).contains(v)) {
                    return Err(E::ArgsOob);
                }
                self.led = [r, y, g];
                Ok(())
            }
            Esp32CommandName::SetVrxFreq => {
                let (Some(vrx), Some(freq)) = (field_i32(line, "vrx_id"), field_i64(line, "freq_hz")) else {
                    return Err(E::MissingArgs);
                };
                let idx = vrx_index(vrx).ok_or(E::VrxIdOob)?;
                if !(MIN_FREQ_HZ..=MAX_FREQ_HZ).contains(&freq) {
                    return Err(E::FreqOob);
                }
                self.freq[idx] = freq;
                if self.scan.is_none() {
                    self.mode = Mode::Manual;
                }
                Ok(())
            }
            Esp32CommandName::StartScan => {
                let (Some(dwell), Some(step), Some(start), Some(stop)) = (
                    field_i32(line, "dwell_ms"),
                    field_i64(line, "step_hz"),
                    field_i64(line, "start_hz"),
                    field_i64(line, "stop_hz"),
                ) else {
                    return Err(E::MissingArgs);
                };
                if !(10..=5000).contains(&dwell) {
                    return Err(E::DwellOob);
                }
                if step <= 0 || start <= 0 || stop <= 0 || start >= stop {
                    return Err(E::RangeOob);
                }
                self.freq = [start; 3];
                self.best_rssi = [0; 3];
                self.best_freq = self.freq;
                self.scan = Some(Scan {
                    dwell_ms: u64::try_from(dwell).unwrap_or(10),
                    step_hz: step,
                    start_hz: start,
                    stop_hz: stop,
                    current_hz: start,
                    next_step_at: now + u64::try_from(dwell).unwrap_or(10),
                });
                self.mode = Mode::Scan;
                Ok(())
            }
            Esp32CommandName::StopScan => {
                self.scan = None;
                self.mode = Mode::Idle;
                Ok(())
            }
            Esp32CommandName::LockStrongest => match field_i32(line, "vrx_id") {
                Some(vrx) => {
                    let idx = vrx_index(vrx).ok_or(E::VrxIdOob)?;
                    if self.best_rssi[idx] == 0 {
                        return Err(E::NoBest);
                    }
                    self.freq[idx] = self.best_freq[idx];
                    self.scan = None;
                    self.mode = Mode::Lock;
                    Ok(())
                }
                None => {
                    let was_scanning = self.scan.take().is_some();
                    let mut tuned = false;
                    for i in 0..3 {
                        if self.best_rssi[i] > 0 {
                            self.freq[i] = self.best_freq[i];
                            tuned = true;
                        }
                    }
                    if tuned {
                        self.mode = Mode::Lock;
                        Ok(())
                    } else {
                        if was_scanning {
                            self.mode = Mode::Idle;
                        }
                        Err(E::NoBest)
                    }
                }
            },
            Esp32CommandName::VideoSelect => {
                let ch = field_i32(line, "ch")
                    .or_else(|| field_i32(line, "sel"))
                    .ok_or(E::MissingArgs)?;
                if !(1..=3).contains(&ch) {
                    return Err(E::ChOob);
                }
                self.video = ch;
                Ok(())
            }
        }
    }

    /// One RSSI sample for a requested frequency: mean of 6 reads of noise plus the
    /// scene's response at the synthesised frequency, each clamped to 0..4095.
    pub fn sample(&mut self, freq_hz: i64) -> u16 {
        let synth = synth_mhz(freq_hz) as f64;
        let signal: f64 = self.scene.transmitters.iter().map(|t| t.response(synth)).sum();
        let (lo, hi) = (self.scene.noise_min, self.scene.noise_max.max(self.scene.noise_min));
        let mut sum: u32 = 0;
        for _ in 0..RSSI_READS {
            let noise = if lo == hi { lo } else { self.rng.random_range(lo..=hi) };
            let v = (f64::from(noise) + signal).round().clamp(0.0, 4095.0);
            sum += v as u32;
        }
        (sum / RSSI_READS) as u16
    }

    /// Runs the timers due at `now`: RSSI sampling (every 120 ms), scan steps (every
    /// dwell) and telemetry (period + jitter, unless stalled). Returns the telemetry
    /// line when one is due.
    pub fn tick(&mut self, now: u64) -> Vec<Output> {
        let mut out = Vec::new();
        if now >= self.next_sample_at {
            for i in 0..3 {
                self.rssi[i] = self.sample(self.freq[i]);
            }
            self.next_sample_at = now + RSSI_PERIOD_MS;
        }
        if let Some(mut scan) = self.scan.take() {
            if now >= scan.next_step_at {
                for i in 0..3 {
                    if self.rssi[i] >= self.best_rssi[i] {
                        self.best_rssi[i] = self.rssi[i];
                        self.best_freq[i] = self.freq[i];
                    }
                }
                let mut next = scan.current_hz.saturating_add(scan.step_hz);
                if next > scan.stop_hz {
                    next = scan.start_hz;
                    self.best_rssi = [0; 3];
                    self.best_freq = self.freq;
                }
                self.freq = [next; 3];
                scan.current_hz = next;
                scan.next_step_at = now + scan.dwell_ms;
            }
            self.scan = Some(scan);
        }
        if now >= self.next_telemetry_at && now >= self.telemetry_paused_until {
            out.push(Output::Telemetry(self.telemetry(now)));
            self.stats.telemetry += 1;
            self.next_telemetry_at = now + self.next_period();
        }
        out
    }

    /// The telemetry line the firmware would build at `now`.
    pub fn telemetry(&mut self, now: u64) -> Telemetry {
        let up = self.uptime(now);
        let vrx = [0usize, 1, 2].map(|i| VrxTelemetry {
            id: i as u8 + 1,
            freq_hz: u64::try_from(self.freq[i]).unwrap_or(0),
            rssi_raw: self.rssi[i],
        });
        let heap = HEAP_BASE - self.rng.random_range(0..=512u32);
        let led = LedTelemetry {
            r: self.led[0] as u8,
            y: self.led[1] as u8,
            g: self.led[2] as u8,
        };
        Telemetry::new(up, vrx, self.video as u8, led, heap)
    }
}

fn vrx_index(vrx: i32) -> Option<usize> {
    match vrx {
        1..=3 => usize::try_from(vrx - 1).ok(),
        _ => None,
    }
}
