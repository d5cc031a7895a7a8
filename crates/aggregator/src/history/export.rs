//! A track in the three export formats: GeoJSON (RFC 7946: a LineString and one timestamped
//! Point per fix), KML 2.2 (a `gx:Track` Google Earth plays back in time, plus the path), CSV.

use super::query::{Track, TrackPoint};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

/// Epoch ms as RFC 3339 UTC with milliseconds, e.g. `2026-12-06T12:00:00.000Z`.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn position(p: &TrackPoint) -> Vec<f64> {
    // RFC 7946: longitude, latitude[, altitude].
    match p.altitude_m {
        Some(a) => vec![p.lon, p.lat, a],
        None => vec![p.lon, p.lat],
    }
}

pub fn geojson(t: &Track) -> Value {
    let c = &t.contact;
    let mut features = Vec::with_capacity(t.points.len() + 1);
    let times: Vec<u64> = t.points.iter().map(|p| p.ts).collect();
    features.push(json!({
        "type": "Feature",
        "geometry": {
            "type": "LineString",
            "coordinates": t.points.iter().map(position).collect::<Vec<_>>(),
        },
        "properties": {
            "id": c.id,
            "type": c.kind,
            "serial": c.serial,
            "operator_id": c.operator_id,
            "model": c.model,
            "points": t.points.len(),
            "start_ts": times.first(),
            "end_ts": times.last(),
            "truncated": t.truncated,
            "times_ms": times,
        },
    }));
    for p in &t.points {
        let mut props = Map::new();
        props.insert("time".into(), json!(rfc3339(p.ts)));
        if let Value::Object(m) = serde_json::to_value(p).unwrap_or(Value::Null) {
            for (k, v) in m {
                if !matches!(k.as_str(), "lat" | "lon") {
                    props.insert(if k == "ts" { "time_ms".into() } else { k }, v);
                }
            }
        }
        features.push(json!({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": position(p)},
            "properties": props,
        }));
    }
    json!({"type": "FeatureCollection", "features": features})
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
        let g = geojson(&track());
        assert_eq!(g["type"], "FeatureCollection");
        let f = g["features"].as_array().unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0]["geometry"]["type"], "LineString");
        assert_eq!(f[0]["geometry"]["coordinates"][0], json!([11.0, 48.0, 100.0]));
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
