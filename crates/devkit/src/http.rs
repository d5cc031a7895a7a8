//! A minimal HTTP/1.1 client over one keep-alive TCP connection: enough for the
//! benchmarks, and it keeps client overhead out of measured round trips. Only
//! `Content-Length` bodies (what the daemons send); a failed or timed-out
//! request, or one to another host, drops the connection and reconnects.

use std::io;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

#[derive(Debug, Default)]
pub struct Client {
    conn: Mutex<Option<(String, BufReader<TcpStream>)>>,
    timeout: Option<Duration>,
}

impl Client {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every request fails with `TimedOut` after `t` (and the connection is dropped).
    pub fn with_timeout(t: Duration) -> Self {
        Self {
            conn: Mutex::new(None),
            timeout: Some(t),
        }
    }

    /// (status, body) of one request.
    pub async fn request(&self, method: &str, url: &str, body: &str) -> io::Result<(u16, Vec<u8>)> {
        let mut guard = self.conn.lock().await;
        let r = match self.timeout {
            Some(t) => match tokio::time::timeout(t, exchange(&mut guard, method, url, body)).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "request timed out")),
            },
            None => exchange(&mut guard, method, url, body).await,
        };
        if r.is_err() {
            *guard = None;
        }
        r
    }

    pub async fn post(&self, url: &str, body: &str) -> io::Result<u16> {
        Ok(self.request("POST", url, body).await?.0)
    }

    pub async fn get_json(&self, url: &str) -> io::Result<serde_json::Value> {
        let (_, b) = self.request("GET", url, "").await?;
        serde_json::from_slice(&b).map_err(io::Error::other)
    }

    pub async fn get_text(&self, url: &str) -> io::Result<String> {
        let (_, b) = self.request("GET", url, "").await?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }
}

async fn exchange(
    slot: &mut Option<(String, BufReader<TcpStream>)>,
    method: &str,
    url: &str,
    body: &str,
) -> io::Result<(u16, Vec<u8>)> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    if slot.as_ref().is_none_or(|(h, _)| h != host) {
        *slot = None;
        *slot = Some((host.to_owned(), BufReader::new(TcpStream::connect(host).await?)));
    }
    let Some((_, conn)) = slot.as_mut() else {
        return Err(io::Error::other("no connection"));
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.get_mut().write_all(req.as_bytes()).await?;
    let mut status_line = String::new();
    if conn.read_line(&mut status_line).await? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if conn.read_line(&mut h).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut buf = vec![0u8; len];
    conn.read_exact(&mut buf).await?;
    Ok((status, buf))
}
