//! Shared harness: an engine on a virtual clock over a synthetic scene, a collecting sink,
//! and the schema validator.
#![allow(dead_code)]

pub mod daemon;

use ndefender_antsdr_scan::bench;
use ndefender_antsdr_scan::classify::Profiles;
use ndefender_antsdr_scan::config::{ClockMode, ScanConfig};
use ndefender_antsdr_scan::engine::{CollectSink, Engine};
use ndefender_antsdr_scan::plan::{parse_plan, Plan, PlanSet};
use ndefender_antsdr_scan::source::scene::{Emitter, Scene};
use ndefender_antsdr_scan::source::synthetic::SyntheticSource;
use ndefender_antsdr_scan::tracker::RfEvent;
use ndefender_contract::time::{Clock, ManualClock};
use std::sync::Arc;

pub use ndefender_tests::{schemas, R};

pub const START_MS: u64 = 1_700_000_000_000;

/// Defaults with a smaller FFT where the spec allows it, so debug-build tests stay fast.
pub fn small_cfg(plans: &[&str]) -> ScanConfig {
    let mut c = ScanConfig::default();
    c.radio.fft_size = 2048;
    c.radio.avg_frames = 4;
    c.synthetic.clock = ClockMode::Virtual;
    c.scan.plans = plans.iter().map(|s| s.to_string()).collect();
    c
}

/// [`small_cfg`] with a 1024-point FFT; the DC guard is widened to two bins (39 kHz),
/// since 15 kHz is less than one bin at this size and Hann spreads the LO leakage over ±1 bin.
pub fn fast_cfg(plans: &[&str]) -> ScanConfig {
    let mut c = small_cfg(plans);
    c.radio.fft_size = 1024;
    c.radio.dc_guard_hz = 40_000.0;
    c
}

pub fn plan(name: &str, band: &str, start_hz: u64, stop_hz: u64) -> R<Plan> {
    let text = format!("name = \"{name}\"\nband = \"{band}\"\nstart_hz = {start_hz}\nstop_hz = {stop_hz}\n");
    Ok(Plan::new(parse_plan(&text, name)?, 16_000_000, 16e6)?)
}

pub struct Harness {
    pub engine: Engine,
    pub sink: CollectSink,
    pub clock: Arc<ManualClock>,
}

impl Harness {
    /// An engine over `scene` on a virtual clock; `extra` plans are added to the shipped ones.
    pub fn new(cfg: ScanConfig, scene: Scene, extra: Vec<Plan>) -> R<Harness> {
        let mut plans = PlanSet::load(&cfg).map_err(|e| e.1)?;
        plans.plans.extend(extra);
        let profiles = Profiles::load("")?;
        let clock = Arc::new(ManualClock::new(START_MS));
        let source = SyntheticSource::new(scene, bench::timing(&cfg), START_MS, cfg.radio.gain_db);
        let sink = CollectSink::default();
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let mut engine = Engine::new(
            cfg,
            plans,
            profiles,
            Box::new(source),
            dyn_clock,
            Some(clock.clone()),
            Box::new(sink.clone()),
        )?;
        engine.start_default()?;
        Ok(Harness { engine, sink, clock })
    }

    pub fn events(&self) -> Vec<RfEvent> {
        self.sink.with(|c| c.events().cloned().collect())
    }
}

pub fn scene(emitters: Vec<Emitter>) -> Scene {
    let mut s = Scene::empty(42);
    s.emitter = emitters;
    s
}

pub fn kinds(events: &[RfEvent], id: &str) -> Vec<&'static str> {
    events.iter().filter(|e| e.data.id == id).map(|e| e.kind).collect()
}

pub fn news(events: &[RfEvent]) -> Vec<&RfEvent> {
    events.iter().filter(|e| e.kind == "RF_CONTACT_NEW").collect()
}

/// Serialises events as the JSONL does and validates every line against the contract.
pub fn validate_lines(events: &[RfEvent]) -> R<Vec<String>> {
    use ndefender_contract::TimestampField;
    let mut out = Vec::new();
    for e in events {
        let env = ndefender_antsdr_scan::state::rf_envelope(e).ok_or("envelope")?;
        for field in [TimestampField::TimestampMs, TimestampField::Timestamp] {
            let line = env.to_json(None, field);
            let v: serde_json::Value = serde_json::from_str(&line)?;
            schemas().validate_envelope(&v).map_err(|m| format!("{m}\n{line}"))?;
            let f = &v["data"]["features"];
            assert_eq!(f.as_object().map(|o| o.len()), Some(11), "{line}");
            for k in ["freq_hz", "bucket_hz"] {
                assert!(v["data"][k].is_u64(), "{k} not an integer: {line}");
            }
            assert!(f["bandwidth_est_hz"].is_u64() && f["cluster_size"].is_u64(), "{line}");
            if field == TimestampField::TimestampMs {
                out.push(line);
            }
        }
    }
    Ok(out)
}

/// An engine over one analog video carrier at `centre_hz`, with plan "ch" around it.
pub fn analog_channel(cfg: ScanConfig, centre_hz: u64) -> R<Harness> {
    Harness::new(
        cfg,
        scene(vec![Emitter::analog(centre_hz as f64, 20.0)]),
        vec![around("ch", centre_hz)?],
    )
}

/// Plan of three 16 MHz steps centred on `centre_hz`.
pub fn around(name: &str, centre_hz: u64) -> R<Plan> {
    plan(name, "5G8", centre_hz - 24_000_000, centre_hz + 24_000_000)
}
