//! `run/replay` (antsdr-scan §10): a JSONL log re-emits its RF_CONTACT_* lines; an IQ
//! recording runs through the real DSP with a virtual clock and its own tracker. Replay never
//! writes the live JSONL.

use crate::classify::Profiles;
use crate::config::{ClockMode, Pace, RawFormat, ScanConfig, SourceKind};
use crate::engine::{build_source, CollectSink, Engine};
use crate::plan::PlanSet;
use crate::source::sigmf;
use crate::tracker::RfEvent;
use ndefender_contract::contact::RfContactData;
use ndefender_contract::events::kind;
use ndefender_contract::time::{pick_time, Clock, ManualClock};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    /// 400 `invalid_payload`.
    Invalid(String),
    /// 403 `path_not_allowed`.
    NotAllowed,
    /// 404 `not_found`.
    NotFound,
}

#[derive(Debug, Clone, Default)]
pub struct ReplayOutcome {
    pub frames: u64,
    pub detections: u64,
    pub events: Vec<RfEvent>,
}

/// Canonical path of an existing file inside one of `allowed` (403 otherwise, 404 if missing).
pub fn check_path(path: &str, allowed: &[PathBuf]) -> Result<PathBuf, ReplayError> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(ReplayError::Invalid("log_path must be absolute".into()));
    }
    let inside = |q: &Path| {
        allowed.iter().any(|d| {
            let d = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
            q.starts_with(&d)
        })
    };
    match std::fs::canonicalize(p) {
        Ok(c) if inside(&c) => Ok(c),
        Ok(_) => Err(ReplayError::NotAllowed),
        Err(_) if inside(p) => Err(ReplayError::NotFound),
        Err(_) => Err(ReplayError::NotAllowed),
    }
}

/// Runs a replay to completion (blocking: call it off the executor).
pub fn run(
    cfg: &ScanConfig,
    plans: &PlanSet,
    profiles: &Profiles,
    path: &Path,
    max_events: Option<usize>,
) -> Result<ReplayOutcome, ReplayError> {
    let name = path.to_string_lossy();
    let mut out = if name.ends_with(".jsonl") {
        replay_jsonl(path)?
    } else if name.ends_with(".sigmf-meta") || name.ends_with(".cf32") || name.ends_with(".ci16") {
        replay_iq(cfg, plans, profiles, path)?
    } else {
        return Err(ReplayError::Invalid(
            "log_path must be .jsonl, .sigmf-meta, .cf32 or .ci16".into(),
        ));
    };
    if let Some(n) = max_events {
        out.events.truncate(n);
    }
    Ok(out)
}

fn replay_jsonl(path: &Path) -> Result<ReplayOutcome, ReplayError> {
    let text = std::fs::read(path).map_err(|_| ReplayError::NotFound)?;
    let text = String::from_utf8_lossy(&text);
    let mut out = ReplayOutcome::default();
    for line in text.lines() {
        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let k = match obj.get("type").and_then(Value::as_str) {
            Some("RF_CONTACT_NEW" | "CONTACT_NEW") => kind::RF_CONTACT_NEW,
            Some("RF_CONTACT_UPDATE" | "CONTACT_UPDATE") => kind::RF_CONTACT_UPDATE,
            Some("RF_CONTACT_LOST" | "CONTACT_LOST") => kind::RF_CONTACT_LOST,
            _ => continue,
        };
        let Some(data) = obj.get("data").cloned() else {
            continue;
        };
        let Ok(mut data) = serde_json::from_value::<RfContactData>(data) else {
            continue;
        };
        data.sanitize();
        out.frames += 1;
        out.events.push(RfEvent {
            kind: k,
            timestamp_ms: pick_time(&obj).unwrap_or_else(ndefender_contract::time::now_ms),
            data,
        });
    }
    Ok(out)
}

fn replay_iq(
    cfg: &ScanConfig,
    plans: &PlanSet,
    profiles: &Profiles,
    path: &Path,
) -> Result<ReplayOutcome, ReplayError> {
    let mut c = cfg.clone();
    c.radio.source = SourceKind::File;
    c.synthetic.clock = ClockMode::Virtual;
    c.file.path = path.to_string_lossy().into_owned();
    c.file.pace = Pace::Fast;
    c.file.looped = false;
    c.output.stats_interval_s = 0.0;
    let name = c.file.path.clone();
    let start_ms = if name.ends_with(".sigmf-meta") {
        let meta = sigmf::read_meta(path).map_err(ReplayError::Invalid)?;
        meta.captures
            .iter()
            .find_map(|x| x.datetime_ms)
            .unwrap_or(cfg.synthetic.start_ms)
    } else {
        c.file.format = if name.ends_with(".ci16") {
            RawFormat::Ci16
        } else {
            RawFormat::Cf32
        };
        if c.file.sample_rate == 0 || c.file.center_hz == 0 {
            return Err(ReplayError::Invalid(
                "raw IQ replay needs file.sample_rate and file.center_hz in the config".into(),
            ));
        }
        cfg.synthetic.start_ms
    };
    let clock = Arc::new(ManualClock::new(start_ms));
    let source = build_source(&c, plans, clock.now_ms()).map_err(ReplayError::Invalid)?;
    let sink = CollectSink::default();
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let mut engine = Engine::new(
        c,
        plans.clone(),
        profiles.clone(),
        source,
        dyn_clock,
        Some(clock),
        Box::new(sink.clone()),
    )
    .map_err(ReplayError::Invalid)?;
    engine.start_default().map_err(ReplayError::Invalid)?;
    engine.run_to_end();
    let status = engine.status().clone();
    if status.frames_processed == 0 {
        return Err(ReplayError::Invalid(
            status.device_error.unwrap_or_else(|| "no step could be read".into()),
        ));
    }
    let collected = sink.take();
    Ok(ReplayOutcome {
        frames: status.frames_processed,
        detections: status.detections_total,
        events: collected.events().cloned().collect(),
    })
}
