//! `ndefender-demo --fleet N` (issue 15): a mosquitto on loopback, N simulated kits
//! (aggregators with the MQTT uplink, all hearing one simulated sky, so every drone is
//! seen by every kit) and `ndefender-fleet` merging them.

use crate::mosquitto::Broker;
use crate::remoteid::{run_remoteid_sim, RemoteIdSimConfig};
use crate::stack::{find_bin, free_port, Daemon};
use std::io;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One simulated kit: `ndefender-aggregator` on `127.0.0.1:port` tailing `rid` (from its
/// beginning) with its MQTT uplink to `broker_url` as `kit_id`; state and an empty RF
/// feed under `dir`; no scanner, controller or ESP32 (nothing else to talk to).
pub fn kit_command(
    bin_dir: Option<&Path>,
    kit_id: &str,
    port: u16,
    dir: &Path,
    rid: &Path,
    broker_url: &str,
) -> io::Result<Command> {
    let rf = dir.join("antsdr_scan.jsonl");
    if !rf.exists() {
        std::fs::write(&rf, "")?;
    }
    let mut cmd = Command::new(find_bin(bin_dir, "ndefender-aggregator")?);
    cmd.envs([
        ("NDEFENDER_SERVER__BIND", format!("127.0.0.1:{port}")),
        ("NDEFENDER_STATE__DIR", dir.join("state").display().to_string()),
        ("NDEFENDER_REMOTEID__JSONL_PATH", rid.display().to_string()),
        ("NDEFENDER_ANTSDR__JSONL_PATH", rf.display().to_string()),
        ("NDEFENDER_ANTSDR__ENABLED", "false".into()),
        ("NDEFENDER_SYSTEM_CONTROLLER__ENABLED", "false".into()),
        ("NDEFENDER_ESP32__ENABLED", "false".into()),
        ("NDEFENDER_TAIL__START_POSITION", "beginning".into()),
        ("NDEFENDER_MQTT__ENABLED", "true".into()),
        ("NDEFENDER_MQTT__URL", broker_url.to_owned()),
        ("NDEFENDER_MQTT__KIT_ID", kit_id.to_owned()),
    ]);
    Ok(cmd)
}

pub struct FleetDemo {
    pub broker: Broker,
    pub fleet_port: u16,
    fleet: Daemon,
    kits: Vec<(String, u16, Daemon)>,
    sim_stop: watch::Sender<bool>,
    sim: JoinHandle<()>,
}

impl FleetDemo {
    /// Starts everything under `<dir>/fleet`; binaries are found next to this one.
    pub async fn start(
        dir: &Path,
        kits: usize,
        drones: usize,
        seed: u64,
        fleet_port: u16,
        mqtt_port: u16,
    ) -> io::Result<Self> {
        let d = dir.join("fleet");
        std::fs::create_dir_all(&d)?;
        let broker = Broker::start(&d, mqtt_port).await?;
        let rid = d.join("remoteid_engine.jsonl");
        std::fs::write(&rid, "")?;
        let mut started = Vec::new();
        for k in 0..kits {
            let kit_id = format!("kit-{}", k + 1);
            let port = free_port()?;
            let kd = d.join(&kit_id);
            std::fs::create_dir_all(&kd)?;
            let cmd = kit_command(None, &kit_id, port, &kd, &rid, &broker.url())?;
            let mut a = Daemon::spawn("ndefender-aggregator (kit)", cmd)?;
            a.wait_port(port).await?;
            started.push((kit_id, port, a));
        }
        let mut cmd = Command::new(find_bin(None, "ndefender-fleet")?);
        cmd.env("NDEFENDER_SERVER__BIND", format!("127.0.0.1:{fleet_port}"))
            .env("NDEFENDER_MQTT__URL", broker.url());
        let mut fleet = Daemon::spawn("ndefender-fleet", cmd)?;
        fleet.wait_port(fleet_port).await?;
        let (sim_stop, mut rx) = watch::channel(false);
        let cfg = RemoteIdSimConfig {
            path: rid,
            drones,
            seed: seed + 1,
            ..RemoteIdSimConfig::default()
        };
        let sim = tokio::spawn(async move {
            let _ = run_remoteid_sim(cfg, async move {
                let _ = rx.wait_for(|v| *v).await;
            })
            .await;
        });
        Ok(Self {
            broker,
            fleet_port,
            fleet,
            kits: started,
            sim_stop,
            sim,
        })
    }

    pub fn print(&self) {
        println!("  fleet ({} kits)", self.kits.len());
        println!(
            "    mosquitto       {}   (mosquitto_sub -p {} -v -t 'ndefender/#')",
            self.broker.url(),
            self.broker.port
        );
        println!(
            "    fleet REST      http://127.0.0.1:{}/api/v1/contacts  /api/v1/kits",
            self.fleet_port
        );
        println!("    fleet WS        ws://127.0.0.1:{}/api/v1/ws", self.fleet_port);
        for (id, port, _) in &self.kits {
            println!("    {id:<15} http://127.0.0.1:{port}/api/v1/status");
        }
    }

    /// Stops the simulator, the kits (each says `offline`), the fleet daemon, the broker.
    pub async fn stop(self) {
        let _ = self.sim_stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.sim).await;
        let (kits, fleet, broker) = (self.kits, self.fleet, self.broker);
        let _ = tokio::task::spawn_blocking(move || {
            for (_, _, k) in kits {
                let name = k.name;
                eprintln!("  {name}: {}", k.stop(Duration::from_secs(5)));
            }
            eprintln!("  ndefender-fleet: {}", fleet.stop(Duration::from_secs(5)));
            drop(broker);
        })
        .await;
    }
}
