//! A client's reader: liveness, size limit, rate limit and the control actions (PROTOCOL.md §7.5).

use crate::client::{Client, CloseReason};
use crate::pattern::{PatternError, Subscription};
use crate::payload;
use crate::stats::Ignored;
use crate::Hub;
use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::SplitStream;
use futures_util::StreamExt;
use ndefender_contract::{Envelope, Source};
use serde_json::Value;
use std::time::Duration;
use tokio::time::{timeout, Instant};

/// Control frames processed per client per second (PROTOCOL.md §7.5).
const CONTROL_PER_SECOND: u32 = 20;
/// Longest `id` a ping may carry.
const MAX_PING_ID: usize = 64;

/// How reading ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReaderEnd {
    /// The socket is gone (EOF, reset, protocol error); nothing more can be said.
    Gone,
    /// The server must close with this reason.
    Close(CloseReason),
}

pub(crate) async fn run(hub: &Hub, client: &Client, stream: &mut SplitStream<WebSocket>) -> ReaderEnd {
    let cfg = hub.config();
    // Twice the ping interval: a healthy client answers every Ping with a Pong in between.
    let silence = cfg.ping_interval().map(|p| p.saturating_mul(2));
    let max = cfg.max_frame_bytes;
    let mut rate = RateWindow::default();
    loop {
        let next = match silence {
            Some(limit) => match timeout(limit, stream.next()).await {
                Ok(next) => next,
                Err(_) => return ReaderEnd::Close(CloseReason::Silent),
            },
            None => stream.next().await,
        };
        let msg = match next {
            None => return ReaderEnd::Gone,
            Some(Ok(msg)) => msg,
            Some(Err(e)) if too_long(&e) => return ReaderEnd::Close(CloseReason::TooBig),
            Some(Err(_)) => return ReaderEnd::Gone,
        };
        match msg {
            Message::Text(text) => {
                if text.len() > max {
                    return ReaderEnd::Close(CloseReason::TooBig);
                }
                if rate.allow(Instant::now()) {
                    handle(hub, client, text.as_str());
                } else {
                    hub.counters().ignore(Ignored::Rate);
                }
            }
            Message::Binary(bytes) => {
                if bytes.len() > max {
                    return ReaderEnd::Close(CloseReason::TooBig);
                }
                hub.counters().ignore(Ignored::Binary);
            }
            // Their arrival is all liveness needs; tungstenite answers Pings itself.
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(_) => return ReaderEnd::Close(CloseReason::PeerClosed),
        }
    }
}

/// The transport enforces `max_frame_bytes` too; its refusal only surfaces as an
/// error message, and treating it as a plain disconnect would lose the 1009.
fn too_long(e: &axum::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.to_string().contains("Message too long") {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Fixed one-second windows on the monotonic clock.
#[derive(Debug, Default)]
struct RateWindow {
    start: Option<Instant>,
    used: u32,
}

impl RateWindow {
    fn allow(&mut self, now: Instant) -> bool {
        match self.start {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {}
            _ => {
                self.start = Some(now);
                self.used = 0;
            }
        }
        if self.used < CONTROL_PER_SECOND {
            self.used += 1;
            true
        } else {
            false
        }
    }
}

fn handle(hub: &Hub, client: &Client, text: &str) {
    match parse_control(text) {
        ControlFrame::NotJson => hub.counters().ignore(Ignored::Text),
        ControlFrame::UnknownAction => hub.counters().ignore(Ignored::Action),
        frame => {
            let cfg = hub.config();
            let (source, max) = (cfg.source, cfg.max_patterns);
            client.control(|sub| apply_control(&frame, sub, max, source));
        }
    }
}

/// A client → server text frame, classified (PROTOCOL.md §7.5). The reader calls
/// [`parse_control`] on every text frame it processes, then [`apply_control`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlFrame {
    /// `subscribe`; `None` when `events` is missing or not an array of strings.
    Subscribe(Option<Vec<String>>),
    /// `unsubscribe`; a missing `events` is the empty list (remove all), `None` when it is
    /// not an array of strings.
    Unsubscribe(Option<Vec<String>>),
    /// `ping` with its optional id (a string of at most 64 characters).
    Ping(Option<String>),
    /// Not JSON: ignored, counted as text.
    NotJson,
    /// JSON without a known `action`, or a ping whose `id` is not a short string: ignored,
    /// counted as an action.
    UnknownAction,
}

/// Classifies one text frame. Pure; never fails.
pub fn parse_control(text: &str) -> ControlFrame {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return ControlFrame::NotJson;
    };
    match value.get("action").and_then(Value::as_str) {
        Some("subscribe") => ControlFrame::Subscribe(value.get("events").and_then(string_list)),
        Some("unsubscribe") => ControlFrame::Unsubscribe(match value.get("events") {
            None => Some(Vec::new()),
            Some(v) => string_list(v),
        }),
        Some("ping") => match value.get("id") {
            None => ControlFrame::Ping(None),
            Some(Value::String(id)) if id.chars().count() <= MAX_PING_ID => ControlFrame::Ping(Some(id.clone())),
            Some(_) => ControlFrame::UnknownAction,
        },
        _ => ControlFrame::UnknownAction,
    }
}

/// Applies a control frame to a client's subscription and returns the reply
/// (SUBSCRIBED, UNSUBSCRIBED, PONG or ERROR). An invalid pattern list leaves the
/// subscription unchanged. Ignored frames ([`ControlFrame::NotJson`],
/// [`ControlFrame::UnknownAction`]) change nothing and get no reply.
pub fn apply_control(
    frame: &ControlFrame,
    sub: &mut Subscription,
    max_patterns: usize,
    source: Source,
) -> Option<Envelope> {
    match frame {
        ControlFrame::Subscribe(Some(list)) => {
            reply(sub.subscribe(list, max_patterns), "SUBSCRIBED", source, list, sub)
        }
        ControlFrame::Unsubscribe(Some(list)) => reply(sub.unsubscribe(Some(list)), "UNSUBSCRIBED", source, list, sub),
        ControlFrame::Subscribe(None) | ControlFrame::Unsubscribe(None) => error(source, &PatternError::Invalid),
        ControlFrame::Ping(id) => payload::pong(source, id.as_deref()),
        ControlFrame::NotJson | ControlFrame::UnknownAction => None,
    }
}

fn reply(
    outcome: Result<(), PatternError>,
    kind: &'static str,
    source: Source,
    sent: &[String],
    sub: &Subscription,
) -> Option<Envelope> {
    match outcome {
        Ok(()) => payload::subscription(kind, source, sent, sub.active()),
        Err(e) => error(source, &e),
    }
}

fn error(source: Source, e: &PatternError) -> Option<Envelope> {
    payload::error(source, e.code(), &e.message())
}

/// `events` must be an array of strings; anything else is an invalid pattern list.
fn string_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?.iter().map(|p| p.as_str().map(str::to_owned)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_window() {
        let mut r = RateWindow::default();
        let t0 = Instant::now();
        assert!((0..CONTROL_PER_SECOND).all(|_| r.allow(t0)));
        assert!(!r.allow(t0 + Duration::from_millis(999)));
        assert!(r.allow(t0 + Duration::from_millis(1000)));
    }
}
