//! Classification (antsdr-scan §8): the channel tables and vendor profiles from TOML, the
//! rule fallback, and the scores. Pure functions of one observation's features.

use serde::{Deserialize, Serialize};

pub const BUILTIN_PROFILES: &str = include_str!("../../../config/antsdr/profiles.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalogGates {
    pub match_tolerance_hz: f64,
    pub min_bandwidth_hz: f64,
    pub max_bandwidth_hz: f64,
    pub max_ofdm_score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelTable {
    pub name: String,
    pub labels: Vec<String>,
    pub centres_mhz: Vec<f64>,
    pub pattern_prefix: String,
    pub confidence: f64,
    #[serde(default)]
    pub priority: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub class_path: Vec<String>,
    pub start_hz: f64,
    pub stop_hz: f64,
    #[serde(default)]
    pub min_bandwidth_hz: Option<f64>,
    #[serde(default)]
    pub max_bandwidth_hz: Option<f64>,
    #[serde(default)]
    pub bandwidth_class: Option<String>,
    #[serde(default)]
    pub min_snr_db: Option<f64>,
    #[serde(default)]
    pub min_ofdm_score: Option<f64>,
    #[serde(default)]
    pub max_ofdm_score: Option<f64>,
    #[serde(default)]
    pub min_burstiness: Option<f64>,
    #[serde(default)]
    pub max_burstiness: Option<f64>,
    #[serde(default)]
    pub min_hop_rate_hz: Option<f64>,
    pub confidence: f64,
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub hop_set: bool,
}

impl Profile {
    pub fn centre_hz(&self) -> f64 {
        (self.start_hz + self.stop_hz) / 2.0
    }
    pub fn contains(&self, f: f64) -> bool {
        f >= self.start_hz && f <= self.stop_hz
    }
    /// The bandwidth gates alone (what a hop sample must pass, §7.1).
    pub fn bandwidth_ok(&self, bw: f64, class: &str) -> bool {
        self.bandwidth_class.as_deref().is_none_or(|c| c == class)
            && self.min_bandwidth_hz.is_none_or(|m| bw >= m)
            && self.max_bandwidth_hz.is_none_or(|m| bw <= m)
    }
    fn gates_ok(&self, x: &Features) -> bool {
        self.contains(x.freq_hz)
            && self.bandwidth_ok(x.bandwidth_hz, x.bandwidth_class)
            && self.min_snr_db.is_none_or(|m| x.snr_db >= m)
            && self.min_ofdm_score.is_none_or(|m| x.ofdm_score >= m)
            && self.max_ofdm_score.is_none_or(|m| x.ofdm_score <= m)
            && self.min_burstiness.is_none_or(|m| x.burstiness >= m)
            && self.max_burstiness.is_none_or(|m| x.burstiness <= m)
            && self.min_hop_rate_hz.is_none_or(|m| x.hop_rate_hz >= m)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profiles {
    pub analog: AnalogGates,
    #[serde(default)]
    pub channel_table: Vec<ChannelTable>,
    #[serde(default)]
    pub profile: Vec<Profile>,
}

/// What the classifier sees of one observation (and the contact's history features).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features<'a> {
    pub freq_hz: f64,
    pub bandwidth_hz: f64,
    pub bandwidth_class: &'a str,
    pub snr_db: f64,
    pub ofdm_score: f64,
    pub burstiness: f64,
    pub hopping: bool,
    pub hop_rate_hz: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    pub class_path: Vec<String>,
    pub pattern_hint: String,
    pub confidence: f64,
}

impl Profiles {
    /// `""` = the shipped table; otherwise a file path.
    pub fn load(path: &str) -> Result<Profiles, String> {
        let text = if path.is_empty() {
            BUILTIN_PROFILES.to_owned()
        } else {
            std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?
        };
        Self::parse(&text).map_err(|e| if path.is_empty() { e } else { format!("{path}: {e}") })
    }

    pub fn parse(text: &str) -> Result<Profiles, String> {
        let p: Profiles = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        for t in &p.channel_table {
            if t.labels.len() != t.centres_mhz.len() {
                return Err(format!(
                    "channel_table {}: labels and centres_mhz differ in length",
                    t.name
                ));
            }
        }
        for x in &p.profile {
            if x.start_hz > x.stop_hz {
                return Err(format!("profile {}: start_hz above stop_hz", x.name));
            }
            if x.class_path.is_empty() {
                return Err(format!("profile {}: class_path must not be empty", x.name));
            }
        }
        Ok(p)
    }

    /// The hop-set profile a narrow detection feeds (§7.1 step 2): highest priority wins.
    pub fn hop_profile(&self, freq_hz: f64, bw: f64, class: &str) -> Option<usize> {
        self.profile
            .iter()
            .enumerate()
            .filter(|(_, p)| p.hop_set && p.contains(freq_hz) && p.bandwidth_ok(bw, class))
            .max_by(|(ia, a), (ib, b)| {
                a.priority
                    .cmp(&b.priority)
                    .then_with(|| a.confidence.total_cmp(&b.confidence))
                    .then_with(|| ib.cmp(ia))
            })
            .map(|(i, _)| i)
    }

    /// Class of one observation of a fixed contact: table/profile match, else the rules.
    /// Hop-set profiles are not offered here: they classify hop-set contacts only.
    pub fn classify(&self, x: &Features) -> Class {
        let mut best: Option<Cand<'_>> = None;
        let g = &self.analog;
        let analog_ok = x.bandwidth_hz >= g.min_bandwidth_hz
            && x.bandwidth_hz <= g.max_bandwidth_hz
            && x.ofdm_score <= g.max_ofdm_score;
        if analog_ok {
            for t in &self.channel_table {
                for (label, centre) in t.labels.iter().zip(&t.centres_mhz) {
                    let dist = (x.freq_hz - centre * 1e6).abs();
                    if dist > g.match_tolerance_hz {
                        continue;
                    }
                    let c = Cand {
                        priority: t.priority,
                        dist,
                        base_conf: t.confidence,
                        name: &t.name,
                        what: What::Channel(t, label),
                    };
                    if best.as_ref().is_none_or(|b| c.beats(b)) {
                        best = Some(c);
                    }
                }
            }
        }
        for p in self.profile.iter().filter(|p| !p.hop_set && p.gates_ok(x)) {
            let c = Cand {
                priority: p.priority,
                dist: (x.freq_hz - p.centre_hz()).abs(),
                base_conf: p.confidence,
                name: &p.name,
                what: What::Profile(p),
            };
            if best.as_ref().is_none_or(|b| c.beats(b)) {
                best = Some(c);
            }
        }
        let Some(b) = best else {
            return rules(x);
        };
        match b.what {
            What::Channel(t, label) => Class {
                class_path: vec!["Analog".into(), "Video".into(), t.name.clone(), label.clone()],
                pattern_hint: format!("{}{}", t.pattern_prefix, label.to_lowercase()),
                confidence: (t.confidence
                    + 0.05 * ((x.snr_db - 10.0) / 20.0).clamp(0.0, 1.0)
                    + 0.05 * (1.0 - b.dist / g.match_tolerance_hz))
                    .min(0.98),
            },
            What::Profile(p) => Class {
                class_path: p.class_path.clone(),
                pattern_hint: p.name.clone(),
                confidence: match p.min_ofdm_score {
                    Some(r) if r < 1.0 => {
                        (p.confidence + 0.15 * ((x.ofdm_score - r) / (1.0 - r)).clamp(0.0, 1.0)).min(0.90)
                    }
                    _ => p.confidence,
                },
            },
        }
    }

    /// Class of a hop-set contact: its profile, confidence raised by the hop fraction.
    pub fn hop_class(&self, profile: usize, hop_fraction: f64) -> Option<Class> {
        let p = self.profile.get(profile)?;
        Some(Class {
            class_path: p.class_path.clone(),
            pattern_hint: p.name.clone(),
            confidence: (p.confidence + 0.15 * hop_fraction.clamp(0.0, 1.0)).min(0.90),
        })
    }
}

enum What<'a> {
    Channel(&'a ChannelTable, &'a String),
    Profile(&'a Profile),
}

struct Cand<'a> {
    priority: i32,
    dist: f64,
    base_conf: f64,
    name: &'a str,
    what: What<'a>,
}

impl Cand<'_> {
    /// §8.1 order: priority desc, distance asc, confidence desc, name asc.
    fn beats(&self, b: &Cand<'_>) -> bool {
        self.priority
            .cmp(&b.priority)
            .then_with(|| b.dist.total_cmp(&self.dist))
            .then_with(|| self.base_conf.total_cmp(&b.base_conf))
            .then_with(|| b.name.cmp(self.name))
            .is_gt()
    }
}

/// §8.3, first match.
pub fn rules(x: &Features) -> Class {
    let wideish = x.bandwidth_class == "medium" || x.bandwidth_class == "wide";
    let narrow = x.bandwidth_class == "narrow";
    let (path, hint, conf): (&[&str], &str, f64) = if wideish && x.ofdm_score >= 0.7 && x.burstiness <= 0.5 {
        (&["Digital", "Video"], "digital_video", 0.60)
    } else if wideish && x.ofdm_score >= 0.7 {
        (&["Digital", "Data"], "digital_data", 0.30)
    } else if x.bandwidth_class == "wide" {
        (&["Analog", "Video"], "analog_video", 0.50)
    } else if narrow && x.hopping {
        (
            &["Control", "Hopping"],
            "hopping_control",
            (0.55 + 0.1 * x.hop_rate_hz.clamp(0.0, 2.0)).min(0.75),
        )
    } else if narrow && x.burstiness >= 0.6 {
        (&["Control", "Burst"], "bursty_control", 0.45)
    } else if narrow {
        (&["Narrowband"], "narrowband", 0.30)
    } else {
        (&["Unknown"], "unknown", 0.20)
    };
    Class {
        class_path: path.iter().map(|s| (*s).to_owned()).collect(),
        pattern_hint: hint.to_owned(),
        confidence: conf,
    }
}

/// §8.4 `control_score`, 2 decimals.
pub fn control_score(bandwidth_class: &str, band: &str, hopping: bool, hop_rate_hz: f64, burstiness: f64) -> f64 {
    let mut s = 0.0;
    if bandwidth_class == "narrow" {
        s += 0.2;
    }
    if ["2G4", "915", "868", "433"].contains(&band) {
        s += 0.1;
    }
    if hopping {
        s += 0.4 + 0.1 * (hop_rate_hz / 2.0).clamp(0.0, 1.0);
    }
    s += 0.2 * ((burstiness - 0.3) / 0.5).clamp(0.0, 1.0);
    round2(s.clamp(0.0, 1.0))
}

pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analog(f_mhz: f64) -> Features<'static> {
        Features {
            freq_hz: f_mhz * 1e6,
            bandwidth_hz: 12e6,
            bandwidth_class: "wide",
            snr_db: 20.0,
            ofdm_score: 0.0,
            burstiness: 0.0,
            hopping: false,
            hop_rate_hz: 0.0,
        }
    }

    #[test]
    fn every_standard_channel_is_its_own_label() -> Result<(), String> {
        let p = Profiles::load("")?;
        for t in &p.channel_table {
            for (label, c) in t.labels.iter().zip(&t.centres_mhz) {
                let got = p.classify(&analog(*c));
                let want_r7 = *c == 5880.0;
                let (tn, tl) = if want_r7 {
                    ("RaceBand", "R7")
                } else {
                    (t.name.as_str(), label.as_str())
                };
                assert_eq!(got.class_path, ["Analog", "Video", tn, tl], "{c} MHz");
                assert!(got.confidence <= 0.98);
            }
        }
        assert_eq!(p.classify(&analog(5780.0)).class_path[3], "F3");
        assert_eq!(p.classify(&analog(5924.0)).class_path[3], "E7");
        assert_eq!(p.classify(&analog(5732.0)).pattern_hint, "raceband_r3");
        Ok(())
    }

    #[test]
    fn digital_profiles_and_rules() -> Result<(), String> {
        let p = Profiles::load("")?;
        let mut x = analog(5785.0);
        x.bandwidth_hz = 38e6;
        x.ofdm_score = 0.95;
        assert_eq!(p.classify(&x).class_path, ["Digital", "Video", "DJI"]);
        x.freq_hz = 2437e6;
        assert_eq!(p.classify(&x).class_path, ["Digital", "Video"]);
        x.burstiness = 0.8;
        assert_eq!(p.classify(&x).class_path, ["Digital", "Data"]);
        let n = Features {
            freq_hz: 2470.3e6,
            bandwidth_hz: 10e3,
            bandwidth_class: "narrow",
            snr_db: 25.0,
            ofdm_score: 0.0,
            burstiness: 0.0,
            hopping: false,
            hop_rate_hz: 0.0,
        };
        assert_eq!(p.classify(&n).class_path, ["Narrowband"]);
        assert_eq!(
            p.hop_profile(2441e6, 800e3, "narrow")
                .map(|i| p.profile[i].name.as_str()),
            Some("elrs_2g4")
        );
        assert_eq!(
            p.hop_profile(915e6, 500e3, "narrow")
                .map(|i| p.profile[i].name.as_str()),
            Some("elrs_915")
        );
        assert_eq!(
            p.hop_profile(915e6, 200e3, "narrow")
                .map(|i| p.profile[i].name.as_str()),
            Some("crossfire_915")
        );
        assert_eq!(p.hop_profile(2470e6, 10e3, "narrow"), None);
        assert_eq!(control_score("narrow", "2G4", true, 0.5, 0.0), 0.73);
        Ok(())
    }
}
