//! Conformance checking against the contract JSON Schemas (feature `schema-check`).
//!
//! Used by every crate's tests: REST bodies are checked against their model
//! schema, envelopes against the event schema for their type (or
//! EventEnvelope.json plus the model schema of `data`, as the contract README maps
//! them). Envelopes carrying `seq`, or the AntSDR `timestamp` key, are checked with
//! that one key substituted (PROTOCOL.md §4.6).

use jsonschema::{Registry, Validator};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

const BASE: &str = "https://ndefender.invalid/schemas/";

/// The loaded schema set with a cache of compiled validators.
pub struct Schemas {
    registry: Registry<'static>,
    cache: Mutex<HashMap<String, std::sync::Arc<Validator>>>,
    dir: PathBuf,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas").field("dir", &self.dir).finish()
    }
}

/// `../shared/contract/schemas` relative to the workspace root, the normative copy.
pub fn shared_schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/contract/schemas")
}

/// The copy kept with this crate (identical to the shared one; checked by a test).
pub fn bundled_schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

impl Schemas {
    /// The schemas, loaded once per process and shared by every test thread; a load
    /// error is returned to every caller.
    pub fn shared() -> Result<&'static Schemas, String> {
        static S: OnceLock<Result<Schemas, String>> = OnceLock::new();
        S.get_or_init(Self::load).as_ref().map_err(Clone::clone)
    }

    /// [`Schemas::shared`] for test helpers and fuzz targets that cannot return an error:
    /// without its schemas a checkout cannot test anything, so the process stops there.
    pub fn shared_or_abort() -> &'static Schemas {
        match Self::shared() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cannot load the contract schemas: {e}");
                std::process::abort()
            }
        }
    }

    /// Loads the shared schemas, falling back to the bundled copy when shared/ is absent.
    pub fn load() -> Result<Self, String> {
        let shared = shared_schema_dir();
        if shared.is_dir() {
            Self::load_dir(&shared)
        } else {
            Self::load_dir(&bundled_schema_dir())
        }
    }

    pub fn load_dir(dir: &Path) -> Result<Self, String> {
        let mut builder = Registry::new();
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut n = 0;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| format!("bad file name {}", path.display()))?
                .to_owned();
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
            builder = builder
                .add(format!("{BASE}{name}"), doc)
                .map_err(|e| format!("{name}: {e}"))?;
            n += 1;
        }
        if n == 0 {
            return Err(format!("no schemas in {}", dir.display()));
        }
        let registry = builder.prepare().map_err(|e| e.to_string())?;
        Ok(Self {
            registry,
            cache: Mutex::new(HashMap::new()),
            dir: dir.to_owned(),
        })
    }

    fn validator(&self, target: &str) -> Result<std::sync::Arc<Validator>, String> {
        if let Ok(c) = self.cache.lock() {
            if let Some(v) = c.get(target) {
                return Ok(v.clone());
            }
        }
        let schema = json!({ "$ref": format!("{BASE}{target}") });
        let v = jsonschema::options()
            .with_registry(&self.registry)
            .with_base_uri(BASE)
            .build(&schema)
            .map_err(|e| format!("compiling {target}: {e}"))?;
        let v = std::sync::Arc::new(v);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(target.to_owned(), v.clone());
        }
        Ok(v)
    }

    /// Validates `doc` against `target`: a file name (`"GPSState.json"`) optionally
    /// followed by a fragment (`"StatusSnapshot.json#/$defs/network_state"`).
    pub fn validate(&self, target: &str, doc: &Value) -> Result<(), String> {
        let v = self.validator(target)?;
        let errors: Vec<String> = v
            .iter_errors(doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("{target}: {} in {doc}", errors.join("; ")))
        }
    }

    /// Validates one wire envelope (parsed JSON of a WS frame or JSONL line).
    pub fn validate_envelope(&self, frame: &Value) -> Result<(), String> {
        let Value::Object(obj) = frame else {
            return Err(format!("envelope is not an object: {frame}"));
        };
        let mut env = obj.clone();
        if let Some(seq) = env.remove("seq") {
            if !seq.is_u64() {
                return Err(format!("seq is not a u64: {frame}"));
            }
        }
        if let Some(ts) = env.remove("timestamp") {
            if env.contains_key("timestamp_ms") {
                return Err(format!("both timestamp and timestamp_ms: {frame}"));
            }
            env.insert("timestamp_ms".into(), ts);
        }
        let env = Value::Object(env);
        self.validate("EventEnvelope.json", &env)?;
        let kind = env.get("type").and_then(Value::as_str).unwrap_or_default();
        let data = env.get("data").cloned().unwrap_or(Value::Null);
        match kind {
            "CONTACT_NEW" | "CONTACT_UPDATE" | "CONTACT_LOST" | "TELEMETRY_UPDATE" | "REPLAY_STATE" | "COMMAND_ACK" => {
                self.validate(&format!("{kind}.json"), &env)
            }
            "SYSTEM_UPDATE" => self.validate("StatusSnapshot.json", &data),
            "SYSTEM_STATUS" => self.validate("SystemStats.json", &data),
            "UPS_UPDATE" => self.validate("UPS_Telemetry.json", &data),
            "AUDIO_UPDATE" => self.validate("AudioState.json", &data),
            "GPS_UPDATE" => self.validate("GPSState.json", &data),
            "NETWORK_UPDATE" => self.validate("StatusSnapshot.json#/$defs/network_state", &data),
            "SERVICE_UPDATE" => {
                let services = data.get("services").cloned().unwrap_or(Value::Null);
                if data.as_object().map(|m| m.len()) != Some(1) {
                    return Err(format!("SERVICE_UPDATE data must be exactly {{services}}: {data}"));
                }
                self.validate("StatusSnapshot.json", &json!({"timestamp_ms": 0, "services": services}))
            }
            "RF_CONTACT_NEW" | "RF_CONTACT_UPDATE" | "RF_CONTACT_LOST" => {
                let mut c = data.as_object().cloned().unwrap_or_default();
                for k in ["type", "source", "last_seen_ts", "severity"] {
                    if c.contains_key(k) {
                        return Err(format!("{kind} data must not carry {k}: {data}"));
                    }
                }
                c.insert("type".into(), json!("RF"));
                c.insert("source".into(), json!("antsdr"));
                c.insert("last_seen_ts".into(), json!(0));
                c.insert("severity".into(), json!("unknown"));
                self.validate("Contact.json#/$defs/rf_contact", &Value::Object(c))
            }
            "HEARTBEAT" => strict_keys(&data, &["timestamp_ms"], &["timestamp_ms"]),
            "SUBSCRIBED" | "UNSUBSCRIBED" => strict_keys(&data, &["events", "active"], &["events", "active"]),
            "PONG" => strict_keys(&data, &["timestamp_ms", "id"], &["timestamp_ms"]),
            "ERROR" => strict_keys(&data, &["code", "message"], &["code", "message"]),
            "LOG_EVENT" => strict_keys(
                &data,
                &["message", "level", "component", "code", "data", "type", "timestamp_ms"],
                &["message"],
            ),
            _ => Ok(()),
        }
        .and_then(|()| no_nulls(&env, kind))
    }
}

fn strict_keys(data: &Value, allowed: &[&str], required: &[&str]) -> Result<(), String> {
    let Value::Object(m) = data else {
        return Err(format!("data is not an object: {data}"));
    };
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unexpected key {k} in {data}"));
    }
    if let Some(k) = required.iter().find(|k| !m.contains_key(**k)) {
        return Err(format!("missing key {k} in {data}"));
    }
    Ok(())
}

/// Wire §4.1: no nulls except COMMAND_ACK `err`/`reason`.
fn no_nulls(env: &Value, kind: &str) -> Result<(), String> {
    fn walk(v: &Value, path: &mut Vec<String>, out: &mut Option<String>) {
        match v {
            Value::Null => *out = Some(path.join(".")),
            Value::Object(m) => {
                for (k, x) in m {
                    path.push(k.clone());
                    walk(x, path, out);
                    path.pop();
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, path, out)),
            _ => {}
        }
    }
    let mut env = env.clone();
    if kind == "COMMAND_ACK" {
        if let Some(Value::Object(d)) = env.get_mut("data") {
            for k in ["err", "reason"] {
                if d.get(k) == Some(&Value::Null) {
                    d.remove(k);
                }
            }
        }
    }
    let mut found = None;
    walk(&env, &mut Vec::new(), &mut found);
    match found {
        Some(p) => Err(format!("null at {p} in {env}")),
        None => Ok(()),
    }
}

/// REST body check shared by daemon tests: no `null` anywhere and no empty object
/// anywhere (PROTOCOL.md §4.1, §4.2), besides the schema check done by the caller.
///
/// A section's `last_event` is the data of the event it last emitted, as emitted: for a
/// pass-through type that keeps the producer's members (PROTOCOL.md §4.5), so `{}` may appear at
/// `last_event` and anywhere below it (`{"b":{"c":null}}` is emitted as `{"b":{}}`). Nulls
/// are refused there too, since pass-through data has none.
pub fn no_nulls_or_empty_objects(v: &Value) -> Result<(), String> {
    fn walk(v: &Value, path: &str, event_data: bool) -> Result<(), String> {
        match v {
            Value::Null => Err(format!("null at {path}")),
            Value::Object(m) if m.is_empty() && !event_data => Err(format!("empty object at {path}")),
            Value::Object(m) => m
                .iter()
                .try_for_each(|(k, x)| walk(x, &format!("{path}.{k}"), event_data || k == "last_event")),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .try_for_each(|(i, x)| walk(x, &format!("{path}[{i}]"), event_data)),
            _ => Ok(()),
        }
    }
    walk(v, "$", false)
}
