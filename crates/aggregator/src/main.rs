use ndefender_aggregator::config::AggregatorConfig;
use ndefender_service::{config, lifecycle, Shutdown};

fn main() {
    let (cfg, _args) = config::load_or_exit::<AggregatorConfig>("ndefender-aggregator");
    lifecycle::init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ndefender-aggregator: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async move {
        let shutdown = Shutdown::new();
        shutdown.listen_signals(|| {});
        match ndefender_aggregator::run(cfg, shutdown).await {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "aggregator failed");
                1
            }
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}
