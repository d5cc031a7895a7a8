//! A monitor-mode Wi-Fi interface through libpcap (needs CAP_NET_RAW/CAP_NET_ADMIN, given by
//! the systemd unit as ambient capabilities). Frames come with their radiotap header.

use super::{FrameSource, RawFrame};

pub struct PcapLive {
    cap: pcap::Capture<pcap::Active>,
    linktype: u32,
}

impl PcapLive {
    pub fn open(interface: &str) -> Result<Self, String> {
        let cap = pcap::Capture::from_device(interface)
            .and_then(|c| c.promisc(true).immediate_mode(true).snaplen(4096).timeout(250).open())
            .map_err(|e| format!("cannot open {interface}: {e}"))?;
        let linktype = u32::try_from(cap.get_datalink().0).unwrap_or(0);
        Ok(Self { cap, linktype })
    }
}

impl FrameSource for PcapLive {
    fn next_frame(&mut self) -> Result<Option<RawFrame>, String> {
        match self.cap.next_packet() {
            Ok(p) => {
                let ts = p.header.ts;
                let ts_ms =
                    u64::try_from(ts.tv_sec).unwrap_or(0) * 1000 + u64::try_from(ts.tv_usec).unwrap_or(0) / 1000;
                Ok(Some(RawFrame {
                    linktype: self.linktype,
                    ts_ms,
                    data: p.data.to_vec(),
                }))
            }
            Err(pcap::Error::TimeoutExpired) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}
