//! What a converging hook does next, decided from facts (pure). The shell,
//! `converge.rs`, gathers facts in the order they are needed (the state
//! file, the observed unit, Juju's config and secret, systemd, the peers),
//! asks the function here that decides the next step, and carries it out:
//!
//! 1. `before_config`: before Juju's config is read. Waiting for magnum,
//!    fetch the resources, or go on.
//! 2. `next_step`: once the desired state is known. Report a rejected
//!    change again, record an adopted unit, look at the services
//!    (update-status), or apply the changes; and whether to read the peers.
//! 3. While applying: `rolling::turn` (wait for the turn, halted, go) or
//!    `others_deploying` (other units deploying, no relation yet), then the
//!    restart and its verdict (`health`): done, or roll back
//!    (`health::rolled_back_status`).
//! 4. `driver_failed` when the new driver does not install or load.
//!
//! Each is data in, data out, tested in this file.

use super::{Changes, Desired, DriverSource, Observed};
use crate::event::Event;
use crate::juju::Status;

/// What the charm remembers that bears on the next step (from
/// `state::State`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory<'a> {
    /// The fingerprint of the desired state last applied and healthy.
    pub applied: Option<&'a str>,
    /// A change rolled back or refused: its fingerprint and its status.
    pub rejected: Option<(&'a str, &'a Status)>,
    /// Files changed, the restart that makes them count not done yet.
    pub pending_restart: bool,
    /// Waiting for a restart turn (`restart_nonce`).
    pub waiting_turn: bool,
    /// The leader with a roll to move.
    pub leading: bool,
    /// The resources were fetched (and the last fetch did not fail).
    pub resources_fetched: bool,
}

/// Hooks after which Juju shows a status of its own (`maintenance:
/// installing charm software` before install, `unknown` after a start with
/// none), or the kept copy may be stale (a forced removal keeps
/// /var/lib/magnum-capi): the status and the application version are set
/// whatever the copy says.
pub fn forget_status(event: &Event) -> bool {
    matches!(
        event,
        Event::Install | Event::Start | Event::UpgradeCharm | Event::LeaderElected
    )
}

/// Start `config-get` (and `secret-get` of the secret named last time)
/// while the unit is observed? On a unit the charm converged before, on
/// every hook but update-status (which reads the config only on drift).
pub fn prefetch(event: &Event, mem: &Memory) -> bool {
    mem.applied.is_some() && *event != Event::UpdateStatus
}

/// Before the config is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Before {
    /// Magnum is not on this machine yet: report, do nothing else.
    Wait(Status),
    /// Fetch and stage the Juju resources, then go on.
    FetchResources,
    /// Go on to the config.
    Config,
}

/// Resources change only through attach-resource, which fires
/// upgrade-charm: fetched then, at install, and when never fetched or the
/// last fetch failed.
pub fn before_config(event: &Event, o: &Observed, mem: &Memory) -> Before {
    if let Some(waiting) = super::principal_missing(o) {
        return Before::Wait(waiting);
    }
    if matches!(event, Event::Install | Event::UpgradeCharm) || !mem.resources_fetched {
        return Before::FetchResources;
    }
    Before::Config
}

/// The hook's step once the desired state and the changes are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Read the restart relation (and, as leader, move the roll) first:
    /// only when there is a restart to make or a roll to follow.
    pub peers: bool,
    /// The unit is as desired but a hook died after writing, before the
    /// restart that makes the files count: this step makes that restart.
    pub owed_restart: bool,
    pub then: Then,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    /// This very change was rolled back or refused before: report it again,
    /// try nothing (upgrade-charm retries it).
    Rejected(Status),
    /// The unit is as desired. `record`: it becomes the applied state and
    /// the last good (adopted, or an older state file). `check_services`:
    /// update-status looks at the services; else report ready.
    AsDesired { record: bool, check_services: bool },
    /// Change the unit.
    Apply(Changes),
}

/// The next step, from the event, the desired state, the difference the
/// plan found and the charm's memory. A hook that died after writing but
/// before its restart owes that restart: it is made now.
pub fn next_step(event: &Event, desired: &Desired, changes: Changes, mem: &Memory) -> Step {
    let fingerprint = desired.fingerprint();
    let owed_restart = changes.is_empty() && mem.pending_restart;
    let then = match mem.rejected {
        Some((rejected, status)) if rejected == fingerprint && *event != Event::UpgradeCharm => {
            Then::Rejected(status.clone())
        }
        _ => {
            let changes = if owed_restart {
                Changes {
                    daemon_reload: true,
                    restart: true,
                    ..Changes::default()
                }
            } else {
                changes
            };
            if changes.is_empty() {
                Then::AsDesired {
                    record: mem.applied != Some(fingerprint.as_str()),
                    check_services: *event == Event::UpdateStatus,
                }
            } else {
                Then::Apply(changes)
            }
        }
    };
    let restart = matches!(&then, Then::Apply(c) if c.restart);
    let rejected = matches!(then, Then::Rejected(_));
    let peers = !rejected && (event.peer_news() || mem.leading || restart || mem.waiting_turn);
    Step {
        peers,
        owed_restart: owed_restart && !rejected,
        then,
    }
}

/// No peer in the restart relation, yet Juju is bringing up other units of
/// this application (goal-state's units, and the principals this
/// application is subordinate to): during install the relation is not in
/// the hook's context at all, and until they join it lists none of them.
/// A bundle deploy onto running magnum units would otherwise restart all
/// of them at once. Not empty: the restart waits for the roll
/// (`deferred_status`).
pub fn others_deploying(me: &str, principal: &str, units: &[String], principals: &[String]) -> Vec<String> {
    units
        .iter()
        .filter(|u| *u != me)
        .cloned()
        .chain(
            principals
                .iter()
                .filter(|p| *p != principal)
                .map(|p| format!("the magnum-capi unit on {p}")),
        )
        .collect()
}

/// The status while a restart waits for the units Juju is bringing up.
pub fn deferred_status(others: &[String]) -> Status {
    Status::waiting(format!(
        "restart queued: {} deploying too, magnum units restart one at a time once they join; new config written, takes effect at this unit's turn",
        others.join(", ")
    ))
}

/// pip's `--force-reinstall`: the desired version is the one installed
/// (new bytes, same version: a new wheel was attached).
pub fn reinstall(o: &Observed, d: &Desired) -> bool {
    o.driver_version.as_deref() == Some(d.driver_version.as_str())
}

/// The sha256 the charm records for the driver it installed, when known.
pub fn installed_sha256(d: &Desired) -> Option<String> {
    match &d.driver_source {
        DriverSource::Wheels { sha256 } => Some(sha256.clone()),
        DriverSource::Index { sha256, .. } => sha256.clone(),
    }
}

/// Where to put back `prev` from, after the desired driver did not load:
/// the same index, pinned to `prev`'s released wheel when known; or the
/// same wheels (the last good wheel is kept beside the staged ones).
pub fn put_back_source(d: &Desired, prev: &str) -> DriverSource {
    match &d.driver_source {
        DriverSource::Index { url, .. } => DriverSource::Index {
            url: url.clone(),
            sha256: super::compat::release(prev).map(|r| r.wheel_sha256.to_string()),
        },
        wheels => wheels.clone(),
    }
}

/// The driver to put back after the desired one did not load: the one the
/// services run, when there is one and it is another version.
pub fn put_back_version<'a>(o: &'a Observed, d: &Desired) -> Option<&'a str> {
    o.driver_version.as_deref().filter(|v| *v != d.driver_version)
}

/// The status when pip could not install the desired driver (the unit is
/// unchanged).
pub fn pip_failed_status(error: &str) -> Status {
    Status::blocked(format!(
        "{error}; fix the index or juju config magnum-capi driver-version=<version>"
    ))
}

/// The status when the installed driver does not load; `put_back_failed`:
/// the version that could not be put back, and why.
pub fn driver_failed_status(problem: &str, put_back_failed: Option<&str>) -> Status {
    let put_back = put_back_failed
        .map(|prev| format!(" (and magnum-capi-helm {prev} could not be put back: the next hook retries)"))
        .unwrap_or_default();
    Status::blocked(format!(
        "{problem}{put_back}; fix: juju config magnum-capi driver-version=<a working version>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{desired_for_tests, observed_magnum};

    fn mem() -> Memory<'static> {
        Memory {
            resources_fetched: true,
            ..Memory::default()
        }
    }

    fn write() -> Changes {
        Changes {
            writes: vec![],
            fix_conf_d: true,
            ..Changes::default()
        }
    }

    fn restart() -> Changes {
        Changes {
            daemon_reload: true,
            restart: true,
            ..Changes::default()
        }
    }

    #[test]
    fn before_the_config_wait_for_magnum_then_fetch_when_due() {
        let o = observed_magnum();
        assert_eq!(before_config(&Event::ConfigChanged, &o, &mem()), Before::Config);
        assert_eq!(before_config(&Event::Install, &o, &mem()), Before::FetchResources);
        assert_eq!(before_config(&Event::UpgradeCharm, &o, &mem()), Before::FetchResources);
        let never = Memory::default();
        assert_eq!(before_config(&Event::UpdateStatus, &o, &never), Before::FetchResources);
        let bare = Observed::default();
        assert!(
            matches!(before_config(&Event::Install, &bare, &mem()), Before::Wait(s) if s.message.contains("juju integrate magnum-capi magnum"))
        );
    }

    #[test]
    fn status_and_prefetch_by_event() {
        assert!(forget_status(&Event::Install));
        assert!(forget_status(&Event::LeaderElected));
        assert!(!forget_status(&Event::ConfigChanged));
        let applied = Memory {
            applied: Some("f"),
            ..mem()
        };
        assert!(prefetch(&Event::ConfigChanged, &applied));
        assert!(!prefetch(&Event::UpdateStatus, &applied));
        assert!(!prefetch(&Event::ConfigChanged, &mem()));
    }

    #[test]
    fn a_rejected_change_is_reported_again_until_upgrade_charm() {
        let d = desired_for_tests();
        let fp = d.fingerprint();
        let status = Status::blocked("restart unhealthy, rolled back");
        let m = Memory {
            rejected: Some((&fp, &status)),
            ..mem()
        };
        let step = next_step(&Event::ConfigChanged, &d, write(), &m);
        assert_eq!(step.then, Then::Rejected(status.clone()));
        assert!(!step.peers, "a rejected change reads no peers");
        assert_eq!(
            next_step(&Event::UpgradeCharm, &d, write(), &m).then,
            Then::Apply(write())
        );
        // Another change (a new fingerprint) is tried.
        let other = Memory {
            rejected: Some(("another", &status)),
            ..mem()
        };
        assert_eq!(
            next_step(&Event::ConfigChanged, &d, write(), &other).then,
            Then::Apply(write())
        );
    }

    #[test]
    fn nothing_to_change_records_an_adopted_unit_and_looks_at_services_on_update_status() {
        let d = desired_for_tests();
        let fp = d.fingerprint();
        let fresh = next_step(&Event::ConfigChanged, &d, Changes::default(), &mem());
        assert_eq!(
            fresh,
            Step {
                peers: false,
                owed_restart: false,
                then: Then::AsDesired {
                    record: true,
                    check_services: false
                }
            }
        );
        let applied = Memory {
            applied: Some(&fp),
            ..mem()
        };
        assert_eq!(
            next_step(&Event::UpdateStatus, &d, Changes::default(), &applied).then,
            Then::AsDesired {
                record: false,
                check_services: true
            }
        );
    }

    #[test]
    fn a_restart_owed_by_a_dead_hook_is_made_and_reads_the_peers() {
        let d = desired_for_tests();
        let owed = Memory {
            pending_restart: true,
            ..mem()
        };
        let step = next_step(&Event::UpdateStatus, &d, Changes::default(), &owed);
        assert_eq!(step.then, Then::Apply(restart()));
        assert!(step.peers && step.owed_restart);
        // A real change with a restart still owed: that change is the step,
        // not the owed restart alone.
        assert!(!next_step(&Event::ConfigChanged, &d, write(), &owed).owed_restart);
        // A write without a restart reads no peers, unless a roll is on.
        assert!(!next_step(&Event::ConfigChanged, &d, write(), &mem()).peers);
        for m in [
            Memory { leading: true, ..mem() },
            Memory {
                waiting_turn: true,
                ..mem()
            },
        ] {
            assert!(next_step(&Event::ConfigChanged, &d, write(), &m).peers);
        }
        assert!(next_step(&Event::RestartRelationChanged, &d, Changes::default(), &mem()).peers);
    }

    #[test]
    fn a_lone_restart_waits_for_units_juju_is_bringing_up() {
        let me = "magnum-capi/0";
        assert!(others_deploying(me, "magnum/0", &[me.into()], &["magnum/0".into()]).is_empty());
        let others = others_deploying(
            me,
            "magnum/0",
            &[me.into(), "magnum-capi/1".into()],
            &["magnum/0".into(), "magnum/2".into()],
        );
        assert_eq!(others, ["magnum-capi/1", "the magnum-capi unit on magnum/2"]);
        let s = deferred_status(&others);
        assert_eq!(s.kind, crate::juju::StatusKind::Waiting);
        assert!(
            s.message
                .starts_with("restart queued: magnum-capi/1, the magnum-capi unit on magnum/2 deploying too"),
            "{}",
            s.message
        );
    }

    #[test]
    fn driver_install_details() {
        let d = desired_for_tests();
        let mut o = observed_magnum();
        assert!(!reinstall(&o, &d));
        assert_eq!(put_back_version(&o, &d), None);
        o.driver_version = Some(d.driver_version.clone());
        assert!(reinstall(&o, &d));
        assert_eq!(put_back_version(&o, &d), None, "nothing else to put back");
        o.driver_version = Some("1.1.0".into());
        assert_eq!(put_back_version(&o, &d), Some("1.1.0"));
        match put_back_source(&d, "1.1.0") {
            DriverSource::Index { sha256, .. } => assert_eq!(
                sha256.as_deref(),
                crate::plan::compat::release("1.1.0").map(|r| r.wheel_sha256)
            ),
            other => panic!("{other:?}"),
        }
        let wheels = Desired {
            driver_source: DriverSource::Wheels { sha256: "ab".into() },
            ..d.clone()
        };
        assert_eq!(put_back_source(&wheels, "1.1.0"), wheels.driver_source);
        assert_eq!(installed_sha256(&wheels).as_deref(), Some("ab"));
        assert!(driver_failed_status("no entry point", Some("1.1.0"))
            .message
            .contains("(and magnum-capi-helm 1.1.0 could not be put back: the next hook retries); fix:"));
        assert!(pip_failed_status("pip failed")
            .message
            .ends_with("driver-version=<version>"));
    }
}
