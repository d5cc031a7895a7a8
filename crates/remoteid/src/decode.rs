//! From a captured record to an [`Observation`]: the frame's transport and everything its
//! messages say about one aircraft, with counters for what was refused.

use crate::link::{self, FrameError, OdidFrame};
use crate::odid::{IdType, Location, Message, MessageError, Messages, System, UasId};
use ndefender_contract::contact::RemoteIdTransport;
use serde::Serialize;

/// What the decoder saw, cumulative. Plain counters: the caller owns them (one per thread).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Records read.
    pub frames: u64,
    /// Records that carried Open Drone ID and were accepted.
    pub odid_frames: u64,
    /// Messages decoded from accepted frames.
    pub messages: u64,
    /// Messages of a type this decoder does not know (skipped; the frame still counts).
    pub unknown_types: u64,
    /// Frames refused: bad checksum.
    pub bad_crc: u64,
    /// Frames refused: a length field points past the end.
    pub truncated: u64,
    /// Frames refused: a malformed message pack or an impossible field value.
    pub invalid: u64,
    /// Records of a link type this decoder does not read.
    pub unsupported: u64,
}

impl Counters {
    /// Frames refused for any reason (bad CRC, truncated, invalid, unsupported link).
    pub fn dropped(&self) -> u64 {
        self.bad_crc + self.truncated + self.invalid + self.unsupported
    }
}

/// Everything one accepted frame says about its transmitter.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation<'a> {
    pub ts_ms: u64,
    pub transport: RemoteIdTransport,
    pub mac: Option<[u8; 6]>,
    pub rssi_dbm: Option<i8>,
    pub counter: u8,
    pub uas_id: Option<UasId<'a>>,
    pub id_type: Option<IdType>,
    pub ua_type: Option<&'static str>,
    pub self_id: Option<&'a str>,
    pub operator_id: Option<&'a str>,
    pub location: Option<Location>,
    pub system: Option<System>,
    pub auth_pages: u8,
    pub messages: u16,
}

/// Decodes one record. `None` when it carries no (acceptable) Open Drone ID content; the
/// reason is counted.
pub fn observe<'a>(linktype: u32, data: &'a [u8], ts_ms: u64, c: &mut Counters) -> Option<Observation<'a>> {
    c.frames += 1;
    let frame = match link::parse_frame(linktype, data) {
        Ok(f) => f,
        Err(e) => {
            count_frame_error(c, e);
            return None;
        }
    };
    observe_frame(&frame, ts_ms, c)
}

fn count_frame_error(c: &mut Counters, e: FrameError) {
    match e {
        FrameError::NotOdid => {}
        FrameError::Truncated => c.truncated += 1,
        FrameError::BadCrc => c.bad_crc += 1,
        FrameError::UnsupportedLink => c.unsupported += 1,
    }
}

/// Folds the messages of an Open Drone ID payload. A frame with any corrupt message, or a
/// malformed pack, is refused whole: its other bytes cannot be trusted either.
pub fn observe_frame<'a>(f: &OdidFrame<'a>, ts_ms: u64, c: &mut Counters) -> Option<Observation<'a>> {
    let mut o = Observation {
        ts_ms,
        transport: f.transport,
        mac: f.mac,
        rssi_dbm: f.rssi_dbm,
        counter: f.counter,
        uas_id: None,
        id_type: None,
        ua_type: None,
        self_id: None,
        operator_id: None,
        location: None,
        system: None,
        auth_pages: 0,
        messages: 0,
    };
    let mut unknown = 0;
    for m in Messages::new(f.payload) {
        match m {
            Ok(m) => {
                o.messages += 1;
                fold(&mut o, m);
            }
            Err(MessageError::UnknownType(_)) => unknown += 1,
            Err(MessageError::Truncated) => {
                c.truncated += 1;
                return None;
            }
            Err(MessageError::BadPack | MessageError::NestedPack | MessageError::Invalid) => {
                c.invalid += 1;
                return None;
            }
        }
    }
    c.unknown_types += unknown;
    if o.messages == 0 {
        // Only unknown types: nothing to track, nothing refused.
        return None;
    }
    c.odid_frames += 1;
    c.messages += u64::from(o.messages);
    Some(o)
}

fn fold<'a>(o: &mut Observation<'a>, m: Message<'a>) {
    match m {
        Message::BasicId(b) => {
            o.ua_type = o.ua_type.or(b.ua_type);
            // Several Basic IDs may travel together; the serial number names the aircraft.
            let better = match (o.id_type, b.id_type) {
                (None, _) => true,
                (Some(IdType::SerialNumber), _) => false,
                (Some(_), IdType::SerialNumber) => true,
                _ => o.uas_id.is_none(),
            };
            if better && b.uas_id.is_some() {
                o.uas_id = b.uas_id;
                o.id_type = Some(b.id_type);
            }
        }
        Message::Location(l) => o.location = Some(l),
        Message::Auth(_) => o.auth_pages = o.auth_pages.saturating_add(1),
        Message::SelfId(s) => {
            if s.text.is_some() {
                o.self_id = s.text;
            }
        }
        Message::System(s) => o.system = Some(s),
        Message::OperatorId(op) => {
            if op.operator_id.is_some() {
                o.operator_id = op.operator_id;
            }
        }
    }
}

/// `aa:bb:cc:dd:ee:ff`, lowercase.
pub fn mac_text(m: &[u8; 6]) -> String {
    let h = crate::odid::hex(m);
    let mut s = String::with_capacity(17);
    for (i, ch) in h.chars().enumerate() {
        if i > 0 && i % 2 == 0 {
            s.push(':');
        }
        s.push(ch);
    }
    s
}

/// The `decode` command's view: one JSON object per message of a record (with the frame's
/// time, transport, address, signal and counter). Refused frames yield nothing.
pub fn message_objects(linktype: u32, data: &[u8], ts_ms: u64, c: &mut Counters) -> Vec<serde_json::Value> {
    c.frames += 1;
    let f = match link::parse_frame(linktype, data) {
        Ok(f) => f,
        Err(e) => {
            count_frame_error(c, e);
            return Vec::new();
        }
    };
    // Validate the frame as a whole first, as the engine does.
    let mut probe = Counters::default();
    if observe_frame(&f, ts_ms, &mut probe).is_none() {
        c.truncated += probe.truncated;
        c.invalid += probe.invalid;
        c.unknown_types += probe.unknown_types;
        return Vec::new();
    }
    c.odid_frames += 1;
    c.unknown_types += probe.unknown_types;
    let mut out = Vec::new();
    for m in Messages::new(f.payload).flatten() {
        c.messages += 1;
        let mut v = serde_json::json!({
            "ts_ms": ts_ms,
            "transport": f.transport,
            "counter": f.counter,
        });
        if let (Some(obj), Ok(serde_json::Value::Object(fields))) = (v.as_object_mut(), serde_json::to_value(&m)) {
            if let Some(mac) = f.mac {
                obj.insert("mac".into(), mac_text(&mac).into());
            }
            if let Some(r) = f.rssi_dbm {
                obj.insert("rssi_dbm".into(), r.into());
            }
            obj.extend(fields);
        }
        out.push(v);
    }
    out
}
