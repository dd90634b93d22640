//! systemd's unit state over D-Bus, so a healthy `update-status` spawns no
//! process. The bus is `DBUS_SYSTEM_BUS_ADDRESS` when set (a test serves a
//! fake systemd there), else the system bus socket under the unit root.
//! Not systemd's private socket (`/run/systemd/private`): zbus refuses the
//! sender field systemd puts in its peer-to-peer messages (seen on a real
//! unit: a panic in zbus's executor).

use anyhow::{Context, Result};
use zbus::blocking::connection::Builder;
use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use super::systemctl::ServiceState;
use crate::unit::Root;

const SYSTEMD: &str = "org.freedesktop.systemd1";
const SYSTEM_BUS_SOCKET: &str = "/run/dbus/system_bus_socket";

fn connect(root: &Root) -> Result<Connection> {
    if let Some(addr) = std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok().filter(|a| !a.is_empty()) {
        return Builder::address(addr.as_str())
            .and_then(|b| b.build())
            .with_context(|| format!("cannot connect to the system bus at {addr}"));
    }
    let socket = root.path(SYSTEM_BUS_SOCKET);
    if !socket.exists() {
        anyhow::bail!("no {}", socket.display());
    }
    let addr = format!("unix:path={}", socket.display());
    Builder::address(addr.as_str())
        .and_then(|b| b.build())
        .with_context(|| format!("cannot connect to the system bus at {}", socket.display()))
}

fn get(conn: &Connection, path: &OwnedObjectPath, interface: &str, property: &str) -> Result<OwnedValue> {
    let reply = conn
        .call_method(
            Some(SYSTEMD),
            path.as_str(),
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(interface, property),
        )
        .with_context(|| format!("cannot read {interface}.{property} of {}", path.as_str()))?;
    let value: OwnedValue = reply
        .body()
        .deserialize()
        .with_context(|| format!("bad reply for {property}"))?;
    Ok(value)
}

fn string(v: OwnedValue) -> Result<String> {
    String::try_from(v).context("property is not a string")
}

/// The same properties `systemctl show` gives, for each service.
pub fn show(root: &Root, services: &[&str]) -> Result<Vec<ServiceState>> {
    let conn = connect(root)?;
    let mut out = Vec::new();
    for service in services {
        let unit = format!("{service}.service");
        let path: OwnedObjectPath = conn
            .call_method(
                Some(SYSTEMD),
                "/org/freedesktop/systemd1",
                Some("org.freedesktop.systemd1.Manager"),
                "LoadUnit",
                &(unit.as_str(),),
            )
            .with_context(|| format!("systemd LoadUnit {unit}"))?
            .body()
            .deserialize()
            .context("LoadUnit did not return an object path")?;
        let unit_iface = "org.freedesktop.systemd1.Unit";
        let service_iface = "org.freedesktop.systemd1.Service";
        out.push(ServiceState {
            id: unit.clone(),
            active_state: string(get(&conn, &path, unit_iface, "ActiveState")?)?,
            sub_state: string(get(&conn, &path, unit_iface, "SubState")?)?,
            result: string(get(&conn, &path, service_iface, "Result")?)?,
            n_restarts: u32::try_from(get(&conn, &path, service_iface, "NRestarts")?)
                .context("NRestarts is not a u32")?,
            exec_main_start_monotonic: u64::try_from(get(
                &conn,
                &path,
                service_iface,
                "ExecMainStartTimestampMonotonic",
            )?)
            .context("ExecMainStartTimestampMonotonic is not a u64")?,
        });
    }
    Ok(out)
}
