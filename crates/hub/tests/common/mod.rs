//! Shared fixtures: a tiny service with one counter, a real server on 127.0.0.1:0, and WS clients.
#![allow(dead_code)]

use axum::Router;
use futures_util::{SinkExt, StreamExt};
use ndefender_contract::{Envelope, Source};
use ndefender_hub::{Greeting, GreetingSource, Hub, HubConfig};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Res<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Only to keep a broken test from hanging; never a speed assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A service whose whole state is one counter. Every VALUE event carries the new counter,
/// the greeting (SNAPSHOT) and resync set (RESYNC) carry the current one, so a client can
/// check that after the greeting it sees exactly v+1, v+2, … with nothing missing or repeated.
pub struct Counter {
    state: Mutex<u64>,
    /// The next greeting or resync panics, as a buggy service would.
    pub fail_next: std::sync::atomic::AtomicBool,
    /// Milliseconds a greeting takes before it takes the state lock, so events are
    /// reliably published between a client's registration and its greeting.
    pub greeting_delay_ms: std::sync::atomic::AtomicU64,
    pub hello: bool,
    pub pad: String,
}

impl Counter {
    pub fn new(hello: bool, pad_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(0),
            fail_next: std::sync::atomic::AtomicBool::new(false),
            greeting_delay_ms: std::sync::atomic::AtomicU64::new(0),
            hello,
            pad: "x".repeat(pad_bytes),
        })
    }

    /// Bumps the counter and publishes under the state lock, as a real service must.
    pub fn bump(&self, hub: &Hub) -> Res<u64> {
        self.bump_as(hub, "VALUE")
    }

    pub fn bump_as(&self, hub: &Hub, kind: &'static str) -> Res<u64> {
        let mut v = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *v += 1;
        let env = Envelope::new(kind, now_ms(), Source::Antsdr, &json!({"v": *v, "pad": self.pad}))?;
        hub.publish(env);
        Ok(*v)
    }

    pub fn value(&self) -> u64 {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[allow(clippy::panic)] // Simulates a service bug; the hub must contain it.
    fn set(&self, hub: &Hub, kind: &'static str) -> Greeting {
        if self.fail_next.swap(false, std::sync::atomic::Ordering::SeqCst) {
            panic!("greeting source bug (expected by the test)");
        }
        let delay = self.greeting_delay_ms.load(std::sync::atomic::Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        let v = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let watermark = hub.last_seq();
        let envelopes = Envelope::new(kind, now_ms(), Source::Antsdr, &json!({"v": *v}))
            .map(|e| vec![e])
            .unwrap_or_default();
        Greeting { envelopes, watermark }
    }
}

impl GreetingSource for Counter {
    fn hello(&self) -> Vec<Envelope> {
        if !self.hello {
            return Vec::new();
        }
        Envelope::new("LOG_EVENT", now_ms(), Source::System, &json!({"message": "HELLO"}))
            .map(|e| vec![e])
            .unwrap_or_default()
    }
    fn greeting(&self, hub: &Hub) -> Greeting {
        self.set(hub, "SNAPSHOT")
    }
    fn resync(&self, hub: &Hub) -> Greeting {
        self.set(hub, "RESYNC")
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Test defaults: no heartbeat unless asked, so streams hold only what a test publishes.
pub fn cfg() -> HubConfig {
    HubConfig {
        heartbeat_ms: 0,
        ..HubConfig::default()
    }
}

pub struct Server {
    pub hub: Hub,
    pub svc: Arc<Counter>,
    pub addr: SocketAddr,
}

impl Server {
    pub async fn start(cfg: HubConfig) -> Res<Self> {
        Self::start_with(cfg, Counter::new(false, 0), None).await
    }

    /// `send_buffer` shrinks the kernel send buffer of every accepted socket, so a client that
    /// stops reading fills it after a few KiB instead of megabytes.
    pub async fn start_with(cfg: HubConfig, svc: Arc<Counter>, send_buffer: Option<u32>) -> Res<Self> {
        let hub = Hub::new(cfg, svc.clone());
        let socket = TcpSocket::new_v4()?;
        if let Some(size) = send_buffer {
            socket.set_send_buffer_size(size)?;
        }
        socket.bind("127.0.0.1:0".parse()?)?;
        let listener: TcpListener = socket.listen(1024)?;
        let addr = listener.local_addr()?;
        let app = Router::new().route("/api/v1/ws", hub.ws_route());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { hub, svc, addr })
    }

    pub fn url(&self, query: &str) -> String {
        if query.is_empty() {
            format!("ws://{}/api/v1/ws", self.addr)
        } else {
            format!("ws://{}/api/v1/ws?{}", self.addr, query)
        }
    }

    pub async fn connect(&self, query: &str) -> Res<Ws> {
        let (ws, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(self.url(query))).await??;
        Ok(ws)
    }

    pub async fn connect_with_headers(
        &self,
        query: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let mut req = self.url(query).into_client_request()?;
        for (k, v) in headers {
            if let Ok(v) = HeaderValue::from_str(v) {
                req.headers_mut().insert(*k, v);
            }
        }
        let (ws, _) = tokio_tungstenite::connect_async(req).await?;
        Ok(ws)
    }

    /// A client whose receive buffer is tiny, for tests that need a reader to fall behind.
    pub async fn connect_small(&self, query: &str, recv_buffer: u32) -> Res<Ws> {
        let socket = TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(recv_buffer)?;
        let stream = socket.connect(self.addr).await?;
        let (ws, _) = tokio_tungstenite::client_async(self.url(query), MaybeTlsStream::Plain(stream)).await?;
        Ok(ws)
    }

    /// Waits until the hub reports `n` clients (registration happens just after the handshake).
    pub async fn wait_clients(&self, n: usize) -> Res {
        tokio::time::timeout(PATIENCE, async {
            while self.hub.client_count() != n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await?;
        Ok(())
    }
}

/// Next text frame as JSON (pings and pongs skipped). Errors on close or after [`PATIENCE`].
pub async fn recv(ws: &mut Ws) -> Res<Value> {
    Ok(serde_json::from_str(&recv_text(ws).await?)?)
}

/// Next text frame, raw. One deadline for the whole wait, so pings cannot extend it.
pub async fn recv_text(ws: &mut Ws) -> Res<String> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match ws.next().await.ok_or("stream ended")?? {
                Message::Text(t) => return Ok(t.as_str().to_owned()),
                Message::Close(c) => return Err(format!("closed: {c:?}").into()),
                _ => {}
            }
        }
    })
    .await?
}

/// Reads until the server's close frame and returns its code; text frames before it are skipped.
pub async fn recv_close(ws: &mut Ws) -> Res<u16> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let msg = ws.next().await.ok_or("stream ended without a close frame")??;
            if let Message::Close(frame) = msg {
                return Ok(frame.map(|f| u16::from(f.code)).ok_or("close frame without code")?);
            }
        }
    })
    .await?
}

pub async fn send_json(ws: &mut Ws, v: Value) -> Res {
    ws.send(Message::text(v.to_string())).await?;
    Ok(())
}

pub fn kind(v: &Value) -> &str {
    v["type"].as_str().unwrap_or("")
}

pub fn num(v: &Value, key: &str) -> u64 {
    v["data"][key].as_u64().unwrap_or(u64::MAX)
}

/// The contract's envelope schema (draft 2020-12), from the shared contract directory.
pub fn envelope_validator() -> Res<jsonschema::Validator> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/contract/schemas/EventEnvelope.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    Ok(jsonschema::validator_for(&schema).map_err(|e| e.to_string())?)
}

/// Validates a frame; a `seq` member is removed first, as PROTOCOL.md §4.6 prescribes.
pub fn assert_valid(v: &jsonschema::Validator, frame: &str) -> Res {
    let mut value: Value = serde_json::from_str(frame)?;
    if let Some(obj) = value.as_object_mut() {
        obj.remove("seq");
    }
    v.validate(&value).map_err(|e| format!("{frame}: {e}"))?;
    Ok(())
}

/// Polls `cond` until true; only [`PATIENCE`] bounds it.
pub async fn wait_for(cond: impl Fn() -> bool) -> Res {
    tokio::time::timeout(PATIENCE, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await?;
    Ok(())
}

/// Upgrades over a bare TCP socket, then sends nothing (not even pongs) and returns the
/// server's close code with the bytes read before it.
pub async fn raw_upgrade_then_wait(addr: SocketAddr) -> Res<(u16, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = TcpStream::connect(addr).await?;
    let req = format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(PATIENCE, async {
        loop {
            let n = tcp.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await??;
    // Server frames are unmasked: find the close frame (opcode 0x8) after the HTTP head.
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no HTTP head")? + 4;
    let mut i = head;
    while i + 2 <= buf.len() {
        let opcode = buf[i] & 0x0f;
        let mut len = (buf[i + 1] & 0x7f) as usize;
        let mut at = i + 2;
        if len == 126 {
            len = u16::from_be_bytes([buf[at], buf[at + 1]]) as usize;
            at += 2;
        } else if len == 127 {
            return Err("unexpected huge frame".into());
        }
        if opcode == 0x8 && len >= 2 {
            return Ok((u16::from_be_bytes([buf[at], buf[at + 1]]), buf));
        }
        i = at + len;
    }
    Err("no close frame".into())
}
