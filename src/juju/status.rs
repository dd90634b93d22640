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

impl Status {
    pub fn new(kind: StatusKind, message: impl Into<String>) -> Status {
        Status {
            kind,
            message: message.into(),
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
