//! Certificates: the self-signed one `ndefender-token --self-signed` writes, and the
//! pinned-certificate client other daemons use to call an `https://` base URL
//! ([`HttpClient`]; its rustls settings also serve a `wss://` follower).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
    client_config(roots).map_err(bad)
}

/// A rustls client trusting exactly `roots`, with the crypto provider given here rather
/// than looked up process-wide (nothing in the workspace installs one).
fn client_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, String> {
    // ring: see `listen::tls_acceptor`.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Bodies larger than this from another daemon are an error, not an allocation.
const MAX_BODY_BYTES: usize = 8 << 20;

/// Why a request to another daemon got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Nothing complete within the request's timeout.
    Timeout,
    /// No connection: refused, unresolvable, or the TLS handshake failed (e.g. the peer's
    /// certificate is not the pinned one).
    Unavailable(String),
    /// The status line came, the body did not (cut off, or over the size cap).
    Body(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Timeout => f.write_str("timed out"),
            HttpError::Unavailable(e) => write!(f, "unavailable: {e}"),
            HttpError::Body(e) => write!(f, "body: {e}"),
        }
    }
}

/// A complete answer from another daemon.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// The HTTP/1.1 client one daemon calls another with: `http://` as is, `https://` only to
/// a peer whose certificate is in the pinned file (never the platform's roots). Built on
/// hyper with rustls on ring, passed in explicitly, so no process-wide crypto provider is
/// needed (reqwest's rustls backend would need one, for every client in the process).
/// Clones share one connection pool.
#[derive(Clone)]
pub struct HttpClient {
    inner: hyper_util::client::legacy::Client<Connector, http_body_util::Full<bytes::Bytes>>,
    /// The TLS settings, for a WebSocket to the same peer (`wss://`).
    pub tls: Arc<rustls::ClientConfig>,
    /// Whether `tls` trusts a pinned certificate (false: no `https://` peer is trusted).
    pub pinned: bool,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").field("pinned", &self.pinned).finish()
    }
}

impl HttpClient {
    /// `ca_file` empty: plain `http://` only (an `https://` handshake then fails: nothing is
    /// trusted). Otherwise the PEM certificate(s) to pin, see [`pinned_client_config`].
    /// `connect_timeout` bounds the TCP connect and the TLS handshake separately from
    /// each request's own timeout.
    pub fn new(ca_file: &str, connect_timeout: Duration) -> std::io::Result<HttpClient> {
        let pinned = !ca_file.is_empty();
        let tls = if pinned {
            pinned_client_config(Path::new(ca_file))?
        } else {
            client_config(rustls::RootCertStore::empty()).map_err(std::io::Error::other)?
        };
        let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let inner = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(HttpClient {
            inner,
            tls: Arc::new(tls),
            pinned,
        })
    }

    /// Sends `method url` with `headers` and `body` (JSON when given) and reads the whole
    /// answer; `timeout` bounds everything from connecting to the body's last byte.
    pub async fn request(
        &self,
        method: http::Method,
        url: &str,
        headers: http::HeaderMap,
        body: Option<&serde_json::Value>,
        timeout: Duration,
    ) -> Result<HttpAnswer, HttpError> {
        let mut req = http::Request::builder().method(method).uri(url);
        if let Some(h) = req.headers_mut() {
            h.extend(headers);
            if body.is_some() {
                h.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
            }
        }
        let bytes = body.map(|b| bytes::Bytes::from(b.to_string())).unwrap_or_default();
        let req = req
            .body(http_body_util::Full::new(bytes))
            .map_err(|e| HttpError::Unavailable(format!("invalid request: {e}")))?;
        let exchange = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| HttpError::Unavailable(error_chain(&e)))?;
            let (parts, body) = resp.into_parts();
            let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, MAX_BODY_BYTES))
                .await
                .map_err(|e| HttpError::Body(e.to_string()))?
                .to_bytes();
            Ok(HttpAnswer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(HttpError::Timeout))
    }
}

/// hyper's errors say "client error (Connect)"; the cause (refused, certificate) is below.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}
