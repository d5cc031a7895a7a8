//! Development kit: simulators for the N-Defender inputs.
//!
//! * [`remoteid`]: a RemoteID engine JSONL feed (`remoteid-jsonl.md`), as a pure
//!   seeded generator and as an async file writer.
//! * [`esp32`]: the ESP32 panel emulator on a pty (`esp32-protocol.md` §9), also the
//!   `ndefender-esp32-sim` binary.

pub mod esp32;
pub mod remoteid;
