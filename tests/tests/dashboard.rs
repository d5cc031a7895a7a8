//! The operator's dashboard (issue 14) in a real browser: Debian's chromium, headless,
//! driven over WebDriver against the demo stack started as processes. Screenshots of
//! each layout and theme land in target/dashboard/.

use ndefender_tests::browser::{self, Browser};
use ndefender_tests::{eventually, get_json, Stack, StackOptions, R};
use serde_json::Value;
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

/// The browser, or a visible SKIPPED line (never under CI: scripts/deps.sh installs it).
fn browser_or_skip() -> R<bool> {
    match browser::available() {
        Ok(()) => Ok(true),
        Err(why) if std::env::var_os("CI").is_some() => Err(why.into()),
        Err(why) => {
            println!("SKIPPED: {why}");
            Ok(false)
        }
    }
}

/// Console lines at level SEVERE, minus the one this build expects: until role tokens
/// (issue 13) are merged, `GET /api/v1/auth/whoami` is a 404, which is how the page
/// learns it runs against an api_key-only aggregator.
fn console_errors(lines: &[(String, String)]) -> Vec<String> {
    lines
        .iter()
        .filter(|(level, msg)| level == "SEVERE" && !(msg.contains("/api/v1/auth/whoami") && msg.contains("404")))
        .map(|(l, m)| format!("{l}: {m}"))
        .collect()
}

fn ids_of(list: &Value, kind: &str) -> Vec<String> {
    list["contacts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|c| c["type"] == kind)
                .filter_map(|c| c["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A JS string literal.
/// Night, then day: switches the page to the theme, lets it settle, saves `file(theme)`.
async fn shoot_themes(b: &Browser, file: impl Fn(&str) -> std::path::PathBuf) -> R {
    for theme in ["night", "day"] {
        b.eval(&format!(
            "(document.body.dataset.theme === {t} || document.getElementById('theme').click(), true)",
            t = js(theme)
        ))
        .await?;
        tokio::time::sleep(Duration::from_millis(600)).await;
        b.screenshot(&file(theme)).await?;
    }
    Ok(())
}

fn js(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() -> R {
    if !browser_or_skip()? {
        return Ok(());
    }
    let mut s = Stack::start(StackOptions::default()).await?;
    let base = s.aggregator.base();
    let b = Browser::start(1024, 600).await?;
    let r = run(&mut s, &b, &base).await;
    let closed = b.close().await;
    r?;
    closed
}

async fn run(s: &mut Stack, b: &Browser, base: &str) -> R {
    b.set_viewport(1024, 600).await?;
    b.client.goto(&format!("{base}/")).await?;

    // Every simulated drone, by id, and at least one RF contact the scanner found.
    let url = s.aggregator.url("/api/v1/contacts");
    let list = eventually(MIN, "3 RemoteID drones and an RF contact in the aggregator", || async {
        let (code, v) = get_json(&url).await?;
        Ok((code == 200 && ids_of(&v, "REMOTE_ID").len() >= 3 && !ids_of(&v, "RF").is_empty()).then_some(v))
    })
    .await?;
    b.until(
        MIN,
        "the page is live",
        "document.getElementById('conn').textContent === 'LIVE'",
    )
    .await?;
    for id in ids_of(&list, "REMOTE_ID") {
        let sel = format!("#contacts li[data-id={}] .cid", js(&id));
        let shown = b
            .until(
                MIN,
                &format!("drone {id} in the contact list"),
                &format!("(document.querySelector({}) || {{}}).textContent", js(&sel)),
            )
            .await?;
        assert_eq!(shown, Value::String(id.clone()));
    }
    // The map draws them too (the canvas itself cannot be read by id: the positions
    // it drew are).
    b.until(MIN, "drones on the map", "ndf.st.trails.size >= 3").await?;
    let rf = b
        .until(
            MIN,
            "an RF contact in the RF panel",
            "document.getElementById('t-rf').click(), (document.querySelector('[data-rf]') || {}).dataset?.rf",
        )
        .await?;
    let rf = rf.as_str().ok_or("no RF id")?.to_owned();
    assert!(ids_of(&list, "RF").contains(&rf) || rf.starts_with("rf:"), "{rf}");

    // Screenshots: 1024x600 (the kiosk) and 390x844 (a phone), night and day.
    let shots = browser::shots_dir();
    b.eval("document.getElementById('t-contacts').click()").await?;
    for (w, h, name) in [(1024u32, 600u32, "kiosk"), (390, 844, "phone")] {
        b.set_viewport(w, h).await?;
        shoot_themes(b, |theme| shots.join(format!("dashboard-{name}-{theme}.png"))).await?;
    }
    b.set_viewport(1024, 600).await?;
    b.eval("document.getElementById('t-rf').click()").await?;
    tokio::time::sleep(Duration::from_millis(600)).await;
    b.screenshot(&shots.join("dashboard-kiosk-day-rf.png")).await?;
    b.eval("document.getElementById('t-kit').click()").await?;
    tokio::time::sleep(Duration::from_millis(600)).await;
    b.screenshot(&shots.join("dashboard-kiosk-day-kit.png")).await?;
    b.eval("document.getElementById('t-rf').click()").await?;

    // A tune from the page: the frequency shown for VRX 1 follows the emulator.
    let before = b
        .until(
            MIN,
            "VRX 1 shown",
            "(document.querySelector('#vrx-1 .freq') || {}).textContent",
        )
        .await?;
    let target = if before == "5800 MHz" { "5740" } else { "5800" };
    let input = b.client.find(fantoccini::Locator::Css("#vrx-1 input")).await?;
    input.send_keys(target).await?;
    b.client
        .find(fantoccini::Locator::Css("#vrx-1 button.tune"))
        .await?
        .click()
        .await?;
    b.until(
        Duration::from_secs(20),
        "VRX 1 shows the new frequency",
        &format!(
            "document.querySelector('#vrx-1 .freq').textContent === {}",
            js(&format!("{target} MHz"))
        ),
    )
    .await?;
    let result = b
        .until(
            Duration::from_secs(10),
            "the command's ack",
            "/acknowledged/.test(document.getElementById('cmd-result').textContent) && document.getElementById('cmd-result').textContent",
        )
        .await?;
    assert!(result.as_str().is_some_and(|t| t.contains("Tune VRX 1")), "{result}");
    let (_, snap) = get_json(&s.aggregator.url("/api/v1/status")).await?;
    let f = snap["vrx"]["vrx"][0]["freq_hz"].as_f64().unwrap_or(0.0);
    assert_eq!(f, target.parse::<f64>()? * 1e6, "{}", snap["vrx"]);

    // The aggregator restarts: the page reconnects and shows live data, no reload.
    b.eval("window.__same_page = 1").await?;
    let before = b.eval("ndf.st.events").await?.as_u64().unwrap_or(0);
    s.aggregator.terminate(Duration::from_secs(10)).await?;
    b.until(
        Duration::from_secs(15),
        "the page notices",
        "/RECONNECTING/.test(document.getElementById('conn').textContent)",
    )
    .await?;
    s.aggregator.restart().await?;
    b.until(
        MIN,
        "live again",
        "document.getElementById('conn').textContent === 'LIVE'",
    )
    .await?;
    b.until(
        MIN,
        "new events after the restart",
        &format!("ndf.st.events > {before} + 3 && ndf.st.contacts.size > 0"),
    )
    .await?;
    assert_eq!(
        b.eval("window.__same_page").await?,
        Value::from(1),
        "the page was reloaded"
    );
    let drone = ids_of(&list, "REMOTE_ID").into_iter().next().ok_or("no drone")?;
    b.eval("document.getElementById('t-contacts').click()").await?;
    b.until(
        MIN,
        "a drone listed again",
        &format!(
            "!!document.querySelector({})",
            js(&format!("#contacts li[data-id={}]", js(&drone)))
        ),
    )
    .await?;

    history(s, b).await?;

    let errors = console_errors(&b.console().await?);
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    Ok(())
}

/// The history view (issue 18): by now the stack has run for minutes and its drones are
/// stored. The view lists one, selecting it draws its stored track on the map, and the
/// GeoJSON export fetches the track (with the session's credentials) as a FeatureCollection.
async fn history(s: &Stack, b: &Browser) -> R {
    let url = s.aggregator.url("/api/v1/history/contacts?type=remote_id&limit=1000");
    let drone = eventually(MIN, "a stored drone with a track", || async {
        let (code, v) = get_json(&url).await?;
        Ok((code == 200)
            .then(|| v["contacts"].as_array().cloned())
            .flatten()
            .and_then(|a| {
                a.iter()
                    .find(|c| c["fixes"].as_u64().unwrap_or(0) >= 3)
                    .and_then(|c| c["id"].as_str().map(str::to_owned))
            }))
    })
    .await?;
    b.set_viewport(1024, 600).await?;
    b.eval("document.getElementById('t-history').click()").await?;
    let row = format!("#hist-list li[data-hid={}]", js(&drone));
    b.until(
        MIN,
        &format!("stored drone {drone} in the history list"),
        &format!("!!document.querySelector({})", js(&row)),
    )
    .await?;
    // The hourly timeline: one bar per started hour of the 24 h range, RemoteID counted.
    let hours = b.eval("document.querySelectorAll('#hist-timeline .tb').length").await?;
    assert!(hours.as_u64().is_some_and(|h| (24..=25).contains(&h)), "{hours} bars");
    let counted = b
        .eval("[...document.querySelectorAll('#hist-timeline .rid')].some(e => parseFloat(e.style.height) > 0)")
        .await?;
    assert_eq!(counted, Value::Bool(true), "no RemoteID hour in the timeline");
    b.screenshot(&browser::shots_dir().join("dashboard-kiosk-history-list.png"))
        .await?;
    b.client.find(fantoccini::Locator::Css(&row)).await?.click().await?;
    let drawn = b
        .until(
            MIN,
            "the track drawn on the map",
            &format!(
                "document.getElementById('map').dataset.histId === {} && +document.getElementById('map').dataset.histPoints",
                js(&drone)
            ),
        )
        .await?;
    let drawn = drawn.as_u64().ok_or("no point count")?;
    // The stored track, read afterwards (it only grows): the page drew it, not a stand-in.
    let mut track = reqwest::Url::parse(&s.aggregator.url("/api/v1/history/tracks"))?;
    track.path_segments_mut().map_err(|()| "url")?.push(&drone);
    let (code, geo) = get_json(track.as_str()).await?;
    assert_eq!(code, 200, "{geo}");
    let stored = geo["features"][0]["geometry"]["coordinates"]
        .as_array()
        .map_or(0, Vec::len) as u64;
    assert!(drawn >= 3 && drawn <= stored, "drew {drawn} of {stored} stored fixes");

    b.client
        .find(fantoccini::Locator::Css(".export[data-format=geojson]"))
        .await?
        .click()
        .await?;
    let saved = b
        .until(
            Duration::from_secs(20),
            "the GeoJSON export",
            "ndf.hist.exportInfo && ndf.hist.exportInfo.format === 'geojson' && ndf.hist.exportInfo",
        )
        .await?;
    assert_eq!(saved["status"], 200, "{saved}");
    assert_eq!(saved["kind"], "FeatureCollection", "{saved}");
    assert!(
        saved["type"].as_str().is_some_and(|t| t.contains("geo+json")),
        "{saved}"
    );
    let shown = b.eval("document.getElementById('hist-export').textContent").await?;
    assert!(shown.as_str().is_some_and(|t| t.starts_with("Saved ")), "{shown}");

    let shots = browser::shots_dir();
    shoot_themes(b, |theme| shots.join(format!("dashboard-kiosk-{theme}-history.png"))).await?;
    b.set_viewport(390, 844).await?;
    tokio::time::sleep(Duration::from_millis(600)).await;
    b.screenshot(&shots.join("dashboard-phone-day-history.png")).await?;
    b.set_viewport(1024, 600).await?;
    Ok(())
}

/// Role tokens: a viewer sees no command controls and the server refuses its commands
/// with 403 forbidden_role, which the page explains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_cannot_command() -> R {
    if !browser_or_skip()? {
        return Ok(());
    }
    // A viewer token as `server.tokens` holds it: only the SHA-256 of the secret.
    let viewer = "viewer-token-for-tests";
    let mut s = Stack::start(StackOptions {
        aggregator_env: vec![(
            "NDEFENDER_SERVER__TOKENS".into(),
            format!(
                "[{{name = \"tablet\", role = \"viewer\", sha256 = \"{}\"}}]",
                ndefender_service::auth::sha256_hex(viewer)
            ),
        )],
        ..StackOptions::default()
    })
    .await?;
    let base = s.aggregator.base();
    let b = Browser::start(1024, 600).await?;
    let r = async {
        b.client.goto(&format!("{base}/")).await?;
        b.until(MIN, "the login form", "!document.getElementById('login').hidden").await?;
        b.client
            .find(fantoccini::Locator::Css("#token"))
            .await?
            .send_keys(viewer)
            .await?;
        b.client
            .find(fantoccini::Locator::Css("#login-form button[type=submit]"))
            .await?
            .click()
            .await?;
        b.until(MIN, "the viewer role", "ndf.session.role === 'viewer'").await?;
        b.eval("document.getElementById('t-rf').click()").await?;
        b.until(MIN, "VRX 1 shown", "!!document.querySelector('#vrx-1')").await?;
        let visible = b
            .eval("[...document.querySelectorAll('.cmd')].some(e => e.offsetParent !== null)")
            .await?;
        assert_eq!(visible, Value::Bool(false), "command controls shown to a viewer");
        // And the server refuses a viewer's command even when sent by hand.
        let code = b
            .client
            .execute_async(
                "const done = arguments[0]; fetch('/api/v1/scan/stop', {method: 'POST', headers: {Authorization: 'Bearer ' + ndf.session.token, 'Content-Type': 'application/json'}, body: '{}'}).then(r => r.json().then(j => done([r.status, j])))",
                vec![],
            )
            .await?;
        assert_eq!(code[0], 403, "{code}");
        R::Ok(())
    }
    .await;
    let closed = b.close().await;
    s.stop_simulator().await;
    r?;
    closed
}

/// The benchmark of docs/BENCHMARKS.md (not a timed test: it asserts nothing about
/// speed): the page under `ndefender-loadgen soak` with 500 RemoteID contacts at 100
/// lines/s, for NDEFENDER_DASHBOARD_BENCH_S seconds (300). Prints long tasks (p50, p95,
/// max, count), events the page lost (seq holes) or had resynced, and the JS heap after
/// a forced GC at the start and at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: 5 minutes; see docs/BENCHMARKS.md"]
async fn dashboard_under_load() -> R {
    use std::io::BufRead as _;
    if !browser_or_skip()? {
        return Ok(());
    }
    let secs: u64 = std::env::var("NDEFENDER_DASHBOARD_BENCH_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    // Load for the measured time plus the page's warm-up.
    let mut load = std::process::Command::new(ndefender_tests::bin("ndefender-loadgen")?)
        .args(["soak", "--seconds", &(secs + 40).to_string()])
        .args(["--rid-rate", "100", "--rid-drones", "500"])
        .args(["--clients", "1", "--stalled", "0", "--cmd-interval-ms", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = load.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let r = async {
        let url = loop {
            let line = rx.recv_timeout(Duration::from_secs(60))?;
            if let Some(u) = line.strip_prefix("aggregator ") {
                break u.trim().to_owned();
            }
        };
        let b = Browser::start_with(1024, 600, &["--enable-precise-memory-info", "--js-flags=--expose-gc"]).await?;
        let res = async {
            b.set_viewport(1024, 600).await?;
            b.client.goto(&url).await?;
            b.until(MIN, "live", "document.getElementById('conn').textContent === 'LIVE'").await?;
            b.eval(
                "(window.__lt = [], new PerformanceObserver(l => { for (const e of l.getEntries()) window.__lt.push(e.duration); }).observe({type: 'longtask', buffered: false}), true)",
            )
            .await?;
            // Warm-up: the 500 contacts appear.
            b.until(MIN, "500 contacts", "ndf.st.contacts.size >= 500").await?;
            tokio::time::sleep(Duration::from_secs(20)).await;
            let heap0 = b.eval("(gc(), performance.memory.usedJSHeapSize)").await?;
            let ev0 = b.eval("ndf.st.events").await?;
            b.eval("(window.__lt = [], true)").await?;
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let heap1 = b.eval("(gc(), performance.memory.usedJSHeapSize)").await?;
            let v = b
                .eval("({lt: window.__lt, events: ndf.st.events, gaps: ndf.st.gaps, jumps: ndf.st.jumps, resyncs: ndf.st.resyncs, contacts: ndf.st.contacts.size, conn: document.getElementById('conn').textContent})")
                .await?;
            b.screenshot(&browser::shots_dir().join("dashboard-under-load.png")).await?;
            let mut lt: Vec<f64> = v["lt"].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
            lt.sort_by(f64::total_cmp);
            let pct = |p: f64| ndefender_devkit::stack::percentile(&lt, p);
            let events = v["events"].as_u64().unwrap_or(0) - ev0.as_u64().unwrap_or(0);
            let (h0, h1) = (heap0.as_f64().unwrap_or(0.0) / 1e6, heap1.as_f64().unwrap_or(0.0) / 1e6);
            println!("| measured | {secs} s after a 20 s warm-up |");
            println!("| events received by the page | {events} ({:.0}/s) |", events as f64 / secs as f64);
            println!("| contacts shown at the end | {} |", v["contacts"]);
            println!("| events lost (seq holes) | {} |", v["gaps"]);
            println!("| hub resyncs / snapshot re-fetches | {} / {} |", v["jumps"], v["resyncs"]);
            println!(
                "| long tasks (> 50 ms) | {} in {secs} s; p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms |",
                lt.len(),
                pct(50.0),
                pct(95.0),
                lt.last().copied().unwrap_or(f64::NAN)
            );
            println!("| JS heap after GC | {h0:.1} MB → {h1:.1} MB ({:+.1} MB) |", h1 - h0);
            println!("| connection at the end | {} |", v["conn"]);
            R::Ok(())
        }
        .await;
        let closed = b.close().await;
        res?;
        closed
    }
    .await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(load.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = load.wait();
    r
}
