//! Health policy, pure: is a service steady, is a restart healthy, what a
//! crash loop or a failed restart tells the operator. The shell reads
//! systemd and the journal (unit::services) and asks here.
//!
//! `is-active` is not enough (FACTS.md): a service in a restart loop can
//! read `active`. ActiveState, Result and NRestarts are read together, and
//! NRestarts is compared with what was seen before.

use std::collections::BTreeMap;

use super::paths::SERVICES;
use super::red_flags::{first_red_flag, RedFlag};
use super::{DirFacts, FileFacts, Observed};
use crate::juju::Status;

/// A service as systemd shows it (D-Bus `ListUnitsByNames` and
/// `Properties.Get`, or `systemctl show`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceState {
    pub id: String,
    pub active_state: String,
    pub sub_state: String,
    pub result: String,
    pub n_restarts: u32,
    pub exec_main_start_monotonic: u64,
}

impl ServiceState {
    /// Running or on its way (starting, reloading): not down.
    pub fn up(&self) -> bool {
        matches!(self.active_state.as_str(), "active" | "activating" | "reloading")
    }
}

/// Up, and not restarted by systemd since the last look (`seen`: each
/// service's NRestarts then; a service can read `active` between the
/// crashes of a restart loop). `states` in the order of SERVICES.
pub fn services_steady(states: &[ServiceState], seen: &BTreeMap<String, u32>) -> bool {
    states.len() == SERVICES.len()
        && states.iter().zip(SERVICES).all(|(s, name)| {
            s.active_state == "active"
                && s.sub_state != "auto-restart"
                && s.n_restarts <= seen.get(name).copied().unwrap_or(0)
        })
}

/// The one answer to "is the unit fine, nothing to do?": nothing owed
/// (`settled`: active, applied, nothing rejected or pending), the unit's
/// files as applied (`as_applied`: the stamps held, or a full read
/// compared), and, when systemd was asked, both services steady. Used by
/// update-status's lean path (stamps), its full read, and the re-stamp
/// after a hook (no services: the hook just looked at them).
pub fn unit_fine(settled: bool, as_applied: bool, services: Option<(&[ServiceState], &BTreeMap<String, u32>)>) -> bool {
    settled && as_applied && services.is_none_or(|(states, seen)| services_steady(states, seen))
}

/// How the unit differs from what the charm last applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drift {
    /// Another driver version (or none) is installed.
    Driver,
    /// The helm the charm installed was changed.
    Helm,
    /// The conf.d directory's mode or owner.
    ConfD,
    /// A managed file's content, mode or owner.
    Files,
}

/// What the charm last applied, as its state remembers it.
#[derive(Debug, Clone, Copy)]
pub struct Applied<'a> {
    pub driver_version: &'a str,
    pub conf_d: DirFacts,
    /// The charm installed helm (and recorded it).
    pub helm: bool,
    /// The managed files at the last healthy point (`None`: absent).
    pub files: &'a BTreeMap<String, Option<FileFacts>>,
}

/// Is the observed unit as the charm last applied it: driver, helm, the
/// conf.d directory and every managed file? `None` when it is.
pub fn drift(o: &Observed, applied: &Applied) -> Option<Drift> {
    if o.driver_version.as_deref() != Some(applied.driver_version) {
        return Some(Drift::Driver);
    }
    if applied.helm && !o.helm_intact {
        return Some(Drift::Helm);
    }
    if o.conf_d != Some(applied.conf_d) {
        return Some(Drift::ConfD);
    }
    if applied
        .files
        .iter()
        .any(|(path, facts)| o.files.get(path) != Some(facts))
    {
        return Some(Drift::Files);
    }
    None
}

/// What update-status found of the services on a converged unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Services {
    /// Both up, and not restarted by systemd since the last look.
    Ready,
    /// Restarted by systemd since the last look (a crash, or a loop):
    /// one line per service, for the status.
    Looping(Vec<String>),
    /// Stopped or failed: restart these and watch them.
    Down(Vec<&'static str>),
}

/// Classify the services (`states` in the order of SERVICES) against the
/// NRestarts seen before; `seen` becomes what is seen now.
pub fn classify(states: &[ServiceState], seen: &mut BTreeMap<String, u32>) -> Services {
    let mut looping = Vec::new();
    for (s, name) in states.iter().zip(SERVICES) {
        let before = seen.insert(name.to_string(), s.n_restarts).unwrap_or(0);
        if s.n_restarts > before || s.sub_state == "auto-restart" {
            looping.push(format!("{name} restarted {} times by systemd", s.n_restarts));
        }
    }
    if !looping.is_empty() {
        return Services::Looping(looping);
    }
    let down: Vec<&'static str> = SERVICES
        .iter()
        .zip(states)
        .filter(|(_, s)| !s.up())
        .map(|(name, _)| *name)
        .collect();
    if down.is_empty() {
        Services::Ready
    } else {
        Services::Down(down)
    }
}

/// The status of a crash loop, with the journal's first red flag (the last
/// ten minutes of both services) when there is one.
pub fn crash_loop_status(looping: &[String], journal: &str) -> Status {
    let (why, fix) = match first_red_flag(journal) {
        Some((flag, line)) => (format!("{}: {line}", flag.cause), flag.fix.to_string()),
        None => (
            "no red flag in the journal".to_string(),
            "journalctl -u magnum-api -u magnum-conductor on the unit".to_string(),
        ),
    };
    Status::blocked(format!(
        "{} since the last check (crash loop?): {why}; fix: {fix}",
        looping.join(", ")
    ))
}

/// Why a service is unhealthy, from one sample; `before`: each service's
/// NRestarts when the watch began (systemd's automatic restarts since
/// then are a loop).
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

/// At the end of the settle window a service must be up, not starting.
pub fn still_starting(states: &[ServiceState]) -> Option<String> {
    states
        .iter()
        .find(|s| s.active_state != "active")
        .map(|s| format!("{} is still {}", s.id.trim_end_matches(".service"), s.active_state))
}

/// The verdict on an unhealthy restart: the problem and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub problem: String,
    pub fix: String,
}

/// The verdict on a restart from what systemd showed (`problem`) and the
/// journal since the restart: `None` when both are clean. The red flag's
/// cause and fix when there is one, else where to read more.
pub fn verdict(services: &[&str], problem: Option<String>, journal: &str) -> Option<Verdict> {
    let flag = first_red_flag(journal);
    (problem.is_some() || flag.is_some()).then(|| explain(services, problem, flag))
}

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

/// The status after a restart that update-status made was not healthy.
pub fn restart_unhealthy_status(down: &[&str], v: &Verdict) -> Status {
    Status::blocked(format!(
        "{} not healthy after restart: {}; fix: {}",
        down.join(", "),
        v.problem,
        v.fix
    ))
}

/// The status after a change's restart was unhealthy and the last good
/// config was put back (`again`: why restarting on it failed too, if it did).
pub fn rolled_back_status(v: &Verdict, again: Option<&str>) -> Status {
    let again = again
        .map(|e| format!(" (and restarting on it failed too: {e})"))
        .unwrap_or_default();
    Status::blocked(format!(
        "restart unhealthy, rolled back to the last good config{again}: {}; fix: {}",
        v.problem, v.fix
    ))
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

    fn both(api: ServiceState, conductor: ServiceState) -> Vec<ServiceState> {
        vec![
            api,
            ServiceState {
                id: "magnum-conductor.service".into(),
                ..conductor
            },
        ]
    }

    fn seen(api: u32, conductor: u32) -> BTreeMap<String, u32> {
        BTreeMap::from([("magnum-api".into(), api), ("magnum-conductor".into(), conductor)])
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

    #[test]
    fn steady_means_active_not_restarting_and_no_new_restarts() {
        let ok = both(st("active", "success", 0), st("active", "success", 0));
        assert!(services_steady(&ok, &seen(0, 0)));
        // systemd restarted the conductor since the last look.
        let restarted = both(st("active", "success", 0), st("active", "success", 1));
        assert!(!services_steady(&restarted, &seen(0, 0)));
        assert!(services_steady(&restarted, &seen(0, 1)));
        // Between two crashes of a loop: active, but auto-restart.
        let mut looping = st("active", "success", 0);
        looping.sub_state = "auto-restart".into();
        assert!(!services_steady(
            &both(st("active", "success", 0), looping),
            &seen(0, 0)
        ));
        assert!(!services_steady(
            &both(st("activating", "", 0), st("active", "success", 0)),
            &seen(0, 0)
        ));
        // An answer that lacks a service is not steady.
        assert!(!services_steady(&[st("active", "success", 0)], &seen(0, 0)));
    }

    #[test]
    fn the_unit_is_fine_only_when_settled_as_applied_and_steady() {
        let ok = both(st("active", "success", 0), st("active", "success", 0));
        let s = seen(0, 0);
        assert!(unit_fine(true, true, Some((&ok, &s))));
        assert!(unit_fine(true, true, None));
        assert!(!unit_fine(false, true, Some((&ok, &s))));
        assert!(!unit_fine(true, false, None));
        let down = both(st("inactive", "success", 0), st("active", "success", 0));
        assert!(!unit_fine(true, true, Some((&down, &s))));
    }

    #[test]
    fn drift_is_driver_helm_conf_d_or_files() {
        let dir = DirFacts {
            mode: 0o750,
            uid: 0,
            gid: 64060,
        };
        let conf = FileFacts {
            content: b"[capi_helm]\n".to_vec(),
            mode: 0o640,
            uid: 0,
            gid: 64060,
        };
        let files = BTreeMap::from([("/etc/magnum/magnum.conf.d/99-capi.conf".to_string(), Some(conf.clone()))]);
        let applied = Applied {
            driver_version: "1.4.0",
            conf_d: dir,
            helm: true,
            files: &files,
        };
        let o = Observed {
            driver_version: Some("1.4.0".into()),
            helm_intact: true,
            conf_d: Some(dir),
            files: files.clone(),
            ..Observed::default()
        };
        assert_eq!(drift(&o, &applied), None);
        let other = |f: &dyn Fn(&mut Observed)| {
            let mut o = o.clone();
            f(&mut o);
            drift(&o, &applied)
        };
        assert_eq!(other(&|o| o.driver_version = None), Some(Drift::Driver));
        assert_eq!(other(&|o| o.helm_intact = false), Some(Drift::Helm));
        assert_eq!(
            other(&|o| o.conf_d = Some(DirFacts { mode: 0o755, ..dir })),
            Some(Drift::ConfD)
        );
        assert_eq!(other(&|o| o.files.clear()), Some(Drift::Files));
        assert_eq!(
            other(&|o| {
                o.files.insert(
                    "/etc/magnum/magnum.conf.d/99-capi.conf".into(),
                    Some(FileFacts {
                        mode: 0o644,
                        ..conf.clone()
                    }),
                );
            }),
            Some(Drift::Files)
        );
        // A helm the charm did not install is not its to watch.
        let no_helm = Applied { helm: false, ..applied };
        let mut changed = o.clone();
        changed.helm_intact = false;
        assert_eq!(drift(&changed, &no_helm), None);
    }

    #[test]
    fn classify_sees_loops_first_then_down_services_and_remembers_counts() {
        let mut s = seen(0, 0);
        assert_eq!(
            classify(&both(st("active", "success", 0), st("active", "success", 0)), &mut s),
            Services::Ready
        );
        let loop_then = both(st("active", "success", 3), st("inactive", "success", 0));
        assert_eq!(
            classify(&loop_then, &mut s),
            Services::Looping(vec!["magnum-api restarted 3 times by systemd".into()])
        );
        assert_eq!(s, seen(3, 0));
        // Seen now: the same count is no longer news; the stopped one is.
        assert_eq!(classify(&loop_then, &mut s), Services::Down(vec!["magnum-conductor"]));
    }

    #[test]
    fn a_crash_loop_status_names_the_red_flag_or_where_to_read() {
        let looping = vec!["magnum-conductor restarted 4 times by systemd".to_string()];
        let plain = crash_loop_status(&looping, "");
        assert!(plain
            .message
            .starts_with("magnum-conductor restarted 4 times by systemd since the last check"));
        assert!(
            plain.message.contains("no red flag in the journal"),
            "{}",
            plain.message
        );
        let flagged = crash_loop_status(
            &looping,
            "magnum-conductor[1]: ERROR stevedore.extension Could not load 'k8s_capi_helm_v1': No module named 'magnum_capi_helm'",
        );
        assert!(!flagged.message.contains("no red flag"), "{}", flagged.message);
    }

    #[test]
    fn a_verdict_only_when_something_is_wrong() {
        assert_eq!(verdict(&SERVICES, None, "all quiet"), None);
        let v = verdict(&SERVICES, Some("magnum-api is inactive".into()), "").unwrap();
        assert_eq!(v.problem, "magnum-api is inactive");
        assert!(v.fix.contains("journalctl -u magnum-api -u magnum-conductor"));
        assert!(rolled_back_status(&v, None)
            .message
            .starts_with("restart unhealthy, rolled back to the last good config: magnum-api is inactive"));
        assert!(rolled_back_status(&v, Some("no bus"))
            .message
            .contains("(and restarting on it failed too: no bus)"));
        assert_eq!(
            restart_unhealthy_status(&["magnum-api"], &v).message,
            format!(
                "magnum-api not healthy after restart: magnum-api is inactive; fix: {}",
                v.fix
            )
        );
    }
}
