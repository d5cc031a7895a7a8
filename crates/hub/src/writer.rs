//! A client's writer task: greeting or replay first, then its queue, pings, resyncs and the close.

use crate::client::{Client, CloseReason, Item, Step};
use crate::ring::Event;
use crate::Hub;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use ndefender_contract::Envelope;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep_until, timeout, Instant};

/// Items taken per queue visit: enough to amortise the lock and one flush, small
/// enough that a close request or resync is seen promptly.
const BATCH: usize = 64;
/// Bound on writing a close frame or the close-handshake reply.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How the connection starts, decided atomically with its registration.
#[derive(Debug)]
pub(crate) enum Start {
    Greeting,
    /// `since` was usable: these ring entries follow HELLO, and no snapshot is sent.
    Replay {
        since: u64,
        events: Vec<Arc<Event>>,
    },
    /// `since` was unusable: HELLO, then the resync set.
    Resync,
}

/// How the writer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriterEnd {
    /// A close frame (or the handshake reply) went out; the peer may still answer.
    Closed,
    /// The socket failed or blocked; nothing more can be sent.
    Gone,
}

/// Why a write did not complete.
enum Fail {
    Broken,
    TimedOut,
}

struct Writer {
    hub: Hub,
    client: Arc<Client>,
    sink: SplitSink<WebSocket, Message>,
    send_timeout: Duration,
    ping_every: Option<Duration>,
    next_ping: Instant,
    /// Queued events with a seq at or below this are already reflected in a greeting or resync set.
    watermark: u64,
    /// Newest broadcast seq the client's stream reflects so far; stamped on control replies.
    through: u64,
    /// Text frames fed since the last successful flush.
    unflushed: u64,
}

pub(crate) async fn run(hub: Hub, client: Arc<Client>, sink: SplitSink<WebSocket, Message>, start: Start) -> WriterEnd {
    let cfg = hub.config();
    let ping_every = cfg.ping_interval();
    let send_timeout = cfg.send_timeout();
    let mut w = Writer {
        next_ping: Instant::now() + ping_every.unwrap_or(Duration::ZERO),
        hub,
        client,
        sink,
        send_timeout,
        ping_every,
        watermark: 0,
        through: 0,
        unflushed: 0,
    };
    match w.start(start).await {
        Ok(()) => w.pump().await,
        Err(fail) => w.fail(fail).await,
    }
}

impl Writer {
    async fn start(&mut self, start: Start) -> Result<(), Stop> {
        let source = Arc::clone(self.hub.greeting_source());
        let hub = self.hub.clone();
        let set = match start {
            Start::Greeting => guarded(|| (source.hello(), source.greeting(&hub))),
            Start::Resync => guarded(|| (source.hello(), source.resync(&hub))),
            Start::Replay { since, events } => {
                let hello = guarded(|| source.hello()).ok_or(Stop::Close(CloseReason::Internal))?;
                self.watermark = since;
                self.through = since;
                self.send_set(&hello, since).await?;
                for event in events {
                    self.through = event.seq;
                    self.feed(Message::Text(event.frame(self.client.seq_mode))).await?;
                }
                return Ok(self.flush().await?);
            }
        };
        let (hello, greeting) = set.ok_or(Stop::Close(CloseReason::Internal))?;
        self.watermark = greeting.watermark;
        self.through = greeting.watermark;
        self.send_set(&hello, greeting.watermark).await?;
        self.send_set(&greeting.envelopes, greeting.watermark).await?;
        Ok(self.flush().await?)
    }

    async fn pump(mut self) -> WriterEnd {
        let mut batch: Vec<Item> = Vec::with_capacity(BATCH);
        loop {
            if let Err(e) = self.ping_if_due().await {
                return self.fail(e.into()).await;
            }
            let step = self.client.next_step(&mut batch, BATCH);
            let done = match step {
                Step::Close(reason) => return self.close(reason).await,
                Step::Resync => self.resync().await,
                Step::Items => self.send_items(&mut batch).await.map_err(Stop::from),
                Step::Idle => {
                    self.idle().await;
                    Ok(())
                }
            };
            if let Err(e) = done {
                return self.fail(e).await;
            }
        }
    }

    async fn idle(&self) {
        match self.ping_every {
            Some(_) => {
                tokio::select! {
                    () = self.client.woken() => {}
                    () = sleep_until(self.next_ping) => {}
                }
            }
            None => self.client.woken().await,
        }
    }

    async fn ping_if_due(&mut self) -> Result<(), Fail> {
        let Some(every) = self.ping_every else {
            return Ok(());
        };
        let now = Instant::now();
        if now < self.next_ping {
            return Ok(());
        }
        self.next_ping = now + every;
        self.feed(Message::Ping(Bytes::new())).await?;
        self.flush().await
    }

    async fn resync(&mut self) -> Result<(), Stop> {
        self.hub.counters().resyncs.fetch_add(1, Relaxed);
        let source = Arc::clone(self.hub.greeting_source());
        let hub = self.hub.clone();
        let set = guarded(|| source.resync(&hub)).ok_or(Stop::Close(CloseReason::Internal))?;
        self.watermark = set.watermark;
        self.through = self.through.max(set.watermark);
        self.send_set(&set.envelopes, set.watermark).await?;
        Ok(self.flush().await?)
    }

    async fn send_items(&mut self, batch: &mut Vec<Item>) -> Result<(), Fail> {
        for item in batch.drain(..) {
            let text = match item {
                Item::Event(event) => {
                    if event.seq <= self.watermark {
                        continue;
                    }
                    self.through = event.seq;
                    event.frame(self.client.seq_mode)
                }
                Item::Reply { envelope, seq } => self.per_client(&envelope, seq.max(self.through)),
            };
            self.feed(Message::Text(text)).await?;
        }
        self.flush().await
    }

    /// Greeting, resync set or HELLO: per-client envelopes carrying `watermark` as their seq.
    async fn send_set(&mut self, envelopes: &[Envelope], watermark: u64) -> Result<(), Fail> {
        for envelope in envelopes {
            let text = self.per_client(envelope, watermark);
            self.feed(Message::Text(text)).await?;
        }
        Ok(())
    }

    fn per_client(&self, envelope: &Envelope, seq: u64) -> Utf8Bytes {
        let seq = self.client.seq_mode.then_some(seq);
        Utf8Bytes::from(envelope.to_json(seq, self.hub.config().time_field))
    }

    async fn feed(&mut self, msg: Message) -> Result<(), Fail> {
        if matches!(msg, Message::Text(_)) {
            self.unflushed += 1;
        }
        match timeout(self.send_timeout, self.sink.feed(msg)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Fail::Broken),
            Err(_) => Err(Fail::TimedOut),
        }
    }

    async fn flush(&mut self) -> Result<(), Fail> {
        match timeout(self.send_timeout, self.sink.flush()).await {
            Ok(Ok(())) => {
                // Counted per flush, not per frame, so writers do not contend on one counter.
                let sent = std::mem::take(&mut self.unflushed);
                self.hub.counters().frames_sent.fetch_add(sent, Relaxed);
                Ok(())
            }
            Ok(Err(_)) => Err(Fail::Broken),
            Err(_) => Err(Fail::TimedOut),
        }
    }

    async fn fail(self, e: Stop) -> WriterEnd {
        match e {
            Stop::Fail(Fail::Broken) => WriterEnd::Gone,
            Stop::Fail(Fail::TimedOut) => {
                self.hub.counters().slow_closes.fetch_add(1, Relaxed);
                // The socket is blocked, so this close frame most likely never leaves; try briefly anyway.
                self.close(CloseReason::SlowConsumer).await;
                WriterEnd::Gone
            }
            Stop::Close(reason) => self.close(reason).await,
        }
    }

    async fn close(mut self, reason: CloseReason) -> WriterEnd {
        let sent = match reason.frame() {
            Some((code, text)) => {
                let frame = CloseFrame {
                    code,
                    reason: Utf8Bytes::from_static(text),
                };
                timeout(CLOSE_TIMEOUT, self.sink.send(Message::Close(Some(frame)))).await
            }
            // Flushes the close reply tungstenite queued when the peer's Close arrived.
            None => timeout(CLOSE_TIMEOUT, self.sink.close()).await,
        };
        match sent {
            Ok(Ok(())) => WriterEnd::Closed,
            _ => WriterEnd::Gone,
        }
    }
}

/// Why the writer stops early: a failed write, or a close it must send.
enum Stop {
    Fail(Fail),
    Close(CloseReason),
}

impl From<Fail> for Stop {
    fn from(f: Fail) -> Self {
        Stop::Fail(f)
    }
}

/// A panicking greeting source is a bug in one service; it costs that connection a 1011, not the process.
fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}
