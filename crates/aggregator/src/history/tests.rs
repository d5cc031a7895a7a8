//! The store and the queries on a real SQLite file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::query::{self, ContactFilter};
use super::record::{AuditEntry, Detection, Fix, Identity, Kind, KitPosition, Record, Sighting};
use super::store::{self, Store, HOUR_MS};

fn sighting(id: &str, kind: Kind, ts: u64) -> Record {
    Record::Sighting(Sighting {
        id: id.into(),
        kind,
        ts,
        identity: Identity {
            serial: id.strip_prefix("rid:").map(str::to_owned),
            ..Identity::default()
        },
    })
}

fn fix(id: &str, ts: u64, i: f64) -> Record {
    Record::Fix(
        id.into(),
        Fix {
            ts,
            lat: 48.0 + i * 1e-4,
            lon: 11.0 + i * 1e-4,
            altitude_m: Some(100.0 + i),
            ..Fix::default()
        },
    )
}

fn fixes(id: &str, t0: u64, n: u64, step: u64) -> Vec<Record> {
    let mut v = vec![sighting(id, Kind::RemoteId, t0)];
    v.extend((0..n).map(|i| fix(id, t0 + i * step, i as f64)));
    v
}

#[test]
fn a_batch_lands_whole_replays_are_ignored_and_counts_add_up() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open(&d.path().join("h.sqlite"), 0).unwrap();
    let t0 = 1_765_000_000_000;
    let a = s.apply(&fixes("rid:A", t0, 100, 1000)).unwrap();
    assert_eq!((a.fixes, a.sightings, a.duplicates), (100, 1, 0));
    // The same lines again (a feed re-read after a crash) add nothing.
    let a = s.apply(&fixes("rid:A", t0, 100, 1000)).unwrap();
    assert_eq!((a.fixes, a.duplicates), (0, 100));
    s.apply(&[
        sighting("rf:1", Kind::Rf, t0 + 5),
        Record::Detection(
            "rf:1".into(),
            Detection {
                ts: t0 + 5,
                freq_hz: 2.44e9,
                level: -40.0,
                ..Detection::default()
            },
        ),
        Record::Audit(AuditEntry {
            ts: t0,
            source: "esp32".into(),
            action: "esp32/scan".into(),
            outcome: "ok".into(),
            ..AuditEntry::default()
        }),
        Record::Kit(KitPosition {
            ts: t0,
            lat: 48.0,
            lon: 11.0,
            alt_m: None,
        }),
    ])
    .unwrap();
    let c = store::open_reader(s.path()).unwrap();
    let page = query::contacts(
        &c,
        &ContactFilter {
            limit: 10,
            ..ContactFilter::default()
        },
    )
    .unwrap();
    assert_eq!(page.total, 2);
    let a = page.contacts.iter().find(|c| c.id == "rid:A").unwrap();
    assert_eq!((a.fixes, a.first_seen_ts, a.last_seen_ts), (100, t0, t0 + 99_000));
    assert_eq!(a.serial.as_deref(), Some("A"));
    let t = query::track(&c, "rid:A", Some(t0 + 10_000), Some(t0 + 19_000), 1000).unwrap();
    assert_eq!(t.points.len(), 10);
    assert!(!t.truncated);
    let t = query::track(&c, "rid:A", None, None, 50).unwrap();
    assert!(t.truncated);
    assert!(matches!(
        query::track(&c, "rid:nope", None, None, 5),
        Err(super::QueryError::NotFound)
    ));
    let sum = query::summary(&c, t0 - HOUR_MS, t0 + HOUR_MS).unwrap();
    let kinds: Vec<&str> = sum.totals.iter().map(|t| t.kind.as_str()).collect();
    assert_eq!(kinds, ["REMOTE_ID", "RF"]);
    // Filters: kind, text (LIKE specials taken literally), pagination.
    let only_rf = query::contacts(
        &c,
        &ContactFilter {
            kind: Some(Kind::Rf),
            limit: 10,
            ..ContactFilter::default()
        },
    )
    .unwrap();
    assert_eq!(only_rf.contacts.len(), 1);
    let pct = query::contacts(
        &c,
        &ContactFilter {
            q: Some("%".into()),
            limit: 10,
            ..ContactFilter::default()
        },
    )
    .unwrap();
    assert_eq!(pct.total, 0);
    let p1 = query::contacts(
        &c,
        &ContactFilter {
            limit: 1,
            ..ContactFilter::default()
        },
    )
    .unwrap();
    assert_eq!((p1.contacts.len(), p1.next_offset), (1, Some(1)));
}

#[test]
fn retention_deletes_oldest_first_and_keeps_counts_right() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open(&d.path().join("h.sqlite"), 0).unwrap();
    let t0 = 1_765_000_000_000;
    // Two hours of one drone, a second drone only in the first hour.
    s.apply(&fixes("rid:A", t0, 7200, 1000)).unwrap();
    s.apply(&fixes("rid:B", t0, 100, 1000)).unwrap();
    let cut = t0 + HOUR_MS;
    let n = s.delete_before(cut).unwrap();
    assert_eq!(n, 3600 + 100 + 1, "A's first hour, B's fixes and B itself");
    let c = store::open_reader(s.path()).unwrap();
    assert!(matches!(query::contact(&c, "rid:B"), Err(super::QueryError::NotFound)));
    let a = query::contact(&c, "rid:A").unwrap();
    assert_eq!(a.fixes, 3600);
    let t = query::track(&c, "rid:A", None, None, 100_000).unwrap();
    assert_eq!(t.points.first().map(|p| p.ts), Some(cut));
    assert_eq!(s.span().unwrap().map(|x| x.0), Some(cut));
    let before = s.disk_bytes();
    s.vacuum_free_pages().unwrap();
    assert!(s.disk_bytes() <= before, "freed pages go back to the filesystem");
}

#[test]
fn an_unreadable_file_is_moved_aside_and_a_new_one_started() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("h.sqlite");
    std::fs::write(&p, vec![0x5au8; 8192]).unwrap();
    let s = Store::open(&p, 42).unwrap();
    assert_eq!(s.span().unwrap(), None);
    assert!(d.path().join("h.sqlite.corrupt-42").exists());
}
