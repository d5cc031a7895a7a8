//! Regression tests for bugs the fuzz targets in `fuzz/` found (docs/RELIABILITY.md, "Fuzzing").
//! The SigMF ones are unit tests in `src/source/sigmf.rs`.

use ndefender_antsdr_scan::config::ScanConfig;
use ndefender_service::config::load_str;

/// fuzz target `config_toml`, artifact `\xff` + key + bits of 5e-324: `output.stats_interval_s`
/// of 5e-324 s passed `> 0` and became a zero-length stats period. Durations are now 0 or
/// 1 ms to 1e9 s for every `_s` key.
#[test]
fn config_durations_that_are_not_timers_are_refused() -> Result<(), Box<dyn std::error::Error>> {
    for (var, val) in [
        ("NDEFENDER_OUTPUT__STATS_INTERVAL_S", "5e-324"),
        ("NDEFENDER_TRACKER__TTL_S", "-1.0"),
        ("NDEFENDER_TRACKER__UPDATE_INTERVAL_S", "1e300"),
    ] {
        let key = var.trim_start_matches("NDEFENDER_").replace("__", ".").to_lowercase();
        let r = load_str::<ScanConfig>("", "test", [(var.to_owned(), val.to_owned())]);
        assert!(r.is_err_and(|e| e.0.contains(&format!("\"{key}\""))), "{var}={val}");
    }
    let off = load_str::<ScanConfig>("", "test", [("NDEFENDER_OUTPUT__STATS_INTERVAL_S".into(), "0".into())])?;
    assert_eq!(off.output.stats_interval_s, 0.0, "0 still disables the heartbeat");
    Ok(())
}

/// fuzz target `config_toml`, artifact `ff 06 61 02` (`NDEFENDER_SCAN__STEP_HZ=2`): every
/// default plan was laid out with 2 Hz steps — 160 million LOs, 4.5 GB resident during
/// `--check-config` — before anything refused it. Plans are now limited to
/// `MAX_PLAN_STEPS` steps, checked before the LOs are built.
#[test]
fn a_tiny_step_is_refused_before_the_plan_is_built() -> Result<(), Box<dyn std::error::Error>> {
    use ndefender_antsdr_scan::plan::MAX_PLAN_STEPS;
    for step in ["2", "1", "100000"] {
        let r = load_str::<ScanConfig>("", "test", [("NDEFENDER_SCAN__STEP_HZ".to_owned(), step.to_owned())]);
        let e = r.err().map(|e| e.0).unwrap_or_default();
        assert!(e.contains("scan.step_hz") || e.contains("steps of"), "step {step}: {e}");
        assert!(e.contains(&format!("at most {MAX_PLAN_STEPS}")), "step {step}: {e}");
    }
    // The largest shipped plan still loads with 1 MHz steps.
    load_str::<ScanConfig>(
        "",
        "test",
        [("NDEFENDER_SCAN__STEP_HZ".to_owned(), "1000000".to_owned())],
    )?;
    Ok(())
}
