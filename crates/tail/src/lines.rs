//! Line framing (PROTOCOL.md §14.7): a pure state machine over a byte stream, independent of files and I/O.
//!
//! The framer is pull-based so the caller can stop between two lines (graceful stop must not
//! deliver half a chunk and then lose track of which lines were applied) and so a frame can borrow
//! the input chunk without copying in the common case where a whole line sits inside one chunk.

/// One event produced by [`LineFramer::next_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete, non-blank line: LF removed, one trailing CR removed, raw bytes (not yet decoded).
    Line {
        /// The line's bytes.
        data: &'a [u8],
        /// Stream position just after the line's LF (or after the last byte, for [`LineFramer::finish`]).
        end: u64,
    },
    /// A line longer than the limit was discarded.
    Oversize {
        /// Length of the discarded line, LF excluded.
        len: u64,
        /// Stream position just after the line's LF.
        end: u64,
    },
}

impl Frame<'_> {
    /// Stream position after this frame: once the frame is handled, a reader may resume here.
    pub fn end(&self) -> u64 {
        match self {
            Frame::Line { end, .. } | Frame::Oversize { end, .. } => *end,
        }
    }
}

/// What the framer is doing with the bytes of the line in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Keeping them in `buf`.
    Buffer,
    /// Discarding an oversize line; `reported` says whether its end yields a [`Frame::Oversize`].
    Skip { seen: u64, reported: bool },
}

/// Splits a byte stream into lines: LF-separated, one trailing CR stripped, whitespace-only lines
/// dropped, lines longer than `max_line_bytes` (CR excluded) discarded up to their LF without ever
/// holding more than `max_line_bytes + 1` bytes.
#[derive(Debug)]
pub struct LineFramer {
    max: usize,
    buf: Vec<u8>,
    mode: Mode,
    /// `buf` holds a line already handed out; cleared on the next call rather than before
    /// returning, because the returned frame borrows it.
    stale: bool,
    pos: u64,
    boundary: u64,
}

/// Where the current line's bytes come from once its LF has been found.
enum Source {
    Input(usize),
    Buf,
}

impl LineFramer {
    /// A framer positioned at stream offset 0.
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            max: max_line_bytes.max(1),
            buf: Vec::new(),
            mode: Mode::Buffer,
            stale: false,
            pos: 0,
            boundary: 0,
        }
    }

    /// Forgets any partial line and continues at stream position `pos`, which must be a line start.
    pub fn reset(&mut self, pos: u64) {
        self.clear_buf();
        self.mode = Mode::Buffer;
        self.pos = pos;
        self.boundary = pos;
    }

    /// Continues at `pos`, known to be inside a line whose start was never seen: its remainder is
    /// dropped silently (it is a fragment, not a line, so it is neither delivered nor counted oversize).
    pub fn reset_mid_line(&mut self, pos: u64) {
        self.reset(pos);
        self.mode = Mode::Skip {
            seen: 0,
            reported: false,
        };
    }

    /// Stream position of the next byte to be consumed.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Stream position just after the last LF consumed: every line before it has been returned.
    pub fn boundary(&self) -> u64 {
        self.boundary
    }

    /// Bytes held for the unterminated line in progress.
    pub fn pending(&self) -> usize {
        if self.stale {
            0
        } else {
            self.buf.len()
        }
    }

    /// Consumes `input` until one frame is complete (returned, `input` advanced past it) or the
    /// input is exhausted (`None`, the unterminated remainder buffered or skipped).
    pub fn next_frame<'r, 'i: 'r>(&'r mut self, input: &mut &'i [u8]) -> Option<Frame<'r>> {
        if self.stale {
            self.clear_buf();
        }
        loop {
            let chunk: &'i [u8] = std::mem::take(input);
            if chunk.is_empty() {
                return None;
            }
            let Some(lf) = chunk.iter().position(|&b| b == b'\n') else {
                self.absorb(chunk);
                return None;
            };
            let (head, rest) = chunk.split_at(lf);
            *input = rest.get(1..).unwrap_or_default();
            self.pos += lf as u64 + 1;
            self.boundary = self.pos;
            let end = self.pos;

            if let Mode::Skip { seen, reported } = self.mode {
                self.mode = Mode::Buffer;
                if reported {
                    return Some(Frame::Oversize {
                        len: seen + lf as u64,
                        end,
                    });
                }
                continue;
            }

            let source = if self.buf.is_empty() {
                Source::Input(content_len(head))
            } else if self.buf.len() + head.len() > self.max + 1 {
                let len = (self.buf.len() + head.len()) as u64;
                self.clear_buf();
                return Some(Frame::Oversize { len, end });
            } else {
                self.buf.extend_from_slice(head);
                Source::Buf
            };

            match source {
                Source::Input(n) => {
                    let line = head.get(..n).unwrap_or_default();
                    if line.len() > self.max {
                        return Some(Frame::Oversize {
                            len: head.len() as u64,
                            end,
                        });
                    }
                    if is_blank(line) {
                        continue;
                    }
                    return Some(Frame::Line { data: line, end });
                }
                Source::Buf => {
                    let raw_len = self.buf.len();
                    let n = content_len(&self.buf);
                    if n > self.max {
                        self.clear_buf();
                        return Some(Frame::Oversize {
                            len: raw_len as u64,
                            end,
                        });
                    }
                    if is_blank(self.buf.get(..n).unwrap_or_default()) {
                        self.clear_buf();
                        continue;
                    }
                    self.stale = true;
                    return Some(Frame::Line {
                        data: self.buf.get(..n).unwrap_or_default(),
                        end,
                    });
                }
            }
        }
    }

    /// End of this stream (the file was rotated away or deleted): the unterminated remainder, if any,
    /// becomes a last line (or an oversize report). The framer is then reset at the current position.
    pub fn finish(&mut self) -> Option<Frame<'_>> {
        if self.stale {
            self.clear_buf();
        }
        let end = self.pos;
        self.boundary = end;
        match std::mem::replace(&mut self.mode, Mode::Buffer) {
            Mode::Skip { seen, reported } => {
                if reported {
                    Some(Frame::Oversize { len: seen, end })
                } else {
                    None
                }
            }
            Mode::Buffer => {
                let n = content_len(&self.buf);
                if n > self.max {
                    let len = self.buf.len() as u64;
                    self.clear_buf();
                    return Some(Frame::Oversize { len, end });
                }
                if is_blank(self.buf.get(..n).unwrap_or_default()) {
                    self.clear_buf();
                    return None;
                }
                self.stale = true;
                Some(Frame::Line {
                    data: self.buf.get(..n).unwrap_or_default(),
                    end,
                })
            }
        }
    }

    /// Convenience for callers that never stop mid-chunk (tests, fuzzers): every frame of `chunk`.
    pub fn feed(&mut self, mut chunk: &[u8], mut each: impl FnMut(Frame<'_>)) {
        while let Some(frame) = self.next_frame(&mut chunk) {
            each(frame);
        }
    }

    /// Bytes of an unterminated line: kept while they may still fit, otherwise the line turns into
    /// a skip so memory stays bounded by the limit whatever the writer does.
    fn absorb(&mut self, chunk: &[u8]) {
        self.pos += chunk.len() as u64;
        match &mut self.mode {
            Mode::Skip { seen, .. } => *seen += chunk.len() as u64,
            Mode::Buffer => {
                // +1: the byte after `max` content bytes may be the CR that is stripped later.
                if self.buf.len() + chunk.len() > self.max + 1 {
                    self.mode = Mode::Skip {
                        seen: (self.buf.len() + chunk.len()) as u64,
                        reported: true,
                    };
                    self.clear_buf();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
        }
    }

    fn clear_buf(&mut self) {
        self.stale = false;
        self.buf.clear();
        // A past oversize line must not pin a megabyte per feed forever.
        if self.buf.capacity() > 64 * 1024 {
            self.buf.shrink_to(64 * 1024);
        }
    }
}

/// Length without the one trailing CR that CRLF writers add.
fn content_len(line: &[u8]) -> usize {
    match line.last() {
        Some(b'\r') => line.len() - 1,
        _ => line.len(),
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Line(String, u64),
        Oversize(u64, u64),
    }

    fn own(f: Frame<'_>) -> Owned {
        match f {
            Frame::Line { data, end } => Owned::Line(String::from_utf8_lossy(data).into_owned(), end),
            Frame::Oversize { len, end } => Owned::Oversize(len, end),
        }
    }

    fn run(max: usize, chunks: &[&[u8]]) -> Vec<Owned> {
        let mut framer = LineFramer::new(max);
        let mut out = Vec::new();
        for c in chunks {
            framer.feed(c, |f| out.push(own(f)));
        }
        out
    }

    fn line(s: &str, end: u64) -> Owned {
        Owned::Line(s.to_owned(), end)
    }

    #[test]
    fn whole_lines_in_one_chunk() {
        assert_eq!(run(100, &[b"a\nbb\n"]), vec![line("a", 2), line("bb", 5)]);
    }

    #[test]
    fn partial_line_waits_for_its_lf() {
        let mut framer = LineFramer::new(100);
        let mut out = Vec::new();
        framer.feed(b"{\"a\":", |f| out.push(own(f)));
        assert!(out.is_empty());
        assert_eq!(framer.pending(), 5);
        assert_eq!(framer.boundary(), 0);
        framer.feed(b"1}\n", |f| out.push(own(f)));
        assert_eq!(out, vec![line("{\"a\":1}", 8)]);
        assert_eq!(framer.boundary(), 8);
        assert_eq!(framer.pending(), 0);
    }

    #[test]
    fn one_trailing_cr_is_stripped() {
        assert_eq!(
            run(100, &[b"a\r\nb\r\r\nc\r", b"\n"]),
            vec![line("a", 3), line("b\r", 7), line("c", 10)]
        );
    }

    #[test]
    fn whitespace_lines_are_dropped_but_advance_the_boundary() {
        let mut framer = LineFramer::new(100);
        let mut out = Vec::new();
        framer.feed(b"\n  \t\n\r\nx\n \r\n", |f| out.push(own(f)));
        assert_eq!(out, vec![line("x", 9)]);
        assert_eq!(framer.boundary(), 12);
    }

    #[test]
    fn oversize_in_one_chunk_is_reported_and_next_line_intact() {
        assert_eq!(run(4, &[b"12345\nok\n"]), vec![Owned::Oversize(5, 6), line("ok", 9)]);
    }

    #[test]
    fn exactly_max_with_cr_is_not_oversize() {
        assert_eq!(run(4, &[b"1234\r", b"\n"]), vec![line("1234", 6)]);
        assert_eq!(run(4, &[b"1234\r\n"]), vec![line("1234", 6)]);
        assert_eq!(run(4, &[b"12345\r\n"]), vec![Owned::Oversize(6, 7)]);
    }

    #[test]
    fn oversize_across_chunk_boundaries_never_buffers_past_the_limit() {
        let mut framer = LineFramer::new(8);
        let mut out = Vec::new();
        framer.feed(b"ok\n0123", |f| out.push(own(f)));
        framer.feed(b"45678", |f| out.push(own(f)));
        assert!(framer.pending() <= 9);
        for _ in 0..100 {
            framer.feed(b"xxxxxxxxxxxxxxxx", |f| out.push(own(f)));
            assert_eq!(framer.pending(), 0);
        }
        framer.feed(b"yy\nnext\n", |f| out.push(own(f)));
        assert_eq!(
            out,
            vec![
                line("ok", 3),
                Owned::Oversize(9 + 1600 + 2, 3 + 1612),
                line("next", 3 + 1612 + 5)
            ]
        );
    }

    #[test]
    fn oversize_when_buffered_part_plus_tail_exceed() {
        assert_eq!(
            run(6, &[b"1234", b"567\nz\n"]),
            vec![Owned::Oversize(7, 8), line("z", 10)]
        );
    }

    #[test]
    fn finish_returns_unterminated_tail() {
        let mut framer = LineFramer::new(100);
        let mut out = Vec::new();
        framer.feed(b"a\ntail\r", |f| out.push(own(f)));
        if let Some(f) = framer.finish() {
            out.push(own(f));
        }
        assert_eq!(out, vec![line("a", 2), line("tail", 7)]);
        assert!(framer.finish().is_none());
        assert_eq!(framer.boundary(), 7);
    }

    #[test]
    fn finish_ignores_blank_tail_and_reports_skipped_tail() {
        let mut framer = LineFramer::new(3);
        framer.feed(b"  ", |_| {});
        assert!(framer.finish().is_none());
        framer.feed(b"toolong", |_| {});
        assert_eq!(framer.finish().map(own), Some(Owned::Oversize(7, 9)));
    }

    #[test]
    fn mid_line_start_drops_fragment_silently() {
        let mut framer = LineFramer::new(100);
        framer.reset_mid_line(10);
        let mut out = Vec::new();
        framer.feed(b"gment\"}\nnext\n", |f| out.push(own(f)));
        assert_eq!(out, vec![line("next", 23)]);
        framer.reset_mid_line(0);
        assert!(framer.finish().is_none());
    }

    #[test]
    fn reset_drops_partial_line() {
        let mut framer = LineFramer::new(100);
        framer.feed(b"half", |_| {});
        framer.reset(0);
        let mut out = Vec::new();
        framer.feed(b"new\n", |f| out.push(own(f)));
        assert_eq!(out, vec![line("new", 4)]);
    }

    #[test]
    fn stop_between_frames_keeps_the_rest_of_the_input() {
        let mut framer = LineFramer::new(100);
        let mut input: &[u8] = b"a\nb\nc";
        let first = framer.next_frame(&mut input).map(own);
        assert_eq!(first, Some(line("a", 2)));
        assert_eq!(input, b"b\nc");
        assert_eq!(framer.boundary(), 2);
    }
}
