//! Sweep plans (antsdr-scan §4): strict TOML, the LO layout, and the plan set with its
//! overlap rule. The four shipped plans are compiled in from `config/antsdr/plans/`.

use crate::config::ScanConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The shipped plans, in the order of the default set.
pub const BUILTIN_PLANS: [(&str, &str); 4] = [
    ("video_5g8", include_str!("../../../config/antsdr/plans/video_5g8.toml")),
    (
        "control_2g4",
        include_str!("../../../config/antsdr/plans/control_2g4.toml"),
    ),
    (
        "control_915",
        include_str!("../../../config/antsdr/plans/control_915.toml"),
    ),
    (
        "lowrace_5g3",
        include_str!("../../../config/antsdr/plans/lowrace_5g3.toml"),
    ),
];

/// The AD9361 tuning range.
const LO_MIN_HZ: u64 = 70_000_000;
const LO_MAX_HZ: u64 = 6_000_000_000;
/// Steps one plan may have. The spec bounds `step_hz` only from above, so a tiny step
/// (`scan.step_hz = 2`) made a plan of 160 million LOs: gigabytes at config load, before
/// any check could refuse it (found by the `config_toml` fuzz target). 1024 steps cover the
/// whole AD9361 range at 6 MHz, keep a plan's panorama under 14 MiB at the default FFT
/// size and its cycle under ~5 s of radio time.
pub const MAX_PLAN_STEPS: u64 = 1024;

/// One plan file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub band: String,
    pub start_hz: u64,
    pub stop_hz: u64,
    #[serde(default)]
    pub step_hz: Option<u64>,
}

/// A validated plan with its LO layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    pub aliases: Vec<String>,
    pub band: String,
    pub start_hz: u64,
    pub stop_hz: u64,
    pub step_hz: u64,
    pub los: Vec<u64>,
}

impl Plan {
    /// Builds the LO layout of §4: n = ⌈span/step⌉ steps centred on the span.
    pub fn new(f: PlanFile, default_step: u64, max_step: f64) -> Result<Plan, String> {
        if f.name.is_empty() {
            return Err("name must not be empty".into());
        }
        if f.start_hz >= f.stop_hz {
            return Err(format!("plan {}: start_hz must be below stop_hz", f.name));
        }
        let step = f.step_hz.unwrap_or(default_step);
        if step == 0 || step as f64 > max_step + 0.5 {
            return Err(format!(
                "plan {}: step_hz {step} must be in (0, usable_fraction × sample_rate = {max_step}]",
                f.name
            ));
        }
        let span = f.stop_hz - f.start_hz;
        let n = span.div_ceil(step);
        if n > MAX_PLAN_STEPS {
            return Err(format!(
                "plan {}: {n} steps of {step} Hz over {span} Hz; at most {MAX_PLAN_STEPS} per plan \
                 (raise step_hz or split the plan)",
                f.name
            ));
        }
        let slack = n * step - span;
        let first = (f.start_hz + step / 2)
            .checked_sub(slack / 2)
            .ok_or_else(|| format!("plan {}: LO below 0 Hz", f.name))?;
        let los: Vec<u64> = (0..n).map(|i| first + i * step).collect();
        if let Some(lo) = los.iter().find(|lo| !(LO_MIN_HZ..=LO_MAX_HZ).contains(*lo)) {
            return Err(format!(
                "plan {}: LO {lo} Hz outside the AD9361 range 70 MHz–6 GHz",
                f.name
            ));
        }
        Ok(Plan {
            name: f.name,
            aliases: f.aliases,
            band: f.band,
            start_hz: f.start_hz,
            stop_hz: f.stop_hz,
            step_hz: step,
            los,
        })
    }

    /// `[LO_0 − step/2, LO_last + step/2)`: what the plan's owned regions cover.
    pub fn covered(&self) -> (u64, u64) {
        let half = self.step_hz / 2;
        let first = self.los.first().copied().unwrap_or(self.start_hz);
        let last = self.los.last().copied().unwrap_or(self.stop_hz);
        (first.saturating_sub(half), last + (self.step_hz - half))
    }

    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.aliases.iter().any(|a| a == name)
    }

    /// The one-plan layout of a file source: one step at `center_hz`.
    pub fn single(name: &str, band: &str, center_hz: u64, step_hz: u64) -> Plan {
        Plan {
            name: name.to_owned(),
            aliases: Vec::new(),
            band: band.to_owned(),
            start_hz: center_hz.saturating_sub(step_hz / 2),
            stop_hz: center_hz + step_hz / 2,
            step_hz,
            los: vec![center_hz],
        }
    }
}

pub fn parse_plan(text: &str, origin: &str) -> Result<PlanFile, String> {
    toml::from_str::<PlanFile>(text).map_err(|e| format!("{origin}: {}", e.message()))
}

/// Every loaded plan, built-ins first, then `plan_dir` additions and replacements.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSet {
    pub plans: Vec<Plan>,
}

impl PlanSet {
    /// Loads the built-ins and `scan.plan_dir`; errors name the key (`scan.plan_dir`).
    pub fn load(cfg: &ScanConfig) -> Result<PlanSet, (String, String)> {
        let default_step = default_step(cfg);
        let max_step = cfg.radio.usable_span_hz();
        let key = |m: String| ("scan.plan_dir".to_owned(), m);
        let mut plans = Vec::new();
        for (name, text) in BUILTIN_PLANS {
            let f = parse_plan(text, name).map_err(key)?;
            plans.push(Plan::new(f, default_step, max_step).map_err(key)?);
        }
        if !cfg.scan.plan_dir.is_empty() {
            let dir = Path::new(&cfg.scan.plan_dir);
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| key(format!("{}: {e}", dir.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("toml"))
                .collect();
            files.sort();
            for p in files {
                let text = std::fs::read_to_string(&p).map_err(|e| key(format!("{}: {e}", p.display())))?;
                let f = parse_plan(&text, &p.display().to_string()).map_err(key)?;
                let plan = Plan::new(f, default_step, max_step).map_err(key)?;
                match plans.iter_mut().find(|x| x.name == plan.name) {
                    Some(slot) => *slot = plan,
                    None => plans.push(plan),
                }
            }
        }
        let set = PlanSet { plans };
        set.check_names().map_err(key)?;
        Ok(set)
    }

    fn check_names(&self) -> Result<(), String> {
        let mut seen: Vec<&str> = Vec::new();
        for p in &self.plans {
            for n in std::iter::once(&p.name).chain(p.aliases.iter()) {
                if seen.contains(&n.as_str()) {
                    return Err(format!("plan name or alias {n:?} is used twice"));
                }
                seen.push(n);
            }
        }
        Ok(())
    }

    pub fn find(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.answers_to(name))
    }

    /// Resolves a set of names (or aliases) to plans and rejects overlapping coverage.
    pub fn active(&self, names: &[String]) -> Result<Vec<Plan>, String> {
        let mut out: Vec<Plan> = Vec::new();
        for n in names {
            let p = self.find(n).ok_or_else(|| format!("unknown plan {n:?}"))?;
            if out.iter().any(|x| x.name == p.name) {
                continue;
            }
            out.push(p.clone());
        }
        for (i, a) in out.iter().enumerate() {
            for b in &out[i + 1..] {
                let (a0, a1) = a.covered();
                let (b0, b1) = b.covered();
                if a0 < b1 && b0 < a1 {
                    return Err(format!("plans {:?} and {:?} overlap", a.name, b.name));
                }
            }
        }
        Ok(out)
    }
}

/// `scan.step_hz`, or `usable_fraction × sample_rate` when 0.
pub fn default_step(cfg: &ScanConfig) -> u64 {
    if cfg.scan.step_hz > 0 {
        cfg.scan.step_hz
    } else {
        cfg.radio.usable_span_hz().round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn shipped_layouts() -> R {
        let set = PlanSet::load(&ScanConfig::default()).map_err(|e| e.1)?;
        let v = set.find("video_5g8").ok_or("video")?;
        let want: Vec<u64> = (0..20).map(|i| 5_643_000_000 + 16_000_000 * i).collect();
        assert_eq!(v.los, want);
        let c = set.find("control_2g4").ok_or("2g4")?;
        assert_eq!(
            c.los,
            [
                2_401_750_000,
                2_417_750_000,
                2_433_750_000,
                2_449_750_000,
                2_465_750_000,
                2_481_750_000
            ]
        );
        assert_eq!(set.find("control_915").ok_or("915")?.los, [907_000_000, 923_000_000]);
        let l = set.find("lowrace_5g3").ok_or("lowrace")?;
        assert_eq!((l.los.len(), l.los[0], l.los[18]), (19, 5_336_000_000, 5_624_000_000));
        let active = set.active(&ScanConfig::default().scan.plans)?;
        assert_eq!(active.iter().map(|p| p.los.len()).sum::<usize>(), 28);
        assert_eq!(set.find("analog_5g8").map(|p| p.name.as_str()), Some("video_5g8"));
        Ok(())
    }

    #[test]
    fn overlap_and_strictness() -> R {
        let mut set = PlanSet::load(&ScanConfig::default()).map_err(|e| e.1)?;
        assert!(set.active(&["video_5g8".into(), "lowrace_5g3".into()]).is_ok());
        let f = parse_plan(
            "name=\"hi\"\nband=\"5G8\"\nstart_hz=5900000000\nstop_hz=5990000000\n",
            "hi",
        )?;
        set.plans.push(Plan::new(f, 16_000_000, 16e6)?);
        let e = set.active(&["video_5g8".into(), "hi".into()]).err().unwrap_or_default();
        assert!(e.contains("video_5g8") && e.contains("\"hi\""), "{e}");
        let e = parse_plan("name=\"x\"\nband=\"B\"\nstart_hz=1\nstop_hz=2\nstep=3\n", "x.toml")
            .err()
            .unwrap_or_default();
        assert!(e.contains("step"), "{e}");
        let f = parse_plan("name=\"x\"\nband=\"B\"\nstart_hz=10\nstop_hz=5\n", "x")?;
        assert!(Plan::new(f, 16_000_000, 16e6).is_err());
        let f = parse_plan("name=\"x\"\nband=\"B\"\nstart_hz=10\nstop_hz=50000000\n", "x")?;
        assert!(Plan::new(f, 16_000_000, 16e6).is_err(), "LO below 70 MHz");
        let f = parse_plan(
            "name=\"x\"\nband=\"B\"\nstart_hz=900000000\nstop_hz=950000000\nstep_hz=17000000\n",
            "x",
        )?;
        assert!(Plan::new(f, 16_000_000, 16e6).is_err(), "step above the usable span");
        Ok(())
    }
}
