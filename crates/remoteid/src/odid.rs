//! Open Drone ID messages (ASTM F3411-22a / ASD-STAN EN 4709-002): the 25-byte messages and the
//! message pack that carries several of them.
//!
//! Parsing is pure and allocation-free: every decoded text borrows from the frame. Values the
//! standard marks "unknown"/"invalid", or that fall outside the field's range, become `None`, so
//! nothing downstream ever sees a sentinel as a measurement.

use serde::Serialize;

/// Every Open Drone ID message is 25 bytes.
pub const MESSAGE_SIZE: usize = 25;
/// A message pack holds at most 9 messages (3-byte header + 9 × 25 = 228 bytes).
pub const PACK_MAX_MESSAGES: usize = 9;
/// Authentication data spreads over at most 16 pages.
pub const AUTH_MAX_PAGES: u8 = 16;
/// System timestamps count seconds from 2019-01-01T00:00:00Z.
pub const ODID_EPOCH_UNIX_S: u64 = 1_546_300_800;

/// Why a message (or a pack) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    /// Fewer than 25 bytes.
    Truncated,
    /// A message type this decoder does not know (6–14); counted, skipped.
    UnknownType(u8),
    /// A pack claiming another message size, more than 9 messages, or more bytes than it has.
    BadPack,
    /// A message pack inside a message pack.
    NestedPack,
    /// A field whose encoding is impossible (e.g. a non-text identifier, page index beyond 15).
    Invalid,
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "message", rename_all = "snake_case")]
pub enum Message<'a> {
    BasicId(BasicId<'a>),
    Location(Location),
    Auth(AuthPage<'a>),
    SelfId(SelfId<'a>),
    System(System),
    OperatorId(OperatorId<'a>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BasicId<'a> {
    pub id_type: IdType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ua_type: Option<&'static str>,
    /// The UAS id: text for serial numbers and CAA registrations, lowercase hex for the binary
    /// kinds (UTM UUID, specific session id). `None` when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uas_id: Option<UasId<'a>>,
}

/// The UAS id field, kept borrowed; hex forms are rendered only when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UasId<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

impl UasId<'_> {
    pub fn to_text(&self) -> String {
        match self {
            UasId::Text(s) => (*s).to_owned(),
            UasId::Binary(b) => hex(b),
        }
    }
}

impl Serialize for UasId<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UasId::Text(t) => s.serialize_str(t),
            UasId::Binary(_) => s.serialize_str(&self.to_text()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdType {
    None,
    SerialNumber,
    CaaRegistration,
    UtmAssigned,
    SpecificSession,
    Reserved,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Location {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    /// True track over ground, degrees 0–359.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction_deg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_m_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vspeed_m_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pressure_alt_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geodetic_alt_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height_m: Option<f64>,
    /// What `height_m` is measured from.
    pub height_ref: HeightRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub horiz_accuracy_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vert_accuracy_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baro_accuracy_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_accuracy_m_s: Option<f64>,
    /// Tenths of a second since the top of the UTC hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_ds: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_accuracy_s: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeightRef {
    #[default]
    Takeoff,
    Ground,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthPage<'a> {
    pub auth_type: u8,
    pub page: u8,
    /// Page 0 only: index of the last page (0–15).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_page: Option<u8>,
    /// Page 0 only: total authentication data length in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u8>,
    /// Page 0 only: unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_s: Option<u64>,
    #[serde(serialize_with = "ser_hex")]
    pub data: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelfId<'a> {
    pub desc_type: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct System {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_location_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classification: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_lon: Option<f64>,
    pub area_count: u16,
    pub area_radius_m: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_ceiling_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_floor_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category_eu: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_eu: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_alt_m: Option<f64>,
    /// Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_s: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorId<'a> {
    pub id_type: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<&'a str>,
}

fn ser_hex<S: serde::Serializer>(b: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(b))
}

pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(D[usize::from(x >> 4)] as char);
        s.push(D[usize::from(x & 15)] as char);
    }
    s
}

/// The text of a fixed-width ASCII field: up to the first NUL, trailing spaces removed.
/// Empty → `None`; any byte outside printable ASCII → `Err` (a corrupted field, not a name).
fn text(b: &[u8]) -> Result<Option<&str>, MessageError> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let t = b.get(..end).unwrap_or_default();
    if !t.iter().all(|c| (0x20..=0x7e).contains(c)) {
        return Err(MessageError::Invalid);
    }
    // Bytes after the NUL must be padding too, else the field is garbage that happens to
    // contain a zero.
    if b.get(end..).unwrap_or_default().iter().any(|&c| c != 0) {
        return Err(MessageError::Invalid);
    }
    let s = std::str::from_utf8(t).map_err(|_| MessageError::Invalid)?;
    let s = s.trim_end_matches(' ');
    Ok((!s.is_empty()).then_some(s))
}

fn u16le(m: &[u8; MESSAGE_SIZE], i: usize) -> u16 {
    u16::from_le_bytes([m[i], m[i + 1]])
}

fn i32le(m: &[u8; MESSAGE_SIZE], i: usize) -> i32 {
    i32::from_le_bytes([m[i], m[i + 1], m[i + 2], m[i + 3]])
}

fn u32le(m: &[u8; MESSAGE_SIZE], i: usize) -> u32 {
    u32::from_le_bytes([m[i], m[i + 1], m[i + 2], m[i + 3]])
}

/// Latitude/longitude pair at `i`: ×1e-7 degrees; (0, 0) is the standard's "unknown", and an
/// out-of-range value is invalid — either way both are absent.
fn lat_lon(m: &[u8; MESSAGE_SIZE], i: usize) -> (Option<f64>, Option<f64>) {
    let lat = f64::from(i32le(m, i)) / 1e7;
    let lon = f64::from(i32le(m, i + 4)) / 1e7;
    if lat == 0.0 || lon == 0.0 || lat.abs() > 90.0 || lon.abs() > 180.0 {
        (None, None)
    } else {
        (Some(lat), Some(lon))
    }
}

/// Altitude/height encoding: 0.5 m steps with a −1000 m offset; the raw 0 (−1000 m) is unknown.
pub fn altitude(raw: u16) -> Option<f64> {
    (raw != 0).then(|| f64::from(raw) * 0.5 - 1000.0)
}

const UA_TYPES: [&str; 16] = [
    "none",
    "aeroplane",
    "helicopter_or_multirotor",
    "gyroplane",
    "hybrid_lift",
    "ornithopter",
    "glider",
    "kite",
    "free_balloon",
    "captive_balloon",
    "airship",
    "free_fall_parachute",
    "rocket",
    "tethered_powered_aircraft",
    "ground_obstacle",
    "other",
];

const HORIZ_ACC_M: [f64; 13] = [
    f64::NAN,
    18520.0,
    7408.0,
    3704.0,
    1852.0,
    926.0,
    555.6,
    185.2,
    92.6,
    30.0,
    10.0,
    3.0,
    1.0,
];
const VERT_ACC_M: [f64; 7] = [f64::NAN, 150.0, 45.0, 25.0, 10.0, 3.0, 1.0];
const SPEED_ACC_M_S: [f64; 5] = [f64::NAN, 10.0, 3.0, 1.0, 0.3];

fn table(t: &[f64], code: u8) -> Option<f64> {
    t.get(usize::from(code)).copied().filter(|v| v.is_finite())
}

/// Decodes one 25-byte message. A message pack is refused here (see [`Messages`]).
pub fn decode_message(b: &[u8]) -> Result<Message<'_>, MessageError> {
    let m: &[u8; MESSAGE_SIZE] = b
        .get(..MESSAGE_SIZE)
        .and_then(|s| s.try_into().ok())
        .ok_or(MessageError::Truncated)?;
    match m[0] >> 4 {
        0 => basic_id(m),
        1 => Ok(Message::Location(location(m))),
        2 => auth(m),
        3 => Ok(Message::SelfId(SelfId {
            desc_type: m[1],
            text: text(&m[2..25])?,
        })),
        4 => Ok(Message::System(system(m))),
        5 => Ok(Message::OperatorId(OperatorId {
            id_type: m[1],
            operator_id: text(&m[2..22])?,
        })),
        0xF => Err(MessageError::NestedPack),
        t => Err(MessageError::UnknownType(t)),
    }
}

fn basic_id(m: &[u8; MESSAGE_SIZE]) -> Result<Message<'_>, MessageError> {
    let id_type = match m[1] >> 4 {
        0 => IdType::None,
        1 => IdType::SerialNumber,
        2 => IdType::CaaRegistration,
        3 => IdType::UtmAssigned,
        4 => IdType::SpecificSession,
        _ => IdType::Reserved,
    };
    let ua = m[1] & 15;
    let field = &m[2..22];
    let uas_id = match id_type {
        IdType::UtmAssigned => {
            let b = &field[..16];
            b.iter().any(|&x| x != 0).then_some(UasId::Binary(b))
        }
        IdType::SpecificSession => {
            let b = field;
            b.iter().any(|&x| x != 0).then_some(UasId::Binary(b))
        }
        // Serial numbers, CAA registrations, and ids sent with type "none" (older transmitters,
        // including the shipped Wi-Fi capture) are text.
        _ => text(field)?.map(UasId::Text),
    };
    Ok(Message::BasicId(BasicId {
        id_type,
        ua_type: (ua != 0).then(|| UA_TYPES[usize::from(ua)]),
        uas_id,
    }))
}

fn location(m: &[u8; MESSAGE_SIZE]) -> Location {
    let flags = m[1];
    let status = match flags >> 4 {
        0 => Some("undeclared"),
        1 => Some("ground"),
        2 => Some("airborne"),
        3 => Some("emergency"),
        4 => Some("remote_id_system_failure"),
        _ => None,
    };
    let height_ref = if flags & 0b100 != 0 {
        HeightRef::Ground
    } else {
        HeightRef::Takeoff
    };
    let east_west = flags & 0b10 != 0;
    let mult = flags & 1 != 0;
    // Direction: 0–179 plus 180 when the E/W bit is set; 361 (raw 181 + E/W) is "unknown".
    let dir = u16::from(m[2]) + if east_west { 180 } else { 0 };
    let direction_deg = (dir < 360 && m[2] < 180).then_some(f64::from(dir));
    // Speed: 0.25 m/s steps, or 0.75 m/s steps above 63.75 m/s with the multiplier; 255 with the
    // multiplier is "unknown".
    let speed_m_s = match (mult, m[3]) {
        (true, 255) => None,
        (true, s) => Some(f64::from(s) * 0.75 + 63.75),
        (false, s) => Some(f64::from(s) * 0.25),
    };
    // Vertical speed: signed 0.5 m/s steps within ±62 m/s; 63 m/s (raw 126) is "unknown".
    let vs = f64::from(m[4] as i8) * 0.5;
    let vspeed_m_s = (vs.abs() <= 62.0).then_some(vs);
    let (lat, lon) = lat_lon(m, 5);
    let ts = u16le(m, 21);
    Location {
        status,
        direction_deg,
        speed_m_s,
        vspeed_m_s,
        lat,
        lon,
        pressure_alt_m: altitude(u16le(m, 13)),
        geodetic_alt_m: altitude(u16le(m, 15)),
        height_m: altitude(u16le(m, 17)),
        height_ref,
        horiz_accuracy_m: table(&HORIZ_ACC_M, m[19] & 15),
        vert_accuracy_m: table(&VERT_ACC_M, m[19] >> 4),
        baro_accuracy_m: table(&VERT_ACC_M, m[20] >> 4),
        speed_accuracy_m_s: table(&SPEED_ACC_M_S, m[20] & 15),
        timestamp_ds: (ts <= 36_000).then_some(ts),
        timestamp_accuracy_s: (m[23] & 15 != 0).then(|| f64::from(m[23] & 15) * 0.1),
    }
}

fn auth(m: &[u8; MESSAGE_SIZE]) -> Result<Message<'_>, MessageError> {
    let auth_type = m[1] >> 4;
    let page = m[1] & 15;
    if page == 0 {
        let last_page = m[2];
        if last_page >= AUTH_MAX_PAGES {
            return Err(MessageError::Invalid);
        }
        // The length cannot exceed what the announced pages can hold (17 + 23 per extra page).
        let capacity = 17 + 23 * usize::from(last_page);
        if usize::from(m[3]) > capacity {
            return Err(MessageError::Invalid);
        }
        let ts = u32le(m, 4);
        Ok(Message::Auth(AuthPage {
            auth_type,
            page,
            last_page: Some(last_page),
            length: Some(m[3]),
            timestamp_s: (ts != 0).then(|| ODID_EPOCH_UNIX_S + u64::from(ts)),
            data: &m[8..25],
        }))
    } else {
        Ok(Message::Auth(AuthPage {
            auth_type,
            page,
            last_page: None,
            length: None,
            timestamp_s: None,
            data: &m[2..25],
        }))
    }
}

fn system(m: &[u8; MESSAGE_SIZE]) -> System {
    let flags = m[1];
    let operator_location_type = match flags & 3 {
        0 => Some("takeoff"),
        1 => Some("live_gnss"),
        2 => Some("fixed"),
        _ => None,
    };
    let class_type = (flags >> 2) & 7;
    let classification = match class_type {
        0 => Some("undeclared"),
        1 => Some("eu"),
        _ => None,
    };
    let (operator_lat, operator_lon) = lat_lon(m, 2);
    let (category_eu, class_eu) = if class_type == 1 {
        let cat = match m[17] >> 4 {
            0 => Some("undeclared"),
            1 => Some("open"),
            2 => Some("specific"),
            3 => Some("certified"),
            _ => None,
        };
        let class = match m[17] & 15 {
            0 => Some("undeclared"),
            1 => Some("class_0"),
            2 => Some("class_1"),
            3 => Some("class_2"),
            4 => Some("class_3"),
            5 => Some("class_4"),
            6 => Some("class_5"),
            7 => Some("class_6"),
            _ => None,
        };
        (cat, class)
    } else {
        (None, None)
    };
    let ts = u32le(m, 20);
    System {
        operator_location_type,
        classification,
        operator_lat,
        operator_lon,
        area_count: u16le(m, 10),
        area_radius_m: u16::from(m[12]) * 10,
        area_ceiling_m: altitude(u16le(m, 13)),
        area_floor_m: altitude(u16le(m, 15)),
        category_eu,
        class_eu,
        operator_alt_m: altitude(u16le(m, 18)),
        timestamp_s: (ts != 0).then(|| ODID_EPOCH_UNIX_S + u64::from(ts)),
    }
}

/// The messages of one Open Drone ID payload: a single message or a message pack. Yields one
/// result per message; a malformed pack yields a single `BadPack` and stops.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
    remaining: usize,
    failed: Option<MessageError>,
}

impl<'a> Messages<'a> {
    /// `payload` starts at the first message header (after any counter byte).
    pub fn new(payload: &'a [u8]) -> Self {
        let Some(&h) = payload.first() else {
            return Self::fail(MessageError::Truncated);
        };
        if h >> 4 != 0xF {
            return Self {
                rest: payload,
                remaining: 1,
                failed: None,
            };
        }
        // Pack header: type/version, message size (always 25), message count (1–9). The
        // count must fit the bytes present: a pack is never read past its end.
        let (Some(&size), Some(&count)) = (payload.get(1), payload.get(2)) else {
            return Self::fail(MessageError::BadPack);
        };
        let count = usize::from(count);
        let body = payload.get(3..).unwrap_or_default();
        // An empty pack (transmitters send them while starting up) is valid and says nothing.
        if usize::from(size) != MESSAGE_SIZE || count > PACK_MAX_MESSAGES || body.len() < count * MESSAGE_SIZE {
            return Self::fail(MessageError::BadPack);
        }
        Self {
            rest: body,
            remaining: count,
            failed: None,
        }
    }

    fn fail(e: MessageError) -> Self {
        Self {
            rest: &[],
            remaining: 0,
            failed: Some(e),
        }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, MessageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.failed.take() {
            return Some(Err(e));
        }
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let (m, rest) = self.rest.split_at_checked(MESSAGE_SIZE).unwrap_or((self.rest, &[]));
        self.rest = rest;
        Some(decode_message(m))
    }
}
