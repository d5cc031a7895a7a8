//! Cursor-on-Target events (CoT XML 2.0) for the kit and its contacts (issue 15),
//! written with quick-xml so every attribute and text is escaped by the writer.
//!
//! uids are stable per contact, so a TAK map moves one marker instead of adding one
//! per update: `ndefender-<kit>` (the kit), `ndefender-<kit>-rid-<id>` (a RemoteID
//! drone), `…-rid-<id>-pilot` / `…-rid-<id>-home` (its operator, as the drone reports
//! it: live/fixed position → pilot, take-off position → home; the home point is kept
//! while the drone lives, so one that reported both shows both), `…-rf-<id>`, `…-fpv-<id>`.
//!
//! Type codes (MIL-STD-2525 as CoT spells it):
//!
//! | what | type | point |
//! |---|---|---|
//! | RemoteID drone | `a-u-A-M-H-Q` (unknown affiliation, air, rotary wing, UAV) | reported position, `ce` 10 m |
//! | pilot / operator | `a-u-G` (unknown ground unit) | reported operator position |
//! | home (take-off) point | `b-m-p-s-p-i` (map point of interest) | reported take-off position |
//! | RF / FPV contact | `a-u-A` (unknown air track) | the kit's position, `ce` = `tak.rf_ce_m` (position unknown, somewhere in range) |
//! | the kit | `a-f-G-E-S` (friendly ground sensor equipment) | its GPS fix (`ce` from HDOP) or 0,0 with `ce` 9999999 without a fix |
//!
//! `stale` is the event time plus the contact's TTL (`remoteid.contact_ttl_s`,
//! `antsdr.contact_ttl_s`, `esp32.stale_s` for FPV; the kit: three `tak.interval_s`).
//! `<remarks>` carries serial, operator id, altitude, speed and frequency where known.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use std::time::{Duration, UNIX_EPOCH};

/// "Unknown" in CoT's point accuracy fields.
pub const UNKNOWN_ERROR: f64 = 9_999_999.0;

/// One CoT event before serialisation.
#[derive(Debug, Clone, PartialEq)]
pub struct CotEvent {
    pub uid: String,
    pub kind: String,
    /// Epoch ms of `time`/`start`.
    pub time_ms: u64,
    pub stale_ms: u64,
    pub lat: f64,
    pub lon: f64,
    pub hae: f64,
    pub ce: f64,
    pub le: f64,
    pub callsign: String,
    pub remarks: String,
    /// `(course deg, speed m/s)`.
    pub track: Option<(f64, f64)>,
}

fn iso(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn num(v: f64) -> String {
    if v.is_finite() {
        // Seven decimals are ~1 cm of latitude; CoT readers parse any decimal.
        let s = format!("{v:.7}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s.is_empty() || s == "-" {
            "0".into()
        } else {
            s.to_owned()
        }
    } else {
        "0".into()
    }
}

impl CotEvent {
    /// The event as one XML document (declaration included), as TAK expects per datagram
    /// and back to back on a stream.
    pub fn to_xml(&self) -> Result<Vec<u8>, std::io::Error> {
        let mut w = Writer::new(Vec::with_capacity(512));
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), Some("yes"))))?;
        let t = iso(self.time_ms);
        let stale = iso(self.stale_ms);
        let mut ev = BytesStart::new("event");
        ev.push_attribute(("version", "2.0"));
        ev.push_attribute(("uid", self.uid.as_str()));
        ev.push_attribute(("type", self.kind.as_str()));
        ev.push_attribute(("how", "m-g"));
        ev.push_attribute(("time", t.as_str()));
        ev.push_attribute(("start", t.as_str()));
        ev.push_attribute(("stale", stale.as_str()));
        w.write_event(Event::Start(ev))?;
        let mut p = BytesStart::new("point");
        for (k, v) in [
            ("lat", self.lat),
            ("lon", self.lon),
            ("hae", self.hae),
            ("ce", self.ce),
            ("le", self.le),
        ] {
            p.push_attribute((k, num(v).as_str()));
        }
        w.write_event(Event::Empty(p))?;
        w.write_event(Event::Start(BytesStart::new("detail")))?;
        let mut c = BytesStart::new("contact");
        c.push_attribute(("callsign", self.callsign.as_str()));
        w.write_event(Event::Empty(c))?;
        if let Some((course, speed)) = self.track {
            let mut tr = BytesStart::new("track");
            tr.push_attribute(("course", num(course).as_str()));
            tr.push_attribute(("speed", num(speed).as_str()));
            w.write_event(Event::Empty(tr))?;
        }
        w.write_event(Event::Start(BytesStart::new("remarks")))?;
        w.write_event(Event::Text(BytesText::new(&self.remarks)))?;
        w.write_event(Event::End(BytesEnd::new("remarks")))?;
        w.write_event(Event::End(BytesEnd::new("detail")))?;
        w.write_event(Event::End(BytesEnd::new("event")))?;
        Ok(w.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() -> Result<(), Box<dyn std::error::Error>> {
        let e = CotEvent {
            uid: "ndefender-k-rid-a\"<b>".into(),
            kind: "a-u-A-M-H-Q".into(),
            time_ms: 1_700_000_000_123,
            stale_ms: 1_700_000_015_123,
            lat: 52.5,
            lon: 13.25,
            hae: 120.0,
            ce: 10.0,
            le: 10.0,
            callsign: "D & 1".into(),
            remarks: "serial=<x>".into(),
            track: Some((90.0, 5.5)),
        };
        let x = String::from_utf8(e.to_xml()?)?;
        assert!(x.contains(r#"uid="ndefender-k-rid-a&quot;&lt;b&gt;""#), "{x}");
        assert!(x.contains(r#"time="2023-11-14T22:13:20.123Z""#), "{x}");
        assert!(x.contains(r#"stale="2023-11-14T22:13:35.123Z""#), "{x}");
        assert!(
            x.contains(r#"<point lat="52.5" lon="13.25" hae="120" ce="10" le="10"/>"#),
            "{x}"
        );
        assert!(x.contains("serial=&lt;x&gt;"), "{x}");
        Ok(())
    }
}
