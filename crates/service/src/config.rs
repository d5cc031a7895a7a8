//! Config loading shared by the three daemons (wire §10): built-in defaults, an
//! optional TOML file, `NDEFENDER_<SECTION>__<KEY>` overrides; unknown keys stop
//! startup naming the key; `--check-config` prints the effective config with
//! secrets masked.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

const ENV_PREFIX: &str = "NDEFENDER_";

/// A config error; `Display` names the offending key. The process exits 2 on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ConfigError {}

/// Range and cross-field checks a daemon config performs after deserialising.
pub trait Validate {
    /// `Err((key, message))` for the first invalid value.
    fn validate(&self) -> Result<(), (String, String)>;
}

/// Loads `T` from defaults, the file (if any) and the given environment.
pub fn load<T>(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    match file {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| ConfigError(format!("cannot read {}: {e}", p.display())))?;
            load_str(&text, &p.display().to_string(), env)
        }
        None => from_table(toml::Table::new(), env),
    }
}

/// [`load`] with the file's text already read; `origin` names it in parse errors.
/// Text that parses to an empty table (`""`) is the same as no file.
pub fn load_str<T>(text: &str, origin: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    let table = text
        .parse::<toml::Table>()
        .map_err(|e| ConfigError(format!("{origin}: {}", e.message())))?;
    from_table(table, env)
}

fn from_table<T>(mut table: toml::Table, env: impl IntoIterator<Item = (String, String)>) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    apply_env(&mut table, env)?;
    let input = table.clone();
    let mut unknown = Vec::new();
    let value = toml::Value::Table(table);
    let cfg: T = serde_ignored::deserialize(value, |path| unknown.push(path.to_string()))
        .map_err(|e| ConfigError(describe_type_error(&e.to_string())))?;
    if let Some(key) = unknown.first() {
        return Err(ConfigError(format!("unknown key \"{key}\"")));
    }
    let known = toml::Value::try_from(&cfg).map_err(|e| ConfigError(format!("invalid config: {e}")))?;
    // serde_ignored cannot see keys a flattened section (`[server]`) left unused, so every
    // key given must also be one the loaded config has.
    if let Some(key) = first_unknown(&input, &known, "") {
        return Err(ConfigError(format!("unknown key \"{key}\"")));
    }
    cfg.validate()
        .map_err(|(key, msg)| ConfigError(format!("invalid value for \"{key}\": {msg}")))?;
    check_durations(&known, "")?;
    Ok(cfg)
}

/// Largest duration accepted (about 31 years): deadlines computed from it cannot overflow.
const MAX_DURATION_S: f64 = 1e9;
/// Smallest positive duration accepted: anything shorter is a zero-length timer.
const MIN_DURATION_S: f64 = 1e-3;

/// Every duration (a key ending in `_s`, wire §10) must be usable as a timer: 0, or 1 ms to
/// 1e9 s. A negative, NaN, infinite or huge value made a daemon panic converting it to a
/// `Duration` (or adding it to an `Instant`) after `--check-config` had passed it, and a
/// positive value below 1 ms made a zero-period interval.
fn check_durations(v: &toml::Value, path: &str) -> Result<(), ConfigError> {
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let secs = match x {
                    toml::Value::Float(f) if k.ends_with("_s") => *f,
                    toml::Value::Integer(i) if k.ends_with("_s") => *i as f64,
                    other => {
                        check_durations(other, &p)?;
                        continue;
                    }
                };
                if !(secs == 0.0 || (MIN_DURATION_S..=MAX_DURATION_S).contains(&secs)) {
                    return Err(ConfigError(format!(
                        "invalid value for \"{p}\": a duration must be 0 or 0.001 to 1000000000 seconds"
                    )));
                }
            }
            Ok(())
        }
        toml::Value::Array(a) => a.iter().try_for_each(|x| check_durations(x, path)),
        _ => Ok(()),
    }
}

fn first_unknown(given: &toml::Table, known: &toml::Value, path: &str) -> Option<String> {
    let known = known.as_table()?;
    for (k, v) in given {
        let p = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match (v, known.get(k)) {
            (_, None) => return Some(p),
            (toml::Value::Table(t), Some(kv)) => {
                if let Some(u) = first_unknown(t, kv, &p) {
                    return Some(u);
                }
            }
            _ => {}
        }
    }
    None
}

fn describe_type_error(msg: &str) -> String {
    // toml already names the key ("... for key `esp32.baud`"); keep its words.
    format!("invalid config: {}", msg.trim())
}

/// Applies `NDEFENDER_<SECTION>__<KEY>[__<SUBKEY>…]` overrides onto the table.
fn apply_env(table: &mut toml::Table, env: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if !rest.contains("__") {
            // Not a config override (e.g. NDEFENDER_LOG); leave it to whoever reads it.
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError(format!("malformed override variable {name}")));
        }
        let value = parse_env_value(&raw);
        let mut cur = &mut *table;
        for seg in &path[..path.len() - 1] {
            let entry = cur
                .entry(seg.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cur = match entry {
                toml::Value::Table(t) => t,
                _ => return Err(ConfigError(format!("unknown key \"{}\"", path.join(".")))),
            };
        }
        if let Some(last) = path.last() {
            cur.insert(last.clone(), value);
        }
    }
    Ok(())
}

/// A TOML value if the text parses as one (numbers, bools, inline arrays,
/// quoted strings), else the raw text as a string.
fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

/// The effective config as TOML with secrets shown as `***`.
pub fn render_masked<T: Serialize>(cfg: &T) -> String {
    let mut v = match toml::Value::try_from(cfg) {
        Ok(v) => v,
        Err(e) => return format!("# cannot render config: {e}\n"),
    };
    mask(&mut v);
    toml::to_string_pretty(&v).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
}

fn mask(v: &mut toml::Value) {
    if let toml::Value::Table(t) = v {
        for (k, x) in t.iter_mut() {
            let secret = k == "api_key" || k.contains("password") || k.contains("secret");
            match x {
                toml::Value::String(s) if secret && !s.is_empty() => *s = "***".into(),
                _ => mask(x),
            }
        }
    }
}

/// The common command line of every daemon (interfaces.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonArgs {
    pub config: Option<std::path::PathBuf>,
    pub check_config: bool,
    /// Flags a daemon adds itself (e.g. the scanner's `--bench-dsp`), in order.
    pub extra: Vec<String>,
}

impl DaemonArgs {
    /// Parses `--config <file>`, `--config=<file>`, `--check-config`; anything else goes to `extra`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, ConfigError> {
        let mut out = DaemonArgs::default();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            if a == "--config" {
                let p = it.next().ok_or_else(|| ConfigError("--config needs a file".into()))?;
                out.config = Some(p.into());
            } else if let Some(p) = a.strip_prefix("--config=") {
                out.config = Some(p.into());
            } else if a == "--check-config" {
                out.check_config = true;
            } else {
                out.extra.push(a);
            }
        }
        Ok(out)
    }
}

/// Standard startup: parse args, load config (exit 2 naming the key on error),
/// handle `--check-config` (print and exit 0). Returns the config and the args.
pub fn load_or_exit<T>(daemon: &str) -> (T, DaemonArgs)
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    let args = match DaemonArgs::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{daemon}: {e}");
            std::process::exit(2);
        }
    };
    let cfg = match load::<T>(args.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{daemon}: {e}");
            std::process::exit(2);
        }
    };
    if args.check_config {
        print!("{}", render_masked(&cfg));
        std::process::exit(0);
    }
    (cfg, args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    /// fuzz target `config_toml`: `--check-config` accepted durations the daemons then
    /// panicked on (`Duration::from_secs_f64` of -1, NaN or 1e30; a zero-period interval).
    #[test]
    fn fuzz_regression_durations_must_be_usable_timers() {
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        struct Timers {
            wait_s: f64,
            cooldown_s: u64,
        }
        impl Default for Timers {
            fn default() -> Self {
                Self {
                    wait_s: 2.0,
                    cooldown_s: 30,
                }
            }
        }
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        struct T {
            timers: Timers,
        }
        impl Validate for T {
            fn validate(&self) -> Result<(), (String, String)> {
                Ok(())
            }
        }
        for bad in ["-1", "-0.5", "nan", "inf", "1e30", "1e-12", "0.0009", "1000000001"] {
            let e = load::<T>(None, env(&[("NDEFENDER_TIMERS__WAIT_S", bad)]))
                .err()
                .map(|e| e.0);
            assert!(
                e.as_deref().is_some_and(|e| e.contains("\"timers.wait_s\"")),
                "{bad}: {e:?}"
            );
        }
        let e = load::<T>(None, env(&[("NDEFENDER_TIMERS__COOLDOWN_S", "9223372036854775807")])).err();
        assert!(e.is_some_and(|e| e.0.contains("timers.cooldown_s")));
        for good in ["0", "0.0", "-0.0", "0.001", "2.5", "1000000000"] {
            let c = load::<T>(None, env(&[("NDEFENDER_TIMERS__WAIT_S", good)]));
            assert!(c.is_ok(), "{good}: {c:?}");
        }
    }

    #[test]
    fn args() -> Result<(), ConfigError> {
        let a = DaemonArgs::parse(["--config", "/x.toml", "--check-config", "--bench-dsp"].map(String::from))?;
        assert_eq!(a.config.as_deref(), Some(Path::new("/x.toml")));
        assert!(a.check_config);
        assert_eq!(a.extra, vec!["--bench-dsp".to_string()]);
        assert!(DaemonArgs::parse(["--config".to_string()]).is_err());
        Ok(())
    }
}
