//! Tests of config loading (PROTOCOL.md §10) through `load` and `load_str`, the body of
//! `load`: defaults → file → `NDEFENDER_*` environment, unknown keys named, `--check-config`
//! output loads back to the same config, and (property tests) no input panics.

use ndefender_service::config::{load as load_file, load_str, render_masked, ConfigError, Validate};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Server {
    bind: String,
    api_key: String,
    max_clients: u32,
    allowed_origins: Vec<String>,
    ping_interval_s: f64,
    /// A duration the daemon's own `validate` does not check: only the loader's rule applies.
    idle_s: f64,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8001".into(),
            api_key: String::new(),
            max_clients: 64,
            allowed_origins: vec!["*".into()],
            ping_interval_s: 20.0,
            idle_s: 5.0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Cfg {
    server: Server,
}

impl Validate for Cfg {
    fn validate(&self) -> Result<(), (String, String)> {
        if self.server.max_clients == 0 {
            return Err(("server.max_clients".into(), "must be at least 1".into()));
        }
        if !(self.server.ping_interval_s.is_finite() && self.server.ping_interval_s > 0.0) {
            return Err(("server.ping_interval_s".into(), "must be positive".into()));
        }
        Ok(())
    }
}

fn load(text: &str, env: &[(&str, String)]) -> Result<Cfg, ConfigError> {
    load_str(text, "test.toml", env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())))
}

fn server() -> impl Strategy<Value = Server> {
    (
        "[0-9.:a-z]{1,20}",
        "[ -~]{0,12}",
        1u32..100_000,
        prop::collection::vec("[ -~]{0,16}", 0..4),
        (1u32..100_000).prop_map(|n| f64::from(n) / 8.0),
    )
        .prop_map(
            |(bind, api_key, max_clients, allowed_origins, ping_interval_s)| Server {
                bind,
                api_key,
                max_clients,
                allowed_origins,
                ping_interval_s,
                idle_s: ping_interval_s / 2.0,
            },
        )
}

fn to_toml(c: &Cfg) -> Result<String, TestCaseError> {
    toml::to_string(c).map_err(|e| TestCaseError::fail(e.to_string()))
}

proptest! {
    #[test]
    fn any_text_loads_or_is_refused_with_a_message(text in ".{0,300}", env in prop::collection::vec(("NDEFENDER_[A-Z_]{0,20}", ".{0,12}"), 0..3)) {
        let env: Vec<(String, String)> = env;
        match load_str::<Cfg>(&text, "test.toml", env) {
            Ok(c) => prop_assert!(c.validate().is_ok()),
            Err(e) => prop_assert!(!e.0.is_empty()),
        }
    }

    #[test]
    fn a_written_config_loads_back(s in server()) {
        let c = Cfg { server: s };
        prop_assert_eq!(load(&to_toml(&c)?, &[]), Ok(c));
    }

    #[test]
    fn environment_beats_file_beats_default(file in server(), env in server()) {
        let text = to_toml(&Cfg { server: file.clone() })?;
        let origins = toml::Value::Array(env.allowed_origins.iter().cloned().map(toml::Value::String).collect());
        let vars = [
            ("NDEFENDER_SERVER__MAX_CLIENTS", env.max_clients.to_string()),
            ("NDEFENDER_SERVER__ALLOWED_ORIGINS", origins.to_string()),
            ("NDEFENDER_SERVER__PING_INTERVAL_S", format!("{:?}", env.ping_interval_s)),
        ];
        let c = load(&text, &vars).map_err(|e| TestCaseError::fail(e.0))?;
        prop_assert_eq!(c.server.max_clients, env.max_clients);
        prop_assert_eq!(&c.server.allowed_origins, &env.allowed_origins);
        prop_assert_eq!(c.server.ping_interval_s, env.ping_interval_s);
        prop_assert_eq!(&c.server.bind, &file.bind, "not overridden: the file's value");
        prop_assert_eq!(load("", &[]), Ok(Cfg::default()));
    }

    /// A value that is not a TOML value is taken as the raw string (PROTOCOL.md §10).
    #[test]
    fn raw_strings_in_the_environment(bind in "[0-9]{1,3}(\\.[0-9]{1,3}){3}:[0-9]{1,5}") {
        let c = load("", &[("NDEFENDER_SERVER__BIND", bind.clone())]).map_err(|e| TestCaseError::fail(e.0))?;
        prop_assert_eq!(c.server.bind, bind);
    }

    #[test]
    fn unknown_keys_are_named(key in "[a-z][a-z_]{0,12}") {
        prop_assume!(!["bind", "api_key", "max_clients", "allowed_origins", "ping_interval_s", "idle_s"].contains(&key.as_str()));
        let e = load(&format!("[server]\n{key} = 1\n"), &[]);
        prop_assert_eq!(e, Err(ConfigError(format!("unknown key \"server.{key}\""))));
        let e = load("", &[("NDEFENDER_SERVER__X", "1".into()), ("NDEFENDER_NOPE__Y", "1".into())]);
        prop_assert!(e.is_err_and(|e| e.0.starts_with("unknown key")));
    }

    #[test]
    fn range_errors_name_the_key(bad in prop_oneof![Just(0.0), Just(-1.0), Just(f64::NAN), Just(f64::INFINITY)]) {
        let text = format!("[server]\nping_interval_s = {}\n", toml::Value::Float(bad));
        let e = load(&text, &[]);
        prop_assert!(e.is_err_and(|e| e.0.contains("server.ping_interval_s")));
    }

    #[test]
    fn check_config_output_loads_back(s in server()) {
        let c = Cfg { server: s };
        let shown = render_masked(&c);
        let back = load(&shown, &[]).map_err(|e| TestCaseError::fail(e.0))?;
        let mut expect = c.clone();
        if !expect.server.api_key.is_empty() {
            expect.server.api_key = "***".into();
        }
        prop_assert_eq!(&back, &expect);
        prop_assert_eq!(render_masked(&back), shown);
    }

    /// Every `_s` key is a timer: 0, or 1 ms to 1e9 s; anything else is refused naming the key.
    #[test]
    fn durations_are_usable_timers(x in prop_oneof![
        any::<f64>(),
        Just(0.0), Just(-0.0), Just(1e-3), Just(1e9), Just(f64::MIN_POSITIVE),
        (0u32..10_000).prop_map(|m| f64::from(m) / 1000.0),
    ]) {
        let r = load("", &[("NDEFENDER_SERVER__IDLE_S", toml::Value::Float(x).to_string())]);
        let usable = x == 0.0 || (1e-3..=1e9).contains(&x);
        match r {
            Ok(c) => {
                prop_assert!(usable, "{} accepted", x);
                prop_assert!(std::time::Duration::try_from_secs_f64(c.server.idle_s).is_ok());
            }
            Err(e) => {
                prop_assert!(!usable, "{} refused: {}", x, e.0);
                prop_assert!(e.0.contains("\"server.idle_s\""), "{}", e.0);
            }
        }
    }
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn defaults_file_env_precedence() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let f = dir.path().join("c.toml");
    std::fs::write(&f, "[server]\nbind = \"0.0.0.0:1\"\nmax_clients = 3\n")?;
    let c: Cfg = load_file(Some(&f), vars(&[("NDEFENDER_SERVER__MAX_CLIENTS", "5")]))?;
    assert_eq!(c.server.bind, "0.0.0.0:1");
    assert_eq!(c.server.max_clients, 5);
    let c: Cfg = load_file(
        None,
        vars(&[
            ("NDEFENDER_SERVER__ALLOWED_ORIGINS", "[\"http://a\"]"),
            ("NDEFENDER_SERVER__BIND", "0.0.0.0:9"),
        ]),
    )?;
    assert_eq!(c.server.allowed_origins, vec!["http://a".to_string()]);
    assert_eq!(c.server.bind, "0.0.0.0:9");
    assert_eq!(load_file::<Cfg>(None, vars(&[]))?, Cfg::default());
    Ok(())
}

#[test]
fn unknown_keys_in_file_and_environment_are_named() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let f = dir.path().join("c.toml");
    std::fs::write(&f, "[server]\nbnd = \"x\"\n")?;
    let e = load_file::<Cfg>(Some(&f), vars(&[]))
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    assert_eq!(e, "unknown key \"server.bnd\"");
    let e = load_file::<Cfg>(None, vars(&[("NDEFENDER_ESP32__PROT", "1")]))
        .err()
        .map(|e| e.0);
    assert_eq!(e.as_deref(), Some("unknown key \"esp32\""));
    let e = load_file::<Cfg>(None, vars(&[("NDEFENDER_SERVER__PROT", "1")]))
        .err()
        .map(|e| e.0);
    assert_eq!(e.as_deref(), Some("unknown key \"server.prot\""));
    Ok(())
}

#[test]
fn type_and_range_errors_name_the_key() {
    let e = load_file::<Cfg>(None, vars(&[("NDEFENDER_SERVER__MAX_CLIENTS", "\"many\"")]))
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    assert!(e.contains("max_clients"), "{e}");
    let e = load_file::<Cfg>(None, vars(&[("NDEFENDER_SERVER__MAX_CLIENTS", "0")]))
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    assert!(e.contains("server.max_clients"), "{e}");
}

#[test]
fn masking() {
    let mut c = Cfg::default();
    c.server.api_key = "hunter2".into();
    let s = render_masked(&c);
    assert!(s.contains("api_key = \"***\""), "{s}");
    assert!(!s.contains("hunter2"));
}
