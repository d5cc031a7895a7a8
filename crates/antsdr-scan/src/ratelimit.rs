//! Per-client token buckets for commands (antsdr-scan §10): `commands` for config/reload,
//! run/*, sweep/*, gain/set; `dangerous` for device/*, which do not consume the other.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    Commands,
    Dangerous,
}

impl Bucket {
    pub fn label(self) -> &'static str {
        match self {
            Bucket::Commands => "commands",
            Bucket::Dangerous => "dangerous",
        }
    }
}

#[derive(Debug)]
struct Tokens {
    left: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    per_minute: HashMap<Bucket, u32>,
    buckets: Mutex<HashMap<(IpAddr, Bucket), Tokens>>,
    pub limited: Mutex<HashMap<Bucket, u64>>,
}

/// Clients idle this long are forgotten so the map stays bounded.
const FORGET_AFTER_S: f64 = 600.0;

impl RateLimiter {
    pub fn new(commands_per_minute: u32, dangerous_per_minute: u32) -> Self {
        let mut per_minute = HashMap::new();
        per_minute.insert(Bucket::Commands, commands_per_minute);
        per_minute.insert(Bucket::Dangerous, dangerous_per_minute);
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
            limited: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token; `Err(retry_after_s)` when the bucket is empty.
    pub fn take(&self, ip: IpAddr, bucket: Bucket, now: Instant) -> Result<(), u64> {
        let cap = self.per_minute.get(&bucket).copied().unwrap_or(0) as f64;
        if cap <= 0.0 {
            return Err(60);
        }
        let rate = cap / 60.0;
        let mut map = match self.buckets.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.len() > 4096 {
            map.retain(|_, t| now.saturating_duration_since(t.at).as_secs_f64() < FORGET_AFTER_S);
        }
        let t = map.entry((ip, bucket)).or_insert(Tokens { left: cap, at: now });
        let elapsed = now.saturating_duration_since(t.at).as_secs_f64();
        t.left = (t.left + elapsed * rate).min(cap);
        t.at = now;
        if t.left >= 1.0 {
            t.left -= 1.0;
            Ok(())
        } else {
            if let Ok(mut l) = self.limited.lock() {
                *l.entry(bucket).or_insert(0) += 1;
            }
            Err(((1.0 - t.left) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn eleventh_command_waits_and_buckets_are_separate() {
        let rl = RateLimiter::new(10, 2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(rl.take(ip, Bucket::Commands, t0).is_ok());
        }
        assert_eq!(rl.take(ip, Bucket::Commands, t0), Err(6));
        assert!(rl.take(ip, Bucket::Dangerous, t0).is_ok());
        assert!(rl.take(ip, Bucket::Dangerous, t0).is_ok());
        assert!(rl.take(ip, Bucket::Dangerous, t0).is_err());
        assert!(rl.take(ip, Bucket::Commands, t0 + Duration::from_secs(6)).is_ok());
        let other: IpAddr = [10, 0, 0, 1].into();
        assert!(rl.take(other, Bucket::Commands, t0).is_ok());
    }
}
