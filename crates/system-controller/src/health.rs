//! Per-probe health (system-controller §2): consecutive failures, the
//! ok → degraded → offline ladder and the LOG_EVENT each transition earns.

use std::time::{Duration, Instant};

/// The seven probes `GET /health` reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Probe {
    System,
    Services,
    Network,
    Bluetooth,
    Power,
    Gps,
    Audio,
}

impl Probe {
    pub const ALL: [Probe; 7] = [
        Probe::System,
        Probe::Services,
        Probe::Network,
        Probe::Bluetooth,
        Probe::Power,
        Probe::Gps,
        Probe::Audio,
    ];
    pub const fn name(self) -> &'static str {
        match self {
            Probe::System => "system",
            Probe::Services => "services",
            Probe::Network => "network",
            Probe::Bluetooth => "bluetooth",
            Probe::Power => "power",
            Probe::Gps => "gps",
            Probe::Audio => "audio",
        }
    }
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Pending,
    Ok,
    Degraded,
    Offline,
    Disabled,
}

impl Health {
    pub const fn as_str(self) -> &'static str {
        match self {
            Health::Pending => "pending",
            Health::Ok => "ok",
            Health::Degraded => "degraded",
            Health::Offline => "offline",
            Health::Disabled => "disabled",
        }
    }
}

/// What a transition asks the caller to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub to: Health,
    pub code: String,
}

#[derive(Debug, Clone)]
pub struct Tracker {
    pub health: Health,
    pub failures: u32,
    last_log: Option<Instant>,
    /// Transitions not published because they came too close together.
    pub suppressed: u64,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            health: Health::Pending,
            failures: 0,
            last_log: None,
            suppressed: 0,
        }
    }
}

impl Tracker {
    pub fn disabled() -> Self {
        Self {
            health: Health::Disabled,
            ..Self::default()
        }
    }

    /// Counts one failure; returns true once the section must go offline.
    pub fn fail(&mut self, offline_after: u32) -> bool {
        self.failures = self.failures.saturating_add(1);
        self.failures >= offline_after
    }

    pub fn succeed(&mut self) {
        self.failures = 0;
    }

    /// Moves to `to`. A change away from pending is a transition only when it is
    /// bad news (a healthy first result is not worth a log line). Returns the
    /// transition to publish, or None when there is none or it is rate limited.
    pub fn settle(&mut self, to: Health, code: &str, now: Instant, min_interval: Duration) -> Option<Transition> {
        let from = self.health;
        if from == to || to == Health::Pending {
            return None;
        }
        self.health = to;
        if from == Health::Pending && to == Health::Ok {
            return None;
        }
        if self.last_log.is_some_and(|t| now.duration_since(t) < min_interval) {
            self.suppressed += 1;
            return None;
        }
        self.last_log = Some(now);
        Some(Transition {
            to,
            code: code.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_and_rate_limit() {
        let mut t = Tracker::default();
        let now = Instant::now();
        let gap = Duration::from_secs(10);
        assert!(t.settle(Health::Ok, "", now, gap).is_none());
        assert!(!t.fail(3));
        let tr = t.settle(Health::Degraded, "x", now, gap);
        assert_eq!(tr.map(|t| t.to), Some(Health::Degraded));
        assert!(!t.fail(3));
        assert!(t.fail(3));
        // too close to the previous transition: counted only
        assert!(t
            .settle(Health::Offline, "x", now + Duration::from_secs(1), gap)
            .is_none());
        assert_eq!(t.suppressed, 1);
        t.succeed();
        let tr = t.settle(Health::Ok, "recovered", now + Duration::from_secs(11), gap);
        assert_eq!(tr.map(|t| t.to), Some(Health::Ok));
    }
}
