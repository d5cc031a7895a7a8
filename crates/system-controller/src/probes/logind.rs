//! Reboot and power-off through org.freedesktop.login1 (system-controller §3.8).

use crate::dbus::{call, DbusFail};
use std::time::Duration;
use zbus::proxy::CacheProperties;
use zbus::Connection;
use zbus_systemd::login1::ManagerProxy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    Reboot,
    PowerOff,
}

async fn manager(conn: &Connection) -> Result<ManagerProxy<'static>, DbusFail> {
    ManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(DbusFail::from)
}

/// `CanReboot()`/`CanPowerOff()` answered `"yes"`.
pub async fn permitted(conn: &Connection, action: PowerAction, t: Duration) -> Result<bool, DbusFail> {
    let m = manager(conn).await?;
    let answer = match action {
        PowerAction::Reboot => call(t, m.can_reboot()).await?,
        PowerAction::PowerOff => call(t, m.can_power_off()).await?,
    };
    Ok(answer == "yes")
}

/// `Reboot(false)` / `PowerOff(false)`: never interactive, a daemon has no one to ask.
pub async fn execute(conn: &Connection, action: PowerAction, t: Duration) -> Result<(), DbusFail> {
    let m = manager(conn).await?;
    match action {
        PowerAction::Reboot => call(t, m.reboot(false)).await,
        PowerAction::PowerOff => call(t, m.power_off(false)).await,
    }
}
