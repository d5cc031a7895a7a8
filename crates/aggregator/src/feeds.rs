//! The two JSONL feeds: a tailer each, whose lines are applied under the core's
//! lock (so a checkpointed offset always means "applied and published").
//!
//! With the detection history on, a checkpointed offset also means "in the history database":
//! the checkpoint only moves past a line once the history writer has committed the records
//! its envelopes carried ([`crate::history::History::settled`]), so lines published but not yet
//! committed when the power goes are read again at the next start (the history drops the
//! repeats). A history that stalls holds the checkpoint back for [`MAX_HOLD`] at most; one
//! that fails (a full disk) or is off holds nothing back. Live streaming never waits for it.

use crate::config::AggregatorConfig;
use crate::core::{antsdr, remoteid, Core, Feed};
use crate::history::History;
use ndefender_tail::{LineSink, TailConfig, TailHandle, TailNotice};
use std::time::Duration;

/// Longest a feed checkpoint waits for the history to commit the lines before it (a crash
/// after that may lose them from the history, never from the live stream).
pub const MAX_HOLD: Duration = TailConfig::DEFAULT_MAX_HOLD;

struct FeedSink {
    core: Core,
    feed: Feed,
    history: Option<History>,
}

impl LineSink for FeedSink {
    fn line(&mut self, line: &str, _invalid_utf8: bool) {
        let feed = self.feed;
        self.core.mutate(|st| match feed {
            Feed::RemoteId => {
                remoteid::apply_line(st, line);
            }
            Feed::Antsdr => {
                antsdr::apply_line(st, line);
            }
        });
    }

    /// The hub's newest seq: covers every envelope the lines delivered so far were published
    /// under (they were published before `line` returned).
    fn mark(&mut self) -> u64 {
        self.core.hub().map_or(0, ndefender_hub::Hub::last_seq)
    }

    fn settled(&mut self, mark: u64) -> bool {
        self.history.as_ref().is_none_or(|h| h.settled(mark))
    }

    fn notice(&mut self, n: &TailNotice) {
        let feed = self.feed;
        match n {
            TailNotice::OversizeLine { bytes } => {
                tracing::warn!(feed = feed.name(), bytes, "oversize line skipped");
                self.core.mutate(|st| st.counters(feed).oversize += 1);
            }
            TailNotice::IoError(e) => tracing::warn!(feed = feed.name(), error = %e, "feed read error; retrying"),
            other => tracing::info!(feed = feed.name(), event = ?other, "feed file event"),
        }
    }
}

/// The running tailers.
pub struct Feeds {
    handles: Vec<TailHandle>,
    pub stats: Vec<(Feed, ndefender_tail::TailStats)>,
}

pub fn start(cfg: &AggregatorConfig, core: &Core, history: Option<&History>) -> std::io::Result<Feeds> {
    let mut handles = Vec::new();
    let mut stats = Vec::new();
    let mut add = |feed: Feed, path: &std::path::Path| -> std::io::Result<()> {
        let tc = TailConfig {
            feed: feed.name().to_owned(),
            path: path.to_owned(),
            checkpoint_path: cfg.state.dir.join(format!("tail-{}.json", feed.name())),
            start_position: cfg.tail.start_position,
            poll_interval: Duration::from_millis(cfg.tail.poll_interval_ms),
            checkpoint_interval: Duration::from_millis(cfg.tail.checkpoint_interval_ms),
            max_line_bytes: cfg.tail.max_line_bytes,
            max_hold: MAX_HOLD,
        };
        let sink = FeedSink {
            core: core.clone(),
            feed,
            history: history.cloned(),
        };
        let h = ndefender_tail::spawn(tc, sink)?;
        stats.push((feed, h.stats()));
        handles.push(h);
        Ok(())
    };
    if cfg.remoteid.enabled {
        add(Feed::RemoteId, &cfg.remoteid.jsonl_path)?;
    }
    if cfg.antsdr.enabled {
        add(Feed::Antsdr, &cfg.antsdr.jsonl_path)?;
    }
    Ok(Feeds { handles, stats })
}

impl Feeds {
    /// Stops the tailers, each writing its final checkpoint.
    pub async fn stop(self) {
        for h in self.handles {
            match tokio::task::spawn_blocking(move || h.stop()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "final checkpoint failed"),
                Err(e) => tracing::error!(error = %e, "tailer stop panicked"),
            }
        }
    }
}
