//! The Juju hook tools, typed. Every tool is found on `PATH`, as Juju puts
//! them there for a hook; a failed tool's error carries its stderr.

#[allow(dead_code)]
mod action;
mod status;
mod tools;

// The action half of the layer is used as the actions land (verify,
// smoketest); keep it whole and tested meanwhile.
#[allow(unused_imports)]
pub use action::{flatten_results, valid_key, ActionResults};
pub use status::{Status, StatusKind};
pub use tools::{HookTools, SecretError};
