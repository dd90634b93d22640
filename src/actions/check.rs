//! A check's outcome and the action's report: what `juju run ... verify`
//! shows. Pure.

use crate::juju::ActionResults;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            outcome: Outcome::Pass,
            detail: detail.into(),
            fix: None,
        }
    }
    pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            outcome: Outcome::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn skip(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            outcome: Outcome::Skip,
            detail: detail.into(),
            fix: None,
        }
    }

    /// One `action-log` line.
    pub fn log_line(&self) -> String {
        let mut line = format!("{}: {} - {}", self.name, self.outcome.as_str(), self.detail);
        if let Some(fix) = &self.fix {
            line.push_str(&format!(" (fix: {fix})"));
        }
        line
    }
}

/// `checks.<name>.status|detail|fix` and `summary`, for action-set.
pub fn results(checks: &[Check]) -> ActionResults {
    let mut out = Vec::new();
    for c in checks {
        out.push((format!("checks.{}.status", c.name), c.outcome.as_str().to_string()));
        out.push((format!("checks.{}.detail", c.name), c.detail.clone()));
        if let Some(fix) = &c.fix {
            out.push((format!("checks.{}.fix", c.name), fix.clone()));
        }
    }
    out.push(("summary".to_string(), summary(checks)));
    out
}

pub fn summary(checks: &[Check]) -> String {
    let count = |o: Outcome| checks.iter().filter(|c| c.outcome == o).count();
    format!(
        "{} passed, {} failed, {} skipped",
        count(Outcome::Pass),
        count(Outcome::Fail),
        count(Outcome::Skip)
    )
}

/// The action-fail message: the first failure and its fix.
pub fn failure(checks: &[Check]) -> Option<String> {
    checks.iter().find(|c| c.outcome == Outcome::Fail).map(|c| {
        format!(
            "{} failed: {}; fix: {}",
            c.name,
            c.detail,
            c.fix.as_deref().unwrap_or("see the check's detail")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::juju::valid_key;

    #[test]
    fn results_are_valid_action_set_keys_with_a_summary() {
        let checks = vec![
            Check::pass("driver-installed", "magnum-capi-helm 1.1.0"),
            Check::fail("kubeconfig", "mode 0644", "juju run magnum-capi/0 ... "),
            Check::skip("api-driver-check", "no credentials"),
        ];
        let r = results(&checks);
        assert!(r.iter().all(|(k, _)| valid_key(k)), "{r:?}");
        assert_eq!(r.last().unwrap().1, "1 passed, 1 failed, 1 skipped");
        assert!(failure(&checks).unwrap().starts_with("kubeconfig failed: mode 0644"));
        assert!(failure(&checks[..1]).is_none());
    }
}
