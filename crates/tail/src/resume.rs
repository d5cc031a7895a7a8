//! Startup (PROTOCOL.md §14.10): decide, from the checkpoint and what is on disk now, which bytes are still owed
//! to the sink.

use crate::checkpoint::Checkpoint;
use crate::identity::{current_head, read_head, starts_line, FileId, Head, HEAD_MAX};
use crate::StartPosition;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// A regular file opened for reading, identified through its descriptor (not the path, which may
/// already name another file).
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    pub id: FileId,
    pub size: u64,
}

/// Opens `path` if it is a regular file; `None` if nothing is there. The `stat` first keeps a FIFO
/// at the path from blocking the follower in `open`.
pub fn open_regular(path: &Path) -> io::Result<Option<Opened>> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(not_regular(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(path));
    }
    Ok(Some(Opened {
        file,
        id: FileId::of(&meta),
        size: meta.len(),
    }))
}

/// Identity and size of what is at `path` now (symlinks followed), `None` if nothing.
pub fn stat_regular(path: &Path) -> io::Result<Option<(FileId, u64)>> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(Some((FileId::of(&m), m.len()))),
        Ok(_) => Err(not_regular(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn not_regular(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is not a regular file", path.display()),
    )
}

/// `<path>.1`, where logrotate (and most writers' own rotation) puts the previous file.
pub fn rotated_path(path: &Path) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(".1");
    PathBuf::from(s)
}

/// Where reading of the current file begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// At a line start.
    Line(u64),
    /// Inside a line whose beginning is skipped (start position `end` while a line is half written).
    MidLine(u64),
}

impl StartAt {
    pub fn offset(self) -> u64 {
        match self {
            StartAt::Line(o) | StartAt::MidLine(o) => o,
        }
    }
}

#[derive(Debug)]
pub struct Resume {
    pub opened: Opened,
    pub head: Head,
    pub at: StartAt,
}

#[derive(Debug)]
pub struct Plan {
    /// The rotated-away file to finish first, from the checkpointed offset.
    pub prev: Option<Resume>,
    /// The file at the path; `None` if absent (then read from 0 once it appears).
    pub current: Option<Resume>,
    /// The checkpointed file was replaced while we were down.
    pub rotated: bool,
    /// The checkpointed file was truncated or rewritten while we were down.
    pub truncated: bool,
    pub why: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    /// Same inode, same head, long enough.
    Identity,
    /// Same head and long enough under another identity (file restored or copied, device
    /// renumbered across a reboot).
    Fingerprint,
    No,
}

fn check(o: &Opened, ck: &Checkpoint) -> io::Result<Match> {
    if o.size < ck.offset || o.size < ck.head_len {
        return Ok(Match::No);
    }
    let head = read_head(&o.file, ck.head_len)?;
    if head.map(|h| h.fnv) != Some(ck.head_fnv) {
        return Ok(Match::No);
    }
    if o.id == ck.id() {
        return Ok(Match::Identity);
    }
    // Without the inode as evidence the head must cover everything that was delivered (or a full
    // kilobyte), otherwise a short common prefix would be mistaken for the same file.
    if ck.head_len > 0 && ck.head_len >= ck.offset.min(HEAD_MAX) {
        return Ok(Match::Fingerprint);
    }
    Ok(Match::No)
}

/// Resuming inside a file: the head must describe the bytes up to the resume point so later
/// in-place-rewrite checks compare like with like.
fn resume_at(opened: Opened, ck: &Checkpoint) -> io::Result<Resume> {
    let want = ck.offset.min(HEAD_MAX).max(ck.head_len);
    let head = read_head(&opened.file, want)?.unwrap_or(Head {
        len: ck.head_len,
        fnv: ck.head_fnv,
    });
    // Offsets are always line starts when we write them; a hand-edited or foreign checkpoint may
    // not be, and a fragment must not be delivered as if it were a line.
    let at = if starts_line(&opened.file, ck.offset)? {
        StartAt::Line(ck.offset)
    } else {
        StartAt::MidLine(ck.offset)
    };
    Ok(Resume { opened, head, at })
}

fn from_start(opened: Opened) -> Resume {
    Resume {
        opened,
        head: Head::EMPTY,
        at: StartAt::Line(0),
    }
}

pub fn plan(path: &Path, ck: Option<&Checkpoint>, start: StartPosition) -> io::Result<Plan> {
    let current = open_regular(path)?;
    let Some(ck) = ck else {
        let Some(cur) = current else {
            return Ok(Plan {
                prev: None,
                current: None,
                rotated: false,
                truncated: false,
                why: "no checkpoint; file absent, will read it from 0 when it appears",
            });
        };
        let resume = match start {
            StartPosition::Beginning => from_start(cur),
            StartPosition::End => {
                let size = cur.size;
                let at = if starts_line(&cur.file, size)? {
                    StartAt::Line(size)
                } else {
                    StartAt::MidLine(size)
                };
                let head = current_head(&cur.file)?;
                Resume { opened: cur, head, at }
            }
        };
        return Ok(Plan {
            prev: None,
            current: Some(resume),
            rotated: false,
            truncated: false,
            why: match start {
                StartPosition::Beginning => "no checkpoint; start_position beginning",
                StartPosition::End => "no checkpoint; start_position end",
            },
        });
    };

    let cur_match = match &current {
        Some(o) => check(o, ck)?,
        None => Match::No,
    };
    if cur_match == Match::Identity {
        return resume_current(current, ck, "checkpoint matches the file");
    }

    let prev = match open_regular(&rotated_path(path)) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(path = %rotated_path(path).display(), error = %e, "cannot open rotated file");
            None
        }
    };
    let prev_match = match &prev {
        Some(o) => check(o, ck)?,
        None => Match::No,
    };

    if prev_match == Match::Identity {
        return drain_prev(
            prev,
            current,
            ck,
            "file rotated while stopped; finishing <path>.1 first",
        );
    }
    if cur_match == Match::Fingerprint {
        return resume_current(current, ck, "checkpoint matches the file by fingerprint");
    }
    if prev_match == Match::Fingerprint {
        return drain_prev(
            prev,
            current,
            ck,
            "file rotated while stopped (fingerprint); finishing <path>.1 first",
        );
    }
    let same_inode = current.as_ref().is_some_and(|o| o.id == ck.id());
    Ok(Plan {
        prev: None,
        rotated: current.is_some() && !same_inode,
        truncated: same_inode,
        current: current.map(from_start),
        why: "checkpoint does not match the file or <path>.1; reading the file from 0",
    })
}

fn resume_current(current: Option<Opened>, ck: &Checkpoint, why: &'static str) -> io::Result<Plan> {
    let current = match current {
        Some(o) => Some(resume_at(o, ck)?),
        None => None,
    };
    Ok(Plan {
        prev: None,
        current,
        rotated: false,
        truncated: false,
        why,
    })
}

fn drain_prev(prev: Option<Opened>, current: Option<Opened>, ck: &Checkpoint, why: &'static str) -> io::Result<Plan> {
    let prev = match prev {
        Some(o) => Some(resume_at(o, ck)?),
        None => None,
    };
    Ok(Plan {
        prev,
        current: current.map(from_start),
        rotated: true,
        truncated: false,
        why,
    })
}
