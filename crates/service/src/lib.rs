//! Daemon plumbing shared by the three N-Defender services: configuration
//! (PROTOCOL.md §10), the REST conventions (PROTOCOL.md §5, §6), graceful shutdown and systemd
//! notification (PROTOCOL.md §7.9), logging.

pub mod audit;
pub mod auth;
pub mod backoff;
pub mod config;
pub mod daemon;
pub mod http;
pub mod lifecycle;
pub mod listen;
pub mod metrics;
pub mod mqtt;
pub mod ratelimit;
pub mod server;
pub mod tls;

pub use backoff::Backoff;
pub use http::{ApiError, Conventions};
pub use lifecycle::Shutdown;
