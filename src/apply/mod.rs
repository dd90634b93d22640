//! The imperative shell: the only code that changes the unit. Atomic file
//! writes, pip and the python import check, systemd, health and rollback.

pub mod dbus;
pub mod files;
pub mod health;
pub mod pip;
mod systemctl;
pub mod systemd;
