//! The hub's `ndefender_ws_*` counters (PROTOCOL.md §9). Rendering them is the service's job.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Snapshot of every hub metric. Label values come from the fixed sets below
/// (and the event types the service publishes), never from client input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubStats {
    /// `ndefender_ws_clients`: admitted connections still open (including upgrades in flight).
    pub clients: usize,
    /// `ndefender_ws_connections_total`: upgrades completed.
    pub connections_total: u64,
    /// `ndefender_ws_rejected_total{reason}`.
    pub rejected: RejectedCounts,
    /// `ndefender_ws_events_published_total{type}`, HEARTBEAT included.
    pub events_published: BTreeMap<String, u64>,
    /// `ndefender_ws_frames_sent_total`: text frames written to clients (pings and closes excluded).
    pub frames_sent: u64,
    /// `ndefender_ws_resyncs_total`: queue overflows answered with a resync set.
    pub resyncs: u64,
    /// `ndefender_ws_slow_closes_total`.
    pub slow_closes: u64,
    /// `ndefender_ws_replays_total{result}`.
    pub replays: ReplayCounts,
    /// `ndefender_ws_ignored_frames_total{kind}`.
    pub ignored: IgnoredCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RejectedCounts {
    pub auth: u64,
    pub origin: u64,
    pub query: u64,
    pub limit: u64,
}

impl RejectedCounts {
    /// `(reason label, count)` in the order of PROTOCOL.md §9.
    pub fn by_reason(&self) -> [(&'static str, u64); 4] {
        [
            ("auth", self.auth),
            ("origin", self.origin),
            ("query", self.query),
            ("limit", self.limit),
        ]
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayCounts {
    /// `since` was served from the ring.
    pub replayed: u64,
    /// `since` was unusable; the client got a snapshot instead.
    pub snapshot: u64,
}

impl ReplayCounts {
    pub fn by_result(&self) -> [(&'static str, u64); 2] {
        [("replayed", self.replayed), ("snapshot", self.snapshot)]
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IgnoredCounts {
    pub binary: u64,
    /// Text that is not JSON.
    pub text: u64,
    /// JSON without a known or well-formed action.
    pub action: u64,
    /// Over the per-client control-frame rate.
    pub rate: u64,
}

impl IgnoredCounts {
    pub fn by_kind(&self) -> [(&'static str, u64); 4] {
        [
            ("binary", self.binary),
            ("text", self.text),
            ("action", self.action),
            ("rate", self.rate),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    Auth,
    Origin,
    Query,
    Limit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ignored {
    Binary,
    Text,
    Action,
    Rate,
}

/// Live counters; the per-type publish map lives under the hub's core lock instead,
/// because `publish` already holds it.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connections: AtomicU64,
    rejected: [AtomicU64; 4],
    pub frames_sent: AtomicU64,
    pub resyncs: AtomicU64,
    pub slow_closes: AtomicU64,
    pub replayed: AtomicU64,
    pub snapshot: AtomicU64,
    ignored: [AtomicU64; 4],
}

impl Counters {
    pub fn reject(&self, why: Rejected) {
        let i = match why {
            Rejected::Auth => 0,
            Rejected::Origin => 1,
            Rejected::Query => 2,
            Rejected::Limit => 3,
        };
        if let Some(c) = self.rejected.get(i) {
            c.fetch_add(1, Relaxed);
        }
    }

    pub fn ignore(&self, what: Ignored) {
        let i = match what {
            Ignored::Binary => 0,
            Ignored::Text => 1,
            Ignored::Action => 2,
            Ignored::Rate => 3,
        };
        if let Some(c) = self.ignored.get(i) {
            c.fetch_add(1, Relaxed);
        }
    }

    pub fn snapshot(&self, clients: usize, events_published: BTreeMap<String, u64>) -> HubStats {
        let [auth, origin, query, limit] = self.rejected.each_ref().map(|c| c.load(Relaxed));
        let [binary, text, action, rate] = self.ignored.each_ref().map(|c| c.load(Relaxed));
        HubStats {
            clients,
            connections_total: self.connections.load(Relaxed),
            rejected: RejectedCounts {
                auth,
                origin,
                query,
                limit,
            },
            events_published,
            frames_sent: self.frames_sent.load(Relaxed),
            resyncs: self.resyncs.load(Relaxed),
            slow_closes: self.slow_closes.load(Relaxed),
            replays: ReplayCounts {
                replayed: self.replayed.load(Relaxed),
                snapshot: self.snapshot.load(Relaxed),
            },
            ignored: IgnoredCounts {
                binary,
                text,
                action,
                rate,
            },
        }
    }
}

impl HubStats {
    /// Appends every `ndefender_ws_*` metric of PROTOCOL.md §9 in Prometheus text format 0.0.4.
    /// The one renderer all three daemons use for their hub.
    pub fn write_prometheus(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "# TYPE ndefender_ws_clients gauge\nndefender_ws_clients {}",
            self.clients
        );
        let _ = writeln!(
            out,
            "# TYPE ndefender_ws_connections_total counter\nndefender_ws_connections_total {}",
            self.connections_total
        );
        let _ = writeln!(out, "# TYPE ndefender_ws_rejected_total counter");
        for (r, n) in self.rejected.by_reason() {
            let _ = writeln!(out, "ndefender_ws_rejected_total{{reason=\"{r}\"}} {n}");
        }
        let _ = writeln!(out, "# TYPE ndefender_ws_events_published_total counter");
        for (t, n) in &self.events_published {
            // Types are UPPER_SNAKE names the service publishes; escape anyway.
            let t = t.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(out, "ndefender_ws_events_published_total{{type=\"{t}\"}} {n}");
        }
        for (name, v) in [
            ("ndefender_ws_frames_sent_total", self.frames_sent),
            ("ndefender_ws_resyncs_total", self.resyncs),
            ("ndefender_ws_slow_closes_total", self.slow_closes),
        ] {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {v}");
        }
        let _ = writeln!(out, "# TYPE ndefender_ws_replays_total counter");
        for (r, n) in self.replays.by_result() {
            let _ = writeln!(out, "ndefender_ws_replays_total{{result=\"{r}\"}} {n}");
        }
        let _ = writeln!(out, "# TYPE ndefender_ws_ignored_frames_total counter");
        for (k, n) in self.ignored.by_kind() {
            let _ = writeln!(out, "ndefender_ws_ignored_frames_total{{kind=\"{k}\"}} {n}");
        }
    }
}
