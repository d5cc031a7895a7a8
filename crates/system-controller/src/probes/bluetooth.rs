//! Bluetooth over org.bluez (system-controller §3.4): the adapter and its
//! devices from the ObjectManager, pushed by its signals, plus the pairing agent.

use crate::dbus::{call, proxy, signal_stream, Bus, DbusFail, BLUEZ};
use crate::health::Probe;
use crate::probes::{
    end, next_trigger, properties_changed, record_failure, resync_interval, run_dbus_probe, SessionEnd, Streams,
};
use crate::state::Controller;
use ndefender_contract::system::{BluetoothConnected, BluetoothDevice, BluetoothState};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zbus::{Connection, OwnedObjectPath, OwnedVariant};

const IF_ADAPTER: &str = "org.bluez.Adapter1";
const IF_DEVICE: &str = "org.bluez.Device1";
const AGENT_PATH: &str = "/org/ndefender/agent";

type Props = HashMap<String, OwnedVariant>;
type Managed = HashMap<OwnedObjectPath, HashMap<String, Props>>;

/// One device as read from the ObjectManager.
#[derive(Debug, Clone, PartialEq)]
pub struct Dev {
    pub path: OwnedObjectPath,
    pub addr: String,
    pub name: Option<String>,
    pub rssi: Option<i64>,
    pub paired: bool,
    pub connected: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdapterView {
    pub path: OwnedObjectPath,
    pub powered: Option<bool>,
    pub discovering: Option<bool>,
    pub power_state: Option<String>,
    pub devices: Vec<Dev>,
}

fn take<T: TryFrom<OwnedVariant>>(p: &mut Props, k: &str) -> Option<T> {
    p.remove(k).and_then(|v| T::try_from(v).ok())
}

/// Reads the adapter (configured, else the first) and its devices.
pub async fn read(ctl: &Controller, conn: &Connection) -> Result<Option<AdapterView>, DbusFail> {
    let d = Duration::from_millis(ctl.cfg().probes.dbus_timeout_ms);
    let om = proxy(conn, BLUEZ, "/", "org.freedesktop.DBus.ObjectManager").await?;
    let mut objs: Managed = call(d, om.call("GetManagedObjects", &())).await?;
    let wanted = format!("/org/bluez/{}", ctl.cfg().bluetooth.adapter);
    let mut adapters: Vec<OwnedObjectPath> = objs
        .iter()
        .filter(|(_, ifs)| ifs.contains_key(IF_ADAPTER))
        .map(|(p, _)| p.clone())
        .collect();
    adapters.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let Some(path) = adapters
        .iter()
        .find(|p| p.as_str() == wanted)
        .or(adapters.first())
        .cloned()
    else {
        return Ok(None);
    };
    let prefix = format!("{}/", path.as_str());
    let mut devices = Vec::new();
    for (p, ifs) in objs.iter_mut() {
        if !p.as_str().starts_with(&prefix) {
            continue;
        }
        let Some(props) = ifs.get_mut(IF_DEVICE) else { continue };
        let Some(addr) = take::<String>(props, "Address") else {
            continue;
        };
        devices.push(Dev {
            path: p.clone(),
            addr,
            name: take::<String>(props, "Name"),
            rssi: take::<i16>(props, "RSSI").map(i64::from),
            paired: take::<bool>(props, "Paired").unwrap_or(false),
            connected: take::<bool>(props, "Connected").unwrap_or(false),
        });
    }
    let mut a = objs
        .remove(&path)
        .and_then(|mut ifs| ifs.remove(IF_ADAPTER))
        .unwrap_or_default();
    Ok(Some(AdapterView {
        powered: take(&mut a, "Powered"),
        discovering: take(&mut a, "Discovering"),
        power_state: take(&mut a, "PowerState"),
        path,
        devices: sorted(devices),
    }))
}

/// Connected first, then paired, then by RSSI (strongest first).
fn sorted(mut v: Vec<Dev>) -> Vec<Dev> {
    v.sort_by(|a, b| {
        b.connected
            .cmp(&a.connected)
            .then(b.paired.cmp(&a.paired))
            .then(b.rssi.unwrap_or(i64::MIN).cmp(&a.rssi.unwrap_or(i64::MIN)))
            .then(a.addr.cmp(&b.addr))
    });
    v.truncate(200);
    v
}

pub fn state_of(view: Option<&AdapterView>, now: u64) -> BluetoothState {
    let mut s = BluetoothState {
        timestamp_ms: Some(now),
        last_update_ms: Some(now),
        ..Default::default()
    };
    let Some(a) = view else {
        s.last_error = Some("no_bluetooth_adapter".into());
        return s;
    };
    s.enabled = a.powered;
    s.scanning = a.discovering;
    s.paired_count = Some(a.devices.iter().filter(|d| d.paired).count() as u32);
    s.connected_devices = Some(
        a.devices
            .iter()
            .filter(|d| d.connected)
            .map(|d| BluetoothConnected {
                addr: Some(d.addr.clone()),
                name: d.name.clone(),
                rssi_dbm: d.rssi,
            })
            .collect(),
    );
    if a.power_state.as_deref() == Some("off-blocked") {
        s.last_error = Some("bt_rfkill_blocked".into());
    }
    s
}

pub fn device_list(view: &AdapterView) -> Vec<BluetoothDevice> {
    view.devices
        .iter()
        .map(|d| BluetoothDevice {
            addr: Some(d.addr.clone()),
            name: d.name.clone(),
            rssi_dbm: d.rssi,
            paired: Some(d.paired),
            connected: Some(d.connected),
        })
        .collect()
}

pub fn spawn(ctl: Controller, bus: Bus, agent: Agent) {
    if !ctl.cfg().bluetooth.enabled {
        return;
    }
    let resync = Duration::from_secs(10);
    let c2 = ctl.clone();
    let b2 = bus.clone();
    tokio::spawn(run_dbus_probe(
        bus,
        BLUEZ,
        resync,
        |conn| async move {
            let props = properties_changed(&conn, "/org/bluez").await?;
            let om = signal_stream(&conn, "/", "org.freedesktop.DBus.ObjectManager", None).await?;
            Ok(vec![props, om])
        },
        move |conn, streams| session(c2.clone(), b2.clone(), agent.clone(), conn, streams),
        record_failure(ctl, Probe::Bluetooth, "bluez"),
    ));
}

async fn session(
    ctl: Controller,
    bus: Bus,
    agent: Agent,
    conn: Connection,
    mut streams: Streams,
) -> (SessionEnd, Streams) {
    let r = watch(&ctl, &bus, &agent, &conn, &mut streams).await;
    end(r, streams)
}

async fn watch(
    ctl: &Controller,
    bus: &Bus,
    agent: &Agent,
    conn: &Connection,
    streams: &mut Streams,
) -> Result<(), SessionEnd> {
    let kick = bus.kick(BLUEZ);
    let mut resync = resync_interval(Duration::from_secs(10));
    let mut registered = false;
    loop {
        let view = ctl.timed(Probe::Bluetooth, read(ctl, conn)).await?;
        if !registered {
            // One attempt per session: BlueZ refusing the agent is logged, not retried.
            agent.register(ctl, conn).await;
            registered = true;
        }
        let now = ctl.clock().now_ms();
        ctl.mutate(|st| {
            st.network.bluetooth = Some(state_of(view.as_ref(), now));
            st.probe_ok(Probe::Bluetooth);
        });
        next_trigger(streams, &mut resync, &kick).await?;
    }
}

// ---- commands ----------------------------------------------------------------

pub async fn adapter(ctl: &Controller, conn: &Connection) -> Result<AdapterView, DbusFail> {
    read(ctl, conn)
        .await?
        .ok_or_else(|| DbusFail::Failed("no_bluetooth_adapter".into()))
}

pub async fn set_powered(ctl: &Controller, conn: &Connection, on: bool) -> Result<(), DbusFail> {
    let a = adapter(ctl, conn).await?;
    let p = proxy(conn, BLUEZ, a.path.as_str(), IF_ADAPTER).await?;
    call(
        Duration::from_millis(ctl.cfg().probes.dbus_timeout_ms),
        p.set_property("Powered", on),
    )
    .await
}

/// Start or stop discovery; "already discovering" and "not discovering" are success.
pub async fn discovery(ctl: &Controller, conn: &Connection, start: bool) -> Result<(), DbusFail> {
    let a = adapter(ctl, conn).await?;
    if a.discovering == Some(start) {
        return Ok(());
    }
    let p = proxy(conn, BLUEZ, a.path.as_str(), IF_ADAPTER).await?;
    let d = Duration::from_millis(ctl.cfg().probes.dbus_timeout_ms);
    if start {
        // Clears a filter another client may have left (e.g. LE only).
        let empty: HashMap<String, OwnedVariant> = HashMap::new();
        let _ = call(d, p.call::<_, _, ()>("SetDiscoveryFilter", &(empty,))).await;
    }
    let method = if start { "StartDiscovery" } else { "StopDiscovery" };
    match call(
        Duration::from_millis(ctl.cfg().probes.dbus_timeout_ms),
        p.call::<_, _, ()>(method, &()),
    )
    .await
    {
        Err(DbusFail::Failed(n)) if n.ends_with("InProgress") || n.ends_with("NotReady") && !start => Ok(()),
        Err(DbusFail::Failed(n)) if n.ends_with(".Failed") && !start => Ok(()),
        r => r,
    }
}

pub async fn find_device(ctl: &Controller, conn: &Connection, addr: &str) -> Result<Option<Dev>, DbusFail> {
    let a = adapter(ctl, conn).await?;
    Ok(a.devices.into_iter().find(|d| d.addr.eq_ignore_ascii_case(addr)))
}

pub async fn remove_device(ctl: &Controller, conn: &Connection, dev: &Dev) -> Result<(), DbusFail> {
    let a = adapter(ctl, conn).await?;
    let p = proxy(conn, BLUEZ, a.path.as_str(), IF_ADAPTER).await?;
    call(
        Duration::from_millis(ctl.cfg().probes.dbus_timeout_ms),
        p.call::<_, _, ()>("RemoveDevice", &(dev.path.clone(),)),
    )
    .await
}

/// Pair() then Trusted=true; the ack reason on failure (§3.4).
pub async fn pair(
    ctl: &Controller,
    conn: &Connection,
    agent: &Agent,
    dev: &Dev,
    pin: Option<String>,
) -> Result<(), String> {
    agent.begin(dev.path.as_str(), pin);
    let limit = Duration::from_secs(ctl.cfg().bluetooth.pair_timeout_s);
    let r = async {
        let p = proxy(conn, BLUEZ, dev.path.as_str(), IF_DEVICE)
            .await
            .map_err(|_| "pair_failed".to_owned())?;
        match tokio::time::timeout(limit, p.call::<_, _, ()>("Pair", &())).await {
            Err(_) => return Err("pair_timeout".to_owned()),
            Ok(Err(e)) => {
                let f = DbusFail::from(e);
                let n = f.error_name();
                if n.ends_with("AlreadyExists") {
                    // already paired: still make sure it is trusted
                } else if n.ends_with("AuthenticationFailed") || n.ends_with("AuthenticationRejected") {
                    return Err("auth_failed".into());
                } else {
                    return Err("pair_failed".into());
                }
            }
            Ok(Ok(())) => {}
        }
        call(
            Duration::from_millis(ctl.cfg().probes.dbus_timeout_ms),
            p.set_property("Trusted", true),
        )
        .await
        .map_err(|_| "pair_failed".to_owned())
    }
    .await;
    agent.end();
    r
}

// ---- agent -------------------------------------------------------------------

/// The device path of the pairing in progress and its PIN.
type Pending = Option<(String, Option<String>)>;

/// The pairing in progress the agent may answer for, with its PIN.
#[derive(Clone, Default)]
pub struct Agent {
    pending: Arc<Mutex<Pending>>,
}

impl Agent {
    fn begin(&self, device: &str, pin: Option<String>) {
        if let Ok(mut p) = self.pending.lock() {
            *p = Some((device.to_owned(), pin));
        }
    }
    fn end(&self) {
        if let Ok(mut p) = self.pending.lock() {
            *p = None;
        }
    }
    fn pin_for(&self, device: &str) -> Option<Option<String>> {
        let p = self.pending.lock().ok()?;
        p.as_ref().filter(|(d, _)| d == device).map(|(_, pin)| pin.clone())
    }

    /// Serves Agent1 and makes it the default agent; false if BlueZ refused.
    async fn register(&self, ctl: &Controller, conn: &Connection) -> bool {
        let d = Duration::from_millis(ctl.cfg().probes.dbus_timeout_ms);
        let served = conn
            .object_server()
            .at(AGENT_PATH, AgentIface { agent: self.clone() })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "cannot serve the Bluetooth agent");
            return false;
        }
        let Ok(mgr) = proxy(conn, BLUEZ, "/org/bluez", "org.bluez.AgentManager1").await else {
            return false;
        };
        let Ok(path) = OwnedObjectPath::try_from(AGENT_PATH) else {
            return false;
        };
        let reg = call(
            d,
            mgr.call::<_, _, ()>("RegisterAgent", &(path.clone(), "KeyboardDisplay")),
        )
        .await;
        match reg {
            Ok(()) => {}
            Err(DbusFail::Failed(n)) if n.ends_with("AlreadyExists") => {}
            Err(e) => {
                tracing::warn!(error = ?e, "cannot register the Bluetooth agent");
                return false;
            }
        }
        let _ = call(d, mgr.call::<_, _, ()>("RequestDefaultAgent", &(path,))).await;
        true
    }
}

struct AgentIface {
    agent: Agent,
}

fn rejected() -> zbus::fdo::Error {
    zbus::fdo::Error::AccessDenied("rejected".into())
}

/// Answers only for the device of the pairing command in progress.
#[zbus::interface(name = "org.bluez.Agent1")]
impl AgentIface {
    fn release(&self) {}

    fn request_pin_code(&self, device: OwnedObjectPath) -> zbus::fdo::Result<String> {
        match self.agent.pin_for(device.as_str()) {
            Some(Some(pin)) => Ok(pin),
            _ => Err(rejected()),
        }
    }

    fn request_passkey(&self, device: OwnedObjectPath) -> zbus::fdo::Result<u32> {
        match self.agent.pin_for(device.as_str()) {
            Some(Some(pin)) => pin.parse::<u32>().map_err(|_| rejected()),
            _ => Err(rejected()),
        }
    }

    fn display_pin_code(&self, _device: OwnedObjectPath, _pincode: String) {}

    fn display_passkey(&self, _device: OwnedObjectPath, _passkey: u32, _entered: u16) {}

    fn request_confirmation(&self, device: OwnedObjectPath, _passkey: u32) -> zbus::fdo::Result<()> {
        self.agent.pin_for(device.as_str()).map(|_| ()).ok_or_else(rejected)
    }

    fn request_authorization(&self, device: OwnedObjectPath) -> zbus::fdo::Result<()> {
        self.agent.pin_for(device.as_str()).map(|_| ()).ok_or_else(rejected)
    }

    fn authorize_service(&self, _device: OwnedObjectPath, _uuid: String) -> zbus::fdo::Result<()> {
        Err(rejected())
    }

    fn cancel(&self) {}
}
