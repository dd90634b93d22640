//! systemd: unit state from D-Bus (no spawn), falling back to one
//! `systemctl show` when the bus cannot be reached; verbs through
//! `systemctl`; the journal through `journalctl`.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;

pub use super::systemctl::{
    daemon_reload, invocations, journal_after, journal_mark, journal_since, reset_failed, restart, show_properties,
    JobFailed, JournalMark, ServiceState,
};
use super::{dbus, systemctl};
use crate::unit::Root;

/// Set once D-Bus failed in this process: later calls go straight to
/// systemctl, and the fallback is logged once.
static DBUS_DOWN: AtomicBool = AtomicBool::new(false);

/// Each service's state, in the order asked.
pub fn show(root: &Root, services: &[&str]) -> Result<Vec<ServiceState>> {
    if !DBUS_DOWN.load(Ordering::Relaxed) {
        match dbus::show(root, services, dbus::Detail::Full) {
            Ok(states) => return Ok(states),
            Err(e) => {
                DBUS_DOWN.store(true, Ordering::Relaxed);
                tracing::info!("systemd over D-Bus unavailable ({e:#}); using systemctl show");
            }
        }
    }
    systemctl::show(services)
}
