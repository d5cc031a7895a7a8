//! System stats from procfs, sysfs and statvfs (system-controller §3.1). The
//! paths come from [`SystemPaths`] so tests point the probe at fixture trees.

use crate::config::SystemConfig;
use ndefender_contract::enums::Status;
use ndefender_contract::system::{CpuStats, DiskUsage, RamStats, StorageStats, SystemStats, VersionInfo};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct SystemPaths {
    /// `/proc` normally.
    pub proc_root: PathBuf,
    pub thermal: PathBuf,
    /// None: no throttled file (the key is omitted).
    pub throttled: Option<PathBuf>,
    pub root: PathBuf,
    pub logs_dir: PathBuf,
}

impl SystemPaths {
    pub fn from_config(cfg: &SystemConfig) -> Self {
        let throttled = if cfg.throttled_path.is_empty() {
            find_throttled(Path::new("/sys/devices/platform"))
        } else {
            Some(PathBuf::from(&cfg.throttled_path))
        };
        Self {
            proc_root: "/proc".into(),
            thermal: PathBuf::from(&cfg.thermal_path),
            throttled,
            root: "/".into(),
            logs_dir: PathBuf::from(&cfg.logs_dir),
        }
    }
}

/// `soc:firmware/get_throttled`, else the first `get_throttled` at depth ≤ 3.
fn find_throttled(base: &Path) -> Option<PathBuf> {
    let direct = base.join("soc/soc:firmware/get_throttled");
    if direct.is_file() {
        return Some(direct);
    }
    fn walk(dir: &Path, depth: u32) -> Option<PathBuf> {
        let entries = std::fs::read_dir(dir).ok()?;
        let mut dirs = Vec::new();
        for e in entries.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == "get_throttled") && p.is_file() {
                return Some(p);
            }
            // Symlinks are skipped: sysfs is full of cycles.
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(p);
            }
        }
        if depth == 0 {
            return None;
        }
        dirs.sort();
        dirs.into_iter().find_map(|d| walk(&d, depth - 1))
    }
    walk(base, 2)
}

/// `/proc/uptime` first value, floored.
pub fn parse_uptime(s: &str) -> Option<u64> {
    let f: f64 = s.split_whitespace().next()?.parse().ok()?;
    (f.is_finite() && f >= 0.0).then(|| f.floor() as u64)
}

/// `/proc/stat` line `cpu`: (total, idle + iowait) in jiffies.
pub fn parse_stat(s: &str) -> Option<(u64, u64)> {
    let line = s.lines().find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).map_while(|x| x.parse().ok()).collect();
    if v.len() < 4 {
        return None;
    }
    // guest and guest_nice are already counted in user and nice.
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total, idle))
}

/// 100·(Δtotal − Δidle)/Δtotal, one decimal; None without progress.
pub fn cpu_usage(prev: (u64, u64), cur: (u64, u64)) -> Option<f64> {
    let dt = cur.0.checked_sub(prev.0)?;
    let di = cur.1.checked_sub(prev.1)?;
    if dt == 0 {
        return None;
    }
    let busy = dt.saturating_sub(di) as f64;
    Some(round(100.0 * busy / dt as f64, 1))
}

pub fn parse_loadavg(s: &str) -> Option<(f64, f64, f64)> {
    let mut it = s.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// (MemTotal, MemAvailable) in kB.
pub fn parse_meminfo(s: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(':'))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("MemTotal")?, field("MemAvailable")?))
}

/// Millidegrees → °C with one decimal.
pub fn parse_thermal(s: &str) -> Option<f64> {
    let m: f64 = s.trim().parse().ok()?;
    Some(round(m / 1000.0, 1))
}

/// `throttled=0x50005` or plain `50005`, hexadecimal either way.
pub fn parse_throttled(s: &str) -> Option<i64> {
    let t = s.trim();
    let t = t.rsplit('=').next().unwrap_or(t).trim();
    let t = t.trim_start_matches("0x").trim_start_matches("0X");
    i64::from_str_radix(t, 16).ok()
}

pub fn round(v: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (v * p).round() / p
}

fn gib(bytes: u64) -> f64 {
    round(bytes as f64 / (1u64 << 30) as f64, 3)
}

fn disk_usage(path: &Path) -> Option<DiskUsage> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    let frsize = st.fragment_size() as u64;
    let blocks = st.blocks() as u64;
    let bfree = st.blocks_free() as u64;
    let bavail = st.blocks_available() as u64;
    Some(DiskUsage {
        total_gb: Some(gib(blocks * frsize)),
        used_gb: Some(gib(blocks.saturating_sub(bfree) * frsize)),
        free_gb: Some(gib(bavail * frsize)),
    })
}

/// Build information reported as `version`.
pub fn version_info() -> VersionInfo {
    let build_ts = option_env!("NDEFENDER_BUILD_TS").and_then(|s| s.parse().ok());
    let git_sha = option_env!("NDEFENDER_GIT_SHA")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    VersionInfo {
        app: Some("ndefender-system-controller".into()),
        git_sha,
        build_ts,
    }
}

/// One system probe with the previous `/proc/stat` sample it needs for `usage_percent`.
pub struct SystemProbe {
    pub paths: SystemPaths,
    cfg: SystemConfig,
    prev_cpu: Option<(u64, u64)>,
}

/// Disk facts read separately so tests need no statvfs fixtures.
pub struct Reading {
    pub stats: SystemStats,
}

impl SystemProbe {
    pub fn new(paths: SystemPaths, cfg: SystemConfig) -> Self {
        Self {
            paths,
            cfg,
            prev_cpu: None,
        }
    }

    fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.paths.proc_root.join(name)).ok()
    }

    /// Reads every source; a failing one is named in `last_error` while the rest is reported.
    pub fn sample(&mut self, now_ms: u64) -> SystemStats {
        let mut unreadable: Option<&'static str> = None;
        let mut miss = |s: &'static str| {
            if unreadable.is_none() {
                unreadable = Some(s);
            }
        };
        let uptime = self.read("uptime").as_deref().and_then(parse_uptime);
        if uptime.is_none() {
            miss("uptime_unreadable");
        }
        let stat = self.read("stat").as_deref().and_then(parse_stat);
        if stat.is_none() {
            miss("stat_unreadable");
        }
        let usage = match (self.prev_cpu, stat) {
            (Some(p), Some(c)) => cpu_usage(p, c),
            _ => None,
        };
        if stat.is_some() {
            self.prev_cpu = stat;
        }
        let load = self.read("loadavg").as_deref().and_then(parse_loadavg);
        if load.is_none() {
            miss("loadavg_unreadable");
        }
        let mem = self.read("meminfo").as_deref().and_then(parse_meminfo);
        if mem.is_none() {
            miss("meminfo_unreadable");
        }
        let temp = std::fs::read_to_string(&self.paths.thermal)
            .ok()
            .as_deref()
            .and_then(parse_thermal);
        let throttled = self
            .paths
            .throttled
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .as_deref()
            .and_then(parse_throttled);
        let root = disk_usage(&self.paths.root);
        if root.is_none() {
            miss("statvfs_unreadable");
        }
        let logs = if self.paths.logs_dir.is_dir() {
            disk_usage(&self.paths.logs_dir)
        } else {
            None
        };

        let ram = mem.map(|(total_kb, avail_kb)| {
            let total = (total_kb / 1024) as i64;
            let free = (avail_kb / 1024) as i64;
            RamStats {
                total_mb: Some(total),
                free_mb: Some(free),
                used_mb: Some(total - free),
            }
        });
        let cpu = CpuStats {
            temp_c: temp,
            load1: load.map(|l| l.0),
            load5: load.map(|l| l.1),
            load15: load.map(|l| l.2),
            usage_percent: usage,
        };
        let cpu_any = cpu != CpuStats::default();
        let storage = (root.is_some() || logs.is_some()).then(|| StorageStats {
            root: root.clone(),
            logs,
        });

        let root_free_pct = root.as_ref().and_then(|r| match (r.free_gb, r.total_gb) {
            (Some(f), Some(t)) if t > 0.0 => Some(100.0 * f / t),
            _ => None,
        });
        let cause = if throttled.is_some_and(|f| f & 0x1 != 0) {
            Some("undervoltage")
        } else if throttled.is_some_and(|f| f & 0x4 != 0) {
            Some("throttled")
        } else if temp.is_some_and(|t| t >= self.cfg.temp_warn_c) {
            Some("cpu_hot")
        } else if root_free_pct.is_some_and(|p| p < self.cfg.disk_warn_free_percent) {
            Some("disk_low")
        } else {
            unreadable
        };

        let mut s = SystemStats {
            timestamp_ms: Some(now_ms),
            status: Some(if cause.is_some() { Status::Degraded } else { Status::Ok }),
            uptime_s: uptime,
            version: Some(version_info()),
            cpu: cpu_any.then_some(cpu),
            ram: ram.clone(),
            storage,
            last_error: cause.map(str::to_owned),
            throttled_flags: throttled,
            ..Default::default()
        };
        if self.cfg.legacy_flat_fields {
            s.cpu_temp_c = temp;
            s.cpu_usage_percent = usage;
            s.load_1m = load.map(|l| l.0);
            s.load_5m = load.map(|l| l.1);
            s.load_15m = load.map(|l| l.2);
            s.ram_used_mb = ram.as_ref().and_then(|r| r.used_mb);
            s.ram_total_mb = ram.as_ref().and_then(|r| r.total_mb);
            s.disk_used_gb = root.as_ref().and_then(|r| r.used_gb).map(|g| g.trunc() as i64);
            s.disk_total_gb = root.as_ref().and_then(|r| r.total_gb).map(|g| g.trunc() as i64);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc")
    }

    fn probe(dir: &Path, throttled: Option<&str>) -> SystemProbe {
        let cfg = SystemConfig::default();
        SystemProbe::new(
            SystemPaths {
                proc_root: dir.to_owned(),
                thermal: dir.join("thermal_temp"),
                throttled: throttled.map(|t| dir.join(t)),
                root: "/".into(),
                logs_dir: dir.join("no-such-logs"),
            },
            cfg,
        )
    }

    #[test]
    fn parsers() {
        assert_eq!(parse_uptime("4671.93 9000.00\n"), Some(4671));
        assert_eq!(parse_loadavg("0.42 0.38 0.30 1/234 5678\n"), Some((0.42, 0.38, 0.3)));
        assert_eq!(parse_thermal("52312\n"), Some(52.3));
        assert_eq!(parse_throttled("throttled=0x50005\n"), Some(0x50005));
        assert_eq!(parse_throttled("50005\n"), Some(0x50005));
        assert_eq!(parse_throttled("0x0"), Some(0));
        assert_eq!(
            parse_stat("cpu  10 0 10 70 10 0 0 0 0 0\ncpu0 1 2 3 4\n"),
            Some((100, 80))
        );
        assert_eq!(cpu_usage((100, 80), (200, 150)), Some(30.0));
        assert_eq!(cpu_usage((100, 80), (100, 80)), None);
        assert_eq!(
            parse_meminfo("MemTotal:        8126464 kB\nMemFree:  100 kB\nMemAvailable:    6887424 kB\n"),
            Some((8126464, 6887424))
        );
    }

    #[test]
    fn first_sample_has_no_usage_second_has_the_fixture_delta() -> Result<(), Box<dyn std::error::Error>> {
        let src = fixtures();
        let dir = tempfile::tempdir()?;
        for f in [
            "uptime",
            "loadavg",
            "meminfo",
            "thermal_temp",
            "throttled_50005",
            "throttled_0",
        ] {
            std::fs::copy(src.join(f), dir.path().join(f))?;
        }
        std::fs::copy(src.join("stat.1"), dir.path().join("stat"))?;
        let mut p = probe(dir.path(), Some("throttled_0"));
        let s1 = p.sample(1);
        let cpu1 = s1.cpu.clone().ok_or("cpu")?;
        assert_eq!(cpu1.usage_percent, None);
        assert_eq!(s1.cpu_usage_percent, None);
        std::fs::copy(src.join("stat.2"), dir.path().join("stat"))?;
        let s2 = p.sample(2);
        // stat.1 → stat.2: Δtotal 1000, Δ(idle+iowait) 875
        assert_eq!(s2.cpu.as_ref().and_then(|c| c.usage_percent), Some(12.5));
        assert_eq!(s2.cpu_usage_percent, Some(12.5));
        let ram = s2.ram.clone().ok_or("ram")?;
        assert_eq!(ram.free_mb, Some(6726));
        assert_eq!(ram.total_mb, Some(7936));
        assert_eq!(ram.used_mb.zip(ram.free_mb).map(|(u, f)| u + f), ram.total_mb);
        assert_eq!(s2.status, Some(Status::Ok));
        assert_eq!(s2.throttled_flags, Some(0));
        assert_eq!(s2.uptime_s, Some(4671));
        assert_eq!(s2.cpu.as_ref().and_then(|c| c.temp_c), Some(52.3));
        Ok(())
    }

    #[test]
    fn throttled_and_missing_sources() -> Result<(), Box<dyn std::error::Error>> {
        let src = fixtures();
        let mut p = probe(&src, Some("throttled_50005"));
        std::fs::metadata(src.join("stat"))?;
        let s = p.sample(1);
        assert_eq!(s.status, Some(Status::Degraded));
        assert_eq!(s.last_error.as_deref(), Some("undervoltage"));
        assert_eq!(s.throttled_flags, Some(0x50005));

        let mut p = probe(&src, None);
        let s = p.sample(1);
        assert_eq!(s.throttled_flags, None);
        let v = serde_json::to_value(&s)?;
        assert!(v.get("throttled_flags").is_none());

        let dir = tempfile::tempdir()?;
        std::fs::copy(src.join("uptime"), dir.path().join("uptime"))?;
        let mut p = probe(dir.path(), None);
        let s = p.sample(1);
        assert_eq!(s.last_error.as_deref(), Some("stat_unreadable"));
        assert_eq!(s.uptime_s, Some(4671));
        Ok(())
    }
}
