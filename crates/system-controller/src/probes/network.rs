//! Wi-Fi and the network summary over org.freedesktop.NetworkManager
//! (system-controller §3.3). Object paths are always taken from properties.
//! A missing property is unknown (the field is omitted), never a failure.

use crate::dbus::{call, proxy, Bus, DbusFail, NM};
use crate::health::Probe;
use crate::probes::{
    end, next_trigger, opt_prop, properties_changed, record_failure, resync_interval, run_dbus_probe, SessionEnd,
    Streams,
};
use crate::state::Controller;
use futures_util::StreamExt;
use ndefender_contract::system::{WifiNetwork, WifiState};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;
use zbus::{Connection, OwnedObjectPath, OwnedVariant};

const MANAGER: &str = "/org/freedesktop/NetworkManager";
const SETTINGS: &str = "/org/freedesktop/NetworkManager/Settings";
const IF_MANAGER: &str = "org.freedesktop.NetworkManager";
const IF_DEVICE: &str = "org.freedesktop.NetworkManager.Device";
const IF_WIRELESS: &str = "org.freedesktop.NetworkManager.Device.Wireless";
const IF_AP: &str = "org.freedesktop.NetworkManager.AccessPoint";
const IF_IP4: &str = "org.freedesktop.NetworkManager.IP4Config";
const IF_IP6: &str = "org.freedesktop.NetworkManager.IP6Config";
const IF_ACTIVE: &str = "org.freedesktop.NetworkManager.Connection.Active";
const IF_SETTINGS: &str = "org.freedesktop.NetworkManager.Settings";
const IF_CONNECTION: &str = "org.freedesktop.NetworkManager.Settings.Connection";

/// The Wi-Fi summary one refresh produces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetRead {
    pub wifi: WifiState,
    pub connected: bool,
    pub ssid: Option<String>,
    pub ip_v4: Option<String>,
    pub ip_v6: Option<String>,
}

pub fn spawn(ctl: Controller, bus: Bus) {
    if !ctl.cfg().network.enabled {
        return;
    }
    let resync = Duration::from_secs(ctl.cfg().network.resync_s);
    let c2 = ctl.clone();
    let b2 = bus.clone();
    tokio::spawn(run_dbus_probe(
        bus,
        NM,
        resync,
        |conn| async move {
            let s = properties_changed(&conn, MANAGER).await?;
            Ok(vec![s])
        },
        move |conn, streams| session(c2.clone(), b2.clone(), conn, streams),
        record_failure(ctl, Probe::Network, "networkmanager"),
    ));
}

async fn session(ctl: Controller, bus: Bus, conn: Connection, mut streams: Streams) -> (SessionEnd, Streams) {
    let r = watch(&ctl, &bus, &conn, &mut streams).await;
    end(r, streams)
}

async fn watch(ctl: &Controller, bus: &Bus, conn: &Connection, streams: &mut Streams) -> Result<(), SessionEnd> {
    let kick = bus.kick(NM);
    let mut resync = resync_interval(Duration::from_secs(ctl.cfg().network.resync_s));
    loop {
        let r = ctl.timed(Probe::Network, read(ctl, conn)).await?;
        ctl.mutate(|st| {
            st.network.connected = r.connected;
            st.network.ssid = r.ssid;
            st.network.ip_v4 = r.ip_v4;
            st.network.ip_v6 = r.ip_v6;
            st.network.wifi = Some(r.wifi);
            st.probe_ok(Probe::Network);
        });
        next_trigger(streams, &mut resync, &kick).await?;
    }
}

fn t(ctl: &Controller) -> Duration {
    Duration::from_millis(ctl.cfg().probes.dbus_timeout_ms)
}

fn is_root(p: &OwnedObjectPath) -> bool {
    p.as_str() == "/"
}

/// The Wi-Fi device: `network.wifi_interface`, else the first DeviceType 2.
pub async fn wifi_device(ctl: &Controller, conn: &Connection) -> Result<Option<OwnedObjectPath>, DbusFail> {
    let d = t(ctl);
    let mgr = proxy(conn, NM, MANAGER, IF_MANAGER).await?;
    let devices: Vec<OwnedObjectPath> = call(d, mgr.call("GetDevices", &())).await?;
    let wanted = &ctl.cfg().network.wifi_interface;
    for path in devices {
        let dev = proxy(conn, NM, path.as_str(), IF_DEVICE).await?;
        if opt_prop::<u32>(&dev, "DeviceType", d).await? != Some(2) {
            continue;
        }
        if wanted.is_empty() || opt_prop::<String>(&dev, "Interface", d).await?.as_deref() == Some(wanted.as_str()) {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// NetworkManager's dBm→% mapping inverted (an estimate).
pub fn rssi_from_strength(s: u8) -> i64 {
    (0.6 * s as f64 - 100.0).round() as i64
}

fn ssid_text(b: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(b).into_owned();
    (!s.is_empty()).then_some(s)
}

async fn first_address(
    conn: &Connection,
    path: Option<OwnedObjectPath>,
    iface: &'static str,
    d: Duration,
    v6: bool,
) -> Result<Option<String>, DbusFail> {
    let Some(path) = path.filter(|p| !is_root(p)) else {
        return Ok(None);
    };
    let p = proxy(conn, NM, path.as_str(), iface).await?;
    let data: Option<Vec<HashMap<String, OwnedVariant>>> = opt_prop(&p, "AddressData", d).await?;
    let addrs: Vec<String> = data
        .unwrap_or_default()
        .into_iter()
        .filter_map(|mut m| m.remove("address").and_then(|v| String::try_from(v).ok()))
        .collect();
    if v6 {
        Ok(addrs.iter().find(|a| !is_link_local_v6(a)).or(addrs.first()).cloned())
    } else {
        Ok(addrs.into_iter().next())
    }
}

fn is_link_local_v6(a: &str) -> bool {
    match a.parse::<std::net::Ipv6Addr>() {
        Ok(ip) => (ip.segments()[0] & 0xffc0) == 0xfe80,
        Err(_) => false,
    }
}

/// One full read of Wi-Fi and the summary.
pub async fn read(ctl: &Controller, conn: &Connection) -> Result<NetRead, DbusFail> {
    let d = t(ctl);
    let now = ctl.clock().now_ms();
    let mgr = proxy(conn, NM, MANAGER, IF_MANAGER).await?;
    let nm_state: Option<u32> = opt_prop(&mgr, "State", d).await?;
    let enabled: Option<bool> = opt_prop(&mgr, "WirelessEnabled", d).await?;
    let hw: Option<bool> = opt_prop(&mgr, "WirelessHardwareEnabled", d).await?;
    let mut wifi = WifiState {
        timestamp_ms: Some(now),
        enabled,
        last_update_ms: Some(now),
        ..Default::default()
    };
    match wifi_device(ctl, conn).await? {
        None => wifi.last_error = Some("no_wifi_device".into()),
        Some(dev_path) => {
            let dev = proxy(conn, NM, dev_path.as_str(), IF_DEVICE).await?;
            let wl = proxy(conn, NM, dev_path.as_str(), IF_WIRELESS).await?;
            wifi.connected = opt_prop::<u32>(&dev, "State", d).await?.map(|s| s == 100);
            wifi.ip = first_address(conn, opt_prop(&dev, "Ip4Config", d).await?, IF_IP4, d, false).await?;
            if let Some(ap_path) = opt_prop::<OwnedObjectPath>(&wl, "ActiveAccessPoint", d)
                .await?
                .filter(|p| !is_root(p))
            {
                let ap = proxy(conn, NM, ap_path.as_str(), IF_AP).await?;
                wifi.ssid = opt_prop::<Vec<u8>>(&ap, "Ssid", d)
                    .await?
                    .as_deref()
                    .and_then(ssid_text);
                wifi.bssid = opt_prop::<String>(&ap, "HwAddress", d)
                    .await?
                    .map(|s| s.to_ascii_lowercase());
                if let Some(s) = opt_prop::<u8>(&ap, "Strength", d).await? {
                    wifi.link_quality = Some(s as i64);
                    wifi.rssi_dbm = Some(rssi_from_strength(s));
                }
            }
            if hw == Some(false) {
                wifi.last_error = Some("wifi_hw_blocked".into());
            }
        }
    }
    let connected = nm_state.is_some_and(|s| s >= 50);
    // Primary connection, else the first activated one.
    let mut active: Option<OwnedObjectPath> = opt_prop::<OwnedObjectPath>(&mgr, "PrimaryConnection", d)
        .await?
        .filter(|p| !is_root(p));
    if active.is_none() {
        let all: Vec<OwnedObjectPath> = opt_prop(&mgr, "ActiveConnections", d).await?.unwrap_or_default();
        for p in all {
            let ac = proxy(conn, NM, p.as_str(), IF_ACTIVE).await?;
            if opt_prop::<u32>(&ac, "State", d).await? == Some(2) {
                active = Some(p);
                break;
            }
        }
    }
    let (mut ip_v4, mut ip_v6) = (None, None);
    if let Some(p) = active {
        let ac = proxy(conn, NM, p.as_str(), IF_ACTIVE).await?;
        ip_v4 = first_address(conn, opt_prop(&ac, "Ip4Config", d).await?, IF_IP4, d, false).await?;
        ip_v6 = first_address(conn, opt_prop(&ac, "Ip6Config", d).await?, IF_IP6, d, true).await?;
    }
    let ssid = if wifi.connected == Some(true) {
        wifi.ssid.clone()
    } else {
        None
    };
    Ok(NetRead {
        wifi,
        connected,
        ssid,
        ip_v4,
        ip_v6,
    })
}

/// Addresses of the first up, non-loopback interface (the summary without NetworkManager).
pub fn ifaddrs_summary() -> (bool, Option<String>, Option<String>) {
    use nix::net::if_::InterfaceFlags;
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return (false, None, None);
    };
    let mut chosen: Option<String> = None;
    let (mut v4, mut v6) = (None, None);
    for a in addrs {
        if !a.flags.contains(InterfaceFlags::IFF_UP) || a.flags.contains(InterfaceFlags::IFF_LOOPBACK) {
            continue;
        }
        let ip: Option<IpAddr> = a.address.as_ref().and_then(|s| {
            s.as_sockaddr_in()
                .map(|x| IpAddr::V4(x.ip()))
                .or_else(|| s.as_sockaddr_in6().map(|x| IpAddr::V6(x.ip())))
        });
        let Some(ip) = ip else { continue };
        if chosen.as_ref().is_some_and(|c| *c != a.interface_name) {
            continue;
        }
        chosen = Some(a.interface_name.clone());
        match ip {
            IpAddr::V4(x) if v4.is_none() => v4 = Some(x.to_string()),
            IpAddr::V6(x) if v6.is_none() || v6.as_deref().is_some_and(is_link_local_v6) => v6 = Some(x.to_string()),
            _ => {}
        }
    }
    (v4.is_some() || v6.is_some(), v4, v6)
}

// ---- scan ------------------------------------------------------------------

/// The channel for a frequency (§3.3), None outside the known bands.
pub fn channel(f: i64) -> Option<i64> {
    match f {
        2412..=2472 => Some((f - 2407) / 5),
        2484 => Some(14),
        5160..=5885 => Some((f - 5000) / 5),
        5955..=7115 => Some((f - 5950) / 5),
        _ => None,
    }
}

/// First match of §3.3.
pub fn security(flags: u32, wpa: u32, rsn: u32) -> &'static str {
    if rsn & 0x400 != 0 {
        "wpa3"
    } else if (rsn | wpa) & 0x200 != 0 {
        "enterprise"
    } else if rsn & 0x100 != 0 {
        "wpa2"
    } else if wpa & 0x100 != 0 {
        "wpa"
    } else if flags & 0x1 != 0 {
        "wep"
    } else {
        "open"
    }
}

/// CLOCK_BOOTTIME in ms, the clock of `LastScan`.
fn boottime_ms() -> Option<i64> {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok()?;
    Some(ts.tv_sec() * 1000 + ts.tv_nsec() / 1_000_000)
}

/// Saved SSIDs, cached 30 s.
#[derive(Default)]
pub struct KnownCache {
    at: Option<std::time::Instant>,
    ssids: Vec<Vec<u8>>,
}

pub type SharedKnown = std::sync::Arc<tokio::sync::Mutex<KnownCache>>;

type Settings = HashMap<String, HashMap<String, OwnedVariant>>;

async fn saved_connections(conn: &Connection, d: Duration) -> Result<Vec<(OwnedObjectPath, Vec<u8>)>, DbusFail> {
    let s = proxy(conn, NM, SETTINGS, IF_SETTINGS).await?;
    let list: Vec<OwnedObjectPath> = call(d, s.call("ListConnections", &())).await?;
    let mut out = Vec::new();
    for p in list {
        let c = proxy(conn, NM, p.as_str(), IF_CONNECTION).await?;
        let Ok(mut settings) = call(d, c.call::<_, _, Settings>("GetSettings", &())).await else {
            continue;
        };
        let ssid = settings
            .get_mut("802-11-wireless")
            .and_then(|w| w.remove("ssid"))
            .and_then(|v| Vec::<u8>::try_from(v).ok());
        if let Some(ssid) = ssid {
            out.push((p, ssid));
        }
    }
    Ok(out)
}

async fn known_ssids(conn: &Connection, cache: &SharedKnown, d: Duration) -> Vec<Vec<u8>> {
    let mut c = cache.lock().await;
    if c.at.is_some_and(|t| t.elapsed() < Duration::from_secs(30)) {
        return c.ssids.clone();
    }
    if let Ok(list) = saved_connections(conn, d).await {
        c.ssids = list.into_iter().map(|(_, s)| s).collect();
        c.at = Some(std::time::Instant::now());
    }
    c.ssids.clone()
}

/// Live scan (§3.3): ask for a fresh scan when the last one is stale, wait at
/// most `scan_wait_ms` for it, and answer with what NetworkManager has.
pub async fn scan(ctl: &Controller, conn: &Connection, known: &SharedKnown) -> Result<Vec<WifiNetwork>, DbusFail> {
    let d = t(ctl);
    let cfg = &ctl.cfg().network;
    // The whole answer fits in `scan_wait_ms` (the aggregator's proxy timeout is
    // 2 s); the tail is kept for listing the access points.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(cfg.scan_wait_ms.saturating_sub(300));
    let Some(dev) = wifi_device(ctl, conn).await? else {
        return Err(DbusFail::Failed("no_wifi_device".into()));
    };
    let wl = proxy(conn, NM, dev.as_str(), IF_WIRELESS).await?;
    let last: Option<i64> = opt_prop(&wl, "LastScan", d).await?;
    let stale = match (last, boottime_ms()) {
        (Some(l), Some(now)) if l >= 0 => now - l > (cfg.scan_max_age_s as i64) * 1000,
        _ => true,
    };
    if stale {
        let opts: HashMap<String, OwnedVariant> = HashMap::new();
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let req = call(
            left.min(Duration::from_secs(5)),
            wl.call::<_, _, ()>("RequestScan", &(opts,)),
        )
        .await;
        if req.is_ok() {
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let now: Option<i64> = call(left.min(d), wl.get_property::<i64>("LastScan")).await.ok();
                if now.is_some() && now != last {
                    break;
                }
            }
        }
    }
    let aps: Vec<OwnedObjectPath> = call(d, wl.call("GetAllAccessPoints", &())).await?;
    let known = known_ssids(conn, known, d).await;
    let mut by_bssid: HashMap<String, (u8, WifiNetwork)> = HashMap::new();
    let mut anon = Vec::new();
    for p in aps {
        let ap = proxy(conn, NM, p.as_str(), IF_AP).await?;
        let ssid_raw: Vec<u8> = opt_prop(&ap, "Ssid", d).await?.unwrap_or_default();
        let strength: u8 = opt_prop(&ap, "Strength", d).await?.unwrap_or(0);
        let freq: Option<u32> = opt_prop(&ap, "Frequency", d).await?;
        let flags: u32 = opt_prop(&ap, "Flags", d).await?.unwrap_or(0);
        let wpa: u32 = opt_prop(&ap, "WpaFlags", d).await?.unwrap_or(0);
        let rsn: u32 = opt_prop(&ap, "RsnFlags", d).await?.unwrap_or(0);
        let bssid = opt_prop::<String>(&ap, "HwAddress", d)
            .await?
            .map(|b| b.to_ascii_lowercase());
        let n = WifiNetwork {
            ssid: ssid_text(&ssid_raw),
            bssid: bssid.clone(),
            security: Some(security(flags, wpa, rsn).into()),
            signal_dbm: Some(rssi_from_strength(strength)),
            channel: freq.and_then(|f| channel(f as i64)),
            frequency_mhz: freq.map(i64::from),
            known: Some(!ssid_raw.is_empty() && known.contains(&ssid_raw)),
        };
        match bssid {
            Some(b) => {
                if by_bssid.get(&b).is_none_or(|(s, _)| *s < strength) {
                    by_bssid.insert(b, (strength, n));
                }
            }
            None => anon.push((strength, n)),
        }
    }
    let mut all: Vec<(u8, WifiNetwork)> = by_bssid.into_values().chain(anon).collect();
    all.sort_by_key(|n| std::cmp::Reverse(n.0));
    Ok(all.into_iter().take(100).map(|(_, n)| n).collect())
}

// ---- commands ----------------------------------------------------------------

pub async fn set_wireless(ctl: &Controller, conn: &Connection, on: bool) -> Result<(), DbusFail> {
    let mgr = proxy(conn, NM, MANAGER, IF_MANAGER).await?;
    call(t(ctl), mgr.set_property("WirelessEnabled", on)).await
}

pub async fn disconnect(ctl: &Controller, conn: &Connection) -> Result<(), DbusFail> {
    let Some(dev) = wifi_device(ctl, conn).await? else {
        return Err(DbusFail::Failed("no_wifi_device".into()));
    };
    let p = proxy(conn, NM, dev.as_str(), IF_DEVICE).await?;
    match call(t(ctl), p.call::<_, _, ()>("Disconnect", &())).await {
        // Already disconnected is success: the command is idempotent.
        Err(DbusFail::Failed(n)) if n.ends_with("NotActive") => Ok(()),
        r => r,
    }
}

/// What a connect needs; the password lives only here and in the D-Bus message.
pub struct ConnectRequest {
    pub ssid: String,
    pub password: Option<String>,
    pub hidden: bool,
    /// `connection.autoconnect` of a profile this request creates (never changes a saved one).
    pub autoconnect: bool,
    /// Whether `password` may overwrite a saved profile's PSK (the caller has checked it is allowed).
    pub replace_psk: bool,
}

/// The saved NetworkManager profile for `ssid`, if any.
pub async fn saved_profile(
    ctl: &Controller,
    conn: &Connection,
    ssid: &str,
) -> Result<Option<OwnedObjectPath>, DbusFail> {
    Ok(saved_connections(conn, t(ctl))
        .await?
        .into_iter()
        .find(|(_, s)| s == ssid.as_bytes())
        .map(|(p, _)| p))
}

/// Starts an activation; returns the active-connection path to follow. `saved` is the profile
/// from [`saved_profile`]: it is activated as it is, and its PSK is rewritten only when
/// `req.replace_psk` is set; without one a new profile is added with `req.autoconnect`.
pub async fn connect(
    ctl: &Controller,
    conn: &Connection,
    req: ConnectRequest,
    saved: Option<OwnedObjectPath>,
) -> Result<OwnedObjectPath, DbusFail> {
    use zbus::Variant;
    let d = t(ctl);
    let Some(dev) = wifi_device(ctl, conn).await? else {
        return Err(DbusFail::Failed("no_wifi_device".into()));
    };
    let mgr = proxy(conn, NM, MANAGER, IF_MANAGER).await?;
    let root = OwnedObjectPath::try_from("/").map_err(|e| DbusFail::Failed(e.to_string()))?;
    if let Some(profile) = saved {
        if let Some(pw) = req.password.as_ref().filter(|_| req.replace_psk) {
            let c = proxy(conn, NM, profile.as_str(), IF_CONNECTION).await?;
            let mut settings: HashMap<String, HashMap<String, OwnedVariant>> =
                call(d, c.call("GetSettings", &())).await?;
            let sec = settings.entry("802-11-wireless-security".into()).or_default();
            sec.insert("psk".into(), owned(Variant::from(pw.as_str()))?);
            if !sec.contains_key("key-mgmt") {
                sec.insert("key-mgmt".into(), owned(Variant::from("wpa-psk"))?);
            }
            call(d, c.call::<_, _, ()>("Update", &(settings,))).await?;
        }
        return call(
            Duration::from_secs(5),
            mgr.call("ActivateConnection", &(profile, dev, root)),
        )
        .await;
    }
    let sae = ap_advertises_sae(ctl, conn, &dev, req.ssid.as_bytes()).await;
    let mut settings: HashMap<&str, HashMap<&str, OwnedVariant>> = HashMap::new();
    settings.insert(
        "connection",
        HashMap::from([
            ("type", owned(Variant::from("802-11-wireless"))?),
            ("id", owned(Variant::from(req.ssid.as_str()))?),
            // NetworkManager's own default is true: a profile made from a field request would
            // then rejoin that network at every boot; only the operator's explicit choice does.
            ("autoconnect", owned(Variant::from(req.autoconnect))?),
        ]),
    );
    settings.insert(
        "802-11-wireless",
        HashMap::from([
            ("ssid", owned(Variant::from(req.ssid.as_bytes().to_vec()))?),
            ("hidden", owned(Variant::from(req.hidden))?),
        ]),
    );
    if let Some(pw) = &req.password {
        settings.insert(
            "802-11-wireless-security",
            HashMap::from([
                ("key-mgmt", owned(Variant::from(if sae { "sae" } else { "wpa-psk" }))?),
                ("psk", owned(Variant::from(pw.as_str()))?),
            ]),
        );
    }
    let (_, active): (OwnedObjectPath, OwnedObjectPath) = call(
        Duration::from_secs(5),
        mgr.call("AddAndActivateConnection", &(settings, dev, root)),
    )
    .await?;
    Ok(active)
}

fn owned(v: zbus::Variant<'_>) -> Result<OwnedVariant, DbusFail> {
    OwnedVariant::try_from(v).map_err(|e| DbusFail::Failed(e.to_string()))
}

async fn ap_advertises_sae(ctl: &Controller, conn: &Connection, dev: &OwnedObjectPath, ssid: &[u8]) -> bool {
    let d = t(ctl);
    let Ok(wl) = proxy(conn, NM, dev.as_str(), IF_WIRELESS).await else {
        return false;
    };
    let Ok(aps) = call::<Vec<OwnedObjectPath>, _>(d, wl.call("GetAllAccessPoints", &())).await else {
        return false;
    };
    for p in aps {
        let Ok(ap) = proxy(conn, NM, p.as_str(), IF_AP).await else {
            continue;
        };
        if call(d, ap.get_property::<Vec<u8>>("Ssid")).await.ok().as_deref() == Some(ssid) {
            let rsn = call(d, ap.get_property::<u32>("RsnFlags")).await.unwrap_or(0);
            return rsn & 0x400 != 0;
        }
    }
    false
}

/// Follows an activation to its end (§3.3): ok, or the ack reason.
pub async fn follow_activation(conn: &Connection, active: &OwnedObjectPath, limit: Duration) -> Result<(), String> {
    let fut = async {
        let Ok(p) = proxy(conn, NM, active.as_str(), IF_ACTIVE).await else {
            return Err("activation_failed".to_owned());
        };
        let Ok(mut changes) = p.receive_signal("StateChanged").await else {
            return Err("activation_failed".to_owned());
        };
        // The state may already be final before the first signal.
        if let Ok(s) = p.get_property::<u32>("State").await {
            if s == 2 {
                return Ok(());
            }
        }
        while let Some(m) = changes.next().await {
            if let Ok((state, reason)) = m.body().deserialize::<(u32, u32)>() {
                match state {
                    2 => return Ok(()),
                    4 => {
                        // NO_SECRETS (9) and LOGIN_FAILED (10): wrong or missing password.
                        return Err(if matches!(reason, 9 | 10) {
                            "auth_failed"
                        } else {
                            "activation_failed"
                        }
                        .into());
                    }
                    _ => {}
                }
            }
        }
        Err("activation_failed".into())
    };
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err("activation_timeout".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_security_and_rssi() {
        assert_eq!(channel(2437), Some(6));
        assert_eq!(channel(2484), Some(14));
        assert_eq!(channel(5180), Some(36));
        assert_eq!(channel(5955), Some(1));
        assert_eq!(channel(900), None);
        assert_eq!(security(1, 0, 0x100), "wpa2");
        assert_eq!(security(1, 0, 0x400), "wpa3");
        assert_eq!(security(0, 0, 0), "open");
        assert_eq!(security(1, 0, 0), "wep");
        assert_eq!(security(1, 0x200, 0), "enterprise");
        assert_eq!(security(1, 0x100, 0), "wpa");
        assert_eq!(rssi_from_strength(80), -52);
        assert_eq!(rssi_from_strength(0), -100);
        assert!(is_link_local_v6("fe80::1"));
        assert!(!is_link_local_v6("2001:db8::1"));
    }
}
