//! `ndefender-diag` on the demo stack: every part is in the bundle, and no secret.
//!
//! The three daemons run with an `api_key` each (and the aggregator with the keys it
//! sends upstream); the config directory the bundle reads holds the same settings as
//! the daemons' own environment. The bundle is unpacked with `tar` and searched for
//! each secret, in every file.

use ndefender_tests::{bin, eventually, get_json, Stack, StackOptions, R};
use std::path::Path;
use std::time::Duration;

const AGG_KEY: &str = "agg-key-5f1c0e6b9d";
const CTL_KEY: &str = "ctl-key-93a7d2c4e1";
const SCAN_KEY: &str = "scan-key-7b2e91f0aa";
const RID_KEY: &str = "rid-key-0c4d8e2f61";

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_from_the_demo_stack_has_every_part_and_no_secret() -> R {
    let mut s = Stack::start(StackOptions {
        aggregator_env: vec![
            kv("NDEFENDER_SERVER__API_KEY", AGG_KEY),
            kv("NDEFENDER_SYSTEM_CONTROLLER__API_KEY", CTL_KEY),
            kv("NDEFENDER_ANTSDR__API_KEY", SCAN_KEY),
            kv("NDEFENDER_REMOTEID__API_KEY", RID_KEY),
        ],
        controller_env: vec![kv("NDEFENDER_SERVER__API_KEY", CTL_KEY)],
        scanner_env: vec![kv("NDEFENDER_API__API_KEY", SCAN_KEY)],
        ..StackOptions::default()
    })
    .await?;
    // Data flowing and checkpoints written before the bundle is taken.
    let url = format!("{}?api_key={AGG_KEY}", s.aggregator.url("/api/v1/contacts"));
    eventually(Duration::from_secs(60), "contacts in the aggregator", || async {
        let (code, v) = get_json(&url).await?;
        Ok((code == 200 && v["contacts"].as_array().is_some_and(|a| !a.is_empty())).then_some(()))
    })
    .await?;
    let url = format!("{}?api_key={AGG_KEY}", s.aggregator.url("/api/v1/esp32"));
    eventually(Duration::from_secs(30), "the ESP32 link up", || async {
        let (code, v) = get_json(&url).await?;
        Ok((code == 200 && v["connected"] == true).then_some(()))
    })
    .await?;
    let state = s.state_dir.clone();
    eventually(Duration::from_secs(20), "tail checkpoints", || async {
        Ok(state.join("tail-antsdr.json").exists().then_some(()))
    })
    .await?;

    // The installation's view: one config file per daemon, as /etc/ndefender would hold.
    let conf = s.dir.path().join("etc");
    std::fs::create_dir_all(&conf)?;
    let rid = s.rid_path.display();
    let rf = s.rf_path.display();
    std::fs::write(
        conf.join("aggregator.toml"),
        format!(
            "[server]\nbind = \"127.0.0.1:{}\"\napi_key = \"{AGG_KEY}\"\n\
             [state]\ndir = \"{}\"\n\
             [remoteid]\njsonl_path = \"{rid}\"\napi_key = \"{RID_KEY}\"\n\
             [antsdr]\njsonl_path = \"{rf}\"\nbase_url = \"http://127.0.0.1:{}\"\napi_key = \"{SCAN_KEY}\"\n\
             [system_controller]\nbase_url = \"http://127.0.0.1:{}\"\napi_key = \"{CTL_KEY}\"\n",
            s.aggregator.port,
            state.display(),
            s.scanner.port,
            s.controller.port
        ),
    )?;
    std::fs::write(
        conf.join("system-controller.toml"),
        format!(
            "[server]\nbind = \"127.0.0.1:{}\"\napi_key = \"{CTL_KEY}\"\n",
            s.controller.port
        ),
    )?;
    std::fs::write(
        conf.join("antsdr-scan.toml"),
        format!(
            "[api]\nbind = \"127.0.0.1:{}\"\napi_key = \"{SCAN_KEY}\"\n[output]\njsonl_path = \"{rf}\"\n",
            s.scanner.port
        ),
    )?;

    let bin_dir = bin("ndefender-aggregator")?.parent().ok_or("no bin dir")?.to_path_buf();
    let out = s.dir.path().join("bundle.tar.gz");
    let o = ndefender_diag::Options {
        out: out.clone(),
        config_dir: conf.clone(),
        bin_dir: Some(bin_dir),
        lines: 50,
        timeout: Duration::from_secs(5),
        token: None,
    };
    let bundle = ndefender_diag::collect(&o).await;
    bundle.write(&out, "b")?;

    let x = s.dir.path().join("x");
    std::fs::create_dir_all(&x)?;
    let st = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&out)
        .arg("-C")
        .arg(&x)
        .status()?;
    assert!(st.success(), "tar: {st}");
    let root = x.join("b");
    let read = |p: &str| std::fs::read_to_string(root.join(p));

    // Every part.
    for d in ["aggregator", "system-controller", "antsdr-scan"] {
        let cc = read(&format!("daemons/{d}/check-config.toml"))?;
        assert!(cc.contains("api_key = \"***\""), "{d} config masked: {cc}");
        let h = read(&format!("daemons/{d}/health.json"))?;
        assert!(h.contains("ok") || h.contains("status"), "{d} health: {h}");
        let m = read(&format!("daemons/{d}/metrics.txt"))?;
        assert!(m.contains("# TYPE"), "{d} metrics: {m}");
    }
    for d in ["aggregator", "system-controller"] {
        let st: serde_json::Value = serde_json::from_str(&read(&format!("daemons/{d}/status.json"))?)?;
        assert!(st.is_object(), "{d} status: {st}");
    }
    let esp: serde_json::Value = serde_json::from_str(&read("daemons/aggregator/esp32.json")?)?;
    assert_eq!(esp["connected"], true, "ESP32 link: {esp}");
    assert!(
        read("daemons/aggregator/metrics.txt")?.contains("esp32"),
        "ESP32 link counters"
    );
    for feed in [&s.rid_path, &s.rf_path] {
        let name = format!(
            "feeds/{}.tail",
            feed.display().to_string().trim_start_matches('/').replace('/', "_")
        );
        let t = read(&name)?;
        assert!(
            !t.is_empty() && t.lines().count() <= 50,
            "{name}: {} lines",
            t.lines().count()
        );
    }
    for cp in ["tail-remoteid.json", "tail-antsdr.json"] {
        let v: serde_json::Value = serde_json::from_str(&read(&format!("checkpoints/{cp}"))?)?;
        assert!(v["offset"].is_u64(), "{cp}: {v}");
    }
    assert!(read("system/versions.txt")?.contains("ndefender-diag"));
    assert!(read("system/meminfo")?.contains("MemTotal"));
    assert!(read("system/disk.txt")?.contains("available_mb="));
    let failures = read("failures.txt")?;
    let manifest = read("MANIFEST.txt")?;
    println!("MANIFEST\n{manifest}\nfailures\n{failures}");
    // The daemons all answered: what failed is only what this machine lacks (no journal).
    for line in failures.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            line.starts_with("journal/") || line.starts_with("system/model"),
            "unexpected failure: {line}"
        );
    }

    // No secret anywhere in the bundle.
    let mut files = 0;
    visit(&root, &mut |p| {
        let bytes = std::fs::read(p)?;
        let text = String::from_utf8_lossy(&bytes);
        for k in [AGG_KEY, CTL_KEY, SCAN_KEY, RID_KEY] {
            assert!(!text.contains(k), "{} contains a secret", p.display());
        }
        files += 1;
        Ok(())
    })?;
    assert!(files >= 20, "{files} files in the bundle");

    s.stop_simulator().await;
    for p in [&mut s.scanner, &mut s.controller, &mut s.aggregator] {
        p.terminate(Duration::from_secs(10)).await?;
    }
    s.shutdown_esp32().await
}

fn visit(dir: &Path, f: &mut dyn FnMut(&Path) -> R) -> R {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            visit(&p, f)?;
        } else {
            f(&p)?;
        }
    }
    Ok(())
}
