//! The two JSONL feeds: a tailer each, whose lines are applied under the core's
//! lock (so a checkpointed offset always means "applied and published").

use crate::config::AggregatorConfig;
use crate::core::{antsdr, remoteid, Core, Feed};
use ndefender_tail::{LineSink, TailConfig, TailHandle, TailNotice};
use std::time::Duration;

struct FeedSink {
    core: Core,
    feed: Feed,
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

pub fn start(cfg: &AggregatorConfig, core: &Core) -> std::io::Result<Feeds> {
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
        };
        let sink = FeedSink {
            core: core.clone(),
            feed,
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
