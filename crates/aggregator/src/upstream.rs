//! GETs to the upstream daemons with a timeout, passed through their contract
//! type (unknown keys dropped, nulls removed). Failures become the fallback body
//! plus `X-NDefender-Upstream-Error` (aggregator §11).

use ndefender_service::metrics::CounterFamily;
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

/// One upstream: its base URL and key.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: &'static str,
    pub base_url: String,
    pub api_key: String,
    pub client: reqwest::Client,
    /// TLS client config trusting only the upstream's pinned certificate (`ca_file`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// `aggregator_upstream_requests_total{upstream,outcome}`, shared by the clones.
    pub requests: Arc<CounterFamily>,
}

impl Upstream {
    pub fn new(name: &'static str, base_url: &str, api_key: &str, client: reqwest::Client) -> Self {
        Self {
            name,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            client,
            tls: None,
            requests: Arc::default(),
        }
    }

    /// With `ca_file` set, the controller follower's `wss://` connection trusts only that
    /// certificate file (a daemon's own self-signed certificate). REST calls to an
    /// `https://` base URL are not supported yet: reqwest's rustls backend would need a
    /// process-wide crypto provider (see docs/SECURITY.md).
    pub fn pinned(mut self, ca_file: &str) -> std::io::Result<Self> {
        if ca_file.is_empty() {
            return Ok(self);
        }
        let tls = ndefender_service::tls::pinned_client_config(std::path::Path::new(ca_file))?;
        self.tls = Some(Arc::new(tls));
        Ok(self)
    }

    /// Counts one request's outcome (`ok`, `unavailable`, `timeout`, `invalid_response`, `refused`, `error`).
    pub fn count(&self, outcome: &str) {
        self.requests
            .inc(&format!("upstream=\"{}\",outcome=\"{outcome}\"", self.name));
    }

    /// GET `/api/v1{path}` as `T`, re-serialised, with `timestamp_ms` added when absent.
    pub async fn get<T: DeserializeOwned + Serialize>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        let r = self.get_inner::<T>(path, timeout).await;
        self.count(match &r {
            Ok(_) => "ok",
            Err(UpstreamError::Unavailable) => "unavailable",
            Err(UpstreamError::Timeout) => "timeout",
            Err(UpstreamError::InvalidResponse) => "invalid_response",
        });
        r
    }

    async fn get_inner<T: DeserializeOwned + Serialize>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        let url = format!("{}/api/v1{}", self.base_url, path);
        let mut req = self.client.get(&url).timeout(timeout);
        if !self.api_key.is_empty() {
            req = req.header("X-API-Key", &self.api_key);
        }
        let resp = req.send().await.map_err(classify)?;
        if !resp.status().is_success() {
            return Err(UpstreamError::InvalidResponse);
        }
        let bytes = tokio::time::timeout(timeout, resp.bytes())
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(classify)?;
        let raw: Value = serde_json::from_slice(&bytes).map_err(|_| UpstreamError::InvalidResponse)?;
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
}

fn classify(e: reqwest::Error) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout
    } else if e.is_decode() || e.is_body() {
        UpstreamError::InvalidResponse
    } else {
        UpstreamError::Unavailable
    }
}
