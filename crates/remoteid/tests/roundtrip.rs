//! Encoder → frame → decoder, for every message type and transport, with each field's edges.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ndefender_contract::contact::RemoteIdTransport;
use ndefender_remoteid::decode::{observe, Counters, Observation};
use ndefender_remoteid::encode::{self, LocationIn, Msg, SystemIn};
use ndefender_remoteid::link::{self, parse_frame, FrameError};
use ndefender_remoteid::odid::{decode_message, HeightRef, IdType, Message, MessageError, Messages};

const MAC: [u8; 6] = [0x60, 0x60, 0x1f, 0xa2, 0xb3, 0xc4];

/// Tests keep decoded messages around; leaking the 25 bytes is fine here.
fn dm(m: Msg) -> Message<'static> {
    decode_message(Box::leak(Box::new(m))).unwrap()
}

fn loc(l: &LocationIn) -> ndefender_remoteid::odid::Location {
    match decode_message(&encode::location(l)).unwrap() {
        Message::Location(x) => x,
        m => panic!("{m:?}"),
    }
}

#[test]
fn location_edges() {
    // Everything unknown → every field absent.
    let u = loc(&LocationIn::default());
    assert_eq!(
        (u.direction_deg, u.speed_m_s, u.vspeed_m_s, u.lat, u.lon),
        (None, None, None, None, None)
    );
    assert_eq!(
        (u.pressure_alt_m, u.geodetic_alt_m, u.height_m, u.timestamp_ds),
        (None, None, None, None)
    );
    assert_eq!(
        (u.horiz_accuracy_m, u.vert_accuracy_m, u.speed_accuracy_m_s),
        (None, None, None)
    );
    // Extremes that are valid.
    let e = loc(&LocationIn {
        status: 2,
        direction_deg: Some(359.0),
        speed_m_s: Some(254.25),
        vspeed_m_s: Some(-62.0),
        lat: Some(-90.0),
        lon: Some(180.0),
        pressure_alt_m: Some(-999.5),
        geodetic_alt_m: Some(31767.5),
        height_m: Some(0.0),
        height_agl: true,
        horiz_acc: 12,
        vert_acc: 6,
        baro_acc: 1,
        speed_acc: 4,
        timestamp_ds: Some(36000),
        ts_acc: 15,
    });
    assert_eq!(e.status, Some("airborne"));
    assert_eq!(e.direction_deg, Some(359.0));
    assert_eq!(e.speed_m_s, Some(254.25));
    assert_eq!(e.vspeed_m_s, Some(-62.0));
    assert_eq!((e.lat, e.lon), (Some(-90.0), Some(180.0)));
    assert_eq!(e.pressure_alt_m, Some(-999.5));
    assert_eq!(e.geodetic_alt_m, Some(31767.5));
    assert_eq!(e.height_m, Some(0.0));
    assert_eq!(e.height_ref, HeightRef::Ground);
    assert_eq!(e.horiz_accuracy_m, Some(1.0));
    assert_eq!(e.vert_accuracy_m, Some(1.0));
    assert_eq!(e.baro_accuracy_m, Some(150.0));
    assert_eq!(e.speed_accuracy_m_s, Some(0.3));
    assert_eq!(e.timestamp_ds, Some(36000));
    assert!((e.timestamp_accuracy_s.unwrap() - 1.5).abs() < 1e-9);
    // The speed multiplier boundary and direction halves.
    let b = loc(&LocationIn {
        direction_deg: Some(180.0),
        speed_m_s: Some(63.75),
        vspeed_m_s: Some(0.5),
        lat: Some(1e-7),
        lon: Some(-1e-7),
        ..Default::default()
    });
    assert_eq!(b.direction_deg, Some(180.0));
    assert_eq!(b.speed_m_s, Some(63.75));
    assert_eq!(b.vspeed_m_s, Some(0.5));
    assert!((b.lat.unwrap() - 1e-7).abs() < 1e-12);
    let c = loc(&LocationIn {
        direction_deg: Some(0.0),
        speed_m_s: Some(64.5),
        ..Default::default()
    });
    assert_eq!(c.direction_deg, Some(0.0));
    assert_eq!(c.speed_m_s, Some(64.5));
    // Raw invalid values: lat beyond 90, direction byte beyond 179, vspeed sentinel, reserved
    // status and accuracies beyond their tables → absent.
    let mut raw = encode::location(&LocationIn {
        lat: Some(10.0),
        lon: Some(10.0),
        ..Default::default()
    });
    raw[5..9].copy_from_slice(&(910_000_000i32).to_le_bytes());
    raw[1] = 0xF0;
    raw[2] = 200;
    raw[4] = 126;
    raw[19] = 0xFF;
    raw[21..23].copy_from_slice(&36001u16.to_le_bytes());
    let Message::Location(r) = decode_message(&raw).unwrap() else {
        panic!()
    };
    assert_eq!(
        (r.lat, r.lon, r.status, r.direction_deg, r.vspeed_m_s),
        (None, None, None, None, None)
    );
    assert_eq!(
        (r.horiz_accuracy_m, r.vert_accuracy_m, r.timestamp_ds),
        (None, None, None)
    );
}

#[test]
fn basic_id_self_id_operator_id_system_auth_edges() {
    let Message::BasicId(b) = dm(encode::basic_id(1, 2, b"12345678901234567890")) else {
        panic!()
    };
    assert_eq!(b.id_type, IdType::SerialNumber);
    assert_eq!(b.ua_type, Some("helicopter_or_multirotor"));
    assert_eq!(b.uas_id.unwrap().to_text(), "12345678901234567890"); // full 20 chars
    let Message::BasicId(b) = dm(encode::basic_id(1, 15, b"")) else {
        panic!()
    };
    assert_eq!((b.uas_id, b.ua_type), (None, Some("other")));
    let Message::BasicId(b) = dm(encode::basic_id(3, 0, &[0xAB; 16])) else {
        panic!()
    };
    assert_eq!(b.uas_id.unwrap().to_text(), "ab".repeat(16));
    assert_eq!(b.ua_type, None);
    // A serial with a control byte is corrupt, not a name.
    assert_eq!(
        decode_message(&encode::basic_id(1, 2, b"AB\x07CD")),
        Err(MessageError::Invalid)
    );
    // Self-ID: 23 characters fill the field; trailing spaces dropped.
    let Message::SelfId(s) = dm(encode::self_id(0, b"ABCDEFGHIJKLMNOPQRSTUVW")) else {
        panic!()
    };
    assert_eq!(s.text, Some("ABCDEFGHIJKLMNOPQRSTUVW"));
    let Message::SelfId(s) = dm(encode::self_id(1, b"MAYDAY  ")) else {
        panic!()
    };
    assert_eq!((s.desc_type, s.text), (1, Some("MAYDAY")));
    let Message::OperatorId(o) = dm(encode::operator_id(0, b"GBR-OP-123ABCDEFGHIJ")) else {
        panic!()
    };
    assert_eq!(o.operator_id, Some("GBR-OP-123ABCDEFGHIJ"));
    // System: operator position, area, EU class, timestamps.
    let sys = SystemIn {
        location_type: 1,
        classification: 1,
        operator_lat: Some(89.9999999),
        operator_lon: Some(-179.9999999),
        area_count: 65535,
        area_radius_m: 2550,
        area_ceiling_m: Some(500.0),
        area_floor_m: Some(-1000.0 + 0.5),
        category: 2,
        class: 7,
        operator_alt_m: Some(12.5),
        timestamp_s: Some(1_700_000_000),
    };
    let Message::System(s) = dm(encode::system(&sys)) else {
        panic!()
    };
    assert_eq!(s.operator_location_type, Some("live_gnss"));
    assert_eq!((s.category_eu, s.class_eu), (Some("specific"), Some("class_6")));
    assert!((s.operator_lat.unwrap() - 89.9999999).abs() < 1e-9);
    assert_eq!((s.area_count, s.area_radius_m), (65535, 2550));
    assert_eq!(
        (s.area_ceiling_m, s.area_floor_m, s.operator_alt_m),
        (Some(500.0), Some(-999.5), Some(12.5))
    );
    assert_eq!(s.timestamp_s, Some(1_700_000_000));
    let Message::System(s) = dm(encode::system(&SystemIn {
        location_type: 3,
        ..Default::default()
    })) else {
        panic!()
    };
    assert_eq!(
        (
            s.operator_location_type,
            s.operator_lat,
            s.timestamp_s,
            s.operator_alt_m
        ),
        (None, None, None, None)
    );
    // Authentication: page 0 with its header, a later page, impossible headers refused.
    let Message::Auth(a) = dm(encode::auth_page0(1, 15, 255, 1_700_000_000, &[7; 17])) else {
        panic!()
    };
    assert_eq!(
        (a.page, a.last_page, a.length, a.timestamp_s),
        (0, Some(15), Some(255), Some(1_700_000_000))
    );
    assert_eq!(a.data, &[7; 17]);
    let Message::Auth(a) = dm(encode::auth_page(2, 15, &[9; 23])) else {
        panic!()
    };
    assert_eq!((a.auth_type, a.page, a.data.len()), (2, 15, 23));
    assert_eq!(
        decode_message(&encode::auth_page0(1, 16, 17, 0, &[])),
        Err(MessageError::Invalid)
    );
    assert_eq!(
        decode_message(&encode::auth_page0(1, 0, 18, 0, &[])),
        Err(MessageError::Invalid)
    );
    // Unknown types are named; short input is truncated.
    let mut m = [0u8; 25];
    m[0] = 0x62;
    assert_eq!(decode_message(&m), Err(MessageError::UnknownType(6)));
    assert_eq!(decode_message(&m[..24]), Err(MessageError::Truncated));
}

#[test]
fn packs_are_bounded() {
    let msgs: Vec<Msg> = (0..9).map(|i| encode::self_id(0, format!("m{i}").as_bytes())).collect();
    let p = encode::pack(&msgs);
    assert_eq!(p.len(), 3 + 9 * 25);
    assert_eq!(Messages::new(&p).filter(Result::is_ok).count(), 9);
    // Claims more messages than present, more than 9, another size, a nested pack.
    let mut short = p.clone();
    short.truncate(p.len() - 1);
    assert_eq!(
        Messages::new(&short).collect::<Vec<_>>(),
        vec![Err(MessageError::BadPack)]
    );
    let mut ten = p.clone();
    ten[2] = 10;
    ten.extend_from_slice(&msgs[0]);
    assert_eq!(
        Messages::new(&ten).collect::<Vec<_>>(),
        vec![Err(MessageError::BadPack)]
    );
    let mut size = p.clone();
    size[1] = 24;
    assert_eq!(
        Messages::new(&size).collect::<Vec<_>>(),
        vec![Err(MessageError::BadPack)]
    );
    let mut inner = [0u8; 25];
    inner[0] = 0xF2;
    let nested = encode::pack(&[inner]);
    assert_eq!(
        Messages::new(&nested).collect::<Vec<_>>(),
        vec![Err(MessageError::NestedPack)]
    );
    assert_eq!(Messages::new(&encode::pack(&[])).count(), 0);
}

fn full_set() -> Vec<Msg> {
    vec![
        encode::basic_id(1, 2, b"1581F5FJD239C00DW22E"),
        encode::location(&LocationIn {
            status: 2,
            direction_deg: Some(271.0),
            speed_m_s: Some(12.5),
            vspeed_m_s: Some(-1.5),
            lat: Some(23.0225123),
            lon: Some(72.5714456),
            geodetic_alt_m: Some(120.0),
            height_m: Some(35.5),
            height_agl: true,
            timestamp_ds: Some(1234),
            ..Default::default()
        }),
        encode::auth_page0(1, 0, 17, 1_700_000_000, &[1; 17]),
        encode::self_id(0, b"DJI Mini 3"),
        encode::system(&SystemIn {
            location_type: 0,
            operator_lat: Some(23.02),
            operator_lon: Some(72.57),
            operator_alt_m: Some(50.0),
            ..Default::default()
        }),
        encode::operator_id(0, b"GBR-OP-123ABCD"),
    ]
}

fn check(o: &Observation, transport: RemoteIdTransport, with_all: bool) {
    assert_eq!(o.transport, transport);
    assert_eq!(o.mac, Some(MAC));
    assert_eq!(o.uas_id.unwrap().to_text(), "1581F5FJD239C00DW22E");
    assert_eq!(o.ua_type, Some("helicopter_or_multirotor"));
    if with_all {
        let l = o.location.as_ref().unwrap();
        assert_eq!((l.lat, l.lon), (Some(23.0225123), Some(72.5714456)));
        assert_eq!(
            (l.direction_deg, l.speed_m_s, l.vspeed_m_s),
            (Some(271.0), Some(12.5), Some(-1.5))
        );
        assert_eq!(
            (l.geodetic_alt_m, l.height_m, l.height_ref),
            (Some(120.0), Some(35.5), HeightRef::Ground)
        );
        assert_eq!(o.self_id, Some("DJI Mini 3"));
        assert_eq!(o.operator_id, Some("GBR-OP-123ABCD"));
        let s = o.system.as_ref().unwrap();
        assert_eq!(
            (s.operator_location_type, s.operator_alt_m),
            (Some("takeoff"), Some(50.0))
        );
        assert_eq!(o.auth_pages, 1);
        assert_eq!(o.messages, 6);
    }
}

#[test]
fn every_transport_round_trips() {
    let pack = encode::pack(&full_set());
    let mut c = Counters::default();
    let f = encode::wifi_beacon(MAC, -40, 7, &pack);
    let o = observe(link::LINKTYPE_IEEE802_11_RADIOTAP, &f, 5, &mut c).unwrap();
    check(&o, RemoteIdTransport::WifiBeacon, true);
    assert_eq!((o.rssi_dbm, o.counter, o.ts_ms), (Some(-40), 7, 5));
    let f = encode::wifi_nan(MAC, -70, 8, &pack);
    let o = observe(link::LINKTYPE_IEEE802_11_RADIOTAP, &f, 5, &mut c).unwrap();
    check(&o, RemoteIdTransport::WifiNan, true);
    assert_eq!((o.rssi_dbm, o.counter), (Some(-70), 8));
    let f = encode::ble_long_range(MAC, -90, 9, &pack);
    let o = observe(link::LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR, &f, 5, &mut c).unwrap();
    check(&o, RemoteIdTransport::BleLongRange, true);
    assert_eq!((o.rssi_dbm, o.counter), (Some(-90), 9));
    // BT4 legacy carries one message per advertisement.
    let f = encode::ble_legacy(MAC, 10, &full_set()[0]);
    let o = observe(link::LINKTYPE_BLUETOOTH_LE_LL, &f, 5, &mut c).unwrap();
    check(&o, RemoteIdTransport::BleLegacy, false);
    assert_eq!(c.odid_frames, 4);
    assert_eq!(c.dropped(), 0);
    // Every message type alone on the legacy transport.
    for m in full_set() {
        let f = encode::ble_legacy(MAC, 1, &m);
        assert_eq!(
            observe(link::LINKTYPE_BLUETOOTH_LE_LL, &f, 0, &mut c).unwrap().messages,
            1
        );
    }
    // A flipped bit breaks the BLE CRC: refused, counted.
    let mut f = encode::ble_legacy(MAC, 10, &full_set()[0]);
    f[12] ^= 1;
    assert_eq!(parse_frame(link::LINKTYPE_BLUETOOTH_LE_LL, &f), Err(FrameError::BadCrc));
}

#[test]
fn every_prefix_of_every_frame_is_refused_or_decoded_never_read_past() {
    let pack = encode::pack(&full_set());
    let frames = [
        (
            link::LINKTYPE_IEEE802_11_RADIOTAP,
            encode::wifi_beacon(MAC, -40, 7, &pack),
        ),
        (link::LINKTYPE_IEEE802_11_RADIOTAP, encode::wifi_nan(MAC, -40, 7, &pack)),
        (
            link::LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR,
            encode::ble_long_range(MAC, -40, 7, &pack),
        ),
        (
            link::LINKTYPE_BLUETOOTH_LE_LL,
            encode::ble_legacy(MAC, 7, &full_set()[1]),
        ),
    ];
    for (lt, f) in frames {
        let mut c = Counters::default();
        for n in 0..f.len() {
            // Any cut either fails cleanly or (for 802.11, where the vendor element can still
            // be whole) decodes; it never panics and never yields a partial pack.
            if let Some(o) = observe(lt, &f[..n], 0, &mut c) {
                assert!(o.messages == 6 || o.messages == 1);
            }
        }
        assert_eq!(c.frames as usize, f.len());
    }
}

/// BlueZ service-data records (the D-Bus BLE source): one message fits a legacy advertisement,
/// a pack can only have come in an extended one; other application codes and short records
/// yield nothing.
#[test]
fn bluez_service_data_records() {
    let basic = encode::basic_id(1, 2, b"BLUEZ0001");
    let mut one = vec![link::ODID_APP_CODE, 5];
    one.extend_from_slice(&basic);
    assert_eq!(one.len(), link::BLE_LEGACY_MAX_SERVICE_DATA);
    let rec = link::bluez_record(MAC, Some(-70), &one);
    let f = parse_frame(link::LINKTYPE_BLUEZ_SERVICE_DATA, &rec).unwrap();
    assert_eq!(
        (f.transport, f.mac, f.rssi_dbm, f.counter),
        (RemoteIdTransport::BleLegacy, Some(MAC), Some(-70), 5)
    );
    let mut c = Counters::default();
    let o = observe(link::LINKTYPE_BLUEZ_SERVICE_DATA, &rec, 1, &mut c).unwrap();
    assert_eq!(o.messages, 1);

    let mut pack = vec![link::ODID_APP_CODE, 6];
    pack.extend(encode::pack(&full_set()));
    let rec = link::bluez_record(MAC, None, &pack);
    let o = observe(link::LINKTYPE_BLUEZ_SERVICE_DATA, &rec, 1, &mut c).unwrap();
    check(&o, RemoteIdTransport::BleLongRange, true);
    assert_eq!(o.rssi_dbm, None);

    let other = link::bluez_record(MAC, Some(-70), &[0x0E, 1, 2, 3]);
    assert_eq!(
        parse_frame(link::LINKTYPE_BLUEZ_SERVICE_DATA, &other),
        Err(FrameError::NotOdid)
    );
    for n in 0..9 {
        assert_eq!(
            parse_frame(link::LINKTYPE_BLUEZ_SERVICE_DATA, &rec[..n]),
            Err(FrameError::Truncated),
            "{n}"
        );
    }
}
