//! magnum-capi as a library: the modules the `dispatch` binary
//! (src/main.rs) routes to, and that the fuzz targets (fuzz/) call.
//!
//! Data flows one way: `event` -> `unit` (observe, read only) -> `plan`
//! (pure) -> `apply` (the only code that changes the unit) -> status.

pub mod actions;
pub mod apply;
pub mod arena;
pub mod clients;
pub mod clock;
pub mod converge;
pub mod event;
pub mod fault;
pub mod juju;
pub mod lifecycle;
pub mod log;
pub mod panic;
pub mod peers;
pub mod plan;
pub mod state;
pub mod supply;
pub mod unit;
