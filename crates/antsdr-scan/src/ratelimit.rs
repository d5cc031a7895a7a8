//! Per-client token buckets for commands (PROTOCOL.md §13): `commands` for config/reload,
//! run/*, sweep/*, gain/set; `dangerous` for device/*, which do not consume the other. The
//! bucket itself is `ndefender_service::ratelimit::TokenBucket`.

use ndefender_service::ratelimit::TokenBucket;
use std::net::IpAddr;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    Commands,
    Dangerous,
}

impl Bucket {
    pub const ALL: [Bucket; 2] = [Bucket::Commands, Bucket::Dangerous];

    pub fn label(self) -> &'static str {
        match self {
            Bucket::Commands => "commands",
            Bucket::Dangerous => "dangerous",
        }
    }
}

#[derive(Debug)]
pub struct RateLimiter {
    commands: TokenBucket,
    dangerous: TokenBucket,
}

impl RateLimiter {
    pub fn new(commands_per_minute: u32, dangerous_per_minute: u32) -> Self {
        Self {
            commands: TokenBucket::per_minute(commands_per_minute),
            dangerous: TokenBucket::per_minute(dangerous_per_minute),
        }
    }

    fn bucket(&self, bucket: Bucket) -> &TokenBucket {
        match bucket {
            Bucket::Commands => &self.commands,
            Bucket::Dangerous => &self.dangerous,
        }
    }

    /// Takes one token; `Err(retry_after_s)` when the bucket is empty.
    pub fn take(&self, ip: IpAddr, bucket: Bucket, now: Instant) -> Result<(), u64> {
        self.bucket(bucket).take(ip, now)
    }

    /// Requests refused so far in `bucket`.
    pub fn limited(&self, bucket: Bucket) -> u64 {
        self.bucket(bucket).limited()
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
