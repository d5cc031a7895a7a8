use ndefender_contract::time::SystemClock;
use ndefender_remoteid::cli::{self, NAME};
use ndefender_remoteid::config::EngineConfig;
use ndefender_service::daemon::{self, Hooks};
use std::sync::Arc;

fn main() {
    let hooks = Hooks {
        log_level: cli::log_level,
        offline: cli::offline,
    };
    daemon::main(NAME, hooks, |cfg: EngineConfig, _, shutdown| {
        ndefender_remoteid::daemon::run(cfg, shutdown, Arc::new(SystemClock))
    })
}
