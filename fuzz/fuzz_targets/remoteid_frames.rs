//! Open Drone ID frames (ndefender-remoteid): the first byte picks a link type (radiotap
//! 802.11, raw 802.11, BLE LL, BLE LL + PHDR, nRF Sniffer, BlueZ service data) or a whole
//! capture file (6), the rest is the record. Runs `decode::observe` (link layer → messages →
//! observation), the tracker, and the `decode` command's per-message view; for a capture, the
//! pcap/pcapng reader.
//!
//! Oracles: no panic; an accepted observation has at least one message and at most a full pack
//! (9); positions are within ±90/±180 and never (0, 0); every envelope the tracker emits is a
//! JSON object with a string type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndefender_remoteid::capture::CaptureReader;
use ndefender_remoteid::decode::{message_objects, observe, Counters};
use ndefender_remoteid::link;
use ndefender_remoteid::tracker::Tracker;

const LINKS: [u32; 6] = [
    link::LINKTYPE_IEEE802_11_RADIOTAP,
    link::LINKTYPE_IEEE802_11,
    link::LINKTYPE_BLUETOOTH_LE_LL,
    link::LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR,
    link::LINKTYPE_NORDIC_BLE,
    link::LINKTYPE_BLUEZ_SERVICE_DATA,
];

fn check(lt: u32, rec: &[u8], ts: u64, c: &mut Counters, t: &mut Tracker) {
    if let Some(o) = observe(lt, rec, ts, c) {
        assert!(o.messages >= 1 && o.messages <= 9, "{} messages", o.messages);
        if let Some(l) = &o.location {
            if let (Some(a), Some(b)) = (l.lat, l.lon) {
                assert!(a.abs() <= 90.0 && b.abs() <= 180.0 && (a, b) != (0.0, 0.0));
            }
        }
        let mut out = Vec::new();
        t.frame(&o, &mut out);
        for e in out {
            let v: serde_json::Value =
                serde_json::from_str(&e.to_json(None, ndefender_contract::TimestampField::TimestampMs)).unwrap_or_default();
            assert!(v["type"].is_string() && v["data"].is_object(), "{v}");
        }
    }
    let _ = message_objects(lt, rec, ts, c);
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut c = Counters::default();
    let mut t = Tracker::new(ndefender_contract::enums::RemoteIdMode::Live);
    match LINKS.get(usize::from(sel % 7)) {
        Some(&lt) => check(lt, rest, 1_700_000_000_000, &mut c, &mut t),
        None => {
            let Ok(mut cap) = CaptureReader::new(std::io::Cursor::new(rest)) else {
                return;
            };
            let mut n = 0;
            while let Some(Ok(r)) = cap.next_record() {
                let (lt, ts, d) = (r.linktype, r.ts_ms, r.data.to_vec());
                check(lt, &d, ts, &mut c, &mut t);
                n += 1;
                if n > 1000 {
                    break;
                }
            }
        }
    }
});
