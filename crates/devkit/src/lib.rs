//! Development kit: simulators for the N-Defender inputs.
//!
//! * [`remoteid`]: a RemoteID engine JSONL feed (`remoteid-jsonl.md`), as a pure
//!   seeded generator and as an async file writer.
//! * [`esp32`]: the ESP32 panel emulator on a pty (`esp32-protocol.md` §9), also the
//!   `ndefender-esp32-sim` binary.
//! * [`stack`]: the daemons as child processes (start, stop, procfs usage), and
//!   [`http`]: a minimal HTTP/1.1 client; used by `ndefender-demo` and `ndefender-loadgen`.
//! * [`soak`]: the stack under a steady load for a long time (`ndefender-loadgen soak`).

pub mod esp32;
pub mod fleet;
pub mod http;
pub mod mosquitto;
pub mod remoteid;
pub mod soak;
pub mod stack;
pub mod tool;
