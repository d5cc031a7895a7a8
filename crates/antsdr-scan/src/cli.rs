//! The scanner's offline commands (`--bench-dsp`, `record`), run instead of the daemon.

use crate::config::ScanConfig;
use ndefender_service::config::DaemonArgs;
use std::path::PathBuf;

pub const NAME: &str = "ndefender-antsdr-scan";

fn usage(msg: &str) -> i32 {
    eprintln!("{NAME}: {msg}");
    eprintln!(
        "usage: {NAME} [--config FILE] [--check-config] [--bench-dsp [--seconds N]]\n       \
         {NAME} [--config FILE] record --plan NAME --sweeps N --out BASE"
    );
    2
}

fn flag_value<'a>(extra: &'a [String], name: &str) -> Option<&'a str> {
    extra
        .iter()
        .position(|a| a == name)
        .and_then(|i| extra.get(i + 1))
        .map(String::as_str)
}

/// `log.level` unless `RUST_LOG` says otherwise.
pub fn log_level(cfg: &ScanConfig) -> Option<String> {
    Some(cfg.log.level.clone())
}

/// `Some(exit code)` when the arguments name an offline command (or are wrong).
pub fn offline(cfg: &ScanConfig, args: &DaemonArgs) -> Option<i32> {
    let extra = &args.extra;
    if extra.iter().any(|a| a == "--bench-dsp") {
        let seconds = match flag_value(extra, "--seconds").map(str::parse::<f64>) {
            None => 5.0,
            Some(Ok(s)) => s,
            Some(Err(_)) => return Some(usage("--seconds needs a number")),
        };
        return Some(match crate::bench::run(cfg, seconds) {
            Ok(r) => {
                print!("{}", r.render(cfg));
                0
            }
            Err(e) => {
                eprintln!("{NAME}: bench failed: {e}");
                1
            }
        });
    }
    if extra.first().map(String::as_str) == Some("record") {
        let plan = flag_value(extra, "--plan").unwrap_or("default");
        let Ok(sweeps) = flag_value(extra, "--sweeps").unwrap_or("1").parse::<u64>() else {
            return Some(usage("--sweeps needs an integer"));
        };
        let Some(out) = flag_value(extra, "--out") else {
            return Some(usage("record needs --out BASE"));
        };
        return Some(match crate::record::record(cfg, plan, sweeps, &PathBuf::from(out)) {
            Ok(p) => {
                println!("{}", p.display());
                0
            }
            Err(e) => {
                eprintln!("{NAME}: record failed: {e}");
                1
            }
        });
    }
    extra.first().map(|a| usage(&format!("unknown argument {a:?}")))
}
