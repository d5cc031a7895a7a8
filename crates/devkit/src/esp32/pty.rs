//! Pseudo-terminal plumbing: a raw-mode pty whose slave plays the panel's
//! `/dev/ttyACM*`, the master side as a non-blocking [`AsyncFd`], and the symlink.
//!
//! The emulator does not keep the slave open: while no host has it open the master
//! reads `EIO` and the emulator drops its output (like a board talking to a closed
//! port), except before the very first open, when up to [`BACKLOG_CAP`] bytes are
//! kept so the first host sees the boot noise.

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::pty::openpty;
use nix::sys::termios::{cfmakeraw, cfsetspeed, tcgetattr, tcsetattr, BaudRate, SetArg};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use tokio::io::unix::AsyncFd;

/// Bytes kept for the first host open.
pub const BACKLOG_CAP: usize = 4096;

/// Host side of the master, as far as the emulator can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Bytes from the host.
    Data(usize),
    /// The host has the port open, nothing to read.
    Idle,
    /// No process has the device side open (`EIO`).
    NoHost,
}

/// The master side of one emulated port.
#[derive(Debug)]
pub struct Port {
    /// Always Some; an Option only so that it can be registered anew.
    fd: Option<AsyncFd<OwnedFd>>,
    path: PathBuf,
    host: bool,
    ever_opened: bool,
    backlog: Vec<u8>,
    /// Output bytes lost because no host was reading (or the pty buffer was full).
    pub bytes_discarded: u64,
}

impl Port {
    /// Opens a pty, sets the device side raw at 115200 8N1, closes it and returns
    /// the master. Must be called inside a tokio runtime.
    pub fn open() -> io::Result<Self> {
        let pty = openpty(None, None).map_err(io::Error::from)?;
        let mut t = tcgetattr(&pty.slave).map_err(io::Error::from)?;
        cfmakeraw(&mut t);
        cfsetspeed(&mut t, BaudRate::B115200).map_err(io::Error::from)?;
        tcsetattr(&pty.slave, SetArg::TCSANOW, &t).map_err(io::Error::from)?;
        let path = nix::unistd::ttyname(&pty.slave).map_err(io::Error::from)?;
        let flags = fcntl(&pty.master, FcntlArg::F_GETFL).map_err(io::Error::from)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&pty.master, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        fcntl(&pty.master, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(io::Error::from)?;
        drop(pty.slave);
        Ok(Self {
            fd: Some(register(pty.master)?),
            path,
            host: false,
            ever_opened: false,
            backlog: Vec::new(),
            bytes_discarded: 0,
        })
    }

    /// The device side (`/dev/pts/N`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a host had the device side open at the last read.
    pub fn host_present(&self) -> bool {
        self.host
    }

    fn raw(&self) -> io::Result<&OwnedFd> {
        self.fd
            .as_ref()
            .map(AsyncFd::get_ref)
            .ok_or_else(|| io::Error::other("pty not registered"))
    }

    /// Tokio keeps a hang-up (seen while no host had the device side open) as a
    /// sticky "read closed" readiness; registering the fd anew clears it.
    fn reregister(&mut self) -> io::Result<()> {
        if let Some(fd) = self.fd.take() {
            self.fd = Some(register(fd.into_inner())?);
        }
        Ok(())
    }

    fn try_read(&mut self, buf: &mut [u8]) -> ReadOutcome {
        let res = match self.raw() {
            Ok(fd) => nix::unistd::read(fd, buf),
            Err(_) => Err(Errno::EBADF),
        };
        match res {
            Ok(0) | Err(Errno::EIO) => self.set_host(false),
            Ok(n) => {
                self.set_host(true);
                ReadOutcome::Data(n)
            }
            Err(Errno::EAGAIN) => {
                self.set_host(true);
                ReadOutcome::Idle
            }
            Err(_) => self.set_host(false),
        }
    }

    fn set_host(&mut self, present: bool) -> ReadOutcome {
        if present && !self.host {
            self.host = true;
            if let Err(e) = self.reregister() {
                tracing::warn!("esp32-sim: re-registering the pty: {e}");
            }
            if !self.ever_opened {
                self.ever_opened = true;
                let backlog = std::mem::take(&mut self.backlog);
                self.write(&backlog);
            }
        }
        if !present {
            self.host = false;
        }
        ReadOutcome::NoHost
    }

    /// Non-blocking probe used while no host is known: reads whatever is there.
    pub fn probe(&mut self, buf: &mut [u8]) -> ReadOutcome {
        self.try_read(buf)
    }

    /// Waits for input while a host is present.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        loop {
            let fd = self.fd.as_ref().ok_or_else(|| io::Error::other("pty not registered"))?;
            let mut guard = fd.readable().await?;
            match nix::unistd::read(guard.get_inner(), buf) {
                Err(Errno::EAGAIN) => guard.clear_ready(),
                Ok(0) | Err(Errno::EIO) => {
                    drop(guard);
                    return Ok(self.set_host(false));
                }
                Ok(n) => return Ok(ReadOutcome::Data(n)),
                Err(e) => {
                    drop(guard);
                    self.set_host(false);
                    return Err(e.into());
                }
            }
        }
    }

    /// Writes without blocking. With no host the bytes are dropped (kept, up to
    /// [`BACKLOG_CAP`], before the first open); if the pty buffer is full (host not
    /// reading) the rest is dropped too.
    pub fn write(&mut self, mut bytes: &[u8]) {
        if !self.host {
            if self.ever_opened {
                self.bytes_discarded += bytes.len() as u64;
            } else {
                self.backlog.extend_from_slice(bytes);
                if self.backlog.len() > BACKLOG_CAP {
                    let cut = self.backlog.len() - BACKLOG_CAP;
                    self.backlog.drain(..cut);
                    self.bytes_discarded += cut as u64;
                }
            }
            return;
        }
        while !bytes.is_empty() {
            let res = match self.raw() {
                Ok(fd) => nix::unistd::write(fd, bytes),
                Err(_) => Err(Errno::EBADF),
            };
            match res {
                Ok(n) => bytes = &bytes[n..],
                Err(Errno::EINTR) => {}
                Err(Errno::EIO) => {
                    self.host = false;
                    self.bytes_discarded += bytes.len() as u64;
                    return;
                }
                Err(_) => {
                    self.bytes_discarded += bytes.len() as u64;
                    return;
                }
            }
        }
    }
}

fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // `AsyncFd::new` is deprecated because a borrowed raw fd could be closed under
    // it; an `OwnedFd` cannot, so the safe constructor is sound here and keeps this
    // crate free of `unsafe`.
    #[allow(deprecated)]
    AsyncFd::new(fd)
}

/// Points `link` at `target`, atomically replacing an existing symlink. A regular
/// file or directory at `link` is an error (never deleted).
pub fn point_link(link: &Path, target: &Path) -> io::Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(link) {
        if !meta.file_type().is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a symlink", link.display()),
            ));
        }
    }
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "link".into());
    let tmp = link.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Removes `link` if it is a symlink (anything else is left alone).
pub fn remove_link(link: &Path) {
    if let Ok(meta) = std::fs::symlink_metadata(link) {
        if meta.file_type().is_symlink() {
            let _ = std::fs::remove_file(link);
        }
    }
}
