//! Routing: every event Juju can send reaches the right handler, unknown
//! hooks are a quiet no-op, unknown actions fail through action-fail.

mod support;

use serde_json::json;
use support::{Unit, CHARM, KUBECONFIG};

/// Hooks that converge: on a unit without magnum they only report waiting.
const CONVERGING: [&str; 12] = [
    "install",
    "config-changed",
    "upgrade-charm",
    "secret-changed",
    "start",
    "update-status",
    "juju-info-relation-joined",
    "juju-info-relation-changed",
    "restart-relation-joined",
    "restart-relation-changed",
    "restart-relation-departed",
    "leader-elected",
];

#[test]
fn every_converging_hook_waits_for_magnum_on_an_empty_unit() {
    for hook in CONVERGING {
        let unit = Unit::empty();
        // Nothing to observe through Juju before the principal is here.
        unit.hook(hook).expect_spawned(&["status-set"]).run();
        let (kind, message) = unit.status();
        assert_eq!(kind, "waiting", "{hook}");
        assert!(
            message.contains("juju integrate magnum-capi magnum"),
            "{hook}: {message}"
        );
        // And nothing is written to the unit.
        assert!(unit.snapshot().is_empty(), "{hook} wrote {:?}", unit.snapshot());
    }
}

#[test]
fn stop_remove_and_departed_run_without_touching_the_unit() {
    for hook in ["stop", "remove", "juju-info-relation-departed"] {
        let unit = Unit::new();
        unit.kubeconfig(KUBECONFIG);
        let run = unit.hook(hook).expect_unchanged().run();
        assert!(run.calls.is_empty(), "{hook} spawned {:?}", run.spawned());
        assert!(run.stdout.contains(hook), "{hook} logs a line: {}", run.stdout);
    }
}

#[test]
fn an_unknown_hook_exits_zero_with_one_log_line() {
    let unit = Unit::new();
    let run = unit.hook("collect-metrics").run();
    assert!(run.calls.is_empty());
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    assert!(run.stdout.contains("collect-metrics"));
}

#[test]
fn an_unknown_action_fails_through_action_fail() {
    let unit = Unit::new();
    unit.action("frobnicate", json!({}))
        .expect_spawned(&["action-fail"])
        .expect_action_failed("frobnicate")
        .expect_action_failed("verify")
        .expect_action_failed("smoketest")
        .run();
}

#[test]
fn known_actions_reach_their_handler() {
    for action in ["verify", "smoketest"] {
        let unit = Unit::new();
        let run = unit.action(action, json!({})).run();
        assert!(!run.calls.is_empty(), "{action} ran nothing");
        assert!(
            run.calls.iter().all(|c| c.tool.starts_with("action-")
                || [
                    "config-get",
                    "secret-get",
                    "systemctl",
                    "journalctl",
                    "python3",
                    "helm",
                    "dbus"
                ]
                .contains(&c.tool.as_str())),
            "{action}: {:?}",
            run.spawned()
        );
    }
}

#[test]
fn a_dispatch_path_that_is_not_a_hook_or_action_is_an_error() {
    let unit = Unit::new();
    let run = unit.dispatch("bogus").expect_fail().run();
    assert!(run.stderr.contains("JUJU_DISPATCH_PATH"), "{}", run.stderr);
}

#[test]
fn old_agents_run_hooks_by_their_link_name() {
    // Juju before dispatch runs hooks/<hook> directly: a link to the binary.
    let unit = Unit::empty();
    let hooks = unit.root().parent().unwrap().join("charm/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::os::unix::fs::symlink(CHARM, hooks.join("update-status")).unwrap();
    unit.dispatch("").program(&hooks.join("update-status")).run();
    assert_eq!(unit.status().0, "waiting");
}
