//! File identity (PROTOCOL.md §14.2): which file is this, and is its beginning still what we read?

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

/// The fingerprint covers at most this many leading bytes.
pub const HEAD_MAX: u64 = 1024;

/// `(st_dev, st_ino)`: survives renames, changes when a new file takes the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// FNV-1a-64 of the first `len` bytes. Detects in-place rewrites and copies that keep the inode
/// (or lose it: a restored file, a device number that changed across a reboot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub len: u64,
    pub fnv: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Head {
    pub const EMPTY: Head = Head {
        len: 0,
        fnv: FNV_OFFSET,
    };

    /// Extends the fingerprint with the bytes of `data`, which sits at file offset `at`; only the
    /// part inside the first [`HEAD_MAX`] bytes and right after what is already covered counts.
    /// Returns false if `data` does not touch the covered prefix contiguously (the caller then
    /// re-reads the head from the file).
    pub fn extend(&mut self, at: u64, data: &[u8]) -> bool {
        if self.len >= HEAD_MAX {
            return true;
        }
        let data_end = at + data.len() as u64;
        if at > self.len {
            return false;
        }
        let from = self.len - at;
        let to = data_end.min(HEAD_MAX);
        if to <= self.len {
            return true;
        }
        let (Ok(from), Ok(to_rel)) = (usize::try_from(from), usize::try_from(to - at)) else {
            return false;
        };
        if let Some(part) = data.get(from..to_rel) {
            self.fnv = fnv1a64_continue(self.fnv, part);
            self.len = to;
        }
        true
    }
}

pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_continue(FNV_OFFSET, bytes)
}

fn fnv1a64_continue(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The fingerprint of exactly the first `len` bytes, or `None` if the file is shorter now.
pub fn read_head(file: &File, len: u64) -> io::Result<Option<Head>> {
    let mut buf = [0u8; HEAD_MAX as usize];
    let want = usize::try_from(len.min(HEAD_MAX)).unwrap_or(0);
    let got = read_prefix(file, buf.get_mut(..want).unwrap_or_default())?;
    if got < want {
        return Ok(None);
    }
    Ok(Some(Head {
        len: want as u64,
        fnv: fnv1a64(buf.get(..got).unwrap_or_default()),
    }))
}

/// The fingerprint of the first `min(HEAD_MAX, size)` bytes as they are now.
pub fn current_head(file: &File) -> io::Result<Head> {
    let mut buf = [0u8; HEAD_MAX as usize];
    let got = read_prefix(file, &mut buf)?;
    let bytes = buf.get(..got).unwrap_or_default();
    Ok(Head {
        len: got as u64,
        fnv: fnv1a64(bytes),
    })
}

/// Whether the byte just before `offset` is a line end, i.e. `offset` starts a line.
pub fn starts_line(file: &File, offset: u64) -> io::Result<bool> {
    if offset == 0 {
        return Ok(true);
    }
    let mut b = [0u8; 1];
    let got = read_at_retry(file, &mut b, offset - 1)?;
    Ok(got == 1 && b[0] == b'\n')
}

fn read_prefix(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..) {
        if rest.is_empty() {
            break;
        }
        let n = read_at_retry(file, rest, got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// `pread` that swallows EINTR, which is not an error worth a one-second retry.
pub fn read_at_retry(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn incremental_head_equals_one_shot() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        for step in [1usize, 7, 100, 1023, 1024, 1500, 3000] {
            let mut h = Head::EMPTY;
            let mut at = 0usize;
            for chunk in data.chunks(step) {
                assert!(h.extend(at as u64, chunk));
                at += chunk.len();
            }
            assert_eq!(
                h,
                Head {
                    len: 1024,
                    fnv: fnv1a64(&data[..1024])
                },
                "step {step}"
            );
        }
    }

    #[test]
    fn head_extend_skips_already_covered_bytes_and_refuses_gaps() {
        let data = b"0123456789";
        let mut h = Head {
            len: 4,
            fnv: fnv1a64(b"0123"),
        };
        assert!(h.extend(2, &data[2..6]));
        assert_eq!(
            h,
            Head {
                len: 6,
                fnv: fnv1a64(b"012345")
            }
        );
        assert!(!h.extend(8, &data[8..]));
    }
}
