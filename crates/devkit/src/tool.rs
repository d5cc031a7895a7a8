//! The start of the devkit's async binaries (`ndefender-demo`, `ndefender-loadgen`).

use std::fmt::Display;
use std::future::Future;

/// Runs a tool's async main on a runtime with `workers` threads. A failure (of the runtime
/// or of `main`) is printed as `<name>: <error>` and the process exits with 1.
pub fn block_on<F, E>(name: &str, workers: usize, main: F)
where
    F: Future<Output = Result<(), E>>,
    E: Display,
{
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(main) {
        eprintln!("{name}: {e}");
        std::process::exit(1);
    }
}
