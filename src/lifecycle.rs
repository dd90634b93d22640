//! A charm lives longer than one install: before its first change it
//! records the unit as it was (runbook adoption included), and `stop` /
//! `remove` put that back: files, directories, the driver, then a restart of
//! the services if anything changed, and the charm's state is forgotten.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;

use crate::apply::{files, pip, systemd};
use crate::event::Event;
use crate::juju::{HookTools, Status};
use crate::plan::paths::{CAPI_CONF, HELM, KUBECONFIG, SERVICES, STATE_DIR};
use crate::plan::render::strip_block;
use crate::plan::settings::{Proxy, Settings};
use crate::plan::{is_runbook_override, managed_dirs, Observed};
use crate::state::{store_files, Prestate, State};
use crate::unit::observe::{dir_facts, observe, pip_version, site_dirs};
use crate::unit::{services, Root};

/// The unit before the charm's first change; its files are copied into the
/// state directory. Logs what it takes over from a hand-made setup.
pub fn capture(root: &Root, o: &Observed) -> Result<Prestate> {
    let ids = (o.root_uid, o.root_gid);
    let stored = store_files(root, ids, crate::plan::paths::PRESTATE_DIR, &o.files)?;
    let mut dirs = BTreeMap::new();
    for d in managed_dirs() {
        let facts = dir_facts(&root.path(&d))?;
        dirs.insert(d, facts);
    }
    let services = services::show(root, &SERVICES)
        .map(|states| {
            states
                .into_iter()
                .map(|s| (s.id.trim_end_matches(".service").to_string(), s.active_state))
                .collect()
        })
        .unwrap_or_default();
    let mut adopted = Vec::new();
    for (path, facts) in &o.files {
        let Some(f) = facts else { continue };
        let text = String::from_utf8_lossy(&f.content);
        if path.ends_with("/override.conf") {
            if is_runbook_override(&text) {
                adopted.push(format!("the runbook's drop-in {path} (replaced by the charm's)"));
            }
        } else if path == CAPI_CONF {
            let note = if text.contains("enabled_drivers") {
                " (its enabled_drivers is not a magnum option)"
            } else {
                ""
            };
            adopted.push(format!("a hand-made {CAPI_CONF}{note}"));
        } else if path == KUBECONFIG {
            adopted.push(format!("an existing {KUBECONFIG}"));
        }
    }
    if let Some(v) = &o.driver_version {
        adopted.push(format!("magnum-capi-helm {v} already pip-installed"));
    }
    for a in &adopted {
        crate::note!("adopting {a}; remove puts it back");
    }
    Ok(Prestate {
        files: stored,
        dirs,
        driver: o.driver_version.clone(),
        driver_known: true,
        services,
        adopted,
        helm_existed: root.path(HELM).exists(),
    })
}

/// `stop` and `remove`: put the unit back as it was, then forget.
pub fn restore(event: &Event, root: &Root, tools: &HookTools) -> Result<()> {
    let state = State::load(root)?;
    let Some(pre) = state.prestate.clone() else {
        tracing::info!("{event}: nothing to restore, magnum-capi changed nothing on this unit");
        return forget(root);
    };
    let o = observe(root)?;
    let mut before = state.prestate_files(root)?;
    // A prestate recorded by an older charm did not list these.
    for s in SERVICES {
        before.entry(crate::plan::paths::env_default(s)).or_insert(None);
    }
    let mut changed = false;
    let mut dropins_changed = false;
    let mut working = false;
    let mut announce = |tools: &HookTools| -> Result<()> {
        if !working {
            working = true;
            tools.status_set(&Status::maintenance(
                "removing magnum-capi: restoring the unit as it was",
            ))?;
        }
        Ok(())
    };
    for (path, want) in &before {
        let now = o.files.get(path).cloned().flatten();
        // The packaging's /etc/default files are shared: only the charm's
        // block comes out (the operator may have edited the rest since),
        // and a file the charm made, with nothing else in it, goes.
        let want = if path.starts_with("/etc/default/") {
            &now.as_ref()
                .map(|f| crate::plan::FileFacts {
                    content: strip_block(&String::from_utf8_lossy(&f.content)).into_bytes(),
                    ..f.clone()
                })
                .filter(|f| want.is_some() || !f.content.iter().all(u8::is_ascii_whitespace))
        } else {
            want
        };
        if now.as_ref() == want.as_ref() {
            continue;
        }
        announce(tools)?;
        let target = root.path(path);
        match want {
            Some(f) => {
                crate::note!("restoring {path}");
                files::write_atomic(&target, &f.content, f.mode, f.uid, f.gid)?;
            }
            None => {
                crate::note!("removing {path}");
                files::remove(&target)?;
            }
        }
        changed = true;
        dropins_changed |= path.starts_with("/etc/systemd/");
    }
    // Directories the charm created go when empty; ones that existed get
    // their owner and mode back.
    for (dir, meta) in &pre.dirs {
        let target = root.path(dir);
        match (meta, dir_facts(&target)?) {
            (None, Some(_)) if std::fs::remove_dir(&target).is_ok() => {
                tracing::info!("removed {dir}");
                changed = true;
            }
            (Some(m), Some(now)) if m.mode != 0 && (now.mode, now.uid, now.gid) != (m.mode, m.uid, m.gid) => {
                files::ensure_dir(&target, m.mode, m.uid, m.gid)?;
            }
            _ => {}
        }
    }
    // The driver: uninstalled only if the charm installed it.
    if pre.driver_known && pre.driver != o.driver_version {
        announce(tools)?;
        let sites = site_dirs(root);
        let pip_v = pip_version(&sites);
        let args = match &pre.driver {
            None => pip::uninstall_args(pip_v.as_deref()),
            Some(v) => pip::install_args(v, None, pip_v.as_deref()),
        };
        let proxy = Proxy::from_env(|k| std::env::var(k).ok()).unwrap_or_default();
        match pip::install(&args, &proxy.vars()) {
            Ok(()) => changed = true,
            Err(e) => tracing::warn!("could not put the driver back as it was: {e:#}"),
        }
    }
    // helm: taken away if the charm brought it.
    if state.helm.is_some() && !pre.helm_existed && files::remove(&root.path(HELM))? {
        crate::note!("removed {HELM} (installed from the helm resource)");
    }
    if dropins_changed {
        systemd::daemon_reload()?;
    }
    if changed {
        // Restart what runs (or ran before), and watch it come back.
        let running: Vec<&str> = SERVICES
            .iter()
            .copied()
            .filter(|s| pre.services.get(*s).is_none_or(|a| a != "inactive"))
            .collect();
        if !running.is_empty() {
            let since = services::journal_mark(root, &running);
            systemd::reset_failed(&running);
            systemd::restart(&running)?;
            let settle = tools
                .config_get()
                .ok()
                .and_then(|raw| Settings::parse(&raw).ok())
                .map_or(10, |s| s.restart_settle_seconds);
            if let Some(v) = services::settle(root, &running, Duration::from_secs(settle), &since)? {
                crate::note!(error: "after restoring the unit: {}; fix: {}", v.problem, v.fix);
            }
        }
    }
    tracing::info!("{event}: the unit is as it was before magnum-capi");
    forget(root)
}

/// Drop the charm's state directory: a later install starts afresh.
fn forget(root: &Root) -> Result<()> {
    let dir = root.path(STATE_DIR);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", dir.display()))?;
    }
    Ok(())
}
