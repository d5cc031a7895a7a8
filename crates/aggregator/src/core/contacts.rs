//! The contact store: RemoteID merge, RF upsert, the FPV contact, severity,
//! distance, ordering and eviction (aggregator §6). Pure: callers pass the time.

use ndefender_contract::contact::*;
use ndefender_contract::enums::Severity;
use std::collections::HashMap;
use std::time::Instant;

const EARTH_RADIUS_M: f64 = 6_371_000.0;

/// Great-circle distance in metres.
pub fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1) = (a.0.to_radians(), a.1.to_radians());
    let (la2, lo2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2) + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// RF severity from confidence (aggregator §6.5).
pub fn rf_severity(confidence: Option<f64>) -> Severity {
    match confidence {
        None => Severity::Unknown,
        Some(c) if c >= 0.8 => Severity::High,
        Some(c) if c >= 0.5 => Severity::Medium,
        Some(_) => Severity::Low,
    }
}

#[derive(Debug, Clone)]
pub struct StoredRid {
    pub contact: RemoteIdContact,
    /// Monotonic receipt of the last event (replay ages are measured on it).
    pub received: Instant,
    pub distance_m: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct StoredRf {
    pub contact: RfContact,
}

/// All contacts, keyed by id per kind.
#[derive(Debug, Default)]
pub struct ContactStore {
    pub rid: HashMap<String, StoredRid>,
    pub rf: HashMap<String, StoredRf>,
    pub fpv: Option<FpvContact>,
}

/// Result of a RemoteID merge.
pub struct RidMerge {
    pub is_new: bool,
    pub data: RemoteIdContactEvent,
}

impl ContactStore {
    /// Merges a RemoteID NEW/UPDATE: present members replace, absent keep; lat/lon
    /// only as a pair (the caller passes them only as a valid pair);
    /// `last_seen_ts` = max(stored, event).
    pub fn merge_rid(
        &mut self,
        id: &str,
        last_seen_ts: u64,
        fields: RemoteIdFields,
        received: Instant,
        kit: Option<(f64, f64)>,
        high_radius_m: f64,
    ) -> RidMerge {
        let is_new = !self.rid.contains_key(id);
        let entry = self.rid.entry(id.to_owned()).or_insert_with(|| StoredRid {
            contact: RemoteIdContact {
                id: id.to_owned(),
                kind: RemoteIdTag::RemoteId,
                source: RemoteIdSourceTag::Remoteid,
                last_seen_ts,
                severity: Severity::Medium,
                fields: RemoteIdFields::default(),
            },
            received,
            distance_m: None,
        });
        let c = &mut entry.contact;
        c.last_seen_ts = c.last_seen_ts.max(last_seen_ts);
        let f = &mut c.fields;
        if fields.model.is_some() {
            f.model = fields.model;
        }
        if fields.operator_id.is_some() {
            f.operator_id = fields.operator_id;
        }
        if fields.lat.is_some() && fields.lon.is_some() {
            f.lat = fields.lat;
            f.lon = fields.lon;
        }
        if fields.altitude_m.is_some() {
            f.altitude_m = fields.altitude_m;
        }
        if fields.speed_m_s.is_some() {
            f.speed_m_s = fields.speed_m_s;
        }
        merge_v11(
            f,
            RemoteIdFields {
                model: None,
                operator_id: None,
                ..fields
            },
        );
        entry.received = received;
        rid_rank(entry, kit, high_radius_m);
        RidMerge {
            is_new,
            data: entry.contact.event_data(),
        }
    }

    /// Re-derives distance and severity of every RemoteID contact (GPS changed).
    /// Returns the ids whose severity rose to high or above.
    pub fn rerank_rid(&mut self, kit: Option<(f64, f64)>, high_radius_m: f64) -> Vec<String> {
        let mut raised = Vec::new();
        for (id, s) in self.rid.iter_mut() {
            let before = s.contact.severity;
            rid_rank(s, kit, high_radius_m);
            if s.contact.severity.rank() >= Severity::High.rank() && before.rank() < Severity::High.rank() {
                raised.push(id.clone());
            }
        }
        raised
    }

    /// The oldest contact of a kind, for eviction beyond `max_per_kind`.
    pub fn oldest_rid(&self) -> Option<String> {
        self.rid
            .values()
            .min_by(|a, b| {
                a.contact
                    .last_seen_ts
                    .cmp(&b.contact.last_seen_ts)
                    .then_with(|| a.contact.id.cmp(&b.contact.id))
            })
            .map(|s| s.contact.id.clone())
    }

    pub fn oldest_rf(&self) -> Option<String> {
        self.rf
            .values()
            .min_by(|a, b| {
                a.contact
                    .last_seen_ts
                    .cmp(&b.contact.last_seen_ts)
                    .then_with(|| a.contact.data.id.cmp(&b.contact.data.id))
            })
            .map(|s| s.contact.data.id.clone())
    }

    /// One contact by id, as the list shows it.
    pub fn get(&self, id: &str) -> Option<Contact> {
        if let Some(s) = self.rid.get(id) {
            return Some(Contact::RemoteId(s.contact.clone()));
        }
        if let Some(s) = self.rf.get(id) {
            return Some(Contact::Rf(s.contact.clone()));
        }
        self.fpv
            .as_ref()
            .filter(|f| f.id == id)
            .map(|f| Contact::Fpv(f.clone()))
    }

    /// How many contacts the list holds.
    pub fn len(&self) -> usize {
        self.rid.len() + self.rf.len() + usize::from(self.fpv.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The unified list: severity desc, distance asc (absent last), newest first, id asc.
    pub fn sorted(&self) -> Vec<Contact> {
        let mut all: Vec<(Contact, Option<f64>)> = Vec::with_capacity(self.rid.len() + self.rf.len() + 1);
        all.extend(
            self.rid
                .values()
                .map(|s| (Contact::RemoteId(s.contact.clone()), s.distance_m)),
        );
        all.extend(self.rf.values().map(|s| (Contact::Rf(s.contact.clone()), None)));
        if let Some(f) = &self.fpv {
            all.push((Contact::Fpv(f.clone()), None));
        }
        all.sort_by(|(a, da), (b, db)| {
            b.severity()
                .rank()
                .cmp(&a.severity().rank())
                .then_with(|| match (da, db) {
                    (Some(x), Some(y)) => x.total_cmp(y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                })
                .then_with(|| b.last_seen_ts().cmp(&a.last_seen_ts()))
                .then_with(|| a.id().cmp(b.id()))
        });
        all.into_iter().map(|(c, _)| c).collect()
    }

    /// RemoteID contacts only, in list order.
    pub fn sorted_rid(&self) -> Vec<Contact> {
        self.sorted()
            .into_iter()
            .filter(|c| matches!(c, Contact::RemoteId(_)))
            .collect()
    }
}

fn rid_rank(s: &mut StoredRid, kit: Option<(f64, f64)>, high_radius_m: f64) {
    let f = &s.contact.fields;
    s.distance_m = match (kit, f.lat, f.lon) {
        (Some(k), Some(lat), Some(lon)) => Some(haversine_m(k, (lat, lon))),
        _ => None,
    };
    s.contact.severity = match s.distance_m {
        Some(d) if d <= high_radius_m => Severity::High,
        _ => Severity::Medium,
    };
}

/// Contract v1.1 RemoteID members: present ones replace, absent ones keep (the operator
/// position only as a pair), like the reference fields above.
fn merge_v11(f: &mut RemoteIdFields, n: RemoteIdFields) {
    fn keep<T>(dst: &mut Option<T>, v: Option<T>) {
        if v.is_some() {
            *dst = v;
        }
    }
    keep(&mut f.heading_deg, n.heading_deg);
    keep(&mut f.vspeed_m_s, n.vspeed_m_s);
    keep(&mut f.height_agl_m, n.height_agl_m);
    keep(&mut f.ua_type, n.ua_type);
    if n.operator_lat.is_some() && n.operator_lon.is_some() {
        f.operator_lat = n.operator_lat;
        f.operator_lon = n.operator_lon;
    }
    keep(&mut f.operator_alt_m, n.operator_alt_m);
    keep(&mut f.operator_location_type, n.operator_location_type);
    keep(&mut f.transport, n.transport);
    keep(&mut f.mac, n.mac);
    keep(&mut f.rssi_dbm, n.rssi_dbm);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_known_distance() {
        // 1° of latitude ≈ 111.2 km
        let d = haversine_m((0.0, 0.0), (1.0, 0.0));
        assert!((d - 111_195.0).abs() < 10.0, "{d}");
    }

    #[test]
    fn severity_bands() {
        assert_eq!(rf_severity(Some(0.85)), Severity::High);
        assert_eq!(rf_severity(Some(0.6)), Severity::Medium);
        assert_eq!(rf_severity(Some(0.3)), Severity::Low);
        assert_eq!(rf_severity(None), Severity::Unknown);
    }

    #[test]
    fn merge_keeps_absent_members_and_max_time() {
        let mut s = ContactStore::default();
        let now = Instant::now();
        let m = s.merge_rid(
            "rid:A",
            100,
            RemoteIdFields {
                model: Some("M".into()),
                ..Default::default()
            },
            now,
            None,
            500.0,
        );
        assert!(m.is_new);
        let m = s.merge_rid(
            "rid:A",
            90,
            RemoteIdFields {
                lat: Some(1.0),
                lon: Some(2.0),
                ..Default::default()
            },
            now,
            None,
            500.0,
        );
        assert!(!m.is_new);
        assert_eq!(m.data.fields.model.as_deref(), Some("M"));
        assert_eq!(m.data.fields.lat, Some(1.0));
        assert_eq!(m.data.last_seen_ts, 100);
    }

    #[test]
    fn ordering_severity_distance_recency() {
        let mut s = ContactStore::default();
        let now = Instant::now();
        let kit = Some((47.0, 8.0));
        let near = RemoteIdFields {
            lat: Some(47.001),
            lon: Some(8.0),
            ..Default::default()
        };
        let nearer = RemoteIdFields {
            lat: Some(47.0005),
            lon: Some(8.0),
            ..Default::default()
        };
        let far = RemoteIdFields {
            lat: Some(48.0),
            lon: Some(8.0),
            ..Default::default()
        };
        s.merge_rid("rid:near", 10, near, now, kit, 500.0);
        s.merge_rid("rid:nearer", 5, nearer, now, kit, 500.0);
        s.merge_rid("rid:far", 20, far, now, kit, 500.0);
        s.merge_rid("rid:nopos", 30, RemoteIdFields::default(), now, kit, 500.0);
        let ids: Vec<String> = s.sorted().iter().map(|c| c.id().to_owned()).collect();
        // high (≤500 m) first, nearer before near; then medium: far (has distance) before nopos
        assert_eq!(ids, ["rid:nearer", "rid:near", "rid:far", "rid:nopos"]);
    }
}
