//! In-process taps: every envelope in publish order, heartbeat excluded, and a full tap
//! drops (counted) without holding up the publisher.

mod common;

use common::*;
use ndefender_hub::Hub;

#[tokio::test]
async fn tap_sees_every_publish_in_order_and_a_full_tap_only_counts_drops() -> Res {
    let svc = Counter::new(false, 0);
    let hub = Hub::new(cfg(), svc.clone());
    let mut tap = hub.tap("test", 1024);
    let mut tiny = hub.tap("tiny", 2);
    let mut seqs = Vec::new();
    for _ in 0..10 {
        svc.bump(&hub)?;
        seqs.push(hub.last_seq());
    }
    for want in &seqs {
        let got = tap.try_recv().ok_or("tap missed an event")?;
        assert_eq!(got.seq(), *want);
        assert_eq!(got.kind(), "VALUE");
        let v: serde_json::Value = serde_json::from_str(got.json())?;
        assert_eq!(v["type"], "VALUE");
    }
    assert!(tap.try_recv().is_none(), "no extra events");
    assert_eq!(tap.dropped(), 0);
    // The tiny tap kept its first two and counted the other eight as dropped.
    assert_eq!(tiny.try_recv().map(|e| e.seq()), Some(seqs[0]));
    assert_eq!(tiny.try_recv().map(|e| e.seq()), Some(seqs[1]));
    assert!(tiny.try_recv().is_none());
    assert_eq!(tiny.dropped(), 8);
    // A dropped tap is forgotten at the next publish.
    drop(tiny);
    svc.bump(&hub)?;
    assert_eq!(hub.tap_names(), vec!["test".to_owned()]);
    Ok(())
}
