//! The unit as the charm sees it, under its root directory
//! (`MAGNUM_CAPI_ROOT`, default `/`): paths, accounts, files, installed
//! Python packages. Reading only, and no process spawned; `apply` writes.

mod accounts;
pub mod observe;
mod root;
pub mod watch;

pub use accounts::Accounts;
pub use root::Root;
