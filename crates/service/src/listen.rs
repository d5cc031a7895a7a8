//! The accept loop every daemon serves with: optional TLS (rustls), a header-read and
//! keep-alive idle timeout, and a cap on open connections that cannot be exhausted by idle
//! sockets — at the cap, the oldest connection that has not sent a single byte is closed
//! to make room for the new one (a client that sends nothing gets nothing served anyway).

use crate::metrics::HttpMetrics;
use crate::server::{Defaults, ServerConfig};
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tower::ServiceExt;

/// How the listener serves connections.
#[derive(Clone)]
pub struct ServeOptions {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub metrics: Arc<HttpMetrics>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("max_connections", &self.max_connections)
            .field("header_timeout", &self.header_timeout)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl ServeOptions {
    /// Plain HTTP with the defaults of `[server]`.
    pub fn plain(metrics: Arc<HttpMetrics>) -> Self {
        Self {
            max_connections: 512,
            header_timeout: Duration::from_secs(5),
            tls: None,
            metrics,
        }
    }

    /// From a daemon's `[server]`; reads the TLS certificate and key when configured.
    pub fn from_server<D: Defaults>(s: &ServerConfig<D>, metrics: Arc<HttpMetrics>) -> std::io::Result<Self> {
        let tls = if s.tls() {
            Some(tls_acceptor(s.tls_cert.as_ref(), s.tls_key.as_ref())?)
        } else {
            None
        };
        Ok(Self {
            max_connections: s.max_connections,
            header_timeout: Duration::from_secs_f64(s.header_timeout_s),
            tls,
            metrics,
        })
    }
}

fn invalid(m: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, m)
}

/// A rustls server config from PEM files (the chain, then a PKCS#8/PKCS#1/SEC1 key).
pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(format!("server.tls_cert {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!("server.tls_cert {}: no certificate", cert.display())));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| invalid(format!("server.tls_key {}: {e}", key.display())))?;
    // ring rather than aws-lc-rs: it builds for the Pi without cmake; rustls marks the
    // ring provider deprecated only because it lacks the post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("tls: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(format!("server.tls_cert/tls_key: {e}")))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Marks its connection as having sent something, so it is not the one evicted.
struct Touch<T> {
    inner: T,
    touched: Arc<AtomicBool>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Touch<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touched.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Touch<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

struct Slot {
    touched: Arc<AtomicBool>,
    close: Arc<Notify>,
}

/// Open connections by accept order (the key), so the oldest comes first.
#[derive(Default)]
struct Table {
    next: u64,
    open: BTreeMap<u64, Slot>,
}

impl Table {
    /// Closes the oldest connection that never sent a byte; false if every one has.
    fn evict_idle(&mut self) -> bool {
        let victim = self
            .open
            .iter()
            .find(|(_, s)| !s.touched.load(Ordering::Relaxed))
            .map(|(k, _)| *k);
        match victim.and_then(|k| self.open.remove(&k)) {
            Some(s) => {
                s.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then stops accepting, runs `before_drain`
/// (the hub closes its sockets there) and gives in-flight requests `grace`.
pub(crate) async fn run<F>(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()>,
    before_drain: F,
    grace: Duration,
) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let closed = Arc::new(Notify::new());
    let table = Arc::new(Mutex::new(Table::default()));
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: the kernel keeps the connection queued; retry soon.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let touched = Arc::new(AtomicBool::new(false));
        let close = Arc::new(Notify::new());
        let id = {
            let mut t = table.lock().unwrap_or_else(|p| p.into_inner());
            if t.open.len() >= opts.max_connections {
                opts.metrics.connections_evicted.fetch_add(1, Ordering::Relaxed);
                if !t.evict_idle() {
                    // Every open connection is in use: this one waits for none of them.
                    drop(tcp);
                    continue;
                }
            }
            t.next += 1;
            let id = t.next;
            t.open.insert(
                id,
                Slot {
                    touched: touched.clone(),
                    close: close.clone(),
                },
            );
            id
        };
        opts.metrics.connections_open.fetch_add(1, Ordering::Relaxed);
        let io = Touch { inner: tcp, touched };
        let app = app.clone();
        let opts2 = opts.clone();
        let watcher = drain_rx.clone();
        let table2 = table.clone();
        let closed2 = closed.clone();
        tokio::spawn(async move {
            let conn = async {
                match &opts2.tls {
                    None => serve_conn(io, peer, app, &opts2, watcher).await,
                    Some(acc) => match tokio::time::timeout(opts2.header_timeout, acc.accept(io)).await {
                        Ok(Ok(tls)) => serve_conn(tls, peer, app, &opts2, watcher).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    },
                }
            };
            tokio::select! {
                _ = conn => {}
                _ = close.notified() => {}
            }
            table2.lock().unwrap_or_else(|p| p.into_inner()).open.remove(&id);
            opts2.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
            closed2.notify_waiters();
        });
    }
    drop(listener);
    before_drain.await;
    let _ = drain_tx.send(true);
    let drained = async {
        loop {
            let wait = closed.notified();
            if table.lock().unwrap_or_else(|p| p.into_inner()).open.is_empty() {
                return;
            }
            // Re-checked every 50 ms too, in case a close raced the registration above.
            let _ = tokio::time::timeout(Duration::from_millis(50), wait).await;
        }
    };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!("in-flight requests still running after grace period; closing");
    }
    Ok(())
}

async fn serve_conn<I>(
    io: I,
    peer: SocketAddr,
    app: axum::Router,
    opts: &ServeOptions,
    mut drain: tokio::sync::watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = app.map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let svc = hyper_util::service::TowerToHyperService::new(svc);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    let r = tokio::select! {
        r = conn.as_mut() => r,
        _ = async { drain.wait_for(|d| *d).await.map(|_| ()) } => {
            // Finish the request in flight, then close; idle connections close at once.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = r {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
