//! Waveshare UPS HAT (E) over i2c-dev, read-only (system-controller §3.5).
//!
//! WARNING: register 0x01 is the vendor's forced power-off (0x55 there cuts the
//! Pi's power). [`UpsRegisterReader`] has no write method, and [`LinuxI2c`]
//! refuses every register outside [`READABLE`] before touching the bus; the
//! register-pointer byte of a read is the only byte ever put on the bus.

use crate::probes::procfs::round;
use ndefender_contract::enums::{Status, UpsState};
use ndefender_contract::system::UpsTelemetry;

/// The only registers the controller reads.
pub const READABLE: [u8; 4] = [0x02, 0x10, 0x20, 0x30];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsError {
    /// Node missing or permission denied.
    Unavailable,
    /// NACK (ENXIO / EREMOTEIO): nothing at the address.
    NotFound,
    /// Other I/O error, a timeout, or a floating bus.
    ReadFailed,
    /// A register outside [`READABLE`]; the bus was not touched.
    Refused,
}

impl UpsError {
    pub const fn code(self) -> &'static str {
        match self {
            UpsError::Unavailable => "ups_unavailable",
            UpsError::NotFound => "ups_not_found",
            UpsError::ReadFailed | UpsError::Refused => "ups_read_failed",
        }
    }
}

/// Block reads only, by design: see the module warning.
pub trait UpsRegisterReader: Send {
    fn read_block(&mut self, reg: u8, buf: &mut [u8]) -> Result<(), UpsError>;
}

/// `/dev/i2c-<bus>` through `I2C_RDWR`: pointer write + repeated-start read.
pub struct LinuxI2c {
    bus: Option<i2cdev::linux::LinuxI2CBus>,
    path: String,
    addr: u16,
}

impl LinuxI2c {
    pub fn new(bus: u32, addr: u16) -> Self {
        Self {
            bus: None,
            path: format!("/dev/i2c-{bus}"),
            addr,
        }
    }
}

impl UpsRegisterReader for LinuxI2c {
    fn read_block(&mut self, reg: u8, buf: &mut [u8]) -> Result<(), UpsError> {
        use i2cdev::core::{I2CMessage, I2CTransfer};
        use i2cdev::linux::{LinuxI2CBus, LinuxI2CError, LinuxI2CMessage};
        if !READABLE.contains(&reg) {
            return Err(UpsError::Refused);
        }
        if self.bus.is_none() {
            self.bus = Some(LinuxI2CBus::new(&self.path).map_err(|_| UpsError::Unavailable)?);
        }
        let Some(bus) = self.bus.as_mut() else {
            return Err(UpsError::Unavailable);
        };
        let ptr = [reg];
        let mut msgs = [
            LinuxI2CMessage::write(&ptr).with_address(self.addr),
            LinuxI2CMessage::read(buf).with_address(self.addr),
        ];
        match bus.transfer(&mut msgs) {
            Ok(_) => Ok(()),
            Err(e) => {
                let errno = match &e {
                    LinuxI2CError::Errno(n) => Some(*n),
                    LinuxI2CError::Io(io) => io.raw_os_error(),
                };
                // A fresh open next time, in case the adapter went away.
                self.bus = None;
                Err(match errno {
                    Some(6) | Some(121) => UpsError::NotFound, // ENXIO, EREMOTEIO
                    Some(2) | Some(13) | Some(19) => UpsError::Unavailable,
                    _ => UpsError::ReadFailed,
                })
            }
        }
    }
}

/// The four raw blocks of one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBlocks {
    pub status: [u8; 1],
    pub vbus: [u8; 6],
    pub battery: [u8; 12],
    pub cells: [u8; 8],
}

/// Reads the four blocks; an all-0xFF block is a floating bus.
pub fn read_all(r: &mut dyn UpsRegisterReader) -> Result<RawBlocks, UpsError> {
    let mut b = RawBlocks {
        status: [0; 1],
        vbus: [0; 6],
        battery: [0; 12],
        cells: [0; 8],
    };
    r.read_block(0x02, &mut b.status)?;
    r.read_block(0x10, &mut b.vbus)?;
    r.read_block(0x20, &mut b.battery)?;
    r.read_block(0x30, &mut b.cells)?;
    let floating = |x: &[u8]| x.iter().all(|v| *v == 0xFF);
    if floating(&b.vbus) || floating(&b.battery) || floating(&b.cells) {
        return Err(UpsError::ReadFailed);
    }
    Ok(b)
}

fn u16le(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i * 2], b[i * 2 + 1]])
}

/// The state rule of §3.5, first match wins.
pub fn ups_state(status: u8, current_ma: i64, idle_ma: i64) -> UpsState {
    if status & 0x40 != 0 {
        UpsState::FastCharging
    } else if status & 0x80 != 0 || current_ma > idle_ma {
        UpsState::Charging
    } else if current_ma < -idle_ma || status & 0x20 == 0 {
        UpsState::Discharging
    } else {
        UpsState::Idle
    }
}

/// Decodes one poll into UPS_Telemetry (without `timestamp_ms`).
pub fn decode(b: &RawBlocks, idle_ma: i64, critical_soc: i64) -> UpsTelemetry {
    let st = b.status[0];
    let vbus_mv = u16le(&b.vbus, 0);
    let vbus_mw = u16le(&b.vbus, 2);
    let pack_mv = u16le(&b.battery, 0);
    let current_ma = i16::from_le_bytes([b.battery[2], b.battery[3]]) as i64;
    let soc = (u16le(&b.battery, 2) as i64).clamp(0, 100);
    let tte = u16le(&b.battery, 4);
    let ttf = u16le(&b.battery, 5);
    let cells: Vec<f64> = (0..4).map(|i| round(u16le(&b.cells, i) as f64 / 1000.0, 3)).collect();
    let state = ups_state(st, current_ma, idle_ma);
    let minutes = |m: u16| (m > 0 && m < 0xFFFF).then_some(m as i64 * 60);
    let charging = matches!(state, UpsState::Charging | UpsState::FastCharging);
    let critical = state == UpsState::Discharging && soc <= critical_soc;
    UpsTelemetry {
        timestamp_ms: None,
        status: Some(if critical { Status::Degraded } else { Status::Ok }),
        pack_voltage_v: Some(round(pack_mv as f64 / 1000.0, 3)),
        current_a: Some(round(current_ma as f64 / 1000.0, 3)),
        input_vbus_v: Some(round(vbus_mv as f64 / 1000.0, 3)),
        input_power_w: Some(round(vbus_mw as f64 / 1000.0, 3)),
        soc_percent: Some(soc),
        time_to_empty_s: if state == UpsState::Discharging {
            minutes(tte)
        } else {
            None
        },
        time_to_full_s: if charging { minutes(ttf) } else { None },
        per_cell_v: Some(cells),
        state: Some(state),
        last_error: critical.then(|| "battery_critical".to_owned()),
    }
}

/// A faithful register-level simulator of the HAT for tests and demos: it
/// answers only the registers the real board has, and records every request.
#[derive(Debug, Clone, Default)]
pub struct SimUps {
    pub regs: std::collections::HashMap<u8, Vec<u8>>,
    /// Injected failure for every read.
    pub fail: Option<UpsError>,
    /// Sleep inside each read (a bus that hangs).
    pub hang: Option<std::time::Duration>,
    pub requested: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl SimUps {
    /// The §3.5 unit test vector.
    pub fn test_vector() -> Self {
        let mut s = SimUps::default();
        s.regs.insert(0x02, vec![0x20]);
        s.regs.insert(0x10, vec![0x88, 0x13, 0xD0, 0x07, 0x10, 0x27]);
        s.regs.insert(
            0x20,
            vec![0xD0, 0x39, 0x24, 0xFA, 0x50, 0x00, 0xA0, 0x0F, 0x0C, 0x00, 0x00, 0x00],
        );
        s.regs
            .insert(0x30, vec![0x74, 0x0E, 0x7E, 0x0E, 0x6A, 0x0E, 0x88, 0x0E]);
        s
    }

    pub fn set_status(&mut self, b: u8) {
        self.regs.insert(0x02, vec![b]);
    }

    pub fn set_current_ma(&mut self, ma: i16) {
        if let Some(r) = self.regs.get_mut(&0x20) {
            let le = ma.to_le_bytes();
            r[2] = le[0];
            r[3] = le[1];
        }
    }

    pub fn set_time_to_full_min(&mut self, m: u16) {
        if let Some(r) = self.regs.get_mut(&0x20) {
            let le = m.to_le_bytes();
            r[10] = le[0];
            r[11] = le[1];
        }
    }
}

impl UpsRegisterReader for SimUps {
    fn read_block(&mut self, reg: u8, buf: &mut [u8]) -> Result<(), UpsError> {
        if let Ok(mut r) = self.requested.lock() {
            r.push(reg);
        }
        if !READABLE.contains(&reg) {
            return Err(UpsError::Refused);
        }
        if let Some(d) = self.hang {
            std::thread::sleep(d);
        }
        if let Some(e) = self.fail {
            return Err(e);
        }
        let data = self.regs.get(&reg).ok_or(UpsError::NotFound)?;
        if data.len() < buf.len() {
            return Err(UpsError::ReadFailed);
        }
        buf.copy_from_slice(&data[..buf.len()]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_sim(s: &mut SimUps) -> Result<UpsTelemetry, UpsError> {
        read_all(s).map(|b| decode(&b, 50, 10))
    }

    #[test]
    fn test_vector_decodes_exactly() -> Result<(), Box<dyn std::error::Error>> {
        let mut s = SimUps::test_vector();
        let t = decode_sim(&mut s).map_err(|e| e.code())?;
        let v = serde_json::to_value(&t)?;
        assert_eq!(
            v,
            json!({"status":"ok","pack_voltage_v":14.8,"current_a":-1.5,"input_vbus_v":5.0,"input_power_w":10.0,"soc_percent":80,"time_to_empty_s":720,"per_cell_v":[3.7,3.71,3.69,3.72],"state":"DISCHARGING"})
        );
        Ok(())
    }

    #[test]
    fn state_rules() -> Result<(), UpsError> {
        let mut s = SimUps::test_vector();
        s.set_status(0x00);
        s.set_current_ma(-3);
        assert_eq!(decode_sim(&mut s)?.state, Some(UpsState::Discharging));
        s.set_status(0x20);
        s.set_current_ma(2);
        assert_eq!(decode_sim(&mut s)?.state, Some(UpsState::Idle));
        s.set_status(0xC0);
        assert_eq!(decode_sim(&mut s)?.state, Some(UpsState::FastCharging));
        s.set_status(0xA0);
        s.set_time_to_full_min(30);
        let t = decode_sim(&mut s)?;
        assert_eq!(t.state, Some(UpsState::Charging));
        assert_eq!(t.time_to_full_s, Some(1800));
        assert_eq!(t.time_to_empty_s, None);
        Ok(())
    }

    #[test]
    fn power_off_register_is_refused_without_touching_the_bus() {
        // /dev/i2c-250 does not exist: a refusal must come before any open.
        let mut hw = LinuxI2c::new(250, 0x2D);
        let mut buf = [0u8; 1];
        assert_eq!(hw.read_block(0x01, &mut buf), Err(UpsError::Refused));
        assert!(hw.bus.is_none());
        for reg in [0x00u8, 0x03, 0x11, 0x21, 0x40, 0xFF] {
            assert_eq!(hw.read_block(reg, &mut buf), Err(UpsError::Refused));
        }
        assert!(hw.bus.is_none());
        assert_eq!(hw.read_block(0x02, &mut buf), Err(UpsError::Unavailable));
    }

    #[test]
    fn errors_and_floating_bus() {
        let mut s = SimUps::test_vector();
        s.fail = Some(UpsError::NotFound);
        assert_eq!(decode_sim(&mut s).err(), Some(UpsError::NotFound));
        let mut s = SimUps::test_vector();
        s.regs.insert(0x20, vec![0xFF; 12]);
        assert_eq!(decode_sim(&mut s).err(), Some(UpsError::ReadFailed));
        let requested = s.requested.lock().map(|r| r.clone()).unwrap_or_default();
        assert!(requested.iter().all(|r| READABLE.contains(r)), "{requested:?}");
    }

    #[test]
    fn critical_battery() -> Result<(), UpsError> {
        let mut s = SimUps::test_vector();
        if let Some(r) = s.regs.get_mut(&0x20) {
            r[4] = 9;
        }
        let t = decode_sim(&mut s)?;
        assert_eq!(t.status, Some(Status::Degraded));
        assert_eq!(t.last_error.as_deref(), Some("battery_critical"));
        Ok(())
    }
}
