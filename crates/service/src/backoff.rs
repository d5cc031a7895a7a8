//! The one reconnect backoff every retrying input uses (ESP32 link, upstream followers, the
//! scanner's source, the system bus, gpsd): a delay that starts at `min`, doubles after each
//! failure up to `max`, and goes back to `min` once the input works again.
//!
//! It only computes delays; the caller waits them out on its own clock (a tokio sleep, or a
//! deadline on the injected `Clock`), so the policy is testable without time passing. Optional
//! jitter spreads reconnects of many clients of one restarted server: each delay is scaled by a
//! random factor in `1 ± jitter`.

use rand::Rng;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    jitter: f64,
}

impl Backoff {
    /// Starts at `min`, doubles up to `max`, no jitter.
    pub fn new(min: Duration, max: Duration) -> Self {
        let min = min.min(max);
        Self {
            min,
            max,
            current: min,
            jitter: 0.0,
        }
    }

    /// Scales every delay by a random factor in `1 ± fraction` (clamped to 0..1).
    #[must_use]
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The delay to wait now, jittered, without moving to the next step.
    pub fn delay(&self) -> Duration {
        if self.jitter == 0.0 {
            return self.current;
        }
        let f: f64 = rand::rng().random_range(1.0 - self.jitter..=1.0 + self.jitter);
        self.current.mul_f64(f)
    }

    /// Doubles the delay for the next failure, up to `max`.
    pub fn grow(&mut self) {
        self.current = self.current.saturating_mul(2).min(self.max);
    }

    /// The delay to wait now; the one after it is twice as long (up to `max`).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.delay();
        self.grow();
        d
    }

    /// When to retry, on whatever clock `now` comes from; then grows like [`Self::next_delay`].
    pub fn retry_at(&mut self, now: Instant) -> Instant {
        now + self.next_delay()
    }

    /// The input works again: the next failure waits `min`.
    pub fn reset(&mut self) {
        self.current = self.min;
    }

    /// The un-jittered delay of the next wait (for logs).
    pub fn current(&self) -> Duration {
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(S(1), S(10));
        let seen: Vec<u64> = (0..6).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(seen, [1, 2, 4, 8, 10, 10]);
        b.reset();
        assert_eq!(b.next_delay(), S(1));
        assert_eq!(b.current(), S(2));
    }

    #[test]
    fn delay_does_not_advance_and_retry_at_uses_the_given_clock() {
        let mut b = Backoff::new(S(1), S(30));
        assert_eq!(b.delay(), S(1));
        assert_eq!(b.delay(), S(1));
        let t0 = Instant::now();
        assert_eq!(b.retry_at(t0), t0 + S(1));
        assert_eq!(b.retry_at(t0), t0 + S(2));
    }

    #[test]
    fn jitter_stays_within_its_band() {
        let mut b = Backoff::new(S(1), S(10)).with_jitter(0.2);
        for step in [1.0, 2.0, 4.0, 8.0, 10.0, 10.0] {
            let d = b.next_delay().as_secs_f64();
            assert!((0.8 * step..=1.2 * step).contains(&d), "{d} for step {step}");
        }
        let distinct: std::collections::HashSet<u128> = (0..20).map(|_| b.delay().as_nanos()).collect();
        assert!(distinct.len() > 1, "jitter varies the delay");
    }
}
