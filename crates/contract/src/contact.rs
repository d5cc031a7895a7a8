//! Contacts (Contact.json) and the contact lifecycle event payloads.

use crate::enums::Severity;
use ndefender_contract_macros::finite_floats;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// The RemoteID members shared by the stored contact and the CONTACT_NEW/UPDATE data.
#[finite_floats]
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteIdFields {
    pub model: Option<String>,
    pub operator_id: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub altitude_m: Option<f64>,
    pub speed_m_s: Option<f64>,
    // Contract v1.1: what Open Drone ID frames carry beyond the reference engine's fields.
    /// True track over ground, 0–360 degrees.
    pub heading_deg: Option<f64>,
    pub vspeed_m_s: Option<f64>,
    pub height_agl_m: Option<f64>,
    /// ASTM F3411 UA type in snake case, e.g. `helicopter_or_multirotor`.
    pub ua_type: Option<String>,
    pub operator_lat: Option<f64>,
    pub operator_lon: Option<f64>,
    pub operator_alt_m: Option<f64>,
    pub operator_location_type: Option<OperatorLocationType>,
    pub transport: Option<RemoteIdTransport>,
    /// Lowercase colon form, `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    pub rssi_dbm: Option<f64>,
    /// The kits that saw this contact (fleet view); absent on a single kit.
    pub seen_by: Option<Vec<SeenBy>>,
}

/// Where a System message's operator position comes from (contract v1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorLocationType {
    Takeoff,
    LiveGnss,
    Fixed,
}

/// The radio transport a RemoteID frame arrived on (contract v1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteIdTransport {
    WifiBeacon,
    WifiNan,
    BleLegacy,
    BleLongRange,
}

/// One kit that saw a contact (contract v1.1 `seen_by` item).
#[finite_floats]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeenBy {
    pub kit_id: String,
    pub last_seen_ts: u64,
    pub rssi_dbm: Option<f64>,
    pub distance_m: Option<f64>,
}

/// Constant `"REMOTE_ID"` tag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoteIdTag {
    #[default]
    #[serde(rename = "REMOTE_ID")]
    RemoteId,
}

/// CONTACT_NEW / CONTACT_UPDATE data: the merged record without `source`/`severity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteIdContactEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: RemoteIdTag,
    pub last_seen_ts: u64,
    #[serde(flatten)]
    pub fields: RemoteIdFields,
}

impl RemoteIdContactEvent {
    pub fn new(id: impl Into<String>, last_seen_ts: u64, fields: RemoteIdFields) -> Self {
        Self {
            id: id.into(),
            kind: RemoteIdTag::RemoteId,
            last_seen_ts,
            fields,
        }
    }
}

/// CONTACT_LOST data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteIdContactLost {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: RemoteIdTag,
    pub last_seen_ts: u64,
}

impl RemoteIdContactLost {
    pub fn new(id: impl Into<String>, last_seen_ts: u64) -> Self {
        Self {
            id: id.into(),
            kind: RemoteIdTag::RemoteId,
            last_seen_ts,
        }
    }
}

/// Scanner-reported emitter features (all 11 always present).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfFeatures {
    pub prominence_db: f64,
    pub cluster_size: u64,
    pub pattern_hint: String,
    pub hop_hint: String,
    pub bandwidth_est_hz: f64,
    pub burstiness: f64,
    pub hop_rate_hz: f64,
    pub control_score: f64,
    pub class_path: Vec<String>,
    pub classification_confidence: f64,
    pub control_correlation: bool,
}

impl Default for RfFeatures {
    fn default() -> Self {
        Self {
            prominence_db: 0.0,
            cluster_size: 0,
            pattern_hint: "unknown".into(),
            hop_hint: "none".into(),
            bandwidth_est_hz: 0.0,
            burstiness: 0.0,
            hop_rate_hz: 0.0,
            control_score: 0.0,
            class_path: Vec::new(),
            classification_confidence: 0.0,
            control_correlation: false,
        }
    }
}

/// RF_CONTACT_NEW / _UPDATE / _LOST data (the scanner's shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfContactData {
    pub id: String,
    pub freq_hz: f64,
    pub bucket_hz: f64,
    pub band: String,
    pub snr_db: f64,
    pub peak_db: f64,
    pub noise_floor_db: f64,
    pub bandwidth_class: String,
    pub confidence: f64,
    pub features: RfFeatures,
}

impl RfContactData {
    /// Clamps every member into its schema range and replaces non-finite floats,
    /// so the data is schema-valid whatever the producer computed.
    pub fn sanitize(&mut self) {
        fn fin(v: &mut f64) {
            if !v.is_finite() {
                *v = 0.0;
            }
        }
        fn unit(v: &mut f64) {
            fin(v);
            *v = v.clamp(0.0, 1.0);
        }
        fn nonneg(v: &mut f64) {
            fin(v);
            if *v < 0.0 {
                *v = 0.0;
            }
        }
        fin(&mut self.freq_hz);
        fin(&mut self.bucket_hz);
        fin(&mut self.snr_db);
        fin(&mut self.peak_db);
        fin(&mut self.noise_floor_db);
        unit(&mut self.confidence);
        let f = &mut self.features;
        fin(&mut f.prominence_db);
        nonneg(&mut f.bandwidth_est_hz);
        unit(&mut f.burstiness);
        nonneg(&mut f.hop_rate_hz);
        unit(&mut f.control_score);
        unit(&mut f.classification_confidence);
    }
}

/// Constant tags for the three contact kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContactKind {
    #[serde(rename = "REMOTE_ID")]
    RemoteId,
    #[serde(rename = "RF")]
    Rf,
    #[serde(rename = "FPV")]
    Fpv,
}

/// A contact in the unified list (Contact.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Contact {
    RemoteId(RemoteIdContact),
    Rf(RfContact),
    Fpv(FpvContact),
}

impl Contact {
    pub fn id(&self) -> &str {
        match self {
            Contact::RemoteId(c) => &c.id,
            Contact::Rf(c) => &c.data.id,
            Contact::Fpv(c) => &c.id,
        }
    }
    pub fn severity(&self) -> Severity {
        match self {
            Contact::RemoteId(c) => c.severity,
            Contact::Rf(c) => c.severity,
            Contact::Fpv(c) => c.severity,
        }
    }
    pub fn last_seen_ts(&self) -> u64 {
        match self {
            Contact::RemoteId(c) => c.last_seen_ts,
            Contact::Rf(c) => c.last_seen_ts,
            Contact::Fpv(c) => c.last_seen_ts,
        }
    }
    pub fn kind(&self) -> ContactKind {
        match self {
            Contact::RemoteId(_) => ContactKind::RemoteId,
            Contact::Rf(_) => ContactKind::Rf,
            Contact::Fpv(_) => ContactKind::Fpv,
        }
    }
}

/// Constant `"remoteid"` source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoteIdSourceTag {
    #[default]
    #[serde(rename = "remoteid")]
    Remoteid,
}
/// Constant `"RF"` tag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RfTag {
    #[default]
    #[serde(rename = "RF")]
    Rf,
}
/// Constant `"antsdr"` source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AntsdrSourceTag {
    #[default]
    #[serde(rename = "antsdr")]
    Antsdr,
}
/// Constant `"FPV"` tag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FpvTag {
    #[default]
    #[serde(rename = "FPV")]
    Fpv,
}
/// Constant `"esp32"` source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Esp32SourceTag {
    #[default]
    #[serde(rename = "esp32")]
    Esp32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteIdContact {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: RemoteIdTag,
    pub source: RemoteIdSourceTag,
    pub last_seen_ts: u64,
    pub severity: Severity,
    #[serde(flatten)]
    pub fields: RemoteIdFields,
}

impl RemoteIdContact {
    pub fn event_data(&self) -> RemoteIdContactEvent {
        RemoteIdContactEvent::new(&self.id, self.last_seen_ts, self.fields.clone())
    }
    pub fn lost_data(&self) -> RemoteIdContactLost {
        RemoteIdContactLost::new(&self.id, self.last_seen_ts)
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfContact {
    #[serde(rename = "type")]
    pub kind: RfTag,
    pub source: AntsdrSourceTag,
    pub last_seen_ts: u64,
    pub severity: Severity,
    #[serde(flatten)]
    pub data: RfContactData,
    /// The kits that saw this contact (fleet view, contract v1.1).
    pub seen_by: Option<Vec<SeenBy>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FpvContact {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: FpvTag,
    pub source: Esp32SourceTag,
    pub last_seen_ts: u64,
    pub severity: Severity,
    pub vrx_id: i64,
    pub freq_hz: f64,
    pub rssi_raw: i64,
    pub selected: i64,
    pub last_seen_uptime_ms: Option<u64>,
    /// The kits that saw this contact (fleet view, contract v1.1).
    pub seen_by: Option<Vec<SeenBy>>,
}
