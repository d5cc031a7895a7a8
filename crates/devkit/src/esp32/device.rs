//! The simulated board: the [`Firmware`] plus everything §9.4 layers around it
//! (boot noise, OLED stall with its 256-byte UART buffer, garbage and overlong lines,
//! split writes, dropped / late / duplicated acks, telemetry stalls, disconnects),
//! still without I/O: the driver feeds host bytes in with [`Device::on_input`] and
//! collects timed [`Action`]s with [`Device::poll`]. Same seed, same inputs at the
//! same times → same bytes out.

use super::firmware::{Firmware, FirmwareConfig, FirmwareStats, Output, ReceivedLine};
use super::knobs::{Knobs, OneShot, RfScene};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// What the board does to the outside world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Bytes to write to the port now.
    Write(Vec<u8>),
    /// One-shot `disconnect`: close the port and remove the link; reconnect after
    /// the given delay (ms).
    Disconnect { reconnect_after_ms: u64 },
}

/// Counters of the fault layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceStats {
    /// Acks actually queued for the wire (duplicates included).
    pub acks_sent: u64,
    pub acks_dropped: u64,
    pub acks_duplicated: u64,
    /// Host bytes lost because the UART buffer overflowed during an OLED stall.
    pub uart_bytes_lost: u64,
    pub garbage_lines: u64,
    pub overlong_lines: u64,
    pub boot_noise_lines: u64,
    pub resets: u64,
}

/// Firmware and fault counters together (the control API's `{"get":"stats"}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SimStats {
    #[serde(flatten)]
    pub firmware: FirmwareStats,
    #[serde(flatten)]
    pub device: DeviceStats,
}

/// The ROM's boot output is this banner, the reset cause, then the same load lines.
const ROM_BANNER: &[&str] = &["ESP-ROM:esp32s3-20210327", "Build:Mar 27 2021"];
const ROM_LOAD: &[&str] = &[
    "SPIWP:0xee",
    "mode:DIO, clock div:1",
    "load:0x3fce3808,len:0x44c",
    "load:0x403c9700,len:0xbe4",
    "load:0x403cc700,len:0x2a38",
    "entry 0x403c98d4",
];
/// Power-on: the cause alone.
const ROM_POWERON: &[&str] = &["rst:0x1 (POWERON),boot:0x8 (SPI_FAST_FLASH_BOOT)"];
/// A reset from the USB UART also names the program counter it interrupted.
const ROM_RESET: &[&str] = &[
    "rst:0x15 (USB_UART_CHIP_RESET),boot:0x8 (SPI_FAST_FLASH_BOOT)",
    "Saved PC:0x40378e0e",
];

/// Delay between the ROM lines (ms).
const ROM_LINE_GAP_MS: u64 = 2;
/// OLED redraw phase within each second after boot.
const OLED_PHASE_MS: u64 = 500;

/// The board model.
#[derive(Debug)]
pub struct Device {
    fw: Firmware,
    knobs: Knobs,
    rng: StdRng,
    /// Lines waiting for their due time: (due, seq, bytes).
    pending: Vec<(u64, u64, Vec<u8>)>,
    seq: u64,
    /// Fragments in wire order (due, bytes); the writer never interleaves lines.
    wire: std::collections::VecDeque<(u64, Vec<u8>)>,
    wire_free_at: u64,
    /// Host bytes not yet processed (held while the loop is stalled).
    uart: Vec<u8>,
    stall_until: u64,
    next_oled_at: u64,
    next_garbage_at: Option<u64>,
    telemetry_count: u64,
    disconnect_requested: bool,
    received: Vec<ReceivedLine>,
    stats: DeviceStats,
}

impl Device {
    /// Powers the board on at `now` (boot noise first when enabled).
    pub fn new(seed: u64, knobs: Knobs, scene: RfScene, now: u64) -> Self {
        let fw = Firmware::new(
            FirmwareConfig {
                seed,
                scene,
                telemetry_period_ms: knobs.telemetry_period_ms,
                telemetry_jitter_ms: knobs.telemetry_jitter_ms,
                emit_log_events: knobs.emit_log_events,
                uptime_start_ms: knobs.uptime_start_ms,
            },
            now,
        );
        let mut d = Self {
            fw,
            knobs,
            rng: StdRng::seed_from_u64(seed ^ 0x5eed_fa17_0000_0001),
            pending: Vec::new(),
            seq: 0,
            wire: std::collections::VecDeque::new(),
            wire_free_at: 0,
            uart: Vec::new(),
            stall_until: 0,
            next_oled_at: now + OLED_PHASE_MS,
            next_garbage_at: None,
            telemetry_count: 0,
            disconnect_requested: false,
            received: Vec::new(),
            stats: DeviceStats::default(),
        };
        d.schedule_garbage(now);
        d.boot_noise(now, ROM_POWERON);
        d
    }

    pub fn firmware(&self) -> &Firmware {
        &self.fw
    }

    pub fn knobs(&self) -> &Knobs {
        &self.knobs
    }

    /// Replaces the knobs (timing changes apply from the next telemetry on).
    pub fn set_knobs(&mut self, knobs: Knobs, now: u64) {
        self.fw.set_timing(
            knobs.telemetry_period_ms,
            knobs.telemetry_jitter_ms,
            knobs.emit_log_events,
        );
        let garbage_changed = knobs.garbage_per_min != self.knobs.garbage_per_min;
        self.knobs = knobs;
        if garbage_changed {
            self.schedule_garbage(now);
        }
    }

    pub fn set_scene(&mut self, scene: RfScene) {
        self.fw.set_scene(scene);
    }

    pub fn stats(&self) -> SimStats {
        SimStats {
            firmware: self.fw.stats(),
            device: self.stats.clone(),
        }
    }

    /// Lines the firmware processed since the last call.
    pub fn drain_received(&mut self) -> Vec<ReceivedLine> {
        std::mem::take(&mut self.received)
    }

    /// Triggers a one-shot fault. `Unplug`/`Replug` are the driver's business and
    /// are ignored here (the driver calls [`Device::reset`] on replug).
    pub fn trigger(&mut self, shot: OneShot, now: u64) {
        match shot {
            OneShot::StallTelemetry(ms) => self.fw.stall_telemetry(now, ms),
            OneShot::Reset => self.reset(now),
            OneShot::Disconnect => self.disconnect_requested = true,
            OneShot::Unplug | OneShot::Replug => {}
        }
    }

    /// Board reset (also a power cycle on replug): pending output is lost, boot
    /// noise, uptime from 0, boot defaults.
    pub fn reset(&mut self, now: u64) {
        self.pending.clear();
        self.wire.clear();
        self.wire_free_at = now;
        self.uart.clear();
        self.stall_until = 0;
        self.next_oled_at = now + OLED_PHASE_MS;
        self.fw.reset(now);
        self.stats.resets += 1;
        self.boot_noise(now, ROM_RESET);
    }

    /// The ROM's lines for a boot with this reset cause.
    fn boot_noise(&mut self, now: u64, cause: &[&str]) {
        if !self.knobs.boot_noise {
            return;
        }
        for (i, l) in ROM_BANNER.iter().chain(cause).chain(ROM_LOAD).enumerate() {
            let mut b = l.as_bytes().to_vec();
            b.extend_from_slice(b"\r\n");
            self.enqueue(now + i as u64 * ROM_LINE_GAP_MS, b);
            self.stats.boot_noise_lines += 1;
        }
    }

    fn schedule_garbage(&mut self, now: u64) {
        self.next_garbage_at = if self.knobs.garbage_per_min > 0.0 {
            let mean = 60_000.0 / self.knobs.garbage_per_min;
            let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
            Some(now + (-u.ln() * mean).round().max(1.0) as u64)
        } else {
            None
        };
    }

    fn garbage_line(&mut self) -> Vec<u8> {
        let len = self.rng.random_range(8..80usize);
        let mut b = Vec::with_capacity(len + 2);
        for i in 0..len {
            let byte = if self.rng.random_bool(0.3) {
                self.rng.random_range(0x80..=0xffu8)
            } else {
                self.rng.random_range(0x20..0x7fu8)
            };
            // Never a JSON object start.
            b.push(if i == 0 && byte == b'{' { b'~' } else { byte });
        }
        b.extend_from_slice(b"\r\n");
        b
    }

    fn overlong_line(&self) -> Vec<u8> {
        let len = self.knobs.overlong_len;
        let head = b"E (overlong) ";
        let mut b: Vec<u8> = head.iter().copied().chain(std::iter::repeat(b'#')).take(len).collect();
        b.extend_from_slice(b"\r\n");
        b
    }

    fn enqueue(&mut self, due: u64, bytes: Vec<u8>) {
        self.seq += 1;
        self.pending.push((due, self.seq, bytes));
    }

    /// Host bytes arriving at `now`. While the loop is stalled only
    /// `uart_rx_buffer` bytes are held; the rest is lost.
    pub fn on_input(&mut self, bytes: &[u8], now: u64) {
        self.update_stall(now);
        if now < self.stall_until {
            let room = self.knobs.uart_rx_buffer.saturating_sub(self.uart.len());
            let take = room.min(bytes.len());
            self.uart.extend_from_slice(&bytes[..take]);
            self.stats.uart_bytes_lost += (bytes.len() - take) as u64;
        } else {
            self.uart.extend_from_slice(bytes);
        }
    }

    /// The OLED redraw (once a second) blocks the loop for `oled_stall_ms`.
    fn update_stall(&mut self, now: u64) {
        while now >= self.next_oled_at {
            if self.knobs.oled_stall_ms > 0 {
                self.stall_until = self.next_oled_at + self.knobs.oled_stall_ms;
            }
            self.next_oled_at += 1000;
        }
    }

    fn route(&mut self, outputs: Vec<Output>, now: u64) {
        for o in outputs {
            match o {
                Output::Ack(ack) => {
                    if self.knobs.drop_acks > 0 {
                        self.knobs.drop_acks -= 1;
                        self.stats.acks_dropped += 1;
                        continue;
                    }
                    if self.knobs.drop_ack_prob > 0.0 && self.rng.random_bool(self.knobs.drop_ack_prob) {
                        self.stats.acks_dropped += 1;
                        continue;
                    }
                    let due = now + self.knobs.ack_delay_ms;
                    let bytes = ack.to_wire();
                    if self.knobs.duplicate_ack_prob > 0.0 && self.rng.random_bool(self.knobs.duplicate_ack_prob) {
                        self.stats.acks_duplicated += 1;
                        self.stats.acks_sent += 1;
                        self.enqueue(due, bytes.clone());
                    }
                    self.stats.acks_sent += 1;
                    self.enqueue(due, bytes);
                }
                Output::Telemetry(t) => {
                    self.telemetry_count += 1;
                    if self.knobs.overlong_every > 0
                        && self
                            .telemetry_count
                            .is_multiple_of(u64::from(self.knobs.overlong_every))
                    {
                        let l = self.overlong_line();
                        self.enqueue(now, l);
                        self.stats.overlong_lines += 1;
                    }
                    self.enqueue(now, t.to_wire());
                }
                Output::Log(l) => self.enqueue(now, l.to_wire()),
            }
        }
    }

    /// Advances the board to `now` and returns what to do now.
    pub fn poll(&mut self, now: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        if std::mem::take(&mut self.disconnect_requested) {
            actions.push(Action::Disconnect {
                reconnect_after_ms: self.knobs.reconnect_after_ms,
            });
        }
        self.update_stall(now);
        if now >= self.stall_until {
            if !self.uart.is_empty() {
                let input = std::mem::take(&mut self.uart);
                let out = self.fw.feed(&input, now);
                self.route(out, now);
            }
            let out = self.fw.tick(now);
            self.route(out, now);
            if let Some(at) = self.next_garbage_at {
                if now >= at {
                    let g = self.garbage_line();
                    self.enqueue(now, g);
                    self.stats.garbage_lines += 1;
                    self.schedule_garbage(now);
                }
            }
        }
        self.received.extend(self.fw.drain_journal());
        self.schedule_wire(now);
        while let Some((at, _)) = self.wire.front() {
            if *at > now {
                break;
            }
            if let Some((_, bytes)) = self.wire.pop_front() {
                match actions.last_mut() {
                    Some(Action::Write(prev)) => prev.extend_from_slice(&bytes),
                    _ => actions.push(Action::Write(bytes)),
                }
            }
        }
        actions
    }

    /// Moves due lines to the wire queue, split into fragments when enabled.
    fn schedule_wire(&mut self, now: u64) {
        if self.pending.iter().all(|(due, _, _)| *due > now) {
            return;
        }
        self.pending.sort_by_key(|(due, seq, _)| (*due, *seq));
        let split = self.pending.partition_point(|(due, _, _)| *due <= now);
        let due: Vec<_> = self.pending.drain(..split).collect();
        for (_, _, bytes) in due {
            let mut at = self.wire_free_at.max(now);
            if self.knobs.split_writes == 0 {
                self.wire.push_back((at, bytes));
            } else {
                let mut rest = bytes.as_slice();
                let mut first = true;
                while !rest.is_empty() {
                    if !first {
                        at += self.rng.random_range(0..=20u64);
                    }
                    first = false;
                    let n = self.rng.random_range(1..=self.knobs.split_writes).min(rest.len());
                    self.wire.push_back((at, rest[..n].to_vec()));
                    rest = &rest[n..];
                }
            }
            self.wire_free_at = at;
        }
    }

    /// The earliest time [`Device::poll`] has something to do.
    pub fn next_deadline(&self) -> u64 {
        // While the loop is stalled the firmware runs again at the stall end.
        let mut d = self.next_oled_at.min(self.stall_until.max(self.fw.next_deadline()));
        if !self.uart.is_empty() {
            d = d.min(self.stall_until);
        }
        if let Some(g) = self.next_garbage_at {
            d = d.min(g.max(self.stall_until));
        }
        if let Some(p) = self.pending.iter().map(|(due, _, _)| *due).min() {
            d = d.min(p);
        }
        if let Some((at, _)) = self.wire.front() {
            d = d.min(*at);
        }
        if self.disconnect_requested {
            d = 0;
        }
        d
    }
}
