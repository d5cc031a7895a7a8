//! Live frame sources behind one trait: the Wi-Fi monitor interface (libpcap) and the
//! simulator (encoded frames for a few moving aircraft), and a Bluetooth LE scan through BlueZ
//! on D-Bus.

pub mod ble;
pub mod pcap_live;
pub mod sim;

/// One captured record, owned (it crosses to the engine thread).
#[derive(Debug, Clone)]
pub struct RawFrame {
    pub linktype: u32,
    pub ts_ms: u64,
    pub data: Vec<u8>,
}

pub trait FrameSource: Send {
    /// The next frame; `Ok(None)` when none arrived within the source's poll interval (so the
    /// caller can check for stop), `Err` when the source failed for good.
    fn next_frame(&mut self) -> Result<Option<RawFrame>, String>;
}
