//! TOML config loading (PROTOCOL.md §10): `ndefender_service::config::load_str`, the body of `load`,
//! for the three daemon config types. Two input forms:
//! * text (UTF-8): the file, optionally followed by a NUL and `NAME=value` lines used as the
//!   environment (`NDEFENDER_<SECTION>__<KEY>` overrides);
//! * `0xff`, two bytes choosing a key of the daemon's defaults, then bytes that become a value
//!   of that key's TOML type, applied as its environment override. Coverage alone rarely turns
//!   a valid file into one with a single bad value; this form reaches every key's validation
//!   with arbitrary values of the right type.
//!
//! Oracles: no panic; errors carry a message; an accepted config is stable under
//! `--check-config` (its masked rendering loads back to a config that renders the same), and
//! every duration it holds (keys ending in `_s`, PROTOCOL.md §10 naming) is a usable duration:
//! finite, not negative, 0 or at least 1 ms, at most 1e9 s.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndefender_aggregator::config::AggregatorConfig;
use ndefender_antsdr_scan::config::ScanConfig;
use ndefender_service::config::{load_str, render_masked, Validate};
use ndefender_system_controller::config::ControllerConfig;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn durations(v: &toml::Value, path: &str, daemon: &str) {
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                if k.ends_with("_s") {
                    let secs = match x {
                        toml::Value::Float(f) => Some(*f),
                        toml::Value::Integer(i) => Some(*i as f64),
                        _ => None,
                    };
                    if let Some(s) = secs {
                        let ok = s.is_finite() && (s == 0.0 || (1e-3..=1e9).contains(&s));
                        assert!(ok, "{daemon}: accepted unusable duration {p} = {s}");
                    }
                }
                durations(x, &p, daemon);
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|x| durations(x, path, daemon)),
        _ => {}
    }
}

fn check<T>(daemon: &str, text: &str, env: &[(String, String)])
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    match load_str::<T>(text, "fuzz.toml", env.iter().cloned()) {
        Err(e) => assert!(!e.0.is_empty()),
        Ok(cfg) => {
            let shown = render_masked(&cfg);
            let again = match load_str::<T>(&shown, "rendered", []) {
                Ok(c) => c,
                Err(e) => panic!("{daemon}: --check-config output does not load: {e}\n{shown}"),
            };
            assert_eq!(render_masked(&again), shown, "{daemon}: rendering not stable");
            if let Ok(v) = toml::Value::try_from(&cfg) {
                durations(&v, "", daemon);
            }
        }
    }
}

/// Leaf keys of a config's defaults: dotted path and the default value (arrays are leaves).
fn leaves(v: &toml::Value, path: &str, out: &mut Vec<(String, toml::Value)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                leaves(x, &p, out);
            }
        }
        other => out.push((path.to_owned(), other.clone())),
    }
}

/// A value of `like`'s TOML type built from raw bytes.
fn value_like(like: &toml::Value, b: &[u8]) -> toml::Value {
    let mut w = [0u8; 8];
    for (d, s) in w.iter_mut().zip(b) {
        *d = *s;
    }
    match like {
        toml::Value::Integer(_) => toml::Value::Integer(i64::from_le_bytes(w)),
        toml::Value::Float(_) => toml::Value::Float(f64::from_le_bytes(w)),
        toml::Value::Boolean(_) => toml::Value::Boolean(b.first().is_some_and(|x| x & 1 == 1)),
        toml::Value::Array(_) => toml::Value::Array(
            String::from_utf8_lossy(b).split(',').map(|s| toml::Value::String(s.to_owned())).collect(),
        ),
        _ => toml::Value::String(String::from_utf8_lossy(b).into_owned()),
    }
}

fn one_override<T>(daemon: &str, data: &[u8])
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    let (Some(hi), Some(lo)) = (data.first(), data.get(1)) else {
        return;
    };
    let Ok(defaults) = toml::Value::try_from(T::default()) else {
        return;
    };
    let mut keys = Vec::new();
    leaves(&defaults, "", &mut keys);
    if keys.is_empty() {
        return;
    }
    let (path, like) = &keys[usize::from(u16::from_le_bytes([*lo, *hi])) % keys.len()];
    let name = format!("NDEFENDER_{}", path.split('.').map(str::to_ascii_uppercase).collect::<Vec<_>>().join("__"));
    let env = [(name, value_like(like, &data[2..]).to_string())];
    check::<T>(daemon, "", &env);
}

fuzz_target!(|data: &[u8]| {
    if let Some((&0xff, rest)) = data.split_first() {
        one_override::<AggregatorConfig>("aggregator", rest);
        one_override::<ControllerConfig>("system-controller", rest);
        one_override::<ScanConfig>("antsdr-scan", rest);
        return;
    }
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (text, env_text) = input.split_once('\0').unwrap_or((input, ""));
    let env: Vec<(String, String)> = env_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    check::<AggregatorConfig>("aggregator", text, &env);
    check::<ControllerConfig>("system-controller", text, &env);
    check::<ScanConfig>("antsdr-scan", text, &env);
});
