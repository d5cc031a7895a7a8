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

use crate::audit::{AuditLog, Record};
use crate::auth::{Credentials, Identity, Refusal, Role};
use crate::ratelimit::SlidingWindow;
use crate::server::{Defaults, ServerConfig};

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
    pub credentials: Arc<Credentials>,
    pub allowed_origins: Vec<String>,
    pub cors_max_age_s: u64,
    /// Paths open without a credential (wire §6: `/api/v1/health`).
    pub open_paths: Vec<String>,
    /// WebSocket paths: `?access_token=` is accepted there, and the hub answers its own
    /// later refusals (client limit, bad query) in the service's style.
    pub ws_paths: Vec<String>,
    /// Command paths an operator may call (prefixes); every other command is admin-only.
    pub operator_prefixes: Vec<String>,
    /// Peers whose `X-Forwarded-For` and relayed caller name are believed.
    pub trusted: Vec<IpAddr>,
    /// Failed credentials per client address; the 11th in a minute gets 429.
    pub auth_failures: Arc<SlidingWindow>,
    pub audit: Option<Arc<AuditLog>>,
    pub shutting_down: Arc<AtomicBool>,
    /// Filled by the outermost layer `apply` adds; the daemon's `/metrics` renders it.
    pub http_metrics: Arc<crate::metrics::HttpMetrics>,
}

/// Failed credentials a client address may present per minute before it gets 429.
pub const AUTH_FAILURES_PER_MINUTE: u32 = 10;
/// Set by a relaying daemon: the name of the client it relays for (believed only from a
/// trusted proxy, see [`Conventions::trusted`]).
pub const ON_BEHALF_OF_HEADER: &str = "x-ndefender-on-behalf-of";
pub const WHOAMI_PATH: &str = "/api/v1/auth/whoami";

impl Conventions {
    pub fn new(style: ErrorStyle, api_key: &str, allowed_origins: &[String], cors_max_age_s: u64) -> Self {
        Self {
            style,
            credentials: Arc::new(Credentials::new(api_key, &[])),
            allowed_origins: allowed_origins.to_vec(),
            cors_max_age_s,
            open_paths: vec!["/api/v1/health".into()],
            ws_paths: Vec::new(),
            operator_prefixes: Vec::new(),
            trusted: parse_ips(&["127.0.0.1".into(), "::1".into()]),
            auth_failures: Arc::new(SlidingWindow::per_minute(AUTH_FAILURES_PER_MINUTE)),
            audit: None,
            shutting_down: Arc::new(AtomicBool::new(false)),
            http_metrics: Arc::default(),
        }
    }
    /// Everything a daemon's `[server]` section says.
    pub fn from_server<D: Defaults>(style: ErrorStyle, s: &ServerConfig<D>) -> Self {
        Self {
            credentials: Arc::new(Credentials::new(&s.api_key, &s.tokens)),
            trusted: parse_ips(&s.trusted_proxies),
            ..Self::new(style, "", &s.allowed_origins, s.cors_max_age_s)
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
    pub fn with_operator_routes(mut self, prefixes: &[&str]) -> Self {
        self.operator_prefixes = prefixes.iter().map(|p| (*p).to_owned()).collect();
        self
    }
    pub fn with_audit(mut self, audit: Arc<AuditLog>) -> Self {
        self.audit = Some(audit);
        self
    }
    fn any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }
    /// Listed, `*`, or the page's own origin (its host equals the `Host` header).
    fn origin_allowed(&self, origin: &str, headers: &HeaderMap) -> bool {
        let origin = origin.trim_end_matches('/');
        if self.any_origin()
            || self
                .allowed_origins
                .iter()
                .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
        {
            return true;
        }
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_host = origin.split_once("://").map(|(_, h)| h);
        matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
    }
    fn role_needed(&self, method: &Method, path: &str) -> Role {
        let ops: Vec<&str> = self.operator_prefixes.iter().map(String::as_str).collect();
        crate::auth::required_role(method, path, &ops)
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

/// The caller as the conventions layer saw it, in every request's extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    pub client: IpAddr,
    /// The relayed client's name when a trusted daemon relays for someone.
    pub on_behalf_of: Option<String>,
}

fn is_command(m: &Method) -> bool {
    matches!(*m, Method::POST | Method::PUT | Method::DELETE | Method::PATCH)
}

/// A body that is present must be JSON: a browser can send `text/plain` or form bodies
/// cross-site without a preflight, never `application/json`.
fn json_body_ok(headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(ct) => ct
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")),
        None => {
            let len = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            len == Some(0) || (len.is_none() && !headers.contains_key(header::TRANSFER_ENCODING))
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The middleware enforcing [`Conventions`]; install with
/// `axum::middleware::from_fn_with_state(conv, conventions)`.
pub async fn conventions(State(conv): State<Arc<Conventions>>, mut req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let is_ws = conv.ws_paths.contains(&path);
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let client = client_addr(peer, req.headers(), &conv.trusted);
    let mut caller = None;

    let early = if conv.shutting_down.load(Ordering::Relaxed) {
        Some(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down"))
    } else if method == Method::OPTIONS {
        let r = preflight(&conv, req.headers(), origin.as_deref());
        return add_cors(&conv, origin.as_deref(), req.headers(), r);
    } else if origin
        .as_deref()
        .is_some_and(|o| !conv.origin_allowed(o, req.headers()))
    {
        // Before the upgrade too: a hostile page may not open the WebSocket.
        Some(ApiError::new(StatusCode::FORBIDDEN, "origin_not_allowed"))
    } else if conv.open_paths.contains(&path) {
        None
    } else {
        let (c, refused) = authorise(&conv, &req, &method, &path, is_ws, client, peer);
        caller = c;
        refused
    };
    let headers = req.headers().clone();
    let early = match early {
        None if is_command(&method) && !json_body_ok(&headers) => Some(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )),
        e => e,
    };
    if let Some(c) = &caller {
        req.extensions_mut().insert(c.clone());
    }
    if let Some(a) = &conv.audit {
        req.extensions_mut().insert(a.clone());
    }
    // Only the hub's own answers on a WebSocket path are already in the service's style;
    // this layer's refusals there are rendered like any other.
    let from_hub = is_ws && early.is_none();
    let resp = match early {
        Some(e) => e.into_response(),
        None => next.run(req).await,
    };
    let ctx = Ctx {
        method,
        path,
        client,
        origin,
        headers,
        is_ws: from_hub,
    };
    finish(&conv, &ctx, caller.as_ref(), resp).await
}

/// What `finish` needs to know about the request after it was handed on.
struct Ctx {
    method: Method,
    path: String,
    client: IpAddr,
    origin: Option<String>,
    headers: HeaderMap,
    is_ws: bool,
}

async fn finish(conv: &Conventions, ctx: &Ctx, caller: Option<&Caller>, resp: Response) -> Response {
    // The hub answers its own pre-upgrade refusals (429 client_limit_reached, 400
    // invalid_query, …) in the service's style already; rewriting them would lose the code.
    let resp = if ctx.is_ws {
        resp
    } else {
        normalize_error(conv, resp).await
    };
    let resp = match (&conv.audit, is_command(&ctx.method)) {
        (Some(audit), true) => audit_command(audit.clone(), ctx, caller, resp).await,
        _ => resp,
    };
    add_cors(conv, ctx.origin.as_deref(), &ctx.headers, resp)
}

fn authorise(
    conv: &Conventions,
    req: &Request,
    method: &Method,
    path: &str,
    is_ws: bool,
    client: IpAddr,
    peer: SocketAddr,
) -> (Option<Caller>, Option<ApiError>) {
    let now = std::time::Instant::now();
    if let Err(retry) = conv.auth_failures.peek(client, now) {
        conv.http_metrics.count_auth("rate_limited");
        let e = ApiError::too_many("rate_limited", retry).with_message("too many failed credentials from this address");
        return (None, Some(e));
    }
    let identity = match conv
        .credentials
        .identify(req.headers(), req.uri().query(), is_ws, now_ms())
    {
        Ok(i) => i,
        Err(Refusal::Missing) => {
            conv.http_metrics.count_auth("missing");
            return (None, Some(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized")));
        }
        Err(Refusal::Invalid) => {
            conv.http_metrics.count_auth("invalid");
            if let Err(retry) = conv.auth_failures.check(client, now) {
                return (None, Some(ApiError::too_many("rate_limited", retry)));
            }
            return (None, Some(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized")));
        }
    };
    let peer_trusted = conv.trusted.contains(&canonical(peer.ip()));
    let on_behalf_of = peer_trusted
        .then(|| req.headers().get(ON_BEHALF_OF_HEADER).and_then(|v| v.to_str().ok()))
        .flatten()
        .filter(|v| (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned);
    let needed = conv.role_needed(method, path);
    let refused = (identity.role < needed).then(|| {
        conv.http_metrics.count_auth("forbidden_role");
        ApiError::new(StatusCode::FORBIDDEN, "forbidden_role").with_message(format!(
            "{} needs the {} role",
            path,
            needed.as_str()
        ))
    });
    let caller = Caller {
        identity,
        client,
        on_behalf_of,
    };
    (Some(caller), refused)
}

/// Writes the command's audit line; the command_id is read from the answer's JSON body.
async fn audit_command(audit: Arc<AuditLog>, ctx: &Ctx, caller: Option<&Caller>, resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES * 4).await.unwrap_or_default();
    let v: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let find = |k: &str| {
        v.as_ref().and_then(|v| {
            v.get(k)
                .or_else(|| v.get("data").and_then(|d| d.get(k)))
                .and_then(|x| x.as_str())
                .map(str::to_owned)
        })
    };
    let status = parts.status;
    let outcome = if status.is_success() {
        "accepted".to_owned()
    } else {
        parts
            .extensions
            .get::<ErrorInfo>()
            .map(|i| i.code.clone())
            .unwrap_or_else(|| framework_code(status).to_owned())
    };
    let (who, role, relayed_by) = match caller {
        Some(c) => match &c.on_behalf_of {
            Some(n) => (n.clone(), c.identity.role.as_str(), Some(c.identity.name.clone())),
            None => (c.identity.name.clone(), c.identity.role.as_str(), None),
        },
        None => ("unauthenticated".to_owned(), "none", None),
    };
    let rec = Record {
        ts_ms: now_ms(),
        who,
        role,
        client: ctx.client.to_string(),
        relayed_by,
        method: ctx.method.to_string(),
        route: ctx.path.clone(),
        status: status.as_u16(),
        outcome,
        command_id: find("command_id"),
    };
    let _ = tokio::task::spawn_blocking(move || audit.append(&rec)).await;
    Response::from_parts(parts, Body::from(bytes))
}

/// `GET /api/v1/auth/whoami`: the name and role the request was granted.
pub async fn whoami(caller: Option<axum::Extension<Caller>>) -> Response {
    match caller {
        Some(axum::Extension(c)) => json_ok(&serde_json::json!({"name": c.identity.name, "role": c.identity.role})),
        None => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized").into_response(),
    }
}

/// `GET /api/v1/audit?limit=N` (admin): the newest audit lines, oldest first.
pub async fn audit_tail(audit: Option<axum::Extension<Arc<AuditLog>>>, uri: axum::http::Uri) -> Response {
    let Some(axum::Extension(audit)) = audit else {
        return ApiError::not_found().into_response();
    };
    let limit = match query_param(uri.query(), "limit") {
        None => crate::audit::DEFAULT_LIMIT,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=crate::audit::MAX_LIMIT).contains(&n) => n,
            _ => return ApiError::invalid_field("limit").into_response(),
        },
    };
    match tokio::task::spawn_blocking(move || audit.tail(limit)).await {
        Ok(Ok(lines)) => json_ok(&serde_json::json!({"records": lines})),
        _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error").into_response(),
    }
}

fn preflight(conv: &Conventions, headers: &HeaderMap, origin: Option<&str>) -> Response {
    if origin.is_some_and(|o| !conv.origin_allowed(o, headers)) {
        return ApiError::new(StatusCode::FORBIDDEN, "origin_not_allowed").into_response();
    }
    let allow_headers = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or("Content-Type, X-API-Key, Authorization")
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

fn add_cors(conv: &Conventions, origin: Option<&str>, req_headers: &HeaderMap, mut resp: Response) -> Response {
    let h = resp.headers_mut();
    if conv.any_origin() {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    } else if let Some(o) = origin.filter(|o| conv.origin_allowed(o, req_headers)) {
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
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
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
        .route(WHOAMI_PATH, axum::routing::get(whoami))
        .route(crate::audit::AUDIT_PATH, axum::routing::get(audit_tail))
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
