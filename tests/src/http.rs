//! HTTP helpers of every crate's tests: one request with a timeout, the status, the
//! headers and the body (JSON when it parses, else the text as a JSON string).

use crate::R;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::time::Duration;

/// How long one request may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// One answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as JSON, or `Value::String(text)` when it is not JSON.
    pub body: Value,
    /// The body as received.
    pub text: String,
}

impl Reply {
    /// The body as JSON; an error naming the text when it is not.
    pub fn json(&self) -> R<Value> {
        serde_json::from_str(&self.text).map_err(|e| format!("body is not JSON ({e}): {}", self.text).into())
    }

    /// A header's value ("" when absent or not text).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

async fn reply(r: reqwest::Response) -> R<Reply> {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await?;
    let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
    Ok(Reply {
        status,
        headers,
        body,
        text,
    })
}

/// GET `url`.
pub async fn get(url: &str) -> R<Reply> {
    reply(reqwest::Client::new().get(url).timeout(TIMEOUT).send().await?).await
}

/// POST `body` as `application/json` (sent as given, so tests can send malformed JSON).
pub async fn post(url: &str, body: &str) -> R<Reply> {
    let r = reqwest::Client::new()
        .post(url)
        .timeout(TIMEOUT)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await?;
    reply(r).await
}
