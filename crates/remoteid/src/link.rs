//! Finding Open Drone ID payloads in link-layer frames: radiotap + 802.11 (Beacon vendor
//! element, NAN service discovery) and Bluetooth LE link-layer packets (legacy and extended
//! advertising), in the pcap link types receivers record them with.
//!
//! Every offset is bounds-checked; a frame that ends early is `Truncated`, never read past.

use ndefender_contract::contact::RemoteIdTransport;

/// pcap link types this decoder reads.
pub const LINKTYPE_IEEE802_11: u32 = 105;
pub const LINKTYPE_IEEE802_11_RADIOTAP: u32 = 127;
pub const LINKTYPE_BLUETOOTH_LE_LL: u32 = 251;
pub const LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR: u32 = 256;
pub const LINKTYPE_NORDIC_BLE: u32 = 272;
/// Service data as BlueZ reports it on D-Bus (no link layer to record), in a private link type
/// (LINKTYPE_USER0, reserved by tcpdump.org for local use): address (6 bytes, display order),
/// an RSSI-present byte (0/1), the RSSI (i8), then the service data bytes of UUID 0xFFFA
/// (application code, counter, message or pack). See `source::ble`.
pub const LINKTYPE_BLUEZ_SERVICE_DATA: u32 = 147;
/// The most service data a legacy (31-byte) advertisement carries for UUID 0xFFFA: 31 − length,
/// AD type and UUID = 27 (application code, counter, one 25-byte message).
pub const BLE_LEGACY_MAX_SERVICE_DATA: usize = 27;

/// The ASTM Wi-Fi Beacon vendor element: OUI FA:0B:BC, OUI type 0x0D.
pub const ASTM_OUI: [u8; 3] = [0xFA, 0x0B, 0xBC];
pub const ODID_OUI_TYPE: u8 = 0x0D;
/// Bluetooth: service data with the 16-bit UUID 0xFFFA (ASTM), application code 0x0D.
pub const ODID_UUID: u16 = 0xFFFA;
pub const ODID_APP_CODE: u8 = 0x0D;
/// Wi-Fi Alliance OUI and the NAN OUI type of the public action frame.
pub const WFA_OUI: [u8; 3] = [0x50, 0x6F, 0x9A];
pub const NAN_OUI_TYPE: u8 = 0x13;
/// The first 6 bytes of SHA-256("org.opendroneid.remoteid"): the NAN service id.
pub const ODID_NAN_SERVICE_ID: [u8; 6] = [0x88, 0x69, 0x19, 0x9D, 0x92, 0x09];
/// Access address of every BLE advertising packet.
pub const ADV_ACCESS_ADDRESS: u32 = 0x8E89_BED6;

/// An Open Drone ID payload found in a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OdidFrame<'a> {
    pub transport: RemoteIdTransport,
    /// Transmitter address (802.11 SA, BLE AdvA) in air order.
    pub mac: Option<[u8; 6]>,
    pub rssi_dbm: Option<i8>,
    /// The message counter byte that precedes the payload.
    pub counter: u8,
    /// From the first message header: one message or a message pack.
    pub payload: &'a [u8],
}

/// Why a frame yields no Open Drone ID payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A well-formed frame without Open Drone ID content (ordinary traffic).
    NotOdid,
    /// The frame (or one of its length fields) ends early.
    Truncated,
    /// The receiver flagged, or we computed, a bad checksum: the bytes cannot be trusted.
    BadCrc,
    /// A link type this decoder does not read.
    UnsupportedLink,
}

type R<T> = Result<T, FrameError>;

fn get(b: &[u8], i: usize) -> R<u8> {
    b.get(i).copied().ok_or(FrameError::Truncated)
}

fn slice(b: &[u8], from: usize, len: usize) -> R<&[u8]> {
    b.get(from..from.checked_add(len).ok_or(FrameError::Truncated)?)
        .ok_or(FrameError::Truncated)
}

fn u16le(b: &[u8], i: usize) -> R<u16> {
    Ok(u16::from_le_bytes([get(b, i)?, get(b, i + 1)?]))
}

fn u32le(b: &[u8], i: usize) -> R<u32> {
    let s = slice(b, i, 4)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Decodes one captured frame of the given pcap link type.
pub fn parse_frame(linktype: u32, data: &[u8]) -> R<OdidFrame<'_>> {
    match linktype {
        LINKTYPE_IEEE802_11_RADIOTAP => parse_radiotap(data),
        LINKTYPE_IEEE802_11 => parse_80211(data, None),
        LINKTYPE_BLUETOOTH_LE_LL => parse_ble_ll(data, false, None, true),
        LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR => parse_ble_phdr(data),
        LINKTYPE_NORDIC_BLE => parse_nordic(data),
        LINKTYPE_BLUEZ_SERVICE_DATA => parse_bluez(data),
        _ => Err(FrameError::UnsupportedLink),
    }
}

// ---- 802.11 -------------------------------------------------------------------------------

/// Radiotap: only the fields up to the antenna signal matter (flags for FCS/bad FCS, dBm
/// signal). Fields are naturally aligned relative to the header start.
fn parse_radiotap(b: &[u8]) -> R<OdidFrame<'_>> {
    let len = usize::from(u16le(b, 2)?);
    if get(b, 0)? != 0 || len < 8 || len > b.len() {
        return Err(FrameError::Truncated);
    }
    let present = u32le(b, 4)?;
    // Skip extended presence words (bit 31 chains another word).
    let mut off = 8;
    let mut word = present;
    while word & (1 << 31) != 0 {
        word = u32le(b, off)?;
        off += 4;
        if off > len {
            return Err(FrameError::Truncated);
        }
    }
    let hdr = slice(b, 0, len)?;
    let mut flags = 0u8;
    let mut rssi = None;
    // (bit, size, alignment) of the fields before and including dBm antenna signal.
    const FIELDS: [(u32, usize, usize); 6] = [(0, 8, 8), (1, 1, 1), (2, 1, 1), (3, 4, 2), (4, 2, 1), (5, 1, 1)];
    for (bit, size, align) in FIELDS {
        if present & (1 << bit) == 0 {
            continue;
        }
        off = off.next_multiple_of(align);
        let v = slice(hdr, off, size)?;
        match bit {
            1 => flags = v[0],
            5 => rssi = Some(v[0] as i8),
            _ => {}
        }
        off += size;
    }
    // Flags: 0x40 = the receiver found a bad FCS; 0x10 = the FCS is at the end of the frame.
    if flags & 0x40 != 0 {
        return Err(FrameError::BadCrc);
    }
    let mut frame = b.get(len..).ok_or(FrameError::Truncated)?;
    if flags & 0x10 != 0 {
        frame = frame
            .get(..frame.len().checked_sub(4).ok_or(FrameError::Truncated)?)
            .ok_or(FrameError::Truncated)?;
    }
    parse_80211(frame, rssi)
}

fn mac_at(b: &[u8], i: usize) -> R<[u8; 6]> {
    let s = slice(b, i, 6)?;
    Ok([s[0], s[1], s[2], s[3], s[4], s[5]])
}

fn parse_80211(b: &[u8], rssi_dbm: Option<i8>) -> R<OdidFrame<'_>> {
    let fc = get(b, 0)?;
    let ftype = (fc >> 2) & 3;
    let subtype = fc >> 4;
    if ftype != 0 {
        return Err(FrameError::NotOdid);
    }
    let sa = mac_at(b, 10)?;
    let body = b.get(24..).ok_or(FrameError::Truncated)?;
    match subtype {
        // Beacon: timestamp, interval, capabilities (12 bytes), then elements.
        8 => {
            let ies = body.get(12..).ok_or(FrameError::Truncated)?;
            let (counter, payload) = beacon_vendor_ie(ies)?;
            Ok(OdidFrame {
                transport: RemoteIdTransport::WifiBeacon,
                mac: Some(sa),
                rssi_dbm,
                counter,
                payload,
            })
        }
        // Action and Action No Ack: NAN service discovery.
        13 | 14 => {
            let (counter, payload) = nan_sdf(body)?;
            Ok(OdidFrame {
                transport: RemoteIdTransport::WifiNan,
                mac: Some(sa),
                rssi_dbm,
                counter,
                payload,
            })
        }
        _ => Err(FrameError::NotOdid),
    }
}

fn beacon_vendor_ie(mut ies: &[u8]) -> R<(u8, &[u8])> {
    while !ies.is_empty() {
        let id = get(ies, 0)?;
        let len = usize::from(get(ies, 1)?);
        let data = slice(ies, 2, len)?;
        if id == 0xDD && data.len() >= 5 && data[..3] == ASTM_OUI && data[3] == ODID_OUI_TYPE {
            return Ok((data[4], &data[5..]));
        }
        ies = &ies[2 + len..];
    }
    Err(FrameError::NotOdid)
}

/// NAN service discovery frame: public action (category 4), vendor specific (9), WFA OUI, NAN
/// type, then attributes; the Service Descriptor Attribute (0x03) with the Open Drone ID service
/// id carries the counter and message pack in its service info.
fn nan_sdf(body: &[u8]) -> R<(u8, &[u8])> {
    if get(body, 0)? != 4 || get(body, 1)? != 9 || slice(body, 2, 3)? != WFA_OUI {
        return Err(FrameError::NotOdid);
    }
    if get(body, 5)? != NAN_OUI_TYPE {
        return Err(FrameError::NotOdid);
    }
    let mut attrs = body.get(6..).ok_or(FrameError::Truncated)?;
    while !attrs.is_empty() {
        let id = get(attrs, 0)?;
        let len = usize::from(u16le(attrs, 1)?);
        let a = slice(attrs, 3, len)?;
        if id == 0x03 && a.len() >= 9 && a[..6] == ODID_NAN_SERVICE_ID {
            return sda_service_info(a);
        }
        attrs = &attrs[3 + len..];
    }
    Err(FrameError::NotOdid)
}

fn sda_service_info(a: &[u8]) -> R<(u8, &[u8])> {
    // service id (6), instance id, requestor instance id, service control.
    let control = get(a, 8)?;
    let mut off = 9;
    if control & 0x40 != 0 {
        off += 2; // binding bitmap
    }
    if control & 0x04 != 0 {
        off += 1 + usize::from(get(a, off)?); // matching filter
    }
    if control & 0x08 != 0 {
        off += 1 + usize::from(get(a, off)?); // service response filter
    }
    if control & 0x10 == 0 {
        return Err(FrameError::NotOdid);
    }
    let len = usize::from(get(a, off)?);
    let info = slice(a, off + 1, len)?;
    let (&counter, payload) = info.split_first().ok_or(FrameError::Truncated)?;
    Ok((counter, payload))
}

// ---- Bluetooth LE ---------------------------------------------------------------------------

/// nRF Sniffer for Bluetooth LE (protocol 2 and 3): board id, 6-byte packet header, then a
/// packet-data header whose first byte is its own length; flags bit 0 = CRC OK, bits 4–6 = PHY
/// (2 = LE Coded, which puts a coding-indicator byte after the access address).
fn parse_nordic(b: &[u8]) -> R<OdidFrame<'_>> {
    let proto = get(b, 3)?;
    if proto < 2 {
        return Err(FrameError::UnsupportedLink);
    }
    let hdr_len = usize::from(get(b, 7)?);
    let flags = get(b, 8)?;
    let rssi = -(i16::from(get(b, 10)?));
    if flags & 1 == 0 {
        return Err(FrameError::BadCrc);
    }
    let coded = (flags >> 4) & 7 == 2;
    let ll = b.get(7 + hdr_len..).ok_or(FrameError::Truncated)?;
    // The sniffer already checked the CRC (flag above).
    parse_ble_ll(ll, coded, i8::try_from(rssi).ok(), false)
}

/// LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR: 10-byte pseudo-header (channel, signal, noise, access
/// address offenses, reference access address, flags), then the link-layer packet.
fn parse_ble_phdr(b: &[u8]) -> R<OdidFrame<'_>> {
    let flags = u16le(b, 8)?;
    let rssi = (flags & 0x0002 != 0).then_some(get(b, 1)? as i8);
    let crc_checked = flags & 0x0400 != 0;
    if crc_checked && flags & 0x0800 == 0 {
        return Err(FrameError::BadCrc);
    }
    let coded = (flags >> 14) == 2;
    let ll = b.get(10..).ok_or(FrameError::Truncated)?;
    parse_ble_ll(ll, coded, rssi, !crc_checked)
}

/// BLE link layer: access address, [coding indicator], PDU header, payload, CRC (3 bytes).
fn parse_ble_ll(b: &[u8], coded: bool, rssi_dbm: Option<i8>, check_crc: bool) -> R<OdidFrame<'_>> {
    if u32le(b, 0)? != ADV_ACCESS_ADDRESS {
        return Err(FrameError::NotOdid);
    }
    let pdu_at = if coded { 5 } else { 4 };
    let h0 = get(b, pdu_at)?;
    let len = usize::from(get(b, pdu_at + 1)?);
    let pdu = slice(b, pdu_at, 2 + len)?;
    if check_crc {
        let crc = slice(b, pdu_at + 2 + len, 3)?;
        let want = u32::from(crc[0]) | u32::from(crc[1]) << 8 | u32::from(crc[2]) << 16;
        if ble_crc(pdu) != want {
            return Err(FrameError::BadCrc);
        }
    }
    let payload = &pdu[2..];
    match h0 & 0x0F {
        // ADV_IND, ADV_NONCONN_IND, ADV_SCAN_IND, SCAN_RSP: AdvA then AD structures.
        0 | 2 | 4 | 6 => {
            let mac = adv_addr(payload, 0)?;
            let (counter, p) = service_data(payload.get(6..).ok_or(FrameError::Truncated)?)?;
            Ok(OdidFrame {
                transport: RemoteIdTransport::BleLegacy,
                mac: Some(mac),
                rssi_dbm,
                counter,
                payload: p,
            })
        }
        // ADV_EXT_IND / AUX_ADV_IND: common extended advertising payload format.
        7 => {
            let ext_len = usize::from(get(payload, 0)? & 0x3F);
            let ext = slice(payload, 1, ext_len)?;
            let mut mac = None;
            if let Some((&flags, fields)) = ext.split_first() {
                if flags & 1 != 0 {
                    mac = Some(adv_addr(fields, 0)?);
                }
            }
            let adv_data = payload.get(1 + ext_len..).ok_or(FrameError::Truncated)?;
            let (counter, p) = service_data(adv_data)?;
            Ok(OdidFrame {
                transport: RemoteIdTransport::BleLongRange,
                mac,
                rssi_dbm,
                counter,
                payload: p,
            })
        }
        _ => Err(FrameError::NotOdid),
    }
}

/// A BlueZ service-data record (`LINKTYPE_BLUEZ_SERVICE_DATA`). BlueZ does not say whether the
/// advertisement was legacy or extended, so the size decides: what fits a legacy advertisement
/// (at most 27 bytes of service data, i.e. one message) is `ble_legacy`; more can only have come
/// in an extended (Bluetooth 5) advertisement and is `ble_long_range`.
fn parse_bluez(b: &[u8]) -> R<OdidFrame<'_>> {
    let h = slice(b, 0, 8)?;
    let mac = [h[0], h[1], h[2], h[3], h[4], h[5]];
    let rssi_dbm = (h[6] != 0).then_some(h[7] as i8);
    let sd = &b[8..];
    if get(sd, 0)? != ODID_APP_CODE {
        return Err(FrameError::NotOdid);
    }
    let counter = get(sd, 1)?;
    Ok(OdidFrame {
        transport: if sd.len() > BLE_LEGACY_MAX_SERVICE_DATA {
            RemoteIdTransport::BleLongRange
        } else {
            RemoteIdTransport::BleLegacy
        },
        mac: Some(mac),
        rssi_dbm,
        counter,
        payload: &sd[2..],
    })
}

/// Builds a `LINKTYPE_BLUEZ_SERVICE_DATA` record.
pub fn bluez_record(mac: [u8; 6], rssi_dbm: Option<i8>, service_data: &[u8]) -> Vec<u8> {
    let mut v = mac.to_vec();
    v.push(u8::from(rssi_dbm.is_some()));
    v.push(rssi_dbm.unwrap_or(0) as u8);
    v.extend_from_slice(service_data);
    v
}

/// A BLE device address is sent least significant byte first; `mac` is in display order.
fn adv_addr(b: &[u8], i: usize) -> R<[u8; 6]> {
    let s = slice(b, i, 6)?;
    Ok([s[5], s[4], s[3], s[2], s[1], s[0]])
}

/// Walks AD structures for Service Data – 16-bit UUID 0xFFFA with application code 0x0D.
fn service_data(mut ad: &[u8]) -> R<(u8, &[u8])> {
    while let Some(&len) = ad.first() {
        let len = usize::from(len);
        if len == 0 {
            break; // zero padding ends the significant part
        }
        let s = slice(ad, 1, len)?;
        if s.len() >= 5 && s[0] == 0x16 && u16::from_le_bytes([s[1], s[2]]) == ODID_UUID && s[3] == ODID_APP_CODE {
            return Ok((s[4], &s[5..]));
        }
        ad = &ad[1 + len..];
    }
    Err(FrameError::NotOdid)
}

/// BLE CRC-24 (polynomial x²⁴+x¹⁰+x⁹+x⁶+x⁴+x³+x+1, advertising init 0x555555), computed
/// over the PDU bit by bit in air order (LSB first); the result is in the byte order the
/// packet carries it.
pub fn ble_crc(pdu: &[u8]) -> u32 {
    let mut state: u32 = 0x55_5555;
    for &byte in pdu {
        let mut cur = byte;
        for _ in 0..8 {
            let next = ((state >> 23) ^ u32::from(cur)) & 1;
            cur >>= 1;
            state = (state << 1) & 0xFF_FFFF;
            if next != 0 {
                state ^= 0x00_065B;
            }
        }
    }
    // The CRC goes on air most significant bit first, i.e. bit-reversed in LSB-first bytes.
    let mut out = 0u32;
    for i in 0..24 {
        if state & (1 << i) != 0 {
            out |= 1 << (23 - i);
        }
    }
    out
}
