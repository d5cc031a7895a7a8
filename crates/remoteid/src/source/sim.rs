//! Simulated transmitters: each aircraft circles its take-off point and broadcasts real
//! encoded frames (all four transports in turn), which go through the same decoder as live
//! capture. Time comes from the injected clock.

use super::{FrameSource, RawFrame};
use crate::encode::{self, LocationIn, SystemIn};
use crate::link;
use ndefender_contract::time::Clock;
use std::sync::Arc;
use std::time::Duration;

pub struct Sim {
    clock: Arc<dyn Clock>,
    drones: u32,
    period: Duration,
    next: u64,
    tick: u64,
    pending: Vec<RawFrame>,
}

impl Sim {
    pub fn new(clock: Arc<dyn Clock>, drones: u32, rate_hz: f64) -> Self {
        Self {
            clock,
            drones,
            period: Duration::from_secs_f64(1.0 / rate_hz.max(0.01)),
            next: 0,
            tick: 0,
            pending: Vec::new(),
        }
    }

    /// The frame aircraft `i` sends at `tick` (time `ts_ms`).
    pub fn frame(i: u32, tick: u64, ts_ms: u64) -> RawFrame {
        let mac = [0x02, 0x5e, 0x1d, 0x00, (i >> 8) as u8, i as u8];
        let t = tick as f64 * 0.5;
        let ang = t / 20.0 + f64::from(i);
        let (lat0, lon0) = (23.0225 + f64::from(i) * 0.01, 72.5714);
        let serial = format!("NDSIM{i:05}");
        let msgs = [
            encode::basic_id(1, 2, serial.as_bytes()),
            encode::location(&LocationIn {
                status: 2,
                direction_deg: Some(((ang.to_degrees() + 90.0) % 360.0).abs()),
                speed_m_s: Some(12.5),
                vspeed_m_s: Some(0.0),
                lat: Some(lat0 + 0.002 * ang.sin()),
                lon: Some(lon0 + 0.002 * ang.cos()),
                geodetic_alt_m: Some(120.0),
                height_m: Some(100.0),
                height_agl: true,
                horiz_acc: 10,
                vert_acc: 4,
                timestamp_ds: Some(((ts_ms / 100) % 36_000) as u16),
                ..Default::default()
            }),
            encode::self_id(0, b"Simulated flight"),
            encode::system(&SystemIn {
                operator_lat: Some(lat0),
                operator_lon: Some(lon0),
                operator_alt_m: Some(20.0),
                ..Default::default()
            }),
            encode::operator_id(0, format!("SIM-OP-{i:04}").as_bytes()),
        ];
        let counter = tick as u8;
        let rssi = -50 - (i % 40) as i8;
        let (linktype, data) = match (tick + u64::from(i)) % 4 {
            0 => (
                link::LINKTYPE_IEEE802_11_RADIOTAP,
                encode::wifi_beacon(mac, rssi, counter, &encode::pack(&msgs)),
            ),
            1 => (
                link::LINKTYPE_IEEE802_11_RADIOTAP,
                encode::wifi_nan(mac, rssi, counter, &encode::pack(&msgs)),
            ),
            2 => (
                link::LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR,
                encode::ble_long_range(mac, rssi, counter, &encode::pack(&msgs)),
            ),
            // A BT4 advert holds one message: alternate Basic ID and Location.
            _ => (
                link::LINKTYPE_BLUETOOTH_LE_LL,
                encode::ble_legacy(mac, counter, &msgs[(tick % 2) as usize]),
            ),
        };
        RawFrame { linktype, ts_ms, data }
    }
}

impl FrameSource for Sim {
    fn next_frame(&mut self) -> Result<Option<RawFrame>, String> {
        if let Some(f) = self.pending.pop() {
            return Ok(Some(f));
        }
        let now = self.clock.now_ms();
        if self.next == 0 {
            self.next = now;
        }
        if now < self.next {
            std::thread::sleep(Duration::from_millis((self.next - now).min(250)));
            return Ok(None);
        }
        self.next += self.period.as_millis() as u64;
        self.tick += 1;
        for i in (0..self.drones).rev() {
            self.pending.push(Self::frame(i, self.tick, now));
        }
        Ok(self.pending.pop())
    }
}
