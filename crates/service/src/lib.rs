//! Daemon plumbing shared by the three N-Defender services: configuration
//! (wire §10), the REST conventions (wire §5, §6), graceful shutdown and systemd
//! notification (wire §7.9), logging.

pub mod config;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod mqtt;
pub mod ratelimit;

pub use http::{ApiError, Conventions};
pub use lifecycle::Shutdown;
