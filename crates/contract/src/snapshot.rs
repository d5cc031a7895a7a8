//! The aggregator's StatusSnapshot (GET /status, SYSTEM_UPDATE data): 17 keys in
//! the order of aggregator §9.1, each section with its anchor keys.

use crate::contact::Contact;
use crate::devices::{
    AntsdrDeviceState, Esp32Capabilities, Esp32State, FpvSection, RemoteIdSection, ReplaySection, RfSection,
    VideoSection, VrxSection,
};
use crate::enums::{Fix, Status};
use crate::system::{AudioState, GpsState, NetworkState, ServiceStatus, SystemStats, UpsTelemetry};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    pub timestamp_ms: u64,
    pub overall_ok: bool,
    pub system: SystemStats,
    pub power: UpsTelemetry,
    pub rf: RfSection,
    pub remote_id: RemoteIdSection,
    pub gps: GpsState,
    pub esp32: Esp32State,
    pub antsdr: AntsdrDeviceState,
    pub vrx: VrxSection,
    pub fpv: FpvSection,
    pub video: VideoSection,
    pub services: Vec<ServiceStatus>,
    pub network: NetworkState,
    pub audio: AudioState,
    pub contacts: Vec<Contact>,
    pub replay: ReplaySection,
}

impl StatusSnapshot {
    /// The initial snapshot of aggregator §9.1; `t0` is the process start (epoch ms).
    pub fn initial(t0: u64) -> Self {
        let no_data = || Some("no_data".to_owned());
        Self {
            timestamp_ms: t0,
            overall_ok: false,
            system: SystemStats {
                status: Some(Status::Offline),
                last_error: no_data(),
                ..Default::default()
            },
            power: UpsTelemetry {
                status: Some(Status::Offline),
                last_error: no_data(),
                ..Default::default()
            },
            rf: RfSection::default(),
            remote_id: RemoteIdSection::default(),
            gps: GpsState {
                timestamp_ms: Some(t0),
                fix: Some(Fix::NoFix),
                last_error: no_data(),
                ..Default::default()
            },
            esp32: Esp32State {
                timestamp_ms: Some(t0),
                connected: Some(false),
                capabilities: Some(Esp32Capabilities::PANEL_FIRMWARE),
                last_error: Some("not_connected".into()),
                ..Default::default()
            },
            antsdr: AntsdrDeviceState {
                timestamp_ms: Some(t0),
                connected: Some(false),
                last_error: no_data(),
                ..Default::default()
            },
            vrx: VrxSection::default(),
            fpv: FpvSection::default(),
            video: VideoSection::default(),
            services: Vec::new(),
            network: NetworkState::default(),
            audio: AudioState {
                status: Some(Status::Offline),
                last_error: no_data(),
                ..Default::default()
            },
            contacts: Vec::new(),
            replay: ReplaySection::default(),
        }
    }
}
