//! Every contract type round-trips and validates against its schema in
//! ../shared/contract/schemas; every schema also rejects a broken document
//! (extra key, null), so the checks below cannot pass vacuously.

use ndefender_contract::command::{CommandResult, ContactList};
use ndefender_contract::contact::*;
use ndefender_contract::devices::*;
use ndefender_contract::enums::*;
use ndefender_contract::events::*;
use ndefender_contract::schema::{bundled_schema_dir, shared_schema_dir, Schemas};
use ndefender_contract::snapshot::StatusSnapshot;
use ndefender_contract::system::*;
use ndefender_contract::{Envelope, Source, TimestampField};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::fmt::Debug;

type R = Result<(), Box<dyn std::error::Error>>;

fn schemas() -> Schemas {
    match Schemas::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot load schemas: {e}");
            std::process::abort()
        }
    }
}

/// Serialises, validates, deserialises back and compares; then checks the schema
/// rejects the same document with an extra key.
fn check<T>(s: &Schemas, target: &str, value: &T) -> R
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let doc = serde_json::to_value(value)?;
    s.validate(target, &doc)?;
    ndefender_contract::schema::no_nulls_or_empty_objects(&doc).map_err(|e| format!("{target}: {e}"))?;
    let back: T = serde_json::from_value(doc.clone())?;
    assert_eq!(&back, value, "{target} round trip");
    assert_eq!(serde_json::to_value(&back)?, doc);
    let mut extra = doc.clone();
    if let Value::Object(m) = &mut extra {
        m.insert("bogus_extra_key".into(), json!(1));
    }
    assert!(s.validate(target, &extra).is_err(), "{target} accepted an extra key");
    if let Value::Object(m) = &doc {
        if let Some(k) = m.keys().next() {
            let mut nulled = doc.clone();
            nulled[k.as_str()] = Value::Null;
            assert!(s.validate(target, &nulled).is_err(), "{target} accepted null {k}");
        }
    }
    Ok(())
}

fn check_envelope(s: &Schemas, env: &Envelope) -> R {
    for tf in [TimestampField::TimestampMs, TimestampField::Timestamp] {
        for seq in [None, Some(7)] {
            let v: Value = serde_json::from_str(&env.to_json(seq, tf))?;
            s.validate_envelope(&v)?;
        }
    }
    // negative: an extra member in data must be refused for every schema-backed type
    let mut v: Value = serde_json::from_str(&env.to_json(None, TimestampField::TimestampMs))?;
    v["data"]["bogus_extra_key"] = json!(1);
    let schema_backed = !matches!(env.kind(), "ESP32_TELEMETRY" | "RF_SCAN_STATS");
    if schema_backed {
        assert!(
            s.validate_envelope(&v).is_err(),
            "{} accepted an extra data key",
            env.kind()
        );
    }
    // negative: an extra top-level key is refused for every type
    let mut v: Value = serde_json::from_str(&env.to_json(None, TimestampField::TimestampMs))?;
    v["extra"] = json!(1);
    assert!(
        s.validate_envelope(&v).is_err(),
        "{} accepted an extra envelope key",
        env.kind()
    );
    Ok(())
}

fn rf_data() -> RfContactData {
    RfContactData {
        id: "rf:5658000000".into(),
        freq_hz: 5658000000.0,
        bucket_hz: 5658000000.0,
        band: "5G8".into(),
        snr_db: 31.5,
        peak_db: -38.2,
        noise_floor_db: -69.7,
        bandwidth_class: "wide".into(),
        confidence: 0.63,
        features: RfFeatures {
            prominence_db: 29.8,
            cluster_size: 3686,
            pattern_hint: "raceband_r1".into(),
            hop_hint: "none".into(),
            bandwidth_est_hz: 18_000_000.0,
            burstiness: 0.0,
            hop_rate_hz: 0.0,
            control_score: 0.0,
            class_path: vec!["Analog".into(), "Video".into(), "RaceBand".into(), "R1".into()],
            classification_confidence: 0.95,
            control_correlation: false,
        },
    }
}

fn rid_contact() -> RemoteIdContact {
    RemoteIdContact {
        id: "rid:1581F5FJD239C00DW22E".into(),
        kind: RemoteIdTag::RemoteId,
        source: RemoteIdSourceTag::Remoteid,
        last_seen_ts: 1772140777119,
        severity: Severity::Medium,
        fields: RemoteIdFields {
            model: Some("DJI Mini 3".into()),
            operator_id: Some("GBR-OP-123ABCD".into()),
            lat: Some(23.0225),
            lon: Some(72.5714),
            altitude_m: Some(120.0),
            speed_m_s: Some(12.5),
            ..Default::default()
        },
    }
}

fn contacts() -> Vec<Contact> {
    vec![
        Contact::RemoteId(rid_contact()),
        Contact::Rf(RfContact {
            kind: RfTag::Rf,
            source: AntsdrSourceTag::Antsdr,
            last_seen_ts: 1772140777119,
            severity: Severity::Medium,
            data: rf_data(),
            seen_by: None,
        }),
        Contact::Fpv(FpvContact {
            id: "fpv:1".into(),
            kind: FpvTag::Fpv,
            source: Esp32SourceTag::Esp32,
            last_seen_ts: 1772140777119,
            severity: Severity::Unknown,
            vrx_id: 1,
            freq_hz: 5740000000.0,
            rssi_raw: 219,
            selected: 1,
            last_seen_uptime_ms: Some(123456),
            seen_by: None,
        }),
    ]
}

fn system_stats() -> SystemStats {
    SystemStats {
        timestamp_ms: Some(1),
        status: Some(Status::Ok),
        uptime_s: Some(5321),
        version: Some(VersionInfo {
            app: Some("ndefender-system-controller".into()),
            git_sha: Some("3f2a9c1".into()),
            build_ts: Some(1699990000000),
        }),
        cpu: Some(CpuStats {
            temp_c: Some(45.2),
            load1: Some(0.4),
            load5: Some(0.3),
            load15: Some(0.2),
            usage_percent: Some(12.5),
        }),
        ram: Some(RamStats {
            total_mb: Some(16000),
            used_mb: Some(1800),
            free_mb: Some(14100),
        }),
        storage: Some(StorageStats {
            root: Some(DiskUsage {
                total_gb: Some(58.2),
                used_gb: Some(9.8),
                free_gb: Some(45.3),
            }),
            logs: None,
        }),
        last_error: None,
        cpu_temp_c: Some(45.2),
        cpu_usage_percent: Some(12.5),
        load_1m: Some(0.4),
        load_5m: Some(0.3),
        load_15m: Some(0.2),
        ram_used_mb: Some(1800),
        ram_total_mb: Some(16000),
        disk_used_gb: Some(9),
        disk_total_gb: Some(58),
        throttled_flags: Some(0),
    }
}

fn ups() -> UpsTelemetry {
    UpsTelemetry {
        timestamp_ms: Some(1),
        status: Some(Status::Ok),
        pack_voltage_v: Some(16.42),
        current_a: Some(-0.84),
        input_vbus_v: Some(0.0),
        input_power_w: Some(0.0),
        soc_percent: Some(91),
        time_to_empty_s: Some(16200),
        time_to_full_s: None,
        per_cell_v: Some(vec![4.1, 4.11, 4.1, 4.11]),
        state: Some(UpsState::Discharging),
        last_error: None,
    }
}

fn gps() -> GpsState {
    GpsState {
        timestamp_ms: Some(1),
        fix: Some(Fix::Fix3d),
        satellites: Some(Satellites {
            in_view: Some(14),
            in_use: Some(9),
        }),
        hdop: Some(0.9),
        vdop: Some(1.4),
        pdop: Some(1.7),
        latitude: Some(47.3769),
        longitude: Some(8.5417),
        altitude_m: Some(408.2),
        speed_m_s: Some(0.0),
        heading_deg: Some(0.0),
        last_update_ms: Some(1),
        age_ms: Some(200),
        source: Some("gpsd".into()),
        last_error: None,
    }
}

fn wifi() -> WifiState {
    WifiState {
        timestamp_ms: Some(1),
        enabled: Some(true),
        connected: Some(true),
        ssid: Some("KitNet".into()),
        bssid: Some("a4:2b:b0:11:22:33".into()),
        ip: Some("192.168.50.20".into()),
        rssi_dbm: Some(-52),
        link_quality: Some(80),
        last_update_ms: Some(1),
        last_error: None,
    }
}

fn bluetooth() -> BluetoothState {
    BluetoothState {
        timestamp_ms: Some(1),
        enabled: Some(true),
        scanning: Some(false),
        paired_count: Some(1),
        connected_devices: Some(vec![BluetoothConnected {
            addr: Some("00:11:22:33:44:55".into()),
            name: Some("Headset".into()),
            rssi_dbm: Some(-60),
        }]),
        last_update_ms: Some(1),
        last_error: None,
    }
}

fn network() -> NetworkState {
    NetworkState {
        connected: true,
        ssid: Some("KitNet".into()),
        ip_v4: Some("192.168.50.20".into()),
        ip_v6: Some("fe80::1".into()),
        wifi: Some(wifi()),
        bluetooth: Some(bluetooth()),
    }
}

fn services() -> Vec<ServiceStatus> {
    vec![ServiceStatus {
        name: "gpsd".into(),
        active_state: "active".into(),
        sub_state: "running".into(),
        restart_count: 0,
        uptime_s: Some(4600),
        last_restart_ms: Some(1699995400000),
        last_error: None,
    }]
}

fn full_snapshot() -> StatusSnapshot {
    let mut s = StatusSnapshot::initial(1772140777119);
    s.overall_ok = true;
    s.system = system_stats();
    s.power = ups();
    s.gps = gps();
    s.network = network();
    s.services = services();
    s.audio = AudioState {
        timestamp_ms: Some(1),
        status: Some(Status::Ok),
        volume_percent: Some(60),
        muted: Some(false),
        last_error: None,
    };
    s.contacts = contacts();
    s.rf = RfSection {
        status: RfStatus::Ok,
        scan_active: true,
        last_error: None,
        last_event_type: Some("RF_CONTACT_NEW".into()),
        last_event: serde_json::to_value(rf_data())
            .ok()
            .and_then(|v| v.as_object().cloned()),
        last_timestamp_ms: Some(1),
    };
    s.vrx = VrxSection {
        selected: Some(1),
        scan_state: "idle".into(),
        vrx: vec![VrxItem {
            id: 1,
            freq_hz: 5740000000.0,
            rssi_raw: 219,
        }],
        led: Some(LedState { r: 0, y: 1, g: 0 }),
        sys: VrxSys {
            uptime_ms: Some(123456),
            heap: Some(312345),
            status: Some("CONNECTED".into()),
            last_error: None,
        },
    };
    s.fpv = FpvSection {
        selected: Some(1),
        scan_state: "idle".into(),
        freq_hz: Some(5740000000.0),
        rssi_raw: Some(219),
        locked_channels: vec![],
    };
    s.video = VideoSection {
        selected: Some(1),
        status: VideoStatus::Ok,
    };
    s.esp32 = Esp32State {
        timestamp_ms: Some(1),
        connected: Some(true),
        last_seen_ms: Some(1),
        rtt_ms: Some(4),
        fw_version: None,
        heartbeat: Some(Esp32Heartbeat {
            ok: Some(true),
            interval_ms: Some(1000),
            last_heartbeat_ms: Some(1),
        }),
        capabilities: Some(Esp32Capabilities::PANEL_FIRMWARE),
        last_error: None,
    };
    s.replay = ReplaySection {
        active: true,
        source: "remoteid".into(),
    };
    s
}

#[test]
fn model_schemas() -> R {
    let s = schemas();
    check(&s, "SystemStats.json", &system_stats())?;
    check(&s, "UPS_Telemetry.json", &ups())?;
    check(&s, "GPSState.json", &gps())?;
    check(&s, "WifiState.json", &wifi())?;
    check(&s, "BluetoothState.json", &bluetooth())?;
    check(&s, "StatusSnapshot.json#/$defs/network_state", &network())?;
    check(
        &s,
        "AudioState.json",
        &AudioState {
            timestamp_ms: Some(1),
            status: Some(Status::Degraded),
            volume_percent: Some(60),
            muted: Some(false),
            last_error: Some("probe_pending".into()),
        },
    )?;
    check(
        &s,
        "WifiScanResult.json",
        &WifiScanResult {
            timestamp_ms: Some(1),
            networks: Some(vec![WifiNetwork {
                ssid: Some("KitNet".into()),
                bssid: Some("a4:2b:b0:11:22:33".into()),
                security: Some("wpa2".into()),
                signal_dbm: Some(-52),
                channel: Some(6),
                frequency_mhz: Some(2437),
                known: Some(true),
            }]),
        },
    )?;
    check(
        &s,
        "BluetoothDeviceList.json",
        &BluetoothDeviceList {
            timestamp_ms: Some(1),
            devices: Some(vec![BluetoothDevice {
                addr: Some("C8:3A:35:10:20:30".into()),
                name: None,
                rssi_dbm: Some(-67),
                paired: Some(false),
                connected: Some(false),
            }]),
        },
    )?;
    check(
        &s,
        "AntSDRDeviceState.json",
        &AntsdrDeviceState {
            timestamp_ms: Some(1),
            connected: Some(true),
            uri: Some("ip:192.168.10.2".into()),
            temperature_c: Some(48.5),
            last_error: None,
        },
    )?;
    check(
        &s,
        "AntSDRGainState.json",
        &AntsdrGainState {
            timestamp_ms: Some(1),
            mode: Some(GainMode::Manual),
            gain_db: Some(40.0),
            limits: Some(GainLimits {
                min_db: Some(0.0),
                max_db: Some(71.0),
            }),
        },
    )?;
    check(
        &s,
        "AntSDRStats.json",
        &AntsdrStats {
            timestamp_ms: Some(1),
            frames_processed: Some(1200),
            events_emitted: Some(37),
            last_event_timestamp_ms: Some(1),
            noise_floor_db: Some(-70.5),
            peaks: Some(3),
            last_error: None,
        },
    )?;
    check(
        &s,
        "AntSDRSweepState.json",
        &AntsdrSweepState {
            timestamp_ms: Some(1),
            running: Some(true),
            active_plan: Some("fpv_5g8".into()),
            plans: Some(vec![SweepPlanSummary {
                name: Some("fpv_5g8".into()),
                start_hz: Some(5.645e9),
                end_hz: Some(5.945e9),
                step_hz: Some(16e6),
            }]),
            last_update_ms: Some(1),
            last_error: None,
        },
    )?;
    check(
        &s,
        "RemoteIDState.json",
        &RemoteIdStateBody {
            timestamp_ms: Some(1),
            state: Some(RemoteIdHealth::Ok),
            mode: Some(RemoteIdMode::Live),
            capture_active: Some(true),
            contacts_active: Some(1),
            last_update_ms: Some(1),
            last_error: None,
        },
    )?;
    check(
        &s,
        "RemoteIDStats.json",
        &RemoteIdStats {
            timestamp_ms: Some(1),
            frames: Some(10),
            decoded: Some(9),
            dropped: Some(1),
            dedupe_hits: Some(2),
            last_error: None,
        },
    )?;
    check(
        &s,
        "RemoteIDReplayState.json",
        &RemoteIdReplayStateBody {
            timestamp_ms: Some(1),
            active: Some(true),
            source: Some("remoteid".into()),
            state: Some("start".into()),
            speed: Some(1.0),
            position: Some(0),
            total: Some(200),
        },
    )?;
    check(&s, "ESP32State.json", &full_snapshot().esp32)?;
    let mut cfg = serde_json::Map::new();
    cfg.insert("port".into(), json!("/dev/ttyACM0"));
    check(
        &s,
        "ESP32Config.json",
        &Esp32ConfigBody {
            timestamp_ms: 1,
            schema_version: Some("1".into()),
            config: cfg,
        },
    )?;
    for c in contacts() {
        check(&s, "Contact.json", &c)?;
    }
    Ok(())
}

#[test]
fn snapshots_initial_and_full() -> R {
    let s = schemas();
    check(&s, "StatusSnapshot.json", &StatusSnapshot::initial(1772140777119))?;
    check(&s, "StatusSnapshot.json", &full_snapshot())?;
    // key order of aggregator §9.1
    let v = serde_json::to_value(full_snapshot())?;
    let keys: Vec<&str> = v
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "timestamp_ms",
            "overall_ok",
            "system",
            "power",
            "rf",
            "remote_id",
            "gps",
            "esp32",
            "antsdr",
            "vrx",
            "fpv",
            "video",
            "services",
            "network",
            "audio",
            "contacts",
            "replay"
        ]
    );
    Ok(())
}

#[test]
fn event_envelopes() -> R {
    let s = schemas();
    let t = 1772140777119;
    let rid = rid_contact();
    let envs = vec![
        Envelope::new(kind::SYSTEM_UPDATE, t, Source::Aggregator, &full_snapshot())?,
        Envelope::new(kind::HEARTBEAT, t, Source::Aggregator, &Heartbeat { timestamp_ms: t })?,
        Envelope::new(
            kind::COMMAND_ACK,
            t,
            Source::Esp32,
            &Esp32CommandAck {
                id: "9b2e".into(),
                ok: false,
                err: Some("freq_oob".into()),
                data: Some(AckCmd {
                    cmd: "SET_VRX_FREQ".into(),
                }),
            },
        )?,
        Envelope::new(
            kind::COMMAND_ACK,
            t,
            Source::Esp32,
            &Esp32CommandAck {
                id: "9b2e".into(),
                ok: true,
                err: None,
                data: None,
            },
        )?,
        Envelope::new(
            kind::COMMAND_ACK,
            t,
            Source::System,
            &SystemCommandAck::ok("audio/volume"),
        )?,
        Envelope::new(
            kind::COMMAND_ACK,
            t,
            Source::System,
            &SystemCommandAck::failed("services/restart", "unit_not_allowed").with_name("sshd"),
        )?,
        Envelope::new(kind::LOG_EVENT, t, Source::System, &LogEvent::message("HELLO"))?,
        Envelope::new(
            kind::LOG_EVENT,
            t,
            Source::Aggregator,
            &LogEvent::with(LogLevel::Warn, "esp32", "serial_eof", "esp32 link lost"),
        )?,
        Envelope::new(kind::CONTACT_NEW, t, Source::Remoteid, &rid.event_data())?,
        Envelope::new(kind::CONTACT_UPDATE, t, Source::Remoteid, &rid.event_data())?,
        Envelope::new(kind::CONTACT_LOST, t, Source::Remoteid, &rid.lost_data())?,
        Envelope::new(kind::RF_CONTACT_NEW, t, Source::Antsdr, &rf_data())?,
        Envelope::new(kind::RF_CONTACT_UPDATE, t, Source::Antsdr, &rf_data())?,
        Envelope::new(kind::RF_CONTACT_LOST, t, Source::Antsdr, &rf_data())?,
        Envelope::new(
            kind::TELEMETRY_UPDATE,
            t,
            Source::Remoteid,
            &TelemetryUpdate {
                state: RemoteIdHealth::Ok,
                last_update_ms: t,
                contacts_active: 1,
                mode: RemoteIdMode::Live,
            },
        )?,
        Envelope::new(
            kind::REPLAY_STATE,
            t,
            Source::Remoteid,
            &ReplayStateEvent {
                state: "start".into(),
                speed: 1.0,
                position: Some(0),
                total: Some(200),
                ts: Some(t),
            },
        )?,
        Envelope::new(kind::SYSTEM_STATUS, t, Source::System, &system_stats())?,
        Envelope::new(kind::UPS_UPDATE, t, Source::System, &ups())?,
        Envelope::new(
            kind::SERVICE_UPDATE,
            t,
            Source::System,
            &ServiceUpdate { services: services() },
        )?,
        Envelope::new(kind::NETWORK_UPDATE, t, Source::System, &network())?,
        Envelope::new(kind::GPS_UPDATE, t, Source::System, &gps())?,
        Envelope::new(
            kind::AUDIO_UPDATE,
            t,
            Source::System,
            &AudioState {
                timestamp_ms: Some(1),
                status: Some(Status::Ok),
                volume_percent: Some(60),
                muted: Some(false),
                last_error: None,
            },
        )?,
        Envelope::new(
            kind::SUBSCRIBED,
            t,
            Source::Aggregator,
            &SubscriptionReply {
                events: vec!["RF_CONTACT_*".into()],
                active: vec!["RF_CONTACT_*".into()],
            },
        )?,
        Envelope::new(
            kind::UNSUBSCRIBED,
            t,
            Source::Aggregator,
            &SubscriptionReply {
                events: vec![],
                active: vec![],
            },
        )?,
        Envelope::new(
            kind::PONG,
            t,
            Source::Antsdr,
            &Pong {
                timestamp_ms: t,
                id: Some("c1".into()),
            },
        )?,
        Envelope::new(
            kind::ERROR,
            t,
            Source::System,
            &ControlError {
                code: "too_many_patterns".into(),
                message: "at most 100 patterns".into(),
            },
        )?,
        Envelope::new(
            kind::RF_SCAN_STATS,
            t,
            Source::Antsdr,
            &RfScanStats {
                timestamp_ms: t,
                frames_processed: 1200,
                events_emitted: 37,
                noise_floor_db: Some(-70.0),
                peaks: Some(2),
                active_plan: None,
            },
        )?,
    ];
    for e in &envs {
        check_envelope(&s, e).map_err(|err| format!("{}: {err}", e.kind()))?;
    }
    // every catalogue type is covered above except pass-through ESP32_TELEMETRY
    for k in kind::ALL {
        if *k != kind::ESP32_TELEMETRY {
            assert!(envs.iter().any(|e| e.kind() == *k), "no envelope test for {k}");
        }
    }
    Ok(())
}

#[test]
fn schema_rejections_that_matter() -> R {
    let s = schemas();
    // uppercase status (the Python reference's DEGRADED)
    assert!(s.validate("SystemStats.json", &json!({"status":"DEGRADED"})).is_err());
    // nulls anywhere in an envelope are refused except COMMAND_ACK err/reason
    let env = json!({"type":"GPS_UPDATE","timestamp_ms":1,"source":"system","data":{"fix":"FIX_3D","hdop":null}});
    assert!(s.validate_envelope(&env).is_err());
    let ack =
        json!({"type":"COMMAND_ACK","timestamp_ms":1,"source":"system","data":{"command":"x","ok":true,"reason":null}});
    s.validate_envelope(&ack)?;
    // RF contact data must not carry contact-only keys
    let mut rf = serde_json::to_value(rf_data())?;
    rf["severity"] = json!("high");
    let env = json!({"type":"RF_CONTACT_NEW","timestamp_ms":1,"source":"antsdr","data":rf});
    assert!(s.validate_envelope(&env).is_err());
    // an aggregator envelope with both timestamp keys is refused
    let env =
        json!({"type":"HEARTBEAT","timestamp_ms":1,"timestamp":1,"source":"aggregator","data":{"timestamp_ms":1}});
    assert!(s.validate_envelope(&env).is_err());
    Ok(())
}

#[test]
fn tolerant_input_side() -> R {
    // unknown keys dropped, nulls → omitted, odd enum spelling mapped
    let g: GpsState =
        serde_json::from_value(json!({"fix":"fix_2d","hdop":null,"extra":1,"latitude":95.0,"longitude":1.0}))?;
    let mut g = g;
    g.sanitize();
    assert_eq!(g.fix, Some(Fix::Fix2d));
    assert_eq!(g.latitude, None);
    assert_eq!(g.longitude, None);
    let u: UpsTelemetry = serde_json::from_value(json!({"status":"OK","state":"charging","soc_percent":50}))?;
    assert_eq!(u.status, Some(Status::Ok));
    assert_eq!(u.state, Some(UpsState::Charging));
    // NaN is omitted on output, never null
    let u = UpsTelemetry {
        pack_voltage_v: Some(f64::NAN),
        status: Some(Status::Ok),
        ..Default::default()
    };
    assert_eq!(serde_json::to_string(&u)?, r#"{"status":"ok"}"#);
    Ok(())
}

#[test]
fn command_result_and_contact_list() -> R {
    let r = CommandResult::accepted("vrx/tune", "9b2e6f5e-3c0a-4f64-9d7e-0c9a1c3e5b11", 1772140777119);
    assert_eq!(
        serde_json::to_string(&r)?,
        r#"{"command":"vrx/tune","command_id":"9b2e6f5e-3c0a-4f64-9d7e-0c9a1c3e5b11","accepted":true,"detail":null,"timestamp_ms":1772140777119}"#
    );
    let s = schemas();
    let list = ContactList {
        timestamp_ms: 1,
        contacts: contacts(),
    };
    let v = serde_json::to_value(&list)?;
    for c in v["contacts"].as_array().into_iter().flatten() {
        s.validate("Contact.json", c)?;
    }
    Ok(())
}

#[test]
fn bundled_copy_matches_shared() -> R {
    let shared = shared_schema_dir();
    if !shared.is_dir() {
        eprintln!("shared schemas absent; skipping copy check");
        return Ok(());
    }
    let mut names = Vec::new();
    for e in std::fs::read_dir(&shared)? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let a: Value = serde_json::from_str(&std::fs::read_to_string(&p)?)?;
        let b: Value = serde_json::from_str(&std::fs::read_to_string(bundled_schema_dir().join(&name))?)?;
        assert_eq!(a, b, "{name} differs from the shared copy");
        names.push(name);
    }
    assert!(names.len() >= 26, "expected the full schema set, got {}", names.len());
    Ok(())
}
