//! A refused or failed change costs a working unit nothing: after it, the
//! config the unit already runs writes nothing, runs no pip and restarts
//! nothing (issue 23, item 1). One story per kind of change.

mod support;

use serde_json::json;
use support::{Pip, Unhealthy, Unit, KUBECONFIG, SECRET_URI};

fn converged() -> Unit {
    let unit = Unit::new();
    unit.kubeconfig(KUBECONFIG)
        .pip(Pip::index_versions(&["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]));
    unit.hook("install").expect_active().run();
    unit
}

/// Converged; `break_it` makes a change that fails or is refused on `hook`;
/// `mend` puts the applied config back, and `hook` again must do nothing to
/// the unit: no file written, no pip, no restart.
#[track_caller]
fn costs_nothing(break_it: impl FnOnce(&Unit), hook: &str, want: &str, mend: impl FnOnce(&Unit)) {
    let unit = converged();
    let before = unit.snapshot();
    break_it(&unit);
    unit.hook(hook).expect_blocked(want).run();
    // (A rolled-back restart restarted magnum in that hook: starts count
    // from here.)
    let started: Vec<_> = ["magnum-api", "magnum-conductor"]
        .iter()
        .map(|s| unit.systemd(s).start)
        .collect();

    mend(&unit);
    let again = unit.hook(hook).expect_active().run();
    for tool in [
        "pip3 install",
        "pip3 uninstall",
        "systemctl restart",
        "systemctl daemon-reload",
    ] {
        assert!(
            !again.called(tool),
            "{want}: the applied config again ran {tool}: {:?}",
            again.spawned()
        );
    }
    assert_eq!(unit.snapshot(), before, "{want}: the unit's files changed");
    let now: Vec<_> = ["magnum-api", "magnum-conductor"]
        .iter()
        .map(|s| unit.systemd(s).start)
        .collect();
    assert_eq!(now, started, "{want}: magnum was restarted");
}

#[test]
fn a_driver_version_the_index_lacks() {
    costs_nothing(
        |u| {
            u.config("driver-version", "9.9.9");
        },
        "config-changed",
        "9.9.9",
        |u| {
            u.config("driver-version", "1.4.0");
        },
    );
}

#[test]
fn an_index_that_fails() {
    costs_nothing(
        |u| {
            u.config("pip-index-url", "https://mirror.example/simple");
            u.config("driver-version", "1.3.0");
            u.pip(Pip::failing("ERROR: Could not find a version that satisfies the requirement magnum-capi-helm==1.3.0 (from versions: none)"));
        },
        "config-changed",
        "Could not find a version",
        |u| {
            u.unset_config("pip-index-url");
            u.config("driver-version", "1.4.0");
            u.pip(Pip::default());
        },
    );
}

#[test]
fn a_driver_that_does_not_load() {
    costs_nothing(
        |u| {
            u.config("driver-version", "1.3.0");
            u.pip(Pip::no_entry_point("1.3.0"));
        },
        "config-changed",
        "entry point",
        |u| {
            u.config("driver-version", "1.4.0");
            u.pip(Pip::default());
        },
    );
}

#[test]
fn a_bad_kubeconfig_rotation() {
    costs_nothing(
        |u| {
            u.secret(
                SECRET_URI,
                json!({"kubeconfig": KUBECONFIG.replace("https://", "http://")}),
            );
        },
        "secret-changed",
        "https",
        |u| {
            u.secret(SECRET_URI, json!({"kubeconfig": KUBECONFIG}));
        },
    );
}

#[test]
fn a_bad_option() {
    costs_nothing(
        |u| {
            u.config("namespace-prefix", "x\n[DEFAULT]\ndebug = true");
        },
        "config-changed",
        "line break",
        |u| {
            u.unset_config("namespace-prefix");
        },
    );
}

#[test]
fn an_unhealthy_restart_rolled_back() {
    costs_nothing(
        |u| {
            u.unhealthy_if(Unhealthy {
                path: "/etc/magnum/magnum.conf.d/99-capi.conf".into(),
                contains: "namespace_prefix = broken".into(),
                journal: vec![
                    "oslo_config.cfg.ConfigFileValueError: Value for option namespace_prefix is not valid".into(),
                ],
                refuse: false,
            });
            u.config("namespace-prefix", "broken");
        },
        "config-changed",
        "rolled back",
        |u| {
            u.unset_config("namespace-prefix");
        },
    );
}
