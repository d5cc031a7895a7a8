//! A private system bus for tests: `dbus-daemon` with python-dbusmock services,
//! stoppable and restartable at the same address.

use crate::R;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const S10: Duration = Duration::from_secs(10);

/// Whether `tool` is installed (`python3-dbusmock`: the Python module).
pub fn installed(tool: &str) -> bool {
    match tool {
        "python3-dbusmock" => Command::new("/usr/bin/python3")
            .args(["-c", "import dbusmock"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        t => Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    }
}

/// Why the private bus cannot run here (`dbus-daemon` or python-dbusmock missing), if so.
pub fn unavailable() -> Option<String> {
    ["dbus-daemon", "python3-dbusmock"]
        .into_iter()
        .find(|t| !installed(t))
        .map(|t| format!("{t} missing (scripts/deps.sh installs it)"))
}

/// True (after printing the SKIPPED line) when `tool` is not installed.
pub fn missing(tool: &str) -> bool {
    let found = installed(tool);
    if !found {
        println!("SKIPPED: {tool} missing");
    }
    !found
}

/// Tests that need the bus skip on a developer machine without the tools; under CI
/// (`CI=true`, where the test script installs them) they never skip.
pub fn dbus_tools_missing() -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        return false;
    }
    missing("dbus-daemon") || missing("python3-dbusmock")
}

/// Kills and reaps a child, if any.
pub fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

// ---- private bus -------------------------------------------------------------

/// `dbus-daemon --config-file=tests/dbus/bus.conf` on a fixed socket path, so it
/// can be stopped and started again at the same address.
pub struct PrivateBus {
    child: Option<Child>,
    pub address: String,
    socket: PathBuf,
}

impl PrivateBus {
    pub fn start(dir: &Path) -> R<PrivateBus> {
        let socket = dir.join("system_bus_socket");
        let mut b = PrivateBus {
            child: None,
            address: format!("unix:path={}", socket.display()),
            socket,
        };
        b.spawn()?;
        Ok(b)
    }

    fn spawn(&mut self) -> R {
        let _ = std::fs::remove_file(&self.socket);
        let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("dbus/bus.conf");
        let child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .arg("--nofork")
            .arg("--print-address")
            .arg(format!("--address={}", self.address))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + S10;
        while !self.socket.exists() {
            if Instant::now() > deadline {
                return Err("dbus-daemon did not start".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn stop(&mut self) {
        kill(&mut self.child);
        let _ = std::fs::remove_file(&self.socket);
    }

    pub fn restart(&mut self) -> R {
        self.stop();
        self.spawn()
    }

    pub async fn connect(&self) -> R<zbus::Connection> {
        Ok(zbus::connection::Builder::address(self.address.as_str())
            .build()
            .await?)
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One python-dbusmock service on the private bus.
pub struct Mock {
    child: Option<Child>,
}

impl Mock {
    /// `template` is a stock name or a path; `params` a JSON object for `-p`.
    pub async fn start(bus: &PrivateBus, name: &str, template: &str, params: Option<&str>) -> R<Mock> {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args(["-m", "dbusmock", "--system", "--template", template]);
        if let Some(p) = params {
            cmd.args(["-p", p]);
        }
        let child = cmd
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let m = Mock { child: Some(child) };
        let conn = bus.connect().await?;
        let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
        let deadline = Instant::now() + S10;
        loop {
            let n = zbus::names::BusName::try_from(name)?;
            if dbus.name_has_owner(n).await.unwrap_or(false) {
                return Ok(m);
            }
            if Instant::now() > deadline {
                return Err(format!("mock {name} did not appear").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stop(&mut self) {
        kill(&mut self.child);
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn systemd_template() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dbus/templates/ndefender_systemd1.py")
        .display()
        .to_string()
}

/// Calls a method on the bus and returns the reply message.
pub async fn dcall<B>(
    conn: &zbus::Connection,
    dest: &str,
    path: &str,
    iface: &str,
    method: &str,
    body: &B,
) -> R<zbus::message::Message>
where
    B: serde::Serialize + zbus::DynamicType,
{
    Ok(conn.call_method(Some(dest), path, Some(iface), method, body).await?)
}

pub const MOCK: &str = "org.freedesktop.DBus.Mock";

/// How often dbusmock logged a call of `method` on `path`.
pub async fn calls(conn: &zbus::Connection, dest: &str, path: &str, method: &str) -> R<Vec<Vec<zbus::OwnedVariant>>> {
    let m = dcall(conn, dest, path, MOCK, "GetMethodCalls", &(method,)).await?;
    let v: Vec<(u64, Vec<zbus::OwnedVariant>)> = m.body().deserialize()?;
    Ok(v.into_iter().map(|(_, a)| a).collect())
}

/// python-dbusmock's `bluez5` template on `bus` with adapter `hci0` (alias "kit") and the
/// given `(address, name)` devices, and a connection to the bus.
pub async fn bluez(bus: &PrivateBus, devices: &[(&str, &str)]) -> R<(Mock, zbus::Connection)> {
    let mock = Mock::start(bus, "org.bluez", "bluez5", None).await?;
    let c = bus.connect().await?;
    dcall(
        &c,
        "org.bluez",
        "/org/bluez",
        "org.bluez.Mock",
        "AddAdapter",
        &("hci0", "kit"),
    )
    .await?;
    for (addr, name) in devices {
        dcall(
            &c,
            "org.bluez",
            "/org/bluez",
            "org.bluez.Mock",
            "AddDevice",
            &("hci0", *addr, *name),
        )
        .await?;
    }
    Ok((mock, c))
}
