//! Checkpoint file (PROTOCOL.md §14.9): where to resume, stored so that a crash leaves either the old or the new
//! version on disk, never a torn one.

use crate::identity::{FileId, Head, HEAD_MAX};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// On-disk form: `{path,dev,ino,head_len,head_fnv,offset}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The followed path (not necessarily where the file lives now: it may have been rotated).
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub head_len: u64,
    pub head_fnv: u64,
    /// Byte after the last LF whose line was fully delivered.
    pub offset: u64,
}

/// How far one particular file has been delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub id: FileId,
    pub head: Head,
    pub offset: u64,
}

impl Checkpoint {
    pub fn new(path: &Path, pos: &Position) -> Self {
        Self {
            path: path.to_path_buf(),
            dev: pos.id.dev,
            ino: pos.id.ino,
            head_len: pos.head.len,
            head_fnv: pos.head.fnv,
            offset: pos.offset,
        }
    }

    pub fn id(&self) -> FileId {
        FileId {
            dev: self.dev,
            ino: self.ino,
        }
    }
}

/// `Ok(None)`: no checkpoint. `Err` with `InvalidData`: the file exists but is not a checkpoint.
pub fn load(path: &Path) -> io::Result<Option<Checkpoint>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let ck: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if ck.head_len > HEAD_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("head_len {} exceeds {HEAD_MAX}", ck.head_len),
        ));
    }
    Ok(Some(ck))
}

/// Temp file beside the target, fsync, rename over it, fsync the directory: after a crash or power
/// loss the checkpoint is the old one or the new one, and the rename itself is durable.
pub fn store(path: &Path, ck: &Checkpoint) -> io::Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "checkpoint path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);

    let mut json = serde_json::to_vec(ck).map_err(io::Error::other)?;
    json.push(b'\n');
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(&dir)?.sync_all()
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            path: PathBuf::from("/var/log/x.jsonl"),
            dev: 2049,
            ino: 77,
            head_len: 1024,
            head_fnv: u64::MAX - 3,
            offset: 123_456,
        }
    }

    #[test]
    fn roundtrip_through_disk_creates_parent() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state/sub/tail-x.json");
        store(&path, &sample())?;
        assert_eq!(load(&path)?, Some(sample()));
        let names: Vec<_> = fs::read_dir(parent_dir(&path))?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "temp file left behind: {names:?}");
        Ok(())
    }

    #[test]
    fn field_names_are_the_spec_ones() -> io::Result<()> {
        let v = serde_json::to_value(sample()).map_err(io::Error::other)?;
        let mut keys: Vec<_> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        keys.sort();
        assert_eq!(keys, ["dev", "head_fnv", "head_len", "ino", "offset", "path"]);
        Ok(())
    }

    #[test]
    fn absent_is_none_and_garbage_is_invalid_data() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("ck.json");
        assert_eq!(load(&path)?, None);
        for junk in [&b"{\"path\":"[..], b"", b"[]", b"{\"path\":\"/x\",\"dev\":1}"] {
            fs::write(&path, junk)?;
            let err = load(&path).err().map(|e| e.kind());
            assert_eq!(err, Some(io::ErrorKind::InvalidData), "{junk:?}");
        }
        Ok(())
    }
}
