//! Commands relayed to an upstream daemon (aggregator §12): the body is
//! forwarded as received with the upstream's key, and the answer is mapped to a
//! CommandResult or an error body.

use crate::upstream::Upstream;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use ndefender_contract::command::{CommandRequest, CommandResult};
use ndefender_service::http::ApiError;
use ndefender_service::tls::{HttpAnswer, HttpError};
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
    let mut headers = HeaderMap::new();
    if let Some(o) = on_behalf {
        if let (Ok(client), Ok(name)) = (
            HeaderValue::from_str(&o.client.to_string()),
            HeaderValue::from_str(&o.name),
        ) {
            headers.insert("x-forwarded-for", client);
            headers.insert(ndefender_service::http::ON_BEHALF_OF_HEADER, name);
        }
    }
    let r = match up
        .call(Method::POST, upstream_path, headers, Some(&req.to_body()), timeout)
        .await
    {
        Ok(a) => answer(up, route_name, a, now_ms),
        Err(HttpError::Timeout) => Relayed::Failed(code(StatusCode::GATEWAY_TIMEOUT, up.name, "timeout")),
        Err(HttpError::Unavailable(_)) => Relayed::Failed(code(StatusCode::BAD_GATEWAY, up.name, "unavailable")),
        // A cut-off or oversized body: the upstream answered, but not usably.
        Err(HttpError::Body(_)) => Relayed::Failed(code(StatusCode::BAD_GATEWAY, up.name, "error")),
    };
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

/// Maps the upstream's complete answer.
fn answer(up: &Upstream, route_name: &str, a: HttpAnswer, now_ms: u64) -> Relayed {
    let status = a.status;
    let retry_after = a
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body: Option<Value> = serde_json::from_slice(&a.body).ok();
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
