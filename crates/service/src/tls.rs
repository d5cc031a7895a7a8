//! Certificates: the self-signed one `ndefender-token --self-signed` writes, and the
//! pinned-certificate client other daemons use to call an `https://` base URL.

use std::path::{Path, PathBuf};

/// This machine's names and addresses a browser on the LAN may use to reach it.
fn local_names() -> Vec<String> {
    let mut out = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            out.push(h.to_owned());
            out.push(format!("{h}.local"));
        }
    }
    out
}

/// Writes `dir/cert.pem` and `dir/key.pem` (mode 0600) for the local names plus `extra`.
pub fn write_self_signed(dir: &Path, extra: &[String]) -> Result<(PathBuf, PathBuf, Vec<String>), String> {
    let mut names = local_names();
    for e in extra {
        if !names.contains(e) {
            names.push(e.clone());
        }
    }
    let ck = rcgen::generate_simple_self_signed(names.clone()).map_err(|e| format!("cannot generate: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).map_err(|e| format!("{}: {e}", cert.display()))?;
    write_private(&key, ck.signing_key.serialize_pem().as_bytes()).map_err(|e| format!("{}: {e}", key.display()))?;
    Ok((cert, key, names))
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

/// A rustls client that trusts exactly the certificates in the PEM file `ca_file` (a
/// daemon's own self-signed certificate, pinned), for `https://`/`wss://` base URLs.
pub fn pinned_client_config(ca_file: &Path) -> std::io::Result<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file).map_err(|e| bad(format!("{}: {e}", ca_file.display())))?;
    for c in certs {
        let c = c.map_err(|e| bad(format!("{}: {e}", ca_file.display())))?;
        roots.add(c).map_err(|e| bad(format!("{}: {e}", ca_file.display())))?;
    }
    if roots.is_empty() {
        return Err(bad(format!("{}: no certificate", ca_file.display())));
    }
    // ring: see `listen::tls_acceptor`.
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
