//! AntSDR feed lines → RF contacts and the `rf` section (aggregator §5, §6.2).

use super::contacts::{rf_severity, StoredRf};
pub use super::feedline::Outcome;
use super::feedline::{num_member, passthrough_data, str_member, uint_member, FeedLine};
use super::{Feed, FeedHealth, Removal, State};
use ndefender_contract::contact::{AntsdrSourceTag, RfContact, RfContactData, RfFeatures, RfTag};
use ndefender_contract::enums::RfStatus;
use ndefender_contract::events::kind;
use ndefender_contract::Source;
use serde_json::{Map, Value};

pub fn apply_line(st: &mut State, line: &str) -> Outcome {
    let now = st.clock.now_ms();
    let l = match st.parse_feed_line(Feed::Antsdr, line) {
        Ok(l) => l,
        Err(r) => return r.into(),
    };
    let kind = match l.kind.as_str() {
        "CONTACT_NEW" => kind::RF_CONTACT_NEW.to_owned(),
        "CONTACT_UPDATE" => kind::RF_CONTACT_UPDATE.to_owned(),
        "CONTACT_LOST" => kind::RF_CONTACT_LOST.to_owned(),
        other => other.to_owned(),
    };
    let is_upsert = kind == kind::RF_CONTACT_NEW || kind == kind::RF_CONTACT_UPDATE;
    if is_upsert && (now.saturating_sub(l.time_ms) as f64) >= st.cfg.antsdr.contact_ttl_s * 1000.0 {
        st.counters(Feed::Antsdr).stale += 1;
        return Outcome::Stale;
    }
    st.last_activity.insert(Feed::Antsdr, st.clock.monotonic());

    let result = if is_upsert {
        upsert(st, &l, &kind)
    } else if kind == kind::RF_CONTACT_LOST {
        lost(st, &l)
    } else {
        passthrough_data(&l).map(|v| (kind, v)).ok_or(Outcome::Invalid)
    };
    let (kind, data) = match result {
        Ok(x) => x,
        Err(o) => {
            if o == Outcome::Invalid {
                st.counters(Feed::Antsdr).invalid += 1;
            }
            // Even a LOST for an unknown id is feed activity; the section recovers.
            mark_ok(st);
            return o;
        }
    };
    st.counters(Feed::Antsdr).accepted += 1;
    mark_ok(st);
    let dirty = &mut st.dirty;
    let sec = &mut st.snap.rf;
    State::set_if_changed(dirty, &mut sec.last_event_type, Some(kind.clone()));
    State::set_if_changed(dirty, &mut sec.last_event, data.as_object().cloned());
    State::set_if_changed(dirty, &mut sec.last_timestamp_ms, Some(l.time_ms));
    st.emit(&kind, l.time_ms, Source::Antsdr, &data);
    Outcome::Emitted(kind)
}

fn mark_ok(st: &mut State) {
    let dirty = &mut st.dirty;
    let sec = &mut st.snap.rf;
    State::set_if_changed(dirty, &mut sec.status, RfStatus::Ok);
    State::set_if_changed(dirty, &mut sec.scan_active, true);
    State::set_if_changed(dirty, &mut sec.last_error, None);
    st.health.insert(Feed::Antsdr, FeedHealth::Fresh);
}

/// Band by frequency when the line names none (aggregator §5.2).
pub fn band_for(freq_hz: f64) -> &'static str {
    let g = freq_hz / 1e9;
    match g {
        g if (0.90..=0.93).contains(&g) => "915",
        g if (1.0..=1.4).contains(&g) => "1G2",
        g if (2.4..=2.5).contains(&g) => "2G4",
        g if (3.1..=3.5).contains(&g) => "3G3",
        g if (5.6..=6.0).contains(&g) => "5G8",
        _ => "unknown",
    }
}

fn bucket_of(freq_hz: f64) -> f64 {
    (freq_hz / 250_000.0).floor() * 250_000.0
}

/// Normalises NEW/UPDATE data to the scanner shape (aggregator §5.2). Returns
/// the data and whether a confidence was given.
pub fn normalize(l: &FeedLine) -> Option<(RfContactData, bool)> {
    let d = &l.data;
    let freq = ["freq_hz", "peak_freq_hz", "center_hz", "bucket_hz"]
        .iter()
        .find_map(|k| num_member(d, k).filter(|f| *f > 0.0))?;
    let bucket = ["bucket_hz", "center_hz"]
        .iter()
        .find_map(|k| num_member(d, k).filter(|f| *f > 0.0))
        .unwrap_or_else(|| bucket_of(freq));
    let id = str_member(d, "id")
        .or_else(|| str_member(&l.top, "id"))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("rf:{}", bucket as u64));
    let band = str_member(d, "band")
        .map(str::to_owned)
        .unwrap_or_else(|| band_for(freq).to_owned());
    let snr = num_member(d, "snr_db");
    let peak = num_member(d, "peak_db");
    let noise = num_member(d, "noise_floor_db").or(match (peak, snr) {
        (Some(p), Some(s)) => Some(p - s),
        _ => None,
    });
    let conf = num_member(d, "confidence");
    let empty = Map::new();
    let f = d.get("features").and_then(Value::as_object).unwrap_or(&empty);
    let fnum = |k: &str| num_member(f, k);
    let features = RfFeatures {
        prominence_db: fnum("prominence_db").unwrap_or(0.0),
        cluster_size: uint_member(f, "cluster_size").unwrap_or(0),
        pattern_hint: str_member(f, "pattern_hint")
            .or_else(|| str_member(d, "family_hint"))
            .unwrap_or("unknown")
            .to_owned(),
        hop_hint: str_member(f, "hop_hint").unwrap_or("none").to_owned(),
        bandwidth_est_hz: fnum("bandwidth_est_hz").unwrap_or(0.0),
        burstiness: fnum("burstiness").unwrap_or(0.0),
        hop_rate_hz: fnum("hop_rate_hz").unwrap_or(0.0),
        control_score: fnum("control_score").unwrap_or(0.0),
        class_path: f
            .get("class_path")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
        classification_confidence: fnum("classification_confidence").unwrap_or(0.0),
        control_correlation: f.get("control_correlation").and_then(Value::as_bool).unwrap_or(false),
    };
    let mut data = RfContactData {
        id,
        freq_hz: freq,
        bucket_hz: bucket,
        band,
        snr_db: snr.unwrap_or(0.0),
        peak_db: peak.unwrap_or(0.0),
        noise_floor_db: noise.unwrap_or(0.0),
        bandwidth_class: str_member(d, "bandwidth_class").unwrap_or("unknown").to_owned(),
        confidence: conf.unwrap_or(0.0),
        features,
    };
    data.sanitize();
    Some((data, conf.is_some()))
}

fn upsert(st: &mut State, l: &FeedLine, kind_in: &str) -> Result<(String, Value), Outcome> {
    let (data, has_conf) = normalize(l).ok_or(Outcome::Invalid)?;
    let severity = rf_severity(has_conf.then_some(data.confidence));
    let known = st.contacts.rf.contains_key(&data.id);
    let kind = if known {
        kind::RF_CONTACT_UPDATE
    } else {
        kind::RF_CONTACT_NEW
    };
    if kind != kind_in {
        st.counters(Feed::Antsdr).lifecycle_rewrites += 1;
    }
    let id = data.id.clone();
    if severity.rank() >= ndefender_contract::enums::Severity::High.rank() {
        st.note_high([id.clone()]);
    }
    let v = serde_json::to_value(&data).map_err(|_| Outcome::Invalid)?;
    st.contacts.rf.insert(
        id.clone(),
        StoredRf {
            contact: RfContact {
                kind: RfTag::Rf,
                source: AntsdrSourceTag::Antsdr,
                last_seen_ts: l.time_ms,
                severity,
                data,
                seen_by: None,
            },
        },
    );
    if !known && st.contacts.rf.len() > st.cfg.contacts.max_per_kind {
        if let Some(old) = st.contacts.oldest_rf().filter(|o| *o != id) {
            evict(st, &old, Removal::Evicted);
        }
    }
    Ok((kind.to_owned(), v))
}

/// Removes an RF contact and emits RF_CONTACT_LOST with its stored data.
pub fn evict(st: &mut State, id: &str, why: Removal) {
    if let Some(s) = st.contacts.rf.remove(id) {
        *st.removed.entry(("rf", why)).or_insert(0) += 1;
        let ts = st.clock.now_ms();
        st.emit(kind::RF_CONTACT_LOST, ts, Source::Antsdr, &s.contact.data);
    }
}

fn lost(st: &mut State, l: &FeedLine) -> Result<(String, Value), Outcome> {
    let d = &l.data;
    let id = str_member(d, "id")
        .or_else(|| str_member(&l.top, "id"))
        .map(str::to_owned)
        .or_else(|| {
            ["bucket_hz", "center_hz", "freq_hz", "peak_freq_hz"]
                .iter()
                .find_map(|k| num_member(d, k).filter(|f| *f > 0.0))
                .map(|f| {
                    let b = if d.contains_key("bucket_hz") || d.contains_key("center_hz") {
                        f
                    } else {
                        bucket_of(f)
                    };
                    format!("rf:{}", b as u64)
                })
        });
    let id = id.ok_or(Outcome::Invalid)?;
    let Some(s) = st.contacts.rf.remove(&id) else {
        st.counters(Feed::Antsdr).unknown_lost += 1;
        return Err(Outcome::UnknownLost);
    };
    *st.removed.entry(("rf", Removal::Lost)).or_insert(0) += 1;
    let v = serde_json::to_value(&s.contact.data).map_err(|_| Outcome::Invalid)?;
    Ok((kind::RF_CONTACT_LOST.to_owned(), v))
}
