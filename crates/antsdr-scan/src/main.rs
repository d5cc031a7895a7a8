use ndefender_antsdr_scan::cli::{self, NAME};
use ndefender_antsdr_scan::config::ScanConfig;
use ndefender_service::daemon::{self, Hooks};

fn main() {
    let hooks = Hooks {
        log_level: cli::log_level,
        offline: cli::offline,
    };
    daemon::main(NAME, hooks, |cfg: ScanConfig, args, shutdown| {
        ndefender_antsdr_scan::run(cfg, args.config, shutdown)
    })
}
