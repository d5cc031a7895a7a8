//! The demo stack as processes, seen from outside: a WebSocket client on each
//! daemon, contacts from all three sources merged in the aggregator, a command
//! round trip to the ESP32 emulator, and SIGTERM shutdown of everything.

use ndefender_tests::ws::End;
use ndefender_tests::{eventually, get_json, metric, post_json, Stack, StackOptions, Ws, R};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

fn kinds(contacts: &Value) -> BTreeSet<String> {
    contacts["contacts"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["type"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_stack_end_to_end() -> R {
    let mut s = Stack::start(StackOptions::default()).await?;
    let mut agg = Ws::connect(&s.aggregator.ws("/api/v1/ws")).await?;
    let mut ctl = Ws::connect(&s.controller.ws("/api/v1/ws")).await?;
    let mut scan = Ws::connect(&s.scanner.ws("/api/v1/events")).await?;
    assert_eq!(agg.greeting["type"], "SYSTEM_UPDATE", "{}", agg.greeting);

    // Each daemon streams its own events.
    scan.wait_for(MIN, |v| v["type"] == "RF_CONTACT_NEW").await?;
    ctl.wait_for(MIN, |v| v["type"] == "SYSTEM_STATUS").await?;
    agg.wait_for(MIN, |v| v["type"] == "CONTACT_NEW" && v["source"] == "remoteid")
        .await?;

    // One contact list, fed by RemoteID (JSONL), the scanner (JSONL) and the ESP32 (serial).
    let url = s.aggregator.url("/api/v1/contacts");
    let list = eventually(MIN, "contacts from all three sources", || async {
        let (code, v) = get_json(&url).await?;
        let k = kinds(&v);
        Ok((code == 200 && ["REMOTE_ID", "RF", "FPV"].iter().all(|t| k.contains(*t))).then_some(v))
    })
    .await?;
    for c in list["contacts"].as_array().ok_or("no contacts array")? {
        ndefender_tests::schemas().validate("Contact.json", c)?;
    }
    let (_, status) = get_json(&s.aggregator.url("/api/v1/status")).await?;
    ndefender_tests::schemas().validate("StatusSnapshot.json", &status)?;
    assert_eq!(status["esp32"]["connected"], true, "{}", status["esp32"]);
    assert_eq!(status["antsdr"]["connected"], true, "{}", status["antsdr"]);
    assert!(
        status["system"]["cpu"].is_object(),
        "system section from the controller: {}",
        status["system"]
    );

    // REST → aggregator → serial → emulator → ack → REST and WS.
    let (code, res) = post_json(
        &s.aggregator.url("/api/v1/video/select"),
        &json!({"payload": {"ch": 2}}),
    )
    .await?;
    assert_eq!(code, 200, "{res}");
    let id = res["command_id"].as_str().ok_or("no command_id")?.to_owned();
    let ack = agg
        .wait_for(Duration::from_secs(10), |v| {
            v["type"] == "COMMAND_ACK" && v["data"]["id"].as_str() == Some(id.as_str())
        })
        .await?;
    assert_eq!(ack["data"]["ok"], true, "{ack}");
    let sim = s.esp32.as_ref().ok_or("no emulator")?.control();
    let seen = sim
        .commands()
        .into_iter()
        .find(|c| c.id == id)
        .ok_or("the emulator never saw it")?;
    assert_eq!(seen.cmd.as_deref(), Some("VIDEO_SELECT"));

    // Shutdown: the producers first, so the aggregator's final checkpoints can cover
    // every byte written; each daemon within 5 s, each client told 1001.
    s.stop_simulator().await;
    let (st, took) = s.scanner.terminate(Duration::from_secs(10)).await?;
    assert!(
        st.success() && took < Duration::from_secs(5),
        "scanner: {st} after {took:?}"
    );
    assert_eq!(scan.until_end(Duration::from_secs(5)).await?, End::Close(1001));
    let sizes = (
        std::fs::metadata(&s.rid_path)?.len(),
        std::fs::metadata(&s.rf_path)?.len(),
    );
    let murl = s.aggregator.url("/metrics");
    eventually(
        Duration::from_secs(20),
        "aggregator caught up with both files",
        || async {
            let body = reqwest::get(&murl).await?.text().await?;
            let rid = metric(&body, "aggregator_feed_offset_bytes{feed=\"remoteid\"}");
            let rf = metric(&body, "aggregator_feed_offset_bytes{feed=\"antsdr\"}");
            Ok((rid == Some(sizes.0 as f64) && rf == Some(sizes.1 as f64)).then_some(()))
        },
    )
    .await?;
    for p in [&mut s.controller, &mut s.aggregator] {
        let (st, took) = p.terminate(Duration::from_secs(10)).await?;
        assert!(
            st.success() && took < Duration::from_secs(5),
            "{}: {st} after {took:?}",
            p.name
        );
    }
    assert_eq!(ctl.until_end(Duration::from_secs(5)).await?, End::Close(1001));
    assert_eq!(agg.until_end(Duration::from_secs(5)).await?, End::Close(1001));
    for (feed, size) in [("remoteid", sizes.0), ("antsdr", sizes.1)] {
        let cp: Value = serde_json::from_str(&std::fs::read_to_string(s.state_dir.join(format!("tail-{feed}.json")))?)?;
        assert_eq!(cp["offset"].as_u64(), Some(size), "{feed} checkpoint {cp}");
    }
    s.shutdown_esp32().await
}
