//! `ndefender-diag`: writes one diagnostics `.tar.gz` (see the library's docs for what it holds).

use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Writes one .tar.gz with everything needed to diagnose an N-Defender kit (secrets masked)"
)]
struct Args {
    /// The archive to write (default: ./ndefender-diag-<host>-<unix time>.tar.gz).
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Where the daemons' configs are: each <name>.toml is the daemon ndefender-<name>.
    #[arg(long, default_value = "/etc/ndefender")]
    config_dir: PathBuf,
    /// Where the daemon binaries are (default: next to this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Lines kept from the end of each feed and each unit's journal.
    #[arg(long, default_value_t = 200)]
    lines: usize,
    /// Time limit of each request and each command, in seconds.
    #[arg(long, default_value_t = 5)]
    timeout_s: u64,
    /// A role token for the daemons' APIs (also NDEFENDER_DIAG_TOKEN); never written to the bundle.
    #[arg(long, env = "NDEFENDER_DIAG_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "kit".into())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let a = Args::parse();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let top = format!("ndefender-diag-{}-{now}", hostname());
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from(format!("{top}.tar.gz")));
    let o = ndefender_diag::Options {
        out: out.clone(),
        config_dir: a.config_dir,
        bin_dir: a.bin_dir,
        lines: a.lines,
        timeout: Duration::from_secs(a.timeout_s.max(1)),
        token: a.token,
    };
    let b = ndefender_diag::collect(&o).await;
    let failed = b.failures().len();
    match b.write(&o.out, &top) {
        Ok(()) => {
            println!("{}", out.display());
            if failed > 0 {
                eprintln!("ndefender-diag: {failed} part(s) could not be collected (see failures.txt in the bundle)");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ndefender-diag: cannot write {}: {e}", out.display());
            std::process::ExitCode::from(1)
        }
    }
}
