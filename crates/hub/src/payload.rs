//! `data` of the envelopes the hub itself emits (PROTOCOL.md §8: HEARTBEAT, SUBSCRIBED,
//! UNSUBSCRIBED, PONG, ERROR). They have no contract schema beyond the envelope.

use ndefender_contract::{Envelope, Source};
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock epoch milliseconds (PROTOCOL.md §3).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[derive(Serialize)]
struct Heartbeat {
    timestamp_ms: u64,
}

#[derive(Serialize)]
struct SubscriptionReply<'a> {
    events: &'a [String],
    active: &'a [String],
}

#[derive(Serialize)]
struct Pong<'a> {
    timestamp_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
}

#[derive(Serialize)]
struct ErrorReply<'a> {
    code: &'a str,
    message: &'a str,
}

pub fn heartbeat(source: Source) -> Option<Envelope> {
    let t = now_ms();
    Envelope::new("HEARTBEAT", t, source, &Heartbeat { timestamp_ms: t }).ok()
}

/// `kind` is SUBSCRIBED or UNSUBSCRIBED.
pub fn subscription(kind: &'static str, source: Source, events: &[String], active: &[String]) -> Option<Envelope> {
    Envelope::new(kind, now_ms(), source, &SubscriptionReply { events, active }).ok()
}

pub fn pong(source: Source, id: Option<&str>) -> Option<Envelope> {
    let t = now_ms();
    Envelope::new("PONG", t, source, &Pong { timestamp_ms: t, id }).ok()
}

pub fn error(source: Source, code: &str, message: &str) -> Option<Envelope> {
    Envelope::new("ERROR", now_ms(), source, &ErrorReply { code, message }).ok()
}
