//! The ESP32 panel serial protocol (esp32-protocol.md §3–§5): the lines the panel
//! firmware writes (device → host) and the command line the host writes.
//!
//! Shared by the aggregator (host side) and the devkit emulator (device side).
//!
//! * Device lines are compact JSON with a fixed key order and `\r\n` endings; the
//!   `Serialize` impls here produce exactly that order (`type` first), and
//!   [`Telemetry::to_wire`] / [`CommandAckLine::to_wire`] append the CRLF.
//! * The firmware echoes `id`/`cmd` escaping only `"` and `\` (§6 item 8), so an ack
//!   may be invalid JSON. [`encode_ack_firmware`] reproduces that byte for byte;
//!   serde output (standard JSON escaping) is identical whenever the echoed strings
//!   hold no control characters.
//! * Parsing is tolerant where the spec says so: a telemetry line without `vrx` or
//!   `video` is accepted (older builds), and `log_event` accepts `message` for `msg`.

use crate::events::{AckCmd, Esp32CommandAck};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use serde_with::skip_serializing_none;

/// Device receive limit: content bytes per command line (longer lines are dropped, no ack).
pub const MAX_COMMAND_LINE_BYTES: usize = 511;
/// The firmware truncates echoed string values (`id`, `cmd`) to this many bytes.
pub const MAX_ECHO_BYTES: usize = 63;
/// Smallest frequency `SET_VRX_FREQ` accepts (Hz).
pub const MIN_FREQ_HZ: i64 = 1_000_000;
/// Largest frequency `SET_VRX_FREQ` accepts (Hz).
pub const MAX_FREQ_HZ: i64 = 6_500_000_000;
/// Boot frequencies of VRX 1, 2, 3 (§7.1).
pub const BOOT_FREQS_HZ: [u64; 3] = [5_740_000_000, 5_800_000_000, 5_860_000_000];
/// Host defaults for `START_SCAN` (§8 host mapping).
pub const SCAN_DEFAULT_DWELL_MS: u32 = 200;
pub const SCAN_DEFAULT_STEP_HZ: u64 = 2_000_000;
pub const SCAN_DEFAULT_START_HZ: u64 = 5_645_000_000;
pub const SCAN_DEFAULT_STOP_HZ: u64 = 5_865_000_000;

/// Error codes (§5). The first eleven are produced by the firmware; `NotImplemented`
/// is documented but never produced; the last four are host-only, never on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Esp32ErrorCode {
    MissingCmd,
    MissingId,
    MissingArgs,
    ArgsOob,
    VrxIdOob,
    FreqOob,
    DwellOob,
    RangeOob,
    NoBest,
    ChOob,
    UnknownCmd,
    NotImplemented,
    Esp32NotConnected,
    Esp32Timeout,
    Busy,
    NotSupported,
}

impl Esp32ErrorCode {
    /// Every code the firmware actually produces.
    pub const DEVICE: [Esp32ErrorCode; 11] = [
        Esp32ErrorCode::MissingCmd,
        Esp32ErrorCode::MissingId,
        Esp32ErrorCode::MissingArgs,
        Esp32ErrorCode::ArgsOob,
        Esp32ErrorCode::VrxIdOob,
        Esp32ErrorCode::FreqOob,
        Esp32ErrorCode::DwellOob,
        Esp32ErrorCode::RangeOob,
        Esp32ErrorCode::NoBest,
        Esp32ErrorCode::ChOob,
        Esp32ErrorCode::UnknownCmd,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Esp32ErrorCode::MissingCmd => "missing_cmd",
            Esp32ErrorCode::MissingId => "missing_id",
            Esp32ErrorCode::MissingArgs => "missing_args",
            Esp32ErrorCode::ArgsOob => "args_oob",
            Esp32ErrorCode::VrxIdOob => "vrx_id_oob",
            Esp32ErrorCode::FreqOob => "freq_oob",
            Esp32ErrorCode::DwellOob => "dwell_oob",
            Esp32ErrorCode::RangeOob => "range_oob",
            Esp32ErrorCode::NoBest => "no_best",
            Esp32ErrorCode::ChOob => "ch_oob",
            Esp32ErrorCode::UnknownCmd => "unknown_cmd",
            Esp32ErrorCode::NotImplemented => "not_implemented",
            Esp32ErrorCode::Esp32NotConnected => "esp32_not_connected",
            Esp32ErrorCode::Esp32Timeout => "esp32_timeout",
            Esp32ErrorCode::Busy => "busy",
            Esp32ErrorCode::NotSupported => "not_supported",
        }
    }

    /// The documented code the firmware never produces and the four host-only ones.
    const NOT_FROM_DEVICE: [Esp32ErrorCode; 5] = [
        Esp32ErrorCode::NotImplemented,
        Esp32ErrorCode::Esp32NotConnected,
        Esp32ErrorCode::Esp32Timeout,
        Esp32ErrorCode::Busy,
        Esp32ErrorCode::NotSupported,
    ];

    /// Parses a code as it appears in an ack's `err` (exact spelling).
    pub fn parse(s: &str) -> Option<Self> {
        Self::DEVICE
            .into_iter()
            .chain(Self::NOT_FROM_DEVICE)
            .find(|c| c.as_str() == s)
    }

    /// True for the host-only codes (never written by the device).
    pub const fn is_host_only(self) -> bool {
        matches!(
            self,
            Esp32ErrorCode::Esp32NotConnected
                | Esp32ErrorCode::Esp32Timeout
                | Esp32ErrorCode::Busy
                | Esp32ErrorCode::NotSupported
        )
    }

    /// HTTP status a REST client gets for this code (§5: device codes are 409).
    pub const fn http_status(self) -> u16 {
        match self {
            Esp32ErrorCode::Esp32Timeout => 504,
            Esp32ErrorCode::Busy => 429,
            _ => 409,
        }
    }
}

impl std::fmt::Display for Esp32ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Firmware command names (§4), exact and case sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Esp32CommandName {
    GetStatus,
    SetLeds,
    SetVrxFreq,
    StartScan,
    StopScan,
    LockStrongest,
    VideoSelect,
}

impl Esp32CommandName {
    pub const ALL: [Esp32CommandName; 7] = [
        Esp32CommandName::GetStatus,
        Esp32CommandName::SetLeds,
        Esp32CommandName::SetVrxFreq,
        Esp32CommandName::StartScan,
        Esp32CommandName::StopScan,
        Esp32CommandName::LockStrongest,
        Esp32CommandName::VideoSelect,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Esp32CommandName::GetStatus => "GET_STATUS",
            Esp32CommandName::SetLeds => "SET_LEDS",
            Esp32CommandName::SetVrxFreq => "SET_VRX_FREQ",
            Esp32CommandName::StartScan => "START_SCAN",
            Esp32CommandName::StopScan => "STOP_SCAN",
            Esp32CommandName::LockStrongest => "LOCK_STRONGEST",
            Esp32CommandName::VideoSelect => "VIDEO_SELECT",
        }
    }

    /// Exact, case-sensitive match of a received name.
    pub fn parse(s: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str().as_bytes() == s)
    }
}

/// The host → device command line `{"id","cmd","args"}` (§4), serialised in that key
/// order. [`Esp32Command::to_line`] gives the compact JSON plus `\n`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Esp32Command {
    pub id: String,
    pub cmd: String,
    #[serde(default)]
    pub args: Map<String, Value>,
}

impl Esp32Command {
    /// A command with arbitrary integer args, in the given order.
    pub fn new(id: impl Into<String>, cmd: impl Into<String>, args: &[(&str, i64)]) -> Self {
        let args = args.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect();
        Self {
            id: id.into(),
            cmd: cmd.into(),
            args,
        }
    }

    pub fn get_status(id: impl Into<String>) -> Self {
        Self::new(id, Esp32CommandName::GetStatus.as_str(), &[])
    }

    pub fn set_leds(id: impl Into<String>, r: bool, y: bool, g: bool) -> Self {
        Self::new(
            id,
            Esp32CommandName::SetLeds.as_str(),
            &[("r", i64::from(r)), ("y", i64::from(y)), ("g", i64::from(g))],
        )
    }

    pub fn set_vrx_freq(id: impl Into<String>, vrx_id: u8, freq_hz: u64) -> Self {
        Self::new(
            id,
            Esp32CommandName::SetVrxFreq.as_str(),
            &[("vrx_id", i64::from(vrx_id)), ("freq_hz", clamp_i64(freq_hz))],
        )
    }

    pub fn start_scan(id: impl Into<String>, dwell_ms: u32, step_hz: u64, start_hz: u64, stop_hz: u64) -> Self {
        Self::new(
            id,
            Esp32CommandName::StartScan.as_str(),
            &[
                ("dwell_ms", i64::from(dwell_ms)),
                ("step_hz", clamp_i64(step_hz)),
                ("start_hz", clamp_i64(start_hz)),
                ("stop_hz", clamp_i64(stop_hz)),
            ],
        )
    }

    pub fn stop_scan(id: impl Into<String>) -> Self {
        Self::new(id, Esp32CommandName::StopScan.as_str(), &[])
    }

    /// `LOCK_STRONGEST`, for one VRX or (None) for all.
    pub fn lock_strongest(id: impl Into<String>, vrx_id: Option<u8>) -> Self {
        match vrx_id {
            Some(v) => Self::new(
                id,
                Esp32CommandName::LockStrongest.as_str(),
                &[("vrx_id", i64::from(v))],
            ),
            None => Self::new(id, Esp32CommandName::LockStrongest.as_str(), &[]),
        }
    }

    pub fn video_select(id: impl Into<String>, ch: u8) -> Self {
        Self::new(id, Esp32CommandName::VideoSelect.as_str(), &[("ch", i64::from(ch))])
    }

    /// Compact JSON in the order id, cmd, args, terminated by `\n`.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Constant `"telemetry"` tag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TelemetryTag {
    #[default]
    #[serde(rename = "telemetry")]
    Telemetry,
}

/// Constant `"command_ack"` tag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandAckTag {
    #[default]
    #[serde(rename = "command_ack")]
    CommandAck,
}

/// Constant `"log_event"` tag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogEventTag {
    #[default]
    #[serde(rename = "log_event")]
    LogEvent,
}

/// One `vrx[]` item of a telemetry line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrxTelemetry {
    pub id: u8,
    /// Last requested frequency (not the synthesised one).
    pub freq_hz: u64,
    /// 12-bit ADC mean, 0..4095, uncalibrated.
    pub rssi_raw: u16,
}

/// `video` of a telemetry line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoTelemetry {
    /// Video-switch channel 1..3 (the real one; `sel` is not).
    pub selected: u8,
}

/// `led` of a telemetry line (0/1 each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedTelemetry {
    pub r: u8,
    pub y: u8,
    pub g: u8,
}

impl LedTelemetry {
    /// Boot state r=0 y=0 g=1.
    pub const BOOT: LedTelemetry = LedTelemetry { r: 0, y: 0, g: 1 };
}

/// `sys` of a telemetry line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysTelemetry {
    /// Always equal to the line's `timestamp_ms`.
    pub uptime_ms: u32,
    /// Free heap, bytes.
    pub heap: u32,
}

/// The ~1 Hz `telemetry` line (§3.1). Serialises in the firmware's key order:
/// `type, timestamp_ms, sel, vrx, video, led, sys`. Absent members (older builds)
/// are accepted on input and skipped on output.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Telemetry {
    #[serde(rename = "type")]
    pub kind: TelemetryTag,
    /// Device uptime (ms since boot, wraps at 2^32), never epoch time.
    pub timestamp_ms: u32,
    /// Always the literal 1 (legacy); hosts must ignore it.
    pub sel: Option<u32>,
    pub vrx: Option<Vec<VrxTelemetry>>,
    pub video: Option<VideoTelemetry>,
    pub led: Option<LedTelemetry>,
    pub sys: Option<SysTelemetry>,
}

impl Telemetry {
    /// A complete line as the current firmware writes it.
    pub fn new(uptime_ms: u32, vrx: [VrxTelemetry; 3], video_selected: u8, led: LedTelemetry, heap: u32) -> Self {
        Self {
            kind: TelemetryTag::Telemetry,
            timestamp_ms: uptime_ms,
            sel: Some(1),
            vrx: Some(vrx.to_vec()),
            video: Some(VideoTelemetry {
                selected: video_selected,
            }),
            led: Some(led),
            sys: Some(SysTelemetry { uptime_ms, heap }),
        }
    }

    /// Compact JSON + `\r\n`, byte-exact firmware output.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.extend_from_slice(b"\r\n");
        v
    }
}

/// The `command_ack` line (§3.2): `type, timestamp_ms, id, ok, err, data`. `err` is
/// always present (`null` on success); `data` is absent only for `missing_cmd`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandAckLine {
    #[serde(rename = "type")]
    pub kind: CommandAckTag,
    pub timestamp_ms: u32,
    /// The echoed id (≤ 63 bytes) or `"unknown"`.
    pub id: String,
    pub ok: bool,
    #[serde(default)]
    #[serialize_always]
    pub err: Option<String>,
    pub data: Option<AckCmd>,
}

impl CommandAckLine {
    pub fn new(timestamp_ms: u32, id: impl Into<String>, err: Option<Esp32ErrorCode>, cmd: Option<String>) -> Self {
        Self {
            kind: CommandAckTag::CommandAck,
            timestamp_ms,
            id: id.into(),
            ok: err.is_none(),
            err: err.map(|e| e.as_str().to_owned()),
            data: cmd.map(|cmd| AckCmd { cmd }),
        }
    }

    /// The typed error code, if `err` is a known one.
    pub fn err_code(&self) -> Option<Esp32ErrorCode> {
        self.err.as_deref().and_then(Esp32ErrorCode::parse)
    }

    /// The echoed command name (`data.cmd`).
    pub fn cmd(&self) -> Option<&str> {
        self.data.as_ref().map(|d| d.cmd.as_str())
    }

    /// Firmware bytes (§6 item 8 escaping) + `\r\n`.
    pub fn to_wire(&self) -> Vec<u8> {
        encode_ack_firmware(
            self.timestamp_ms,
            self.id.as_bytes(),
            self.err.as_deref(),
            self.data.as_ref().map(|d| d.cmd.as_bytes()),
        )
    }

    /// The COMMAND_ACK event data the aggregator publishes (`type`/`timestamp_ms` stripped).
    pub fn into_event_data(self) -> Esp32CommandAck {
        Esp32CommandAck {
            id: self.id,
            ok: self.ok,
            err: self.err,
            data: self.data,
        }
    }
}

/// Appends `raw` as the firmware echoes it: only `"` and `\` are escaped, every
/// other byte (control characters, invalid UTF-8) is written as is.
pub fn firmware_escape(raw: &[u8], out: &mut Vec<u8>) {
    for &b in raw {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// The exact bytes of a firmware `command_ack` line, `\r\n` included. `id` and `cmd`
/// are raw bytes as the device parsed them (already truncated to 63 bytes).
pub fn encode_ack_firmware(timestamp_ms: u32, id: &[u8], err: Option<&str>, cmd: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + id.len());
    out.extend_from_slice(b"{\"type\":\"command_ack\",\"timestamp_ms\":");
    out.extend_from_slice(timestamp_ms.to_string().as_bytes());
    out.extend_from_slice(b",\"id\":\"");
    firmware_escape(id, &mut out);
    out.extend_from_slice(b"\",\"ok\":");
    match err {
        None => out.extend_from_slice(b"true,\"err\":null"),
        Some(e) => {
            out.extend_from_slice(b"false,\"err\":\"");
            firmware_escape(e.as_bytes(), &mut out);
            out.push(b'"');
        }
    }
    if let Some(cmd) = cmd {
        out.extend_from_slice(b",\"data\":{\"cmd\":\"");
        firmware_escape(cmd, &mut out);
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b"}\r\n");
    out
}

/// The documented `log_event` line (§3.3; the real firmware never emits it).
/// Hosts accept `message` as an alias of `msg`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEventLine {
    #[serde(rename = "type")]
    pub kind: LogEventTag,
    #[serde(default)]
    pub timestamp_ms: u32,
    #[serde(default = "default_level")]
    pub level: String,
    #[serde(alias = "message", default)]
    pub msg: String,
    #[serde(default)]
    pub data: Map<String, Value>,
}

fn default_level() -> String {
    "info".to_owned()
}

impl LogEventLine {
    pub fn new(timestamp_ms: u32, level: &str, msg: impl Into<String>, data: Map<String, Value>) -> Self {
        Self {
            kind: LogEventTag::LogEvent,
            timestamp_ms,
            level: level.to_owned(),
            msg: msg.into(),
            data,
        }
    }

    /// Compact JSON + `\r\n`.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.extend_from_slice(b"\r\n");
        v
    }
}

/// A device → host line, dispatched on `type` (PROTOCOL.md §15.5).
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceLine {
    Telemetry(Telemetry),
    CommandAck(CommandAckLine),
    LogEvent(LogEventLine),
}

/// Why a JSON value is not a usable device line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceLineError {
    /// Not a JSON object.
    NotObject,
    /// `"proto":1`: legacy panel firmware (`unsupported_firmware_protocol`).
    LegacyProtocol,
    /// A `type` other than telemetry / command_ack / log_event (or none).
    UnknownType(Option<String>),
    /// A known type whose members do not fit (message from serde).
    Invalid(String),
}

impl std::fmt::Display for DeviceLineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceLineError::NotObject => f.write_str("not a JSON object"),
            DeviceLineError::LegacyProtocol => f.write_str("unsupported_firmware_protocol"),
            DeviceLineError::UnknownType(Some(t)) => write!(f, "unknown type {t:?}"),
            DeviceLineError::UnknownType(None) => f.write_str("no type"),
            DeviceLineError::Invalid(e) => write!(f, "invalid line: {e}"),
        }
    }
}

impl std::error::Error for DeviceLineError {}

impl DeviceLine {
    /// Classifies an already parsed JSON value (framing and UTF-8 handling are the host's, PROTOCOL.md §15.4).
    pub fn from_value(v: Value) -> Result<Self, DeviceLineError> {
        let Value::Object(obj) = &v else {
            return Err(DeviceLineError::NotObject);
        };
        if obj.get("proto").and_then(Value::as_i64) == Some(1) {
            return Err(DeviceLineError::LegacyProtocol);
        }
        let kind = obj.get("type").and_then(Value::as_str).map(str::to_owned);
        let invalid = |e: serde_json::Error| DeviceLineError::Invalid(e.to_string());
        match kind.as_deref() {
            Some("telemetry") => serde_json::from_value(v).map(DeviceLine::Telemetry).map_err(invalid),
            Some("command_ack") => serde_json::from_value(v).map(DeviceLine::CommandAck).map_err(invalid),
            Some("log_event") => serde_json::from_value(v).map(DeviceLine::LogEvent).map_err(invalid),
            _ => Err(DeviceLineError::UnknownType(kind)),
        }
    }

    /// Parses one framed line (no terminator needed).
    pub fn parse(line: &str) -> Result<Self, DeviceLineError> {
        let v: Value = serde_json::from_str(line).map_err(|e| DeviceLineError::Invalid(e.to_string()))?;
        Self::from_value(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn telemetry_is_byte_exact() -> R {
        let t = Telemetry::new(
            123456,
            [
                VrxTelemetry {
                    id: 1,
                    freq_hz: 5_740_000_000,
                    rssi_raw: 219,
                },
                VrxTelemetry {
                    id: 2,
                    freq_hz: 5_800_000_000,
                    rssi_raw: 140,
                },
                VrxTelemetry {
                    id: 3,
                    freq_hz: 5_860_000_000,
                    rssi_raw: 98,
                },
            ],
            1,
            LedTelemetry { r: 0, y: 1, g: 0 },
            312345,
        );
        let expected = "{\"type\":\"telemetry\",\"timestamp_ms\":123456,\"sel\":1,\"vrx\":[{\"id\":1,\"freq_hz\":5740000000,\"rssi_raw\":219},{\"id\":2,\"freq_hz\":5800000000,\"rssi_raw\":140},{\"id\":3,\"freq_hz\":5860000000,\"rssi_raw\":98}],\"video\":{\"selected\":1},\"led\":{\"r\":0,\"y\":1,\"g\":0},\"sys\":{\"uptime_ms\":123456,\"heap\":312345}}\r\n";
        assert_eq!(String::from_utf8(t.to_wire())?, expected);
        let back = DeviceLine::parse(expected.trim_end())?;
        assert_eq!(back, DeviceLine::Telemetry(t));
        Ok(())
    }

    #[test]
    fn acks_are_byte_exact() -> R {
        let a = CommandAckLine::new(1234, "7f0c", None, Some("SET_LEDS".into()));
        assert_eq!(
            String::from_utf8(a.to_wire())?,
            "{\"type\":\"command_ack\",\"timestamp_ms\":1234,\"id\":\"7f0c\",\"ok\":true,\"err\":null,\"data\":{\"cmd\":\"SET_LEDS\"}}\r\n"
        );
        assert_eq!(serde_json::to_vec(&a)?, a.to_wire()[..a.to_wire().len() - 2].to_vec());
        let m = CommandAckLine::new(1500, "7", Some(Esp32ErrorCode::MissingCmd), None);
        assert_eq!(
            String::from_utf8(m.to_wire())?,
            "{\"type\":\"command_ack\",\"timestamp_ms\":1500,\"id\":\"7\",\"ok\":false,\"err\":\"missing_cmd\"}\r\n"
        );
        let raw = encode_ack_firmware(1, b"a\"b\\c\x01", Some("unknown_cmd"), Some(b"X"));
        assert_eq!(
            raw,
            b"{\"type\":\"command_ack\",\"timestamp_ms\":1,\"id\":\"a\\\"b\\\\c\x01\",\"ok\":false,\"err\":\"unknown_cmd\",\"data\":{\"cmd\":\"X\"}}\r\n".to_vec()
        );
        match DeviceLine::parse("{\"type\":\"command_ack\",\"timestamp_ms\":1300,\"id\":\"9\",\"ok\":false,\"err\":\"ch_oob\",\"data\":{\"cmd\":\"VIDEO_SELECT\"}}")? {
            DeviceLine::CommandAck(a) => {
                assert_eq!(a.err_code(), Some(Esp32ErrorCode::ChOob));
                assert_eq!(a.cmd(), Some("VIDEO_SELECT"));
            }
            other => return Err(format!("unexpected {other:?}").into()),
        }
        Ok(())
    }

    #[test]
    fn commands_and_codes() -> R {
        assert_eq!(
            Esp32Command::set_vrx_freq("1", 1, 5_740_000_000).to_line(),
            "{\"id\":\"1\",\"cmd\":\"SET_VRX_FREQ\",\"args\":{\"vrx_id\":1,\"freq_hz\":5740000000}}\n"
        );
        assert_eq!(
            Esp32Command::start_scan("2", 200, 2_000_000, 5_645_000_000, 5_865_000_000).to_line(),
            "{\"id\":\"2\",\"cmd\":\"START_SCAN\",\"args\":{\"dwell_ms\":200,\"step_hz\":2000000,\"start_hz\":5645000000,\"stop_hz\":5865000000}}\n"
        );
        assert_eq!(
            Esp32Command::set_leds("6", true, false, true).to_line(),
            "{\"id\":\"6\",\"cmd\":\"SET_LEDS\",\"args\":{\"r\":1,\"y\":0,\"g\":1}}\n"
        );
        assert_eq!(
            Esp32Command::stop_scan("3").to_line(),
            "{\"id\":\"3\",\"cmd\":\"STOP_SCAN\",\"args\":{}}\n"
        );
        for c in Esp32ErrorCode::DEVICE {
            assert_eq!(Esp32ErrorCode::parse(c.as_str()), Some(c));
            assert!(!c.is_host_only());
            assert_eq!(serde_json::to_value(c)?, Value::from(c.as_str()));
        }
        assert_eq!(
            Esp32CommandName::parse(b"GET_STATUS"),
            Some(Esp32CommandName::GetStatus)
        );
        assert_eq!(Esp32CommandName::parse(b"get_status"), None);
        assert_eq!(
            DeviceLine::parse("{\"proto\":1,\"type\":\"telemetry\"}"),
            Err(DeviceLineError::LegacyProtocol)
        );
        let legacy = DeviceLine::parse("{\"type\":\"telemetry\",\"timestamp_ms\":5,\"sel\":1}")?;
        assert!(matches!(legacy, DeviceLine::Telemetry(Telemetry { vrx: None, .. })));
        let log = DeviceLine::parse("{\"type\":\"log_event\",\"timestamp_ms\":5,\"message\":\"boot\"}")?;
        assert!(matches!(log, DeviceLine::LogEvent(LogEventLine { ref msg, .. }) if msg == "boot"));
        Ok(())
    }
}
