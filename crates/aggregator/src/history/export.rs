//! A track in the three export formats: GeoJSON (RFC 7946: a LineString and one timestamped
//! Point per fix), KML 2.2 (a `gx:Track` Google Earth plays back in time, plus the path), CSV.
//!
//! Each is written straight into one pre-sized string, with no allocation per point: a day of
//! fixes at 1 Hz is 86 400 points, and a `serde_json::Value` (or a formatted time `String`) per
//! point would cost several times the query.

use super::query::{Track, TrackPoint, EXTRAS};
use serde_json::json;
use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

/// Epoch ms as RFC 3339 UTC with milliseconds, e.g. `2026-12-06T12:00:00.000Z`.
fn time(ms: u64) -> humantime::Rfc3339Timestamp {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms))
}

/// `[lon,lat]` or `[lon,lat,alt]` (RFC 7946 order). Stored numbers are finite (checked on input),
/// so Rust's shortest round-trip form is valid JSON.
fn push_position(o: &mut String, p: &TrackPoint) {
    let _ = match p.altitude_m() {
        Some(a) => write!(o, "[{},{},{}]", p.lon, p.lat, a),
        None => write!(o, "[{},{}]", p.lon, p.lat),
    };
}

pub fn geojson(t: &Track) -> String {
    let c = &t.contact;
    let line_props = json!({
        "id": c.id,
        "type": c.kind,
        "serial": c.serial,
        "operator_id": c.operator_id,
        "model": c.model,
        "points": t.points.len(),
        "start_ts": t.points.first().map(|p| p.ts),
        "end_ts": t.points.last().map(|p| p.ts),
        "truncated": t.truncated,
    });
    let mut o = String::with_capacity(512 + t.points.len() * 240);
    o.push_str(
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"LineString","coordinates":["#,
    );
    for (i, p) in t.points.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        push_position(&mut o, p);
    }
    let _ = write!(o, r#"]}},"properties":{line_props}}}"#);
    for p in &t.points {
        o.push_str(r#",{"type":"Feature","geometry":{"type":"Point","coordinates":"#);
        push_position(&mut o, p);
        let _ = write!(o, r#"}},"properties":{{"time":"{}","time_ms":{}"#, time(p.ts), p.ts);
        for (k, v) in p.known() {
            let _ = write!(o, r#","{k}":{v}"#);
        }
        o.push_str("}}");
    }
    o.push_str("]}");
    o
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

pub fn kml(t: &Track) -> String {
    let c = &t.contact;
    let name = xml_escape(&c.id);
    let mut desc = format!("{} contact", c.kind);
    for (k, v) in [("serial", &c.serial), ("operator", &c.operator_id), ("model", &c.model)] {
        if let Some(v) = v {
            let _ = write!(desc, ", {k} {v}");
        }
    }
    let mut o = String::with_capacity(256 + t.points.len() * 120);
    let _ = write!(
        o,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <kml xmlns=\"http://www.opengis.net/kml/2.2\" xmlns:gx=\"http://www.google.com/kml/ext/2.2\">\n\
         <Document>\n<name>{name}</name>\n<description>{}</description>\n\
         <Style id=\"track\"><LineStyle><color>ff0000ff</color><width>3</width></LineStyle></Style>\n\
         <Placemark>\n<name>{name}</name>\n<styleUrl>#track</styleUrl>\n<gx:Track>\n<altitudeMode>absolute</altitudeMode>\n",
        xml_escape(&desc)
    );
    for p in &t.points {
        let _ = writeln!(o, "<when>{}</when>", time(p.ts));
    }
    for p in &t.points {
        let _ = writeln!(
            o,
            "<gx:coord>{} {} {}</gx:coord>",
            p.lon,
            p.lat,
            p.altitude_m().unwrap_or(0.0)
        );
    }
    o.push_str("</gx:Track>\n</Placemark>\n");
    o.push_str("<Placemark>\n<name>path</name>\n<styleUrl>#track</styleUrl>\n<LineString>\n<altitudeMode>absolute</altitudeMode>\n<coordinates>\n");
    for p in &t.points {
        let _ = writeln!(o, "{},{},{}", p.lon, p.lat, p.altitude_m().unwrap_or(0.0));
    }
    o.push_str("</coordinates>\n</LineString>\n</Placemark>\n</Document>\n</kml>\n");
    o
}

/// `time_ms,time_utc,lat,lon,` then the optional values in [`EXTRAS`] order.
pub fn csv_header() -> String {
    let mut h = String::from("time_ms,time_utc,lat,lon");
    for k in EXTRAS {
        h.push(',');
        h.push_str(k);
    }
    h
}

pub fn csv(t: &Track) -> String {
    let mut o = String::with_capacity(128 + t.points.len() * 100);
    o.push_str(&csv_header());
    o.push('\n');
    for p in &t.points {
        let _ = write!(o, "{},{},{},{}", p.ts, time(p.ts), p.lat, p.lon);
        for v in p.extras {
            o.push(',');
            if let Some(v) = v {
                let _ = write!(o, "{v}");
            }
        }
        o.push('\n');
    }
    o
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::history::query::ContactRow;

    fn track() -> Track {
        Track {
            contact: ContactRow {
                id: "rid:A<&>".into(),
                kind: "REMOTE_ID".into(),
                last_seen_ts: 1000,
                serial: Some("A<&>".into()),
                fixes: 2,
                cid: 1,
                ..ContactRow::default()
            },
            points: vec![
                TrackPoint {
                    ts: 1_765_000_000_000,
                    lat: 48.0,
                    lon: 11.0,
                    extras: [Some(100.0), Some(5.0), None, None, None, None, None, None],
                },
                TrackPoint {
                    ts: 1_765_000_001_000,
                    lat: 48.001,
                    lon: 11.001,
                    extras: [None, None, Some(45.0), None, None, Some(47.9), Some(10.9), None],
                },
            ],
            truncated: false,
        }
    }

    #[test]
    fn geojson_has_lon_lat_order_a_line_and_timestamped_points() {
        let g: serde_json::Value = serde_json::from_str(&geojson(&track())).unwrap();
        assert_eq!(g["type"], "FeatureCollection");
        let f = g["features"].as_array().unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0]["geometry"]["type"], "LineString");
        let first: Vec<f64> = f[0]["geometry"]["coordinates"][0]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect();
        assert_eq!(first, [11.0, 48.0, 100.0]);
        assert_eq!(f[0]["properties"]["points"], 2);
        assert_eq!(f[1]["properties"]["time"], "2025-12-06T05:46:40.000Z");
        assert_eq!(f[1]["properties"]["time_ms"], 1_765_000_000_000u64);
        assert_eq!(f[2]["properties"]["operator_lat"], 47.9);
        assert!(f[2]["properties"].get("lat").is_none());
    }

    #[test]
    fn kml_is_escaped_and_has_one_when_per_coord() {
        let k = kml(&track());
        assert!(k.contains("<name>rid:A&lt;&amp;&gt;</name>"));
        assert_eq!(k.matches("<when>").count(), 2);
        assert_eq!(k.matches("<gx:coord>").count(), 2);
        assert!(k.contains("<gx:coord>11 48 100</gx:coord>"));
    }

    const CSV_HEADER_TEXT: &str = "time_ms,time_utc,lat,lon,altitude_m,speed_m_s,heading_deg,vspeed_m_s,\
                                   height_agl_m,operator_lat,operator_lon,operator_alt_m";

    #[test]
    fn csv_has_a_header_and_empty_cells_for_unknowns() {
        let c = csv(&track());
        let lines: Vec<&str> = c.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], CSV_HEADER_TEXT);
        assert_eq!(lines[0].split(',').count(), lines[2].split(',').count());
        assert!(lines[1].starts_with("1765000000000,2025-12-06T05:46:40.000Z,48,11,100,5,,"));
    }
}
