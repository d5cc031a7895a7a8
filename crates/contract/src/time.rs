//! Tolerant time input (PROTOCOL.md §3) and the clock abstraction domain logic is written against.

use serde_json::{Map, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Values below this are seconds, not milliseconds.
const SECONDS_CUTOFF: f64 = 1e11;

/// Candidate time keys in priority order (PROTOCOL.md §3).
pub const TIME_KEYS: [&str; 3] = ["timestamp_ms", "ts_ms", "timestamp"];

/// Normalises one candidate value to epoch ms: a JSON number or a decimal string,
/// > 0 and finite; below 1e11 it is seconds (×1000, truncated).
pub fn normalize_time_value(v: &Value) -> Option<u64> {
    let f = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !f.is_finite() || f <= 0.0 {
        return None;
    }
    let ms = if f < SECONDS_CUTOFF { f * 1000.0 } else { f };
    // 2^53 bounds every value a JSON consumer can hold exactly.
    if ms >= 9_007_199_254_740_992.0 {
        return None;
    }
    Some(ms.trunc() as u64)
}

/// First valid time among `timestamp_ms`, `ts_ms`, `timestamp` in `obj`.
pub fn pick_time(obj: &Map<String, Value>) -> Option<u64> {
    TIME_KEYS
        .iter()
        .filter_map(|k| obj.get(*k))
        .find_map(normalize_time_value)
}

/// Wall-clock epoch milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The two clocks domain logic needs: wall time for emitted timestamps, monotonic
/// time for intervals and TTLs (PROTOCOL.md §3). Injected so timers are tested
/// deterministically.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
    fn monotonic(&self) -> Instant;
}

/// The real clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
    fn monotonic(&self) -> Instant {
        Instant::now()
    }
}

/// A clock tests move by hand. Wall time is kept in nanoseconds so that many
/// sub-millisecond steps keep it in step with the monotonic clock.
#[derive(Debug)]
pub struct ManualClock {
    inner: std::sync::Mutex<(u128, Instant)>,
}

impl ManualClock {
    pub fn new(start_ms: u64) -> Self {
        Self {
            inner: std::sync::Mutex::new((u128::from(start_ms) * 1_000_000, Instant::now())),
        }
    }
    /// Moves both clocks forward.
    pub fn advance(&self, d: Duration) {
        if let Ok(mut g) = self.inner.lock() {
            g.0 += d.as_nanos();
            g.1 += d;
        }
    }
    /// Steps only the wall clock (NTP step), leaving monotonic time alone.
    pub fn set_wall_ms(&self, ms: u64) {
        if let Ok(mut g) = self.inner.lock() {
            g.0 = u128::from(ms) * 1_000_000;
        }
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.inner.lock().map(|g| (g.0 / 1_000_000) as u64).unwrap_or(0)
    }
    fn monotonic(&self) -> Instant {
        self.inner.lock().map(|g| g.1).unwrap_or_else(|_| Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalisation() {
        assert_eq!(normalize_time_value(&json!(1772140777119u64)), Some(1772140777119));
        assert_eq!(normalize_time_value(&json!(1772140777.119)), Some(1772140777119));
        assert_eq!(normalize_time_value(&json!("1772140777")), Some(1772140777000));
        assert_eq!(normalize_time_value(&json!(0)), None);
        assert_eq!(normalize_time_value(&json!(-5)), None);
        assert_eq!(normalize_time_value(&json!("abc")), None);
        assert_eq!(normalize_time_value(&json!(true)), None);
        assert_eq!(normalize_time_value(&json!(1e300)), None);
    }

    #[test]
    fn priority_and_skip_invalid() {
        let o = json!({"timestamp": 1772140777, "ts_ms": 1772140777500u64, "timestamp_ms": "x"});
        let Value::Object(m) = o else { return };
        // timestamp_ms invalid → ts_ms wins over timestamp
        assert_eq!(pick_time(&m), Some(1772140777500));
    }

    #[test]
    fn manual_clock() {
        let c = ManualClock::new(1000);
        let t0 = c.monotonic();
        c.advance(Duration::from_secs(2));
        assert_eq!(c.now_ms(), 3000);
        assert_eq!(c.monotonic() - t0, Duration::from_secs(2));
        // sub-millisecond steps add up on both clocks
        for _ in 0..1000 {
            c.advance(Duration::from_micros(3957));
        }
        assert_eq!(c.now_ms(), 3000 + 3957);
        assert_eq!((c.monotonic() - t0).as_millis(), 2000 + 3957);
    }
}
