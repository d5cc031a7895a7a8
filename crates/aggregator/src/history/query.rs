//! The read side: bounded queries on a read connection (see [`super::History::query`]).

use super::record::Kind;
use super::store::HOUR_MS;
use super::QueryError;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde::Serialize;

/// Page size bounds for the contact list.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;
pub const MAX_OFFSET: u32 = 100_000;
/// At most this many points in one track answer (a day at 1 Hz fits).
pub const MAX_TRACK_POINTS: u32 = 100_000;
/// Detections shown with a contact's detail.
pub const DETAIL_DETECTIONS: u32 = 50;

#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub since: Option<u64>,
    pub until: Option<u64>,
    pub kind: Option<Kind>,
    pub q: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// One row of the contact list.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ContactRow {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub first_seen_ts: u64,
    pub last_seen_ts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ua_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freq_hz: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    pub fixes: u64,
    pub detections: u64,
    #[serde(skip)]
    pub cid: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContactPage {
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
    pub next_offset: Option<u32>,
    pub contacts: Vec<ContactRow>,
}

macro_rules! contact_cols {
    () => {
        "cid, id, kind, first_seen, last_seen, serial, operator_id, model, ua_type, mac, band, freq_hz, class, fixes, \
         detections"
    };
}
const CONTACT_COLS: &str = contact_cols!();
macro_rules! point_cols {
    () => {
        "ts, lat, lon, alt_m, speed, heading, vspeed, agl, op_lat, op_lon, op_alt"
    };
}
/// One range scan of the `(cid, ts)` primary key (the table is its own covering index).
const TRACK_SQL: &str = concat!(
    "SELECT ",
    point_cols!(),
    " FROM fixes WHERE cid = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts LIMIT ?4"
);

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

fn contact_row(r: &Row<'_>) -> rusqlite::Result<ContactRow> {
    Ok(ContactRow {
        cid: r.get(0)?,
        id: r.get(1)?,
        kind: r.get(2)?,
        first_seen_ts: u(r.get(3)?),
        last_seen_ts: u(r.get(4)?),
        serial: r.get(5)?,
        operator_id: r.get(6)?,
        model: r.get(7)?,
        ua_type: r.get(8)?,
        mac: r.get(9)?,
        band: r.get(10)?,
        freq_hz: r.get(11)?,
        class: r.get(12)?,
        fixes: u(r.get(13)?),
        detections: u(r.get(14)?),
    })
}

/// `q` as a LIKE pattern matching anywhere, its own `%`, `_` and `\` taken literally.
fn like_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Contacts seen within [since, until], newest first.
pub fn contacts(c: &Connection, f: &ContactFilter) -> Result<ContactPage, QueryError> {
    let mut wh = vec!["last_seen >= ?1", "first_seen <= ?2"];
    let mut args: Vec<rusqlite::types::Value> = vec![
        (f.since.unwrap_or(0) as i64).into(),
        (f.until.map_or(i64::MAX, |t| t as i64)).into(),
    ];
    if let Some(k) = f.kind {
        wh.push("kind = ?3");
        args.push(k.as_str().to_owned().into());
    }
    if let Some(q) = &f.q {
        wh.push(if f.kind.is_some() {
            "(id LIKE ?4 ESCAPE '\\' OR serial LIKE ?4 ESCAPE '\\' OR operator_id LIKE ?4 ESCAPE '\\' OR model LIKE ?4 ESCAPE '\\')"
        } else {
            "(id LIKE ?3 ESCAPE '\\' OR serial LIKE ?3 ESCAPE '\\' OR operator_id LIKE ?3 ESCAPE '\\' OR model LIKE ?3 ESCAPE '\\')"
        });
        args.push(like_pattern(q).into());
    }
    let w = wh.join(" AND ");
    let total: i64 = c.query_row(
        &format!("SELECT count(*) FROM contacts WHERE {w}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let sql = format!(
        "SELECT {CONTACT_COLS} FROM contacts WHERE {w} ORDER BY last_seen DESC, cid DESC LIMIT {} OFFSET {}",
        f.limit, f.offset
    );
    let mut st = c.prepare(&sql)?;
    let contacts = st
        .query_map(params_from_iter(args.iter()), contact_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let end = u64::from(f.offset) + contacts.len() as u64;
    let next_offset = (end < u(total) && end <= u64::from(MAX_OFFSET)).then_some(end as u32);
    Ok(ContactPage {
        total: u(total),
        limit: f.limit,
        offset: f.offset,
        next_offset,
        contacts,
    })
}

pub fn contact(c: &Connection, id: &str) -> Result<ContactRow, QueryError> {
    c.prepare_cached(concat!("SELECT ", contact_cols!(), " FROM contacts WHERE id = ?1"))?
        .query_row([id], contact_row)
        .optional()?
        .ok_or(QueryError::NotFound)
}

/// The optional values of a fix, in the order of their columns after `ts, lat, lon`, under
/// the names the API and the exports give them.
pub const EXTRAS: [&str; 8] = [
    "altitude_m",
    "speed_m_s",
    "heading_deg",
    "vspeed_m_s",
    "height_agl_m",
    "operator_lat",
    "operator_lon",
    "operator_alt_m",
];

/// One stored position fix. The optional values sit in an array indexed like [`EXTRAS`], so
/// a row is decoded, serialised and exported by one loop each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackPoint {
    pub ts: u64,
    pub lat: f64,
    pub lon: f64,
    pub extras: [Option<f64>; 8],
}

impl TrackPoint {
    pub fn altitude_m(&self) -> Option<f64> {
        self.extras.first().copied().flatten()
    }

    /// The optional values that are known, with their names.
    pub fn known(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        EXTRAS.iter().zip(self.extras).filter_map(|(k, v)| v.map(|v| (*k, v)))
    }
}

/// `{"ts","lat","lon"}` plus the known optional values (unknown ones are left out).
impl Serialize for TrackPoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("ts", &self.ts)?;
        m.serialize_entry("lat", &self.lat)?;
        m.serialize_entry("lon", &self.lon)?;
        for (k, v) in self.known() {
            m.serialize_entry(k, &v)?;
        }
        m.end()
    }
}

fn point(r: &Row<'_>) -> rusqlite::Result<TrackPoint> {
    let mut p = TrackPoint {
        ts: u(r.get(0)?),
        lat: r.get(1)?,
        lon: r.get(2)?,
        extras: [None; 8],
    };
    for (i, v) in p.extras.iter_mut().enumerate() {
        *v = r.get(3 + i)?;
    }
    Ok(p)
}

const POINT_COLS: &str = point_cols!();

/// A contact's fixes in [since, until], oldest first, at most `max`.
#[derive(Debug, Clone)]
pub struct Track {
    pub contact: ContactRow,
    pub points: Vec<TrackPoint>,
    /// More fixes exist in the range than were returned.
    pub truncated: bool,
}

pub fn track(c: &Connection, id: &str, since: Option<u64>, until: Option<u64>, max: u32) -> Result<Track, QueryError> {
    let contact = contact(c, id)?;
    let mut st = c.prepare_cached(TRACK_SQL)?;
    let mut rows = st.query(params![
        contact.cid,
        since.unwrap_or(0) as i64,
        until.map_or(i64::MAX, |t| t as i64),
        i64::from(max) + 1
    ])?;
    // The contact row counts its fixes: one allocation for the whole track.
    let mut points = Vec::with_capacity(contact.fixes.min(u64::from(max) + 1) as usize);
    while let Some(r) = rows.next()? {
        points.push(point(r)?);
    }
    let truncated = points.len() > max as usize;
    points.truncate(max as usize);
    Ok(Track {
        contact,
        points,
        truncated,
    })
}

/// One RF/FPV detection as the detail shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectionRow {
    pub ts: u64,
    pub freq_hz: f64,
    pub level: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snr_db: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContactDetail {
    #[serde(flatten)]
    pub contact: ContactRow,
    /// First and last stored fix (RemoteID).
    pub first_fix: Option<TrackPoint>,
    pub last_fix: Option<TrackPoint>,
    /// The newest detections (RF/FPV), newest first.
    pub recent_detections: Vec<DetectionRow>,
}

pub fn detail(c: &Connection, id: &str) -> Result<ContactDetail, QueryError> {
    let contact = contact(c, id)?;
    let fix = |order: &str| -> rusqlite::Result<Option<TrackPoint>> {
        c.query_row(
            &format!("SELECT {POINT_COLS} FROM fixes WHERE cid = ?1 ORDER BY ts {order} LIMIT 1"),
            [contact.cid],
            point,
        )
        .optional()
    };
    let first_fix = fix("ASC")?;
    let last_fix = fix("DESC")?;
    let mut st = c.prepare_cached(
        "SELECT ts, freq_hz, level, snr_db, class, confidence FROM detections WHERE cid = ?1 ORDER BY ts DESC LIMIT ?2",
    )?;
    let recent_detections = st
        .query_map(params![contact.cid, DETAIL_DETECTIONS], |r| {
            Ok(DetectionRow {
                ts: u(r.get(0)?),
                freq_hz: r.get(1)?,
                level: r.get(2)?,
                snr_db: r.get(3)?,
                class: r.get(4)?,
                confidence: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ContactDetail {
        contact,
        first_fix,
        last_fix,
        recent_detections,
    })
}

/// One hour of the timeline for one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    pub hour_ts: u64,
    #[serde(rename = "type")]
    pub kind: String,
    /// Distinct contacts seen in the hour.
    pub contacts: u64,
    /// Sightings (contact events) in the hour.
    pub events: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindTotal {
    #[serde(rename = "type")]
    pub kind: String,
    pub contacts: u64,
    pub events: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub since: u64,
    pub until: u64,
    pub bucket_ms: u64,
    pub buckets: Vec<Bucket>,
    /// Distinct contacts per kind over the whole range.
    pub totals: Vec<KindTotal>,
}

/// Counts per hour and kind over [since, until] (hours that overlap the range).
pub fn summary(c: &Connection, since: u64, until: u64) -> Result<Summary, QueryError> {
    let from = (since - since % HOUR_MS) as i64;
    let to = until as i64;
    let mut st = c.prepare_cached(
        "SELECT h.hour, c.kind, count(*), sum(h.events) FROM hourly h JOIN contacts c ON c.cid = h.cid
         WHERE h.hour >= ?1 AND h.hour <= ?2 GROUP BY h.hour, c.kind ORDER BY h.hour, c.kind",
    )?;
    let buckets = st
        .query_map(params![from, to], |r| {
            Ok(Bucket {
                hour_ts: u(r.get(0)?),
                kind: r.get(1)?,
                contacts: u(r.get(2)?),
                events: u(r.get(3)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut st = c.prepare_cached(
        "SELECT c.kind, count(DISTINCT h.cid), sum(h.events) FROM hourly h JOIN contacts c ON c.cid = h.cid
         WHERE h.hour >= ?1 AND h.hour <= ?2 GROUP BY c.kind ORDER BY c.kind",
    )?;
    let totals = st
        .query_map(params![from, to], |r| {
            Ok(KindTotal {
                kind: r.get(0)?,
                contacts: u(r.get(1)?),
                events: u(r.get(2)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Summary {
        since,
        until,
        bucket_ms: HOUR_MS,
        buckets,
        totals,
    })
}
