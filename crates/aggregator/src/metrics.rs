//! `GET /metrics` (PROTOCOL.md §9, aggregator §14): Prometheus text format 0.0.4 from
//! counters the state, the hub, the tailers and the serial link already keep.

use crate::api::Api;
use crate::core::{Feed, FeedHealth};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ndefender_contract::contact::ContactKind;
use ndefender_service::metrics;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

pub async fn metrics(State(api): State<Arc<Api>>) -> Response {
    let mut out = String::with_capacity(8192);
    metrics::write_build_info(
        &mut out,
        env!("CARGO_PKG_VERSION"),
        option_env!("NDEFENDER_GIT_SHA").unwrap_or("unknown"),
        api.started.elapsed().as_secs_f64(),
    );
    api.http.write_prometheus(&mut out);
    if let Some(hub) = api.core.hub() {
        hub.stats().write_prometheus(&mut out);
    }
    let (counters, contacts, ok, ctl_up, antsdr_up, removed, updates, health) = api.core.read(|st| {
        let c = [Feed::RemoteId, Feed::Antsdr].map(|f| (f, st.counters.get(&f).cloned().unwrap_or_default()));
        let k = [
            (ContactKind::RemoteId, st.contacts.rid.len()),
            (ContactKind::Rf, st.contacts.rf.len()),
            (ContactKind::Fpv, usize::from(st.contacts.fpv.is_some())),
        ];
        (
            c,
            k,
            st.overall_ok(),
            st.controller_up,
            st.snap.antsdr.connected == Some(true),
            st.removed.clone(),
            st.system_updates,
            [Feed::RemoteId, Feed::Antsdr].map(|f| (f, st.health.get(&f).cloned())),
        )
    });
    let _ = writeln!(out, "# TYPE aggregator_feed_lines_total counter");
    for (feed, c) in &counters {
        for (result, n) in [
            ("accepted", c.accepted),
            ("malformed", c.malformed),
            ("invalid", c.invalid),
            ("stale", c.stale),
            ("test_marker", c.test_marker),
            ("oversize", c.oversize),
        ] {
            let _ = writeln!(
                out,
                "aggregator_feed_lines_total{{feed=\"{}\",result=\"{result}\"}} {n}",
                feed.name()
            );
        }
    }
    let _ = writeln!(out, "# TYPE aggregator_lifecycle_rewrites_total counter");
    for (feed, c) in &counters {
        let _ = writeln!(
            out,
            "aggregator_lifecycle_rewrites_total{{kind=\"{}\"}} {}",
            feed.name(),
            c.lifecycle_rewrites
        );
    }
    for (name, kind) in [
        ("aggregator_feed_invalid_utf8_total", "counter"),
        ("aggregator_feed_bytes_total", "counter"),
        ("aggregator_feed_rotations_total", "counter"),
        ("aggregator_feed_truncations_total", "counter"),
        ("aggregator_feed_checkpoint_errors_total", "counter"),
        ("aggregator_feed_offset_bytes", "gauge"),
        ("aggregator_feed_last_line_age_seconds", "gauge"),
    ] {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (feed, s) in &api.feed_stats {
            let snap = s.snapshot();
            let v = match name {
                "aggregator_feed_invalid_utf8_total" => snap.invalid_utf8 as f64,
                "aggregator_feed_bytes_total" => snap.bytes as f64,
                "aggregator_feed_rotations_total" => snap.rotations as f64,
                "aggregator_feed_truncations_total" => snap.truncations as f64,
                "aggregator_feed_checkpoint_errors_total" => snap.checkpoint_errors as f64,
                "aggregator_feed_offset_bytes" => snap.offset as f64,
                _ => match s.last_line_age() {
                    Some(a) => a.as_secs_f64(),
                    None => continue,
                },
            };
            let _ = writeln!(out, "{name}{{feed=\"{}\"}} {v}", feed.name());
        }
    }
    let _ = writeln!(out, "# TYPE aggregator_contacts gauge");
    for (kind, n) in contacts {
        let k = match kind {
            ContactKind::RemoteId => "remote_id",
            ContactKind::Rf => "rf",
            ContactKind::Fpv => "fpv",
        };
        let _ = writeln!(out, "aggregator_contacts{{kind=\"{k}\"}} {n}");
    }
    let _ = writeln!(out, "# TYPE aggregator_contacts_removed_total counter");
    for ((kind, why), n) in &removed {
        let _ = writeln!(
            out,
            "aggregator_contacts_removed_total{{kind=\"{kind}\",reason=\"{}\"}} {n}",
            why.label()
        );
    }
    metrics::write_value(&mut out, "aggregator_system_updates_total", "counter", updates);
    let _ = writeln!(
        out,
        "# HELP aggregator_watchdog_state Feed watchdog: 0 fresh, 1 stale, 2 missing.\n# TYPE aggregator_watchdog_state gauge"
    );
    for (feed, h) in &health {
        let v = match h {
            None | Some(FeedHealth::Fresh) => 0,
            Some(FeedHealth::Stale(_)) => 1,
            Some(FeedHealth::Missing) => 2,
        };
        let _ = writeln!(out, "aggregator_watchdog_state{{watchdog=\"{}\"}} {v}", feed.name());
    }
    let _ = writeln!(out, "# TYPE aggregator_upstream_requests_total counter");
    for up in [&api.remoteid, &api.controller, &api.antsdr] {
        up.requests.write_series(&mut out, "aggregator_upstream_requests_total");
    }
    let _ = writeln!(out, "# TYPE aggregator_upstream_up gauge");
    let _ = writeln!(
        out,
        "aggregator_upstream_up{{upstream=\"system_controller\"}} {}",
        u8::from(ctl_up)
    );
    let _ = writeln!(
        out,
        "aggregator_upstream_up{{upstream=\"antsdr\"}} {}",
        u8::from(antsdr_up)
    );
    let _ = writeln!(
        out,
        "# TYPE aggregator_overall_ok gauge\naggregator_overall_ok {}",
        u8::from(ok)
    );
    let _ = writeln!(out, "# TYPE ndefender_rate_limited_total counter");
    let _ = writeln!(
        out,
        "ndefender_rate_limited_total{{bucket=\"cmd\"}} {}",
        api.limits.cmd.limited()
    );
    let _ = writeln!(
        out,
        "ndefender_rate_limited_total{{bucket=\"dng\"}} {}",
        api.limits.dangerous.limited()
    );
    if let Some(h) = &api.history {
        h.stats().write_prometheus(&mut out);
    }
    if let Some(link) = &api.esp32 {
        let s = &link.stats;
        let _ = writeln!(
            out,
            "# TYPE esp32_connected gauge\nesp32_connected {}",
            u8::from(link.is_connected())
        );
        let _ = writeln!(out, "# TYPE esp32_lines_total counter");
        for (t, n) in [
            ("telemetry", s.telemetry.load(Relaxed)),
            ("command_ack", s.acks.load(Relaxed)),
            ("log_event", s.log_events.load(Relaxed)),
            ("other", s.other_types.load(Relaxed)),
        ] {
            let _ = writeln!(out, "esp32_lines_total{{type=\"{t}\"}} {n}");
        }
        for (name, v) in [
            ("esp32_lines_overlong_total", s.overlong.load(Relaxed)),
            ("esp32_lines_invalid_total", s.invalid.load(Relaxed)),
            ("esp32_late_acks_total", s.late_acks.load(Relaxed)),
            ("esp32_reconnects_total", s.reconnects.load(Relaxed)),
        ] {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {v}");
        }
        s.commands.write(&mut out, "esp32_commands_total");
        if let Ok(h) = s.ack_rtt.0.lock() {
            h.write(&mut out, "esp32_ack_rtt_seconds");
        }
    }
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], out).into_response()
}
