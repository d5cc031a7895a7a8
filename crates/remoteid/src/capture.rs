//! Reading pcap and pcapng files (through `pcap-file`): each record with its link type and its
//! capture time in epoch milliseconds.

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("not a pcap or pcapng file: {0}")]
    Format(String),
    #[error("corrupt record: {0}")]
    Record(String),
    #[error("packet on interface {0}, which the file never described")]
    NoInterface(u32),
}

/// One captured record, borrowed from the reader until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub ts_ms: u64,
    pub linktype: u32,
    pub data: &'a [u8],
}

enum Inner<R: Read> {
    Pcap(PcapReader<R>, u32),
    /// Per interface: link type and timestamp resolution (if_tsresol).
    Ng(PcapNgReader<R>, Vec<(u32, u8)>),
}

/// A pcap or pcapng reader, chosen by the file's magic number.
pub struct CaptureReader<R: Read> {
    inner: Inner<R>,
    scratch: Vec<u8>,
}

pub type FileCapture = CaptureReader<BufReader<std::fs::File>>;

const PCAPNG_MAGIC: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];

impl FileCapture {
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let f = std::fs::File::open(path).map_err(|source| CaptureError::Open {
            path: path.display().to_string(),
            source,
        })?;
        CaptureReader::new(BufReader::new(f))
    }
}

impl<R: BufRead> CaptureReader<R> {
    pub fn new(mut r: R) -> Result<Self, CaptureError> {
        let head = r.fill_buf().map_err(|e| CaptureError::Format(e.to_string()))?;
        let inner = if head.starts_with(&PCAPNG_MAGIC) {
            Inner::Ng(
                PcapNgReader::new(r).map_err(|e| CaptureError::Format(e.to_string()))?,
                Vec::new(),
            )
        } else {
            let p = PcapReader::new(r).map_err(|e| CaptureError::Format(e.to_string()))?;
            let lt = u32::from(p.header().datalink);
            Inner::Pcap(p, lt)
        };
        Ok(Self {
            inner,
            scratch: Vec::new(),
        })
    }
}

/// Epoch ms of a pcapng timestamp: pcap-file reports the raw count as nanoseconds whatever the
/// interface's resolution, so the resolution (if_tsresol: 10^-n, or 2^-n with bit 7) is applied
/// here. Default resolution is microseconds.
fn ng_ts_ms(raw: u128, tsresol: u8) -> u64 {
    let ms = if tsresol & 0x80 != 0 {
        let shift = u32::from(tsresol & 0x7F).min(127);
        raw.checked_mul(1000).map_or(u128::MAX, |v| v >> shift)
    } else {
        let exp = u32::from(tsresol).min(38);
        let div = 10u128.checked_pow(exp).unwrap_or(u128::MAX);
        raw.saturating_mul(1000) / div.max(1)
    };
    u64::try_from(ms).unwrap_or(u64::MAX)
}

impl<R: Read> CaptureReader<R> {
    /// The next record, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Option<Result<Record<'_>, CaptureError>> {
        match &mut self.inner {
            Inner::Pcap(p, lt) => {
                let lt = *lt;
                match p.next_packet()? {
                    Err(e) => Some(Err(CaptureError::Record(e.to_string()))),
                    Ok(pkt) => {
                        let ts_ms = u64::try_from(pkt.timestamp.as_millis()).unwrap_or(u64::MAX);
                        self.scratch.clear();
                        self.scratch.extend_from_slice(&pkt.data);
                        Some(Ok(Record {
                            ts_ms,
                            linktype: lt,
                            data: &self.scratch,
                        }))
                    }
                }
            }
            Inner::Ng(p, ifaces) => loop {
                let block = match p.next_block()? {
                    Err(e) => return Some(Err(CaptureError::Record(e.to_string()))),
                    Ok(b) => b,
                };
                match block {
                    Block::SectionHeader(_) => ifaces.clear(),
                    Block::InterfaceDescription(idb) => {
                        let res = idb
                            .options
                            .iter()
                            .find_map(|o| match o {
                                InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                                _ => None,
                            })
                            .unwrap_or(6);
                        ifaces.push((u32::from(idb.linktype), res));
                    }
                    Block::EnhancedPacket(epb) => {
                        let Some(&(lt, res)) = usize::try_from(epb.interface_id).ok().and_then(|i| ifaces.get(i))
                        else {
                            return Some(Err(CaptureError::NoInterface(epb.interface_id)));
                        };
                        let ts_ms = ng_ts_ms(epb.timestamp.as_nanos(), res);
                        self.scratch.clear();
                        self.scratch.extend_from_slice(&epb.data);
                        return Some(Ok(Record {
                            ts_ms,
                            linktype: lt,
                            data: &self.scratch,
                        }));
                    }
                    Block::SimplePacket(spb) => {
                        let Some(&(lt, _)) = ifaces.first() else {
                            return Some(Err(CaptureError::NoInterface(0)));
                        };
                        self.scratch.clear();
                        self.scratch.extend_from_slice(&spb.data);
                        // Simple packet blocks carry no time.
                        return Some(Ok(Record {
                            ts_ms: 0,
                            linktype: lt,
                            data: &self.scratch,
                        }));
                    }
                    _ => {}
                }
            },
        }
    }
}
