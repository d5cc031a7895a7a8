//! The dashboard's routes (issue 14) on the real binary: the page and its assets open
//! even with a key (the login form must load), data and tiles behind it, tiles read
//! from an MBTiles file (TMS rows), `server.dashboard = false` serves nothing.

mod support;

use support::{Daemon, R};

async fn get(url: &str, key: Option<&str>) -> R<(u16, String, Vec<u8>)> {
    let mut r = reqwest::Client::new()
        .get(url)
        .timeout(std::time::Duration::from_secs(10));
    if let Some(k) = key {
        r = r.header("X-API-Key", k);
    }
    let resp = r.send().await?;
    let status = resp.status().as_u16();
    let ty = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Ok((status, ty, resp.bytes().await?.to_vec()))
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\nfake tile z3 x2 y1";

fn mbtiles(path: &std::path::Path) -> R {
    let db = rusqlite::Connection::open(path)?;
    db.execute_batch(
        "CREATE TABLE metadata (name TEXT, value TEXT);
         CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
         INSERT INTO metadata VALUES ('format', 'png');",
    )?;
    // XYZ (z 3, x 2, y 1) is TMS row 2^3 - 1 - 1 = 6.
    db.execute("INSERT INTO tiles VALUES (3, 2, 6, ?1)", rusqlite::params![PNG])?;
    Ok(())
}

#[tokio::test]
async fn page_open_data_and_tiles_behind_the_key() -> R {
    let dir = tempfile::tempdir()?;
    let tiles = dir.path().join("area.mbtiles");
    mbtiles(&tiles)?;
    let tiles_s = tiles.display().to_string();
    let d = Daemon::start(
        dir.path(),
        &[
            ("NDEFENDER_SERVER__API_KEY", "s3cret"),
            ("NDEFENDER_DASHBOARD__TILES", &tiles_s),
        ],
    )
    .await?;
    let base = d.base();

    let (s, ty, body) = get(&format!("{base}/"), None).await?;
    assert_eq!((s, ty.as_str()), (200, "text/html; charset=utf-8"));
    let html = String::from_utf8(body)?;
    assert!(
        html.contains("/dashboard/app.js") && !html.contains("http"),
        "no external URL in the page"
    );
    for (path, ty) in [
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/app.css", "text/css"),
    ] {
        let (s, t, b) = get(&format!("{base}{path}"), None).await?;
        assert_eq!(s, 200, "{path}");
        assert!(t.starts_with(ty), "{path}: {t}");
        assert!(b.len() > 1000, "{path}");
    }

    // Data stays behind the key.
    assert_eq!(get(&format!("{base}/api/v1/status"), None).await?.0, 401);
    assert_eq!(get(&format!("{base}/dashboard/config.json"), None).await?.0, 401);
    assert_eq!(get(&format!("{base}/tiles/3/2/1"), None).await?.0, 401);
    let (s, _, b) = get(&format!("{base}/dashboard/config.json"), Some("s3cret")).await?;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_slice(&b)?;
    assert_eq!(v["tiles"], "/tiles/{z}/{x}/{y}");

    let (s, ty, b) = get(&format!("{base}/tiles/3/2/1"), Some("s3cret")).await?;
    assert_eq!((s, ty.as_str(), b.as_slice()), (200, "image/png", PNG));
    // With the extension a template may add.
    assert_eq!(get(&format!("{base}/tiles/3/2/1.png"), Some("s3cret")).await?.0, 200);
    // A tile the pack lacks, and one outside the zoom level.
    assert_eq!(get(&format!("{base}/tiles/3/2/2"), Some("s3cret")).await?.0, 404);
    assert_eq!(get(&format!("{base}/tiles/3/8/1"), Some("s3cret")).await?.0, 404);
    assert_eq!(get(&format!("{base}/tiles/3/2/x"), Some("s3cret")).await?.0, 400);
    Ok(())
}

#[tokio::test]
async fn no_tiles_and_no_dashboard() -> R {
    let dir = tempfile::tempdir()?;
    let d = Daemon::start(dir.path(), &[]).await?;
    let (s, _, b) = get(&format!("{}/dashboard/config.json", d.base()), None).await?;
    assert_eq!(s, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&b)?["tiles"].is_null());
    assert_eq!(get(&format!("{}/tiles/1/0/0", d.base()), None).await?.0, 404);
    drop(d);

    let dir = tempfile::tempdir()?;
    let d = Daemon::start(dir.path(), &[("NDEFENDER_SERVER__DASHBOARD", "false")]).await?;
    assert_eq!(get(&format!("{}/", d.base()), None).await?.0, 404);
    assert_eq!(get(&format!("{}/dashboard/app.js", d.base()), None).await?.0, 404);
    Ok(())
}

#[test]
fn a_bad_tiles_value_stops_startup_naming_the_key() -> R {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ndefender-aggregator"))
        .arg("--check-config")
        .env("NDEFENDER_DASHBOARD__TILES", "\"relative/area.mbtiles\"")
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dashboard.tiles"));
    Ok(())
}
