//! However a byte stream is cut into reads, the framer yields the same lines as a one-shot split and
//! as a naive reference model of PROTOCOL.md §14.7.

use ndefender_tail::{Frame, LineFramer};
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Line(Vec<u8>, u64),
    Oversize(u64, u64),
}

fn own(f: Frame<'_>) -> Out {
    match f {
        Frame::Line { data, end } => Out::Line(data.to_vec(), end),
        Frame::Oversize { len, end } => Out::Oversize(len, end),
    }
}

fn framed(max: usize, data: &[u8], cuts: &[usize]) -> Vec<Out> {
    let mut framer = LineFramer::new(max);
    let mut out = Vec::new();
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    cuts.sort_unstable();
    for c in cuts.into_iter().chain([data.len()]) {
        framer.feed(&data[at..c], |f| out.push(own(f)));
        assert!(
            framer.pending() <= max + 1,
            "buffered {} > limit {max}+1",
            framer.pending()
        );
        at = c;
    }
    if let Some(f) = framer.finish() {
        out.push(own(f));
    }
    out
}

/// PROTOCOL.md §14.7 read literally: split on LF, strip one CR, oversize by content length, drop blank lines;
/// the unterminated remainder is a last line.
fn reference(max: usize, data: &[u8]) -> Vec<Out> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    let parts: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let last = parts.len() - 1;
    for (i, raw) in parts.into_iter().enumerate() {
        let terminated = i < last;
        pos += raw.len() as u64 + u64::from(terminated);
        let content = raw.strip_suffix(b"\r").unwrap_or(raw);
        if content.len() > max {
            out.push(Out::Oversize(raw.len() as u64, pos));
        } else if !content.iter().all(u8::is_ascii_whitespace) {
            out.push(Out::Line(content.to_vec(), pos));
        }
    }
    out
}

/// Mostly line material (LF, CR, blanks) so lines, blank lines, CRLF and oversize all occur often.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..600).prop_map(|raw| {
        raw.into_iter()
            .map(|b| match b % 16 {
                0..=5 => b'a',
                6..=8 => b'\n',
                9 | 10 => b'\r',
                11 | 12 => b' ',
                13 => 0xff,
                _ => b,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_chunking_matches_one_shot_and_reference(
        data in stream(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        max in 1usize..40,
    ) {
        let one_shot = framed(max, &data, &[]);
        prop_assert_eq!(&framed(max, &data, &cuts), &one_shot);
        prop_assert_eq!(&one_shot, &reference(max, &data));
    }

    #[test]
    fn byte_at_a_time_matches_one_shot(data in stream(), max in 1usize..40) {
        let cuts: Vec<usize> = (0..data.len()).collect();
        prop_assert_eq!(framed(max, &data, &cuts), framed(max, &data, &[]));
    }
}
