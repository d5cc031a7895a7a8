//! The ESP32 front panel over USB serial: port selection, the link task with
//! command correlation, and payload translation.

pub mod line;
pub mod link;
pub mod port;
pub mod translate;

pub use link::{Esp32Link, Outcome, SubmitError};
pub use translate::{FwCommand, Route};
