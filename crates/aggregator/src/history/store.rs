//! The SQLite file: schema, the writer's batched inserts and the retention passes.
//!
//! Fixes and detections are `WITHOUT ROWID` tables keyed by (contact, time): one B-tree per
//! table, a track is one range scan, and a record read twice (the feed re-read from its
//! checkpoint after a crash) is the same key, ignored. `hourly` keeps which contacts were seen in
//! each hour, so the 30-day timeline never scans the fixes.

use super::record::{AuditEntry, Detection, Identity, Kind, KitPosition, Record, Sighting};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const HOUR_MS: u64 = 3_600_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contacts(
    cid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    oldest INTEGER NOT NULL,
    serial TEXT, operator_id TEXT, model TEXT, ua_type TEXT, mac TEXT,
    band TEXT, freq_hz REAL, class TEXT,
    fixes INTEGER NOT NULL DEFAULT 0,
    detections INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS contacts_last_seen ON contacts(last_seen);
CREATE INDEX IF NOT EXISTS contacts_oldest ON contacts(oldest);
CREATE TABLE IF NOT EXISTS fixes(
    cid INTEGER NOT NULL, ts INTEGER NOT NULL,
    lat REAL NOT NULL, lon REAL NOT NULL, alt_m REAL, speed REAL, heading REAL,
    vspeed REAL, agl REAL, op_lat REAL, op_lon REAL, op_alt REAL, rssi REAL,
    PRIMARY KEY(cid, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS detections(
    cid INTEGER NOT NULL, ts INTEGER NOT NULL,
    freq_hz REAL NOT NULL, level REAL NOT NULL, snr_db REAL, class TEXT, confidence REAL,
    PRIMARY KEY(cid, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hourly(
    hour INTEGER NOT NULL, cid INTEGER NOT NULL, events INTEGER NOT NULL,
    PRIMARY KEY(hour, cid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kit_positions(ts INTEGER PRIMARY KEY, lat REAL NOT NULL, lon REAL NOT NULL, alt_m REAL);
CREATE TABLE IF NOT EXISTS audit(
    seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, actor TEXT, source TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT, outcome TEXT NOT NULL, command_id TEXT);
CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts);
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');
";

/// Opens (creating if needed) the database for writing: WAL, `synchronous=NORMAL` (a commit
/// survives a process crash; a power cut may lose the last commits but never corrupts the
/// file), incremental auto-vacuum so deleted records give their space back to the card.
pub fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    if let Some(dir) = path.parent() {
        // A missing directory shows up as the open error below.
        let _ = std::fs::create_dir_all(dir);
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // Only takes effect on a new file (before the first table).
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "history: WAL not available; using the default journal");
    }
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA journal_size_limit = 16777216;
         PRAGMA cache_size = -4096;",
    )?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Opens the writer; a file SQLite cannot read as a database is moved aside (kept for
/// inspection, never deleted) and a new one started, so the kit keeps recording.
pub fn open_writer_or_reset(path: &Path, now_ms: u64) -> rusqlite::Result<Connection> {
    match open_writer(path) {
        Err(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) =>
        {
            let aside = PathBuf::from(format!("{}.corrupt-{now_ms}", path.display()));
            tracing::error!(path = %path.display(), aside = %aside.display(), "history database unreadable; moved aside");
            let _ = std::fs::rename(path, &aside);
            for ext in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
            }
            open_writer(path)
        }
        r => r,
    }
}

/// A connection for queries only (WAL readers never block the writer, nor it them).
pub fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(2))?;
    // Memory-mapped reads: a 24 h track is ~7 MB of pages, more than the page cache keeps,
    // and mapped pages are read in place instead of copied in by a read(2) each. The mapping
    // is the kernel's file cache (shared, reclaimable), not the daemon's heap.
    conn.execute_batch("PRAGMA query_only = 1; PRAGMA cache_size = -4096; PRAGMA mmap_size = 268435456;")?;
    Ok(conn)
}

/// What one committed batch added.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub sightings: u64,
    pub fixes: u64,
    pub detections: u64,
    pub audit: u64,
    pub kit: u64,
    /// Records already stored (a feed re-read after a restart).
    pub duplicates: u64,
}

/// Per-contact aggregate of one batch: the contact row is written once per batch.
struct Acc<'a> {
    kind: Kind,
    first: u64,
    last: u64,
    identity: &'a Identity,
}

static NO_IDENTITY: Identity = Identity {
    serial: None,
    operator_id: None,
    model: None,
    ua_type: None,
    mac: None,
    band: None,
    freq_hz: None,
    class: None,
};

/// The writer's side of the file.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    pub fn open(path: &Path, now_ms: u64) -> rusqlite::Result<Store> {
        Ok(Store {
            conn: open_writer_or_reset(path, now_ms)?,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a batch in one transaction: all of it or (on error) none of it.
    pub fn apply(&mut self, records: &[Record]) -> rusqlite::Result<Applied> {
        let tx = self.conn.transaction()?;
        let a = apply_in(&tx, records)?;
        tx.commit()?;
        Ok(a)
    }

    /// Bytes the history takes on disk: the database file and its WAL.
    pub fn disk_bytes(&self) -> u64 {
        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        len(&self.path) + len(Path::new(&format!("{}-wal", self.path.display())))
    }

    /// Bytes in pages that hold data (the file minus its free pages).
    pub fn used_bytes(&self) -> rusqlite::Result<u64> {
        let q = |p: &str| self.conn.query_row(p, [], |r| r.get::<_, i64>(0));
        let (pages, free, size) = (
            q("PRAGMA page_count")?,
            q("PRAGMA freelist_count")?,
            q("PRAGMA page_size")?,
        );
        Ok(((pages - free).max(0) * size) as u64)
    }

    /// The oldest and newest times still stored (None when empty).
    pub fn span(&self) -> rusqlite::Result<Option<(u64, u64)>> {
        let r: (Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT min(t), max(u) FROM (
                SELECT min(oldest) AS t, max(last_seen) AS u FROM contacts
                UNION ALL SELECT min(ts), max(ts) FROM kit_positions
                UNION ALL SELECT min(ts), max(ts) FROM audit)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(match r {
            (Some(a), Some(b)) => Some((a.max(0) as u64, b.max(0) as u64)),
            _ => None,
        })
    }

    /// Deletes every record older than `cutoff` (one transaction); returns records deleted.
    pub fn delete_before(&mut self, cutoff: u64) -> rusqlite::Result<u64> {
        let c = cutoff as i64;
        let tx = self.conn.transaction()?;
        let mut n = 0u64;
        {
            let old: Vec<i64> = {
                let mut st = tx.prepare_cached("SELECT cid FROM contacts WHERE oldest < ?1")?;
                let rows = st.query_map([c], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut del_f = tx.prepare_cached("DELETE FROM fixes WHERE cid = ?1 AND ts < ?2")?;
            let mut del_d = tx.prepare_cached("DELETE FROM detections WHERE cid = ?1 AND ts < ?2")?;
            let mut upd = tx.prepare_cached(
                "UPDATE contacts SET oldest = ?2, fixes = max(0, fixes - ?3), detections = max(0, detections - ?4)
                 WHERE cid = ?1",
            )?;
            for cid in old {
                let f = del_f.execute(params![cid, c])? as i64;
                let d = del_d.execute(params![cid, c])? as i64;
                upd.execute(params![cid, c, f, d])?;
                n += (f + d) as u64;
            }
            n += tx.execute("DELETE FROM contacts WHERE last_seen < ?1", [c])? as u64;
            let hour = c - c.rem_euclid(HOUR_MS as i64);
            tx.execute("DELETE FROM hourly WHERE hour < ?1", [hour])?;
            n += tx.execute("DELETE FROM kit_positions WHERE ts < ?1", [c])? as u64;
            n += tx.execute("DELETE FROM audit WHERE ts < ?1", [c])? as u64;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Gives free pages back to the filesystem.
    pub fn vacuum_free_pages(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch("PRAGMA incremental_vacuum;")?;
        // The WAL now holds the moved pages; fold them into the file and truncate it.
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .optional()?;
        Ok(())
    }
}

fn hour_of(ts: u64) -> i64 {
    (ts - ts % HOUR_MS) as i64
}

fn apply_in(tx: &Transaction<'_>, records: &[Record]) -> rusqlite::Result<Applied> {
    let mut a = Applied::default();
    // 1. One contact row update per contact per batch.
    let mut accs: HashMap<&str, Acc<'_>> = HashMap::new();
    for r in records {
        let (id, kind, ts, ident) = match r {
            Record::Sighting(Sighting { id, kind, ts, identity }) => (id.as_str(), *kind, *ts, Some(identity)),
            Record::Fix(id, f) => (id.as_str(), Kind::RemoteId, f.ts, None),
            Record::Detection(id, d) => (id.as_str(), Kind::Rf, d.ts, None),
            _ => continue,
        };
        let e = accs.entry(id).or_insert(Acc {
            kind,
            first: ts,
            last: ts,
            identity: &NO_IDENTITY,
        });
        e.first = e.first.min(ts);
        e.last = e.last.max(ts);
        if let Some(i) = ident {
            // Sightings name the kind authoritatively; the latest sighting's identity wins.
            e.kind = kind;
            e.identity = i;
        }
    }
    let mut cids: HashMap<&str, i64> = HashMap::with_capacity(accs.len());
    {
        let mut up = tx.prepare_cached(
            "INSERT INTO contacts(id, kind, first_seen, last_seen, oldest, serial, operator_id, model, ua_type, mac,
                                  band, freq_hz, class)
             VALUES (?1, ?2, ?3, ?4, ?3, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT(id) DO UPDATE SET
                first_seen = min(first_seen, excluded.first_seen),
                last_seen = max(last_seen, excluded.last_seen),
                oldest = min(oldest, excluded.oldest),
                serial = coalesce(excluded.serial, serial),
                operator_id = coalesce(excluded.operator_id, operator_id),
                model = coalesce(excluded.model, model),
                ua_type = coalesce(excluded.ua_type, ua_type),
                mac = coalesce(excluded.mac, mac),
                band = coalesce(excluded.band, band),
                freq_hz = coalesce(excluded.freq_hz, freq_hz),
                class = coalesce(excluded.class, class)
             RETURNING cid",
        )?;
        for (id, acc) in &accs {
            let i = acc.identity;
            let cid: i64 = up.query_row(
                params![
                    id,
                    acc.kind.as_str(),
                    acc.first as i64,
                    acc.last as i64,
                    i.serial,
                    i.operator_id,
                    i.model,
                    i.ua_type,
                    i.mac,
                    i.band,
                    i.freq_hz,
                    i.class
                ],
                |r| r.get(0),
            )?;
            cids.insert(id, cid);
        }
    }
    // 2. The records themselves.
    let mut counts: HashMap<i64, (i64, i64)> = HashMap::new();
    let mut hours: HashMap<(i64, i64), i64> = HashMap::new();
    {
        let mut ins_fix = tx.prepare_cached(
            "INSERT OR IGNORE INTO fixes(cid, ts, lat, lon, alt_m, speed, heading, vspeed, agl, op_lat, op_lon, op_alt, rssi)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        let mut ins_det = tx.prepare_cached(
            "INSERT OR IGNORE INTO detections(cid, ts, freq_hz, level, snr_db, class, confidence)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut ins_kit =
            tx.prepare_cached("INSERT OR REPLACE INTO kit_positions(ts, lat, lon, alt_m) VALUES (?1, ?2, ?3, ?4)")?;
        let mut ins_audit = tx.prepare_cached(
            "INSERT INTO audit(ts, actor, source, action, target, outcome, command_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for r in records {
            match r {
                Record::Sighting(s) => {
                    if let Some(cid) = cids.get(s.id.as_str()) {
                        *hours.entry((hour_of(s.ts), *cid)).or_insert(0) += 1;
                        a.sightings += 1;
                    }
                }
                Record::Fix(id, f) => {
                    let Some(&cid) = cids.get(id.as_str()) else { continue };
                    let n = ins_fix.execute(params![
                        cid,
                        f.ts as i64,
                        f.lat,
                        f.lon,
                        f.altitude_m,
                        f.speed_m_s,
                        f.heading_deg,
                        f.vspeed_m_s,
                        f.height_agl_m,
                        f.operator_lat,
                        f.operator_lon,
                        f.operator_alt_m,
                        f.rssi_dbm
                    ])? as i64;
                    counts.entry(cid).or_default().0 += n;
                    hours.entry((hour_of(f.ts), cid)).or_insert(0);
                    a.fixes += n as u64;
                    a.duplicates += (1 - n) as u64;
                }
                Record::Detection(id, d) => {
                    let Some(&cid) = cids.get(id.as_str()) else { continue };
                    let Detection {
                        ts,
                        freq_hz,
                        level,
                        snr_db,
                        class,
                        confidence,
                    } = d;
                    let n =
                        ins_det.execute(params![cid, *ts as i64, freq_hz, level, snr_db, class, confidence])? as i64;
                    counts.entry(cid).or_default().1 += n;
                    hours.entry((hour_of(*ts), cid)).or_insert(0);
                    a.detections += n as u64;
                    a.duplicates += (1 - n) as u64;
                }
                Record::Kit(KitPosition { ts, lat, lon, alt_m }) => {
                    a.kit += ins_kit.execute(params![*ts as i64, lat, lon, alt_m])? as u64;
                }
                Record::Audit(AuditEntry {
                    ts,
                    actor,
                    source,
                    action,
                    target,
                    outcome,
                    command_id,
                }) => {
                    a.audit += ins_audit
                        .execute(params![*ts as i64, actor, source, action, target, outcome, command_id])?
                        as u64;
                }
            }
        }
    }
    // 3. Counters on the contact rows and the hourly timeline.
    {
        let mut upd =
            tx.prepare_cached("UPDATE contacts SET fixes = fixes + ?2, detections = detections + ?3 WHERE cid = ?1")?;
        for (cid, (f, d)) in counts.iter().filter(|(_, (f, d))| *f + *d > 0) {
            upd.execute(params![cid, f, d])?;
        }
        let mut hr = tx.prepare_cached(
            "INSERT INTO hourly(hour, cid, events) VALUES (?1, ?2, ?3)
             ON CONFLICT(hour, cid) DO UPDATE SET events = events + excluded.events",
        )?;
        for ((h, cid), n) in &hours {
            hr.execute(params![h, cid, n])?;
        }
    }
    Ok(a)
}
