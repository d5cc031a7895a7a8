//! ndefender-remoteid: the Open Drone ID engine.
//!
//! `odid` decodes the ASTM F3411 / ASD-STAN messages, `link` finds them in 802.11 and BLE
//! frames, `capture` reads pcap/pcapng files, `decode` ties the three together and counts what
//! it saw.

pub mod bench;
pub mod capture;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod decode;
pub mod encode;
pub mod jsonl;
pub mod link;
pub mod odid;
pub mod replay;
pub mod source;
pub mod tracker;
