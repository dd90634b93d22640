//! The unit as the charm sees it, under its root directory
//! (`MAGNUM_CAPI_ROOT`, default `/`). Reading only; `apply` changes it.
//!
//! - `observe`, `accounts`, `watch`: paths, accounts, files, installed
//!   Python packages, and their stamps; no process spawned.
//! - `dbus`, `services`: the services as systemd shows them, over D-Bus
//!   (no spawn), else `systemctl show`; the journal through `journalctl`;
//!   the watch of a restart through its settle window.

mod accounts;
pub mod dbus;
pub mod observe;
mod root;
pub mod services;
pub mod watch;

pub use accounts::Accounts;
pub use root::Root;
