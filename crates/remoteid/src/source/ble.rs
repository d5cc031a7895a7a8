//! Bluetooth LE scan through BlueZ on the D-Bus system bus (`DBUS_SYSTEM_BUS_ADDRESS` when set).
//!
//! The adapter is put into LE discovery with duplicates reported (`SetDiscoveryFilter
//! {Transport: le, DuplicateData: true}` + `StartDiscovery`), because every Open Drone ID
//! advertisement carries a new message and must not be folded away. BlueZ publishes what it
//! hears as `org.bluez.Device1` properties: `ServiceData` for UUID 0xFFFA (application code 0x0D,
//! counter, message or pack), `RSSI` and `Address`, on `InterfacesAdded` (new device) and
//! `PropertiesChanged` (every later advertisement). Each such service data becomes one
//! `LINKTYPE_BLUEZ_SERVICE_DATA` record for the ordinary decoder; legacy vs extended advertising
//! is decided by size (see `link::parse_bluez`), since BlueZ does not report it.
//!
//! The D-Bus side is async (zbus): it runs on its own thread with a current-thread runtime and
//! hands records over a bounded channel; `next_frame` waits at most `POLL` for one.

use super::{FrameSource, RawFrame};
use crate::link::{bluez_record, LINKTYPE_BLUEZ_SERVICE_DATA};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zbus::{MatchRule, MessageStream, OwnedObjectPath, OwnedVariant, Variant};

/// The 128-bit form of the ASTM service UUID 0xFFFA, as BlueZ names it.
pub const ODID_SERVICE_UUID: &str = "0000fffa-0000-1000-8000-00805f9b34fb";
const DEVICE1: &str = "org.bluez.Device1";
const ADAPTER1: &str = "org.bluez.Adapter1";
const POLL: Duration = Duration::from_millis(200);
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
const QUEUE: usize = 1024;

type Props = HashMap<String, OwnedVariant>;

pub struct BleScan {
    rx: Receiver<Result<RawFrame, String>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BleScan {
    /// Connects, starts discovery on `adapter` (e.g. `hci0`) and waits until it is running, so a
    /// missing bus or adapter is reported by `monitor/start` rather than later.
    pub fn open(adapter: &str) -> Result<Self, String> {
        let adapter_path = format!("/org/bluez/{adapter}");
        let (tx, rx) = sync_channel(QUEUE);
        let (ready_tx, ready_rx) = sync_channel::<Result<(), String>>(1);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("rid-ble".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("ble: runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(run(adapter_path, tx, ready_tx, stop_rx));
            })
            .map_err(|e| e.to_string())?;
        let s = Self {
            rx,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(CALL_TIMEOUT * 3) {
            Ok(Ok(())) => Ok(s),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("ble: BlueZ did not answer in time".into()),
        }
    }
}

impl FrameSource for BleScan {
    fn next_frame(&mut self) -> Result<Option<RawFrame>, String> {
        match self.rx.recv_timeout(POLL) {
            Ok(r) => r.map(Some),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err("ble: D-Bus task ended".into()),
        }
    }
}

impl Drop for BleScan {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn timed<T>(f: impl std::future::Future<Output = zbus::Result<T>>, what: &str) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("ble: {what}: {e}")),
        Err(_) => Err(format!("ble: {what}: timed out")),
    }
}

fn signal_rule(iface: &str, member: &str, adapter_path: &str) -> Result<MatchRule<'static>, String> {
    MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender("org.bluez")
        .interface(iface.to_owned())
        .member(member.to_owned())
        .path_namespace(adapter_path.to_owned())
        .build()
        .map(|r| r.to_owned())
        .map_err(|e| format!("ble: match rule: {e}"))
}

/// Discovery setup, then the signal loop until stopped or the bus goes away.
async fn run(
    adapter_path: String,
    tx: SyncSender<Result<RawFrame, String>>,
    ready: SyncSender<Result<(), String>>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let setup = async {
        let conn = timed(
            async { zbus::connection::Builder::system().build().await },
            "system bus",
        )
        .await?;
        // InterfacesAdded comes from the object manager at /, so it cannot be narrowed by path
        // namespace; filter by the device's path below.
        let added_rule = MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender("org.bluez")
            .interface("org.freedesktop.DBus.ObjectManager")
            .member("InterfacesAdded")
            .build()
            .map(|r| r.to_owned())
            .map_err(|e| format!("ble: match rule: {e}"))?;
        let added = timed(MessageStream::for_match_rule(added_rule, &conn, None), "subscribe").await?;
        let changed = timed(
            MessageStream::for_match_rule(
                signal_rule("org.freedesktop.DBus.Properties", "PropertiesChanged", &adapter_path)?,
                &conn,
                None,
            ),
            "subscribe",
        )
        .await?;
        let mut filter: HashMap<&str, Variant<'_>> = HashMap::new();
        filter.insert("Transport", Variant::from("le"));
        filter.insert("DuplicateData", Variant::from(true));
        let ap = adapter_path.as_str();
        timed(
            conn.call_method(Some("org.bluez"), ap, Some(ADAPTER1), "SetDiscoveryFilter", &(filter,)),
            "SetDiscoveryFilter",
        )
        .await?;
        timed(
            conn.call_method(Some("org.bluez"), ap, Some(ADAPTER1), "StartDiscovery", &()),
            "StartDiscovery",
        )
        .await?;
        Ok::<_, String>((conn, added, changed))
    };
    let (conn, mut added, mut changed) = match setup.await {
        Ok(v) => {
            let _ = ready.send(Ok(()));
            v
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let prefix = format!("{adapter_path}/");
    let mut devices: HashMap<String, Device> = HashMap::new();
    let end = loop {
        tokio::select! {
            _ = &mut stop => break None,
            m = added.next() => {
                let Some(Ok(m)) = m else { break Some("ble: D-Bus connection closed".to_owned()) };
                let Ok((path, ifaces)) = m.body().deserialize::<(OwnedObjectPath, HashMap<String, Props>)>() else { continue };
                if !path.as_str().starts_with(&prefix) {
                    continue;
                }
                if let Some(props) = ifaces.get(DEVICE1) {
                    let d = devices.entry(path.as_str().to_owned()).or_insert_with(|| Device::from_path(path.as_str()));
                    if let Some(f) = d.update(props) {
                        if tx.try_send(Ok(f)).is_err() { /* queue full: the frame is dropped */ }
                    }
                }
            }
            m = changed.next() => {
                let Some(Ok(m)) = m else { break Some("ble: D-Bus connection closed".to_owned()) };
                let Ok((iface, props, _)) = m.body().deserialize::<(String, Props, Vec<String>)>() else { continue };
                let path = m.header().path().map(|p| p.as_str().to_owned()).unwrap_or_default();
                if iface != DEVICE1 || !path.starts_with(&prefix) {
                    continue;
                }
                let d = devices.entry(path.clone()).or_insert_with(|| Device::from_path(&path));
                if let Some(f) = d.update(&props) {
                    let _ = tx.try_send(Ok(f));
                }
            }
        }
    };
    // Leave the adapter as we found it (best effort: the bus may be gone).
    let _ = timed(
        conn.call_method(
            Some("org.bluez"),
            adapter_path.as_str(),
            Some(ADAPTER1),
            "StopDiscovery",
            &(),
        ),
        "StopDiscovery",
    )
    .await;
    if let Some(e) = end {
        let _ = tx.send(Err(e));
    }
}

/// What is known of one BlueZ device: `PropertiesChanged` carries only what changed, so the
/// address and last RSSI are kept.
struct Device {
    mac: Option<[u8; 6]>,
    rssi: Option<i8>,
}

impl Device {
    /// BlueZ names device objects `dev_AA_BB_CC_DD_EE_FF`; the `Address` property wins when seen.
    fn from_path(path: &str) -> Self {
        let mac = path
            .rsplit('/')
            .next()
            .and_then(|n| n.strip_prefix("dev_"))
            .and_then(|a| parse_mac(a, '_'));
        Self { mac, rssi: None }
    }

    /// Applies properties; returns a record when they carry Open Drone ID service data.
    fn update(&mut self, props: &Props) -> Option<RawFrame> {
        if let Some(Variant::Str(a)) = props.get("Address").map(|v| inner(v)) {
            if let Some(m) = parse_mac(a.as_str(), ':') {
                self.mac = Some(m);
            }
        }
        if let Some(Variant::I16(r)) = props.get("RSSI").map(|v| inner(v)) {
            self.rssi = i8::try_from(*r).ok();
        }
        let sd = props.get("ServiceData").and_then(|v| odid_service_data(inner(v)))?;
        let ts_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Some(RawFrame {
            linktype: LINKTYPE_BLUEZ_SERVICE_DATA,
            ts_ms,
            data: bluez_record(self.mac?, self.rssi, &sd),
        })
    }
}

/// Unwraps nested variants (`v` inside `v`).
fn inner<'a>(v: &'a Variant<'a>) -> &'a Variant<'a> {
    match v {
        Variant::Variant(b) => inner(b),
        v => v,
    }
}

/// `ServiceData` is `a{sv}`: UUID → bytes (`ay`). Returns the bytes of the ASTM UUID.
fn odid_service_data(v: &Variant<'_>) -> Option<Vec<u8>> {
    let Variant::Dict(d) = v else { return None };
    d.iter().find_map(|(k, val)| match inner(k) {
        Variant::Str(s) if s.as_str().eq_ignore_ascii_case(ODID_SERVICE_UUID) => match inner(val) {
            Variant::Array(a) => a
                .inner()
                .iter()
                .map(|b| match b {
                    Variant::U8(b) => Some(*b),
                    _ => None,
                })
                .collect(),
            _ => None,
        },
        _ => None,
    })
}

fn parse_mac(s: &str, sep: char) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut parts = s.split(sep);
    for b in &mut m {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_from_paths_and_properties() {
        assert_eq!(
            Device::from_path("/org/bluez/hci0/dev_AA_BB_CC_DD_EE_0F").mac,
            Some([0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0x0F])
        );
        assert_eq!(Device::from_path("/org/bluez/hci0/dev_AA_BB").mac, None);
        assert_eq!(parse_mac("aa:bb:cc:dd:ee:ff:00", ':'), None);
    }
}
