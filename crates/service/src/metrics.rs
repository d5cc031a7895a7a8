//! The Prometheus pieces every daemon's `/metrics` shares (PROTOCOL.md §9): build info
//! and uptime, per-route HTTP request counts and durations, histograms and
//! labelled counter families. Each daemon renders its own families around these.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// `text/plain; version=0.0.4`, the content type of every `/metrics` answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

const HTTP_BOUNDS: &[f64] = &[0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 10.0];

/// A cumulative histogram with fixed upper bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bounds: &'static [f64],
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(self.counts.iter_mut()) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    /// The `_bucket`/`_sum`/`_count` series, with `labels` (e.g. `probe="gps"`) added to each.
    pub fn write_series(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }

    /// A whole unlabelled family: `# TYPE` line and series.
    pub fn write(&self, out: &mut String, name: &str) {
        let _ = writeln!(out, "# TYPE {name} histogram");
        self.write_series(out, name, "");
    }
}

/// One histogram per label set (e.g. per probe), created on first use.
#[derive(Debug)]
pub struct HistogramFamily {
    bounds: &'static [f64],
    by_labels: Mutex<BTreeMap<String, Histogram>>,
}

impl HistogramFamily {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            by_labels: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn observe(&self, labels: &str, v: f64) {
        if let Ok(mut m) = self.by_labels.lock() {
            m.entry(labels.to_owned())
                .or_insert_with(|| Histogram::new(self.bounds))
                .observe(v);
        }
    }

    pub fn write(&self, out: &mut String, name: &str) {
        let _ = writeln!(out, "# TYPE {name} histogram");
        if let Ok(m) = self.by_labels.lock() {
            for (labels, h) in m.iter() {
                h.write_series(out, name, labels);
            }
        }
    }
}

/// Counters keyed by their label set (`route="/x",status="200"`), created on first use.
/// Label values must come from bounded sets (PROTOCOL.md §9), never ids or free text.
#[derive(Debug, Default)]
pub struct CounterFamily {
    by_labels: Mutex<BTreeMap<String, u64>>,
}

impl CounterFamily {
    pub fn inc(&self, labels: &str) {
        self.add(labels, 1);
    }

    pub fn add(&self, labels: &str, n: u64) {
        if let Ok(mut m) = self.by_labels.lock() {
            match m.get_mut(labels) {
                Some(v) => *v += n,
                None => {
                    m.insert(labels.to_owned(), n);
                }
            }
        }
    }

    pub fn get(&self, labels: &str) -> u64 {
        self.by_labels
            .lock()
            .ok()
            .and_then(|m| m.get(labels).copied())
            .unwrap_or(0)
    }

    pub fn write(&self, out: &mut String, name: &str) {
        let _ = writeln!(out, "# TYPE {name} counter");
        self.write_series(out, name);
    }

    /// The series only, for a family whose `# TYPE` line another part wrote.
    pub fn write_series(&self, out: &mut String, name: &str) {
        if let Ok(m) = self.by_labels.lock() {
            for (labels, v) in m.iter() {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
    }
}

/// `ndefender_http_requests_total{route,status}` and `ndefender_http_request_duration_seconds`.
#[derive(Debug)]
pub struct HttpMetrics {
    requests: CounterFamily,
    duration: Mutex<Histogram>,
    /// Refused credentials by reason (missing, invalid, forbidden_role, rate_limited).
    auth: CounterFamily,
    /// Connections closed at `server.max_connections` to make room, and refused outright.
    pub connections_evicted: std::sync::atomic::AtomicU64,
    pub connections_open: std::sync::atomic::AtomicU64,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: CounterFamily::default(),
            duration: Mutex::new(Histogram::new(HTTP_BOUNDS)),
            auth: CounterFamily::default(),
            connections_evicted: Default::default(),
            connections_open: Default::default(),
        }
    }
}

impl HttpMetrics {
    pub fn requests(&self, route: &str, status: u16) -> u64 {
        self.requests.get(&format!("route=\"{route}\",status=\"{status}\""))
    }

    pub fn count_auth(&self, reason: &str) {
        self.auth.inc(&format!("reason=\"{reason}\""));
    }

    pub fn auth_refusals(&self, reason: &str) -> u64 {
        self.auth.get(&format!("reason=\"{reason}\""))
    }

    pub fn write_prometheus(&self, out: &mut String) {
        use std::sync::atomic::Ordering::Relaxed;
        self.requests.write(out, "ndefender_http_requests_total");
        self.auth.write(out, "ndefender_auth_refusals_total");
        write_value(
            out,
            "ndefender_http_connections_open",
            "gauge",
            self.connections_open.load(Relaxed),
        );
        write_value(
            out,
            "ndefender_http_connections_evicted_total",
            "counter",
            self.connections_evicted.load(Relaxed),
        );
        if let Ok(d) = self.duration.lock() {
            d.write(out, "ndefender_http_request_duration_seconds");
        }
    }
}

/// Counts every request by its matched route (a bounded label set; `unmatched` for
/// paths no route knows) and final status, after the conventions layer rendered it.
pub async fn track(State(m): State<Arc<HttpMetrics>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let t = Instant::now();
    let resp = next.run(req).await;
    let labels = format!(
        "route=\"{}\",status=\"{}\"",
        route.as_deref().unwrap_or("unmatched"),
        resp.status().as_u16()
    );
    m.requests.inc(&labels);
    if let Ok(mut d) = m.duration.lock() {
        d.observe(t.elapsed().as_secs_f64());
    }
    resp
}

/// `ndefender_build_info` and `ndefender_uptime_seconds`, the head of every `/metrics`.
pub fn write_build_info(out: &mut String, version: &str, git_sha: &str, uptime_s: f64) {
    let sha: String = git_sha.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let sha = if sha.is_empty() { "unknown".to_owned() } else { sha };
    let _ = writeln!(
        out,
        "# TYPE ndefender_build_info gauge\nndefender_build_info{{version=\"{version}\",git_sha=\"{sha}\"}} 1"
    );
    let _ = writeln!(
        out,
        "# TYPE ndefender_uptime_seconds gauge\nndefender_uptime_seconds {uptime_s:.3}"
    );
}

/// A single-valued family.
pub fn write_value(out: &mut String, name: &str, kind: &str, v: impl std::fmt::Display) {
    let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(5.0);
        let mut out = String::new();
        h.write(&mut out, "x_seconds");
        assert!(out.contains("x_seconds_bucket{le=\"0.1\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_count 3\n"), "{out}");
    }

    #[test]
    fn labelled_histogram_and_counters() {
        let f = HistogramFamily::new(&[1.0]);
        f.observe("probe=\"gps\"", 0.5);
        let mut out = String::new();
        f.write(&mut out, "probe_duration_seconds");
        assert!(
            out.contains("probe_duration_seconds_bucket{probe=\"gps\",le=\"1\"} 1"),
            "{out}"
        );
        assert!(out.contains("probe_duration_seconds_count{probe=\"gps\"} 1"), "{out}");
        let c = CounterFamily::default();
        c.inc("a=\"1\"");
        c.add("a=\"1\"", 2);
        assert_eq!(c.get("a=\"1\""), 3);
    }

    #[test]
    fn git_sha_cannot_break_the_exposition() {
        let mut out = String::new();
        write_build_info(&mut out, "0.1.0", "ab\"}\n12", 1.0);
        assert!(out.contains("git_sha=\"ab12\""), "{out}");
    }
}
