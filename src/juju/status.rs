//! A unit's workload status: what `juju status` shows the operator.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusKind {
    Maintenance,
    Waiting,
    Blocked,
    Active,
}

impl StatusKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Maintenance => "maintenance",
            StatusKind::Waiting => "waiting",
            StatusKind::Blocked => "blocked",
            StatusKind::Active => "active",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub kind: StatusKind,
    pub message: String,
}

/// A status message is one line (`juju status` shows one): a multi-line
/// text (a tool's stderr) is joined with "; ", blank lines and systemctl's
/// `See "systemctl status ..." ... for details.` pointers dropped (the
/// message carries its own fix).
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !(l.is_empty() || l.starts_with("See \"systemctl status") && l.ends_with("for details.")))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Status {
    pub fn new(kind: StatusKind, message: impl Into<String>) -> Status {
        let message = message.into();
        Status {
            kind,
            message: if message.contains(['\n', '\r']) {
                one_line(&message)
            } else {
                message
            },
        }
    }
    pub fn active(m: impl Into<String>) -> Status {
        Status::new(StatusKind::Active, m)
    }
    pub fn blocked(m: impl Into<String>) -> Status {
        Status::new(StatusKind::Blocked, m)
    }
    pub fn waiting(m: impl Into<String>) -> Status {
        Status::new(StatusKind::Waiting, m)
    }
    pub fn maintenance(m: impl Into<String>) -> Status {
        Status::new(StatusKind::Maintenance, m)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_one_line() {
        let s = Status::blocked(
            "`systemctl restart magnum-conductor.service` failed (exit status: 1): Job for magnum-conductor.service failed because the control process exited with error code.\nSee \"systemctl status magnum-conductor.service\" and \"journalctl -xeu magnum-conductor.service\" for details.\n",
        );
        assert!(!s.message.contains('\n'), "{}", s.message);
        assert!(!s.message.contains("See \"systemctl"), "{}", s.message);
        assert!(s.message.ends_with("with error code."), "{}", s.message);
        assert_eq!(Status::active("a\r\n\nb").message, "a; b");
    }
}

/// Why a hook or an action stops short. Callers branch on the kind; the
/// report becomes text only at the edge (converge::run's status, an
/// action's failure message). Hooks report a `Status`, actions a message.
#[derive(Debug)]
pub enum Stop<R = Status> {
    /// The operator's to act on (waiting for magnum, bad input, a refused
    /// change, credentials to fix): this says what. Nothing broke.
    Report(R),
    /// Something failed (a hook tool, the filesystem, systemd): a hook logs
    /// it and reports blocked (the next hook retries); an action errors.
    Failed(anyhow::Error),
}

impl<R> From<anyhow::Error> for Stop<R> {
    fn from(e: anyhow::Error) -> Stop<R> {
        Stop::Failed(e)
    }
}

impl Stop {
    pub fn blocked(message: impl Into<String>) -> Stop {
        Stop::Report(Status::blocked(message))
    }

    /// The same stop, its reported message prefixed (`"helm resource: "`).
    pub fn prefixed(self, prefix: &str) -> Stop {
        match self {
            Stop::Report(s) => Stop::Report(Status::new(s.kind, format!("{prefix}{}", s.message))),
            failed => failed,
        }
    }
}
