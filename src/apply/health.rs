//! Is a restart healthy? `is-active` is not enough (FACTS.md): a service in
//! a restart loop can read `active`. Watch ActiveState, Result and NRestarts
//! for the settle window, then read the journal since the restart for the
//! runbook's red flags.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::systemd::{self, ServiceState};
use crate::plan::red_flags::{first_red_flag, RedFlag};
use crate::unit::Root;

/// Why a service is unhealthy, from one `systemctl show` sample; `before`:
/// each service's NRestarts when the watch began (systemd's automatic
/// restarts since then are a loop).
pub fn assess(states: &[ServiceState], before: &[u32]) -> Option<String> {
    for (i, s) in states.iter().enumerate() {
        let name = s.id.trim_end_matches(".service");
        if s.active_state == "failed" || (s.result != "success" && !s.result.is_empty()) {
            return Some(format!("{name} failed (Result={})", s.result));
        }
        if s.n_restarts > before.get(i).copied().unwrap_or(0) {
            return Some(format!("{name} is in a restart loop (NRestarts={})", s.n_restarts));
        }
        if !s.up() {
            return Some(format!("{name} is {}", s.active_state));
        }
    }
    None
}

/// The verdict on a restart done at `since_epoch`: `None` when healthy, or
/// the problem and the red-flag line with its fix.
pub struct Verdict {
    pub problem: String,
    pub fix: String,
}

pub fn watch(
    root: &Root,
    services: &[&str],
    settle: Duration,
    since: &systemd::JournalMark,
) -> Result<Option<Verdict>> {
    let deadline = Instant::now() + settle;
    let mut problem;
    // The instances this restart started, as systemd links them while it
    // is watched: only their journal lines count.
    let mut since = since.clone();
    // systemd flushes NRestarts on a restart it did not make itself, except
    // when the restart job lands while the unit waits in `auto-restart` (a
    // crash loop the restart is meant to end): then the count the loop
    // left stays (seen on a real unit: NRestarts=1 on a healthy repair).
    // Only restarts counted after the first look are this restart's.
    let mut before: Option<Vec<u32>> = None;
    loop {
        for id in systemd::invocations(root, services) {
            if !since.old_invocations.contains(&id) && !since.new_invocations.contains(&id) {
                since.new_invocations.push(id);
            }
        }
        let states = systemd::show(root, services)?;
        let baseline = before.get_or_insert_with(|| states.iter().map(|s| s.n_restarts).collect());
        problem = assess(&states, baseline);
        let settled = Instant::now() >= deadline;
        if problem.is_some() || settled {
            if problem.is_none() {
                // At the end of the window the service must be up, not starting.
                problem = states
                    .iter()
                    .find(|s| s.active_state != "active")
                    .map(|s| format!("{} is still {}", s.id.trim_end_matches(".service"), s.active_state));
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(500).min(deadline.saturating_duration_since(Instant::now())));
    }
    let flag = red_flag(services, &since);
    Ok((problem.is_some() || flag.is_some()).then(|| explain(services, problem, flag)))
}

/// A restart systemd refused at once (an ExecStartPre failed, the unit
/// cannot load, the start limit was hit): unhealthy like any other, with
/// the journal's red flag when there is one.
pub fn refused(services: &[&str], since: &systemd::JournalMark, why: &anyhow::Error) -> Verdict {
    explain(services, Some(format!("{why:#}")), red_flag(services, since))
}

/// The first red flag the journal shows after the mark, and its line.
fn red_flag(services: &[&str], since: &systemd::JournalMark) -> Option<(&'static RedFlag, String)> {
    let journal = systemd::journal_after(services, since).unwrap_or_default();
    first_red_flag(&journal)
}

/// The verdict from what systemd showed and the journal's red flag: the
/// flag's cause and fix when there is one, else where to read more.
fn explain(services: &[&str], problem: Option<String>, flag: Option<(&'static RedFlag, String)>) -> Verdict {
    match flag {
        Some((flag, line)) => Verdict {
            problem: format!(
                "{}{}: {line}",
                problem.map(|p| format!("{p}; ")).unwrap_or_default(),
                flag.cause
            ),
            fix: flag.fix.to_string(),
        },
        None => {
            let units: Vec<String> = services.iter().map(|s| format!("-u {s}")).collect();
            Verdict {
                problem: problem.unwrap_or_default(),
                fix: format!(
                    "read `systemctl status {}` and `journalctl {}` on the unit",
                    services.join(" "),
                    units.join(" ")
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(active: &str, result: &str, n: u32) -> ServiceState {
        ServiceState {
            id: "magnum-api.service".into(),
            active_state: active.into(),
            sub_state: "running".into(),
            result: result.into(),
            n_restarts: n,
            exec_main_start_monotonic: 1,
        }
    }

    #[test]
    fn restart_loops_read_active_but_are_unhealthy() {
        assert_eq!(assess(&[st("active", "success", 0)], &[0]), None);
        assert!(assess(&[st("active", "success", 2)], &[0])
            .unwrap()
            .contains("restart loop"));
        // A count the restart inherited from a loop before it is not one.
        assert_eq!(assess(&[st("active", "success", 1)], &[1]), None);
        assert!(assess(&[st("active", "success", 2)], &[1])
            .unwrap()
            .contains("restart loop"));
        assert!(assess(&[st("failed", "start-limit-hit", 5)], &[5])
            .unwrap()
            .contains("failed"));
        assert!(assess(&[st("inactive", "success", 0)], &[0])
            .unwrap()
            .contains("inactive"));
    }
}
