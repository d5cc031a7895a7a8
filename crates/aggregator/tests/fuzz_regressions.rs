//! Regression tests for bugs the fuzz targets in `fuzz/` found (docs/RELIABILITY.md, "Fuzzing").

use ndefender_aggregator::config::AggregatorConfig;
use ndefender_aggregator::core::{antsdr, remoteid, Feed, State};
use ndefender_contract::events::kind;
use ndefender_contract::schema::Schemas;
use ndefender_contract::time::ManualClock;
use ndefender_contract::TimestampField;
use ndefender_service::config::load_str;
use serde_json::Value;
use std::sync::Arc;

type R = Result<(), Box<dyn std::error::Error>>;

const T0: u64 = 1_772_140_777_000;

fn state() -> State {
    State::new(Arc::new(AggregatorConfig::default()), Arc::new(ManualClock::new(T0)))
}

fn validate_out(st: &mut State, schemas: &Schemas) -> Result<usize, Box<dyn std::error::Error>> {
    let out = std::mem::take(&mut st.out);
    for e in &out {
        let v: Value = serde_json::from_str(&e.to_json(None, TimestampField::TimestampMs))?;
        schemas.validate_envelope(&v)?;
    }
    Ok(out.len())
}

/// fuzz target `feed_lines`: a RemoteID line typed `RF_CONTACT_NEW` (the legacy RF script's line
/// in the wrong file) was passed through "as received" and published as an RF_CONTACT_NEW
/// envelope without id, freq_hz, … — schema-invalid output. Catalogue types with a fixed
/// shape now count as `invalid` on a feed that does not produce them.
#[test]
fn feed_lines_do_not_pass_catalogue_types_through() -> R {
    let schemas = Schemas::load()?;
    let crash = r#"{"type":"RF_CONTACT_NEW","ts_ms":1772140777119,"id":"rf:1340000000","data":{"center_hz":1340000000,"bandwidth_class":"narrow","family_hint":"unknown","snr_db":46.5,"peak_db":135.9}}"#;
    let mut st = state();
    assert_eq!(remoteid::apply_line(&mut st, crash), remoteid::Outcome::Invalid);
    assert_eq!(validate_out(&mut st, &schemas)?, 0);
    assert_eq!(st.counters(Feed::RemoteId).invalid, 1);

    let owned_by_others = [
        kind::SYSTEM_UPDATE,
        kind::HEARTBEAT,
        kind::COMMAND_ACK,
        kind::ESP32_TELEMETRY,
        kind::LOG_EVENT,
        kind::RF_CONTACT_UPDATE,
        kind::SYSTEM_STATUS,
        kind::UPS_UPDATE,
        kind::SERVICE_UPDATE,
        kind::NETWORK_UPDATE,
        kind::AUDIO_UPDATE,
        kind::GPS_UPDATE,
        kind::SUBSCRIBED,
        kind::UNSUBSCRIBED,
        kind::PONG,
        kind::ERROR,
    ];
    for k in owned_by_others
        .iter()
        .chain(&[kind::TELEMETRY_UPDATE, kind::REPLAY_STATE])
    {
        let line = format!(r#"{{"type":"{k}","timestamp_ms":{T0},"data":{{"x":1}}}}"#);
        if *k != kind::TELEMETRY_UPDATE && *k != kind::REPLAY_STATE {
            assert_eq!(remoteid::apply_line(&mut st, &line), remoteid::Outcome::Invalid, "{k}");
        }
        assert_eq!(antsdr::apply_line(&mut st, &line), antsdr::Outcome::Invalid, "{k}");
        assert_eq!(validate_out(&mut st, &schemas)?, 0, "{k} published");
    }

    // Types outside the catalogue, and the scanner's heartbeat, still pass through.
    for (line, k) in [
        (
            r#"{"type":"RF_SCAN_STATS","timestamp_ms":1772140777000,"data":{"frames_processed":3}}"#,
            "RF_SCAN_STATS",
        ),
        (
            r#"{"t":1772140777.119,"detector":"peak","type":"PEAK","data":{"x":null}}"#,
            "PEAK",
        ),
    ] {
        assert_eq!(antsdr::apply_line(&mut st, line), antsdr::Outcome::Emitted(k.into()));
        assert_eq!(
            remoteid::apply_line(&mut st, line),
            remoteid::Outcome::Emitted(k.into())
        );
        assert_eq!(validate_out(&mut st, &schemas)?, 2);
    }
    Ok(())
}

/// fuzz target `config_toml` (and the daemon itself: `NDEFENDER_PROXY__WIFI_CONNECT_TIMEOUT_S=-1`
/// passed `--check-config`, then the aggregator panicked at startup with exit 101): durations
/// that cannot become a timer are refused at load, naming the key.
#[test]
fn config_durations_the_daemon_cannot_use_are_refused() -> R {
    for (var, val) in [
        ("NDEFENDER_PROXY__WIFI_CONNECT_TIMEOUT_S", "-1"),
        ("NDEFENDER_ESP32__QUEUE_TIMEOUT_S", "nan"),
        ("NDEFENDER_ESP32__COMMAND_TIMEOUT_S", "1e30"),
        ("NDEFENDER_ANTSDR__POLL_INTERVAL_S", "1e-12"),
        ("NDEFENDER_ALERTS__BEEP_MIN_INTERVAL_S", "inf"),
    ] {
        let key = var.trim_start_matches("NDEFENDER_").replace("__", ".").to_lowercase();
        let r = load_str::<AggregatorConfig>("", "test", [(var.to_owned(), val.to_owned())]);
        assert!(
            r.as_ref().is_err_and(|e| e.0.contains(&format!("\"{key}\""))),
            "{var}={val}: {r:?}",
            r = r.map(|_| ())
        );
    }
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/aggregator.toml"))?;
    load_str::<AggregatorConfig>(&shipped, "aggregator.toml", [])?;
    Ok(())
}

/// fuzz target `feed_lines`, seed `case-rid-pass-through` (fuzz/corpus): a pass-through line
/// whose data nests an object of nulls is emitted with that object empty (PROTOCOL.md §4.5 keeps
/// members and removes nulls), and `remote_id.last_event` holds the same data. The REST body
/// check refused the snapshot for the nested `{}`; it now allows `{}` anywhere inside
/// `last_event` (event data as emitted) and still refuses nulls there.
#[test]
fn pass_through_data_with_empty_objects_is_a_valid_snapshot() -> R {
    let schemas = Schemas::load()?;
    let line = r#"{"type":"SOMETHING_NEW","timestamp_ms":1772140777119,"source":"remoteid","data":{"a":null,"b":{"c":null},"d":[1,null]}}"#;
    let mut st = state();
    assert!(matches!(
        remoteid::apply_line(&mut st, line),
        remoteid::Outcome::Emitted(_)
    ));
    assert_eq!(validate_out(&mut st, &schemas)?, 1);
    let snap = serde_json::to_value(st.snapshot())?;
    assert_eq!(snap["remote_id"]["last_event"], serde_json::json!({"b": {}, "d": [1]}));
    schemas.validate("StatusSnapshot.json", &snap)?;
    ndefender_contract::schema::no_nulls_or_empty_objects(&snap)?;

    let mut with_null = snap.clone();
    with_null["remote_id"]["last_event"]["b"]["c"] = Value::Null;
    assert!(ndefender_contract::schema::no_nulls_or_empty_objects(&with_null).is_err());
    let mut empty_section = snap;
    empty_section["audio"] = serde_json::json!({});
    assert!(ndefender_contract::schema::no_nulls_or_empty_objects(&empty_section).is_err());
    Ok(())
}
