//! `ndefender-diag`: one `.tar.gz` a field technician can send back.
//!
//! Everything is found from the installed configs (`/etc/ndefender/*.toml`): each file
//! `<name>.toml` is the daemon `ndefender-<name>`, so daemons added later are covered
//! without a change here. For each daemon: its `--check-config` (the effective config,
//! secrets masked by the daemon itself), and from its API (the `bind` of its `[server]`
//! or `[api]` section, its `api_key`) `/health`, `/status` and the other read routes it
//! offers, and `/metrics`. From the effective configs: every `jsonl_path` (the last N
//! lines of each feed) and the aggregator's `state.dir` (its tail checkpoints). The ESP32
//! link is the aggregator's `/api/v1/esp32` and its `esp32` metrics. Then versions, the
//! OS, disk and memory, the units' journal. Whatever cannot be collected is listed in
//! `failures.txt` with the reason; nothing stops the bundle.
//!
//! No secret leaves the machine: every secret value found in the raw configs (and the
//! token given on the command line) is replaced by `***` in every part before it is
//! written, whatever part it would have appeared in.

use flate2::write::GzEncoder;
use flate2::Compression;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to collect and where to write it.
#[derive(Debug, Clone)]
pub struct Options {
    pub out: PathBuf,
    pub config_dir: PathBuf,
    /// Where the daemon binaries are (`--check-config`); default: next to this binary.
    pub bin_dir: Option<PathBuf>,
    /// Lines kept from the end of each feed and journal.
    pub lines: usize,
    /// Per HTTP request and per subprocess.
    pub timeout: Duration,
    /// Sent as `Authorization: Bearer` when the daemons use role tokens.
    pub token: Option<String>,
}

/// The read routes asked of every daemon; a 404 means the daemon does not offer it.
const ROUTES: &[&str] = &[
    "/api/v1/health",
    "/api/v1/status",
    "/api/v1/version",
    "/api/v1/stats",
    "/api/v1/device",
    "/api/v1/esp32",
    "/metrics",
];

/// The archive being assembled, with the secrets it must never contain.
#[derive(Debug, Default)]
pub struct Bundle {
    parts: Vec<(String, Vec<u8>)>,
    failures: Vec<(String, String)>,
    absent: Vec<String>,
    secrets: Vec<String>,
}

impl Bundle {
    fn redact(&self, text: &str) -> String {
        let mut t = text.to_owned();
        for s in &self.secrets {
            t = t.replace(s.as_str(), "***");
        }
        t
    }

    /// Adds a text part, secrets replaced.
    pub fn add(&mut self, name: impl Into<String>, text: &str) {
        let t = self.redact(text);
        self.parts.push((name.into(), t.into_bytes()));
    }

    /// Records a part that could not be collected, and why.
    pub fn fail(&mut self, part: impl Into<String>, why: impl std::fmt::Display) {
        let why = self.redact(&why.to_string());
        self.failures.push((part.into(), why));
    }

    pub fn parts(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().map(|(n, _)| n.as_str())
    }

    pub fn failures(&self) -> &[(String, String)] {
        &self.failures
    }

    /// Writes the `.tar.gz`: every part below one directory, then `MANIFEST.txt` and
    /// `failures.txt`.
    pub fn write(mut self, out: &Path, top: &str) -> std::io::Result<()> {
        let mut f = String::from("# what could not be collected, and why\n");
        for (p, why) in &self.failures {
            let _ = writeln!(f, "{p}: {why}");
        }
        if !self.absent.is_empty() {
            let _ = writeln!(f, "# routes the daemons do not offer (404): {}", self.absent.join(" "));
        }
        self.parts.push(("failures.txt".into(), f.into_bytes()));
        let mut m = String::from("# part bytes\n");
        for (n, b) in &self.parts {
            let _ = writeln!(m, "{n} {}", b.len());
        }
        self.parts.push(("MANIFEST.txt".into(), m.into_bytes()));

        let file = std::fs::File::create(out)?;
        let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::default()));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        for (name, bytes) in &self.parts {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o600);
            h.set_mtime(now);
            h.set_cksum();
            tar.append_data(&mut h, format!("{top}/{name}"), bytes.as_slice())?;
        }
        tar.into_inner()?.finish()?.sync_all()
    }
}

/// Every non-empty string under a key that names a secret (`api_key`, `*token*`,
/// `*password*`, `*secret*`, `psk`), at any depth, in arrays too.
pub fn secrets_in(v: &toml::Value, out: &mut Vec<String>) {
    fn is_secret(k: &str) -> bool {
        let k = k.to_ascii_lowercase();
        k == "api_key" || k == "psk" || k.contains("token") || k.contains("password") || k.contains("secret")
    }
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                match x {
                    toml::Value::String(s) if is_secret(k) && !s.is_empty() && s != "***" => out.push(s.clone()),
                    _ => secrets_in(x, out),
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|x| secrets_in(x, out)),
        _ => {}
    }
}

/// A daemon found from its config file.
#[derive(Debug, Clone)]
struct Daemon {
    /// `aggregator`, `system-controller`, ...
    name: String,
    config: PathBuf,
    raw: Option<toml::Value>,
}

impl Daemon {
    fn bin(&self) -> String {
        format!("ndefender-{}", self.name)
    }

    /// The `[server]` or `[api]` table holding `bind`.
    fn server(v: &toml::Value) -> Option<&toml::Table> {
        ["server", "api"]
            .iter()
            .filter_map(|s| v.get(s).and_then(toml::Value::as_table))
            .find(|t| t.contains_key("bind"))
    }

    /// The base URL to reach it on this machine.
    fn base_url(effective: &toml::Value) -> Option<String> {
        let bind = Self::server(effective)?.get("bind")?.as_str()?;
        let (host, port) = bind.rsplit_once(':')?;
        let host = match host {
            "0.0.0.0" | "" => "127.0.0.1",
            "[::]" => "[::1]",
            h => h,
        };
        Some(format!("http://{host}:{port}"))
    }

    fn api_key(&self) -> Option<String> {
        let raw = self.raw.as_ref()?;
        let k = Self::server(raw)?.get("api_key")?.as_str()?;
        (!k.is_empty()).then(|| k.to_owned())
    }
}

fn find_daemons(config_dir: &Path, b: &mut Bundle) -> Vec<Daemon> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(config_dir) {
        Ok(e) => e,
        Err(e) => {
            b.fail("configs", format!("{}: {e}", config_dir.display()));
            return out;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for config in files {
        let Some(name) = config.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            continue;
        };
        let raw = match std::fs::read_to_string(&config).map(|t| t.parse::<toml::Table>()) {
            Ok(Ok(t)) => Some(toml::Value::Table(t)),
            Ok(Err(e)) => {
                b.fail(format!("config {name}"), format!("not TOML: {e}"));
                None
            }
            Err(e) => {
                b.fail(format!("config {name}"), format!("{}: {e}", config.display()));
                None
            }
        };
        out.push(Daemon { name, config, raw });
    }
    out
}

fn find_bin(o: &Options, name: &str) -> PathBuf {
    let dir = o.bin_dir.clone().or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
    });
    match dir {
        Some(d) if d.join(name).exists() => d.join(name),
        _ => PathBuf::from(name),
    }
}

/// Runs a command with a time limit; its stdout, or why it failed.
async fn run(mut cmd: tokio::process::Command, limit: Duration) -> Result<String, String> {
    cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
    match tokio::time::timeout(limit, cmd.output()).await {
        Err(_) => Err(format!("no answer within {} s", limit.as_secs())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(Ok(out)) => Err(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// The last `n` lines of a file, reading at most the last 4 MiB of it.
fn last_lines(path: &Path, n: usize) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(4 << 20);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(4 << 20).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    let mut out = lines[skip..].join("\n");
    out.push('\n');
    Ok(out)
}

/// Every string under a key named `k`, at any depth.
fn strings_named(v: &toml::Value, k: &str, out: &mut Vec<String>) {
    match v {
        toml::Value::Table(t) => {
            for (key, x) in t {
                match x {
                    toml::Value::String(s) if key == k && !s.is_empty() => out.push(s.clone()),
                    _ => strings_named(x, k, out),
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|x| strings_named(x, k, out)),
        _ => {}
    }
}

fn part_name(path: &str) -> String {
    path.trim_start_matches('/').replace('/', "_")
}

/// Collects everything into a [`Bundle`] (not yet written).
pub async fn collect(o: &Options) -> Bundle {
    let mut b = Bundle::default();
    let daemons = find_daemons(&o.config_dir, &mut b);
    for d in &daemons {
        if let Some(raw) = &d.raw {
            secrets_in(raw, &mut b.secrets);
        }
    }
    if let Some(t) = &o.token {
        b.secrets.push(t.clone());
    }
    // Longest first, so a secret containing another is replaced whole.
    b.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    b.secrets.dedup();

    let http = match reqwest::Client::builder().timeout(o.timeout).build() {
        Ok(c) => Some(c),
        Err(e) => {
            b.fail("http client", e);
            None
        }
    };

    let mut feeds = Vec::new();
    let mut state_dirs = Vec::new();
    for d in &daemons {
        let dir = format!("daemons/{}", d.name);
        // The effective config, masked by the daemon itself.
        let mut cmd = tokio::process::Command::new(find_bin(o, &d.bin()));
        cmd.arg("--config").arg(&d.config).arg("--check-config");
        let effective = match run(cmd, o.timeout * 2).await {
            Ok(text) => {
                b.add(format!("{dir}/check-config.toml"), &text);
                text.parse::<toml::Table>().ok().map(toml::Value::Table)
            }
            Err(e) => {
                b.fail(format!("{dir}/check-config.toml"), e);
                None
            }
        };
        // Without the daemon's view, the raw file's values (defaults then unknown).
        let Some(view) = effective.or_else(|| d.raw.clone()) else {
            b.fail(format!("{dir}/api"), "no config to find the daemon's address");
            continue;
        };
        strings_named(&view, "jsonl_path", &mut feeds);
        if let Some(s) = view
            .get("state")
            .and_then(|s| s.get("dir"))
            .and_then(toml::Value::as_str)
        {
            state_dirs.push(s.to_owned());
        }
        let (Some(http), Some(base)) = (&http, Daemon::base_url(&view)) else {
            b.fail(format!("{dir}/api"), "no [server] or [api] bind in its config");
            continue;
        };
        for route in ROUTES {
            let mut req = http.get(format!("{base}{route}"));
            if let Some(k) = d.api_key() {
                req = req.header("X-API-Key", k);
            }
            if let Some(t) = &o.token {
                req = req.bearer_auth(t);
            }
            let file = format!(
                "{dir}/{}.{}",
                part_name(route.trim_start_matches("/api/v1")),
                if *route == "/metrics" { "txt" } else { "json" }
            );
            match req.send().await {
                Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => b.absent.push(format!("{}{route}", d.name)),
                Ok(r) => {
                    let status = r.status();
                    match r.text().await {
                        Ok(body) => {
                            b.add(file.clone(), &body);
                            if !status.is_success() {
                                b.fail(file, format!("HTTP {status} (body kept)"));
                            }
                        }
                        Err(e) => b.fail(file, e),
                    }
                }
                Err(e) => b.fail(file, format!("{base}{route}: {e}")),
            }
        }
    }
    feeds.sort();
    feeds.dedup();
    for f in &feeds {
        let name = format!("feeds/{}.tail", part_name(f));
        match last_lines(Path::new(f), o.lines) {
            Ok(t) => b.add(name, &t),
            Err(e) => b.fail(name, format!("{f}: {e}")),
        }
    }
    state_dirs.sort();
    state_dirs.dedup();
    for s in &state_dirs {
        checkpoints(&mut b, Path::new(s));
    }
    system(&mut b, o, &daemons, &feeds, &state_dirs).await;
    b
}

/// The tail checkpoints (`tail-<feed>.json`) in a daemon's state directory.
fn checkpoints(b: &mut Bundle, dir: &Path) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return b.fail(format!("checkpoints {}", dir.display()), e),
    };
    let mut n = 0;
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("tail-") && name.ends_with(".json") {
            match std::fs::read_to_string(e.path()) {
                Ok(t) => b.add(format!("checkpoints/{name}"), &t),
                Err(err) => b.fail(format!("checkpoints/{name}"), err),
            }
            n += 1;
        }
    }
    if n == 0 {
        b.fail(
            format!("checkpoints {}", dir.display()),
            "no tail-*.json checkpoint yet",
        );
    }
}

// The counts are 32-bit on 32-bit targets (armhf), 64-bit elsewhere.
#[allow(clippy::unnecessary_cast)]
fn statvfs_line(path: &Path) -> String {
    match nix::sys::statvfs::statvfs(path) {
        Ok(s) => {
            let f = s.fragment_size() as u64;
            let total = s.blocks() as u64 * f;
            let avail = s.blocks_available() as u64 * f;
            format!(
                "{} total_mb={} available_mb={} used_percent={:.1} inodes_free={}\n",
                path.display(),
                total >> 20,
                avail >> 20,
                if total > 0 {
                    100.0 * (total - avail) as f64 / total as f64
                } else {
                    0.0
                },
                s.files_available()
            )
        }
        Err(e) => format!("{}: {e}\n", path.display()),
    }
}

async fn system(b: &mut Bundle, o: &Options, daemons: &[Daemon], feeds: &[String], state_dirs: &[String]) {
    let mut v = format!("ndefender-diag {}\n", env!("CARGO_PKG_VERSION"));
    let mut cmd = tokio::process::Command::new("dpkg-query");
    cmd.args(["-W", "-f", "${Package} ${Version} ${Architecture}\\n", "ndefender"]);
    match run(cmd, o.timeout).await {
        Ok(t) => v.push_str(&format!("package: {t}")),
        Err(e) => v.push_str(&format!("package: not installed through dpkg ({e})\n")),
    }
    b.add("system/versions.txt", &v);
    for (part, path) in [
        ("system/os-release", "/etc/os-release"),
        ("system/kernel", "/proc/version"),
        ("system/model", "/proc/device-tree/model"),
        ("system/meminfo", "/proc/meminfo"),
        ("system/loadavg", "/proc/loadavg"),
        ("system/uptime", "/proc/uptime"),
    ] {
        match std::fs::read(path) {
            Ok(t) => b.add(part, &String::from_utf8_lossy(&t).replace('\0', "")),
            Err(e) => b.fail(part, format!("{path}: {e}")),
        }
    }
    let mut disk = String::new();
    let mut dirs: Vec<PathBuf> = vec!["/".into()];
    dirs.extend(state_dirs.iter().map(PathBuf::from));
    dirs.extend(
        feeds
            .iter()
            .filter_map(|f| Path::new(f).parent().map(Path::to_path_buf)),
    );
    dirs.dedup();
    for d in &dirs {
        disk.push_str(&statvfs_line(d));
    }
    b.add("system/disk.txt", &disk);

    // The units' journal (where the daemons log).
    for d in daemons {
        let part = format!("journal/{}.log", d.bin());
        let mut cmd = tokio::process::Command::new("journalctl");
        cmd.args(["--no-pager", "-q", "-o", "short-iso", "-n"])
            .arg(o.lines.to_string())
            .arg("-u")
            .arg(format!("{}.service", d.bin()));
        match run(cmd, o.timeout).await {
            Ok(t) => b.add(part, &t),
            Err(e) => b.fail(part, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_found_at_any_depth_and_redacted() -> Result<(), toml::de::Error> {
        let v: toml::Value = toml::from_str(
            r#"
            [server]
            api_key = "k3y"
            tokens = [{ name = "t", role = "admin", sha256 = "abc" }]
            [remoteid]
            api_key = ""
            [network]
            wifi_password = "pw"
            "#,
        )?;
        let mut b = Bundle::default();
        secrets_in(&v, &mut b.secrets);
        // Table order depends on whether toml keeps insertion order (a feature another crate
        // of the workspace may turn on), so compare as a set.
        let mut found = b.secrets.clone();
        found.sort();
        assert_eq!(found, vec!["k3y".to_owned(), "pw".to_owned()]);
        b.add("x", "key=k3y pw");
        b.fail("y", "GET ?api_key=k3y failed");
        assert_eq!(b.parts, vec![("x".to_owned(), b"key=*** ***".to_vec())]);
        assert_eq!(b.failures[0].1, "GET ?api_key=*** failed");
        Ok(())
    }

    #[test]
    fn base_url_from_bind() -> Result<(), toml::de::Error> {
        let v: toml::Value = toml::from_str("[api]\nbind = \"0.0.0.0:8890\"")?;
        assert_eq!(Daemon::base_url(&v).as_deref(), Some("http://127.0.0.1:8890"));
        let v: toml::Value = toml::from_str("[server]\nbind = \"127.0.0.1:8001\"")?;
        assert_eq!(Daemon::base_url(&v).as_deref(), Some("http://127.0.0.1:8001"));
        Ok(())
    }

    #[test]
    fn last_lines_of_a_file() -> std::io::Result<()> {
        let d = tempfile::tempdir()?;
        let p = d.path().join("f.jsonl");
        std::fs::write(&p, "a\nb\nc\n")?;
        assert_eq!(last_lines(&p, 2)?, "b\nc\n");
        assert_eq!(last_lines(&p, 10)?, "a\nb\nc\n");
        Ok(())
    }
}
