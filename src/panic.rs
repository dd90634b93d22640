//! A bug that panics still ends with a result the operator sees (issue 23,
//! item 3). The release charm aborts on panic (`panic = "abort"`), but the
//! panic hook runs first: an action gets `action-fail`, a hook a blocked
//! status, both saying where it failed. The panic's own message is never
//! shown or logged: it may quote the data being handled (a slice of a
//! secret), so only the source location is reported.

use std::process::{Command, Stdio};

use crate::event::Event;
use crate::plan::paths::STATUS_UNKNOWN;
use crate::unit::Root;

/// What the operator reads: one line, where, and what to do.
pub fn message(event: &Event, location: &str) -> String {
    format!(
        "magnum-capi internal error in {event} at {location} (details withheld, they may hold secret data); run it again, and if it repeats report it with `juju debug-log --include {unit}`",
        unit = std::env::var("JUJU_UNIT_NAME").unwrap_or_else(|_| "magnum-capi/0".into())
    )
}

/// Install the hook for this event. `juju run` shows `action-fail`'s
/// message; `juju status` the hook's status. A hook also marks its status
/// as unknown to the charm (STATUS_UNKNOWN), so the next hook sets its
/// status again instead of trusting the copy it keeps.
pub fn install(root: &Root, event: &Event) {
    let event = event.clone();
    let marker = root.path(STATUS_UNKNOWN);
    std::panic::set_hook(Box::new(move |info| {
        let location = info.location().map_or_else(
            || "an unknown place".to_string(),
            |l| format!("{}:{}", l.file(), l.line()),
        );
        let message = message(&event, &location);
        eprintln!("{message}");
        let run = |tool: &str, args: &[&str]| {
            let _ = Command::new(tool)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status();
        };
        if matches!(event, Event::Action(_) | Event::UnknownAction(_)) {
            run("action-fail", &[&message]);
        } else {
            if let Some(dir) = marker.parent() {
                if dir.is_dir() {
                    let _ = std::fs::write(&marker, b"");
                }
            }
            run("status-set", &["blocked", &message]);
        }
        run("juju-log", &["--log-level", "ERROR", &message]);
    }));
}

/// A panic on purpose, for tests (cargo feature `faults`): at the point
/// named in `MAGNUM_CAPI_PANIC`, with a message that quotes a canary the
/// report must not repeat.
#[cfg(feature = "faults")]
#[track_caller]
pub fn point(name: &str) {
    if std::env::var("MAGNUM_CAPI_PANIC").as_deref() == Ok(name) {
        panic!("injected panic at {name}: secret-canary-0042");
    }
}

#[cfg(not(feature = "faults"))]
#[inline(always)]
pub fn point(_name: &str) {}
