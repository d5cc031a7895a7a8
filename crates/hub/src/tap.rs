//! In-process subscribers ("taps"): sinks inside the daemon (the MQTT uplink, TAK output,
//! detection history) that see every broadcast envelope in publish order, exactly as the
//! WebSocket clients do, without a socket.
//!
//! A tap is a bounded queue filled with `try_send` under the hub lock, so a slow or stalled
//! sink can never delay the publisher or the WebSocket clients: when its queue is full the
//! event is dropped for that tap only and counted in [`Tap::dropped`]. HEARTBEAT is not
//! delivered to taps (it is liveness for sockets, not data).

use crate::ring::Event;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::mpsc;

/// One published envelope as a tap receives it: the seq the hub assigned and the wire text
/// (the same bytes a WebSocket client without `?seq=1` receives).
#[derive(Debug, Clone)]
pub struct TapEvent {
    event: Arc<Event>,
}

impl TapEvent {
    pub fn seq(&self) -> u64 {
        self.event.seq
    }
    /// The envelope's `type`.
    pub fn kind(&self) -> &str {
        self.event.kind()
    }
    /// The envelope as JSON text, `{"type","timestamp_ms","source","data"}`.
    pub fn json(&self) -> &str {
        self.event.plain_str()
    }
}

pub(crate) struct TapSender {
    pub(crate) name: String,
    tx: mpsc::Sender<TapEvent>,
    dropped: Arc<AtomicU64>,
}

impl TapSender {
    /// Offers the event; false once the receiver is gone (the hub then forgets the tap).
    pub(crate) fn offer(&self, event: &Arc<Event>) -> bool {
        match self.tx.try_send(TapEvent { event: event.clone() }) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// The receiving side of a tap. Dropping it unregisters the tap at the next publish.
#[derive(Debug)]
pub struct Tap {
    rx: mpsc::Receiver<TapEvent>,
    dropped: Arc<AtomicU64>,
}

impl Tap {
    pub(crate) fn new(name: &str, capacity: usize) -> (TapSender, Tap) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        (
            TapSender {
                name: name.to_owned(),
                tx,
                dropped: dropped.clone(),
            },
            Tap { rx, dropped },
        )
    }

    /// The next event, or `None` once the hub is gone.
    pub async fn recv(&mut self) -> Option<TapEvent> {
        self.rx.recv().await
    }

    /// The next event if one is queued now.
    pub fn try_recv(&mut self) -> Option<TapEvent> {
        self.rx.try_recv().ok()
    }

    /// Events this tap lost because its queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// A handle on the drop counter that outlives moves of the tap (for /metrics).
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }
}
