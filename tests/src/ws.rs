//! A WebSocket client that validates every envelope it reads.

use crate::{schemas, R};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

type Stream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What ended a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// A close frame with this code.
    Close(u16),
    /// The connection ended without a close frame.
    Dropped,
}

/// The one WebSocket client of every crate's tests: each text frame must be a JSON
/// envelope that the contract's schemas accept (and, when [`Ws::source`] was set, that
/// names this source); anything else fails the read.
pub struct Ws {
    stream: Stream,
    /// The first frame read by [`Ws::connect`] (`Null` after [`Ws::open`]).
    pub greeting: Value,
    /// Set once the stream has ended.
    pub end: Option<End>,
    source: Option<&'static str>,
}

impl Ws {
    /// Connects and waits for the first frame: only events published after it reach
    /// this client (the hub registers a client once the upgrade completed).
    pub async fn connect(url: &str) -> R<Ws> {
        let mut ws = Ws::open(url).await?;
        ws.greeting = ws.next(Duration::from_secs(10)).await?.ok_or("no greeting")?;
        Ok(ws)
    }

    /// Connects without reading anything (for daemons whose greeting the test reads itself).
    pub async fn open(url: &str) -> R<Ws> {
        let (stream, _) =
            tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(url)).await??;
        Ok(Ws {
            stream,
            greeting: Value::Null,
            end: None,
            source: None,
        })
    }

    /// From now on every envelope must name `source` (e.g. `"system"`).
    pub fn source(mut self, source: &'static str) -> Ws {
        self.source = Some(source);
        self
    }

    /// The HTTP answer to an upgrade the server refused: status, `Retry-After` and the JSON
    /// body; None when the upgrade was accepted.
    pub async fn refused(url: &str) -> R<Option<(u16, Option<String>, Value)>> {
        let attempt = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(url)).await?;
        match attempt {
            Ok(_) => Ok(None),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let retry = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = resp
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                Ok(Some((resp.status().as_u16(), retry, body)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The close code the server sent, once the stream ended with a close frame.
    pub fn close_code(&self) -> Option<u16> {
        match self.end {
            Some(End::Close(c)) => Some(c),
            _ => None,
        }
    }

    /// The next `n` envelopes (e.g. a daemon's multi-frame greeting); fails if one is
    /// missing after 5 s.
    pub async fn frames(&mut self, n: usize) -> R<Vec<Value>> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let v = self.next(Duration::from_secs(5)).await?;
            out.push(v.ok_or_else(|| format!("frame {} of {n} missing (end: {:?})", i + 1, self.end))?);
        }
        Ok(out)
    }

    /// The next envelope, validated, or None on timeout or end of stream (see `end`).
    pub async fn next(&mut self, timeout: Duration) -> R<Option<Value>> {
        if self.end.is_some() {
            return Ok(None);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Ok(None),
                Ok(None) | Ok(Some(Err(_))) => {
                    self.end = Some(End::Dropped);
                    return Ok(None);
                }
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str())?;
                    schemas()
                        .validate_envelope(&v)
                        .map_err(|e| format!("invalid envelope {v}: {e}"))?;
                    if let Some(want) = self.source {
                        if v.get("source").and_then(Value::as_str) != Some(want) {
                            return Err(format!("source is not {want}: {v}").into());
                        }
                    }
                    return Ok(Some(v));
                }
                Message::Close(f) => {
                    self.end = Some(End::Close(f.map(|f| u16::from(f.code)).unwrap_or(1005)));
                    return Ok(None);
                }
                _ => {}
            }
        }
    }

    /// Reads until an envelope matches and returns it; fails after `timeout`.
    pub async fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> R<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                Some(v) if pred(&v) => return Ok(v),
                Some(_) => {}
                None => return Err(format!("expected envelope did not arrive (end: {:?})", self.end).into()),
            }
        }
    }

    /// Everything that arrives within `d`.
    pub async fn collect(&mut self, d: Duration) -> R<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + d;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            // A busy stream would otherwise keep delivering ready frames past the deadline.
            if left.is_zero() {
                return Ok(out);
            }
            match self.next(left).await? {
                Some(v) => out.push(v),
                None => return Ok(out),
            }
        }
    }

    /// Reads (and validates) until the stream ends; returns how.
    pub async fn until_end(&mut self, within: Duration) -> R<End> {
        let deadline = tokio::time::Instant::now() + within;
        while self.end.is_none() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err("stream did not end".into());
            }
            self.next(left).await?;
        }
        self.end.clone().ok_or_else(|| "stream did not end".into())
    }

    pub async fn send_text(&mut self, t: &str) -> R {
        self.send(Message::text(t)).await
    }

    /// Sends any frame (binary, oversized, ping...).
    pub async fn send(&mut self, m: Message) -> R {
        self.stream.send(m).await?;
        Ok(())
    }

    /// A polite close (1000).
    pub async fn close(mut self) -> R {
        let _ = self
            .stream
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }))
            .await;
        Ok(())
    }
}

/// `type` of an envelope ("" when absent).
pub fn kind(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

/// `data.id` of an envelope, if any.
pub fn data_id(v: &Value) -> Option<&str> {
    v.get("data")?.get("id")?.as_str()
}
