use ndefender_fleet::config::FleetConfig;
use ndefender_service::{config, lifecycle, Shutdown};

fn main() {
    let (cfg, _args) = config::load_or_exit::<FleetConfig>("ndefender-fleet");
    lifecycle::init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ndefender-fleet: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async move {
        let shutdown = Shutdown::new();
        shutdown.listen_signals(|| {});
        match ndefender_fleet::run(cfg, shutdown).await {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "fleet failed");
                1
            }
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}
