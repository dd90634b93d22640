//! A refused or failed change costs a working unit nothing: after it, the
//! config the unit already runs writes nothing, runs no pip and restarts
//! nothing (issue 23, item 1). One story per kind of change.

mod support;

use serde_json::json;
use support::{Unit, KUBECONFIG, SECRET_URI};

fn converged() -> Unit {
    let unit = Unit::new().kubeconfig(KUBECONFIG).with(
        "pip",
        json!({"index_versions": ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]}),
    );
    unit.hook("install").assert_ok();
    assert_eq!(unit.status().0, "active", "{:?}", unit.status());
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
    let run = unit.hook(hook);
    run.assert_ok();
    let (kind, message) = unit.status();
    assert_eq!(kind, "blocked", "{want}: {message}");
    assert!(message.contains(want), "{message:?} does not say {want:?}");
    // (A rolled-back restart restarted magnum in that hook: starts count
    // from here.)
    let started: Vec<_> = ["magnum-api", "magnum-conductor"]
        .iter()
        .map(|s| unit.service(s)["start"].clone())
        .collect();

    mend(&unit);
    let again = unit.hook(hook);
    again.assert_ok();
    assert_eq!(unit.status().0, "active", "{want}: {:?}", unit.status());
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
        .map(|s| unit.service(s)["start"].clone())
        .collect();
    assert_eq!(now, started, "{want}: magnum was restarted");
}

#[test]
fn a_driver_version_the_index_lacks() {
    costs_nothing(
        |u| u.set_config("driver-version", "9.9.9"),
        "config-changed",
        "9.9.9",
        |u| u.set_config("driver-version", "1.4.0"),
    );
}

#[test]
fn an_index_that_fails() {
    costs_nothing(
        |u| {
            u.set_config("pip-index-url", "https://mirror.example/simple");
            u.set_config("driver-version", "1.3.0");
            u.set("pip", json!({"fail": "ERROR: Could not find a version that satisfies the requirement magnum-capi-helm==1.3.0 (from versions: none)"}));
        },
        "config-changed",
        "Could not find a version",
        |u| {
            u.unset_config("pip-index-url");
            u.set_config("driver-version", "1.4.0");
            u.set("pip", json!({}));
        },
    );
}

#[test]
fn a_driver_that_does_not_load() {
    costs_nothing(
        |u| {
            u.set_config("driver-version", "1.3.0");
            u.set("pip", json!({"no_entry_point": "1.3.0"}));
        },
        "config-changed",
        "entry point",
        |u| {
            u.set_config("driver-version", "1.4.0");
            u.set("pip", json!({}));
        },
    );
}

#[test]
fn a_bad_kubeconfig_rotation() {
    costs_nothing(
        |u| {
            u.set_secret(
                SECRET_URI,
                json!({"kubeconfig": KUBECONFIG.replace("https://", "http://")}),
            )
        },
        "secret-changed",
        "https",
        |u| u.set_secret(SECRET_URI, json!({"kubeconfig": KUBECONFIG})),
    );
}

#[test]
fn a_bad_option() {
    costs_nothing(
        |u| u.set_config("namespace-prefix", "x\n[DEFAULT]\ndebug = true"),
        "config-changed",
        "line break",
        |u| u.unset_config("namespace-prefix"),
    );
}

#[test]
fn an_unhealthy_restart_rolled_back() {
    costs_nothing(
        |u| {
            u.set(
                "unhealthy_if",
                json!({"path": "/etc/magnum/magnum.conf.d/99-capi.conf", "contains": "namespace_prefix = broken", "journal": ["oslo_config.cfg.ConfigFileValueError: Value for option namespace_prefix is not valid"]}),
            );
            u.set_config("namespace-prefix", "broken");
        },
        "config-changed",
        "rolled back",
        |u| u.unset_config("namespace-prefix"),
    );
}
