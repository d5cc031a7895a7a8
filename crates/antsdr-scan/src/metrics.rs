//! `/metrics` (wire §9 plus the `antsdr_*` families of antsdr-scan §10), Prometheus text 0.0.4.

use crate::engine::{EngineStatus, Histogram};
use crate::ratelimit::{Bucket, RateLimiter};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ndefender_hub::HubStats;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const HTTP_BOUNDS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5];

#[derive(Debug)]
pub struct HttpMetrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    duration: Mutex<Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Mutex::new(BTreeMap::new()),
            duration: Mutex::new(Histogram::new(HTTP_BOUNDS)),
        }
    }
}

/// Counts requests by matched route (a bounded label set) and status.
pub async fn track(State(m): State<Arc<HttpMetrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let t = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    if let Ok(mut r) = m.requests.lock() {
        *r.entry((route, status)).or_insert(0) += 1;
    }
    if let Ok(mut d) = m.duration.lock() {
        d.observe(t.elapsed().as_secs_f64());
    }
    resp
}

fn histogram(out: &mut String, name: &str, h: &Histogram) {
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (b, c) in h.bounds.iter().zip(&h.counts) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum {}", h.sum);
    let _ = writeln!(out, "{name}_count {}", h.count);
}

fn counter(out: &mut String, name: &str, kind: &str, v: u64) {
    let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {v}");
}

pub struct MetricsInput<'a> {
    pub version: &'a str,
    pub git_sha: &'a str,
    pub uptime_s: f64,
    pub http: &'a HttpMetrics,
    pub hub: Option<HubStats>,
    pub limiter: &'a RateLimiter,
    pub status: Option<&'a EngineStatus>,
    pub events_by_type: &'a BTreeMap<&'static str, u64>,
    pub jsonl_write_errors: u64,
}

pub fn render(m: &MetricsInput<'_>) -> String {
    let mut out = String::with_capacity(8192);
    let _ = writeln!(
        out,
        "# TYPE ndefender_build_info gauge\nndefender_build_info{{version=\"{}\",git_sha=\"{}\"}} 1",
        m.version, m.git_sha
    );
    let _ = writeln!(
        out,
        "# TYPE ndefender_uptime_seconds gauge\nndefender_uptime_seconds {:.3}",
        m.uptime_s
    );
    let _ = writeln!(out, "# TYPE ndefender_http_requests_total counter");
    if let Ok(r) = m.http.requests.lock() {
        for ((route, status), n) in r.iter() {
            let _ = writeln!(
                out,
                "ndefender_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
    }
    if let Ok(d) = m.http.duration.lock() {
        histogram(&mut out, "ndefender_http_request_duration_seconds", &d);
    }
    if let Some(h) = &m.hub {
        h.write_prometheus(&mut out);
    }
    let _ = writeln!(out, "# TYPE ndefender_rate_limited_total counter");
    if let Ok(l) = m.limiter.limited.lock() {
        for b in [Bucket::Commands, Bucket::Dangerous] {
            let n = l.get(&b).copied().unwrap_or(0);
            let _ = writeln!(out, "ndefender_rate_limited_total{{bucket=\"{}\"}} {n}", b.label());
        }
    }
    if let Some(s) = m.status {
        counter(&mut out, "antsdr_steps_total", "counter", s.frames_processed);
        counter(&mut out, "antsdr_cycles_total", "counter", s.cycles_total);
        counter(&mut out, "antsdr_detections_total", "counter", s.detections_total);
        counter(
            &mut out,
            "antsdr_capture_errors_total",
            "counter",
            s.capture_errors_total,
        );
        counter(
            &mut out,
            "antsdr_overload_steps_total",
            "counter",
            s.overload_steps_total,
        );
        counter(
            &mut out,
            "antsdr_cycle_overruns_total",
            "counter",
            s.cycle_overruns_total,
        );
        histogram(&mut out, "antsdr_step_seconds", &s.step_seconds);
        histogram(&mut out, "antsdr_dsp_seconds", &s.dsp_seconds);
        let _ = writeln!(out, "# TYPE antsdr_contacts gauge");
        let _ = writeln!(out, "antsdr_contacts{{state=\"tentative\"}} {}", s.contacts_tentative);
        let _ = writeln!(out, "antsdr_contacts{{state=\"confirmed\"}} {}", s.contacts_confirmed);
    }
    let _ = writeln!(out, "# TYPE antsdr_events_total counter");
    for t in ["RF_CONTACT_NEW", "RF_CONTACT_UPDATE", "RF_CONTACT_LOST"] {
        let n = m.events_by_type.get(t).copied().unwrap_or(0);
        let _ = writeln!(out, "antsdr_events_total{{type=\"{t}\"}} {n}");
    }
    counter(
        &mut out,
        "antsdr_jsonl_write_errors_total",
        "counter",
        m.jsonl_write_errors,
    );
    out
}
