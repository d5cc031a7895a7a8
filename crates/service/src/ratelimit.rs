//! Per-client rate limits, the two kinds the daemons use (PROTOCOL.md §11.3, §12.2, §13).
//!
//! - [`SlidingWindow`]: N requests in any 60 s, and a 429's `Retry-After` is the whole seconds
//!   until the oldest counted request leaves the window (aggregator and system controller).
//!   Token-bucket crates (GCRA) answer a different question, so this keeps a small log of
//!   instants per client.
//! - [`TokenBucket`]: N tokens refilled continuously over a minute (the scanner).
//!
//! Both keep their per-client state in one [`Clients`] map, bounded in clients (least recently
//! used goes first) and forgetting idle addresses, so no flood of addresses grows it.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many client addresses are tracked; the least recently used goes first.
pub const MAX_TRACKED: usize = 4096;
/// Addresses idle this long are forgotten.
pub const IDLE_FORGET: Duration = Duration::from_secs(600);

/// Per-client state `E`, bounded to [`MAX_TRACKED`] addresses with idle ones forgotten.
#[derive(Debug)]
pub struct Clients<E> {
    map: HashMap<IpAddr, (Instant, E)>,
}

impl<E> Default for Clients<E> {
    fn default() -> Self {
        Self { map: HashMap::new() }
    }
}

impl<E> Clients<E> {
    /// The entry of `client`, created with `new` if absent; marks it used at `now`. Makes room
    /// first when the map is full: idle addresses go, then the least recently used one.
    pub fn entry(&mut self, client: IpAddr, now: Instant, new: impl FnOnce() -> E) -> &mut E {
        if self.map.len() >= MAX_TRACKED && !self.map.contains_key(&client) {
            self.map
                .retain(|_, (last, _)| now.saturating_duration_since(*last) < IDLE_FORGET);
            if self.map.len() >= MAX_TRACKED {
                if let Some(oldest) = self.map.iter().min_by_key(|(_, (l, _))| *l).map(|(k, _)| *k) {
                    self.map.remove(&oldest);
                }
            }
        }
        let slot = self.map.entry(client).or_insert_with(|| (now, new()));
        slot.0 = now;
        &mut slot.1
    }

    /// The entry of `client` if tracked, without marking it used.
    pub fn get(&self, client: &IpAddr) -> Option<&E> {
        self.map.get(client).map(|(_, e)| e)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// One named bucket (e.g. `cmd`, `dng`, `network`): `limit` per `window` per client.
#[derive(Debug)]
pub struct SlidingWindow {
    limit: usize,
    window: Duration,
    clients: Mutex<Clients<VecDeque<Instant>>>,
    limited: AtomicU64,
}

impl SlidingWindow {
    pub fn per_minute(limit: u32) -> Self {
        Self::new(limit as usize, Duration::from_secs(60))
    }

    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit,
            window,
            clients: Mutex::new(Clients::default()),
            limited: AtomicU64::new(0),
        }
    }

    /// Requests refused so far (`ndefender_rate_limited_total`).
    pub fn limited(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }

    /// Counts a request at `now` if it fits; otherwise returns the whole seconds
    /// (≥ 1) until it would. Call only after every other gate passed, so refused
    /// requests cost nothing.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let hits = clients.entry(client, now, VecDeque::new);
        while hits
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            hits.pop_front();
        }
        if hits.len() < self.limit {
            hits.push_back(now);
            return Ok(());
        }
        self.limited.fetch_add(1, Ordering::Relaxed);
        let oldest = hits.front().copied().unwrap_or(now);
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

#[derive(Debug)]
struct Tokens {
    left: f64,
    at: Instant,
}

/// `per_minute` tokens per client, refilled continuously; a full bucket allows a burst of
/// `per_minute`. A limit of 0 refuses everything with a retry of 60 s.
#[derive(Debug)]
pub struct TokenBucket {
    per_minute: u32,
    clients: Mutex<Clients<Tokens>>,
    limited: AtomicU64,
}

impl TokenBucket {
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            per_minute,
            clients: Mutex::new(Clients::default()),
            limited: AtomicU64::new(0),
        }
    }

    /// Requests refused so far.
    pub fn limited(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }

    /// Takes one token; `Err(retry_after_s)` (≥ 1) when the bucket is empty.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let cap = f64::from(self.per_minute);
        if cap <= 0.0 {
            return Err(60);
        }
        let rate = cap / 60.0;
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let t = clients.entry(client, now, || Tokens { left: cap, at: now });
        let elapsed = now.saturating_duration_since(t.at).as_secs_f64();
        t.left = (t.left + elapsed * rate).min(cap);
        t.at = now;
        if t.left >= 1.0 {
            t.left -= 1.0;
            Ok(())
        } else {
            self.limited.fetch_add(1, Ordering::Relaxed);
            Err(((1.0 - t.left) / rate).ceil().max(1.0) as u64)
        }
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

    #[test]
    fn token_bucket_burst_refill_and_retry() {
        let b = TokenBucket::per_minute(10);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(b.take(ip, t0).is_ok());
        }
        assert_eq!(b.take(ip, t0), Err(6), "one token per 6 s");
        assert!(b.take(ip, t0 + Duration::from_secs(6)).is_ok());
        let other: IpAddr = [10, 0, 0, 1].into();
        assert!(b.take(other, t0).is_ok(), "per client");
        assert_eq!(b.limited(), 1);
        assert_eq!(TokenBucket::per_minute(0).take(ip, t0), Err(60));
    }

    #[test]
    fn token_bucket_bounded_clients() {
        let b = TokenBucket::per_minute(1);
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 10) {
            let ip: IpAddr = std::net::Ipv4Addr::from(i).into();
            let _ = b.take(ip, t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(b.tracked(), MAX_TRACKED);
    }

    #[test]
    fn idle_clients_are_forgotten_first() {
        let w = SlidingWindow::per_minute(1);
        let t0 = Instant::now();
        let first: IpAddr = [192, 168, 0, 1].into();
        let _ = w.check(first, t0);
        for i in 1..MAX_TRACKED as u32 {
            let ip: IpAddr = std::net::Ipv4Addr::from(i).into();
            let _ = w.check(ip, t0 + IDLE_FORGET);
        }
        assert_eq!(w.tracked(), MAX_TRACKED);
        let late: IpAddr = [172, 16, 0, 1].into();
        assert!(w.check(late, t0 + IDLE_FORGET + Duration::from_secs(1)).is_ok());
        assert_eq!(w.tracked(), MAX_TRACKED);
        assert!(
            w.check(first, t0 + IDLE_FORGET + Duration::from_secs(2)).is_ok(),
            "the idle address was forgotten, so its old hit no longer counts"
        );
    }
}
