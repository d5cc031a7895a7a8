//! The aggregator's domain rules on an injected clock: feed normalisation,
//! contact lifecycle, TTLs, replay, watchdogs. Every emitted envelope and the
//! snapshot are validated against the contract schemas.

use ndefender_aggregator::config::AggregatorConfig;
use ndefender_aggregator::core::watchdog::{self, Facts, Iface};
use ndefender_aggregator::core::{antsdr, remoteid, State};
use ndefender_contract::enums::*;
use ndefender_contract::schema::Schemas;
use ndefender_contract::system::{GpsState, ServiceStatus};
use ndefender_contract::time::ManualClock;
use ndefender_contract::TimestampField;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

type R = Result<(), Box<dyn std::error::Error>>;

const T0: u64 = 1_772_140_777_000;

fn schemas() -> &'static Schemas {
    Schemas::shared_or_abort()
}

struct Rig {
    st: State,
    clock: Arc<ManualClock>,
}

impl Rig {
    fn new() -> Self {
        Self::with(AggregatorConfig::default())
    }
    fn with(cfg: AggregatorConfig) -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let st = State::new(Arc::new(cfg), clock.clone());
        Self { st, clock }
    }
    fn rid(&mut self, line: Value) -> remoteid::Outcome {
        remoteid::apply_line(&mut self.st, &line.to_string())
    }
    fn rf(&mut self, line: Value) -> antsdr::Outcome {
        antsdr::apply_line(&mut self.st, &line.to_string())
    }
    fn advance(&self, s: f64) {
        self.clock.advance(Duration::from_secs_f64(s));
    }
    fn tick(&mut self) {
        self.tick_with(&facts_ok());
    }
    fn tick_with(&mut self, f: &Facts) {
        watchdog::tick(&mut self.st, f);
    }
    /// Drains emitted envelopes, validating each against the schemas.
    fn take(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.st.out)
            .into_iter()
            .map(|e| {
                let v: Value = serde_json::from_str(&e.to_json(None, TimestampField::TimestampMs)).unwrap_or_default();
                if let Err(err) = schemas().validate_envelope(&v) {
                    eprintln!("invalid envelope: {err}");
                    std::process::abort();
                }
                v
            })
            .collect()
    }
    fn types(&mut self) -> Vec<String> {
        self.take()
            .iter()
            .map(|v| v["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
    fn snapshot_valid(&self) -> R {
        let v = serde_json::to_value(self.st.snapshot())?;
        schemas().validate("StatusSnapshot.json", &v)?;
        ndefender_contract::schema::no_nulls_or_empty_objects(&v)?;
        Ok(())
    }
}

fn facts_ok() -> Facts {
    Facts {
        remoteid_exists: true,
        antsdr_exists: true,
        capture_iface: Iface::State("up".into()),
        video_present: None,
    }
}

fn rid_line(kind: &str, id: &str, t: u64, extra: Value) -> Value {
    let mut data = json!({"id": id, "type": "REMOTE_ID", "last_seen_ts": t});
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            d.insert(k.clone(), v.clone());
        }
    }
    json!({"type": kind, "timestamp_ms": t, "source": "remoteid", "data": data})
}

#[test]
fn remoteid_new_update_merge_and_lost() -> R {
    let mut r = Rig::new();
    let o = r.rid(rid_line(
        "CONTACT_NEW",
        "rid:A",
        T0,
        json!({"model":"DJI Mini 3","lat":23.0,"lon":72.0}),
    ));
    assert_eq!(o, remoteid::Outcome::Emitted("CONTACT_NEW".into()));
    r.take();
    r.rid(rid_line(
        "CONTACT_UPDATE",
        "rid:A",
        T0 + 500,
        json!({"lat":23.1,"lon":72.1}),
    ));
    let ev = r.take();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["type"], "CONTACT_UPDATE");
    assert_eq!(ev[0]["data"]["model"], "DJI Mini 3", "absent member kept");
    assert_eq!(ev[0]["data"]["lat"], 23.1);
    assert_eq!(ev[0]["data"]["last_seen_ts"], T0 + 500);
    // /contacts view keeps the model too
    let snap = r.st.snapshot();
    let c = serde_json::to_value(&snap.contacts)?;
    assert_eq!(c[0]["model"], "DJI Mini 3");
    assert_eq!(c[0]["severity"], "medium");
    // lat without lon is ignored
    r.rid(rid_line("CONTACT_UPDATE", "rid:A", T0 + 600, json!({"lat":10.0})));
    assert_eq!(r.take()[0]["data"]["lat"], 23.1);
    r.rid(rid_line("CONTACT_LOST", "rid:A", T0 + 700, json!({})));
    let ev = r.take();
    assert_eq!(ev[0]["type"], "CONTACT_LOST");
    assert_eq!(
        ev[0]["data"],
        json!({"id":"rid:A","type":"REMOTE_ID","last_seen_ts":T0 + 700})
    );
    assert!(r.st.contacts.rid.is_empty());
    r.snapshot_valid()
}

#[test]
fn lifecycle_rewrites() {
    let mut r = Rig::new();
    r.rid(rid_line("CONTACT_UPDATE", "rid:B", T0, json!({})));
    assert_eq!(r.types(), ["CONTACT_NEW"]);
    r.rid(rid_line("CONTACT_NEW", "rid:B", T0, json!({})));
    assert_eq!(r.types(), ["CONTACT_UPDATE"]);
    let o = r.rid(rid_line("CONTACT_LOST", "rid:unknown", T0, json!({})));
    assert_eq!(o, remoteid::Outcome::UnknownLost);
    assert!(r.types().is_empty());
}

#[test]
fn filters_stale_and_test_markers_and_seconds() {
    let mut r = Rig::new();
    let o = r.rid(rid_line("CONTACT_NEW", "rid:old", T0 - 20_000, json!({})));
    assert_eq!(o, remoteid::Outcome::Stale);
    let o = r.rid(rid_line("CONTACT_NEW", "rid:t", T0, json!({"model":"my TestDrone x"})));
    assert_eq!(o, remoteid::Outcome::TestMarker);
    assert!(r.take().is_empty());
    assert!(r.st.contacts.rid.is_empty());
    assert_eq!(
        r.st.snap.remote_id.last_event_type, None,
        "dropped lines change nothing"
    );
    // seconds timestamps are normalised
    let line = json!({"type":"CONTACT_NEW","timestamp":(T0 / 1000),"data":{"id":"rid:s","last_seen_ts":(T0/1000)}});
    r.rid(line);
    let ev = r.take();
    assert_eq!(ev[0]["timestamp_ms"], T0);
    assert_eq!(ev[0]["data"]["last_seen_ts"], T0);
}

#[test]
fn malformed_and_invalid_change_nothing() {
    let mut r = Rig::new();
    assert_eq!(
        remoteid::apply_line(&mut r.st, "{not json"),
        remoteid::Outcome::Malformed
    );
    assert_eq!(remoteid::apply_line(&mut r.st, "[]"), remoteid::Outcome::Malformed);
    assert_eq!(
        remoteid::apply_line(&mut r.st, r#"{"data":{}}"#),
        remoteid::Outcome::Invalid
    );
    assert_eq!(
        remoteid::apply_line(&mut r.st, r#"{"type":"CONTACT_NEW","data":{"id":""}}"#),
        remoteid::Outcome::Invalid
    );
    assert!(r.take().is_empty());
    assert!(!r.st.dirty);
    assert_eq!(r.st.snap.remote_id.state, RemoteIdHealth::Offline);
    let c =
        r.st.counters
            .get(&ndefender_aggregator::core::Feed::RemoteId)
            .cloned()
            .unwrap_or_default();
    assert_eq!((c.malformed, c.invalid), (2, 2));
}

#[test]
fn ttl_expiry_emits_lost_between_15_and_16_s() {
    let mut r = Rig::new();
    r.rid(rid_line("CONTACT_NEW", "rid:ttl", T0, json!({})));
    r.take();
    r.advance(14.9);
    r.tick();
    assert!(r.take().iter().all(|e| e["type"] != "CONTACT_LOST"));
    r.advance(0.2);
    r.tick();
    let ev = r.take();
    let lost: Vec<&Value> = ev.iter().filter(|e| e["type"] == "CONTACT_LOST").collect();
    assert_eq!(lost.len(), 1);
    assert_eq!(
        lost[0]["data"],
        json!({"id":"rid:ttl","type":"REMOTE_ID","last_seen_ts":T0})
    );
    assert_eq!(lost[0]["source"], "remoteid");
}

#[test]
fn telemetry_legacy_last_ts() {
    let mut r = Rig::new();
    let line = json!({"type":"TELEMETRY_UPDATE","timestamp":T0,"source":"remoteid",
        "data":{"state":"OK","last_ts":T0 - 100,"contacts_active":1,"mode":"live"}});
    r.rid(line);
    let ev = r.take();
    assert_eq!(
        ev[0]["data"],
        json!({"state":"ok","last_update_ms":T0 - 100,"contacts_active":1,"mode":"live"})
    );
    assert_eq!(r.st.snap.remote_id.last_update_ms, Some(T0 - 100));
    assert_eq!(r.st.snap.remote_id.state, RemoteIdHealth::Ok);
    // unknown state → degraded, last_error kept while not ok
    r.rid(json!({"type":"TELEMETRY_UPDATE","timestamp_ms":T0,"data":{"state":"weird","last_error":"x"}}));
    assert_eq!(r.st.snap.remote_id.state, RemoteIdHealth::Degraded);
    assert_eq!(r.st.snap.remote_id.last_error.as_deref(), Some("x"));
}

#[test]
fn replay_lets_old_lines_through_and_done_clears() {
    let mut r = Rig::new();
    r.rid(json!({"type":"REPLAY_STATE","timestamp_ms":T0,"data":{"state":"start","speed":2.0,"position":0}}));
    assert!(r.st.snap.replay.active);
    assert_eq!(r.st.snap.replay.source, "remoteid");
    let o = r.rid(rid_line("CONTACT_NEW", "rid:replayed", T0 - 20_000, json!({})));
    assert_eq!(o, remoteid::Outcome::Emitted("CONTACT_NEW".into()));
    assert_eq!(r.st.snap.remote_id.mode, RemoteIdMode::Replay);
    // replayed contacts age by receipt, not by their historic time
    r.advance(5.0);
    r.tick();
    assert!(r.st.contacts.rid.contains_key("rid:replayed"));
    r.rid(json!({"type":"REPLAY_STATE","timestamp_ms":T0,"data":{"state":"done","speed":2.0}}));
    assert!(!r.st.snap.replay.active);
    assert_eq!(r.st.snap.replay.source, "none");
    let o = r.rid(rid_line("CONTACT_NEW", "rid:old2", T0 - 20_000, json!({})));
    assert_eq!(o, remoteid::Outcome::Stale);
}

#[test]
fn replay_goes_idle_after_60_s() {
    let mut r = Rig::new();
    r.rid(json!({"type":"REPLAY_STATE","timestamp_ms":T0,"data":{"state":"running","speed":1.0}}));
    r.take();
    r.advance(59.0);
    r.tick();
    assert!(r.st.snap.replay.active);
    r.advance(1.5);
    r.tick();
    assert!(!r.st.snap.replay.active);
    assert!(r.types().contains(&"LOG_EVENT".to_owned()));
}

fn rf_line(kind: &str, freq: u64, t: u64, conf: Option<f64>) -> Value {
    let mut data = json!({"id": format!("rf:{freq}"), "freq_hz": freq, "bucket_hz": freq, "band": "5G8",
        "snr_db": 31.5, "peak_db": -38.2, "noise_floor_db": -69.7, "bandwidth_class": "wide",
        "features": {"prominence_db": 29.8, "cluster_size": 3686, "pattern_hint": "raceband_r1", "hop_hint": "none",
          "bandwidth_est_hz": 18000000.0, "burstiness": 0.0, "hop_rate_hz": 0.0, "control_score": 0.0,
          "class_path": ["Analog","Video","RaceBand","R1"], "classification_confidence": 0.95, "control_correlation": false}});
    if let Some(c) = conf {
        data["confidence"] = json!(c);
    }
    json!({"type": kind, "timestamp_ms": t, "source": "antsdr", "data": data})
}

#[test]
fn rf_mapping_lost_spellings_and_expiry() {
    let mut r = Rig::new();
    let o = r.rf(rf_line("CONTACT_NEW", 5_658_000_000, T0, Some(0.63)));
    assert_eq!(o, antsdr::Outcome::Emitted("RF_CONTACT_NEW".into()));
    let ev = r.take();
    assert_eq!(ev[0]["source"], "antsdr");
    assert_eq!(ev[0]["data"]["id"], "rf:5658000000");
    assert_eq!(r.st.snap.rf.status, RfStatus::Ok);
    r.rf(json!({"type":"RF_CONTACT_LOST","timestamp_ms":T0,"data":{"id":"rf:5658000000"}}));
    assert_eq!(r.types(), ["RF_CONTACT_LOST"]);
    r.rf(rf_line("RF_CONTACT_NEW", 5_740_000_000, T0, Some(0.9)));
    r.rf(json!({"type":"CONTACT_LOST","timestamp":T0,"source":"rf_sensor","data":{"id":"rf:5740000000","type":"UNKNOWN_RF"}}));
    assert_eq!(r.types(), ["RF_CONTACT_NEW", "RF_CONTACT_LOST"]);
    assert!(r.st.contacts.rf.is_empty());
    // 180 s without updates
    r.rf(rf_line("RF_CONTACT_UPDATE", 5_800_000_000, T0, Some(0.3)));
    assert_eq!(r.types(), ["RF_CONTACT_NEW"]);
    r.advance(179.0);
    r.rf(json!({"type":"RF_SCAN_STATS","timestamp_ms":T0 + 179_000,"data":{"frames_processed":1}}));
    r.tick();
    assert!(!r.types().contains(&"RF_CONTACT_LOST".to_owned()));
    r.advance(1.5);
    r.tick();
    assert!(r.types().contains(&"RF_CONTACT_LOST".to_owned()));
}

#[test]
fn rf_scan_stats_passthrough_creates_no_contact() {
    let mut r = Rig::new();
    r.rf(json!({"type":"RF_SCAN_STATS","timestamp_ms":T0,"source":"antsdr","data":{"frames_processed":1200,"events_emitted":37,"x":null}}));
    let ev = r.take();
    assert_eq!(ev[0]["type"], "RF_SCAN_STATS");
    assert_eq!(ev[0]["data"], json!({"frames_processed":1200,"events_emitted":37}));
    assert_eq!(r.st.snap.rf.last_event_type.as_deref(), Some("RF_SCAN_STATS"));
    assert!(r.st.contacts.rf.is_empty());
}

#[test]
fn legacy_script_line() -> R {
    let mut r = Rig::new();
    let line = json!({"type":"RF_CONTACT_NEW","ts_ms":T0,"id":"rf:1340000000","data":{"center_hz":1340000000u64,"bandwidth_class":"narrow","family_hint":"unknown","snr_db":46.5,"peak_db":135.9}});
    r.rf(line);
    let ev = r.take();
    let d = &ev[0]["data"];
    assert_eq!(d["id"], "rf:1340000000");
    assert_eq!(d["band"], "1G2");
    let nf = d["noise_floor_db"].as_f64().unwrap_or_default();
    assert!((nf - 89.4).abs() < 1e-9, "{nf}");
    assert_eq!(d["features"]["pattern_hint"], "unknown");
    let snap = serde_json::to_value(r.st.snapshot())?;
    assert_eq!(snap["contacts"][0]["severity"], "unknown", "no confidence → unknown");
    r.snapshot_valid()
}

#[test]
fn feed_types_outside_a_z0_9_are_counted_invalid_and_never_published() {
    let mut r = Rig::new();
    for t in ["PEAK\"} 1\nevil{a=\"", "PEAK-2", &"P".repeat(65)] {
        let line = json!({"type": t, "timestamp_ms": T0, "data": {"f": 1.0}});
        assert_eq!(r.rf(line.clone()), antsdr::Outcome::Invalid, "{t:?}");
        assert_eq!(r.rid(line), remoteid::Outcome::Invalid, "{t:?}");
    }
    assert!(r.take().is_empty());
    for f in [
        ndefender_aggregator::core::Feed::Antsdr,
        ndefender_aggregator::core::Feed::RemoteId,
    ] {
        let c = r.st.counters.get(&f).cloned().unwrap_or_default();
        assert_eq!((c.invalid, c.accepted), (3, 0));
    }
}

#[test]
fn legacy_detector_peak_passthrough() {
    let mut r = Rig::new();
    r.rf(json!({"t":1772140777.119,"detector":"peak","type":"PEAK","severity":2,"data":{"f":1.0}}));
    let ev = r.take();
    assert_eq!(ev[0]["type"], "PEAK");
    assert_eq!(ev[0]["timestamp_ms"], T0, "t is not a time key: receipt time");
}

#[test]
fn confidence_gives_severity() -> R {
    let mut r = Rig::new();
    for (f, c) in [(1u64, Some(0.85)), (2, Some(0.6)), (3, Some(0.3)), (4, None)] {
        r.rf(rf_line("RF_CONTACT_NEW", 5_600_000_000 + f * 1_000_000, T0, c));
    }
    let snap = serde_json::to_value(r.st.snapshot())?;
    let sev: Vec<&str> = snap["contacts"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["severity"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(sev, ["high", "medium", "low", "unknown"]);
    Ok(())
}

#[test]
fn contacts_order_with_gps() -> R {
    let mut r = Rig::new();
    r.st.snap.gps = GpsState {
        fix: Some(Fix::Fix3d),
        latitude: Some(47.0),
        longitude: Some(8.0),
        ..Default::default()
    };
    r.rid(rid_line("CONTACT_NEW", "rid:far", T0, json!({"lat":47.5,"lon":8.0})));
    r.rid(rid_line(
        "CONTACT_NEW",
        "rid:near",
        T0 - 1000,
        json!({"lat":47.001,"lon":8.0}),
    ));
    r.rf(rf_line("RF_CONTACT_NEW", 5_700_000_000, T0, Some(0.9)));
    let snap = serde_json::to_value(r.st.snapshot())?;
    let ids: Vec<&str> = snap["contacts"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["id"].as_str()).collect())
        .unwrap_or_default();
    // high: near RemoteID (distance known) before RF high; then medium far RemoteID
    assert_eq!(ids, ["rid:near", "rf:5700000000", "rid:far"]);
    Ok(())
}

#[test]
fn eviction_beyond_max_per_kind() {
    let mut cfg = AggregatorConfig::default();
    cfg.contacts.max_per_kind = 2;
    let mut r = Rig::with(cfg);
    r.rid(rid_line("CONTACT_NEW", "rid:1", T0 - 2000, json!({})));
    r.rid(rid_line("CONTACT_NEW", "rid:2", T0 - 1000, json!({})));
    r.take();
    r.rid(rid_line("CONTACT_NEW", "rid:3", T0, json!({})));
    let ev = r.take();
    assert!(ev
        .iter()
        .any(|e| e["type"] == "CONTACT_LOST" && e["data"]["id"] == "rid:1"));
    assert_eq!(r.st.contacts.rid.len(), 2);
}

#[test]
fn rf_watchdog_missing_then_stale_transitions_only() {
    let mut r = Rig::new();
    let mut f = facts_ok();
    f.antsdr_exists = false;
    r.tick_with(&f);
    assert_eq!(r.st.snap.rf.status, RfStatus::Offline);
    assert_eq!(r.st.snap.rf.last_error.as_deref(), Some("rf_jsonl_missing"));
    let stamp = r.st.snap.rf.last_timestamp_ms;
    r.advance(3.0);
    r.tick_with(&f);
    assert_eq!(r.st.snap.rf.last_timestamp_ms, stamp, "not re-stamped while unchanged");
    // file appears, lines flow, then silence ≥ 15 s → degraded/stale
    r.rf(json!({"type":"RF_SCAN_STATS","timestamp_ms":T0,"data":{}}));
    assert_eq!(r.st.snap.rf.status, RfStatus::Ok);
    r.advance(14.0);
    r.tick();
    assert_eq!(r.st.snap.rf.status, RfStatus::Ok);
    r.advance(1.5);
    r.tick();
    assert_eq!(r.st.snap.rf.status, RfStatus::Degraded);
    assert_eq!(r.st.snap.rf.last_event_type.as_deref(), Some("RF_SCAN_STALE"));
    assert!(!r.st.snap.rf.scan_active);
    // an RF_SCAN_STATS every 5 s keeps an empty spectrum fresh
    for _ in 0..5 {
        r.rf(json!({"type":"RF_SCAN_STATS","timestamp_ms":T0,"data":{}}));
        r.advance(5.0);
        r.tick();
        assert_eq!(r.st.snap.rf.status, RfStatus::Ok);
    }
}

#[test]
fn remoteid_watchdog_chain() {
    let mut r = Rig::new();
    r.st.snap.services = vec![ServiceStatus {
        name: "ndefender-remoteid-engine".into(),
        active_state: "inactive".into(),
        sub_state: "dead".into(),
        restart_count: 0,
        uptime_s: None,
        last_restart_ms: None,
        last_error: None,
    }];
    r.advance(15.5);
    r.tick();
    assert_eq!(r.st.snap.remote_id.state, RemoteIdHealth::Offline);
    assert_eq!(
        r.st.snap.remote_id.last_error.as_deref(),
        Some("remoteid_service_inactive")
    );
    assert_eq!(r.st.snap.remote_id.last_event_type.as_deref(), Some("REMOTEID_STALE"));
    // unit active + interface up = quiet sky, not a fault
    r.st.snap.services[0].active_state = "active".into();
    r.tick();
    assert_eq!(r.st.snap.remote_id.state, RemoteIdHealth::Ok);
    assert_eq!(r.st.snap.remote_id.last_error, None);
    // interface down
    let mut f = facts_ok();
    f.capture_iface = Iface::State("down".into());
    r.tick_with(&f);
    assert_eq!(
        r.st.snap.remote_id.last_error.as_deref(),
        Some("capture_interface_down")
    );
    f.remoteid_exists = false;
    r.tick_with(&f);
    assert_eq!(
        r.st.snap.remote_id.last_error.as_deref(),
        Some("remoteid_jsonl_missing")
    );
    // next accepted line restores ok
    r.rid(rid_line("CONTACT_NEW", "rid:x", T0 + 31_000, json!({})));
    assert_eq!(r.st.snap.remote_id.state, RemoteIdHealth::Ok);
}

#[test]
fn snapshot_initial_all_down_all_valid() -> R {
    let r = Rig::new();
    r.snapshot_valid()?;
    let mut cfg = AggregatorConfig::default();
    cfg.esp32.enabled = false;
    cfg.system_controller.enabled = false;
    cfg.antsdr.enabled = false;
    cfg.remoteid.enabled = false;
    let r = Rig::with(cfg);
    r.snapshot_valid()?;
    assert!(
        r.st.overall_ok(),
        "all inputs disabled → nothing counts against overall_ok"
    );
    Ok(())
}

#[test]
fn overall_ok_requires_healthy_sections() {
    let mut r = Rig::new();
    assert!(!r.st.overall_ok());
    r.st.snap.system.status = Some(Status::Ok);
    r.st.snap.power.status = Some(Status::Ok);
    r.st.snap.audio.status = Some(Status::Ok);
    r.st.snap.esp32.connected = Some(true);
    r.st.snap.remote_id.state = RemoteIdHealth::Replay;
    // rf unknown counts as fine
    assert!(r.st.overall_ok());
    r.st.snap.esp32.connected = Some(false);
    assert!(!r.st.overall_ok());
}

#[test]
fn remoteid_v11_fields_are_kept_on_the_contact() -> R {
    let mut r = Rig::new();
    let v11 = json!({
        "heading_deg": 271.0, "vspeed_m_s": -1.5, "height_agl_m": 35.5,
        "ua_type": "helicopter_or_multirotor", "operator_lat": 23.02, "operator_lon": 72.57,
        "operator_alt_m": 50.0, "operator_location_type": "takeoff", "transport": "wifi_nan",
        "mac": "60:60:1f:a2:b3:c4", "rssi_dbm": -61.0
    });
    r.rid(rid_line("CONTACT_NEW", "rid:V", T0, v11.clone()));
    let ev = r.take();
    for (k, v) in v11.as_object().ok_or("obj")? {
        assert_eq!(&ev[0]["data"][k], v, "{k}");
    }
    // Sticky across an update that does not repeat them; invalid values are dropped, not kept.
    r.rid(rid_line(
        "CONTACT_UPDATE",
        "rid:V",
        T0 + 500,
        json!({"mac": "60-60-1F-A2-B3-C4", "heading_deg": 400.0, "transport": "carrier_pigeon", "operator_lat": 1.0}),
    ));
    let ev = r.take();
    for (k, v) in v11.as_object().ok_or("obj")? {
        assert_eq!(&ev[0]["data"][k], v, "{k} after update");
    }
    let c = serde_json::to_value(&r.st.snapshot().contacts)?;
    assert_eq!(c[0]["transport"], "wifi_nan");
    assert_eq!(c[0]["operator_lat"], 23.02);
    schemas().validate("Contact.json", &c[0])?;
    r.snapshot_valid()
}
