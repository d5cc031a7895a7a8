//! SigMF metadata (antsdr-scan §2): reading `.sigmf-meta` for replay and writing recordings
//! with one capture segment per step and the `ndefender:` extension keys.

use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Cf32,
    Ci16,
}

impl DataType {
    pub fn bytes_per_sample(self) -> usize {
        match self {
            DataType::Cf32 => 8,
            DataType::Ci16 => 4,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DataType::Cf32 => "cf32_le",
            DataType::Ci16 => "ci16_le",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SigmfCapture {
    pub sample_start: u64,
    pub frequency: u64,
    pub datetime_ms: Option<u64>,
    pub plan: Option<String>,
    pub sweep_seq: Option<u64>,
    pub gain_db: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SigmfMeta {
    pub datatype: DataType,
    pub sample_rate: f64,
    pub captures: Vec<SigmfCapture>,
    pub data_path: PathBuf,
}

/// Largest `core:frequency` accepted (1 THz): LOs and plan edges computed from it stay far
/// from `u64` overflow.
const MAX_FREQUENCY: f64 = 1e12;
/// Largest `core:sample_rate` accepted (10 GS/s), for the same reason.
const MAX_SAMPLE_RATE: f64 = 1e10;

/// `…/x.sigmf-meta` → `…/x.sigmf-data`.
pub fn data_path_for(meta: &Path) -> PathBuf {
    meta.with_extension("sigmf-data")
}

/// Reads a `.sigmf-meta` file; the data file is the sibling `.sigmf-data`.
pub fn read_meta(path: &Path) -> Result<SigmfMeta, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut meta = parse_meta(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    meta.data_path = data_path_for(path);
    Ok(meta)
}

/// Parses the text of a `.sigmf-meta` file. `data_path` is left empty ([`read_meta`] sets it).
pub fn parse_meta(text: &str) -> Result<SigmfMeta, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("sigmf: {e}"))?;
    let g = v.get("global").ok_or("sigmf: missing global")?;
    let datatype = match g.get("core:datatype").and_then(Value::as_str) {
        Some("cf32_le") => DataType::Cf32,
        Some("ci16_le") => DataType::Ci16,
        other => {
            return Err(format!(
                "sigmf: unsupported core:datatype {other:?} (cf32_le or ci16_le)"
            ))
        }
    };
    let sample_rate = g
        .get("core:sample_rate")
        .and_then(Value::as_f64)
        .filter(|r| *r > 0.0 && *r <= MAX_SAMPLE_RATE)
        .ok_or("sigmf: missing or out-of-range core:sample_rate")?;
    let caps = v
        .get("captures")
        .and_then(Value::as_array)
        .ok_or("sigmf: missing captures")?;
    let mut captures = Vec::with_capacity(caps.len());
    for (i, c) in caps.iter().enumerate() {
        let frequency = c
            .get("core:frequency")
            .and_then(Value::as_f64)
            .map(f64::round)
            .filter(|f| (1.0..=MAX_FREQUENCY).contains(f))
            .ok_or_else(|| format!("sigmf: captures[{i}] lacks a core:frequency of 1 Hz to 1 THz"))?;
        captures.push(SigmfCapture {
            sample_start: c.get("core:sample_start").and_then(Value::as_u64).unwrap_or(0),
            frequency: frequency as u64,
            datetime_ms: c.get("core:datetime").and_then(Value::as_str).and_then(parse_datetime),
            plan: c.get("ndefender:plan").and_then(Value::as_str).map(str::to_owned),
            sweep_seq: c.get("ndefender:sweep_seq").and_then(Value::as_u64),
            gain_db: c.get("ndefender:gain_db").and_then(Value::as_f64),
        });
    }
    if captures.is_empty() {
        return Err("sigmf: no captures".into());
    }
    Ok(SigmfMeta {
        datatype,
        sample_rate,
        captures,
        data_path: PathBuf::new(),
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff…]Z` → epoch ms. Fields out of their calendar range (a year
/// past 9999, month 13, hour 24, …; leap seconds included) are refused, not normalised.
pub fn parse_datetime(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    let in_range = (0..=9999).contains(&y)
        && (1..=12).contains(&mo)
        && (1..=31).contains(&da)
        && (0..=23).contains(&h)
        && (0..=59).contains(&mi)
        && (0..=59).contains(&se);
    if !in_range {
        return None;
    }
    let mut ms = 0i64;
    for (i, c) in frac.chars().take(3).enumerate() {
        ms += c.to_digit(10)? as i64 * [100, 10, 1][i];
    }
    let total = ((days_from_civil(y, mo, da) * 24 + h) * 60 + mi) * 60 + se;
    u64::try_from(total * 1000 + ms).ok()
}

pub fn format_datetime(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Writes `<base>.sigmf-data` and, on [`finish`](Self::finish), `<base>.sigmf-meta`.
pub struct SigmfWriter {
    meta_path: PathBuf,
    data: std::io::BufWriter<std::fs::File>,
    sample_rate: f64,
    captures: Vec<Value>,
    samples: u64,
    description: String,
}

impl std::fmt::Debug for SigmfWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigmfWriter")
            .field("meta", &self.meta_path)
            .finish_non_exhaustive()
    }
}

impl SigmfWriter {
    pub fn create(base: &Path, sample_rate: f64, description: &str) -> std::io::Result<Self> {
        let data_path = PathBuf::from(format!("{}.sigmf-data", base.display()));
        let meta_path = PathBuf::from(format!("{}.sigmf-meta", base.display()));
        if let Some(p) = base.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(p)?;
        }
        Ok(Self {
            meta_path,
            data: std::io::BufWriter::new(std::fs::File::create(data_path)?),
            sample_rate,
            captures: Vec::new(),
            samples: 0,
            description: description.to_owned(),
        })
    }

    pub fn meta_path(&self) -> &Path {
        &self.meta_path
    }

    /// Appends one step's samples (cf32_le) as one capture segment.
    pub fn add_capture(
        &mut self,
        frequency: u64,
        start_ms: u64,
        gain_db: f64,
        plan: &str,
        sweep_seq: u64,
        samples: &[rustfft::num_complex::Complex32],
    ) -> std::io::Result<()> {
        let mut c = Map::new();
        c.insert("core:sample_start".into(), json!(self.samples));
        c.insert("core:frequency".into(), json!(frequency));
        c.insert("core:datetime".into(), json!(format_datetime(start_ms)));
        c.insert("ndefender:gain_db".into(), json!(gain_db));
        c.insert("ndefender:plan".into(), json!(plan));
        c.insert("ndefender:sweep_seq".into(), json!(sweep_seq));
        self.captures.push(Value::Object(c));
        for s in samples {
            self.data.write_all(&s.re.to_le_bytes())?;
            self.data.write_all(&s.im.to_le_bytes())?;
        }
        self.samples += samples.len() as u64;
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<PathBuf> {
        self.data.flush()?;
        let meta = json!({
            "global": {
                "core:datatype": "cf32_le",
                "core:sample_rate": self.sample_rate,
                "core:version": "1.0.0",
                "core:description": self.description,
                "core:recorder": "ndefender-antsdr-scan",
                "core:extensions": [
                    {"name": "ndefender", "version": "1.0.0", "optional": true}
                ]
            },
            "captures": self.captures,
            "annotations": []
        });
        let text = serde_json::to_string_pretty(&meta).map_err(std::io::Error::other)?;
        std::fs::write(&self.meta_path, text)?;
        Ok(self.meta_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_round_trip() {
        let ms = 1_700_000_000_123u64;
        let s = format_datetime(ms);
        assert_eq!(s, "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_datetime(&s), Some(ms));
        assert_eq!(parse_datetime("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(parse_datetime("nope"), None);
    }

    /// proptest `any_datetime_text_never_panics` (tests/prop_sigmf.rs): huge fields overflowed
    /// the i64 arithmetic (a panic in debug builds, a wrapped time in release).
    #[test]
    fn fuzz_regression_datetime_fields_out_of_range_are_refused() {
        assert_eq!(parse_datetime("0-0-0T2600000000000:0:0Z"), None);
        assert_eq!(parse_datetime("9223372036854775807-01-01T00:00:00Z"), None);
        assert_eq!(parse_datetime("2023-13-01T00:00:00Z"), None);
        assert_eq!(parse_datetime("2023-01-01T24:00:00Z"), None);
        assert_eq!(parse_datetime("2023-01-01T00:60:00Z"), None);
        assert_eq!(parse_datetime("2023-01-01T00:00:60Z"), None);
        assert_eq!(parse_datetime("9999-12-31T23:59:59.999Z"), Some(253_402_300_799_999));
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
    }

    /// fuzz target `sigmf_meta`: `core:frequency` 0.4 passed the `> 0` check and became an LO of
    /// 0 Hz; 1e300 saturated to `u64::MAX` and overflowed the file plan's edges.
    #[test]
    fn fuzz_regression_frequencies_and_rates_out_of_range_are_refused() {
        let meta = |rate: &str, freq: &str| {
            format!(
                r#"{{"global":{{"core:datatype":"ci16_le","core:sample_rate":{rate}}},"captures":[{{"core:frequency":{freq}}}]}}"#
            )
        };
        for (rate, freq) in [
            ("2.5e6", "0.4"),
            ("2.5e6", "1e300"),
            ("2.5e6", "1.1e12"),
            ("1e300", "2.44e9"),
        ] {
            assert!(parse_meta(&meta(rate, freq)).is_err(), "rate {rate} freq {freq}");
        }
        let ok = parse_meta(&meta("2.5e6", "2440000000.4")).map(|m| m.captures[0].frequency);
        assert_eq!(ok, Ok(2_440_000_000));
        assert_eq!(
            parse_meta(&meta("2.5e6", "0.5")).map(|m| m.captures[0].frequency),
            Ok(1)
        );
    }
}
