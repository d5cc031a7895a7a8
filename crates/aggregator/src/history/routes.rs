//! `GET /api/v1/history/...`: the contact list, one contact, its track in three formats, and
//! the hourly timeline. Every answer is bounded (pages, point limits, range limits); a wrong
//! parameter is a 400 naming it, an unknown id a 404.

use super::query::{self, ContactFilter};
use super::record::Kind;
use super::{export, History, QueryError};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ndefender_contract::time::Clock;
use ndefender_service::http::{json_ok, query_param, ApiError};
use serde_json::{json, Value};
use std::sync::Arc;

pub const CONTACTS_PATH: &str = "/api/v1/history/contacts";
/// The longest range one summary covers.
pub const MAX_SUMMARY_DAYS: u64 = 400;
const DAY_MS: u64 = 86_400_000;
const MAX_Q_CHARS: usize = 128;

pub struct HistoryApi {
    /// `None` when `[history] enabled = false`.
    pub history: Option<History>,
    pub clock: Arc<dyn Clock>,
}

type S = State<Arc<HistoryApi>>;

pub fn router(history: Option<History>, clock: Arc<dyn Clock>) -> Router {
    Router::new()
        .route(CONTACTS_PATH, get(contacts))
        .route("/api/v1/history/contacts/{id}", get(contact))
        .route("/api/v1/history/tracks/{id}", get(track))
        .route("/api/v1/history/summary", get(summary))
        .with_state(Arc::new(HistoryApi { history, clock }))
}

fn error(e: QueryError) -> Response {
    match e {
        QueryError::BadField(f, m) => ApiError::invalid_field(f).with_message(m).into_response(),
        QueryError::NotFound => ApiError::not_found().into_response(),
        QueryError::Timeout => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "history_timeout").into_response(),
        QueryError::Unavailable => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "history_unavailable").into_response()
        }
        QueryError::Db(e) => {
            tracing::error!(error = %e, "history query failed");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error").into_response()
        }
    }
}

fn bad(field: &'static str, m: impl Into<String>) -> QueryError {
    QueryError::BadField(field, m.into())
}

/// A time: epoch ms (or s, below 1e11), or RFC 3339 (`2026-12-06T12:00:00Z`).
fn time_param(q: Option<&str>, name: &'static str) -> Result<Option<u64>, QueryError> {
    let Some(s) = query_param(q, name).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Some(t) = ndefender_contract::time::normalize_time_value(&Value::String(s.clone())) {
        return Ok(Some(t));
    }
    humantime::parse_rfc3339_weak(&s)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| Some(d.as_millis() as u64))
        .ok_or_else(|| bad(name, "expected epoch milliseconds or an RFC 3339 time"))
}

fn range(q: Option<&str>) -> Result<(Option<u64>, Option<u64>), QueryError> {
    let since = time_param(q, "since")?;
    let until = time_param(q, "until")?;
    if let (Some(a), Some(b)) = (since, until) {
        if a > b {
            return Err(bad("until", "must not be before since"));
        }
    }
    Ok((since, until))
}

fn uint_param(q: Option<&str>, name: &'static str, default: u32, min: u32, max: u32) -> Result<u32, QueryError> {
    match query_param(q, name).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| bad(name, format!("expected an integer from {min} to {max}"))),
    }
}

fn handle(api: &HistoryApi) -> Result<History, QueryError> {
    api.history.clone().ok_or(QueryError::Unavailable)
}

async fn contacts(State(api): S, RawQuery(q): RawQuery) -> Response {
    let run = async {
        let h = handle(&api)?;
        let q = q.as_deref();
        let (since, until) = range(q)?;
        let kind = match query_param(q, "type").filter(|s| !s.is_empty()) {
            None => None,
            Some(t) => Some(Kind::parse(&t).ok_or_else(|| bad("type", "one of remote_id, rf, fpv"))?),
        };
        let text = query_param(q, "q").filter(|s| !s.is_empty());
        if text.as_ref().is_some_and(|t| t.chars().count() > MAX_Q_CHARS) {
            return Err(bad("q", format!("at most {MAX_Q_CHARS} characters")));
        }
        let f = ContactFilter {
            since,
            until,
            kind,
            q: text,
            limit: uint_param(q, "limit", query::DEFAULT_LIMIT, 1, query::MAX_LIMIT)?,
            offset: uint_param(q, "offset", 0, 0, query::MAX_OFFSET)?,
        };
        let t = api.clock.now_ms();
        let page = h.query(move |c| query::contacts(c, &f)).await?;
        Ok(json!({
            "timestamp_ms": t,
            "since": since,
            "until": until,
            "total": page.total,
            "limit": page.limit,
            "offset": page.offset,
            "next_offset": page.next_offset,
            "contacts": page.contacts,
        }))
    };
    match run.await {
        Ok(v) => json_ok(&v),
        Err(e) => error(e),
    }
}

async fn contact(State(api): S, Path(id): Path<String>) -> Response {
    let run = async {
        let h = handle(&api)?;
        h.query(move |c| query::detail(c, &id)).await
    };
    match run.await {
        Ok(d) => json_ok(&d),
        Err(e) => error(e),
    }
}

/// The id as a safe file name (`rid:ABC` → `rid_ABC`).
fn file_name(id: &str, ext: &str) -> String {
    let base: String = id
        .chars()
        .take(100)
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    format!("{base}.{ext}")
}

async fn track(State(api): S, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
    let run = async {
        let h = handle(&api)?;
        let q = q.as_deref();
        let format = query_param(q, "format").filter(|s| !s.is_empty());
        let format = match format.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("geojson") | Some("json") => "geojson",
            Some("kml") => "kml",
            Some("csv") => "csv",
            Some(_) => return Err(bad("format", "one of geojson, kml, csv")),
        };
        let (since, until) = range(q)?;
        let max = uint_param(q, "limit", query::MAX_TRACK_POINTS, 1, query::MAX_TRACK_POINTS)?;
        let idc = id.clone();
        let body = h
            .query(move |c| {
                let t = query::track(c, &idc, since, until, max)?;
                // Formatting runs here too: a day of fixes is work for a blocking thread.
                Ok(match format {
                    "kml" => export::kml(&t),
                    "csv" => export::csv(&t),
                    _ => export::geojson(&t),
                })
            })
            .await?;
        Ok((format, body))
    };
    match run.await {
        Ok((format, body)) => {
            let (ctype, disp) = match format {
                "kml" => ("application/vnd.google-earth.kml+xml", "attachment"),
                "csv" => ("text/csv; charset=utf-8", "attachment"),
                _ => ("application/geo+json", "inline"),
            };
            let cd = format!("{disp}; filename=\"{}\"", file_name(&id, format));
            (
                [
                    (header::CONTENT_TYPE, ctype.to_owned()),
                    (header::CONTENT_DISPOSITION, cd),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => error(e),
    }
}

async fn summary(State(api): S, RawQuery(q): RawQuery) -> Response {
    let run = async {
        let h = handle(&api)?;
        let (since, until) = range(q.as_deref())?;
        let until = until.unwrap_or_else(|| api.clock.now_ms());
        let since = since.unwrap_or(until.saturating_sub(DAY_MS));
        if since > until {
            return Err(bad("since", "must not be after until"));
        }
        if until - since > MAX_SUMMARY_DAYS * DAY_MS {
            return Err(bad("since", format!("the range is at most {MAX_SUMMARY_DAYS} days")));
        }
        h.query(move |c| query::summary(c, since, until)).await
    };
    match run.await {
        Ok(s) => json_ok(&s),
        Err(e) => error(e),
    }
}
