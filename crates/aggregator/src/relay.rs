//! Commands relayed to an upstream daemon (aggregator §12): the body is
//! forwarded as received with the upstream's key, and the answer is mapped to a
//! CommandResult or an error body.

use crate::upstream::Upstream;
use axum::http::StatusCode;
use ndefender_contract::command::{CommandRequest, CommandResult};
use ndefender_service::http::ApiError;
use serde_json::Value;
use std::time::Duration;

/// How a relayed command ended.
#[derive(Debug)]
pub enum Relayed {
    /// 2xx: the CommandResult to answer with.
    Ok(CommandResult),
    /// The upstream received and authenticated the request and refused it (4xx
    /// other than 401): it publishes its own COMMAND_ACK.
    Refused(ApiError),
    /// Unreachable, timed out, 401, 5xx or garbage: the aggregator acks it itself.
    Failed(ApiError),
}

/// The client a command is relayed for: sent as `X-Forwarded-For` and
/// `X-NDefender-On-Behalf-Of`, which the upstream believes only from a trusted proxy.
#[derive(Debug, Clone)]
pub struct OnBehalf {
    pub name: String,
    pub client: std::net::IpAddr,
}

pub async fn relay(
    up: &Upstream,
    route_name: &str,
    upstream_path: &str,
    req: &CommandRequest,
    timeout: Duration,
    now_ms: u64,
    on_behalf: Option<&OnBehalf>,
) -> Relayed {
    let r = relay_inner(up, route_name, upstream_path, req, timeout, now_ms, on_behalf).await;
    up.count(match &r {
        Relayed::Ok(_) => "ok",
        Relayed::Refused(_) => "refused",
        Relayed::Failed(e) if e.status == StatusCode::GATEWAY_TIMEOUT => "timeout",
        Relayed::Failed(e) if e.status == StatusCode::UNAUTHORIZED => "refused",
        Relayed::Failed(e) if e.code.ends_with("_unavailable") => "unavailable",
        Relayed::Failed(_) => "error",
    });
    r
}

async fn relay_inner(
    up: &Upstream,
    route_name: &str,
    upstream_path: &str,
    req: &CommandRequest,
    timeout: Duration,
    now_ms: u64,
    on_behalf: Option<&OnBehalf>,
) -> Relayed {
    let url = format!("{}/api/v1/{}", up.base_url, upstream_path.trim_start_matches('/'));
    let mut r = up.client.post(&url).timeout(timeout).json(&req.to_body());
    if !up.api_key.is_empty() {
        r = r.header("X-API-Key", &up.api_key);
    }
    if let Some(o) = on_behalf {
        r = r
            .header("X-Forwarded-For", o.client.to_string())
            .header(ndefender_service::http::ON_BEHALF_OF_HEADER, &o.name);
    }
    let resp = match r.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Relayed::Failed(code(StatusCode::GATEWAY_TIMEOUT, up.name, "timeout")),
        Err(_) => return Relayed::Failed(code(StatusCode::BAD_GATEWAY, up.name, "unavailable")),
    };
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body: Option<Value> = match tokio::time::timeout(timeout, resp.bytes()).await {
        Ok(Ok(b)) => serde_json::from_slice(&b).ok(),
        Ok(Err(_)) => None,
        Err(_) => return Relayed::Failed(code(StatusCode::GATEWAY_TIMEOUT, up.name, "timeout")),
    };
    if status.is_success() {
        let Some(Value::Object(b)) = body else {
            return Relayed::Failed(code(StatusCode::BAD_GATEWAY, up.name, "error"));
        };
        let id = b
            .get("command_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        return Relayed::Ok(CommandResult::accepted(route_name, id, now_ms));
    }
    if status.is_client_error() {
        let detail = body.as_ref().and_then(|b| {
            b.get("detail")
                .and_then(Value::as_str)
                .or_else(|| b.get("error").and_then(|e| e.get("code")).and_then(Value::as_str))
                .map(str::to_owned)
        });
        let detail = detail.unwrap_or_else(|| format!("{}_error", up.name));
        let mut err = ApiError::new(status, detail);
        if status == StatusCode::TOO_MANY_REQUESTS {
            err.retry_after_s = Some(retry_after.unwrap_or(1).max(1));
        }
        // A 401 means the upstream never accepted the request, so it published no ack.
        return if status == StatusCode::UNAUTHORIZED {
            Relayed::Failed(err)
        } else {
            Relayed::Refused(err)
        };
    }
    Relayed::Failed(code(StatusCode::BAD_GATEWAY, up.name, "error"))
}

fn code(status: StatusCode, upstream: &str, what: &str) -> ApiError {
    ApiError::new(status, format!("{upstream}_{what}"))
}
