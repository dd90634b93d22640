//! Actions: `verify` and `smoketest`. Each reports through action-set,
//! action-log and action-fail.

mod check;
pub mod smoketest;
mod verify;

use anyhow::Result;

use crate::event::Action;
use crate::juju::HookTools;
use crate::unit::Root;

pub fn run(action: Action, root: &Root, tools: &HookTools) -> Result<()> {
    match action {
        Action::Verify => verify::run(root, tools),
        Action::Smoketest => smoketest::run(root, tools),
    }
}

/// An action Juju ran that actions.yaml does not declare.
pub fn unknown(name: &str, tools: &HookTools) -> Result<()> {
    tools.action_fail(&format!(
        "unknown action {name:?}: magnum-capi has {}",
        Action::ALL.map(Action::name).join(", ")
    ))
}
