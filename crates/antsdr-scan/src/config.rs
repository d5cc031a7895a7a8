//! `config/antsdr-scan.toml` (antsdr-scan §12, wire §10). The built-in defaults equal the
//! repository file; a test keeps them in step. Validation loads the plans, the profile table
//! and the scene too, so `--check-config` catches a bad plan file before the daemon starts.

use ndefender_contract::enums::GainMode;
use ndefender_contract::TimestampField;
use ndefender_service::config::Validate;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScanConfig {
    pub api: ApiConfig,
    pub ws: WsConfig,
    pub limits: LimitsConfig,
    pub radio: RadioConfig,
    pub scan: ScanSection,
    pub detector: DetectorConfig,
    pub tracker: TrackerConfig,
    pub classification: ClassificationConfig,
    pub output: OutputConfig,
    pub synthetic: SyntheticConfig,
    pub file: FileConfig,
    pub replay: ReplayConfig,
    pub log: LogConfig,
    pub audit: AuditConfig,
}

ndefender_service::section_defaults! {
    /// The scanner's defaults of the shared sections.
    Defaults {
        bind: "127.0.0.1:8890",
        max_clients: 25,
        heartbeat_ms: 0,
        audit_path: "/var/lib/ndefender/antsdr-scan/audit.jsonl",
    }
}

/// `[api]`: the shared server keys (ndefender-service) plus the scanner's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiConfig {
    #[serde(flatten)]
    pub server: ndefender_service::server::ServerConfig<Defaults>,
    pub event_buffer: usize,
    pub timestamp_field: TimestampField,
    pub ws_stats: bool,
    pub allow_unsafe: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            server: Default::default(),
            event_buffer: 500,
            timestamp_field: TimestampField::Timestamp,
            ws_stats: false,
            // Secure by default (issue 13 §8): reset/calibrate are opt-in.
            allow_unsafe: false,
        }
    }
}

ndefender_service::extends_section!(ApiConfig => server: ndefender_service::server::ServerConfig<Defaults>);

/// `[ws]`: hub keys of wire §7.7 other than `max_clients`, which lives in `[api]`.
pub type WsConfig = ndefender_service::server::HubSection<Defaults>;
pub type AuditConfig = ndefender_service::server::AuditConfig<Defaults>;

pub type LimitsConfig = ndefender_service::server::LimitsConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Synthetic,
    File,
    Iio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgcMode {
    SlowAttack,
    FastAttack,
    Hybrid,
}

impl AgcMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AgcMode::SlowAttack => "slow_attack",
            AgcMode::FastAttack => "fast_attack",
            AgcMode::Hybrid => "hybrid",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RadioConfig {
    pub source: SourceKind,
    pub uri: String,
    pub sample_rate: u64,
    pub fft_size: usize,
    pub avg_frames: usize,
    pub usable_fraction: f64,
    pub rf_bandwidth_hz: u64,
    pub dc_guard_hz: f64,
    pub gain_mode: GainMode,
    pub gain_db: f64,
    pub agc_mode: AgcMode,
    pub cal_offset_db: f64,
    pub settle_us: u64,
    pub discard_buffers: u32,
    pub kernel_buffers: u32,
    pub io_timeout_ms: u64,
}

impl Default for RadioConfig {
    fn default() -> Self {
        Self {
            source: SourceKind::Synthetic,
            uri: "ip:192.168.10.2".into(),
            sample_rate: 20_000_000,
            fft_size: 4096,
            avg_frames: 4,
            usable_fraction: 0.8,
            rf_bandwidth_hz: 18_000_000,
            dc_guard_hz: 15_000.0,
            gain_mode: GainMode::Manual,
            gain_db: 40.0,
            agc_mode: AgcMode::SlowAttack,
            cal_offset_db: 0.0,
            settle_us: 500,
            discard_buffers: 2,
            kernel_buffers: 2,
            io_timeout_ms: 1000,
        }
    }
}

impl RadioConfig {
    /// Width of the central part of a capture that is used (§3 `usable_fraction`).
    pub fn usable_span_hz(&self) -> f64 {
        self.usable_fraction * self.sample_rate as f64
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScanSection {
    pub autostart: bool,
    pub plans: Vec<String>,
    pub plan_dir: String,
    pub step_hz: u64,
    pub min_cycle_ms: u64,
    pub max_cycle_ms: u64,
}

impl Default for ScanSection {
    fn default() -> Self {
        Self {
            autostart: true,
            plans: vec!["video_5g8".into(), "control_2g4".into(), "control_915".into()],
            plan_dir: String::new(),
            step_hz: 0,
            min_cycle_ms: 500,
            max_cycle_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetectorConfig {
    pub min_snr_db: f64,
    pub region_snr_db: f64,
    pub merge_gap_hz: f64,
    pub min_prominence_db: f64,
    pub prominence_wlen_hz: f64,
    pub floor_tolerance_db: f64,
    pub narrow_max_hz: f64,
    pub wide_min_hz: f64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            min_snr_db: 10.0,
            region_snr_db: 6.0,
            merge_gap_hz: 200_000.0,
            min_prominence_db: 6.0,
            prominence_wlen_hz: 40e6,
            floor_tolerance_db: 3.0,
            narrow_max_hz: 1.5e6,
            wide_min_hz: 6e6,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrackerConfig {
    pub bucket_hz: u64,
    pub assoc_min_hz: f64,
    pub min_hits_to_confirm: u32,
    pub tentative_ttl_s: f64,
    pub ttl_s: f64,
    pub ttl_min_cycles: u32,
    pub tick_ms: u64,
    pub update_interval_s: f64,
    pub update_keepalive_s: f64,
    pub burst_window: usize,
    pub hop_window_s: f64,
    pub min_hop_hz: f64,
    pub hop_window_min_presence: f64,
    pub correlation: CorrelationConfig,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            bucket_hz: 250_000,
            assoc_min_hz: 250_000.0,
            min_hits_to_confirm: 2,
            tentative_ttl_s: 10.0,
            ttl_s: 30.0,
            ttl_min_cycles: 5,
            tick_ms: 500,
            update_interval_s: 1.0,
            update_keepalive_s: 10.0,
            burst_window: 16,
            hop_window_s: 10.0,
            min_hop_hz: 500_000.0,
            hop_window_min_presence: 0.5,
            correlation: CorrelationConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CorrelationConfig {
    pub enabled: bool,
    pub window_ms: u64,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            window_ms: 5000,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassificationConfig {
    /// `""` = the shipped table compiled into the binary.
    pub profiles: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    Interval,
    Batch,
    Never,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutputConfig {
    pub jsonl_path: PathBuf,
    pub stats_interval_s: f64,
    pub fsync: FsyncPolicy,
    pub fsync_interval_ms: u64,
    /// Size cap of the JSONL: past it the file is renamed to `<path>.1` (one generation, which
    /// the aggregator's tailer drains) and a new one started. 0 = no cap.
    pub max_bytes: u64,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            jsonl_path: "/opt/ndefender/logs/antsdr_scan.jsonl".into(),
            stats_interval_s: 5.0,
            fsync: FsyncPolicy::Interval,
            fsync_interval_ms: 1000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    Real,
    Virtual,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyntheticConfig {
    /// `""` = the built-in demo scene.
    pub scene: String,
    pub clock: ClockMode,
    pub start_ms: u64,
    pub step_overhead_us: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            scene: String::new(),
            clock: ClockMode::Real,
            start_ms: 1_700_000_000_000,
            step_overhead_us: 1000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawFormat {
    Cf32,
    Ci16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pace {
    Realtime,
    Fast,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileConfig {
    pub path: String,
    pub format: RawFormat,
    pub sample_rate: u64,
    pub center_hz: u64,
    pub band: String,
    pub full_scale: f64,
    pub pace: Pace,
    #[serde(rename = "loop")]
    pub looped: bool,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            path: String::new(),
            format: RawFormat::Cf32,
            sample_rate: 0,
            center_hz: 0,
            band: "FILE".into(),
            full_scale: 2048.0,
            pace: Pace::Realtime,
            looped: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplayConfig {
    pub allowed_dirs: Vec<PathBuf>,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            allowed_dirs: vec!["/opt/ndefender/logs".into(), "/opt/ndefender/recordings".into()],
        }
    }
}

pub type LogConfig = ndefender_service::server::LogConfig;

fn err<T>(key: &str, msg: impl Into<String>) -> Result<T, (String, String)> {
    Err((key.to_owned(), msg.into()))
}

impl Validate for ScanConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        let a = &self.api;
        a.server.validate("api")?;
        if a.event_buffer == 0 {
            return err("api.event_buffer", "must be at least 1");
        }
        self.ws.validate("ws")?;
        self.audit.validate()?;
        let r = &self.radio;
        if r.source == SourceKind::Iio && !cfg!(feature = "iio") {
            return err(
                "radio.source",
                "\"iio\" needs a build with cargo feature `iio` (iio_support_not_built)",
            );
        }
        if !(2_500_000..=30_720_000).contains(&r.sample_rate) {
            return err("radio.sample_rate", "must be 2500000–30720000");
        }
        if !r.fft_size.is_power_of_two() || !(256..=65536).contains(&r.fft_size) {
            return err("radio.fft_size", "must be a power of two in 256–65536");
        }
        if !(1..=64).contains(&r.avg_frames) {
            return err("radio.avg_frames", "must be 1–64");
        }
        if !(r.usable_fraction > 0.0 && r.usable_fraction <= 1.0) {
            return err("radio.usable_fraction", "must be in (0, 1]");
        }
        if (r.rf_bandwidth_hz as f64) < r.usable_span_hz() {
            return err("radio.rf_bandwidth_hz", "must be ≥ usable_fraction × sample_rate");
        }
        if !(r.dc_guard_hz >= 0.0 && r.dc_guard_hz.is_finite()) {
            return err("radio.dc_guard_hz", "must be ≥ 0");
        }
        if !(r.gain_db.is_finite() && (-20.0..=80.0).contains(&r.gain_db)) {
            return err("radio.gain_db", "must be a finite gain in dB");
        }
        if !r.cal_offset_db.is_finite() {
            return err("radio.cal_offset_db", "must be finite");
        }
        if r.io_timeout_ms == 0 {
            return err("radio.io_timeout_ms", "must be positive");
        }
        let s = &self.scan;
        if s.plans.is_empty() {
            return err("scan.plans", "must name at least one plan");
        }
        if s.min_cycle_ms > s.max_cycle_ms {
            return err("scan.min_cycle_ms", "must not exceed scan.max_cycle_ms");
        }
        let d = &self.detector;
        for (k, v) in [
            ("detector.min_snr_db", d.min_snr_db),
            ("detector.region_snr_db", d.region_snr_db),
            ("detector.merge_gap_hz", d.merge_gap_hz),
            ("detector.min_prominence_db", d.min_prominence_db),
            ("detector.prominence_wlen_hz", d.prominence_wlen_hz),
            ("detector.floor_tolerance_db", d.floor_tolerance_db),
            ("detector.narrow_max_hz", d.narrow_max_hz),
            ("detector.wide_min_hz", d.wide_min_hz),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return err(k, "must be a finite, non-negative number");
            }
        }
        if d.narrow_max_hz > d.wide_min_hz {
            return err("detector.narrow_max_hz", "must not exceed detector.wide_min_hz");
        }
        let t = &self.tracker;
        if t.bucket_hz == 0 {
            return err("tracker.bucket_hz", "must be positive");
        }
        if t.tick_ms == 0 {
            return err("tracker.tick_ms", "must be positive");
        }
        if t.burst_window == 0 {
            return err("tracker.burst_window", "must be at least 1");
        }
        if t.min_hits_to_confirm == 0 {
            return err("tracker.min_hits_to_confirm", "must be at least 1");
        }
        for (k, v) in [
            ("tracker.assoc_min_hz", t.assoc_min_hz),
            ("tracker.tentative_ttl_s", t.tentative_ttl_s),
            ("tracker.ttl_s", t.ttl_s),
            ("tracker.update_interval_s", t.update_interval_s),
            ("tracker.update_keepalive_s", t.update_keepalive_s),
            ("tracker.hop_window_s", t.hop_window_s),
            ("tracker.min_hop_hz", t.min_hop_hz),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return err(k, "must be a positive number");
            }
        }
        if !(0.0..=1.0).contains(&t.hop_window_min_presence) {
            return err("tracker.hop_window_min_presence", "must be in [0, 1]");
        }
        if !(self.output.jsonl_path.is_absolute()) {
            return err("output.jsonl_path", "must be an absolute path");
        }
        if !(self.output.stats_interval_s.is_finite() && self.output.stats_interval_s >= 0.0) {
            return err("output.stats_interval_s", "must be ≥ 0 (0 disables)");
        }
        if self.output.fsync_interval_ms == 0 {
            return err("output.fsync_interval_ms", "must be positive");
        }
        if self.radio.source == SourceKind::File {
            let f = &self.file;
            if f.path.is_empty() {
                return err("file.path", "required with radio.source = \"file\"");
            }
            if !crate::source::file::is_sigmf(std::path::Path::new(&f.path)) {
                if !(2_500_000..=30_720_000).contains(&f.sample_rate) && f.sample_rate != 0 {
                    return err("file.sample_rate", "must be 2500000–30720000");
                }
                if f.sample_rate == 0 {
                    return err("file.sample_rate", "required for raw files");
                }
                if f.center_hz == 0 {
                    return err("file.center_hz", "required for raw files");
                }
            }
            if !(f.full_scale > 0.0 && f.full_scale.is_finite()) {
                return err("file.full_scale", "must be positive");
            }
        }
        for (i, p) in self.replay.allowed_dirs.iter().enumerate() {
            if !p.is_absolute() {
                return err(&format!("replay.allowed_dirs[{i}]"), "must be an absolute path");
            }
        }
        // Plans, profiles and scene are part of the config: a bad one stops startup too.
        let plans = crate::plan::PlanSet::load(self)?;
        plans
            .active(&self.scan.plans)
            .map_err(|m| ("scan.plans".to_owned(), m))?;
        crate::classify::Profiles::load(&self.classification.profiles)
            .map_err(|m| ("classification.profiles".to_owned(), m))?;
        if self.radio.source == SourceKind::Synthetic {
            crate::source::scene::Scene::load(&self.synthetic.scene).map_err(|m| ("synthetic.scene".to_owned(), m))?;
        }
        Ok(())
    }
}

/// The keys whose change needs a restart (reported by `config/reload`).
pub fn restart_required(old: &ScanConfig, new: &ScanConfig) -> Vec<String> {
    let mut out = Vec::new();
    if old.api.bind != new.api.bind {
        out.push("api.bind".to_owned());
    }
    if old.api.api_key != new.api.api_key {
        out.push("api.api_key".to_owned());
    }
    if old.api.max_clients != new.api.max_clients {
        out.push("api.max_clients".to_owned());
    }
    if old.api.timestamp_field != new.api.timestamp_field {
        out.push("api.timestamp_field".to_owned());
    }
    if old.ws != new.ws {
        out.push("ws".to_owned());
    }
    if old.output.jsonl_path != new.output.jsonl_path {
        out.push("output.jsonl_path".to_owned());
    }
    if old.output.max_bytes != new.output.max_bytes {
        out.push("output.max_bytes".to_owned());
    }
    if old.radio.source != new.radio.source || old.radio.uri != new.radio.uri {
        out.push("radio.source".to_owned());
    }
    out
}
