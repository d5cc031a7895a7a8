//! Contract payloads → firmware commands (aggregator §7.4). Pure: validation
//! happens here, before anything touches the link, and names the bad field.

use ndefender_contract::devices::LedState;
use serde_json::{Map, Value};

/// The ESP32 command routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    VrxTune,
    Esp32VrxTune,
    ScanStart,
    ScanStop,
    ScanLock,
    VideoSelect,
    Esp32VideoSelect,
    Esp32Leds,
    Esp32Buzzer,
    Esp32Config,
    ButtonsSimulate,
}

impl Route {
    /// Every route, in the order they are mounted.
    pub const ALL: [Route; 11] = [
        Route::VrxTune,
        Route::Esp32VrxTune,
        Route::ScanStart,
        Route::ScanStop,
        Route::ScanLock,
        Route::VideoSelect,
        Route::Esp32VideoSelect,
        Route::Esp32Leds,
        Route::Esp32Buzzer,
        Route::Esp32Config,
        Route::ButtonsSimulate,
    ];

    /// The CommandResult `command` (route path below /api/v1).
    pub const fn name(self) -> &'static str {
        match self {
            Route::VrxTune => "vrx/tune",
            Route::Esp32VrxTune => "esp32/vrx/tune",
            Route::ScanStart => "scan/start",
            Route::ScanStop => "scan/stop",
            Route::ScanLock => "scan/lock",
            Route::VideoSelect => "video/select",
            Route::Esp32VideoSelect => "esp32/video/select",
            Route::Esp32Leds => "esp32/leds",
            Route::Esp32Buzzer => "esp32/buzzer",
            Route::Esp32Config => "esp32/config",
            Route::ButtonsSimulate => "esp32/buttons/simulate",
        }
    }

    /// The firmware command name (reported in `data.cmd`, even for routes never written).
    pub const fn firmware_cmd(self) -> &'static str {
        match self {
            Route::VrxTune | Route::Esp32VrxTune => "SET_VRX_FREQ",
            Route::ScanStart => "START_SCAN",
            Route::ScanStop => "STOP_SCAN",
            Route::ScanLock => "LOCK_STRONGEST",
            Route::VideoSelect | Route::Esp32VideoSelect => "VIDEO_SELECT",
            Route::Esp32Leds => "SET_LEDS",
            Route::Esp32Buzzer => "SET_BUZZER",
            Route::Esp32Config => "SET_CONFIG",
            Route::ButtonsSimulate => "SIMULATE_BUTTON",
        }
    }

    /// Routes the firmware has no command for (409 `not_supported`, nothing written).
    pub const fn supported(self) -> bool {
        !matches!(self, Route::Esp32Buzzer | Route::Esp32Config | Route::ButtonsSimulate)
    }
}

/// A command line to write: `{"id","cmd","args"}` with integer args in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwCommand {
    pub cmd: &'static str,
    pub args: Vec<(&'static str, i64)>,
}

impl FwCommand {
    /// Compact JSON, id first, integer literals only, LF-terminated (< 256 bytes).
    pub fn line(&self, id: &str) -> String {
        let mut args = String::new();
        for (i, (k, v)) in self.args.iter().enumerate() {
            if i > 0 {
                args.push(',');
            }
            args.push_str(&format!("\"{k}\":{v}"));
        }
        let id = serde_json::to_string(id).unwrap_or_else(|_| "\"\"".into());
        format!("{{\"id\":{id},\"cmd\":\"{}\",\"args\":{{{args}}}}}\n", self.cmd)
    }

    pub fn arg(&self, k: &str) -> Option<i64> {
        self.args.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
    }
}

/// The field that failed validation (→ 400 `invalid_payload` with `field`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadField(pub &'static str);

/// A JSON integer, or a float with zero fraction (aggregator §7.4).
fn int(p: &Map<String, Value>, k: &'static str) -> Result<Option<i64>, BadField> {
    match p.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                    _ => Err(BadField(k)),
                }
            }
        }
        Some(_) => Err(BadField(k)),
    }
}

fn ranged(p: &Map<String, Value>, k: &'static str, lo: i64, hi: i64) -> Result<Option<i64>, BadField> {
    match int(p, k)? {
        Some(v) if v < lo || v > hi => Err(BadField(k)),
        v => Ok(v),
    }
}

pub const FREQ_MIN: i64 = 1_000_000;
pub const FREQ_MAX: i64 = 6_500_000_000;
pub const SCAN_DEFAULTS: (i64, i64, i64, i64) = (200, 2_000_000, 5_645_000_000, 5_865_000_000);

fn led(p: &Map<String, Value>, long: &'static str, short: &'static str, last: i64) -> Result<(i64, bool), BadField> {
    let named = match p.get(long) {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(i64::from(*b)),
        Some(_) => return Err(BadField(long)),
    };
    let short_v = ranged(p, short, 0, 1)?;
    match (named, short_v) {
        (Some(_), Some(_)) => Err(BadField(long)),
        (Some(v), None) | (None, Some(v)) => Ok((v, true)),
        (None, None) => Ok((last, false)),
    }
}

/// Validates and translates. `leds` is the last telemetry LED state (unnamed LEDs keep it).
pub fn translate(route: Route, p: &Map<String, Value>, leds: Option<LedState>) -> Result<FwCommand, BadField> {
    let cmd = route.firmware_cmd();
    match route {
        Route::VrxTune | Route::Esp32VrxTune => {
            let vrx = ranged(p, "vrx_id", 1, 3)?.ok_or(BadField("vrx_id"))?;
            let freq = match int(p, "freq_hz")? {
                Some(f) => f,
                None => {
                    let mhz = match p.get("freq_mhz") {
                        None | Some(Value::Null) => return Err(BadField("freq_hz")),
                        Some(v) => v.as_f64().filter(|f| f.is_finite()).ok_or(BadField("freq_mhz"))?,
                    };
                    let hz = mhz * 1e6;
                    if hz.fract().abs() > 1e-6 {
                        return Err(BadField("freq_mhz"));
                    }
                    hz.round() as i64
                }
            };
            if !(FREQ_MIN..=FREQ_MAX).contains(&freq) {
                return Err(BadField(if p.contains_key("freq_hz") {
                    "freq_hz"
                } else {
                    "freq_mhz"
                }));
            }
            Ok(FwCommand {
                cmd,
                args: vec![("vrx_id", vrx), ("freq_hz", freq)],
            })
        }
        Route::ScanStart => {
            let (d_dwell, d_step, d_start, d_stop) = SCAN_DEFAULTS;
            let dwell = ranged(p, "dwell_ms", 10, 5000)?.unwrap_or(d_dwell);
            let step = ranged(p, "step_hz", 1, i64::MAX)?.unwrap_or(d_step);
            let start = ranged(p, "start_hz", FREQ_MIN, FREQ_MAX)?.unwrap_or(d_start);
            let stop = ranged(p, "stop_hz", FREQ_MIN, FREQ_MAX)?.unwrap_or(d_stop);
            if start >= stop {
                return Err(BadField("stop_hz"));
            }
            Ok(FwCommand {
                cmd,
                args: vec![
                    ("dwell_ms", dwell),
                    ("step_hz", step),
                    ("start_hz", start),
                    ("stop_hz", stop),
                ],
            })
        }
        Route::ScanStop => Ok(FwCommand { cmd, args: vec![] }),
        Route::ScanLock => {
            let args = match ranged(p, "vrx_id", 1, 3)? {
                Some(v) => vec![("vrx_id", v)],
                None => vec![],
            };
            Ok(FwCommand { cmd, args })
        }
        Route::VideoSelect | Route::Esp32VideoSelect => {
            let ch = match ranged(p, "ch", 1, 3)? {
                Some(c) => c,
                None => ranged(p, "sel", 1, 3)?.ok_or(BadField("ch"))?,
            };
            Ok(FwCommand {
                cmd,
                args: vec![("ch", ch)],
            })
        }
        Route::Esp32Leds => {
            let last = leds.unwrap_or_default();
            let (r, a) = led(p, "red", "r", last.r)?;
            let (y, b) = led(p, "yellow", "y", last.y)?;
            let (g, c) = led(p, "green", "g", last.g)?;
            if !(a || b || c) {
                return Err(BadField("red"));
            }
            Ok(FwCommand {
                cmd,
                args: vec![("r", r), ("y", y), ("g", g)],
            })
        }
        Route::Esp32Buzzer | Route::Esp32Config | Route::ButtonsSimulate => Ok(FwCommand { cmd, args: vec![] }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn vrx_tune() {
        let c = translate(Route::VrxTune, &p(json!({"vrx_id":1,"freq_hz":5740000000u64})), None);
        assert_eq!(
            c.map(|c| c.line("x")),
            Ok("{\"id\":\"x\",\"cmd\":\"SET_VRX_FREQ\",\"args\":{\"vrx_id\":1,\"freq_hz\":5740000000}}\n".into())
        );
        let c = translate(Route::VrxTune, &p(json!({"vrx_id":2.0,"freq_mhz":5800})), None);
        assert_eq!(c.map(|c| c.args), Ok(vec![("vrx_id", 2), ("freq_hz", 5_800_000_000)]));
        assert_eq!(
            translate(Route::VrxTune, &p(json!({"vrx_id":1,"freq_hz":7e9})), None),
            Err(BadField("freq_hz"))
        );
        assert_eq!(
            translate(Route::VrxTune, &p(json!({"vrx_id":4,"freq_hz":5.8e9})), None),
            Err(BadField("vrx_id"))
        );
        assert_eq!(
            translate(Route::VrxTune, &p(json!({"vrx_id":"1","freq_hz":5.8e9})), None),
            Err(BadField("vrx_id"))
        );
        assert_eq!(
            translate(Route::VrxTune, &p(json!({"vrx_id":1.5,"freq_hz":5.8e9})), None),
            Err(BadField("vrx_id"))
        );
        assert_eq!(
            translate(Route::VrxTune, &p(json!({"vrx_id":1})), None),
            Err(BadField("freq_hz"))
        );
    }

    #[test]
    fn scan_defaults_and_ranges() {
        let c = translate(Route::ScanStart, &p(json!({})), None);
        assert_eq!(
            c.map(|c| c.args),
            Ok(vec![
                ("dwell_ms", 200),
                ("step_hz", 2_000_000),
                ("start_hz", 5_645_000_000),
                ("stop_hz", 5_865_000_000)
            ])
        );
        assert_eq!(
            translate(Route::ScanStart, &p(json!({"dwell_ms":5})), None),
            Err(BadField("dwell_ms"))
        );
        assert_eq!(
            translate(Route::ScanStart, &p(json!({"start_hz":5.9e9,"stop_hz":5.8e9})), None),
            Err(BadField("stop_hz"))
        );
    }

    #[test]
    fn video_and_leds() {
        assert_eq!(
            translate(Route::VideoSelect, &p(json!({"sel":2})), None).map(|c| c.args),
            Ok(vec![("ch", 2)])
        );
        assert_eq!(
            translate(Route::VideoSelect, &p(json!({"ch":3,"sel":2})), None).map(|c| c.args),
            Ok(vec![("ch", 3)])
        );
        assert_eq!(
            translate(Route::VideoSelect, &p(json!({"ch":4})), None),
            Err(BadField("ch"))
        );
        let c = translate(
            Route::Esp32Leds,
            &p(json!({"red":true,"yellow":false,"green":true})),
            None,
        );
        assert_eq!(c.map(|c| c.args), Ok(vec![("r", 1), ("y", 0), ("g", 1)]));
        let last = LedState { r: 0, y: 1, g: 1 };
        let c = translate(Route::Esp32Leds, &p(json!({"r":1})), Some(last));
        assert_eq!(c.map(|c| c.args), Ok(vec![("r", 1), ("y", 1), ("g", 1)]));
        assert_eq!(
            translate(Route::Esp32Leds, &p(json!({"red":true,"r":1})), None),
            Err(BadField("red"))
        );
        assert_eq!(translate(Route::Esp32Leds, &p(json!({})), None), Err(BadField("red")));
        assert_eq!(
            translate(Route::Esp32Leds, &p(json!({"g":2})), None),
            Err(BadField("g"))
        );
        assert_eq!(
            translate(Route::Esp32Leds, &p(json!({"green":1})), None),
            Err(BadField("green"))
        );
    }

    #[test]
    fn lock_optional_vrx() {
        assert_eq!(
            translate(Route::ScanLock, &p(json!({})), None).map(|c| c.args),
            Ok(vec![])
        );
        assert_eq!(
            translate(Route::ScanLock, &p(json!({"vrx_id":2})), None).map(|c| c.args),
            Ok(vec![("vrx_id", 2)])
        );
    }
}
