//! helm, once the charm installed it from the staged resource: its version
//! (`helm version --short`, from PATH, as the services find it), for the
//! log and the state. A fault point like every other spawn of apply/.

use std::process::{Command, Stdio};

/// `v3.17.2+g...`, or `None` when helm does not run.
pub fn version() -> Option<String> {
    crate::fault::point("helm-version");
    Command::new("helm")
        .args(["version", "--short"])
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}
