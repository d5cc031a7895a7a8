//! `ndefender-token [--name NAME] [--role viewer|operator|admin]`: prints a fresh random
//! token (256 bits) once, with the `server.tokens` line that accepts it (only its SHA-256
//! goes into the config). `ndefender-token --self-signed DIR [--host NAME]...` writes
//! `DIR/cert.pem` and `DIR/key.pem`, a self-signed certificate for this machine's
//! hostname, `localhost` and the given names/addresses, for `server.tls_cert`/`tls_key`.

use ndefender_service::auth::{sha256_hex, Role};
use rand::RngCore;

const USAGE: &str = "usage: ndefender-token [--name NAME] [--role viewer|operator|admin]\n       \
                     ndefender-token --self-signed DIR [--host NAME_OR_IP]...";

fn fail(msg: &str) -> ! {
    eprintln!("ndefender-token: {msg}\n{USAGE}");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut name = "tablet".to_owned();
    let mut role = Role::Operator;
    let mut self_signed = None;
    let mut hosts = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| fail(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--name" => name = val(),
            "--role" => {
                role = match val().as_str() {
                    "viewer" => Role::Viewer,
                    "operator" => Role::Operator,
                    "admin" => Role::Admin,
                    r => fail(&format!("unknown role {r:?}")),
                }
            }
            "--self-signed" => self_signed = Some(std::path::PathBuf::from(val())),
            "--host" => hosts.push(val()),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => fail(&format!("unknown argument {other:?}")),
        }
    }
    if let Some(dir) = self_signed {
        match ndefender_service::tls::write_self_signed(&dir, &hosts) {
            Ok((cert, key, names)) => {
                println!(
                    "wrote {} and {} for {}",
                    cert.display(),
                    key.display(),
                    names.join(", ")
                );
                println!("tls_cert = \"{}\"\ntls_key = \"{}\"", cert.display(), key.display());
            }
            Err(e) => {
                eprintln!("ndefender-token: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
        fail("--name must be printable without spaces or quotes");
    }
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    println!("token (shown once; give it to the client): {token}");
    println!("config line for [server] (or the scanner's [api]):");
    println!(
        "tokens = [{{ name = \"{name}\", role = \"{}\", sha256 = \"{}\" }}]",
        role.as_str(),
        sha256_hex(&token)
    );
}
