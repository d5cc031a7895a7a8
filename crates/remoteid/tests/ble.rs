//! The Bluetooth LE source against BlueZ on a private system bus (python-dbusmock's `bluez5`
//! template): the engine sets the LE discovery filter and starts discovery, and Open Drone ID
//! service data published on a Device1 becomes a contact in the JSONL and on REST.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ndefender_contract::schema::Schemas;
use ndefender_remoteid::encode::{self, LocationIn};
use ndefender_remoteid::source::ble::ODID_SERVICE_UUID;
use ndefender_tests::dbus::{self, bluez, calls, dcall, PrivateBus, MOCK};
use ndefender_tests::{eventually, free_port, get_json, skip_or_fail, Launch, R};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use zbus::Variant;

const BIN: &str = env!("CARGO_BIN_EXE_ndefender-remoteid");
const DEV: &str = "/org/bluez/hci0/dev_E0_0D_1D_00_00_07";

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Publishes one advertisement's worth of Device1 properties, as BlueZ does on every report.
/// (dbusmock's `UpdateProperties` cannot wrap a dictionary value such as `ServiceData`, so the
/// signal is emitted through the mock's `EmitSignal`.)
async fn advertise(c: &zbus::Connection, rssi: i16, service_data: Vec<u8>) -> R {
    let mut sd: HashMap<String, Variant<'_>> = HashMap::new();
    sd.insert(ODID_SERVICE_UUID.to_owned(), Variant::from(service_data));
    let mut props: HashMap<String, Variant<'_>> = HashMap::new();
    props.insert("RSSI".into(), Variant::from(rssi));
    props.insert("ServiceData".into(), Variant::from(sd));
    let args = vec![
        Variant::from("org.bluez.Device1"),
        Variant::from(props),
        Variant::from(Vec::<String>::new()),
    ];
    dcall(
        c,
        "org.bluez",
        DEV,
        MOCK,
        "EmitSignal",
        &("org.freedesktop.DBus.Properties", "PropertiesChanged", "sa{sv}as", args),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bluez_service_data_becomes_a_contact() -> R {
    if let Some(why) = dbus::unavailable() {
        return skip_or_fail(&why);
    }
    let dir = tempfile::tempdir()?;
    let bus = PrivateBus::start(dir.path())?;
    let (_bz, c) = bluez(&bus, &[("E0:0D:1D:00:00:07", "drone")]).await?;

    let port = free_port()?;
    let feed = dir.path().join("feed.jsonl");
    let feed_env = feed.display().to_string();
    let bind = format!("127.0.0.1:{port}");
    let d = Launch::new("ndefender-remoteid", BIN, dir.path(), port)
        .envs(&[
            ("NDEFENDER_SERVER__BIND", bind.as_str()),
            ("NDEFENDER_OUTPUT__JSONL_PATH", feed_env.as_str()),
            ("NDEFENDER_MONITOR__SOURCE", "ble"),
            ("DBUS_SYSTEM_BUS_ADDRESS", bus.address.as_str()),
        ])
        .start()
        .await?;
    // Discovery is set up before anything is advertised.
    let bus_conn = &c;
    eventually(
        Duration::from_secs(20),
        "the engine starting discovery",
        || async move {
            let started = calls(bus_conn, "org.bluez", "/org/bluez/hci0", "StartDiscovery").await?;
            Ok((!started.is_empty()).then_some(()))
        },
    )
    .await?;
    let filter = calls(&c, "org.bluez", "/org/bluez/hci0", "SetDiscoveryFilter").await?;
    let f: HashMap<String, zbus::OwnedVariant> = filter[0][0].clone().try_into()?;
    assert_eq!(String::try_from(f["Transport"].clone())?, "le");
    assert!(bool::try_from(f["DuplicateData"].clone())?);

    // A legacy advertisement carries one message: Basic ID and Location take turns.
    let basic = encode::basic_id(1, 2, b"1581F5FKD229400BLE");
    let loc = encode::location(&LocationIn {
        status: 2,
        lat: Some(51.4769),
        lon: Some(-0.0005),
        geodetic_alt_m: Some(80.0),
        height_m: Some(30.0),
        height_agl: true,
        timestamp_ds: Some(100),
        ..Default::default()
    });
    for (i, m) in [basic, loc, basic, loc].iter().enumerate() {
        let mut sd = vec![0x0D, i as u8];
        sd.extend_from_slice(m);
        advertise(&c, -63, sd).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Other service data on the same device (another UUID's bytes under app code 0x0E) is not
    // Open Drone ID and adds nothing.
    advertise(&c, -63, vec![0x0E, 9, 1, 2, 3]).await?;

    let feed_path = feed.as_path();
    let l = eventually(Duration::from_secs(20), "a contact in the feed", || async move {
        let l = lines(feed_path);
        Ok(l.iter().any(|x| x["type"] == "CONTACT_NEW").then_some(l))
    })
    .await?;
    let schemas = Schemas::shared_or_abort();
    for x in &l {
        schemas.validate_envelope(x)?;
    }
    let new = l.iter().find(|x| x["type"] == "CONTACT_NEW").unwrap();
    assert_eq!(new["data"]["id"], "rid:1581F5FKD229400BLE");
    let (_, contacts) = get_json(&d.url("/api/v1/contacts")).await?;
    let list = contacts.as_array().unwrap();
    assert_eq!(list.len(), 1, "{contacts}");
    let x = &list[0];
    schemas.validate("Contact.json", x)?;
    assert_eq!(x["id"], "rid:1581F5FKD229400BLE");
    assert_eq!(x["transport"], "ble_legacy");
    assert_eq!(x["mac"], "e0:0d:1d:00:00:07");
    assert_eq!(x["rssi_dbm"].as_f64(), Some(-63.0));
    assert!((x["lat"].as_f64().unwrap() - 51.4769).abs() < 1e-6, "{x}");
    assert!((x["lon"].as_f64().unwrap() + 0.0005).abs() < 1e-6, "{x}");
    Ok(())
}
