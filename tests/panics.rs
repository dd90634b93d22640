//! A bug that panics still gives the operator a result (issue 23, item 3):
//! an action ends in action-fail with a message, a hook leaves a status
//! saying what failed, neither repeats the panic's own text (it may quote a
//! secret), and the next good hook sets the status again.
#![cfg(feature = "faults")]

mod support;

use serde_json::json;
use support::{Unit, KUBECONFIG};

const CANARY: &str = "secret-canary-0042";

#[test]
fn a_panic_in_verify_ends_in_action_fail() {
    let unit = Unit::new().kubeconfig(KUBECONFIG);
    unit.hook("install").assert_ok();
    unit.set("action_params", json!({}));
    let run = unit.dispatch(
        "actions/verify",
        &[
            ("JUJU_ACTION_NAME", "verify"),
            ("JUJU_ACTION_UUID", "1"),
            ("MAGNUM_CAPI_PANIC", "verify"),
        ],
    );
    assert_ne!(run.code, 0, "a panicking action must not exit 0");
    let failed = unit.action_failed().expect("action-fail was called");
    assert!(
        failed.contains("internal error in action verify at src/actions/verify.rs:"),
        "{failed}"
    );
    assert!(
        !failed.contains(CANARY),
        "the panic's text reached action-fail: {failed}"
    );
    assert!(
        !run.stderr.contains(CANARY),
        "the panic's text reached the log: {}",
        run.stderr
    );
}

#[test]
fn a_panic_in_a_hook_leaves_a_status_and_the_next_hook_sets_it_again() {
    let unit = Unit::new().kubeconfig(KUBECONFIG);
    unit.hook("install").assert_ok();
    assert_eq!(unit.status().0, "active");
    let run = unit.dispatch("hooks/config-changed", &[("MAGNUM_CAPI_PANIC", "converge")]);
    assert_ne!(run.code, 0);
    let (kind, message) = unit.status();
    assert_eq!(kind, "blocked");
    assert!(
        message.contains("internal error in hook config-changed at src/converge.rs:"),
        "{message}"
    );
    assert!(!message.contains(CANARY) && !run.stderr.contains(CANARY));
    assert!(!message.contains('\n'));

    // The unit's own copy of its status is stale now: the next hooks,
    // update-status's lean path included, set it again.
    let again = unit.tick().hook("update-status");
    again.assert_ok();
    assert_eq!(unit.status().0, "active", "{:?}", unit.status());
    assert!(again.called("status-set"), "{:?}", again.spawned());
    let lean = unit.tick().hook("update-status");
    lean.assert_ok();
    assert!(lean.spawned().is_empty(), "{:?}", lean.spawned());
}
