use ndefender_service::daemon::{self, Hooks};
use ndefender_system_controller::config::ControllerConfig;

fn main() {
    daemon::main(
        "ndefender-system-controller",
        Hooks::default(),
        |cfg: ControllerConfig, _, shutdown| ndefender_system_controller::run(cfg, shutdown),
    )
}
