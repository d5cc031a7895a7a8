//! The soak's WebSocket clients: readers that account for every event they should
//! get, and stalled clients that never read.
//!
//! Readers connect with `?seq=1` and no filter, so every broadcast envelope carries
//! the hub's per-process sequence number and must reach them: a jump in `seq` is a
//! lost event, whatever its type (PROTOCOL.md §7.6). Per-client envelopes (greeting,
//! resync set, replies) carry the watermark instead, i.e. a seq already seen.
//! Aggregator readers also mark every soak RemoteID line they receive (its number is
//! in `model`) and time it from append to receipt.

use futures_util::StreamExt;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Resolves once `stop` is set (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|v| *v).await;
}

/// Epoch ns of the wall clock.
pub(crate) fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The `model` of soak RemoteID line `seq` appended at `ns`.
pub(crate) fn soak_model(seq: u64, ns: u64) -> String {
    format!("soak-{seq}-{ns}")
}

/// (seq, append ns) back from a soak `model`.
pub(crate) fn parse_soak_model(model: &str) -> Option<(u64, u64)> {
    let (seq, ns) = model.strip_prefix("soak-")?.split_once('-')?;
    Some((seq.parse().ok()?, ns.parse().ok()?))
}

/// Append → receive latencies (ms), all of them and those since the last sample.
#[derive(Debug, Default)]
pub(crate) struct Latencies {
    pub all: Vec<f32>,
    pub interval: Vec<f32>,
}

/// Only what the readers look at; everything else in a frame is skipped unparsed.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    ty: String,
    seq: Option<u64>,
    source: Option<String>,
    data: Option<FrameData>,
}

#[derive(Deserialize)]
struct FrameData {
    id: Option<serde_json::Value>,
    model: Option<String>,
}

/// What one reader saw over the whole run (across reconnects).
#[derive(Debug, Default, Clone)]
pub(crate) struct ReaderStats {
    pub frames: u64,
    pub by_type: BTreeMap<String, u64>,
    /// Broadcast envelopes missing from the seq sequence.
    pub seq_gaps: u64,
    /// Envelopes whose seq went backwards (a duplicate or reordering).
    pub seq_backwards: u64,
    /// Per-client envelopes (seq equal to the last one seen): greetings, resyncs, replies.
    pub per_client: u64,
    /// Connections it made (1 unless the server dropped it).
    pub connections: u64,
    /// How connections other than the final one ended.
    pub drops: Vec<String>,
    /// How the final connection ended.
    pub end: Option<String>,
    /// Soak RemoteID lines received, indexed by line number (count per number).
    pub rid: Vec<u8>,
    /// Frames of source `antsdr` (aggregator readers).
    pub antsdr_events: u64,
    pub unparsed: u64,
}

impl ReaderStats {
    fn mark_rid(&mut self, seq: u64) {
        let i = seq as usize;
        if self.rid.len() <= i {
            self.rid.resize(i + 1, 0);
        }
        if let Some(c) = self.rid.get_mut(i) {
            *c = c.saturating_add(1);
        }
    }

    /// (distinct lines received out of `appended`, duplicates).
    pub fn rid_received(&self, appended: u64) -> (u64, u64) {
        let mut got = 0;
        let mut dup = 0;
        for &c in self.rid.iter().take(appended as usize) {
            if c > 0 {
                got += 1;
                dup += u64::from(c - 1);
            }
        }
        (got, dup)
    }
}

/// A reader's shared state: its stats and whether it has been greeted.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    pub stats: Mutex<ReaderStats>,
    pub first_frame: tokio::sync::Notify,
}

/// Extras only the aggregator readers collect.
#[derive(Debug, Clone)]
pub(crate) struct AggTaps {
    pub latencies: Arc<Mutex<Latencies>>,
    /// Ids of ESP32 COMMAND_ACKs seen (collected by one reader only).
    pub acks: Option<Arc<Mutex<HashSet<String>>>>,
}

/// Reads `url` (a `?seq=1` stream) until `stop`; reconnects with `since=<last seq>`
/// if the server drops it, so a drop is accounted for by replay or as a gap.
pub(crate) async fn run_reader(
    url: String,
    reader: Arc<Reader>,
    taps: Option<AggTaps>,
    mut stop: watch::Receiver<bool>,
) {
    let mut last: Option<u64> = None;
    loop {
        let target = match last {
            Some(s) => format!("{url}&since={s}"),
            None => url.clone(),
        };
        let mut ws = match tokio_tungstenite::connect_async(&target).await {
            Ok((ws, _)) => ws,
            Err(e) => {
                lock(&reader.stats).drops.push(format!("connect failed: {e}"));
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = stopped(&mut stop) => return,
                }
            }
        };
        lock(&reader.stats).connections += 1;
        let end = loop {
            let msg = tokio::select! {
                m = ws.next() => m,
                () = stopped(&mut stop) => {
                    let _ = ws.close(None).await;
                    lock(&reader.stats).end = Some("closed by the soak".into());
                    return;
                }
            };
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let now = wall_ns();
                    handle_frame(t.as_str(), now, &reader, taps.as_ref(), &mut last);
                }
                Some(Ok(Message::Close(f))) => {
                    break match f {
                        Some(f) => format!("server closed {} {}", f.code, f.reason),
                        None => "server closed (no code)".into(),
                    };
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break format!("error: {e}"),
                None => break "eof".into(),
            }
        };
        let shutting_down = end.contains("1001");
        let mut s = lock(&reader.stats);
        if shutting_down {
            s.end = Some(end);
            return;
        }
        s.drops.push(end);
        drop(s);
        if *stop.borrow() {
            return;
        }
    }
}

fn handle_frame(text: &str, now_ns: u64, reader: &Reader, taps: Option<&AggTaps>, last: &mut Option<u64>) {
    let Ok(f) = serde_json::from_str::<Frame>(text) else {
        lock(&reader.stats).unparsed += 1;
        return;
    };
    let mut lat = None;
    let mut s = lock(&reader.stats);
    let first = s.frames == 0;
    s.frames += 1;
    *s.by_type.entry(f.ty.clone()).or_default() += 1;
    if let Some(seq) = f.seq {
        match *last {
            None => {}
            Some(l) if seq == l + 1 => {}
            Some(l) if seq == l => s.per_client += 1,
            Some(l) if seq > l => s.seq_gaps += seq - l - 1,
            Some(_) => s.seq_backwards += 1,
        }
        *last = Some(last.map_or(seq, |l| l.max(seq)));
    }
    if f.source.as_deref() == Some("antsdr") {
        s.antsdr_events += 1;
    }
    if let Some(data) = &f.data {
        if f.ty == "CONTACT_NEW" || f.ty == "CONTACT_UPDATE" {
            if let Some((n, ns)) = data.model.as_deref().and_then(parse_soak_model) {
                s.mark_rid(n);
                lat = Some(now_ns.saturating_sub(ns) as f64 / 1e6);
            }
        }
    }
    drop(s);
    if let (Some(taps), Some(ms)) = (taps, lat) {
        let mut l = lock(&taps.latencies);
        l.all.push(ms as f32);
        l.interval.push(ms as f32);
    }
    if f.ty == "COMMAND_ACK" && f.source.as_deref() == Some("esp32") {
        if let (Some(acks), Some(id)) = (
            taps.and_then(|t| t.acks.as_ref()),
            f.data.as_ref().and_then(|d| d.id.as_ref()),
        ) {
            if let Some(id) = id.as_str() {
                lock(acks).insert(id.to_owned());
            }
        }
    }
    if first {
        reader.first_frame.notify_one();
    }
}

/// How one connection of a client that never reads ended, seen afterwards.
#[derive(Debug, Clone)]
pub(crate) struct StallOutcome {
    /// How long it was left unread.
    pub held: Duration,
    /// Frames the kernel buffers still held for it.
    pub frames_buffered: u64,
    pub end: String,
}

/// A client that connects and never reads. Every `cycle` it looks at what became of
/// the connection (drains what the kernel buffered, looking for the server's close
/// frame) and connects again, as a client would after a drop (PROTOCOL.md §7.4, §7.8).
pub(crate) async fn run_stalled(
    url: String,
    cycle: Duration,
    out: Arc<Mutex<Vec<StallOutcome>>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&url).await else {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                () = stopped(&mut stop) => return,
            }
        };
        let t0 = Instant::now();
        let stopped = tokio::select! {
            () = tokio::time::sleep(cycle) => false,
            () = stopped(&mut stop) => true,
        };
        let held = t0.elapsed();
        // Post mortem: read what is buffered; the connection is over if a close frame
        // or EOF comes, still open if frames keep coming or nothing comes.
        let mut frames = 0u64;
        let deadline = Instant::now() + Duration::from_secs(3);
        let end = loop {
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Err(_) => break "still open (not closed by the server)".to_owned(),
                Ok(Some(Ok(Message::Close(f)))) => {
                    break match f {
                        Some(f) => format!("server closed {} \"{}\"", f.code, f.reason),
                        None => "server closed (no code)".into(),
                    }
                }
                Ok(Some(Ok(Message::Text(_)))) => frames += 1,
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => break format!("connection error: {e}"),
                Ok(None) => break "eof without close frame".into(),
            }
        };
        lock(&out).push(StallOutcome {
            held,
            frames_buffered: frames,
            end,
        });
        drop(ws);
        if stopped {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soak_model_round_trips() {
        assert_eq!(
            parse_soak_model(&soak_model(42, 1_700_000_000_000_000_000)),
            Some((42, 1_700_000_000_000_000_000))
        );
        assert_eq!(parse_soak_model("DJI Mini 3"), None);
    }

    #[test]
    fn seq_accounting() {
        let r = Reader::default();
        let mut last = None;
        for (i, seq) in [10u64, 10, 11, 12, 15, 15, 16, 14].iter().enumerate() {
            let model = soak_model(i as u64, 0);
            let text = format!(
                "{{\"type\":\"CONTACT_UPDATE\",\"seq\":{seq},\"source\":\"remoteid\",\"data\":{{\"id\":\"rid:X\",\"model\":\"{model}\"}}}}"
            );
            handle_frame(&text, 1_000_000, &r, None, &mut last);
        }
        let s = lock(&r.stats);
        assert_eq!(s.frames, 8);
        assert_eq!(s.per_client, 2);
        assert_eq!(s.seq_gaps, 2);
        assert_eq!(s.seq_backwards, 1);
        assert_eq!(s.rid_received(8), (8, 0));
        assert_eq!(s.rid_received(10), (8, 0));
    }
}
