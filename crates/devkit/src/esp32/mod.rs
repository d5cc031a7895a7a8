//! ESP32 panel emulator (`esp32-protocol.md` §9): the panel firmware as deployed,
//! quirks included, on a pseudo-terminal.
//!
//! Layers, each usable on its own:
//! * [`parser`]: the firmware's key-search field extraction (§6).
//! * [`firmware::Firmware`]: the pure firmware state machine — line assembly,
//!   command checks and error codes (§4/§5), the scan/lock engine (§7.3), RSSI from
//!   the [`RfScene`] (§9.3), telemetry timing. `handle_line(line, now)`, `feed(bytes,
//!   now)` and `tick(now)` take the time explicitly, so it is tested without a pty.
//! * [`device::Device`]: the board around it — the fault knobs of §9.4 (boot noise,
//!   OLED stall and UART buffer, garbage, overlong lines, split writes, dropped /
//!   late / duplicated acks, telemetry stall, disconnect, reset), still pure.
//! * [`sim`]: the tokio driver on a raw pty, the symlink, the in-process
//!   [`SimHandle`] and the JSON-lines control socket.
//!
//! # Control API
//! In process: methods of [`SimControl`] (a [`SimHandle`] derefs to it):
//! `set_knob("drop_ack_prob", Some("0.5"))`, `drop_next_acks(1)`,
//! `set_ack_delay(..)`, `unplug()`, `replug()`, `disconnect()`, `reset()`,
//! `stall_telemetry(..)`, `set_scene(..)`, `stats()`, `commands()`,
//! `wait_for_command(..)`, `shutdown()`.
//!
//! As a process (`ndefender-esp32-sim --control <socket>`): a Unix stream socket
//! taking one JSON object per line and answering one line each:
//! ```text
//! {"set":{"drop_ack_prob":0.5}}            -> {"ok":true}
//! {"set":{"scene":[{"freq_hz":5740000000,"peak":2600,"width_mhz":8}]}}
//! {"fault":"disconnect"}                   -> {"ok":true}   (also reset, unplug, replug)
//! {"fault":"stall_telemetry_ms","value":3000}
//! {"get":"stats"}                          -> {"ok":true,"stats":{"lines_received":..,"acks_sent":..,
//!                                              "rx_errors":..,"rx_overflow":..,"commands":{..},"mode":"SCAN",
//!                                              "best_rssi":[..],"best_freq_hz":[..],..}}
//! {"get":"commands"} / {"get":"lines"} / {"get":"knobs"} / {"get":"scene"} / {"get":"path"}
//! ```
//! Knob names are those of §9.4 plus the extensions `telemetry_period_ms`,
//! `drop_acks` (drop exactly the next N acks), `unplug`/`replug` (no automatic
//! reconnect), `noise_min`/`noise_max` and `scene`.
//!
//! # Port behaviour
//! The device side is put in raw mode at 115200 and is not held open by the
//! emulator: while no host has it open, output is dropped (except before the first
//! open, when up to 4 KiB are kept so the first host sees the boot noise). Host
//! close/reopen is harmless. `unplug` closes the master (a host reading sees EOF,
//! writing sees EIO) and removes the link; `replug` opens a new pty, re-points the
//! link atomically and boots the board again (USB power cycle: boot noise, uptime
//! from 0, boot defaults).

pub mod device;
pub mod firmware;
pub mod knobs;
pub mod parser;
pub mod pty;
pub mod sim;

pub use device::{Action, Device, DeviceStats, SimStats};
pub use firmware::{
    Ack, Firmware, FirmwareConfig, FirmwareStats, LineOutcome, Mode, Output, ReceivedCommand, ReceivedLine,
};
pub use knobs::{Knobs, OneShot, RfScene, Transmitter};
pub use sim::{start_emulator, Esp32Sim, SimConfig, SimControl, SimHandle, SimStatus};

/// Alias of [`SimConfig`].
pub type EmulatorConfig = SimConfig;
/// Alias of [`SimHandle`].
pub type EmulatorHandle = SimHandle;
