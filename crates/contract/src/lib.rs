//! The N-Defender wire contract: every envelope, event, payload and REST body type,
//! defined once (docs/PROTOCOL.md). Output types serialise exactly to the contract schemas:
//! unknown values are omitted, never null; enums use the schema's spelling.
//! Input is tolerant: unknown members are dropped, enums are case-folded with a
//! fallback, times are normalised (see [`time`]).

pub mod command;
pub mod contact;
pub mod devices;
pub mod enums;
pub mod envelope;
pub mod error;
pub mod esp32;
pub mod events;
pub mod num;
pub mod passthrough;
#[cfg(feature = "schema-check")]
pub mod schema;
pub mod snapshot;
pub mod system;
pub mod time;

pub use envelope::{Envelope, EnvelopeError, Source, TimestampField};
pub use error::{error_body, ErrorStyle};
pub use events::kind;
