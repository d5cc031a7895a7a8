//! The JSONL feed writer: one line per event, appended; when the next line would take the file
//! past `max_bytes` the file is renamed to `<path>.1` (replacing the previous one) and a new
//! file started, so the feed can never fill the SD card (at most 2 × max_bytes on disk). The
//! aggregator's tailer follows the rename (aggregator §3 T5/T10).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub struct JsonlWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    pub rotations: u64,
}

impl JsonlWriter {
    /// Opens `path` for appending (creating its directory); `max_bytes` 0 = no cap.
    pub fn open(path: &Path, max_bytes: u64) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            file,
            size,
            max_bytes,
            rotations: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `line` plus LF in one write, so a reader never sees half a line from us.
    pub fn write_line(&mut self, line: &str) -> io::Result<()> {
        let len = line.len() as u64 + 1;
        if self.max_bytes > 0 && self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.file.write_all(&buf)?;
        self.size += len;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        std::fs::rename(&self.path, PathBuf::from(old))?;
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = 0;
        self.rotations += 1;
        Ok(())
    }
}
