//! magnum-capi: a Juju subordinate charm that grafts the magnum-capi-helm
//! driver onto a Magnum unit. Juju runs `dispatch` (this binary) with
//! `JUJU_DISPATCH_PATH`; we route it to an event, run it and exit.
//!
//! The routing is `main` below: update-status on a healthy unit ends at
//! `converge::healthy_unchanged`; converging hooks go to `converge::run`
//! (the shell: facts in, `plan::step` decides, `apply` changes); stop and
//! remove to `lifecycle::restore`; actions to `actions::run`. See lib.rs
//! for where each kind of code lives.

use magnum_capi::{actions, converge, event, juju, lifecycle, log, unit};

use std::path::Path;
use std::process::ExitCode;

/// A bump arena first (src/arena.rs): a hook's few hundred small blocks
/// without musl's mmap/munmap churn.
#[global_allocator]
static ALLOCATOR: magnum_capi::arena::Arena = magnum_capi::arena::Arena;

use event::Event;
use juju::HookTools;
use unit::Root;

/// `JUJU_DISPATCH_PATH`, or for agents that run `hooks/<hook>` directly
/// (a link to this binary), the last two components of argv[0].
fn dispatch_path() -> String {
    if let Ok(p) = std::env::var("JUJU_DISPATCH_PATH") {
        if !p.is_empty() {
            return p;
        }
    }
    let argv0 = std::env::args().next().unwrap_or_default();
    let p = Path::new(&argv0);
    let parent = p
        .parent()
        .and_then(Path::file_name)
        .and_then(|s| s.to_str())
        .unwrap_or("");
    let name = p.file_name().and_then(|s| s.to_str()).unwrap_or("");
    format!("{parent}/{name}")
}

fn main() -> ExitCode {
    let root = Root::from_env();
    let event = Event::from_dispatch_path(&dispatch_path());
    // A bug still ends in action-fail or a status (never the panic's text).
    magnum_capi::panic::install(&root, &event);
    // Most hooks a unit ever runs: update-status on a healthy unit. Checked
    // before anything else is set up; it spawns nothing and writes nothing.
    if event == Event::UpdateStatus && converge::healthy_unchanged(&root) {
        return ExitCode::SUCCESS;
    }
    let action = matches!(event, Event::Action(_) | Event::UnknownAction(_));
    log::init(&root, action);
    let tools = HookTools::default();
    let result = match &event {
        Event::Action(action) => actions::run(*action, &root, &tools),
        Event::UnknownAction(name) => actions::unknown(name, &tools),
        Event::UnknownHook(name) => {
            tracing::info!("hook {name} has no handler in magnum-capi: nothing to do");
            Ok(())
        }
        Event::Invalid(path) => Err(anyhow::anyhow!(
            "JUJU_DISPATCH_PATH={path:?} is neither hooks/<hook> nor actions/<action>: run this through Juju's dispatch"
        )),
        hook if hook.converges() => converge::run(hook, &root, &tools),
        Event::Stop | Event::Remove => lifecycle::restore(&event, &root, &tools),
        other => {
            tracing::info!("{other}: nothing to undo in this revision");
            Ok(())
        }
    };
    let code = match &result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            magnum_capi::note!(error: "{event} failed: {e:#}");
            ExitCode::FAILURE
        }
    };
    // The operator's lines of a hook that changed something: one juju-log.
    if !action {
        log::flush();
    }
    code
}
