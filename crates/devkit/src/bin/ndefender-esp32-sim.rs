//! `ndefender-esp32-sim --link <path>`: the ESP32 panel firmware on a pseudo-terminal
//! (esp32-protocol.md §9). Prints the device path on stdout, runs until SIGTERM or
//! SIGINT, then removes the link and exits 0. See `ndefender_devkit::esp32` for the
//! control socket protocol.

use clap::Parser;
use ndefender_devkit::esp32::knobs::KNOB_NAMES;
use ndefender_devkit::esp32::{Esp32Sim, Knobs, RfScene, SimConfig, Transmitter};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Parser)]
#[command(
    name = "ndefender-esp32-sim",
    version,
    about = "ESP32 panel emulator on a pseudo-terminal"
)]
struct Cli {
    /// Symlink to create at the device side (replaced if it is a symlink).
    #[arg(long)]
    link: PathBuf,
    /// Seed of every random draw (RSSI noise, jitter, fault probabilities).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Unix socket for the JSON-lines control API.
    #[arg(long)]
    control: Option<PathBuf>,
    /// Fault knob `name[=value]`, repeatable (e.g. `--fault drop_ack_prob=0.3 --fault boot_noise=off`).
    #[arg(long = "fault", value_name = "NAME[=VALUE]")]
    faults: Vec<String>,
    /// Nominal telemetry period in ms (the firmware's is 1000; jitter is added).
    #[arg(long, value_name = "MS")]
    telemetry_period_ms: Option<u64>,
    /// Transmitter `FREQ_HZ[:PEAK[:WIDTH_MHZ]]`, repeatable; replaces the default
    /// scene (one transmitter at 5800000000).
    #[arg(long = "tx", value_name = "FREQ_HZ[:PEAK[:WIDTH_MHZ]]")]
    transmitters: Vec<String>,
    /// Noise range `MIN:MAX` of the raw RSSI (default 90:140).
    #[arg(long, value_name = "MIN:MAX")]
    noise: Option<String>,
}

fn build_config(cli: Cli) -> Result<SimConfig, String> {
    let mut knobs = Knobs::default();
    if let Some(p) = cli.telemetry_period_ms {
        knobs.apply("telemetry_period_ms", Some(&p.to_string()))?;
    }
    let mut startup_faults = Vec::new();
    for f in &cli.faults {
        let shot = knobs
            .apply_spec(f)
            .map_err(|e| format!("--fault {f}: {e} (knobs: {})", KNOB_NAMES.join(", ")))?;
        startup_faults.extend(shot);
    }
    let mut scene = RfScene::default();
    if !cli.transmitters.is_empty() {
        scene.transmitters = cli
            .transmitters
            .iter()
            .map(|t| Transmitter::parse(t))
            .collect::<Result<_, _>>()?;
    }
    if let Some(n) = &cli.noise {
        let (lo, hi) = n
            .split_once(':')
            .and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?)))
            .filter(|(a, b)| a <= b)
            .ok_or_else(|| format!("--noise {n}: expected MIN:MAX with MIN <= MAX"))?;
        scene.noise_min = lo;
        scene.noise_max = hi;
    }
    Ok(SimConfig {
        link: Some(cli.link),
        seed: cli.seed,
        knobs,
        scene,
        control: cli.control,
        startup_faults,
    })
}

async fn run(cfg: SimConfig) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let sim = Esp32Sim::spawn(cfg).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", sim.device_path().unwrap_or_default().display())?;
        out.flush()?;
    }
    tracing::info!(link = %sim.path().display(), "esp32-sim running");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("esp32-sim: shutting down");
    sim.shutdown().await
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cfg = match build_config(Cli::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ndefender-esp32-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ndefender-esp32-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ndefender-esp32-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
