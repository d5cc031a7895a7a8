//! Pre-upgrade checks, in the order of PROTOCOL.md §7.1: auth, origin, query, upgrade headers, client limit.

use crate::connection;
use crate::pattern::{self, Subscription};
use crate::stats::Rejected;
use crate::{Hub, HubConfig};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::Query;
use axum::http::header::{ALLOW, CONTENT_TYPE, ORIGIN, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ndefender_contract::{error_body, ErrorStyle};
use subtle::ConstantTimeEq;

/// Connection options taken from the query.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    pub seq_mode: bool,
    pub since: Option<u64>,
    pub subscription: Subscription,
}

pub(crate) async fn upgrade(
    hub: Hub,
    headers: HeaderMap,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let cfg = hub.config();
    if hub.is_shutting_down() {
        return error(cfg, StatusCode::SERVICE_UNAVAILABLE, "shutting_down");
    }
    // An unparseable query still has to reach the auth check first, as "no key given".
    let query = Query::<Vec<(String, String)>>::try_from_uri(&uri).map(|q| q.0);
    let pairs: &[(String, String)] = query.as_deref().unwrap_or(&[]);

    if !authorised(cfg, &headers, pairs) {
        hub.counters().reject(Rejected::Auth);
        return error(cfg, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if !origin_allowed(cfg, &headers) {
        hub.counters().reject(Rejected::Origin);
        return error(cfg, StatusCode::FORBIDDEN, "origin_not_allowed");
    }
    let params = match query.ok().and_then(|pairs| parse_params(&pairs, cfg.max_patterns)) {
        Some(p) => p,
        None => {
            hub.counters().reject(Rejected::Query);
            return error(cfg, StatusCode::BAD_REQUEST, "invalid_query");
        }
    };
    let Ok(ws) = ws else {
        return error(cfg, StatusCode::BAD_REQUEST, "websocket_upgrade_required");
    };
    let Some(slot) = hub.reserve_slot() else {
        hub.counters().reject(Rejected::Limit);
        let mut resp = error(cfg, StatusCode::TOO_MANY_REQUESTS, "client_limit_reached");
        resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
        return resp;
    };
    hub.ensure_heartbeat();
    let max = cfg.max_frame_bytes;
    // If the upgrade fails the callback is dropped unrun, and with it the slot.
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| connection::serve(hub, socket, params, slot))
}

pub(crate) fn method_not_allowed(style: ErrorStyle) -> Response {
    let body = error_body(style, "method_not_allowed", None, None);
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (ALLOW, HeaderValue::from_static("GET")),
    ];
    (StatusCode::METHOD_NOT_ALLOWED, headers, body).into_response()
}

fn error(cfg: &HubConfig, status: StatusCode, code: &str) -> Response {
    let body = error_body(cfg.error_style, code, None, None);
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

fn authorised(cfg: &HubConfig, headers: &HeaderMap, pairs: &[(String, String)]) -> bool {
    if cfg.api_key.is_empty() {
        return true;
    }
    let expected = cfg.api_key.as_bytes();
    let header = headers.get_all("x-api-key").into_iter().map(HeaderValue::as_bytes);
    let query = pairs.iter().filter(|(k, _)| k == "api_key").map(|(_, v)| v.as_bytes());
    // Length is not secret; the bytes are compared in constant time.
    header.chain(query).any(|given| bool::from(given.ct_eq(expected)))
}

fn origin_allowed(cfg: &HubConfig, headers: &HeaderMap) -> bool {
    if cfg.origins_open() {
        return true;
    }
    // CLI tools and daemons send no Origin; the allowlist is a browser guard.
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    cfg.allowed_origins.iter().any(|allowed| {
        allowed
            .trim_end_matches('/')
            .eq_ignore_ascii_case(origin.trim_end_matches('/'))
    })
}

/// `seq` and `since` are u64, `events` follows the pattern grammar, none given twice.
fn parse_params(pairs: &[(String, String)], max_patterns: usize) -> Option<Params> {
    let mut seq: Option<u64> = None;
    let mut since: Option<u64> = None;
    let mut events: Option<Vec<String>> = None;
    for (key, value) in pairs {
        match key.as_str() {
            "seq" if seq.is_none() => seq = Some(value.parse().ok()?),
            "since" if since.is_none() => since = Some(value.parse().ok()?),
            "events" if events.is_none() => events = Some(pattern::parse_list(value, max_patterns).ok()?),
            "seq" | "since" | "events" => return None,
            _ => {}
        }
    }
    Some(Params {
        seq_mode: since.is_some() || seq.is_some_and(|s| s != 0),
        since,
        subscription: events.map_or_else(Subscription::default, Subscription::explicit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn query_rules() {
        let p = parse_params(&q(&[]), 10);
        assert!(p.is_some_and(|p| !p.seq_mode && p.since.is_none()));
        assert!(parse_params(&q(&[("seq", "1")]), 10).is_some_and(|p| p.seq_mode));
        assert!(parse_params(&q(&[("seq", "0")]), 10).is_some_and(|p| !p.seq_mode));
        assert!(parse_params(&q(&[("since", "5")]), 10).is_some_and(|p| p.seq_mode && p.since == Some(5)));
        assert!(parse_params(&q(&[("seq", "yes")]), 10).is_none());
        assert!(parse_params(&q(&[("since", "-1")]), 10).is_none());
        assert!(parse_params(&q(&[("since", "18446744073709551616")]), 10).is_none());
        assert!(parse_params(&q(&[("events", "a")]), 10).is_none());
        assert!(parse_params(&q(&[("events", "A,B,C")]), 2).is_none());
        assert!(parse_params(&q(&[("seq", "1"), ("seq", "1")]), 10).is_none());
        assert!(parse_params(&q(&[("api_key", "k"), ("other", "x")]), 10).is_some());
    }

    #[test]
    fn auth_and_origin() {
        let cfg = HubConfig {
            api_key: "s3cret".into(),
            allowed_origins: vec!["https://ui.example".into()],
            ..HubConfig::default()
        };
        let mut h = HeaderMap::new();
        assert!(!authorised(&cfg, &h, &[]));
        assert!(authorised(&cfg, &h, &q(&[("api_key", "s3cret")])));
        assert!(!authorised(&cfg, &h, &q(&[("api_key", "s3cre")])));
        h.insert("x-api-key", HeaderValue::from_static("s3cret"));
        assert!(authorised(&cfg, &h, &[]));
        assert!(origin_allowed(&cfg, &h));
        h.insert(ORIGIN, HeaderValue::from_static("https://ui.example"));
        assert!(origin_allowed(&cfg, &h));
        h.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!origin_allowed(&cfg, &h));
        assert!(origin_allowed(&HubConfig::default(), &h));
    }
}
