//! Per-client sliding-window rate limits (aggregator §13, system-controller §6.4).
//!
//! The specs define the window precisely: N requests in any 60 s, and a 429's
//! `Retry-After` is the whole seconds until the oldest counted request leaves the
//! window. Token-bucket crates (GCRA) answer a different question, so this keeps a
//! small log of instants per client, bounded in clients (LRU) and idle time.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many client addresses are tracked; the least recently used goes first.
pub const MAX_TRACKED: usize = 4096;
/// Addresses idle this long are forgotten.
pub const IDLE_FORGET: Duration = Duration::from_secs(600);

#[derive(Debug)]
struct Entry {
    hits: VecDeque<Instant>,
    last: Instant,
}

/// One named bucket (e.g. `cmd`, `dng`, `network`): `limit` per `window` per client.
#[derive(Debug)]
pub struct SlidingWindow {
    limit: usize,
    window: Duration,
    clients: Mutex<HashMap<IpAddr, Entry>>,
    limited: std::sync::atomic::AtomicU64,
}

impl SlidingWindow {
    pub fn per_minute(limit: u32) -> Self {
        Self::new(limit as usize, Duration::from_secs(60))
    }

    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit,
            window,
            clients: Mutex::new(HashMap::new()),
            limited: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Requests refused so far (`ndefender_rate_limited_total`).
    pub fn limited(&self) -> u64 {
        self.limited.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts a request at `now` if it fits; otherwise returns the whole seconds
    /// (≥ 1) until it would. Call only after every other gate passed, so refused
    /// requests cost nothing.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if clients.len() >= MAX_TRACKED && !clients.contains_key(&client) {
            clients.retain(|_, e| now.saturating_duration_since(e.last) < IDLE_FORGET);
            if clients.len() >= MAX_TRACKED {
                if let Some(oldest) = clients.iter().min_by_key(|(_, e)| e.last).map(|(k, _)| *k) {
                    clients.remove(&oldest);
                }
            }
        }
        let e = clients.entry(client).or_insert_with(|| Entry {
            hits: VecDeque::new(),
            last: now,
        });
        e.last = now;
        while e
            .hits
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            e.hits.pop_front();
        }
        if e.hits.len() < self.limit {
            e.hits.push_back(now);
            return Ok(());
        }
        self.limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let oldest = e.hits.front().copied().unwrap_or(now);
        let left = self.window.saturating_sub(now.saturating_duration_since(oldest));
        Err(left.as_secs_f64().ceil().max(1.0) as u64)
    }

    /// Whether a request at `now` would fit, without counting it.
    pub fn peek(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = clients.get(&client) else {
            return Ok(());
        };
        let live: Vec<&Instant> = e
            .hits
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < self.window)
            .collect();
        if live.len() < self.limit {
            return Ok(());
        }
        let left = live
            .first()
            .map(|t| self.window.saturating_sub(now.saturating_duration_since(**t)))
            .unwrap_or_default();
        Err(left.as_secs_f64().ceil().max(1.0) as u64)
    }

    pub fn tracked(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_and_retry_after() {
        let w = SlidingWindow::per_minute(2);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        assert_eq!(w.check(ip, t0), Ok(()));
        assert_eq!(w.check(ip, t0 + Duration::from_secs(10)), Ok(()));
        assert_eq!(w.check(ip, t0 + Duration::from_secs(20)), Err(40));
        assert_eq!(w.check(other, t0 + Duration::from_secs(20)), Ok(()), "per client");
        assert_eq!(w.check(ip, t0 + Duration::from_millis(59_500)), Err(1));
        assert_eq!(
            w.check(ip, t0 + Duration::from_secs(60)),
            Ok(()),
            "oldest left the window"
        );
    }

    #[test]
    fn bounded_clients() {
        let w = SlidingWindow::per_minute(1);
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 10) {
            let ip: IpAddr = std::net::Ipv4Addr::from(i).into();
            let _ = w.check(ip, t0 + Duration::from_millis(i as u64));
        }
        assert!(w.tracked() <= MAX_TRACKED);
    }
}
