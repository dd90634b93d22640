//! magnum-capi as a library: the modules the `dispatch` binary
//! (src/main.rs) routes to, and that the fuzz targets (fuzz/) call.
//!
//! Where to look:
//! - **routing**: src/main.rs turns `JUJU_DISPATCH_PATH` into an `event`
//!   and calls `converge::run` (install, config-changed, update-status,
//!   ...), `lifecycle::restore` (stop, remove) or `actions::run`.
//! - **deciding**: `plan`, pure (no I/O): the desired state and the
//!   difference (`plan::desired`, `plan::diff`), the next step of a hook
//!   (`plan::step`), whether the unit is fine and what a restart's outcome
//!   means (`plan::health`), whose restart turn it is (`plan::rolling`).
//! - **reading**: `unit` (the files, accounts, packages; systemd's view of
//!   the services), `state` (the charm's memory), `juju` (the hook tools).
//! - **changing the unit**: `apply` only (atomic writes, pip, systemd's
//!   verbs), called by the shells `converge`, `lifecycle` and `supply`.
//!
//! Data flows one way: `event` -> `unit` + `state` + `juju` (facts) ->
//! `plan` (decisions) -> `apply` (changes) -> status.

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
