//! Property tests of the JSONL feed line normaliser through the functions the feed sink calls per
//! line (`core::remoteid::apply_line`, `core::antsdr::apply_line`): lines generated from the
//! grammar of remoteid-jsonl.md and antsdr-scan.md §9 are accepted and publish schema-valid
//! envelopes; any line lands in exactly one counter, the one its outcome names.

use ndefender_aggregator::config::AggregatorConfig;
use ndefender_aggregator::core::{antsdr, remoteid, Feed, FeedCounters, State};
use ndefender_contract::schema::Schemas;
use ndefender_contract::time::ManualClock;
use ndefender_contract::TimestampField;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::sync::Arc;

const T0: u64 = 1_772_140_777_000;

fn schemas() -> Result<&'static Schemas, TestCaseError> {
    Schemas::shared().map_err(TestCaseError::fail)
}

fn state() -> State {
    State::new(Arc::new(AggregatorConfig::default()), Arc::new(ManualClock::new(T0)))
}

/// Drains the emitted envelopes, each validated against the contract schemas.
fn take(st: &mut State) -> Result<Vec<Value>, TestCaseError> {
    let mut out = Vec::new();
    for e in std::mem::take(&mut st.out) {
        let v: Value = serde_json::from_str(&e.to_json(None, TimestampField::TimestampMs))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        schemas()?.validate_envelope(&v).map_err(TestCaseError::fail)?;
        out.push(v);
    }
    Ok(out)
}

fn snapshot_valid(st: &State) -> Result<(), TestCaseError> {
    let v = serde_json::to_value(st.snapshot()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    schemas()?
        .validate("StatusSnapshot.json", &v)
        .map_err(TestCaseError::fail)?;
    ndefender_contract::schema::no_nulls_or_empty_objects(&v).map_err(TestCaseError::fail)
}

fn total(c: &FeedCounters) -> u64 {
    c.accepted + c.malformed + c.invalid + c.stale + c.test_marker + c.unknown_lost
}

/// `rid:<basic_id>`, `rid:mac:<mac>`, `rid:op:<operator>` or `rid:anon` (remoteid-jsonl §2).
fn rid_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9A-Z]{16,20}".prop_map(|s| format!("rid:{s}")),
        "([0-9a-f]{2}:){5}[0-9a-f]{2}".prop_map(|s| format!("rid:mac:{s}")),
        "[A-Z]{3}-OP-[0-9A-Z]{7}".prop_map(|s| format!("rid:op:{s}")),
        Just("rid:anon".to_owned()),
    ]
}

/// Degrees with 7 decimals, never exactly 0 (the engine drops 0.0).
fn coord(max: i64) -> impl Strategy<Value = f64> {
    (-max * 10_000_000..=max * 10_000_000)
        .prop_filter("not 0", |v| *v != 0)
        .prop_map(|v| v as f64 / 1e7)
}

/// The time key variants readers accept, with the line time in ms or s.
fn stamp(top: &mut Map<String, Value>, key: usize, t_ms: u64, seconds: bool) {
    let k = ["timestamp_ms", "timestamp", "ts_ms"][key % 3];
    let v = if seconds {
        json!(t_ms as f64 / 1000.0)
    } else {
        json!(t_ms)
    };
    top.insert(k.into(), v);
}

#[derive(Debug, Clone)]
struct RidContact {
    id: String,
    age_ms: u64,
    model: Option<String>,
    operator_id: Option<String>,
    pos: Option<(f64, f64)>,
    altitude_m: Option<f64>,
    speed_m_s: Option<f64>,
    key: usize,
    seconds: bool,
}

fn rid_contact() -> impl Strategy<Value = RidContact> {
    (
        rid_id(),
        0u64..14_000,
        proptest::option::of("[A-Za-z0-9 ]{1,20}"),
        proptest::option::of("[A-Z]{3}-OP-[0-9A-Z]{7}"),
        proptest::option::of((coord(90), coord(180))),
        proptest::option::of((-5000i32..20_000).prop_map(|a| f64::from(a) / 10.0)),
        proptest::option::of((0u32..1000).prop_map(|s| f64::from(s) / 4.0)),
        0usize..3,
        any::<bool>(),
    )
        .prop_map(
            |(id, age_ms, model, operator_id, pos, altitude_m, speed_m_s, key, seconds)| RidContact {
                id,
                age_ms,
                model,
                operator_id,
                pos,
                altitude_m,
                speed_m_s,
                key,
                seconds,
            },
        )
        // The aggregator drops contacts whose strings carry a test marker (aggregator §4).
        .prop_filter("no test marker", |c| {
            let m = c.model.as_deref().unwrap_or("").to_lowercase();
            !m.contains("testdrone") && !m.contains("warmstart")
        })
}

fn rid_line(kind: &str, c: &RidContact) -> String {
    let t = T0 - c.age_ms;
    let mut data = Map::new();
    data.insert("id".into(), json!(c.id));
    data.insert("type".into(), json!("REMOTE_ID"));
    data.insert("last_seen_ts".into(), json!(t));
    if kind != "CONTACT_LOST" {
        if let Some(m) = &c.model {
            data.insert("model".into(), json!(m));
        }
        if let Some(o) = &c.operator_id {
            data.insert("operator_id".into(), json!(o));
        }
        if let Some((lat, lon)) = c.pos {
            data.insert("lat".into(), json!(lat));
            data.insert("lon".into(), json!(lon));
        }
        if let Some(a) = c.altitude_m {
            data.insert("altitude_m".into(), json!(a));
        }
        if let Some(s) = c.speed_m_s {
            data.insert("speed_m_s".into(), json!(s));
        }
    }
    let mut top = Map::new();
    top.insert("type".into(), json!(kind));
    stamp(&mut top, c.key, t, c.seconds);
    top.insert("source".into(), json!("remoteid"));
    top.insert("data".into(), Value::Object(data));
    Value::Object(top).to_string()
}

fn features() -> impl Strategy<Value = Value> {
    (
        (0u32..600).prop_map(|v| f64::from(v) / 10.0),
        0u64..100_000,
        prop::sample::select(vec!["raceband_r3", "dji_o3", "elrs_2g4", "unknown"]),
        prop::sample::select(vec!["none", "hopping"]),
        0u64..40_000_000,
        (0u32..=100, 0u32..=500, 0u32..=100, 0u32..=100)
            .prop_map(|(a, b, c, d)| [a, b, c, d].map(|x| f64::from(x) / 100.0)),
        any::<bool>(),
    )
        .prop_map(|(prom, cluster, hint, hop, bw, [burst, rate, score, cconf], corr)| {
            json!({
                "prominence_db": prom, "cluster_size": cluster, "pattern_hint": hint, "hop_hint": hop,
                "bandwidth_est_hz": bw, "burstiness": burst, "hop_rate_hz": rate, "control_score": score,
                "class_path": ["Analog", "Video"], "classification_confidence": cconf, "control_correlation": corr
            })
        })
}

/// A current-scanner RF_CONTACT line (antsdr-scan §9): all keys, dB with 1 decimal.
fn rf_line() -> impl Strategy<Value = (String, Value)> {
    (
        prop::sample::select(vec![
            433_000_000u64,
            915_000_000,
            1_300_000_000,
            2_440_000_000,
            5_732_000_000,
            5_917_000_000,
        ]),
        0u64..50_000_000,
        (0u32..600, 0u32..1200).prop_map(|(snr, noise)| (f64::from(snr) / 10.0, -f64::from(noise) / 10.0)),
        prop::sample::select(vec!["narrow", "wide", "unknown"]),
        (0u32..=100).prop_map(|c| f64::from(c) / 100.0),
        features(),
        0u64..170_000,
    )
        .prop_map(|(base, off, (snr, noise), bw, conf, features, age)| {
            let freq = base + off;
            let bucket = freq / 250_000 * 250_000;
            let data = json!({
                "id": format!("rf:{bucket}"), "freq_hz": freq, "bucket_hz": bucket, "band": "5G8",
                "snr_db": snr, "peak_db": ((noise + snr) * 10.0).round() / 10.0, "noise_floor_db": noise,
                "bandwidth_class": bw, "confidence": conf, "features": features
            });
            let id = format!("rf:{bucket}");
            (
                id,
                json!({"type": "RF_CONTACT_NEW", "timestamp_ms": T0 - age, "source": "antsdr", "data": data}),
            )
        })
}

proptest! {
    #[test]
    fn remoteid_contacts_from_the_grammar_are_accepted(c in rid_contact()) {
        let mut st = state();
        let o = remoteid::apply_line(&mut st, &rid_line("CONTACT_NEW", &c));
        prop_assert_eq!(o, remoteid::Outcome::Emitted("CONTACT_NEW".into()));
        let ev = take(&mut st)?;
        prop_assert_eq!(ev.len(), 1);
        prop_assert_eq!(&ev[0]["data"]["id"], &json!(c.id));
        prop_assert_eq!(ev[0]["timestamp_ms"].as_u64(), Some(T0 - c.age_ms));
        if let Some((lat, lon)) = c.pos {
            prop_assert_eq!(ev[0]["data"]["lat"].as_f64(), Some(lat));
            prop_assert_eq!(ev[0]["data"]["lon"].as_f64(), Some(lon));
        }
        // A NEW for a known contact is an UPDATE; LOST removes it.
        let o = remoteid::apply_line(&mut st, &rid_line("CONTACT_NEW", &c));
        prop_assert_eq!(o, remoteid::Outcome::Emitted("CONTACT_UPDATE".into()));
        take(&mut st)?;
        snapshot_valid(&st)?;
        let o = remoteid::apply_line(&mut st, &rid_line("CONTACT_LOST", &c));
        prop_assert_eq!(o, remoteid::Outcome::Emitted("CONTACT_LOST".into()));
        take(&mut st)?;
        prop_assert!(st.contacts.rid.is_empty());
        let o = remoteid::apply_line(&mut st, &rid_line("CONTACT_LOST", &c));
        prop_assert_eq!(o, remoteid::Outcome::UnknownLost);
        let n = st.counters(Feed::RemoteId).clone();
        prop_assert_eq!((n.accepted, n.unknown_lost, total(&n)), (3, 1, 4));
        snapshot_valid(&st)?;
    }

    #[test]
    fn remoteid_telemetry_from_the_grammar_is_accepted(
        state_s in prop::sample::select(vec!["ok", "degraded", "offline", "replay"]),
        mode in prop::sample::select(vec!["live", "replay"]),
        active in 0u64..500,
        legacy in any::<bool>(),
        age in 0u64..14_000,
    ) {
        let t = T0 - age;
        let line = if legacy {
            json!({"type":"TELEMETRY_UPDATE","timestamp":t,"source":"remoteid","data":{"state":state_s,"last_ts":t,"contacts_active":active,"mode":mode}})
        } else {
            json!({"type":"TELEMETRY_UPDATE","timestamp_ms":t,"source":"remoteid","data":{"state":state_s,"last_update_ms":t,"contacts_active":active,"mode":mode}})
        };
        let mut st = state();
        prop_assert_eq!(remoteid::apply_line(&mut st, &line.to_string()), remoteid::Outcome::Emitted("TELEMETRY_UPDATE".into()));
        let ev = take(&mut st)?;
        prop_assert_eq!(ev[0]["data"]["last_update_ms"].as_u64(), Some(t));
        prop_assert_eq!(ev[0]["data"]["contacts_active"].as_u64(), Some(active));
        snapshot_valid(&st)?;
    }

    #[test]
    fn antsdr_contacts_from_the_grammar_are_accepted((id, line) in rf_line()) {
        let mut st = state();
        let text = line.to_string();
        prop_assert_eq!(antsdr::apply_line(&mut st, &text), antsdr::Outcome::Emitted("RF_CONTACT_NEW".into()));
        prop_assert_eq!(antsdr::apply_line(&mut st, &text), antsdr::Outcome::Emitted("RF_CONTACT_UPDATE".into()));
        let ev = take(&mut st)?;
        prop_assert_eq!(ev.len(), 2);
        prop_assert_eq!(&ev[1]["data"]["id"], &json!(id));
        prop_assert_eq!(ev[1]["data"]["freq_hz"].as_f64(), line["data"]["freq_hz"].as_f64());
        prop_assert_eq!(ev[1]["data"]["confidence"].as_f64(), line["data"]["confidence"].as_f64());
        for (k, v) in line["data"]["features"].as_object().into_iter().flatten() {
            let got = &ev[1]["data"]["features"][k];
            match v.as_f64() {
                Some(x) => prop_assert_eq!(got.as_f64(), Some(x), "features.{}", k),
                None => prop_assert_eq!(got, v, "features.{}", k),
            }
        }
        let lost = json!({"type":"CONTACT_LOST","timestamp_ms":T0,"source":"rf_sensor","data":{"id":id}});
        prop_assert_eq!(antsdr::apply_line(&mut st, &lost.to_string()), antsdr::Outcome::Emitted("RF_CONTACT_LOST".into()));
        take(&mut st)?;
        snapshot_valid(&st)?;
    }

    /// Any strict prefix of a JSON object line is malformed, counted, and changes nothing.
    #[test]
    fn truncated_lines_are_counted_malformed(c in rid_contact(), cut in any::<prop::sample::Index>(), rf in any::<bool>()) {
        let line = rid_line("CONTACT_NEW", &c);
        let cut = cut.index(line.len());
        prop_assume!(line.is_char_boundary(cut));
        let mut st = state();
        let feed = if rf { Feed::Antsdr } else { Feed::RemoteId };
        let malformed = if rf {
            antsdr::apply_line(&mut st, &line[..cut]) == antsdr::Outcome::Malformed
        } else {
            remoteid::apply_line(&mut st, &line[..cut]) == remoteid::Outcome::Malformed
        };
        prop_assert!(malformed);
        prop_assert_eq!(st.counters(feed).malformed, 1);
        prop_assert!(st.out.is_empty() && !st.dirty);
    }

    /// Whatever the line, it is counted exactly once, under the outcome it reports.
    #[test]
    fn every_line_is_counted_once(line in prop_oneof![
        ".{0,120}",
        "\\{\"type\":\"[A-Za-z_]{0,16}\",\"(timestamp_ms|timestamp|ts_ms|t)\":-?[0-9.e]{1,16},\"data\":\\{(\"[a-z_]{1,12}\":(null|true|-?[0-9.]{1,12}|\"[a-z:0-9]{0,12}\"),?){0,6}\\}\\}",
    ], rf in any::<bool>(), prior in proptest::option::of(rid_contact())) {
        let mut st = state();
        if let Some(c) = &prior {
            remoteid::apply_line(&mut st, &rid_line("CONTACT_NEW", c));
            take(&mut st)?;
        }
        let feed = if rf { Feed::Antsdr } else { Feed::RemoteId };
        let before = st.counters(feed).clone();
        let (name, emitted) = if rf {
            match antsdr::apply_line(&mut st, &line) {
                antsdr::Outcome::Emitted(k) => ("accepted", Some(k)),
                antsdr::Outcome::Malformed => ("malformed", None),
                antsdr::Outcome::Invalid => ("invalid", None),
                antsdr::Outcome::Stale => ("stale", None),
                antsdr::Outcome::TestMarker => ("test_marker", None),
                antsdr::Outcome::UnknownLost => ("unknown_lost", None),
            }
        } else {
            match remoteid::apply_line(&mut st, &line) {
                remoteid::Outcome::Emitted(k) => ("accepted", Some(k)),
                remoteid::Outcome::Malformed => ("malformed", None),
                remoteid::Outcome::Invalid => ("invalid", None),
                remoteid::Outcome::Stale => ("stale", None),
                remoteid::Outcome::TestMarker => ("test_marker", None),
                remoteid::Outcome::UnknownLost => ("unknown_lost", None),
            }
        };
        let after = st.counters(feed).clone();
        prop_assert_eq!(total(&after), total(&before) + 1);
        let moved = [
            ("accepted", after.accepted - before.accepted),
            ("malformed", after.malformed - before.malformed),
            ("invalid", after.invalid - before.invalid),
            ("stale", after.stale - before.stale),
            ("test_marker", after.test_marker - before.test_marker),
            ("unknown_lost", after.unknown_lost - before.unknown_lost),
        ];
        prop_assert!(moved.contains(&(name, 1)), "{} not counted: {:?}", name, moved);
        let ev = take(&mut st)?;
        if let Some(k) = emitted {
            prop_assert!(ev.iter().any(|e| e["type"] == json!(k)));
        } else {
            prop_assert!(ev.is_empty(), "a refused line published {:?}", ev);
        }
        snapshot_valid(&st)?;
    }
}
