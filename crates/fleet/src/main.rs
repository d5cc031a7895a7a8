use ndefender_contract::time::SystemClock;
use ndefender_fleet::config::FleetConfig;
use ndefender_service::daemon::{self, Hooks};
use std::sync::Arc;

fn main() {
    daemon::main("ndefender-fleet", Hooks::default(), |cfg: FleetConfig, _, shutdown| {
        ndefender_fleet::run(cfg, shutdown, Arc::new(SystemClock))
    })
}
