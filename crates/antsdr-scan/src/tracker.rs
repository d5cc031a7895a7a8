//! The tracker (antsdr-scan §7): association first, sticky ids, hop-set contacts, confirmation
//! over distinct cycles, a timer-driven TTL, throttled UPDATEs, and the per-emitter features
//! (burstiness, hop rate, median bandwidth, correlation, confidence). Time comes in as
//! arguments read from the injected clock, so tests drive it with a `ManualClock`.

use crate::classify::{control_score, round1, round2, Class, Features, Profiles};
use crate::config::{DetectorConfig, TrackerConfig};
use crate::detect::{BwClass, Detection};
use ndefender_contract::contact::{RfContactData, RfFeatures};
use ndefender_contract::events::kind;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Bandwidth history kept for the median (§7.5).
const BW_HISTORY: usize = 8;
/// Visits a fixed contact inside a hop window needs before its presence is judged (§7.3).
const HOP_WINDOW_MIN_VISITS: usize = 4;

/// One RF_CONTACT_* event: type, envelope time and data.
#[derive(Debug, Clone, PartialEq)]
pub struct RfEvent {
    pub kind: &'static str,
    pub timestamp_ms: u64,
    pub data: RfContactData,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Obs {
    freq_hz: f64,
    snr_db: f64,
    peak_db: f64,
    floor_db: f64,
    prominence_db: f64,
    cluster_size: u64,
    ofdm_score: f64,
}

#[derive(Debug, Clone)]
struct Contact {
    id: String,
    bucket_hz: u64,
    plan: String,
    band: String,
    hop_profile: Option<usize>,
    confirmed: bool,
    created: Instant,
    last_seen: Instant,
    last_seen_ms: u64,
    hit_cycles: u32,
    last_hit_cycle: u64,
    visits: VecDeque<bool>,
    /// (t seconds on the tracker's monotonic axis, f Hz, sweep cycle)
    samples: VecDeque<(f64, f64, u64)>,
    bws: VecDeque<f64>,
    obs: Obs,
    class: Option<Class>,
    pending: Option<Vec<String>>,
    fed_hop: bool,
    present: bool,
    last_event: Option<Instant>,
    last_emitted: Option<RfContactData>,
    observed_since_event: bool,
}

impl Contact {
    fn median_bw(&self) -> f64 {
        let mut v: Vec<f64> = self.bws.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
        }
    }

    fn present_visits(&self) -> usize {
        self.visits.iter().filter(|p| **p).count()
    }

    fn burstiness(&self) -> f64 {
        if self.visits.is_empty() {
            return 0.0;
        }
        round2(1.0 - self.present_visits() as f64 / self.visits.len() as f64)
    }

    /// (hops, samples) over the sample window, with the hop threshold of §7.5.
    fn hops(&self, min_hop_hz: f64) -> (usize, usize) {
        let thr = min_hop_hz.max(0.5 * self.median_bw());
        let hops = self
            .samples
            .iter()
            .zip(self.samples.iter().skip(1))
            .filter(|(a, b)| (b.1 - a.1).abs() >= thr)
            .count();
        (hops, self.samples.len())
    }
}

/// Distinct cycles and pairwise-separated frequencies among hop samples (§7.3).
fn hop_set_evidence(samples: &VecDeque<(f64, f64, u64)>, min_hop_hz: f64) -> (usize, usize) {
    let mut cycles: Vec<u64> = samples.iter().map(|s| s.2).collect();
    cycles.sort_unstable();
    cycles.dedup();
    let mut f: Vec<f64> = samples.iter().map(|s| s.1).collect();
    f.sort_by(f64::total_cmp);
    let mut distinct = 0;
    let mut last = f64::NEG_INFINITY;
    for x in f {
        if x - last >= min_hop_hz {
            distinct += 1;
            last = x;
        }
    }
    (cycles.len(), distinct)
}

/// What the tracker needs to know about a completed band pass.
#[derive(Debug, Clone, Copy)]
pub struct PassInfo<'a> {
    pub plan: &'a str,
    pub band: &'a str,
    pub sweep_seq: u64,
    pub now: Instant,
    pub now_ms: u64,
    /// Owned regions of the steps captured in this pass.
    pub captured: &'a [(f64, f64)],
}

#[derive(Debug)]
pub struct Tracker {
    cfg: TrackerConfig,
    det: DetectorConfig,
    min_snr_db: f64,
    profiles: Profiles,
    contacts: BTreeMap<String, Contact>,
    epoch: Option<Instant>,
    cycle_ewma_s: Option<f64>,
}

impl Tracker {
    pub fn new(cfg: TrackerConfig, det: DetectorConfig, profiles: Profiles) -> Self {
        Self {
            min_snr_db: det.min_snr_db,
            cfg,
            det,
            profiles,
            contacts: BTreeMap::new(),
            epoch: None,
            cycle_ewma_s: None,
        }
    }

    /// Applies a reloaded config; contacts are kept.
    pub fn reconfigure(&mut self, cfg: TrackerConfig, det: DetectorConfig, profiles: Profiles) {
        self.min_snr_db = det.min_snr_db;
        self.cfg = cfg;
        self.det = det;
        self.profiles = profiles;
    }

    /// Forgets every contact of plans not in `keep` (config reload changed them).
    pub fn retain_plans(&mut self, keep: &[String]) {
        self.contacts.retain(|_, c| keep.contains(&c.plan));
    }

    /// Feeds one cycle period into the EWMA (α 0.2) behind the TTL and windows.
    pub fn observe_cycle(&mut self, period: Duration) {
        let p = period.as_secs_f64();
        self.cycle_ewma_s = Some(match self.cycle_ewma_s {
            None => p,
            Some(e) => 0.8 * e + 0.2 * p,
        });
    }

    pub fn cycle_period_s(&self) -> f64 {
        self.cycle_ewma_s.unwrap_or(0.0)
    }

    pub fn ttl(&self) -> Duration {
        let s = self
            .cfg
            .ttl_s
            .max(self.cfg.ttl_min_cycles as f64 * self.cycle_period_s());
        Duration::from_secs_f64(s)
    }

    fn tentative_ttl(&self) -> Duration {
        Duration::from_secs_f64(self.cfg.tentative_ttl_s.max(3.0 * self.cycle_period_s()))
    }

    fn secs(&mut self, t: Instant) -> f64 {
        let epoch = *self.epoch.get_or_insert(t);
        t.saturating_duration_since(epoch).as_secs_f64()
    }

    pub fn len(&self) -> usize {
        self.contacts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty()
    }

    /// (tentative, confirmed) counts for `antsdr_contacts{state}`.
    pub fn counts(&self) -> (usize, usize) {
        let confirmed = self.contacts.values().filter(|c| c.confirmed).count();
        (self.contacts.len() - confirmed, confirmed)
    }

    /// One RF_CONTACT_UPDATE per confirmed contact (the WS resync set, PROTOCOL.md §7.2).
    pub fn confirmed_updates(&self) -> Vec<RfEvent> {
        self.contacts
            .values()
            .filter(|c| c.confirmed)
            .filter_map(|c| {
                c.last_emitted.as_ref().map(|d| RfEvent {
                    kind: kind::RF_CONTACT_UPDATE,
                    timestamp_ms: c.last_seen_ms,
                    data: d.clone(),
                })
            })
            .collect()
    }

    fn free_id(&self, bucket: u64) -> (String, u64) {
        let b = self.cfg.bucket_hz;
        for k in 0..10_000i64 {
            let off = if k == 0 {
                0
            } else if k % 2 == 1 {
                (k + 1) / 2
            } else {
                -(k / 2)
            };
            let cand = bucket as i64 + off * b as i64;
            if cand <= 0 {
                continue;
            }
            let id = format!("rf:{cand}");
            if !self.contacts.contains_key(&id) {
                return (id, cand as u64);
            }
        }
        (format!("rf:{bucket}"), bucket)
    }

    fn bucket(&self, f: f64) -> u64 {
        let b = self.cfg.bucket_hz as f64;
        ((f / b).round() * b).max(0.0) as u64
    }

    fn tolerance(&self, bw_a: f64, bw_b: f64) -> f64 {
        self.cfg.assoc_min_hz.max(0.25 * bw_a.max(bw_b))
    }

    fn new_contact(&self, id: String, bucket: u64, p: &PassInfo, hop_profile: Option<usize>, obs: Obs) -> Contact {
        Contact {
            id,
            bucket_hz: bucket,
            plan: p.plan.to_owned(),
            band: p.band.to_owned(),
            hop_profile,
            confirmed: false,
            created: p.now,
            last_seen: p.now,
            last_seen_ms: p.now_ms,
            hit_cycles: 0,
            last_hit_cycle: 0,
            visits: VecDeque::new(),
            samples: VecDeque::new(),
            bws: VecDeque::new(),
            obs,
            class: None,
            pending: None,
            fed_hop: false,
            present: false,
            last_event: None,
            last_emitted: None,
            observed_since_event: false,
        }
    }

    fn observe(&mut self, id: &str, d: &Detection, p: &PassInfo, t_s: f64) {
        let hop_window = self.cfg.hop_window_s;
        let Some(c) = self.contacts.get_mut(id) else {
            return;
        };
        c.obs = obs_of(d);
        c.last_seen = p.now;
        c.last_seen_ms = d.time_ms.max(1);
        if !c.present && c.last_hit_cycle != p.sweep_seq {
            c.hit_cycles += 1;
            c.last_hit_cycle = p.sweep_seq;
        }
        c.present = true;
        c.observed_since_event = true;
        c.bws.push_back(d.bandwidth_hz);
        while c.bws.len() > BW_HISTORY {
            c.bws.pop_front();
        }
        c.samples.push_back((t_s, d.freq_hz, p.sweep_seq));
        while c.samples.front().is_some_and(|s| t_s - s.0 > hop_window) {
            c.samples.pop_front();
        }
    }

    /// Association, hop sets, creation, visits, classification, confirmation and UPDATEs for
    /// one completed band pass (§7.1–7.5).
    pub fn process_pass(&mut self, p: &PassInfo, detections: &[Detection]) -> Vec<RfEvent> {
        let pass_s = self.secs(p.now);
        for c in self.contacts.values_mut() {
            c.present = false;
        }
        // 1. Global nearest-first association with fixed contacts of this plan.
        let mut pairs: Vec<(f64, usize, String)> = Vec::new();
        for (di, d) in detections.iter().enumerate() {
            for c in self.contacts.values() {
                if c.plan != p.plan || c.hop_profile.is_some() {
                    continue;
                }
                let bw_c = c.median_bw();
                let dist = (d.freq_hz - c.obs.freq_hz).abs();
                let class_c = BwClass::of(bw_c, &self.det);
                if dist <= self.tolerance(d.bandwidth_hz, bw_c)
                    && (d.bandwidth_class.rank() - class_c.rank()).abs() <= 1
                {
                    pairs.push((dist, di, c.id.clone()));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut matched: Vec<Option<String>> = vec![None; detections.len()];
        let mut taken: Vec<String> = Vec::new();
        for (_, di, id) in pairs {
            if matched[di].is_some() || taken.contains(&id) {
                continue;
            }
            taken.push(id.clone());
            matched[di] = Some(id);
        }
        let time_s = |d: &Detection, pass_s: f64| pass_s - p.now_ms.saturating_sub(d.time_ms) as f64 / 1000.0;
        for (di, d) in detections.iter().enumerate() {
            if let Some(id) = matched[di].clone() {
                self.observe(&id, d, p, time_s(d, pass_s));
            }
        }
        // 2. Hop sets: narrow detections not matched to a confirmed fixed contact.
        let mut fed = vec![false; detections.len()];
        for (di, d) in detections.iter().enumerate() {
            if d.bandwidth_class != BwClass::Narrow {
                continue;
            }
            if matched[di]
                .as_ref()
                .and_then(|id| self.contacts.get(id))
                .is_some_and(|c| c.confirmed)
            {
                continue;
            }
            let Some(pi) = self
                .profiles
                .hop_profile(d.freq_hz, d.bandwidth_hz, d.bandwidth_class.as_str())
            else {
                continue;
            };
            fed[di] = true;
            let existing = self
                .contacts
                .values()
                .find(|c| c.plan == p.plan && c.hop_profile == Some(pi))
                .map(|c| c.id.clone());
            let id = match existing {
                Some(id) => id,
                None => {
                    let centre = self.profiles.profile[pi].centre_hz();
                    let (id, bucket) = self.free_id(self.bucket(centre));
                    let c = self.new_contact(id.clone(), bucket, p, Some(pi), obs_of(d));
                    self.contacts.insert(id.clone(), c);
                    id
                }
            };
            self.observe(&id, d, p, time_s(d, pass_s));
            if let Some(id) = &matched[di] {
                if let Some(c) = self.contacts.get_mut(id) {
                    c.fed_hop = true;
                }
            }
        }
        // 3. Unmatched detections create tentative fixed contacts.
        for (di, d) in detections.iter().enumerate() {
            if matched[di].is_some() {
                continue;
            }
            let (id, bucket) = self.free_id(self.bucket(d.freq_hz));
            let mut c = self.new_contact(id.clone(), bucket, p, None, obs_of(d));
            c.fed_hop = fed[di];
            self.contacts.insert(id.clone(), c);
            self.observe(&id, d, p, time_s(d, pass_s));
        }
        // Visits, then per-contact features and classification.
        let window = self.cfg.burst_window;
        let any_captured = !p.captured.is_empty();
        for c in self.contacts.values_mut().filter(|c| c.plan == p.plan) {
            let f = c.obs.freq_hz;
            let visited = if c.hop_profile.is_some() {
                any_captured
            } else {
                p.captured.iter().any(|(a, b)| f >= *a && f < *b)
            };
            if visited || c.present {
                c.visits.push_back(c.present);
                while c.visits.len() > window {
                    c.visits.pop_front();
                }
            }
        }
        let ids: Vec<String> = self
            .contacts
            .values()
            .filter(|c| c.plan == p.plan && c.present)
            .map(|c| c.id.clone())
            .collect();
        for id in &ids {
            self.classify(id);
        }
        self.confirm_and_update(p.now, Some(p.plan))
    }

    fn classify(&mut self, id: &str) {
        let min_hop = self.cfg.min_hop_hz;
        let Some(c) = self.contacts.get(id) else {
            return;
        };
        let (hops, n) = c.hops(min_hop);
        let h = if n >= 2 { hops as f64 / (n - 1) as f64 } else { 0.0 };
        let result = match c.hop_profile {
            Some(pi) => self.profiles.hop_class(pi, h),
            None => {
                let bw = c.median_bw();
                let class = BwClass::of(bw, &self.det);
                let x = Features {
                    freq_hz: c.obs.freq_hz,
                    bandwidth_hz: bw,
                    bandwidth_class: class.as_str(),
                    snr_db: c.obs.snr_db,
                    ofdm_score: c.obs.ofdm_score,
                    burstiness: c.burstiness(),
                    hopping: hop_hint(hops, n) == "hopping",
                    hop_rate_hz: self.hop_rate(c),
                };
                Some(self.profiles.classify(&x))
            }
        };
        let Some(result) = result else {
            return;
        };
        let Some(c) = self.contacts.get_mut(id) else {
            return;
        };
        let hop_set = c.hop_profile.is_some();
        match &c.class {
            None => c.class = Some(result),
            Some(cur) if cur.class_path == result.class_path || hop_set => {
                c.class = Some(result);
                c.pending = None;
            }
            Some(_) => {
                if c.pending.as_ref() == Some(&result.class_path) {
                    c.class = Some(result);
                    c.pending = None;
                } else {
                    c.pending = Some(result.class_path);
                }
            }
        }
    }

    fn hop_rate(&self, c: &Contact) -> f64 {
        let (hops, n) = c.hops(self.cfg.min_hop_hz);
        if n < 2 {
            return 0.0;
        }
        let (Some(first), Some(last)) = (c.samples.front(), c.samples.back()) else {
            return 0.0;
        };
        let span = (last.0 - first.0).max(self.cycle_period_s());
        if span <= 0.0 {
            return 0.0;
        }
        hops as f64 / span
    }

    fn ready_to_confirm(&self, c: &Contact) -> bool {
        match c.hop_profile {
            Some(_) => {
                let (cycles, freqs) = hop_set_evidence(&c.samples, self.cfg.min_hop_hz);
                cycles >= 2 && freqs >= 3
            }
            None => {
                if c.hit_cycles < self.cfg.min_hits_to_confirm {
                    return false;
                }
                if c.fed_hop {
                    let visits = c.visits.len();
                    visits >= HOP_WINDOW_MIN_VISITS
                        && c.present_visits() as f64 / visits as f64 >= self.cfg.hop_window_min_presence
                } else {
                    true
                }
            }
        }
    }

    /// Builds a contact's event data (without correlation, which needs every contact).
    fn data(&self, c: &Contact) -> RfContactData {
        let (hops, n) = c.hops(self.cfg.min_hop_hz);
        let hint = hop_hint(hops, n);
        let bw = c.median_bw();
        let class = BwClass::of(bw, &self.det);
        let hop_rate = self.hop_rate(c);
        let burstiness = c.burstiness();
        let cls = c.class.clone().unwrap_or_else(|| Class {
            class_path: vec!["Unknown".into()],
            pattern_hint: "unknown".into(),
            confidence: 0.2,
        });
        let q_snr = ((c.obs.snr_db - self.min_snr_db) / 20.0).clamp(0.0, 1.0);
        let q_persist = (c.present_visits() as f64 / 8.0).clamp(0.0, 1.0);
        let confidence = round2(cls.confidence * (0.6 + 0.2 * q_snr + 0.2 * q_persist));
        let mut d = RfContactData {
            id: c.id.clone(),
            freq_hz: c.obs.freq_hz.round(),
            bucket_hz: c.bucket_hz as f64,
            band: c.band.clone(),
            snr_db: round1(c.obs.snr_db),
            peak_db: round1(c.obs.peak_db),
            noise_floor_db: round1(c.obs.floor_db),
            bandwidth_class: class.as_str().to_owned(),
            confidence,
            features: RfFeatures {
                prominence_db: round1(c.obs.prominence_db),
                cluster_size: c.obs.cluster_size,
                pattern_hint: cls.pattern_hint.clone(),
                hop_hint: hint.to_owned(),
                bandwidth_est_hz: bw.round(),
                burstiness,
                hop_rate_hz: round2(hop_rate),
                control_score: control_score(class.as_str(), &c.band, hint == "hopping", hop_rate, burstiness),
                class_path: cls.class_path.clone(),
                classification_confidence: round2(cls.confidence),
                control_correlation: false,
            },
        };
        d.sanitize();
        d
    }

    fn role(d: &RfContactData) -> Option<bool> {
        if d.features.class_path.first().map(String::as_str) == Some("Control") {
            Some(true)
        } else if d.features.class_path.iter().any(|s| s == "Video") {
            Some(false)
        } else {
            None
        }
    }

    fn with_correlation(
        &self,
        c: &Contact,
        mut d: RfContactData,
        all: &BTreeMap<String, RfContactData>,
    ) -> RfContactData {
        let cc = &self.cfg.correlation;
        if !cc.enabled {
            return d;
        }
        let Some(role) = Self::role(&d) else {
            return d;
        };
        let window = (cc.window_ms as f64).max(2000.0 * self.cycle_period_s());
        d.features.control_correlation = self.contacts.values().any(|o| {
            o.confirmed
                && o.id != c.id
                && all.get(&o.id).and_then(Self::role) == Some(!role)
                && (o.last_seen_ms as f64 - c.last_seen_ms as f64).abs() <= window
        });
        d
    }

    fn material_change(&self, old: &RfContactData, new: &RfContactData) -> bool {
        let (o, n) = (&old.features, &new.features);
        let tol = self.tolerance(o.bandwidth_est_hz, n.bandwidth_est_hz);
        (new.snr_db - old.snr_db).abs() >= 3.0
            || (new.freq_hz - old.freq_hz).abs() >= tol / 2.0
            || o.class_path != n.class_path
            || o.pattern_hint != n.pattern_hint
            || old.bandwidth_class != new.bandwidth_class
            || o.hop_hint != n.hop_hint
            || o.control_correlation != n.control_correlation
            || (new.confidence - old.confidence).abs() >= 0.05
    }

    /// NEW for contacts that just qualified; throttled UPDATEs for the rest (§7.3, §7.4).
    /// NEW is considered only for contacts of `new_for_plan` (the pass just completed).
    fn confirm_and_update(&mut self, now: Instant, new_for_plan: Option<&str>) -> Vec<RfEvent> {
        let interval = Duration::from_secs_f64(self.cfg.update_interval_s);
        let keepalive = Duration::from_secs_f64(self.cfg.update_keepalive_s);
        let base: BTreeMap<String, RfContactData> =
            self.contacts.iter().map(|(k, c)| (k.clone(), self.data(c))).collect();
        let mut out = Vec::new();
        let ids: Vec<String> = self.contacts.keys().cloned().collect();
        for id in ids {
            let Some(c) = self.contacts.get(&id) else {
                continue;
            };
            let may_confirm = new_for_plan == Some(c.plan.as_str());
            let Some(d) = base.get(&id).cloned() else {
                continue;
            };
            let d = self.with_correlation(c, d, &base);
            let ready = may_confirm && !c.confirmed && self.ready_to_confirm(c);
            let kind = if ready {
                Some(kind::RF_CONTACT_NEW)
            } else if c.confirmed {
                let due = c
                    .last_event
                    .is_none_or(|t| now.saturating_duration_since(t) >= interval);
                let changed = c.last_emitted.as_ref().is_none_or(|o| self.material_change(o, &d));
                let keep = c.observed_since_event
                    && c.last_event
                        .is_none_or(|t| now.saturating_duration_since(t) >= keepalive);
                (due && (changed || keep)).then_some(kind::RF_CONTACT_UPDATE)
            } else {
                None
            };
            let Some(kind) = kind else {
                continue;
            };
            let ts = c.last_seen_ms;
            if let Some(c) = self.contacts.get_mut(&id) {
                c.confirmed = true;
                c.last_event = Some(now);
                c.last_emitted = Some(d.clone());
                c.observed_since_event = false;
            }
            out.push(RfEvent {
                kind,
                timestamp_ms: ts,
                data: d,
            });
        }
        out
    }

    /// The timer (§7.4): expiry, silent tentative removal, and pending UPDATEs.
    pub fn tick(&mut self, now: Instant, now_ms: u64) -> Vec<RfEvent> {
        let ttl = self.ttl();
        let tentative_ttl = self.tentative_ttl();
        let mut out = Vec::new();
        let expired: Vec<String> = self
            .contacts
            .values()
            .filter(|c| {
                let age = now.saturating_duration_since(c.last_seen);
                if c.confirmed {
                    age >= ttl
                } else {
                    age >= tentative_ttl
                }
            })
            .map(|c| c.id.clone())
            .collect();
        for id in expired {
            if let Some(c) = self.contacts.remove(&id) {
                if c.confirmed {
                    let data = c.last_emitted.clone().unwrap_or_else(|| self.data(&c));
                    out.push(RfEvent {
                        kind: kind::RF_CONTACT_LOST,
                        timestamp_ms: now_ms,
                        data,
                    });
                }
            }
        }
        out.extend(self.confirm_and_update(now, None));
        out
    }

    /// Contact age helper for tests and metrics.
    pub fn oldest_age(&self, now: Instant) -> Option<Duration> {
        self.contacts
            .values()
            .map(|c| now.saturating_duration_since(c.created))
            .max()
    }
}

fn obs_of(d: &Detection) -> Obs {
    Obs {
        freq_hz: d.freq_hz,
        snr_db: d.snr_db,
        peak_db: d.peak_db,
        floor_db: d.noise_floor_db,
        prominence_db: d.prominence_db,
        cluster_size: d.cluster_size,
        ofdm_score: d.ofdm_score,
    }
}

/// §7.5: with ≥ 4 samples, hopping when at least half the consecutive pairs hop.
fn hop_hint(hops: usize, samples: usize) -> &'static str {
    if samples < 4 {
        "none"
    } else if hops as f64 / (samples - 1) as f64 >= 0.5 {
        "hopping"
    } else {
        "fixed"
    }
}
