//! The demo stack as `ndefender-demo` wires it, on free ports in a private
//! directory: scanner (synthetic scene → real DSP → JSONL), system controller
//! (this machine's procfs; no system bus, no gpsd unless given), aggregator
//! (tailing both JSONL files, ESP32 emulator on a pty, following the others),
//! and optionally the RemoteID simulator writing drones flying tracks.

use crate::proc::{free_port, Proc};
use crate::R;
use ndefender_devkit::esp32::sim::{Esp32Sim, SimConfig, SimHandle};
use ndefender_devkit::remoteid::{run_remoteid_sim, RemoteIdSimConfig};
use ndefender_devkit::stack::Wiring;
use std::path::PathBuf;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct StackOptions {
    /// RemoteID simulator drones (0: no simulator; tests append their own lines).
    pub drones: usize,
    pub esp32: bool,
    /// `DBUS_SYSTEM_BUS_ADDRESS` for the controller (default: a socket that does not exist).
    pub system_bus: Option<String>,
    /// gpsd address for the controller (default: a free port nobody listens on).
    pub gpsd: Option<String>,
    pub aggregator_env: Vec<(String, String)>,
    pub controller_env: Vec<(String, String)>,
    pub scanner_env: Vec<(String, String)>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            drones: 3,
            esp32: true,
            system_bus: None,
            gpsd: None,
            aggregator_env: Vec::new(),
            controller_env: Vec::new(),
            scanner_env: Vec::new(),
        }
    }
}

pub struct Stack {
    pub scanner: Proc,
    pub controller: Proc,
    pub aggregator: Proc,
    pub esp32: Option<SimHandle>,
    pub rid_path: PathBuf,
    pub rf_path: PathBuf,
    pub state_dir: PathBuf,
    sim_stop: watch::Sender<bool>,
    sim: Option<JoinHandle<()>>,
    // Last: the directory outlives the processes using it.
    pub dir: tempfile::TempDir,
}

fn kv(k: &str, v: impl ToString) -> (String, String) {
    (k.to_owned(), v.to_string())
}

impl Stack {
    pub async fn start(o: StackOptions) -> R<Stack> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let rid_path = d.join("remoteid_engine.jsonl");
        let rf_path = d.join("antsdr_scan.jsonl");

        // The ports and paths `ndefender-demo` would use, on free ports in `d`.
        let wiring = Wiring {
            dir: d.to_path_buf(),
            aggregator_port: free_port()?,
            controller_port: free_port()?,
            antsdr_port: free_port()?,
            rid_path: rid_path.clone(),
            rf_path: rf_path.clone(),
            esp32_link: d.join("ndefender-esp32"),
        };
        let state_dir = wiring.state_dir();

        // Later entries win: the options override the wiring.
        let mut env = wiring.scanner_env();
        env.extend(o.scanner_env);
        let scanner = Proc::start(
            "ndefender-antsdr-scan",
            d,
            wiring.antsdr_port,
            "/api/v1/health",
            &[],
            &env,
        )
        .await?;

        let bus = o
            .system_bus
            .unwrap_or_else(|| format!("unix:path={}", d.join("no-system-bus").display()));
        let gpsd = match o.gpsd {
            Some(g) => g,
            None => format!("127.0.0.1:{}", free_port()?),
        };
        let mut env = wiring.controller_env();
        env.extend([kv("DBUS_SYSTEM_BUS_ADDRESS", bus), kv("NDEFENDER_GPS__GPSD", gpsd)]);
        env.extend(o.controller_env);
        let controller = Proc::start(
            "ndefender-system-controller",
            d,
            wiring.controller_port,
            "/api/v1/health",
            &[],
            &env,
        )
        .await?;

        let esp32 = if o.esp32 {
            Some(
                Esp32Sim::spawn(SimConfig {
                    link: Some(wiring.esp32_link.clone()),
                    seed: 7,
                    ..SimConfig::default()
                })
                .await?,
            )
        } else {
            None
        };

        let mut env = wiring.aggregator_env();
        if !o.esp32 {
            env.push(kv("NDEFENDER_ESP32__ENABLED", "false"));
        }
        env.extend(o.aggregator_env);
        let aggregator = Proc::start(
            "ndefender-aggregator",
            d,
            wiring.aggregator_port,
            "/api/v1/health",
            &[],
            &env,
        )
        .await?;

        let (sim_stop, stop_rx) = watch::channel(false);
        let sim = if o.drones > 0 {
            let cfg = RemoteIdSimConfig {
                path: rid_path.clone(),
                drones: o.drones,
                seed: 7,
                ..RemoteIdSimConfig::default()
            };
            let mut stop = stop_rx;
            Some(tokio::spawn(async move {
                let r = run_remoteid_sim(cfg, async move {
                    let _ = stop.wait_for(|v| *v).await;
                })
                .await;
                if let Err(e) = r {
                    eprintln!("remoteid simulator: {e}");
                }
            }))
        } else {
            None
        };

        Ok(Stack {
            scanner,
            controller,
            aggregator,
            esp32,
            rid_path,
            rf_path,
            state_dir,
            sim_stop,
            sim,
            dir,
        })
    }

    /// Stops the RemoteID simulator (the file stays as written).
    pub async fn stop_simulator(&mut self) {
        let _ = self.sim_stop.send(true);
        if let Some(h) = self.sim.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), h).await;
        }
    }

    pub async fn shutdown_esp32(&mut self) -> R {
        if let Some(s) = self.esp32.take() {
            s.shutdown().await?;
        }
        Ok(())
    }
}
