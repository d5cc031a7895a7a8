//! The inverse of the decoder: Open Drone ID messages and the frames that carry them, for the
//! round-trip tests, the simulator source, the fuzz seeds and the benchmark's synthetic capture.
//! Values are encoded the way the standard says (steps, offsets, unknown markers); out-of-range
//! inputs are clamped to the nearest encodable value, as a transmitter would.

use crate::link::{self, ASTM_OUI, ODID_APP_CODE, ODID_NAN_SERVICE_ID, ODID_OUI_TYPE, WFA_OUI};
use crate::odid::{MESSAGE_SIZE, ODID_EPOCH_UNIX_S};

pub type Msg = [u8; MESSAGE_SIZE];

fn header(kind: u8) -> u8 {
    // Protocol version 2 (F3411-22a).
    (kind << 4) | 2
}

fn put_str(m: &mut Msg, at: usize, width: usize, s: &[u8]) {
    let n = s.len().min(width);
    m[at..at + n].copy_from_slice(&s[..n]);
}

/// `id_type` 0–15 (1 = serial number), `ua_type` 0–15, `id` up to 20 bytes.
pub fn basic_id(id_type: u8, ua_type: u8, id: &[u8]) -> Msg {
    let mut m = [0; MESSAGE_SIZE];
    m[0] = header(0);
    m[1] = (id_type << 4) | (ua_type & 15);
    put_str(&mut m, 2, 20, id);
    m
}

/// Location/Vector inputs; `None` encodes the standard's "unknown".
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LocationIn {
    pub status: u8,
    pub direction_deg: Option<f64>,
    pub speed_m_s: Option<f64>,
    pub vspeed_m_s: Option<f64>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub pressure_alt_m: Option<f64>,
    pub geodetic_alt_m: Option<f64>,
    pub height_m: Option<f64>,
    pub height_agl: bool,
    pub horiz_acc: u8,
    pub vert_acc: u8,
    pub baro_acc: u8,
    pub speed_acc: u8,
    pub timestamp_ds: Option<u16>,
    pub ts_acc: u8,
}

/// Altitude encoding: (alt + 1000) / 0.5, 0 = unknown.
pub fn enc_alt(a: Option<f64>) -> u16 {
    match a {
        None => 0,
        Some(a) => ((a + 1000.0) / 0.5).round().clamp(1.0, 65535.0) as u16,
    }
}

fn enc_latlon(v: Option<f64>) -> i32 {
    v.map_or(0, |v| {
        (v * 1e7).round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
    })
}

pub fn location(l: &LocationIn) -> Msg {
    let mut m = [0; MESSAGE_SIZE];
    m[0] = header(1);
    let (ew, dir) = match l.direction_deg {
        None => (true, 181u8),
        Some(d) => {
            let d = d.round().clamp(0.0, 359.0) as u16;
            if d >= 180 {
                (true, (d - 180) as u8)
            } else {
                (false, d as u8)
            }
        }
    };
    let (mult, speed) = match l.speed_m_s {
        None => (true, 255u8),
        Some(s) if s <= 63.75 => (false, (s.max(0.0) / 0.25).round() as u8),
        Some(s) => (true, ((s - 63.75) / 0.75).round().clamp(0.0, 254.0) as u8),
    };
    m[1] = (l.status << 4) | (u8::from(l.height_agl) << 2) | (u8::from(ew) << 1) | u8::from(mult);
    m[2] = dir;
    m[3] = speed;
    m[4] = match l.vspeed_m_s {
        None => 126,
        Some(v) => ((v.clamp(-62.0, 62.0)) / 0.5).round() as i8 as u8,
    };
    m[5..9].copy_from_slice(&enc_latlon(l.lat).to_le_bytes());
    m[9..13].copy_from_slice(&enc_latlon(l.lon).to_le_bytes());
    m[13..15].copy_from_slice(&enc_alt(l.pressure_alt_m).to_le_bytes());
    m[15..17].copy_from_slice(&enc_alt(l.geodetic_alt_m).to_le_bytes());
    m[17..19].copy_from_slice(&enc_alt(l.height_m).to_le_bytes());
    m[19] = (l.vert_acc << 4) | (l.horiz_acc & 15);
    m[20] = (l.baro_acc << 4) | (l.speed_acc & 15);
    m[21..23].copy_from_slice(&l.timestamp_ds.unwrap_or(0xFFFF).to_le_bytes());
    m[23] = l.ts_acc & 15;
    m
}

/// Page 0 of an authentication: `last_page`, `length`, unix `timestamp_s`, 17 data bytes.
pub fn auth_page0(auth_type: u8, last_page: u8, length: u8, timestamp_s: u64, data: &[u8]) -> Msg {
    let mut m = [0; MESSAGE_SIZE];
    m[0] = header(2);
    m[1] = auth_type << 4;
    m[2] = last_page;
    m[3] = length;
    let ts = u32::try_from(timestamp_s.saturating_sub(ODID_EPOCH_UNIX_S)).unwrap_or(u32::MAX);
    m[4..8].copy_from_slice(&ts.to_le_bytes());
    put_str(&mut m, 8, 17, data);
    m
}

/// Pages 1–15: 23 data bytes.
pub fn auth_page(auth_type: u8, page: u8, data: &[u8]) -> Msg {
    let mut m = [0; MESSAGE_SIZE];
    m[0] = header(2);
    m[1] = (auth_type << 4) | (page & 15);
    put_str(&mut m, 2, 23, data);
    m
}

pub fn self_id(desc_type: u8, text: &[u8]) -> Msg {
    let mut m = [0; MESSAGE_SIZE];
    m[0] = header(3);
    m[1] = desc_type;
    put_str(&mut m, 2, 23, text);
    m
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SystemIn {
    pub location_type: u8,
    pub classification: u8,
    pub operator_lat: Option<f64>,
    pub operator_lon: Option<f64>,
    pub area_count: u16,
    pub area_radius_m: u16,
    pub area_ceiling_m: Option<f64>,
    pub area_floor_m: Option<f64>,
    pub category: u8,
    pub class: u8,
    pub operator_alt_m: Option<f64>,
    pub timestamp_s: Option<u64>,
}

pub fn system(s: &SystemIn) -> Msg {
    let mut m = [0; MESSAGE_SIZE];
    m[0] = header(4);
    m[1] = ((s.classification & 7) << 2) | (s.location_type & 3);
    m[2..6].copy_from_slice(&enc_latlon(s.operator_lat).to_le_bytes());
    m[6..10].copy_from_slice(&enc_latlon(s.operator_lon).to_le_bytes());
    m[10..12].copy_from_slice(&s.area_count.to_le_bytes());
    m[12] = u8::try_from(s.area_radius_m / 10).unwrap_or(255);
    m[13..15].copy_from_slice(&enc_alt(s.area_ceiling_m).to_le_bytes());
    m[15..17].copy_from_slice(&enc_alt(s.area_floor_m).to_le_bytes());
    m[17] = (s.category << 4) | (s.class & 15);
    m[18..20].copy_from_slice(&enc_alt(s.operator_alt_m).to_le_bytes());
    let ts = s.timestamp_s.map_or(0, |t| {
        u32::try_from(t.saturating_sub(ODID_EPOCH_UNIX_S)).unwrap_or(u32::MAX)
    });
    m[20..24].copy_from_slice(&ts.to_le_bytes());
    m
}

pub fn operator_id(id_type: u8, id: &[u8]) -> Msg {
    let mut m = [0; MESSAGE_SIZE];
    m[0] = header(5);
    m[1] = id_type;
    put_str(&mut m, 2, 20, id);
    m
}

/// A message pack of up to 9 messages (more are cut: a pack never claims what it cannot hold).
pub fn pack(msgs: &[Msg]) -> Vec<u8> {
    let n = msgs.len().min(crate::odid::PACK_MAX_MESSAGES);
    let mut v = Vec::with_capacity(3 + n * MESSAGE_SIZE);
    v.extend_from_slice(&[0xF2, MESSAGE_SIZE as u8, n as u8]);
    for m in &msgs[..n] {
        v.extend_from_slice(m);
    }
    v
}

/// A minimal radiotap header: flags (no FCS) and dBm antenna signal.
fn radiotap(rssi: i8) -> Vec<u8> {
    // present = Flags (bit 1) | dBm antenna signal (bit 5); fields 1 + 1 bytes, then pad to 10.
    let mut v = vec![0, 0, 10, 0];
    v.extend_from_slice(&((1u32 << 1) | (1u32 << 5)).to_le_bytes());
    v.push(0); // flags
    v.push(rssi as u8);
    v
}

fn mgmt_header(subtype: u8, da: [u8; 6], sa: [u8; 6], bssid: [u8; 6]) -> Vec<u8> {
    let mut v = vec![subtype << 4, 0, 0, 0];
    v.extend_from_slice(&da);
    v.extend_from_slice(&sa);
    v.extend_from_slice(&bssid);
    v.extend_from_slice(&[0, 0]); // sequence control
    v
}

/// Radiotap + 802.11 Beacon with an SSID element and the ASTM vendor element (counter +
/// payload). Link type 127.
pub fn wifi_beacon(mac: [u8; 6], rssi: i8, counter: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = radiotap(rssi);
    v.extend(mgmt_header(8, [0xFF; 6], mac, mac));
    v.extend_from_slice(&[0; 8]); // TSF
    v.extend_from_slice(&100u16.to_le_bytes()); // beacon interval
    v.extend_from_slice(&0x0421u16.to_le_bytes()); // capabilities
    let ssid = b"UAS-ODID";
    v.push(0);
    v.push(ssid.len() as u8);
    v.extend_from_slice(ssid);
    let body_len = 3 + 1 + 1 + payload.len();
    v.push(0xDD);
    v.push(u8::try_from(body_len).unwrap_or(255));
    v.extend_from_slice(&ASTM_OUI);
    v.push(ODID_OUI_TYPE);
    v.push(counter);
    v.extend_from_slice(payload);
    v
}

/// Radiotap + 802.11 NAN service discovery frame (public action, vendor specific, WFA NAN)
/// with one Service Descriptor Attribute for the Open Drone ID service. Link type 127.
pub fn wifi_nan(mac: [u8; 6], rssi: i8, counter: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = radiotap(rssi);
    v.extend(mgmt_header(
        13,
        [0x51, 0x6F, 0x9A, 0x01, 0x00, 0x00],
        mac,
        [0x50, 0x6F, 0x9A, 0x01, 0x00, 0xFF],
    ));
    v.extend_from_slice(&[4, 9]);
    v.extend_from_slice(&WFA_OUI);
    v.push(link::NAN_OUI_TYPE);
    let info_len = 1 + payload.len();
    let attr_len = 6 + 1 + 1 + 1 + 1 + info_len;
    v.push(0x03);
    v.extend_from_slice(&u16::try_from(attr_len).unwrap_or(u16::MAX).to_le_bytes());
    v.extend_from_slice(&ODID_NAN_SERVICE_ID);
    v.extend_from_slice(&[1, 0, 0x10]); // instance, requestor instance, control: publish + service info
    v.push(u8::try_from(info_len).unwrap_or(255));
    v.push(counter);
    v.extend_from_slice(payload);
    v
}

fn adv_addr(mac: [u8; 6]) -> [u8; 6] {
    [mac[5], mac[4], mac[3], mac[2], mac[1], mac[0]]
}

fn service_data(counter: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(6 + payload.len());
    v.push(u8::try_from(5 + payload.len() - 1 + 1).unwrap_or(255));
    v.push(0x16);
    v.extend_from_slice(&link::ODID_UUID.to_le_bytes());
    v.push(ODID_APP_CODE);
    v.push(counter);
    v.extend_from_slice(payload);
    v
}

/// Access address, PDU, CRC: the bytes LINKTYPE_BLUETOOTH_LE_LL carries.
fn ble_ll(pdu: &[u8], coded: bool) -> Vec<u8> {
    let mut v = link::ADV_ACCESS_ADDRESS.to_le_bytes().to_vec();
    if coded {
        v.push(0); // coding indicator: S=8
    }
    v.extend_from_slice(pdu);
    let crc = link::ble_crc(pdu);
    v.extend_from_slice(&crc.to_le_bytes()[..3]);
    v
}

/// Bluetooth 4 legacy ADV_NONCONN_IND with one message. Link type 251 (CRC computed).
pub fn ble_legacy(mac: [u8; 6], counter: u8, msg: &Msg) -> Vec<u8> {
    let mut adv = adv_addr(mac).to_vec();
    adv.extend(service_data(counter, msg));
    let mut pdu = vec![0x42, u8::try_from(adv.len()).unwrap_or(255)]; // ADV_NONCONN_IND, TxAdd random
    pdu.extend(adv);
    ble_ll(&pdu, false)
}

/// Bluetooth 5 AUX_ADV_IND on LE Coded with AdvA + ADI and a message pack, behind the
/// LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR pseudo-header (signal valid, CRC checked and valid,
/// PHY coded). Link type 256.
pub fn ble_long_range(mac: [u8; 6], rssi: i8, counter: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![9u8, 0x09]; // ext header length 9, flags: AdvA + ADI
    body.extend_from_slice(&adv_addr(mac));
    body.extend_from_slice(&[0x00, 0x10]); // ADI
    body.extend(service_data(counter, payload));
    let mut pdu = vec![0x07, u8::try_from(body.len()).unwrap_or(255)];
    pdu.extend(body);
    let flags: u16 = 0x0001 | 0x0002 | 0x0400 | 0x0800 | (2 << 14);
    let mut v = vec![37, rssi as u8, 0, 0];
    v.extend_from_slice(&link::ADV_ACCESS_ADDRESS.to_le_bytes());
    v.extend_from_slice(&flags.to_le_bytes());
    v.extend(ble_ll(&pdu, true));
    v
}

/// A pcapng file (nanosecond interfaces) holding `records` of (link type, epoch ms, bytes).
pub fn pcapng(records: &[(u32, u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ifaces: Vec<u32> = Vec::new();
    for (lt, _, _) in records {
        if !ifaces.contains(lt) {
            ifaces.push(*lt);
        }
    }
    // Section header block.
    block(&mut out, 0x0A0D_0D0A, &{
        let mut b = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
        b
    });
    for lt in &ifaces {
        let mut b = u16::try_from(*lt).unwrap_or(0).to_le_bytes().to_vec();
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&65535u32.to_le_bytes());
        // if_tsresol = 9 (nanoseconds), then end of options.
        b.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        block(&mut out, 1, &b);
    }
    for (lt, ts_ms, data) in records {
        let iface = ifaces.iter().position(|x| x == lt).unwrap_or(0) as u32;
        let ns = ts_ms.saturating_mul(1_000_000);
        let mut b = iface.to_le_bytes().to_vec();
        b.extend_from_slice(&((ns >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ns as u32).to_le_bytes());
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(data);
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        block(&mut out, 6, &b);
    }
    out
}

fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let total = u32::try_from(12 + body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&total.to_le_bytes());
}
