//! A bug that panics still gives the operator a result (issue 23, item 3):
//! an action ends in action-fail with a message, a hook leaves a status
//! saying what failed, neither repeats the panic's own text (it may quote a
//! secret), and the next good hook sets the status again.
#![cfg(feature = "faults")]

mod support;

use serde_json::json;
use support::Unit;

const CANARY: &str = "secret-canary-0042";

#[test]
fn a_panic_in_verify_ends_in_action_fail() {
    let unit = Unit::installed();
    // A panicking action must not exit 0.
    let run = unit
        .action("verify", json!({}))
        .env(&[("MAGNUM_CAPI_PANIC", "verify")])
        .expect_fail()
        .expect_action_failed("internal error in action verify at src/actions/verify.rs:")
        .run();
    let failed = unit.action_failed().expect("action-fail was called");
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
    let unit = Unit::converged();
    let run = unit
        .hook("config-changed")
        .env(&[("MAGNUM_CAPI_PANIC", "converge")])
        .expect_fail()
        .expect_blocked("internal error in hook config-changed at src/converge.rs:")
        .run();
    let message = unit.status().1;
    assert!(!message.contains(CANARY) && !run.stderr.contains(CANARY));
    assert!(!message.contains('\n'));

    // The unit's own copy of its status is stale now: the next hooks,
    // update-status's lean path included, set it again.
    let again = unit.tick().hook("update-status").expect_active().run();
    assert!(again.called("status-set"), "{:?}", again.spawned());
    unit.tick().hook("update-status").expect_no_spawn().run();
}
