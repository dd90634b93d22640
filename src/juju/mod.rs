//! The Juju hook tools, typed. Every tool is found on `PATH`, as Juju puts
//! them there for a hook; a failed tool's error carries its stderr.

#[allow(dead_code)]
mod action;
mod status;
mod tools;

#[allow(unused_imports)] // flatten_results: for smoketest's nested results
pub use action::{flatten_results, valid_key, ActionResults};
pub use status::{one_line, Status, StatusKind, Stop};
pub use tools::{HookTools, SecretError};
