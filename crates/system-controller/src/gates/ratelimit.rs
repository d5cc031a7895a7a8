//! Cooldowns and per-class rate limits (system-controller §6.4 steps 7–8):
//! sliding 60 s windows per client address. Nothing is consumed unless every
//! check passes, so a refused request never costs a token.

use std::collections::{HashMap, VecDeque};
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

#[derive(Default)]
struct Book {
    windows: HashMap<(Class, IpAddr), VecDeque<Instant>>,
    cooldowns: HashMap<String, Instant>,
}

pub struct RateLimiter {
    limits: Limits,
    book: Mutex<Book>,
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
            limits,
            book: Mutex::new(Book::default()),
        }
    }

    /// Admits one request of `class` from `client`, with an optional cooldown
    /// (`key`, length) that must have expired. Consumes both only on success.
    pub fn admit(
        &self,
        class: Class,
        client: IpAddr,
        cooldown: Option<(&str, Duration)>,
        now: Instant,
    ) -> Result<(), RetryAfter> {
        let mut book = self.book.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((key, len)) = cooldown {
            if let Some(last) = book.cooldowns.get(key) {
                let since = now.saturating_duration_since(*last);
                if since < len {
                    return Err(RetryAfter(ceil_secs(len - since)));
                }
            }
        }
        let limit = self.limits.per_minute.get(&class).copied().unwrap_or(u32::MAX) as usize;
        let window = book.windows.entry((class, client)).or_default();
        while window
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            window.pop_front();
        }
        if window.len() >= limit {
            let oldest = window.front().copied().unwrap_or(now);
            return Err(RetryAfter(ceil_secs(
                WINDOW.saturating_sub(now.saturating_duration_since(oldest)),
            )));
        }
        window.push_back(now);
        if let Some((key, _)) = cooldown {
            book.cooldowns.insert(key.to_owned(), now);
        }
        Ok(())
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
}
