//! Outputs to other tools (issue 15): the MQTT uplink with Home Assistant discovery
//! ([`mqtt`], [`ha`]) and Cursor-on-Target for TAK ([`tak`], [`cot`]). Both are hub
//! taps: they see every envelope in publish order and can never slow the publisher.

pub mod config;
pub mod cot;
pub mod ha;
pub mod mqtt;
pub mod tak;

use crate::config::AggregatorConfig;
use crate::core::Core;
use ndefender_hub::Hub;
use ndefender_service::Shutdown;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// The running outputs; [`Uplinks::stop`] waits (bounded) for their last words
/// (`offline`, disconnect) after shutdown fired.
#[derive(Default)]
pub struct Uplinks {
    tasks: Vec<JoinHandle<()>>,
}

/// What every output starts from.
pub struct Inputs<'a> {
    pub cfg: &'a Arc<AggregatorConfig>,
    pub core: &'a Core,
    pub hub: &'a Hub,
    pub shutdown: &'a Shutdown,
}

/// The tasks of one started output.
pub type Tasks = std::io::Result<Vec<JoinHandle<()>>>;

/// Starts the enabled outputs. Call right after the hub exists, before the feeds start,
/// so the taps see every event.
pub fn start(cfg: &Arc<AggregatorConfig>, core: &Core, hub: &Hub, shutdown: &Shutdown) -> std::io::Result<Uplinks> {
    let inputs = Inputs {
        cfg,
        core,
        hub,
        shutdown,
    };
    let mut tasks = Vec::new();
    if cfg.mqtt.enabled {
        tasks.extend(mqtt::start(&inputs)?);
    }
    if cfg.tak.enabled {
        tasks.extend(tak::start(&inputs)?);
    }
    Ok(Uplinks { tasks })
}

impl Uplinks {
    pub async fn stop(self) {
        for t in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(1500), t).await;
        }
    }
}
