//! DSP throughput and full default-cycle compute (antsdr-scan §13), the same measurement as
//! `ndefender-antsdr-scan --bench-dsp`, on the built-in defaults.
//!
//! Run: `cargo bench -p ndefender-antsdr-scan --bench dsp`

fn main() {
    let cfg = ndefender_antsdr_scan::config::ScanConfig::default();
    let seconds = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(5.0);
    match ndefender_antsdr_scan::bench::run(&cfg, seconds) {
        Ok(r) => print!("{}", r.render(&cfg)),
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    }
}
