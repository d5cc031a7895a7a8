//! SigMF metadata (antsdr-scan §2): `source::sigmf::parse_meta`, the body of `read_meta`, which
//! the file source and `POST /run/replay` run on a `.sigmf-meta` file.
//!
//! Oracles: no panic; an accepted file has a sample rate in (0, 10 GS/s], at least one capture,
//! and every capture an LO of 1 Hz to 1 THz (so plan arithmetic on it cannot overflow); a capture
//! time that parsed formats back to a datetime that parses to the same instant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndefender_antsdr_scan::source::sigmf::{format_datetime, parse_datetime, parse_meta};

fuzz_target!(|data: &[u8]| {
    // read_meta reads the file with read_to_string: only UTF-8 gets this far.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(meta) = parse_meta(text) else {
        return;
    };
    assert!(meta.sample_rate > 0.0 && meta.sample_rate <= 1e10, "sample rate {}", meta.sample_rate);
    assert!(!meta.captures.is_empty());
    for c in &meta.captures {
        assert!((1..=1_000_000_000_000).contains(&c.frequency), "frequency {}", c.frequency);
        if let Some(ms) = c.datetime_ms {
            assert_eq!(parse_datetime(&format_datetime(ms)), Some(ms), "datetime round trip");
        }
    }
});
