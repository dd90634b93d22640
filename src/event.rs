//! What Juju asked for: `JUJU_DISPATCH_PATH` (`hooks/<hook>` or
//! `actions/<action>`) turned into a typed [`Event`]. No I/O here.

use std::fmt;

/// The actions the charm declares in `actions.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Verify,
    Smoketest,
}

impl Action {
    pub const ALL: [Action; 2] = [Action::Verify, Action::Smoketest];

    pub fn name(self) -> &'static str {
        match self {
            Action::Verify => "verify",
            Action::Smoketest => "smoketest",
        }
    }
}

/// A hook or action the charm handles, or one it does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Install,
    ConfigChanged,
    UpgradeCharm,
    SecretChanged,
    Start,
    UpdateStatus,
    Stop,
    Remove,
    JujuInfoRelationJoined,
    JujuInfoRelationChanged,
    JujuInfoRelationDeparted,
    /// The peer relation of the rolling restart.
    RestartRelationJoined,
    RestartRelationChanged,
    RestartRelationDeparted,
    LeaderElected,
    Action(Action),
    /// A hook the charm has no handler for: Juju's convention is exit 0.
    UnknownHook(String),
    /// An action not in actions.yaml: fail it with a message.
    UnknownAction(String),
    /// A dispatch path that is neither `hooks/...` nor `actions/...`.
    Invalid(String),
}

/// Every hook the charm handles, with its Juju name. Used by routing, by
/// packaging (`hooks/<name>` links) and by the tests.
pub const HOOKS: [(&str, Event); 15] = [
    ("install", Event::Install),
    ("config-changed", Event::ConfigChanged),
    ("upgrade-charm", Event::UpgradeCharm),
    ("secret-changed", Event::SecretChanged),
    ("start", Event::Start),
    ("update-status", Event::UpdateStatus),
    ("stop", Event::Stop),
    ("remove", Event::Remove),
    ("juju-info-relation-joined", Event::JujuInfoRelationJoined),
    ("juju-info-relation-changed", Event::JujuInfoRelationChanged),
    ("juju-info-relation-departed", Event::JujuInfoRelationDeparted),
    ("restart-relation-joined", Event::RestartRelationJoined),
    ("restart-relation-changed", Event::RestartRelationChanged),
    ("restart-relation-departed", Event::RestartRelationDeparted),
    ("leader-elected", Event::LeaderElected),
];

impl Event {
    /// Parse `JUJU_DISPATCH_PATH`. Older agents without dispatch support run
    /// `hooks/<hook>` directly; the caller passes the last two components of
    /// argv[0] then.
    pub fn from_dispatch_path(path: &str) -> Event {
        let path = path.trim_start_matches("./");
        if let Some(hook) = path.strip_prefix("hooks/") {
            return HOOKS
                .iter()
                .find(|(name, _)| *name == hook)
                .map(|(_, event)| event.clone())
                .unwrap_or_else(|| Event::UnknownHook(hook.to_string()));
        }
        if let Some(action) = path.strip_prefix("actions/") {
            return Action::ALL
                .iter()
                .find(|a| a.name() == action)
                .map(|a| Event::Action(*a))
                .unwrap_or_else(|| Event::UnknownAction(action.to_string()));
        }
        Event::Invalid(path.to_string())
    }

    /// Hooks that bring the unit to the desired state.
    pub fn converges(&self) -> bool {
        matches!(
            self,
            Event::Install
                | Event::ConfigChanged
                | Event::UpgradeCharm
                | Event::SecretChanged
                | Event::Start
                | Event::UpdateStatus
                | Event::JujuInfoRelationJoined
                | Event::JujuInfoRelationChanged
                | Event::RestartRelationJoined
                | Event::RestartRelationChanged
                | Event::RestartRelationDeparted
                | Event::LeaderElected
        )
    }

    /// Hooks where the rolling restart moves: a peer or the leader changed.
    pub fn peer_news(&self) -> bool {
        matches!(
            self,
            Event::RestartRelationJoined
                | Event::RestartRelationChanged
                | Event::RestartRelationDeparted
                | Event::LeaderElected
        )
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Event::Action(a) = self {
            return write!(f, "action {}", a.name());
        }
        if let Some((name, _)) = HOOKS.iter().find(|(_, e)| e == self) {
            return write!(f, "hook {name}");
        }
        match self {
            Event::UnknownHook(h) => write!(f, "unknown hook {h}"),
            Event::UnknownAction(a) => write!(f, "unknown action {a}"),
            Event::Invalid(p) => write!(f, "invalid dispatch path {p:?}"),
            _ => unreachable!("every hook is in HOOKS"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_hook_routes_to_its_event() {
        for (name, event) in HOOKS.iter() {
            assert_eq!(Event::from_dispatch_path(&format!("hooks/{name}")), *event);
        }
    }

    #[test]
    fn actions_route_and_unknown_ones_are_kept() {
        assert_eq!(
            Event::from_dispatch_path("actions/verify"),
            Event::Action(Action::Verify)
        );
        assert_eq!(
            Event::from_dispatch_path("actions/smoketest"),
            Event::Action(Action::Smoketest)
        );
        assert_eq!(
            Event::from_dispatch_path("actions/frobnicate"),
            Event::UnknownAction("frobnicate".into())
        );
    }

    #[test]
    fn unknown_hooks_and_garbage_are_not_errors() {
        assert_eq!(
            Event::from_dispatch_path("hooks/collect-metrics"),
            Event::UnknownHook("collect-metrics".into())
        );
        assert_eq!(Event::from_dispatch_path("./hooks/install"), Event::Install);
        assert!(matches!(Event::from_dispatch_path(""), Event::Invalid(_)));
    }

    #[test]
    fn converging_hooks_are_the_documented_ones() {
        assert!(Event::UpdateStatus.converges());
        assert!(!Event::Stop.converges());
        assert!(!Event::Remove.converges());
        assert!(!Event::JujuInfoRelationDeparted.converges());
        assert!(!Event::Action(Action::Verify).converges());
    }
}
