//! Cooldowns and per-class rate limits (PROTOCOL.md §12.2, the last two gates before the
//! backend): sliding 60 s windows per client address. Nothing is consumed unless every
//! check passes, so a refused request never costs a token.

use ndefender_service::ratelimit::SlidingWindow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Network,
    Audio,
    Alert,
    Service,
    Dangerous,
}

impl Class {
    pub const fn name(self) -> &'static str {
        match self {
            Class::Network => "network",
            Class::Audio => "audio",
            Class::Alert => "alert",
            Class::Service => "service",
            Class::Dangerous => "dangerous",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub per_minute: HashMap<Class, u32>,
}

/// Cooldowns by key (a unit name or `power`). The keys are unit names that passed the
/// allow-list, so the map stays small; entries whose cooldown is over are pruned anyway.
#[derive(Default)]
struct Cooldowns(HashMap<String, (Instant, Duration)>);

impl Cooldowns {
    /// Entries kept before expired ones are pruned.
    const PRUNE_ABOVE: usize = 256;

    fn insert(&mut self, key: &str, now: Instant, len: Duration) {
        if self.0.len() >= Self::PRUNE_ABOVE {
            self.0.retain(|_, (at, len)| now.saturating_duration_since(*at) < *len);
        }
        self.0.insert(key.to_owned(), (now, len));
    }
}

/// Per-class sliding windows (the shared `SlidingWindow`, which bounds the number of client
/// addresses it tracks and forgets idle ones) plus the per-key cooldowns.
pub struct RateLimiter {
    windows: HashMap<Class, SlidingWindow>,
    cooldowns: Mutex<Cooldowns>,
}

/// A refused admission: whole seconds until a retry can succeed (≥ 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

impl RateLimiter {
    pub fn new(limits: Limits) -> Self {
        Self {
            windows: limits
                .per_minute
                .iter()
                .map(|(class, n)| (*class, SlidingWindow::new(*n as usize, WINDOW)))
                .collect(),
            cooldowns: Mutex::new(Cooldowns::default()),
        }
    }

    /// Admits one request of `class` from `client`, with an optional cooldown
    /// (`key`, length) that must have expired. Consumes both only on success: the cooldown is
    /// checked first without consuming, the window counts the request only if it fits, and
    /// the cooldown starts only then (all under the cooldown lock, so two requests cannot
    /// both pass the same cooldown). A class without a configured limit is not limited.
    pub fn admit(
        &self,
        class: Class,
        client: IpAddr,
        cooldown: Option<(&str, Duration)>,
        now: Instant,
    ) -> Result<(), RetryAfter> {
        let mut cooldowns = self.cooldowns.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((key, len)) = cooldown {
            if let Some((last, _)) = cooldowns.0.get(key) {
                let since = now.saturating_duration_since(*last);
                if since < len {
                    return Err(RetryAfter(ceil_secs(len - since)));
                }
            }
        }
        if let Some(window) = self.windows.get(&class) {
            window.check(client, now).map_err(RetryAfter)?;
        }
        if let Some((key, len)) = cooldown {
            cooldowns.insert(key, now, len);
        }
        Ok(())
    }

    /// Client addresses tracked by `class`'s window (bounded by the shared limiter).
    pub fn tracked(&self, class: Class) -> usize {
        self.windows.get(&class).map_or(0, SlidingWindow::tracked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> RateLimiter {
        RateLimiter::new(Limits {
            per_minute: [(Class::Dangerous, 2), (Class::Service, 10)].into_iter().collect(),
        })
    }

    #[test]
    fn sliding_window_per_client() {
        let l = limiter();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        assert!(l.admit(Class::Dangerous, a, None, t0).is_ok());
        assert!(l.admit(Class::Dangerous, a, None, t0 + Duration::from_secs(10)).is_ok());
        assert_eq!(
            l.admit(Class::Dangerous, a, None, t0 + Duration::from_secs(20)),
            Err(RetryAfter(40))
        );
        assert!(l.admit(Class::Dangerous, b, None, t0 + Duration::from_secs(20)).is_ok());
        assert!(l.admit(Class::Dangerous, a, None, t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn cooldown_per_key_and_nothing_consumed_on_refusal() {
        let l = limiter();
        let a: IpAddr = [10, 0, 0, 1].into();
        let t0 = Instant::now();
        let cd = Duration::from_secs(10);
        assert!(l.admit(Class::Service, a, Some(("gpsd.service", cd)), t0).is_ok());
        assert_eq!(
            l.admit(
                Class::Service,
                a,
                Some(("gpsd.service", cd)),
                t0 + Duration::from_millis(2500)
            ),
            Err(RetryAfter(8))
        );
        assert!(l.admit(Class::Service, a, Some(("other.service", cd)), t0).is_ok());
        // 2 consumed out of 10; 8 more fit
        for i in 0..8 {
            let key = format!("u{i}");
            assert!(l.admit(Class::Service, a, Some((&key, cd)), t0).is_ok());
        }
        assert!(l.admit(Class::Service, a, None, t0).is_err());
    }

    #[test]
    fn client_maps_are_bounded() {
        let l = limiter();
        let t0 = Instant::now();
        let n = ndefender_service::ratelimit::MAX_TRACKED as u32 + 50;
        for i in 0..n {
            let ip: IpAddr = std::net::Ipv4Addr::from(i).into();
            let _ = l.admit(Class::Service, ip, None, t0 + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(l.tracked(Class::Service), ndefender_service::ratelimit::MAX_TRACKED);
    }
}
