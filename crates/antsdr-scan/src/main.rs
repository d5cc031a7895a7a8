use ndefender_antsdr_scan::config::ScanConfig;
use ndefender_service::{config, lifecycle, Shutdown};
use std::path::PathBuf;

const NAME: &str = "ndefender-antsdr-scan";

fn usage_exit(msg: &str) -> ! {
    eprintln!("{NAME}: {msg}");
    eprintln!(
        "usage: {NAME} [--config FILE] [--check-config] [--bench-dsp [--seconds N]]\n       \
         {NAME} [--config FILE] record --plan NAME --sweeps N --out BASE"
    );
    std::process::exit(2);
}

fn flag_value<'a>(extra: &'a [String], name: &str) -> Option<&'a str> {
    extra
        .iter()
        .position(|a| a == name)
        .and_then(|i| extra.get(i + 1))
        .map(String::as_str)
}

fn main() {
    let (cfg, args) = config::load_or_exit::<ScanConfig>(NAME);
    if std::env::var_os("RUST_LOG").is_none() {
        // Before any thread exists, so setting the variable is race-free.
        std::env::set_var("RUST_LOG", &cfg.log.level);
    }
    lifecycle::init_logging();
    let extra = &args.extra;
    if extra.iter().any(|a| a == "--bench-dsp") {
        let seconds = match flag_value(extra, "--seconds") {
            None => 5.0,
            Some(s) => s
                .parse::<f64>()
                .unwrap_or_else(|_| usage_exit("--seconds needs a number")),
        };
        match ndefender_antsdr_scan::bench::run(&cfg, seconds) {
            Ok(r) => {
                print!("{}", r.render(&cfg));
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("{NAME}: bench failed: {e}");
                std::process::exit(1);
            }
        }
    }
    if extra.first().map(String::as_str) == Some("record") {
        let plan = flag_value(extra, "--plan").unwrap_or("default");
        let sweeps = flag_value(extra, "--sweeps")
            .unwrap_or("1")
            .parse::<u64>()
            .unwrap_or_else(|_| usage_exit("--sweeps needs an integer"));
        let out = flag_value(extra, "--out").unwrap_or_else(|| usage_exit("record needs --out BASE"));
        match ndefender_antsdr_scan::record::record(&cfg, plan, sweeps, &PathBuf::from(out)) {
            Ok(p) => {
                println!("{}", p.display());
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("{NAME}: record failed: {e}");
                std::process::exit(1);
            }
        }
    }
    if let Some(a) = extra.first() {
        usage_exit(&format!("unknown argument {a:?}"));
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{NAME}: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    let config_path = args.config.clone();
    let code = rt.block_on(async move {
        let shutdown = Shutdown::new();
        shutdown.listen_signals(|| {});
        match ndefender_antsdr_scan::run(cfg, config_path, shutdown).await {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "antsdr-scan failed");
                1
            }
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}
