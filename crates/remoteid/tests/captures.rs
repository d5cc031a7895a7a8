//! The shipped real captures (../shared/remoteid-samples, relative to the workspace root).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ndefender_contract::contact::RemoteIdTransport;
use ndefender_remoteid::capture::FileCapture;
use ndefender_remoteid::decode::{mac_text, observe, Counters};
use std::collections::BTreeSet;
use std::path::PathBuf;

pub fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/remoteid-samples")
        .join(name)
}

#[derive(Default, Debug)]
struct Seen {
    ids: BTreeSet<String>,
    operators: BTreeSet<String>,
    self_ids: BTreeSet<String>,
    macs: BTreeSet<String>,
    transports: BTreeSet<String>,
    positions: Vec<(f64, f64)>,
    operator_positions: Vec<(f64, f64)>,
    frames_with_odid: usize,
}

fn scan(name: &str) -> (Seen, Counters) {
    let mut cap = FileCapture::open(&sample(name)).expect("capture opens");
    let mut c = Counters::default();
    let mut s = Seen::default();
    while let Some(rec) = cap.next_record() {
        let rec = rec.expect("record");
        let Some(o) = observe(rec.linktype, rec.data, rec.ts_ms, &mut c) else {
            continue;
        };
        s.frames_with_odid += 1;
        if let Some(id) = o.uas_id {
            s.ids.insert(id.to_text());
        }
        if let Some(op) = o.operator_id {
            s.operators.insert(op.to_owned());
        }
        if let Some(t) = o.self_id {
            s.self_ids.insert(t.to_owned());
        }
        if let Some(m) = o.mac {
            s.macs.insert(mac_text(&m));
        }
        s.transports.insert(format!("{:?}", o.transport));
        if let Some(l) = &o.location {
            if let (Some(lat), Some(lon)) = (l.lat, l.lon) {
                s.positions.push((lat, lon));
            }
        }
        if let Some(sys) = &o.system {
            if let (Some(lat), Some(lon)) = (sys.operator_lat, sys.operator_lon) {
                s.operator_positions.push((lat, lon));
            }
        }
    }
    (s, c)
}

#[test]
fn wifi_beacon_capture_decodes_serial_operator_self_id_and_positions() {
    let (s, c) = scan("odid_wifi_bcn_sample.pcap");
    assert_eq!(c.frames, 21);
    assert_eq!(s.frames_with_odid, 21, "{c:?}");
    assert_eq!(c.dropped(), 0);
    assert_eq!(s.ids, BTreeSet::from(["MFG1A0123456789".to_owned()]));
    assert_eq!(s.operators, BTreeSet::from(["GBR-OP-123ABCD".to_owned()]));
    assert_eq!(s.self_ids, BTreeSet::from(["Recreational".to_owned()]));
    assert_eq!(s.macs, BTreeSet::from(["84:cc:a8:60:43:24".to_owned()]));
    assert_eq!(
        s.transports,
        BTreeSet::from([format!("{:?}", RemoteIdTransport::WifiBeacon)])
    );
    assert_eq!(s.positions.len(), 21);
    for (lat, lon) in &s.positions {
        assert!(
            (lat - 45.5468).abs() < 0.01 && (lon + 122.9675).abs() < 0.01,
            "{lat},{lon}"
        );
    }
    // The first frame's fix, exactly as encoded (×1e-7).
    assert!((s.positions[0].0 - 45.5457468).abs() < 1e-9);
    assert!((s.positions[0].1 + 122.9681496).abs() < 1e-9);
    // The aircraft moves: not one repeated point.
    let distinct: BTreeSet<(i64, i64)> = s
        .positions
        .iter()
        .map(|(a, b)| ((a * 1e7) as i64, (b * 1e7) as i64))
        .collect();
    assert!(distinct.len() > 5, "{distinct:?}");
    assert!(!s.operator_positions.is_empty());
    for (lat, lon) in &s.operator_positions {
        assert!((lat - 45.5444).abs() < 0.01 && (lon + 122.9727).abs() < 0.01);
    }
}

#[test]
fn bt5_long_range_capture_rejects_corrupted_frames() {
    let (s, c) = scan("odid_bt5_lr_sample.pcapng");
    assert_eq!(c.frames, 274);
    // The 30 frames whose CRC failed on the air are refused, never decoded into ids.
    assert_eq!(c.bad_crc, 30, "{c:?}");
    assert_eq!(c.invalid + c.truncated + c.unsupported, 0, "{c:?}");
    assert_eq!(s.ids, BTreeSet::from(["SSEVTFG93700070".to_owned()]));
    assert_eq!(s.operators, BTreeSet::from(["FIN87astrdge12kxyz8".to_owned()]));
    assert_eq!(s.self_ids, BTreeSet::from(["Drone ID demo".to_owned()]));
    assert_eq!(s.macs, BTreeSet::from(["e0:7d:ea:eb:2f:1c".to_owned()]));
    assert_eq!(
        s.transports,
        BTreeSet::from([format!("{:?}", RemoteIdTransport::BleLongRange)])
    );
    // No position fix in this capture (lat/lon 0 = unknown): none invented.
    assert!(s.positions.is_empty(), "{:?}", s.positions);
    assert!(s.operator_positions.is_empty());
}

#[test]
fn our_crc_agrees_with_the_sniffer_on_every_good_frame() {
    // The nRF Sniffer marks each frame's CRC; recomputing it must agree on the good ones and
    // disagree on the corrupted ones.
    let mut cap = FileCapture::open(&sample("odid_bt5_lr_sample.pcapng")).unwrap();
    let (mut agree, mut total_good, mut bad_detected) = (0, 0, 0);
    while let Some(rec) = cap.next_record() {
        let d = rec.unwrap().data;
        let ll = &d[7 + usize::from(d[7])..];
        let at = if (d[8] >> 4) & 7 == 2 { 5 } else { 4 };
        let len = usize::from(ll[at + 1]);
        let pdu = &ll[at..at + 2 + len];
        let crc = &ll[at + 2 + len..at + 5 + len];
        let stored = u32::from(crc[0]) | u32::from(crc[1]) << 8 | u32::from(crc[2]) << 16;
        let ok = ndefender_remoteid::link::ble_crc(pdu) == stored;
        if d[8] & 1 != 0 {
            total_good += 1;
            agree += usize::from(ok);
        } else {
            bad_detected += usize::from(!ok);
        }
    }
    assert_eq!(total_good, 244);
    assert_eq!(agree, 244);
    assert_eq!(bad_detected, 30);
}
