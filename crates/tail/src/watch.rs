//! Directory watch (PROTOCOL.md §14.1): inotify on the parent directory only wakes the follower early; the stat
//! poll is what guarantees progress, so every failure here degrades to polling instead of erroring.

use crate::identity::FileId;
use notify::event::AccessKind;
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

/// Everything that wakes the follower thread.
#[derive(Debug)]
pub enum Msg {
    Fs(notify::Result<Event>),
    Stop,
}

pub struct DirWatch {
    dir: PathBuf,
    file_name: OsString,
    tx: Sender<Msg>,
    watcher: Option<RecommendedWatcher>,
    /// Identity of the directory the live watch is on: a directory deleted and recreated at the
    /// same path needs a new watch, which a path comparison would miss.
    armed: Option<FileId>,
    warned: bool,
}

impl DirWatch {
    pub fn new(dir: PathBuf, file_name: OsString, tx: Sender<Msg>) -> Self {
        Self {
            dir,
            file_name,
            tx,
            watcher: None,
            armed: None,
            warned: false,
        }
    }

    /// Arms the watch if the directory exists and is not already watched under its current identity;
    /// drops it if the directory is gone. Cheap enough for every poll tick (one `stat`).
    pub fn ensure(&mut self) {
        match fs::metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => {
                let id = FileId::of(&meta);
                if self.armed != Some(id) || self.watcher.is_none() {
                    self.arm(id);
                }
            }
            _ => self.disarm(),
        }
    }

    /// Queue overflow or a watcher error: events may have been lost, start over with a fresh watch.
    pub fn rearm(&mut self) {
        self.disarm();
        self.ensure();
    }

    /// Whether `event` may concern the followed file; also re-arms when the directory itself moved
    /// or vanished (inotify drops the watch then).
    pub fn relevant(&mut self, event: &notify::Result<Event>) -> bool {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(dir = %self.dir.display(), error = %e, "watch error; re-arming");
                self.rearm();
                return true;
            }
        };
        if event.need_rescan() {
            tracing::debug!(dir = %self.dir.display(), "inotify queue overflow; re-arming");
            self.rearm();
            return true;
        }
        // Opens change nothing; every reader in the directory (ourselves included) would wake us.
        if matches!(event.kind, EventKind::Access(AccessKind::Open(_))) {
            return false;
        }
        if event.paths.is_empty() {
            return true;
        }
        let mut hit = false;
        for p in &event.paths {
            if is_dir_itself(p, &self.dir) {
                if matches!(
                    event.kind,
                    EventKind::Remove(_) | EventKind::Modify(notify::event::ModifyKind::Name(_))
                ) {
                    self.rearm();
                }
                hit = true;
            } else if p.file_name() == Some(self.file_name.as_os_str()) {
                hit = true;
            }
        }
        hit
    }

    fn arm(&mut self, id: FileId) {
        self.disarm();
        let tx = self.tx.clone();
        let handler = move |res: notify::Result<Event>| {
            // The follower being gone is the only send error; nothing left to wake then.
            let _ = tx.send(Msg::Fs(res));
        };
        let result = notify::recommended_watcher(handler)
            .and_then(|mut w| w.watch(&self.dir, RecursiveMode::NonRecursive).map(|()| w));
        match result {
            Ok(w) => {
                self.watcher = Some(w);
                self.armed = Some(id);
                self.warned = false;
            }
            Err(e) => {
                if !self.warned {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "cannot watch directory; polling only");
                    self.warned = true;
                }
            }
        }
    }

    fn disarm(&mut self) {
        self.watcher = None;
        self.armed = None;
    }
}

fn is_dir_itself(p: &Path, dir: &Path) -> bool {
    p == dir
}
