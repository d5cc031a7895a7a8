use ndefender_aggregator::config::AggregatorConfig;
use ndefender_service::daemon::{self, Hooks};

fn main() {
    daemon::main(
        "ndefender-aggregator",
        Hooks::default(),
        |cfg: AggregatorConfig, _, shutdown| ndefender_aggregator::run(cfg, shutdown),
    )
}
