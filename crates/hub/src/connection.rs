//! One upgraded connection: registration, its writer task and its reader, and the teardown.

use crate::admission::Params;
use crate::client::CloseReason;
use crate::reader::{self, ReaderEnd};
use crate::writer::{self, WriterEnd};
use crate::{Hub, Slot};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::time::timeout;

/// How long the peer gets to answer our close frame before the socket is dropped.
const CLOSE_HANDSHAKE: Duration = Duration::from_millis(500);

pub(crate) async fn serve(hub: Hub, mut socket: WebSocket, params: Params, slot: Slot) {
    let Some((client, start)) = hub.register(&params) else {
        // Shutdown began while this upgrade was in flight.
        let frame = CloseFrame {
            code: 1001,
            reason: Utf8Bytes::from_static("server shutting down"),
        };
        let _ = timeout(CLOSE_HANDSHAKE, socket.send(Message::Close(Some(frame)))).await;
        drop(slot);
        return;
    };
    let (sink, mut stream) = socket.split();
    let mut writer = tokio::spawn(writer::run(hub.clone(), client.clone(), sink, start));

    let mut closed_by_us = false;
    tokio::select! {
        end = &mut writer => closed_by_us = matches!(end, Ok(WriterEnd::Closed)),
        end = reader::run(&hub, &client, &mut stream) => match end {
            ReaderEnd::Gone => writer.abort(),
            ReaderEnd::Close(reason) => {
                client.request_close(reason);
                // The writer may be mid-write; it sees the request once that write finishes or times out.
                let bound = hub.config().send_timeout() + Duration::from_secs(2);
                match timeout(bound, &mut writer).await {
                    Ok(Ok(WriterEnd::Closed)) => closed_by_us = reason != CloseReason::PeerClosed,
                    Ok(_) => {}
                    Err(_) => writer.abort(),
                }
            }
        },
    }
    if closed_by_us {
        // Let the peer's close reply arrive so the handshake ends cleanly rather than with a reset.
        let _ = timeout(CLOSE_HANDSHAKE, async {
            while let Some(Ok(msg)) = stream.next().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    hub.deregister(client.id);
    drop(slot);
}
