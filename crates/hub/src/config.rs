//! Hub settings (wire §7.7). The daemons map their `[server]`/`[api]` keys onto this.

use ndefender_contract::{ErrorStyle, Source, TimestampField};
use std::time::Duration;

/// Everything the hub needs to know about the service that mounts it.
#[derive(Clone)]
pub struct HubConfig {
    /// Own source for HEARTBEAT and control replies.
    pub source: Source,
    /// Envelope time key (the AntSDR scanner may use `timestamp`).
    pub time_field: TimestampField,
    /// Body shape of pre-upgrade rejections.
    pub error_style: ErrorStyle,
    pub max_clients: usize,
    /// Frames a client may have queued before it is marked for resync.
    pub client_queue: usize,
    /// Broadcast envelopes kept for `?since=` replay (HEARTBEAT excluded).
    pub replay_buffer: usize,
    /// HEARTBEAT period; 0 turns the heartbeat off.
    pub heartbeat_ms: u64,
    /// Protocol Ping period; a client silent for twice this is closed with 1008. ≤ 0 turns both off.
    pub ping_interval_s: f64,
    /// Longest a single frame write may block before the client is closed as a slow consumer.
    pub send_timeout_s: f64,
    /// Largest incoming message accepted; larger gets close 1009.
    pub max_frame_bytes: usize,
    /// Largest subscription set a client may hold.
    pub max_patterns: usize,
    /// `""` turns auth off.
    pub api_key: String,
    /// `["*"]` allows every origin.
    pub allowed_origins: Vec<String>,
}

/// Hand-written so the API key never reaches a log line.
impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("source", &self.source)
            .field("time_field", &self.time_field)
            .field("error_style", &self.error_style)
            .field("max_clients", &self.max_clients)
            .field("client_queue", &self.client_queue)
            .field("replay_buffer", &self.replay_buffer)
            .field("heartbeat_ms", &self.heartbeat_ms)
            .field("ping_interval_s", &self.ping_interval_s)
            .field("send_timeout_s", &self.send_timeout_s)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("max_patterns", &self.max_patterns)
            .field("api_key", &if self.api_key.is_empty() { "" } else { "***" })
            .field("allowed_origins", &self.allowed_origins)
            .finish()
    }
}

impl Default for HubConfig {
    /// The aggregator's defaults (wire §7.7).
    fn default() -> Self {
        Self {
            source: Source::Aggregator,
            time_field: TimestampField::TimestampMs,
            error_style: ErrorStyle::Detail,
            max_clients: 64,
            client_queue: 1024,
            replay_buffer: 4096,
            heartbeat_ms: 2000,
            ping_interval_s: 20.0,
            send_timeout_s: 10.0,
            max_frame_bytes: 65536,
            max_patterns: 100,
            api_key: String::new(),
            allowed_origins: vec!["*".to_owned()],
        }
    }
}

impl HubConfig {
    /// `None` when pings (and with them the silence check) are off.
    pub(crate) fn ping_interval(&self) -> Option<Duration> {
        positive_secs(self.ping_interval_s)
    }

    pub(crate) fn send_timeout(&self) -> Duration {
        // A zero or invalid timeout would close every client on its first write; fall back to the default.
        positive_secs(self.send_timeout_s).unwrap_or(Duration::from_secs(10))
    }

    pub(crate) fn heartbeat(&self) -> Option<Duration> {
        (self.heartbeat_ms > 0).then(|| Duration::from_millis(self.heartbeat_ms))
    }

    /// A queue of zero would overflow on every publish and resync forever.
    pub(crate) fn queue_capacity(&self) -> usize {
        self.client_queue.max(1)
    }

    pub(crate) fn origins_open(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }
}

fn positive_secs(s: f64) -> Option<Duration> {
    if s.is_finite() && s > 0.0 {
        Duration::try_from_secs_f64(s).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key() {
        let cfg = HubConfig {
            api_key: "hunter2".into(),
            ..HubConfig::default()
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2") && shown.contains("***"), "{shown}");
    }
}
