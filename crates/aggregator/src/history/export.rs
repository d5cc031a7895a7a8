//! A track in the three export formats: GeoJSON (RFC 7946: a LineString and one timestamped
//! Point per fix), KML 2.2 (a `gx:Track` Google Earth plays back in time, plus the path), CSV.

use super::query::{Track, TrackPoint};
use serde_json::json;
use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

/// Epoch ms as RFC 3339 UTC with milliseconds, e.g. `2026-12-06T12:00:00.000Z`.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// `[lon,lat]` or `[lon,lat,alt]` (RFC 7946 order). Stored numbers are finite (checked on input),
/// so Rust's shortest round-trip form is valid JSON.
fn push_position(o: &mut String, p: &TrackPoint) {
    let _ = match p.altitude_m {
        Some(a) => write!(o, "[{},{},{}]", p.lon, p.lat, a),
        None => write!(o, "[{},{}]", p.lon, p.lat),
    };
}

/// Written straight into one string: a day of fixes at 1 Hz is 86 400 points, and building a
/// `serde_json::Value` per point would cost several times the query.
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
        let _ = write!(o, r#"}},"properties":{{"time":"{}","time_ms":{}"#, rfc3339(p.ts), p.ts);
        for (k, v) in [
            ("altitude_m", p.altitude_m),
            ("speed_m_s", p.speed_m_s),
            ("heading_deg", p.heading_deg),
            ("vspeed_m_s", p.vspeed_m_s),
            ("height_agl_m", p.height_agl_m),
            ("operator_lat", p.operator_lat),
            ("operator_lon", p.operator_lon),
            ("operator_alt_m", p.operator_alt_m),
        ] {
            if let Some(v) = v {
                let _ = write!(o, r#","{k}":{v}"#);
            }
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
        let _ = writeln!(o, "<when>{}</when>", rfc3339(p.ts));
    }
    for p in &t.points {
        let _ = writeln!(
            o,
            "<gx:coord>{} {} {}</gx:coord>",
            p.lon,
            p.lat,
            p.altitude_m.unwrap_or(0.0)
        );
    }
    o.push_str("</gx:Track>\n</Placemark>\n");
    o.push_str("<Placemark>\n<name>path</name>\n<styleUrl>#track</styleUrl>\n<LineString>\n<altitudeMode>absolute</altitudeMode>\n<coordinates>\n");
    for p in &t.points {
        let _ = writeln!(o, "{},{},{}", p.lon, p.lat, p.altitude_m.unwrap_or(0.0));
    }
    o.push_str("</coordinates>\n</LineString>\n</Placemark>\n</Document>\n</kml>\n");
    o
}

pub const CSV_HEADER: &str = "time_ms,time_utc,lat,lon,altitude_m,speed_m_s,heading_deg,vspeed_m_s,height_agl_m,\
                              operator_lat,operator_lon,operator_alt_m";

pub fn csv(t: &Track) -> String {
    let mut o = String::with_capacity(128 + t.points.len() * 100);
    o.push_str(CSV_HEADER);
    o.push('\n');
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for p in &t.points {
        let _ = writeln!(
            o,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            p.ts,
            rfc3339(p.ts),
            p.lat,
            p.lon,
            opt(p.altitude_m),
            opt(p.speed_m_s),
            opt(p.heading_deg),
            opt(p.vspeed_m_s),
            opt(p.height_agl_m),
            opt(p.operator_lat),
            opt(p.operator_lon),
            opt(p.operator_alt_m)
        );
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
                first_seen_ts: 0,
                last_seen_ts: 1000,
                serial: Some("A<&>".into()),
                operator_id: None,
                model: None,
                ua_type: None,
                mac: None,
                band: None,
                freq_hz: None,
                class: None,
                fixes: 2,
                detections: 0,
                cid: 1,
            },
            points: vec![
                TrackPoint {
                    ts: 1_765_000_000_000,
                    lat: 48.0,
                    lon: 11.0,
                    altitude_m: Some(100.0),
                    speed_m_s: Some(5.0),
                    heading_deg: None,
                    vspeed_m_s: None,
                    height_agl_m: None,
                    operator_lat: None,
                    operator_lon: None,
                    operator_alt_m: None,
                },
                TrackPoint {
                    ts: 1_765_000_001_000,
                    lat: 48.001,
                    lon: 11.001,
                    altitude_m: None,
                    speed_m_s: None,
                    heading_deg: Some(45.0),
                    vspeed_m_s: None,
                    height_agl_m: None,
                    operator_lat: Some(47.9),
                    operator_lon: Some(10.9),
                    operator_alt_m: None,
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

    #[test]
    fn csv_has_a_header_and_empty_cells_for_unknowns() {
        let c = csv(&track());
        let lines: Vec<&str> = c.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].split(',').count(), lines[2].split(',').count());
        assert!(lines[1].starts_with("1765000000000,2025-12-06T05:46:40.000Z,48,11,100,5,,"));
    }
}
