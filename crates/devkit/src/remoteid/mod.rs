//! RemoteID engine feed simulator (`remoteid-jsonl.md`, §4 the simulator
//! requirements).
//!
//! * [`RemoteIdGenerator`]: pure and seeded. It is driven by an injected clock
//!   (`advance(now_ms)`), mirrors the engine (frames at 1–10 Hz per drone, NEW at the
//!   2nd frame, UPDATE ≥ 1 s after the previous event or at once when lat/lon or
//!   operator_id changed, LOST when now − last_seen > 15 s evaluated after each frame
//!   and at each `advance`, TELEMETRY_UPDATE at most once a second and only after a
//!   frame) and flies smooth tracks (≤ 25 m/s, bounded turn rate and acceleration).
//!   Same config, seed and clock → same lines.
//! * [`run_remoteid_sim`] (in `writer.rs`): appends those lines to a file, flushed per line,
//!   until a shutdown future resolves, with the optional tailer faults of §4.
//!
//! Lines are in the current format by default (`{"type","timestamp_ms","source":
//! "remoteid","data":{…}}`); [`LineFormat`] selects the legacy variants.

use ndefender_contract::contact::{RemoteIdContactEvent, RemoteIdContactLost, RemoteIdFields};
use ndefender_contract::enums::{RemoteIdHealth, RemoteIdMode};
use ndefender_contract::events::{ReplayStateEvent, TelemetryUpdate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};
use std::f64::consts::PI;

mod writer;
pub use writer::{run_remoteid_sim, FileFaults, RemoteIdSimConfig, RotateMode};

/// Contact expiry of the engine (strictly more than this since the last frame).
pub const LOST_AFTER_MS: u64 = 15_000;
/// Fastest track speed.
pub const MAX_SPEED_M_S: f64 = 25.0;
const M_PER_DEG_LAT: f64 = 111_320.0;

/// Which envelope/data variant to write (§4 flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineFormat {
    /// Envelope key `timestamp` instead of `timestamp_ms` (legacy engines).
    pub legacy_timestamp: bool,
    /// TELEMETRY_UPDATE data `last_ts` instead of `last_update_ms`.
    pub legacy_last_ts: bool,
    /// Envelope time in seconds (float with ms precision).
    pub seconds: bool,
}

/// What the feed shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    /// Live traffic.
    Live,
    /// A replay: REPLAY_STATE `start`, then `frames` frames of recorded traffic whose
    /// contact lines carry the recorded (old) frame times, optional `progress` every
    /// `progress_every` frames, then `done`; silent afterwards.
    Replay {
        /// Replay speed (> 0).
        speed: f64,
        /// How old the recording is at the start (ms).
        recorded_age_ms: u64,
        /// Frames in the recording.
        frames: u64,
        /// Emit `progress` every N frames (None: never, like the engine's default).
        progress_every: Option<u64>,
    },
}

/// Settings of the pure generator.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// Drones in the air at once (replacements arrive some seconds after one leaves).
    pub drones: usize,
    /// Frames per second per drone (clamped to 1..=10).
    pub rate_hz: f64,
    pub seed: u64,
    /// Centre of the area (lat, lon degrees).
    pub origin: (f64, f64),
    /// Flight time of a drone before it leaves (ms, uniform in the range).
    pub lifetime_ms: (u64, u64),
    /// Probability that a drone is a "blip" heard for one frame only (LOST without NEW).
    pub blip_prob: f64,
    /// Test marker appended to every model text (e.g. `testdrone`); None: never.
    pub marker: Option<String>,
    pub scenario: Scenario,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            drones: 3,
            rate_hz: 2.0,
            seed: 1,
            origin: (23.0225, 72.5714),
            lifetime_ms: (60_000, 180_000),
            blip_prob: 0.0,
            marker: None,
            scenario: Scenario::Live,
        }
    }
}

/// Line types the feed carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RidEventKind {
    ContactNew,
    ContactUpdate,
    ContactLost,
    TelemetryUpdate,
    ReplayState,
}

impl RidEventKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            RidEventKind::ContactNew => "CONTACT_NEW",
            RidEventKind::ContactUpdate => "CONTACT_UPDATE",
            RidEventKind::ContactLost => "CONTACT_LOST",
            RidEventKind::TelemetryUpdate => "TELEMETRY_UPDATE",
            RidEventKind::ReplayState => "REPLAY_STATE",
        }
    }
}

/// One feed line before formatting.
#[derive(Debug, Clone, PartialEq)]
pub struct RidEvent {
    pub kind: RidEventKind,
    /// Envelope time, epoch ms.
    pub timestamp_ms: u64,
    /// The `data` object in the current format.
    pub data: Value,
}

impl RidEvent {
    /// The envelope as a JSON value, in the requested format.
    pub fn to_value(&self, fmt: LineFormat) -> Value {
        let mut env = Map::new();
        env.insert("type".into(), Value::from(self.kind.as_str()));
        let key = if fmt.legacy_timestamp {
            "timestamp"
        } else {
            "timestamp_ms"
        };
        let ts = if fmt.seconds {
            serde_json::Number::from_f64(self.timestamp_ms as f64 / 1000.0)
                .map_or(Value::from(self.timestamp_ms / 1000), Value::Number)
        } else {
            Value::from(self.timestamp_ms)
        };
        env.insert(key.into(), ts);
        env.insert("source".into(), Value::from("remoteid"));
        let mut data = self.data.clone();
        if fmt.legacy_last_ts && self.kind == RidEventKind::TelemetryUpdate {
            if let Value::Object(m) = &data {
                data = Value::Object(
                    m.iter()
                        .map(|(k, v)| {
                            let k = if k == "last_update_ms" {
                                "last_ts".to_owned()
                            } else {
                                k.clone()
                            };
                            (k, v.clone())
                        })
                        .collect(),
                );
            }
        }
        env.insert("data".into(), data);
        Value::Object(env)
    }

    /// Compact JSON, without a terminator.
    pub fn to_line(&self, fmt: LineFormat) -> String {
        self.to_value(fmt).to_string()
    }
}

#[derive(Debug, Clone)]
struct Drone {
    id: String,
    model: Option<String>,
    operator_id: Option<String>,
    /// Frames before the operator id is broadcast (0: from the start).
    operator_from_frame: u32,
    x: f64,
    y: f64,
    alt: f64,
    target_alt: f64,
    heading: f64,
    turn_rate: f64,
    speed: f64,
    target_speed: f64,
    max_speed: f64,
    next_retarget_at: u64,
    frame_interval_ms: u64,
    next_frame_at: u64,
    last_frame_at: u64,
    leave_at: u64,
    frames: u32,
    // Engine-side state.
    last_seen: u64,
    last_event_at: Option<u64>,
    last_latlon: Option<(f64, f64)>,
    last_operator: Option<String>,
    transmitting: bool,
}

/// The seeded feed generator.
#[derive(Debug)]
pub struct RemoteIdGenerator {
    cfg: GeneratorConfig,
    rng: StdRng,
    /// Wall clock of the start.
    start_ms: u64,
    /// Engine clock of the start (recorded time during a replay).
    engine_start_ms: u64,
    speed: f64,
    drones: Vec<Drone>,
    spawns: Vec<u64>,
    last_telemetry_at: Option<u64>,
    last_frame_at: Option<u64>,
    frames_total: u64,
    replay_started: bool,
    replay_done: bool,
    serial_counter: u32,
}

const MODELS: &[&str] = &[
    "DJI Mini 3",
    "DJI Mavic 3",
    "DJI Air 2S",
    "Autel EVO II",
    "Survey flight",
    "Roof inspection",
    "Skydio 2+",
    "Agri spraying",
];
const SERIAL_PREFIXES: &[&str] = &["1581F", "1668B", "1748D", "1596A"];
const COUNTRIES: &[&str] = &["GBR", "IND", "DEU", "FRA", "USA"];
const ALNUM: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";

fn round_to(v: f64, step: f64) -> f64 {
    (v / step).round() * step
}

fn round7(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
}

impl RemoteIdGenerator {
    /// A generator starting at wall clock `start_ms` (epoch ms).
    pub fn new(cfg: GeneratorConfig, start_ms: u64) -> Self {
        let (engine_start_ms, speed) = match &cfg.scenario {
            Scenario::Live => (start_ms, 1.0),
            Scenario::Replay {
                speed, recorded_age_ms, ..
            } => (
                start_ms.saturating_sub(*recorded_age_ms),
                if speed.is_finite() && *speed > 0.0 { *speed } else { 1.0 },
            ),
        };
        let mut g = Self {
            rng: StdRng::seed_from_u64(cfg.seed),
            start_ms,
            engine_start_ms,
            speed,
            drones: Vec::new(),
            spawns: Vec::new(),
            last_telemetry_at: None,
            last_frame_at: None,
            frames_total: 0,
            replay_started: false,
            replay_done: false,
            serial_counter: 0,
            cfg,
        };
        for i in 0..g.cfg.drones {
            // Staggered first appearances over the first two seconds.
            let at = engine_start_ms + (i as u64 * 700) % 2000 + g.rng.random_range(0..300);
            g.spawns.push(at);
        }
        g
    }

    fn engine_now(&self, wall_ms: u64) -> u64 {
        let elapsed = wall_ms.saturating_sub(self.start_ms) as f64 * self.speed;
        self.engine_start_ms + elapsed as u64
    }

    fn wall_of(&self, engine_ms: u64) -> u64 {
        let elapsed = engine_ms.saturating_sub(self.engine_start_ms) as f64 / self.speed;
        self.start_ms + elapsed.ceil() as u64
    }

    /// (total frames, progress period) of a replay.
    fn replay_frames(&self) -> Option<(u64, Option<u64>)> {
        match &self.cfg.scenario {
            Scenario::Replay {
                frames, progress_every, ..
            } => Some((*frames, *progress_every)),
            Scenario::Live => None,
        }
    }

    fn ident(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| ALNUM[self.rng.random_range(0..ALNUM.len())] as char)
            .collect()
    }

    fn spawn(&mut self, at: u64) {
        self.serial_counter += 1;
        let mac_only = self.rng.random_bool(1.0 / 6.0);
        let (id, model, operator_id) = if mac_only {
            let mac: Vec<String> = (0..6)
                .map(|i| {
                    let b: u8 = self.rng.random();
                    // Locally administered, unicast.
                    let b = if i == 0 { (b | 0x02) & 0xfe } else { b };
                    format!("{b:02x}")
                })
                .collect();
            (format!("rid:mac:{}", mac.join(":")), None, None)
        } else {
            let prefix = SERIAL_PREFIXES[self.rng.random_range(0..SERIAL_PREFIXES.len())];
            let serial = format!("{prefix}{}", self.ident(15));
            let mut model = MODELS[self.rng.random_range(0..MODELS.len())].to_owned();
            if let Some(m) = &self.cfg.marker {
                model = format!("{model} {m}");
            }
            let country = COUNTRIES[self.rng.random_range(0..COUNTRIES.len())];
            let op = format!("{country}-OP-{}", self.ident(7));
            (format!("rid:{serial}"), Some(model), Some(op))
        };
        let operator_from_frame = if operator_id.is_some() && self.rng.random_bool(0.3) {
            self.rng.random_range(3..8)
        } else {
            0
        };
        let rate = if self.cfg.rate_hz.is_finite() {
            self.cfg.rate_hz.clamp(1.0, 10.0)
        } else {
            1.0
        };
        let frame_interval_ms = (1000.0 / rate).round() as u64;
        let r = self.rng.random_range(200.0..1500.0);
        let bearing = self.rng.random_range(0.0..2.0 * PI);
        let max_speed = self.rng.random_range(6.0..MAX_SPEED_M_S);
        let blip = self.cfg.blip_prob > 0.0 && self.rng.random_bool(self.cfg.blip_prob.min(1.0));
        let (lo, hi) = self.cfg.lifetime_ms;
        let lifetime = if blip {
            0
        } else if hi > lo {
            self.rng.random_range(lo..hi)
        } else {
            lo
        };
        let alt = self.rng.random_range(20.0..120.0);
        let drone = Drone {
            id,
            model,
            operator_id,
            operator_from_frame,
            x: r * bearing.sin(),
            y: r * bearing.cos(),
            alt,
            target_alt: alt,
            // Roughly towards the centre.
            heading: bearing + PI + self.rng.random_range(-0.6..0.6),
            turn_rate: 0.0,
            speed: self.rng.random_range(0.0..max_speed),
            target_speed: self.rng.random_range(0.0..max_speed),
            max_speed,
            next_retarget_at: at + self.rng.random_range(5_000..15_000),
            frame_interval_ms,
            next_frame_at: at,
            last_frame_at: at,
            leave_at: at + lifetime,
            frames: 0,
            last_seen: at,
            last_event_at: None,
            last_latlon: None,
            last_operator: None,
            transmitting: true,
        };
        self.drones.push(drone);
    }

    fn fly(&mut self, idx: usize, t: u64) {
        let rng = &mut self.rng;
        let Some(d) = self.drones.get_mut(idx) else {
            return;
        };
        let dt = t.saturating_sub(d.last_frame_at) as f64 / 1000.0;
        d.last_frame_at = t;
        if dt <= 0.0 {
            return;
        }
        if t >= d.next_retarget_at {
            d.target_speed = if rng.random_bool(0.15) {
                0.0
            } else {
                rng.random_range(2.0..d.max_speed)
            };
            d.target_alt = rng.random_range(20.0..150.0);
            d.next_retarget_at = t + rng.random_range(5_000..15_000);
        }
        // Smooth heading: a bounded random walk of the turn rate, plus a pull back
        // towards the centre when far out.
        d.turn_rate += rng.random_range(-1.0..1.0) * 0.08 * dt.sqrt();
        let dist = d.x.hypot(d.y);
        if dist > 1500.0 {
            let to_centre = (-d.x).atan2(-d.y);
            let mut diff = to_centre - d.heading;
            while diff > PI {
                diff -= 2.0 * PI;
            }
            while diff < -PI {
                diff += 2.0 * PI;
            }
            d.turn_rate += diff.signum() * 0.05 * dt;
        }
        d.turn_rate = d.turn_rate.clamp(-0.3, 0.3);
        d.heading = (d.heading + d.turn_rate * dt).rem_euclid(2.0 * PI);
        let dv = (d.target_speed - d.speed).clamp(-2.0 * dt, 2.0 * dt);
        d.speed = (d.speed + dv).clamp(0.0, MAX_SPEED_M_S);
        let dz = (d.target_alt - d.alt).clamp(-3.0 * dt, 3.0 * dt);
        d.alt += dz;
        d.x += d.speed * d.heading.sin() * dt;
        d.y += d.speed * d.heading.cos() * dt;
    }

    fn latlon(&self, d: &Drone) -> Option<(f64, f64)> {
        let (lat0, lon0) = self.cfg.origin;
        let lat = round7((lat0 + d.y / M_PER_DEG_LAT).clamp(-90.0, 90.0));
        let coslat = lat0.to_radians().cos().abs().max(1e-6);
        let mut lon = lon0 + d.x / (M_PER_DEG_LAT * coslat);
        if lon > 180.0 {
            lon -= 360.0;
        } else if lon < -180.0 {
            lon += 360.0;
        }
        let lon = round7(lon);
        // The engine treats an exact 0.0 as missing.
        if lat == 0.0 || lon == 0.0 {
            None
        } else {
            Some((lat, lon))
        }
    }

    fn contact_data(&self, d: &Drone, t: u64, latlon: Option<(f64, f64)>, operator: Option<String>) -> Value {
        let ev = RemoteIdContactEvent::new(
            &d.id,
            t,
            RemoteIdFields {
                model: d.model.clone(),
                operator_id: operator,
                lat: latlon.map(|l| l.0),
                lon: latlon.map(|l| l.1),
                altitude_m: Some(round_to(d.alt, 0.5)),
                speed_m_s: Some(round_to(d.speed, 0.25)),
                ..Default::default()
            },
        );
        serde_json::to_value(ev).unwrap_or(Value::Null)
    }

    fn lost_event(d: &Drone, at: u64) -> RidEvent {
        let lost = RemoteIdContactLost::new(&d.id, d.last_seen);
        RidEvent {
            kind: RidEventKind::ContactLost,
            timestamp_ms: at,
            data: serde_json::to_value(lost).unwrap_or(Value::Null),
        }
    }

    /// Engine expiry check at engine time `t`.
    fn expire(&mut self, t: u64, out: &mut Vec<RidEvent>) {
        let mut i = 0;
        while i < self.drones.len() {
            if t.saturating_sub(self.drones[i].last_seen) > LOST_AFTER_MS {
                let d = self.drones.remove(i);
                out.push(Self::lost_event(&d, t));
            } else {
                i += 1;
            }
        }
    }

    fn frame(&mut self, idx: usize, t: u64, out: &mut Vec<RidEvent>) {
        self.fly(idx, t);
        let Some(d) = self.drones.get(idx) else {
            return;
        };
        let frames = d.frames + 1;
        let latlon = self.latlon(d);
        let operator = if frames > d.operator_from_frame {
            d.operator_id.clone()
        } else {
            None
        };
        // Sticky: the engine repeats the last known operator id.
        let operator = operator.or_else(|| d.last_operator.clone());
        let event = match frames {
            1 => None,
            2 => Some(RidEventKind::ContactNew),
            _ => {
                let due = d.last_event_at.is_none_or(|e| t.saturating_sub(e) >= 1000);
                let moved = latlon.is_some() && latlon != d.last_latlon;
                let op_changed = operator.is_some() && operator != d.last_operator;
                (due || moved || op_changed).then_some(RidEventKind::ContactUpdate)
            }
        };
        let data = event.map(|_| self.contact_data(d, t, latlon, operator.clone()));
        let Some(d) = self.drones.get_mut(idx) else {
            return;
        };
        d.frames = frames;
        d.last_seen = t;
        d.next_frame_at = t + d.frame_interval_ms;
        if let (Some(kind), Some(data)) = (event, data) {
            d.last_event_at = Some(t);
            if latlon.is_some() {
                d.last_latlon = latlon;
            }
            if operator.is_some() {
                d.last_operator = operator;
            }
            out.push(RidEvent {
                kind,
                timestamp_ms: t,
                data,
            });
        }
        self.frames_total += 1;
        self.last_frame_at = Some(t);
        if self.last_telemetry_at.is_none_or(|l| t.saturating_sub(l) >= 1000) {
            self.last_telemetry_at = Some(t);
            let replay = self.replay_frames().is_some();
            let tu = TelemetryUpdate {
                state: if replay {
                    RemoteIdHealth::Replay
                } else {
                    RemoteIdHealth::Ok
                },
                last_update_ms: t,
                contacts_active: self.drones.len() as u64,
                mode: if replay {
                    RemoteIdMode::Replay
                } else {
                    RemoteIdMode::Live
                },
            };
            out.push(RidEvent {
                kind: RidEventKind::TelemetryUpdate,
                timestamp_ms: t,
                data: serde_json::to_value(tu).unwrap_or(Value::Null),
            });
        }
        self.expire(t, out);
    }

    fn replay_state(&self, state: &str, position: u64, total: Option<u64>, wall: u64) -> RidEvent {
        let ev = ReplayStateEvent {
            state: state.to_owned(),
            speed: self.speed,
            position: Some(position),
            total,
            ts: None,
        };
        RidEvent {
            kind: RidEventKind::ReplayState,
            timestamp_ms: wall,
            data: serde_json::to_value(ev).unwrap_or(Value::Null),
        }
    }

    /// Everything the engine writes up to wall clock `now_ms`, in order.
    pub fn advance(&mut self, now_ms: u64) -> Vec<RidEvent> {
        let mut out = Vec::new();
        let replay = self.replay_frames();
        if let Some((total, _)) = replay {
            if self.replay_done {
                return out;
            }
            if !self.replay_started {
                self.replay_started = true;
                out.push(self.replay_state("start", 0, Some(total), self.start_ms));
            }
        }
        let now = self.engine_now(now_ms);
        loop {
            let spawn = self.spawns.iter().copied().enumerate().min_by_key(|(_, t)| *t);
            let frame = self
                .drones
                .iter()
                .enumerate()
                .filter(|(_, d)| d.transmitting)
                .map(|(i, d)| (i, d.next_frame_at))
                .min_by_key(|(_, t)| *t);
            match (spawn, frame) {
                (Some((si, st)), f) if st <= now && f.is_none_or(|(_, ft)| st <= ft) => {
                    self.spawns.swap_remove(si);
                    self.spawn(st);
                }
                (_, Some((fi, ft))) if ft <= now => {
                    let leaving = self.drones.get(fi).is_some_and(|d| ft > d.leave_at);
                    if leaving {
                        if let Some(d) = self.drones.get_mut(fi) {
                            d.transmitting = false;
                        }
                        let delay = self.rng.random_range(3_000..15_000);
                        self.spawns.push(ft + delay);
                        continue;
                    }
                    self.frame(fi, ft, &mut out);
                    if let Some((total, progress)) = replay {
                        let wall = self.wall_of(ft);
                        if progress.is_some_and(|p| p > 0 && self.frames_total.is_multiple_of(p))
                            && self.frames_total < total
                        {
                            out.push(self.replay_state("progress", self.frames_total, Some(total), wall));
                        }
                        if self.frames_total >= total {
                            self.replay_done = true;
                            out.push(self.replay_state("done", self.frames_total, Some(total), wall));
                            return out;
                        }
                    }
                }
                _ => break,
            }
        }
        self.expire(now, &mut out);
        out
    }

    /// Wall clock of the next thing [`Self::advance`] would do (a frame, an arrival
    /// or an expiry); None when nothing is left to do.
    pub fn next_wake(&self) -> Option<u64> {
        if self.replay_frames().is_some() && self.replay_done {
            return None;
        }
        if self.replay_frames().is_some() && !self.replay_started {
            return Some(self.start_ms);
        }
        let frames = self.drones.iter().filter(|d| d.transmitting).map(|d| d.next_frame_at);
        let expiries = self.drones.iter().map(|d| d.last_seen + LOST_AFTER_MS + 1);
        frames
            .chain(expiries)
            .chain(self.spawns.iter().copied())
            .min()
            .map(|t| self.wall_of(t))
    }

    /// Contacts the engine currently tracks (lost ones excluded).
    pub fn contacts_active(&self) -> usize {
        self.drones.len()
    }
}

/// Generates the lines of `duration_ms` of feed starting at `start_ms`, stepping the
/// injected clock by `step_ms` (handy for tests and demos).
pub fn generate_lines(
    cfg: GeneratorConfig,
    fmt: LineFormat,
    start_ms: u64,
    duration_ms: u64,
    step_ms: u64,
) -> Vec<String> {
    let mut g = RemoteIdGenerator::new(cfg, start_ms);
    let step = step_ms.max(1);
    let mut out = Vec::new();
    let mut t = start_ms;
    while t <= start_ms + duration_ms {
        out.extend(g.advance(t).iter().map(|e| e.to_line(fmt)));
        t += step;
    }
    out
}
