//! Serial port selection (PROTOCOL.md §15.1), re-evaluated before every open.

use std::path::{Path, PathBuf};

/// The panel's USB-UART bridge (WCH CH343).
pub const VID_PID: (&str, &str) = ("1a86", "55d3");

/// Where to look; tests point these at fixture trees.
#[derive(Debug, Clone)]
pub struct PortRoots {
    pub by_id: PathBuf,
    pub sys_tty: PathBuf,
    pub fallback: PathBuf,
}

impl Default for PortRoots {
    fn default() -> Self {
        Self {
            by_id: "/dev/serial/by-id".into(),
            sys_tty: "/sys/class/tty".into(),
            fallback: "/dev/ttyACM0".into(),
        }
    }
}

/// A non-empty configured port wins; else the first by-id entry (sorted) whose
/// USB device is 1a86:55d3; else /dev/ttyACM0.
pub fn select_port(configured: &str, roots: &PortRoots) -> PathBuf {
    if !configured.is_empty() {
        return configured.into();
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&roots.by_id)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    entries
        .into_iter()
        .find(|e| is_panel(e, &roots.sys_tty))
        .unwrap_or_else(|| roots.fallback.clone())
}

fn is_panel(link: &Path, sys_tty: &Path) -> bool {
    let Ok(target) = std::fs::canonicalize(link) else {
        return false;
    };
    let Some(node) = target.file_name() else {
        return false;
    };
    // /sys/class/tty/<node>/device is the USB interface; its parent is the device.
    let usb = sys_tty.join(node).join("device").join("..");
    let read = |f: &str| std::fs::read_to_string(usb.join(f)).map(|s| s.trim().to_ascii_lowercase());
    matches!((read("idVendor"), read("idProduct")), (Ok(v), Ok(p)) if v == VID_PID.0 && p == VID_PID.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn usb_tty(root: &Path, node: &str, vid: &str, pid: &str) -> R {
        let dev = root.join(format!("usb-{node}"));
        std::fs::create_dir_all(dev.join("intf"))?;
        std::fs::write(dev.join("idVendor"), format!("{vid}\n"))?;
        std::fs::write(dev.join("idProduct"), format!("{pid}\n"))?;
        let tty = root.join("sys/class/tty").join(node);
        std::fs::create_dir_all(&tty)?;
        std::os::unix::fs::symlink(dev.join("intf"), tty.join("device"))?;
        std::fs::write(root.join("dev").join(node), b"")?;
        Ok(())
    }

    #[test]
    fn selection_order() -> R {
        let t = tempfile::tempdir()?;
        let root = t.path();
        std::fs::create_dir_all(root.join("dev/serial/by-id"))?;
        usb_tty(root, "ttyACM1", "1a86", "7523")?;
        usb_tty(root, "ttyACM2", "1a86", "55d3")?;
        let by_id = root.join("dev/serial/by-id");
        std::os::unix::fs::symlink(root.join("dev/ttyACM1"), by_id.join("a-ch340"))?;
        std::os::unix::fs::symlink(root.join("dev/ttyACM2"), by_id.join("b-ch343"))?;
        let roots = PortRoots {
            by_id,
            sys_tty: root.join("sys/class/tty"),
            fallback: "/dev/ttyACM0".into(),
        };
        assert_eq!(
            select_port("/dev/ndefender-esp32", &roots),
            PathBuf::from("/dev/ndefender-esp32")
        );
        assert_eq!(
            select_port("", &roots),
            roots.by_id.join("b-ch343"),
            "only the CH343 by VID:PID"
        );
        let none = PortRoots {
            by_id: root.join("nope"),
            ..roots
        };
        assert_eq!(select_port("", &none), PathBuf::from("/dev/ttyACM0"));
        Ok(())
    }
}
