//! The controller against a private dbus-daemon with python-dbusmock services
//! (networkmanager, upower, bluez5, logind) and the project's systemd1 mock:
//! real PropertiesChanged signals, real method calls, real call logs.

mod support;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::*;
use zbus::{ObjectPath, Variant};

const SD: &str = "org.freedesktop.systemd1";
const SD_PATH: &str = "/org/freedesktop/systemd1";
const SD_MOCK: &str = "org.ndefender.Systemd1Mock";
const NM: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";

fn config(dir: &std::path::Path, extra: &str) -> String {
    base_config(0, dir, extra).replace("127.0.0.1:0", "127.0.0.1:{PORT}")
}

async fn start(dir: &std::path::Path, bus: &PrivateBus, extra: &str, env: &[(&str, &str)]) -> R<Daemon> {
    let mut e: Vec<(&str, &str)> = vec![("DBUS_SYSTEM_BUS_ADDRESS", bus.address.as_str())];
    e.extend_from_slice(env);
    Daemon::start(dir, &config(dir, extra), &e).await
}

fn service<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|s| s["name"] == name)
}

async fn add_unit(c: &zbus::Connection, name: &str, active: &str, sub: &str) -> R {
    dcall(c, SD, SD_PATH, SD_MOCK, "AddUnit", &(name, active, sub)).await?;
    Ok(())
}

#[tokio::test]
async fn systemd_subscribe_push_restart_and_gates() -> R {
    if let Some(why) = dbus::unavailable() {
        return skip_or_fail(&why);
    }
    let dir = tempfile::tempdir()?;
    let bus = PrivateBus::start(dir.path())?;
    let _sd = Mock::start(&bus, SD, &systemd_template(), None).await?;
    let c = bus.connect().await?;
    add_unit(&c, "gpsd.service", "active", "running").await?;
    add_unit(&c, "ndefender-antsdr-scan.service", "active", "running").await?;
    let d = start(
        dir.path(),
        &bus,
        r#"[services]
watch = ["gpsd", "ndefender-antsdr-scan", "missing-unit"]
allow_restart = ["gpsd", "ndefender-antsdr-scan"]
[power]
backend = "none"
[network]
enabled = false
[bluetooth]
enabled = false
"#,
        &[],
    )
    .await?;
    let st = d
        .wait_get("/api/v1/services", S10, |v| {
            service(v, "gpsd").is_some_and(|s| s["active_state"] == "active")
        })
        .await?;
    let gpsd = service(&st, "gpsd").ok_or("gpsd")?;
    assert_eq!(gpsd["sub_state"], "running");
    assert!(gpsd["uptime_s"].is_i64() && gpsd["last_restart_ms"].is_u64(), "{gpsd}");
    let missing = service(&st, "missing-unit").ok_or("missing-unit")?;
    assert_eq!(
        missing,
        &json!({"name":"missing-unit","active_state":"unknown","sub_state":"unknown","restart_count":0,"last_error":"unit_not_found"})
    );
    let subscribed: bool = dcall(&c, SD, SD_PATH, SD_MOCK, "IsSubscribed", &())
        .await?
        .body()
        .deserialize()?;
    assert!(subscribed, "the controller never called Subscribe");

    // a unit state change is pushed by PropertiesChanged, long before the 10 s resync
    let mut ws = connect(&d.ws_url()).await?;
    ws.frames(GREETING).await?;
    let t0 = Instant::now();
    dcall(
        &c,
        SD,
        SD_PATH,
        SD_MOCK,
        "SetUnitState",
        &("gpsd.service", "failed", "failed", "exit-code"),
    )
    .await?;
    let upd = ws
        .wait_for(S5, |v| {
            kind(v) == "SERVICE_UPDATE"
                && service(&v["data"]["services"], "gpsd").is_some_and(|s| s["active_state"] == "failed")
        })
        .await?;
    assert!(t0.elapsed() < Duration::from_secs(5));
    let gpsd = service(&upd["data"]["services"], "gpsd").ok_or("gpsd")?;
    assert_eq!(gpsd["last_error"], "failed_exit_code");
    assert!(gpsd.get("uptime_s").is_none());

    // restart of an allow-listed unit: 200, then the ack once JobRemoved says done
    let (s, _, res) = d.post("/api/v1/services/gpsd/restart", r#"{"confirm":true}"#).await?;
    assert_eq!(s, 200);
    let ack = ws.wait_for(S10, |v| ack_of(v, "services/restart").is_some()).await?;
    // Contract v1.1: the ack carries the CommandResult's id.
    assert_eq!(
        ack["data"],
        json!({"command":"services/restart","name":"gpsd","ok":true,"reason":null,"command_id":res["command_id"]})
    );
    // the same unit again within the cooldown: 429 with Retry-After, no ack
    let (s, h, v) = d.post("/api/v1/services/gpsd/restart", r#"{"confirm":true}"#).await?;
    assert_eq!((s, v), (429, json!({"detail":"rate_limited"})));
    assert!(h.get("retry-after").is_some());
    // a different unit still works; its job fails
    dcall(
        &c,
        SD,
        SD_PATH,
        SD_MOCK,
        "SetRestartOutcome",
        &("ndefender-antsdr-scan.service", "failed", 100u32),
    )
    .await?;
    let (s, _, _) = d
        .post("/api/v1/services/ndefender-antsdr-scan/restart", r#"{"confirm":true}"#)
        .await?;
    assert_eq!(s, 200);
    let ack = ws
        .wait_for(S10, |v| {
            ack_of(v, "services/restart").is_some_and(|a| a["name"] == "ndefender-antsdr-scan")
        })
        .await?;
    assert_eq!(ack["data"]["ok"], false);
    assert_eq!(ack["data"]["reason"], "job_failed");
    let restarts = calls(&c, SD, SD_PATH, "RestartUnit").await?.len();
    assert_eq!(restarts, 2);
    // sshd is not allow-listed: 403, no RestartUnit, no token spent
    for _ in 0..12 {
        let (s, _, v) = d.post("/api/v1/services/sshd/restart", r#"{"confirm":true}"#).await?;
        assert_eq!((s, v), (403, json!({"detail":"unit_not_allowed"})));
    }
    assert_eq!(calls(&c, SD, SD_PATH, "RestartUnit").await?.len(), 2);
    Ok(())
}

async fn nm_setup(c: &zbus::Connection) -> R<(String, String)> {
    let dev: String = dcall(c, NM, NM_PATH, MOCK, "AddWiFiDevice", &("wlan0", "wlan0", 100u32))
        .await?
        .body()
        .deserialize()?;
    let ap = |name: &'static str, ssid: &'static str, mac: &'static str, freq: u32, strength: u8, sec: u32| {
        let dev = dev.clone();
        async move {
            let p: String = dcall(
                c,
                NM,
                NM_PATH,
                MOCK,
                "AddAccessPoint",
                &(dev.as_str(), name, ssid, mac, 2u32, freq, 54000u32, strength, sec),
            )
            .await?
            .body()
            .deserialize()?;
            Ok::<String, Box<dyn std::error::Error + Send + Sync>>(p)
        }
    };
    let ap1 = ap("ap1", "KitNet", "A4:2B:B0:11:22:33", 2437, 80, 0x100).await?;
    ap("ap2", "SaeNet", "A4:2B:B0:11:22:44", 5180, 60, 0x400).await?;
    ap("ap3", "OpenNet", "F0:9F:C2:00:00:01", 5180, 30, 0).await?;
    // The template lacks these: add them through the generic mock API.
    let wl = "org.freedesktop.NetworkManager.Device.Wireless";
    dcall(
        c,
        NM,
        &dev,
        MOCK,
        "AddProperty",
        &(
            wl,
            "ActiveAccessPoint",
            Variant::from(ObjectPath::try_from(ap1.as_str())?),
        ),
    )
    .await?;
    dcall(c, NM, &dev, MOCK, "AddProperty", &(wl, "LastScan", Variant::from(1i64))).await?;
    let ip4 = "/org/freedesktop/NetworkManager/IP4Config/1";
    let addr: Vec<HashMap<&str, Variant>> = vec![HashMap::from([
        ("address", Variant::from("192.168.50.20")),
        ("prefix", Variant::from(24u32)),
    ])];
    let props: HashMap<&str, Variant> = HashMap::from([("AddressData", Variant::from(addr))]);
    let methods: Vec<(&str, &str, &str, &str)> = Vec::new();
    dcall(
        c,
        NM,
        NM_PATH,
        MOCK,
        "AddObject",
        &(ip4, "org.freedesktop.NetworkManager.IP4Config", props, methods),
    )
    .await?;
    dcall(
        c,
        NM,
        &dev,
        MOCK,
        "AddProperty",
        &(
            "org.freedesktop.NetworkManager.Device",
            "Ip4Config",
            Variant::from(ObjectPath::try_from(ip4)?),
        ),
    )
    .await?;
    Ok((dev, ap1))
}

/// The controller on a private bus whose networkmanager mock is set up by [`nm_setup`]
/// (fields drop in order: the daemon first, the bus and its directory last).
struct NmRig {
    d: Daemon,
    c: zbus::Connection,
    dev: String,
    ap1: String,
    _nm: Mock,
    _bus: PrivateBus,
    _dir: tempfile::TempDir,
}

/// The profile [`saved_kitnet`] saves.
const KITNET: &str = "/org/freedesktop/NetworkManager/Settings/kitnet";

/// A saved WPA-PSK profile for the `KitNet` access point of [`nm_setup`].
async fn saved_kitnet(c: &zbus::Connection, dev: &str) -> R {
    dcall(
        c,
        NM,
        NM_PATH,
        MOCK,
        "AddWiFiConnection",
        &(dev, "kitnet", "KitNet", "wpa-psk"),
    )
    .await?;
    Ok(())
}

async fn nm_rig() -> R<NmRig> {
    let dir = tempfile::tempdir()?;
    let bus = PrivateBus::start(dir.path())?;
    let nm = Mock::start(&bus, NM, "networkmanager", None).await?;
    let c = bus.connect().await?;
    let (dev, ap1) = nm_setup(&c).await?;
    let d = start(
        dir.path(),
        &bus,
        "[services]\nwatch = []\n[power]\nbackend = \"none\"\n[bluetooth]\nenabled = false\n",
        &[],
    )
    .await?;
    Ok(NmRig {
        d,
        c,
        dev,
        ap1,
        _nm: nm,
        _bus: bus,
        _dir: dir,
    })
}

#[tokio::test]
async fn networkmanager_state_push_scan_and_commands() -> R {
    if let Some(why) = dbus::unavailable() {
        return skip_or_fail(&why);
    }
    let NmRig { d, c, dev, ap1, .. } = &nm_rig().await?;
    let w = d
        .wait_get("/api/v1/network/wifi/state", S10, |v| v["ip"].is_string())
        .await?;
    assert_eq!(w["bssid"], "a4:2b:b0:11:22:33");
    assert_eq!(w["ssid"], "KitNet");
    assert_eq!(w["link_quality"], 80);
    assert_eq!(w["rssi_dbm"], -52);
    assert_eq!(w["ip"], "192.168.50.20");
    assert_eq!(w["connected"], true);
    assert_eq!(w["enabled"], true);
    let (_, n) = d.get("/api/v1/network").await?;
    assert_eq!(n["connected"], true);
    assert_eq!(n["ssid"], "KitNet");

    // a property change on the active AP is pushed
    let mut ws = connect(&d.ws_url()).await?;
    ws.frames(GREETING).await?;
    dcall(
        c,
        NM,
        NM_PATH,
        MOCK,
        "SetProperty",
        &(
            ap1.as_str(),
            "org.freedesktop.NetworkManager.AccessPoint",
            "Strength",
            Variant::from(30u8),
        ),
    )
    .await?;
    let upd = ws
        .wait_for(S5, |v| {
            kind(v) == "NETWORK_UPDATE" && v["data"]["wifi"]["link_quality"] == 30
        })
        .await?;
    assert_eq!(upd["data"]["wifi"]["rssi_dbm"], -82);

    // a scan with a stale LastScan asks once and answers without waiting for a change
    let t0 = Instant::now();
    let (s, scan) = d.get("/api/v1/network/wifi/scan").await?;
    assert_eq!(s, 200);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(calls(c, NM, dev, "RequestScan").await?.len(), 1);
    let nets = scan["networks"].as_array().ok_or("networks")?;
    let by = |ssid: &str| nets.iter().find(|n| n["ssid"] == ssid).cloned().unwrap_or(Value::Null);
    assert_eq!(by("KitNet")["security"], "wpa2");
    assert_eq!(by("KitNet")["channel"], 6);
    assert_eq!(by("KitNet")["frequency_mhz"], 2437);
    assert_eq!(by("SaeNet")["security"], "wpa3");
    assert_eq!(by("SaeNet")["channel"], 36);
    assert_eq!(by("OpenNet")["security"], "open");
    assert_eq!(nets[0]["ssid"], "SaeNet", "strongest first: {scan}");

    // radio: disable needs confirm; enable with an empty payload enables
    let (s, _, _) = d.post("/api/v1/network/wifi/disable", "{}").await?;
    assert_eq!(s, 400);
    let (s, _, _) = d.post("/api/v1/network/wifi/disable", r#"{"confirm":true}"#).await?;
    assert_eq!(s, 200);
    let get_enabled = || async {
        let m = dcall(
            c,
            NM,
            NM_PATH,
            "org.freedesktop.DBus.Properties",
            "Get",
            &(NM, "WirelessEnabled"),
        )
        .await?;
        let v: zbus::OwnedVariant = m.body().deserialize()?;
        Ok::<bool, Box<dyn std::error::Error + Send + Sync>>(bool::try_from(v)?)
    };
    assert!(!get_enabled().await?);
    let (s, _, _) = d.post("/api/v1/network/wifi/enable", "").await?;
    assert_eq!(s, 200);
    assert!(get_enabled().await?);
    let (s, _, v) = d
        .post("/api/v1/network/wifi/enable", r#"{"payload":{"enabled":"false"}}"#)
        .await?;
    assert_eq!((s, v), (400, json!({"detail":"invalid_payload","field":"enabled"})));

    // connect to a saved profile with a new password (asked for): ok, and the password is nowhere
    saved_kitnet(c, dev).await?;
    let secret = "correct-horse-battery";
    let (s, _, res) = d
        .post(
            "/api/v1/network/wifi/connect",
            &format!(r#"{{"payload":{{"ssid":"KitNet","password":"{secret}","replace_psk":true}}}}"#),
        )
        .await?;
    assert_eq!(s, 200);
    let ack = ws
        .wait_for(S10, |v| ack_of(v, "network/wifi/connect").is_some())
        .await?;
    assert_eq!(
        ack["data"],
        json!({"command":"network/wifi/connect","ok":true,"reason":null,"command_id":res["command_id"]})
    );
    let frames = ws.collect(Duration::from_millis(300)).await?;
    let (_, _, metrics) = (0, 0, reqwest::get(format!("{}/metrics", d.base())).await?.text().await?);
    for needle in [
        "ndefender_http_requests_total{route=\"/api/v1/network/wifi/connect\",status=\"200\"} 1\n",
        "probe_duration_seconds_bucket{probe=\"network\",le=\"+Inf\"}",
        "probe_duration_seconds_count{probe=\"system\"}",
        "commands_total{command=\"network/wifi/connect\",outcome=\"ok\"} 1\n",
    ] {
        assert!(metrics.contains(needle), "{needle} missing in {metrics}");
    }
    for text in [d.log(), metrics, serde_json::to_string(&frames)?, ack.to_string()] {
        assert!(!text.contains(secret), "the Wi-Fi password leaked");
    }
    assert_eq!(calls(c, NM, NM_PATH, "ActivateConnection").await?.len(), 1);
    Ok(())
}

type Settings = HashMap<String, HashMap<String, zbus::OwnedVariant>>;

/// A profile's settings as the mock keeps them (secrets included: it is a mock).
async fn profile_settings(c: &zbus::Connection, path: &str) -> R<Settings> {
    let m = dcall(
        c,
        NM,
        path,
        "org.freedesktop.NetworkManager.Settings.Connection",
        "GetSettings",
        &(),
    )
    .await?;
    Ok(m.body().deserialize()?)
}

fn setting_str(s: &Settings, group: &str, key: &str) -> Option<String> {
    s.get(group)?.get(key).and_then(|v| String::try_from(v.clone()).ok())
}

/// `connection.autoconnect` of the `n`th profile the controller asked NetworkManager to add.
async fn added_autoconnect(c: &zbus::Connection, n: usize) -> R<bool> {
    let all = calls(c, NM, NM_PATH, "AddAndActivateConnection").await?;
    let args = all.get(n).ok_or("AddAndActivateConnection not called")?;
    let settings = Settings::try_from(args.first().ok_or("no settings")?.clone())?;
    let ac = settings
        .get("connection")
        .and_then(|g| g.get("autoconnect"))
        .ok_or("autoconnect not set")?;
    Ok(bool::try_from(ac)?)
}

/// Issue 13 §8: `network/wifi/connect` never overwrites a saved profile's PSK unless the request
/// says `replace_psk` (an admin action), and a new profile gets the request's `autoconnect`
/// (false unless asked), not NetworkManager's default of true.
#[tokio::test]
async fn wifi_connect_keeps_a_saved_psk_and_autoconnects_only_on_request() -> R {
    if let Some(why) = dbus::unavailable() {
        return skip_or_fail(&why);
    }
    let NmRig { d, c, dev, .. } = &nm_rig().await?;
    d.wait_get("/api/v1/network/wifi/state", S10, |v| v["enabled"] == true)
        .await?;
    let mut ws = connect(&d.ws_url()).await?;
    ws.frames(GREETING).await?;
    saved_kitnet(c, dev).await?;
    let profile = KITNET;
    let connect = "/api/v1/network/wifi/connect";
    let activations = || calls(c, NM, NM_PATH, "ActivateConnection");

    // A password for a saved profile, not asked to replace it: refused, profile untouched.
    let (s, _, v) = d
        .post(connect, r#"{"payload":{"ssid":"KitNet","password":"attacker-pass-1"}}"#)
        .await?;
    assert_eq!((s, v), (409, json!({"detail":"profile_exists"})));
    let ack = ws
        .wait_for(S10, |v| ack_of(v, "network/wifi/connect").is_some())
        .await?;
    assert_eq!(ack["data"]["ok"], false);
    assert_eq!(ack["data"]["reason"], "profile_exists");
    assert!(calls(c, NM, profile, "Update").await?.is_empty());
    assert_eq!(
        setting_str(&profile_settings(c, profile).await?, "802-11-wireless-security", "psk"),
        None
    );
    assert!(activations().await?.is_empty());

    // replace_psk needs a password.
    let (s, _, v) = d
        .post(connect, r#"{"payload":{"ssid":"KitNet","replace_psk":true}}"#)
        .await?;
    assert_eq!((s, v), (400, json!({"detail":"invalid_payload","field":"password"})));
    let ack = ws
        .wait_for(S10, |v| ack_of(v, "network/wifi/connect").is_some())
        .await?;
    assert_eq!(ack["data"]["reason"], "invalid_payload");

    // No password: the saved profile is activated as it is.
    let (s, _, _) = d.post(connect, r#"{"payload":{"ssid":"KitNet"}}"#).await?;
    assert_eq!(s, 200);
    let ack = ws
        .wait_for(S10, |v| ack_of(v, "network/wifi/connect").is_some())
        .await?;
    assert_eq!(ack["data"]["ok"], true, "{ack}");
    assert!(calls(c, NM, profile, "Update").await?.is_empty());
    assert_eq!(activations().await?.len(), 1);

    // Asked for explicitly: the PSK is replaced, then the profile activated.
    let (s, _, _) = d
        .post(
            connect,
            r#"{"payload":{"ssid":"KitNet","password":"operator-pass-2","replace_psk":true}}"#,
        )
        .await?;
    assert_eq!(s, 200);
    let ack = ws
        .wait_for(S10, |v| ack_of(v, "network/wifi/connect").is_some())
        .await?;
    assert_eq!(ack["data"]["ok"], true, "{ack}");
    assert_eq!(calls(c, NM, profile, "Update").await?.len(), 1);
    assert_eq!(
        setting_str(&profile_settings(c, profile).await?, "802-11-wireless-security", "psk").as_deref(),
        Some("operator-pass-2")
    );
    assert_eq!(activations().await?.len(), 2);

    // New profiles: autoconnect is false unless the request says true.
    for (i, (body, want)) in [
        (r#"{"payload":{"ssid":"SaeNet","password":"sae-pass-123"}}"#, false),
        (r#"{"payload":{"ssid":"OpenNet","autoconnect":true}}"#, true),
    ]
    .into_iter()
    .enumerate()
    {
        d.post(connect, body).await?;
        ws.wait_for(S10, |v| ack_of(v, "network/wifi/connect").is_some())
            .await?;
        assert_eq!(added_autoconnect(c, i).await?, want, "{body}");
    }
    let (s, _, v) = d
        .post(connect, r#"{"payload":{"ssid":"OpenNet","autoconnect":"yes"}}"#)
        .await?;
    assert_eq!((s, v), (400, json!({"detail":"invalid_payload","field":"autoconnect"})));
    Ok(())
}

#[tokio::test]
async fn upower_battery_and_logind_reboot() -> R {
    if let Some(why) = dbus::unavailable() {
        return skip_or_fail(&why);
    }
    let dir = tempfile::tempdir()?;
    let bus = PrivateBus::start(dir.path())?;
    let _up = Mock::start(&bus, "org.freedesktop.UPower", "upower", None).await?;
    let _lg = Mock::start(&bus, "org.freedesktop.login1", "logind", None).await?;
    let c = bus.connect().await?;
    dcall(
        &c,
        "org.freedesktop.UPower",
        "/org/freedesktop/UPower",
        MOCK,
        "SetupDisplayDevice",
        &(
            2u32, 2u32, 55.0f64, 30.0f64, 60.0f64, 10.0f64, 3600i64, 0i64, true, "battery", 1u32,
        ),
    )
    .await?;
    let d = start(
        dir.path(),
        &bus,
        "[services]\nwatch = []\n[network]\nenabled = false\n[bluetooth]\nenabled = false\n",
        &[("NDEFENDER_SAFETY__ALLOW_UNSAFE", "true")],
    )
    .await?;
    let ups = d.wait_get("/api/v1/ups", S10, |v| v["soc_percent"] == 55).await?;
    assert_eq!(ups["state"], "DISCHARGING");
    assert_eq!(ups["status"], "ok");
    assert_eq!(ups["time_to_empty_s"], 3600);
    for k in ["input_vbus_v", "input_power_w", "per_cell_v", "time_to_full_s"] {
        assert!(ups.get(k).is_none(), "{k} in {ups}");
    }

    let mut ws = connect(&d.ws_url()).await?;
    ws.frames(GREETING).await?;
    let login = "/org/freedesktop/login1";
    let (s, _, _) = d.post("/api/v1/system/reboot", "{}").await?;
    assert_eq!(s, 400);
    let t0 = Instant::now();
    let (s, _, _) = d.post("/api/v1/system/reboot", r#"{"confirm":true}"#).await?;
    assert_eq!(s, 200);
    let ack = ws
        .wait_for(S5, |v| ack_of(v, "system/reboot").is_some_and(|a| a["ok"] == true))
        .await?;
    assert_eq!(ack["data"]["reason"], Value::Null);
    ws.wait_for(S5, |v| kind(v) == "LOG_EVENT" && v["data"]["component"] == "power")
        .await?;
    assert!(
        calls(&c, "org.freedesktop.login1", login, "Reboot").await?.is_empty(),
        "rebooted before the delay"
    );
    let deadline = Instant::now() + S10;
    let args = loop {
        let v = calls(&c, "org.freedesktop.login1", login, "Reboot").await?;
        if let Some(a) = v.into_iter().next() {
            break a;
        }
        if Instant::now() > deadline {
            return Err("Reboot never called".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(t0.elapsed() >= Duration::from_millis(1500));
    assert_eq!(args.len(), 1);
    assert!(!bool::try_from(&args[0])?, "Reboot must not be interactive");
    // a second power action within the cooldown
    let (s, h, _) = d.post("/api/v1/system/shutdown", r#"{"confirm":true}"#).await?;
    assert_eq!(s, 429);
    assert!(h.get("retry-after").is_some());
    Ok(())
}

#[tokio::test]
async fn logind_challenge_is_not_permitted() -> R {
    if let Some(why) = dbus::unavailable() {
        return skip_or_fail(&why);
    }
    let dir = tempfile::tempdir()?;
    let bus = PrivateBus::start(dir.path())?;
    let _lg = Mock::start(
        &bus,
        "org.freedesktop.login1",
        "logind",
        Some(r#"{"CanReboot": "challenge"}"#),
    )
    .await?;
    let c = bus.connect().await?;
    let d = start(
        dir.path(),
        &bus,
        "[services]\nwatch = []\n[power]\nbackend = \"none\"\n[network]\nenabled = false\n[bluetooth]\nenabled = false\n",
        &[("NDEFENDER_SAFETY__ALLOW_UNSAFE", "true")],
    )
    .await?;
    let (s, _, v) = d.post("/api/v1/system/reboot", r#"{"confirm":true}"#).await?;
    assert_eq!((s, v), (409, json!({"detail":"power_not_permitted"})));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(calls(&c, "org.freedesktop.login1", "/org/freedesktop/login1", "Reboot")
        .await?
        .is_empty());
    Ok(())
}

#[tokio::test]
async fn bluez_pair_unknown_and_discovery() -> R {
    if let Some(why) = dbus::unavailable() {
        return skip_or_fail(&why);
    }
    let dir = tempfile::tempdir()?;
    let bus = PrivateBus::start(dir.path())?;
    let (_bz, c) = bluez(&bus, &[("00:11:22:33:44:55", "Headset")]).await?;
    let d = start(
        dir.path(),
        &bus,
        "[services]\nwatch = []\n[power]\nbackend = \"none\"\n[network]\nenabled = false\n[bluetooth]\nscan_duration_s = 1\n",
        &[],
    )
    .await?;
    let bt = d
        .wait_get("/api/v1/network/bluetooth/state", S10, |v| v["enabled"] == true)
        .await?;
    assert_eq!(bt["paired_count"], 0);
    let (s, list) = d.get("/api/v1/network/bluetooth/devices").await?;
    assert_eq!(s, 200);
    assert_eq!(list["devices"][0]["addr"], "00:11:22:33:44:55");
    assert_eq!(list["devices"][0]["name"], "Headset");

    let mut ws = connect(&d.ws_url()).await?;
    ws.frames(GREETING).await?;
    let (s, _, res) = d
        .post(
            "/api/v1/network/bluetooth/pair",
            r#"{"payload":{"addr":"00:11:22:33:44:55"}}"#,
        )
        .await?;
    assert_eq!(s, 200);
    let ack = ws
        .wait_for(S10, |v| ack_of(v, "network/bluetooth/pair").is_some())
        .await?;
    assert_eq!(
        ack["data"],
        json!({"command":"network/bluetooth/pair","ok":true,"reason":null,"command_id":res["command_id"]})
    );
    let dev = "/org/bluez/hci0/dev_00_11_22_33_44_55";
    let m = dcall(
        &c,
        "org.bluez",
        dev,
        "org.freedesktop.DBus.Properties",
        "Get",
        &("org.bluez.Device1", "Trusted"),
    )
    .await?;
    let trusted: zbus::OwnedVariant = m.body().deserialize()?;
    assert!(bool::try_from(trusted)?, "Trusted not set after pairing");
    d.wait_get("/api/v1/network/bluetooth/state", S10, |v| v["paired_count"] == 1)
        .await?;

    let (s, _, v) = d
        .post(
            "/api/v1/network/bluetooth/pair",
            r#"{"payload":{"addr":"AA:BB:CC:DD:EE:FF"}}"#,
        )
        .await?;
    assert_eq!((s, v), (404, json!({"detail":"device_not_found"})));
    let ack = ws
        .wait_for(S5, |v| ack_of(v, "network/bluetooth/pair").is_some())
        .await?;
    assert_eq!(ack["data"]["reason"], "device_not_found");

    for _ in 0..2 {
        let (s, _, _) = d.post("/api/v1/network/bluetooth/scan/start", "").await?;
        assert_eq!(s, 200);
    }
    d.wait_get("/api/v1/network/bluetooth/state", S5, |v| v["scanning"] == true)
        .await?;
    // stopped by the controller itself after scan_duration_s
    d.wait_get("/api/v1/network/bluetooth/state", S10, |v| v["scanning"] == false)
        .await?;
    assert!(!calls(&c, "org.bluez", "/org/bluez/hci0", "StopDiscovery")
        .await?
        .is_empty());
    Ok(())
}

#[tokio::test]
async fn sections_degrade_without_the_bus_and_recover_when_it_returns() -> R {
    if let Some(why) = dbus::unavailable() {
        return skip_or_fail(&why);
    }
    let dir = tempfile::tempdir()?;
    let mut bus = PrivateBus::start(dir.path())?;
    let mut sd = Mock::start(&bus, SD, &systemd_template(), None).await?;
    let c = bus.connect().await?;
    add_unit(&c, "gpsd.service", "active", "running").await?;
    drop(c);
    let d = start(
        dir.path(),
        &bus,
        "[services]\nwatch = [\"gpsd\"]\n[power]\nbackend = \"none\"\n[network]\nenabled = false\n[bluetooth]\nenabled = false\n[events]\nlog_event_min_interval_s = 0\n",
        &[],
    )
    .await?;
    d.wait_get("/api/v1/services", S10, |v| v[0]["active_state"] == "active")
        .await?;
    let mut ws = connect(&d.ws_url()).await?;
    ws.frames(GREETING).await?;

    sd.stop();
    bus.stop();
    let mut seen = Vec::new();
    let deadline = Instant::now() + S10;
    let upd = loop {
        let v = ws.next(S10).await?.ok_or("stream ended")?;
        seen.push(v.clone());
        if kind(&v) == "SERVICE_UPDATE" && v["data"]["services"][0]["last_error"] == "dbus_unavailable" {
            break v;
        }
        if Instant::now() > deadline {
            return Err("no dbus_unavailable SERVICE_UPDATE".into());
        }
    };
    // the last known values are kept while degraded
    assert_eq!(upd["data"]["services"][0]["active_state"], "active");
    let is_log = |v: &Value, level: &str| {
        kind(v) == "LOG_EVENT" && v["data"]["component"] == "services" && v["data"]["level"] == level
    };
    assert!(
        seen.iter().any(|v| is_log(v, "warn")),
        "no degraded LOG_EVENT in {seen:?}"
    );
    let h = d
        .wait_get("/api/v1/health", Duration::from_secs(20), |v| {
            v["probes"]["services"] == "offline"
        })
        .await?;
    let mut more = ws.collect(Duration::from_millis(300)).await?;
    seen.append(&mut more);
    assert_eq!(h["probes"]["system"], "ok");
    let (s, _) = d.get("/api/v1/status").await?;
    assert_eq!(s, 200);

    bus.restart()?;
    let _sd2 = Mock::start(&bus, SD, &systemd_template(), None).await?;
    let c = bus.connect().await?;
    add_unit(&c, "gpsd.service", "active", "running").await?;
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let (_, v) = d.get("/api/v1/services").await?;
        if v[0]["active_state"] == "active" && v[0].get("last_error").is_none() {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("services did not recover: {v}").into());
        }
        let mut more = ws.collect(Duration::from_millis(200)).await?;
        seen.append(&mut more);
    }
    let mut rest = ws.collect(Duration::from_millis(500)).await?;
    seen.append(&mut rest);
    assert!(
        seen.iter().any(|v| is_log(v, "error")),
        "no offline LOG_EVENT in {seen:?}"
    );
    assert!(
        seen.iter().any(|v| is_log(v, "info")),
        "no recovery LOG_EVENT in {seen:?}"
    );
    assert_eq!(d.get("/api/v1/health").await?.1["probes"]["services"], "ok");
    Ok(())
}
