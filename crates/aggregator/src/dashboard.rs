//! The operator's dashboard (issue 14): one page, its stylesheet and script, embedded
//! in the binary (no CDN, nothing to build), served at `/` on the API's own origin so
//! it talks to `/api/v1/*` and `/api/v1/ws` like any other client. The page and its
//! assets are open (the login form has to load); every piece of data stays behind
//! the key. `dashboard.tiles` adds a map background: an MBTiles file served at
//! `/tiles/{z}/{x}/{y}` (behind the key; the page fetches tiles with its token), or
//! an https template the browser fetches itself.

use crate::config::{DashboardConfig, Tiles};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ndefender_service::http::{json_ok, ApiError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const INDEX: &str = include_str!("../dashboard/index.html");
const CSS: &str = include_str!("../dashboard/app.css");
const JS: &str = include_str!("../dashboard/app.js");

/// Paths served without a key: the page and its assets, nothing else.
pub const OPEN_PATHS: [&str; 4] = ["/", "/index.html", "/dashboard/app.css", "/dashboard/app.js"];

/// An MBTiles read never holds a request longer than this.
const TILE_TIMEOUT: Duration = Duration::from_secs(3);

struct Dash {
    tiles: Tiles,
}

pub fn router(cfg: &DashboardConfig) -> Router {
    // Validated at config load; an invalid value here means "no tiles".
    let dash = Arc::new(Dash {
        tiles: cfg.tiles().unwrap_or(Tiles::None),
    });
    Router::new()
        .route("/", get(|| async { asset(INDEX, "text/html; charset=utf-8") }))
        .route(
            "/index.html",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/dashboard/app.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/dashboard/app.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .route("/dashboard/config.json", get(config))
        .route("/tiles/{z}/{x}/{y}", get(tile))
        .with_state(dash)
}

fn asset(body: &'static str, ty: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(ty)),
            // The binary is the version: a new build must not meet a stale script.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' https: data: blob:; connect-src 'self' ws: wss: https:; \
                     style-src 'self'; script-src 'self'; frame-ancestors 'none'",
                ),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response()
}

/// What the page needs to draw its map background.
async fn config(State(d): State<Arc<Dash>>) -> Response {
    let tiles = match &d.tiles {
        Tiles::None => serde_json::Value::Null,
        Tiles::MbTiles(_) => "/tiles/{z}/{x}/{y}".into(),
        Tiles::Template(t) => t.clone().into(),
    };
    json_ok(&serde_json::json!({ "tiles": tiles }))
}

async fn tile(State(d): State<Arc<Dash>>, Path((z, x, y)): Path<(u8, u32, String)>) -> Response {
    let Tiles::MbTiles(path) = &d.tiles else {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found").into_response();
    };
    // `{y}` may carry the image extension a template added (`12.png`).
    let y = y.split('.').next().unwrap_or("");
    let (Ok(y), true) = (y.parse::<u32>(), z <= 24) else {
        return ApiError::invalid_field("y").into_response();
    };
    if u64::from(x) >= 1u64 << z || u64::from(y) >= 1u64 << z {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found").into_response();
    }
    let path = path.clone();
    let read = tokio::task::spawn_blocking(move || read_tile(&path, z, x, y));
    match tokio::time::timeout(TILE_TIMEOUT, read).await {
        Ok(Ok(Ok(Some(bytes)))) => {
            let ty = image_type(&bytes);
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(ty)),
                    (header::CACHE_CONTROL, HeaderValue::from_static("max-age=86400")),
                ],
                bytes,
            )
                .into_response()
        }
        Ok(Ok(Ok(None))) => ApiError::new(StatusCode::NOT_FOUND, "not_found").into_response(),
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = %e, "mbtiles read failed");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "tiles_unavailable").into_response()
        }
        _ => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "tiles_unavailable").into_response(),
    }
}

/// One tile from an MBTiles file (rows are TMS: y counted from the south).
pub fn read_tile(path: &PathBuf, z: u8, x: u32, y: u32) -> rusqlite::Result<Option<Vec<u8>>> {
    use rusqlite::{Connection, OpenFlags, OptionalExtension};
    let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    db.busy_timeout(TILE_TIMEOUT)?;
    let tms_y = (1u64 << z) - 1 - u64::from(y);
    db.query_row(
        "SELECT tile_data FROM tiles WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3",
        rusqlite::params![z, x, tms_y as i64],
        |r| r.get::<_, Vec<u8>>(0),
    )
    .optional()
}

fn image_type(b: &[u8]) -> &'static str {
    if b.starts_with(b"\x89PNG") {
        "image/png"
    } else if b.starts_with(b"\xff\xd8") {
        "image/jpeg"
    } else if b.len() > 12 && &b[8..12] == b"WEBP" {
        "image/webp"
    } else {
        "application/octet-stream"
    }
}
