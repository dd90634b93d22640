//! Actions: `verify` and `smoketest`. Each reports through action-set,
//! action-log and action-fail.

use anyhow::Result;

use crate::event::Action;
use crate::juju::HookTools;
use crate::unit::Root;

pub fn run(action: Action, _root: &Root, tools: &HookTools) -> Result<()> {
    tools.action_fail(&format!(
        "action {} is not available in this revision of magnum-capi yet",
        action.name()
    ))
}

/// An action Juju ran that actions.yaml does not declare.
pub fn unknown(name: &str, tools: &HookTools) -> Result<()> {
    tools.action_fail(&format!(
        "unknown action {name:?}: magnum-capi has {}",
        Action::ALL.map(Action::name).join(", ")
    ))
}
