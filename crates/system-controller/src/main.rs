use ndefender_service::{config, lifecycle, Shutdown};
use ndefender_system_controller::config::ControllerConfig;

fn main() {
    let (cfg, _args) = config::load_or_exit::<ControllerConfig>("ndefender-system-controller");
    lifecycle::init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ndefender-system-controller: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async move {
        let shutdown = Shutdown::new();
        shutdown.listen_signals(|| {});
        match ndefender_system_controller::run(cfg, shutdown).await {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "system controller failed");
                1
            }
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}
