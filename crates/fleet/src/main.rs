use ndefender_fleet::config::FleetConfig;
use ndefender_service::daemon::{self, Hooks};

fn main() {
    daemon::main("ndefender-fleet", Hooks::default(), |cfg: FleetConfig, _, shutdown| {
        ndefender_fleet::run(cfg, shutdown)
    })
}
