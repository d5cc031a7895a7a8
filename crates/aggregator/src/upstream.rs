//! GETs to the upstream daemons with a timeout, passed through their contract
//! type (unknown keys dropped, nulls removed). Failures become the fallback body
//! plus `X-NDefender-Upstream-Error` (aggregator §11).

use axum::http::{HeaderMap, HeaderValue, Method};
use ndefender_service::metrics::CounterFamily;
use ndefender_service::tls::{HttpAnswer, HttpClient, HttpError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Why an upstream GET gave no usable body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    Unavailable,
    Timeout,
    InvalidResponse,
}

impl UpstreamError {
    pub fn code(self, upstream: &str) -> String {
        match self {
            UpstreamError::Unavailable => format!("{upstream}_unavailable"),
            UpstreamError::Timeout => format!("{upstream}_timeout"),
            UpstreamError::InvalidResponse => format!("{upstream}_invalid_response"),
        }
    }
}

/// How long a connection (TCP and TLS handshake) to an upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One upstream: its base URL, key, and the client that reaches it (`http://`, or
/// `https://` with the certificate pinned by its `ca_file`).
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: &'static str,
    pub base_url: String,
    pub api_key: String,
    /// Relays, GETs and the follower's `/status`; its `tls` is the follower's `wss://` too.
    pub http: HttpClient,
    /// `aggregator_upstream_requests_total{upstream,outcome}`, shared by the clones.
    pub requests: Arc<CounterFamily>,
}

impl Upstream {
    /// `ca_file`: the PEM certificate an `https://` base URL must present (empty: none is
    /// trusted; the config check refuses an `https://` base URL without one).
    pub fn new(name: &'static str, base_url: &str, api_key: &str, ca_file: &str) -> std::io::Result<Self> {
        let http = HttpClient::new(ca_file, CONNECT_TIMEOUT)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{name}.ca_file: {e}")))?;
        Ok(Self {
            name,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            http,
            requests: Arc::default(),
        })
    }

    /// Counts one request's outcome (`ok`, `unavailable`, `timeout`, `invalid_response`, `refused`, `error`).
    pub fn count(&self, outcome: &str) {
        self.requests
            .inc(&format!("upstream=\"{}\",outcome=\"{outcome}\"", self.name));
    }

    /// `method /api/v1/{path}` with the upstream's key and `extra` headers, the JSON `body`
    /// if any, everything within `timeout`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        extra: HeaderMap,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<HttpAnswer, HttpError> {
        let url = format!("{}/api/v1/{}", self.base_url, path.trim_start_matches('/'));
        let mut headers = extra;
        if !self.api_key.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&self.api_key) {
                headers.insert("x-api-key", v);
            }
        }
        let r = self.http.request(method, &url, headers, body, timeout).await;
        if let Err(e) = &r {
            tracing::debug!(upstream = self.name, path, error = %e, "upstream request failed");
        }
        r
    }

    /// GET `/api/v1{path}` as `T`, re-serialised, with `timestamp_ms` added when absent.
    pub async fn get<T: DeserializeOwned + Serialize>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        let r = async {
            let a = self
                .call(Method::GET, path, HeaderMap::new(), None, timeout)
                .await
                .map_err(classify)?;
            if !a.status.is_success() {
                return Err(UpstreamError::InvalidResponse);
            }
            let raw: Value = serde_json::from_slice(&a.body).map_err(|_| UpstreamError::InvalidResponse)?;
            if !raw.is_object() {
                return Err(UpstreamError::InvalidResponse);
            }
            let typed: T = serde_json::from_value(raw).map_err(|_| UpstreamError::InvalidResponse)?;
            let mut v = serde_json::to_value(typed).map_err(|_| UpstreamError::InvalidResponse)?;
            if let Value::Object(m) = &mut v {
                if !m.contains_key("timestamp_ms") {
                    m.insert("timestamp_ms".into(), Value::from(ndefender_contract::time::now_ms()));
                }
            }
            Ok(v)
        }
        .await;
        self.count(match &r {
            Ok(_) => "ok",
            Err(UpstreamError::Unavailable) => "unavailable",
            Err(UpstreamError::Timeout) => "timeout",
            Err(UpstreamError::InvalidResponse) => "invalid_response",
        });
        r
    }
}

fn classify(e: HttpError) -> UpstreamError {
    match e {
        HttpError::Timeout => UpstreamError::Timeout,
        HttpError::Body(_) => UpstreamError::InvalidResponse,
        HttpError::Unavailable(_) => UpstreamError::Unavailable,
    }
}
