//! REST conventions of wire §5 and §6, applied once for every daemon: JSON error
//! bodies (never plain text, whatever produced the error), the API key, the
//! Origin allowlist and CORS, 503 during shutdown, the client address behind a
//! trusted proxy, and panics turned into 500 `internal_error`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ndefender_contract::{error_body, ErrorStyle};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Request bodies above this get 413 `payload_too_large` (wire §5).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Header carrying the upstream failure on proxy fallbacks (aggregator §11).
pub const UPSTREAM_ERROR_HEADER: &str = "x-ndefender-upstream-error";

/// An error answered with the service's error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub field: Option<String>,
    pub message: Option<String>,
    pub retry_after_s: Option<u64>,
}

/// Attached to every error response so the conventions layer can re-render the
/// body in the service's style without parsing it back.
#[derive(Debug, Clone)]
struct ErrorInfo {
    code: String,
    field: Option<String>,
    message: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code: code.into(),
            field: None,
            message: None,
            retry_after_s: None,
        }
    }
    pub fn bad_request(code: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code)
    }
    /// 400 `invalid_payload` naming the field.
    pub fn invalid_field(field: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_payload")
        }
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found")
    }
    /// 429 with `Retry-After` (at least 1 s).
    pub fn too_many(code: &'static str, retry_after_s: u64) -> Self {
        Self {
            retry_after_s: Some(retry_after_s.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code)
        }
    }
    pub fn with_message(mut self, m: impl Into<String>) -> Self {
        self.message = Some(m.into());
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.code)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = error_body(ErrorStyle::Detail, &self.code, self.field.as_deref(), None);
        let mut resp = (self.status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Some(s) = self.retry_after_s {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp.extensions_mut().insert(ErrorInfo {
            code: self.code.into_owned(),
            field: self.field,
            message: self.message,
        });
        resp
    }
}

/// A compact JSON 200 response.
pub fn json_ok<T: serde::Serialize>(v: &T) -> Response {
    json_with_status(StatusCode::OK, v)
}

pub fn json_with_status<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => (status, [(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "response serialisation failed");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error").into_response()
        }
    }
}

/// The per-service settings the conventions layer enforces.
#[derive(Debug, Clone)]
pub struct Conventions {
    pub style: ErrorStyle,
    pub api_key: String,
    pub allowed_origins: Vec<String>,
    pub cors_max_age_s: u64,
    /// Paths open without a key (wire §6: `/api/v1/health`).
    pub open_paths: Vec<String>,
    /// WebSocket paths: the hub runs its own admission (with its own counters).
    pub ws_paths: Vec<String>,
    pub shutting_down: Arc<AtomicBool>,
    /// Filled by the outermost layer `apply` adds; the daemon's `/metrics` renders it.
    pub http_metrics: Arc<crate::metrics::HttpMetrics>,
}

impl Conventions {
    pub fn new(style: ErrorStyle, api_key: &str, allowed_origins: &[String], cors_max_age_s: u64) -> Self {
        Self {
            style,
            api_key: api_key.to_owned(),
            allowed_origins: allowed_origins.to_vec(),
            cors_max_age_s,
            open_paths: vec!["/api/v1/health".into()],
            ws_paths: Vec::new(),
            shutting_down: Arc::new(AtomicBool::new(false)),
            http_metrics: Arc::default(),
        }
    }
    /// Shares the request counters with the daemon that renders them.
    pub fn with_http_metrics(mut self, m: Arc<crate::metrics::HttpMetrics>) -> Self {
        self.http_metrics = m;
        self
    }
    pub fn with_ws_paths(mut self, paths: &[&str]) -> Self {
        self.ws_paths = paths.iter().map(|p| (*p).to_owned()).collect();
        self
    }
    fn any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }
    fn origin_allowed(&self, origin: &str) -> bool {
        self.any_origin() || self.allowed_origins.iter().any(|o| o == origin)
    }
}

/// Constant-time key check against `X-API-Key` or the `api_key` query parameter.
pub fn key_matches(expected: &str, headers: &HeaderMap, query: Option<&str>) -> bool {
    if expected.is_empty() {
        return true;
    }
    let given = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query_param(query, "api_key"));
    match given {
        Some(g) => bool::from(g.as_bytes().ct_eq(expected.as_bytes())),
        None => false,
    }
}

/// First value of `name` in a URL query string, percent-decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let q = query?;
    form_decode(q).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn form_decode(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The middleware enforcing [`Conventions`]; install with
/// `axum::middleware::from_fn_with_state(conv, conventions)`.
pub async fn conventions(State(conv): State<Arc<Conventions>>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = req.uri().path().to_owned();
    let is_ws = conv.ws_paths.contains(&path);

    let early = if conv.shutting_down.load(Ordering::Relaxed) {
        Some(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down").into_response())
    } else if req.method() == Method::OPTIONS {
        Some(preflight(&conv, req.headers(), origin.as_deref()))
    } else if is_ws {
        None
    } else if !conv.open_paths.contains(&path) && !key_matches(&conv.api_key, req.headers(), req.uri().query()) {
        Some(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_api_key").into_response())
    } else if origin.as_deref().is_some_and(|o| !conv.origin_allowed(o)) {
        Some(ApiError::new(StatusCode::FORBIDDEN, "origin_not_allowed").into_response())
    } else {
        None
    };
    let resp = match early {
        Some(r) => r,
        None => next.run(req).await,
    };
    // The hub answers its own pre-upgrade refusals (429 client_limit_reached, 400
    // invalid_query, …) in the service's style already; rewriting them would lose the code.
    let resp = if is_ws {
        resp
    } else {
        normalize_error(&conv, resp).await
    };
    add_cors(&conv, origin.as_deref(), resp)
}

fn preflight(conv: &Conventions, headers: &HeaderMap, origin: Option<&str>) -> Response {
    if origin.is_some_and(|o| !conv.origin_allowed(o)) {
        return ApiError::new(StatusCode::FORBIDDEN, "origin_not_allowed").into_response();
    }
    let allow_headers = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or("Content-Type, X-API-Key")
        .to_owned();
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    if let Ok(v) = HeaderValue::from_str(&allow_headers) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(conv.cors_max_age_s));
    r
}

fn add_cors(conv: &Conventions, origin: Option<&str>, mut resp: Response) -> Response {
    let h = resp.headers_mut();
    if conv.any_origin() {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    } else if let Some(o) = origin.filter(|o| conv.origin_allowed(o)) {
        if let Ok(v) = HeaderValue::from_str(o) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Retry-After, X-NDefender-Upstream-Error"),
    );
    resp
}

/// Every error leaves as the service's JSON error body: framework rejections
/// (unknown path, wrong method, oversized or unreadable body) included.
async fn normalize_error(conv: &Conventions, resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let info = resp.extensions().get::<ErrorInfo>().cloned();
    let info = match info {
        Some(i) if conv.style == ErrorStyle::Detail => return with_json_type(resp, i),
        Some(i) => i,
        None => ErrorInfo {
            code: framework_code(status).to_owned(),
            field: None,
            message: None,
        },
    };
    let (mut parts, _) = resp.into_parts();
    let body = error_body(conv.style, &info.code, info.field.as_deref(), info.message.as_deref());
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.extensions.insert(info);
    Response::from_parts(parts, Body::from(body))
}

fn with_json_type(mut resp: Response, info: ErrorInfo) -> Response {
    resp.extensions_mut().insert(info);
    resp
}

fn framework_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNAUTHORIZED => "invalid_api_key",
        StatusCode::SERVICE_UNAVAILABLE => "not_ready",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal_error",
        _ => "invalid_json",
    }
}

/// 500 `internal_error` for a panicking handler (the process keeps serving).
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    let request_id = uuid::Uuid::new_v4();
    tracing::error!(%request_id, panic = what, "handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error").into_response()
}

/// Client address for rate limits and local-only checks (wire §6): the TCP peer,
/// or the right-most non-proxy `X-Forwarded-For` entry when the peer is trusted.
pub fn client_addr(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer_ip = canonical(peer.ip());
    if !trusted.contains(&peer_ip) {
        return peer_ip;
    }
    let xff: Vec<IpAddr> = headers
        .get_all(HeaderName::from_static("x-forwarded-for"))
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .map(canonical)
        .collect();
    xff.into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer_ip)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Parses `trusted_proxies` entries, skipping (and logging) invalid ones.
pub fn parse_ips(list: &[String]) -> Vec<IpAddr> {
    list.iter()
        .filter_map(|s| match s.parse::<IpAddr>() {
            Ok(ip) => Some(canonical(ip)),
            Err(_) => {
                tracing::warn!(entry = %s, "ignoring invalid trusted_proxies entry");
                None
            }
        })
        .collect()
}

/// Wraps a router with the conventions, the body limit, the panic catcher and,
/// outermost, the request metrics (so they count the status the client got).
pub fn apply<S>(router: axum::Router<S>, conv: Conventions) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let http_metrics = conv.http_metrics.clone();
    let conv = Arc::new(conv);
    router
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn_with_state(conv, conventions))
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            crate::metrics::track,
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xff_rules() {
        let trusted = parse_ips(&["127.0.0.1".into(), "::1".into()]);
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 10.0.0.9, 127.0.0.1"),
        );
        let local: SocketAddr = ([127, 0, 0, 1], 5000).into();
        let remote: SocketAddr = ([8, 8, 8, 8], 5000).into();
        assert_eq!(
            client_addr(local, &h, &trusted),
            "10.0.0.9".parse::<IpAddr>().ok().unwrap_or(local.ip())
        );
        assert_eq!(client_addr(remote, &h, &trusted), remote.ip());
        assert_eq!(client_addr(local, &HeaderMap::new(), &trusted), local.ip());
    }

    #[test]
    fn query_decoding_and_keys() {
        assert_eq!(
            query_param(Some("a=1&api_key=s%3Dx+y"), "api_key").as_deref(),
            Some("s=x y")
        );
        assert_eq!(query_param(Some("api_key=%zz"), "api_key").as_deref(), Some("%zz"));
        assert_eq!(query_param(Some("api_key=%4"), "api_key").as_deref(), Some("%4"));
        let mut h = HeaderMap::new();
        assert!(key_matches("", &h, None));
        assert!(!key_matches("k", &h, None));
        assert!(key_matches("k", &h, Some("api_key=k")));
        h.insert("x-api-key", HeaderValue::from_static("k"));
        assert!(key_matches("k", &h, None));
        assert!(!key_matches("kk", &h, None));
    }
}
