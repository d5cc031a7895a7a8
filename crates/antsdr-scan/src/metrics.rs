//! `/metrics` (PROTOCOL.md §9 plus the `antsdr_*` families of antsdr-scan §10), Prometheus text 0.0.4.

use crate::engine::EngineStatus;
use crate::ratelimit::{Bucket, RateLimiter};
use ndefender_hub::HubStats;
use ndefender_service::metrics::HttpMetrics;
use std::collections::BTreeMap;
use std::fmt::Write as _;

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
    ndefender_service::metrics::write_build_info(&mut out, m.version, m.git_sha, m.uptime_s);
    m.http.write_prometheus(&mut out);
    if let Some(h) = &m.hub {
        h.write_prometheus(&mut out);
    }
    let _ = writeln!(out, "# TYPE ndefender_rate_limited_total counter");
    for b in Bucket::ALL {
        let n = m.limiter.limited(b);
        let _ = writeln!(out, "ndefender_rate_limited_total{{bucket=\"{}\"}} {n}", b.label());
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
        s.step_seconds.write(&mut out, "antsdr_step_seconds");
        s.dsp_seconds.write(&mut out, "antsdr_dsp_seconds");
        s.sweep_seconds.write(&mut out, "antsdr_sweep_seconds");
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
