//! The converging hooks: observe the unit, compute the desired state, apply
//! only the difference, check health, roll back, report. Data flows one way:
//! event -> observe -> plan -> apply -> status.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::apply::{files, health, pip, systemd};
use crate::event::Event;
use crate::juju::{HookTools, Status, StatusKind};
use crate::lifecycle;
use crate::peers::{self, Peers};
use crate::plan::paths::{CONF_D, HELM, LAST_GOOD_WHEELS, REQUIREMENTS, SERVICES, STAGED_HELM, STAGED_WHEELS};
use crate::plan::rolling;
use crate::plan::settings::{Proxy, Settings};
use crate::plan::{self, Changes, Desired, DirFacts, DriverSource, FileFacts, Observed, ResourceFacts, SecretInput};
use crate::state::{file_stat, Applied, HelmRecord, Meta, Rejected, State};
use crate::supply;
use crate::unit::observe::{observe, pip_version, site_dirs};
use crate::unit::watch::Watch;
use crate::unit::Root;

/// update-status on a healthy unit, as lean as it gets: the state file,
/// a stat of every watched path, one D-Bus exchange with systemd. True when
/// all of it says "as applied, services up": nothing to do, nothing to log.
/// Anything else (no watch yet, a changed stamp, a service down, the bus
/// unreachable) is false, and the full hook runs. Called before logging is
/// set up: the healthy path neither logs nor spawns.
pub fn healthy_unchanged(root: &Root) -> bool {
    use crate::apply::dbus;
    // Where systemd keeps invocation links, the stamps show any restart
    // since the last look, so one call for the states is enough; else ask
    // NRestarts too. Ask first: systemd answers while the state is read
    // and the stamps are checked here.
    let links = SERVICES
        .iter()
        .all(|s| crate::unit::watch::stamp(&root.path(crate::plan::paths::invocation_link(s))).is_some());
    let detail = if links {
        dbus::Detail::States
    } else {
        dbus::Detail::Glance
    };
    let Ok(asked) = dbus::ask(root, &SERVICES, detail) else {
        return false;
    };
    // A unix socket write wakes its reader "in sync" (the scheduler pulls
    // dbus-daemon onto this CPU, expecting the writer to sleep): let it
    // run now, so it forwards the question while the stats run, not after.
    // Measured on a real unit: 1.22x -> 1.12x an empty /bin/sh dispatch.
    std::thread::yield_now();
    let Some(glance) = crate::state::Glance::load(root) else {
        return false;
    };
    let Some(watch) = &glance.watch else {
        return false;
    };
    if !glance.settled() || !watch.unchanged(root) {
        return false;
    }
    match asked.answer() {
        Ok(states) => services_steady(&states, &glance.n_restarts),
        Err(_) => false,
    }
}

/// Up, and not restarted by systemd since the last look (a service can
/// read `active` between the crashes of a restart loop).
fn services_steady(states: &[systemd::ServiceState], seen: &BTreeMap<String, u32>) -> bool {
    states.iter().zip(SERVICES).all(|(s, name)| {
        s.active_state == "active"
            && s.sub_state != "auto-restart"
            && s.n_restarts <= seen.get(name).copied().unwrap_or(0)
    })
}

/// Run a converging hook and report its status.
pub fn run(event: &Event, root: &Root, tools: &HookTools) -> Result<()> {
    let mut state = State::load(root)?;
    // Juju sets statuses of its own around these hooks (`maintenance:
    // installing charm software` before install, `unknown` after a start
    // with none), and the copy kept here can outlive the unit it was set
    // for (a forced removal keeps /var/lib/magnum-capi): these always set
    // the status and the application version. update-status stays lean.
    if matches!(
        event,
        Event::Install | Event::Start | Event::UpgradeCharm | Event::LeaderElected
    ) {
        state.status = None;
        state.app_version = None;
    }
    // A unit the charm has converged before: this hook will read the
    // config (update-status only if it finds drift). Start config-get now;
    // it runs while the unit is observed.
    if state.applied.is_some() && *event != Event::UpdateStatus {
        crate::juju::prefetch_config();
        // And the secret it named last time, alongside (two CPUs: the two
        // tools run at once instead of one after the other).
        if let Some(uri) = &state.secret_uri {
            crate::juju::prefetch_secret(uri, refresh_for(event, uri));
        }
    }
    let mut observed = observe(root)?;
    state.complete(root, &mut observed);
    let ids = (observed.root_uid, observed.root_gid);
    // A converged unit whose stamps went stale (or were never taken):
    // update-status reads it in full, still without spawning, and stamps it
    // again so the next one is lean.
    if *event == Event::UpdateStatus && still_converged(root, &observed, &state)? {
        tracing::debug!("{event}: unit as applied, services up");
        state.watch = Some(observed.watch);
        if observed.magnum_gid.is_some() {
            state.save(root, ids)?;
        }
        return Ok(());
    }
    let status = match converge(event, root, tools, &observed, &mut state) {
        Ok(status) => status,
        Err(e) => {
            tracing::error!("{event}: {e:#}");
            Status::blocked(format!("{e:#}"))
        }
    };
    crate::log::ending(format!("{event}: {status}"));
    if state.status.as_ref() != Some(&status) {
        tools.status_set(&status)?;
        state.status = Some(status);
        // Set again after a panic's own status (src/panic.rs): known now.
        let marker = root.path(crate::plan::paths::STATUS_UNKNOWN);
        if marker.exists() {
            files::remove(&marker)?;
        }
    }
    state.watch = restamp(root, observed.watch, &state)?;
    // A hook that changed nothing writes nothing, the state file included.
    // Before magnum arrives there is nothing of ours on the unit to keep.
    if observed.magnum_gid.is_some() {
        state.save(root, ids)?;
    }
    Ok(())
}

/// Refresh this secret's pin on this hook (`secret-get --refresh`)? On
/// secret-changed for it: Juju names the secret in JUJU_SECRET_ID (an
/// agent that names none: every secret). Never otherwise: Juju pins the
/// revision a unit read, and a refresh is written at once, used or not
/// (tests/fakes/research/juju-3.6-hook-tools.md, items 1 and 2).
pub fn refresh_for(event: &Event, uri: &str) -> bool {
    *event == Event::SecretChanged
        && std::env::var("JUJU_SECRET_ID")
            .ok()
            .filter(|id| !id.is_empty())
            .is_none_or(|id| crate::plan::settings::same_secret(&id, uri))
}

/// The desired state from Juju's config and secret and the observed unit,
/// or the status that says why there is none (waiting, blocked). Spawns
/// config-get and secret-get (with `--refresh` on secret-changed) only once
/// magnum is on the machine.
pub fn desired_state(
    event: &Event,
    tools: &HookTools,
    o: &Observed,
    resources: &ResourceFacts,
) -> Result<std::result::Result<(Settings, Desired), Status>> {
    if let Some(waiting) = plan::principal_missing(o) {
        return Ok(Err(waiting));
    }
    let mut settings = match Settings::parse(&tools.config_get()?) {
        Ok(s) => s,
        Err(message) => return Ok(Err(Status::blocked(message))),
    };
    settings.proxy = match Proxy::from_env(|k| std::env::var(k).ok()) {
        Ok(p) => p,
        Err(message) => return Ok(Err(Status::blocked(message))),
    };
    let secret = match &settings.kubeconfig_secret {
        None => None,
        Some(uri) => Some(match tools.secret_get(uri, refresh_for(event, uri))? {
            Ok(content) => SecretInput::Content(content),
            Err(e) => SecretInput::Error(e),
        }),
    };
    // The OpenStack credentials are read by the actions only, without
    // --refresh: their secret-changed moves the pin here, so the next
    // smoketest or verify reads the revision Juju announced.
    if let Some(creds) = settings
        .openstack_credentials_secret
        .as_deref()
        .filter(|c| refresh_for(event, c))
    {
        match tools.secret_get(creds, true)? {
            Ok(_) => tracing::info!("openstack-credentials-secret {creds}: now at its latest revision"),
            Err(e) => tracing::warn!("openstack-credentials-secret {creds}: cannot refresh it: {e:?}"),
        }
    }
    let kubeconfig = match plan::kubeconfig_from_secret(
        settings.kubeconfig_secret.as_deref(),
        secret.as_ref(),
        crate::clock::epoch_secs() as i64,
    ) {
        Ok(k) => k,
        Err(status) => return Ok(Err(status)),
    };
    Ok(plan::desired(&settings, kubeconfig, o, resources).map(|d| (settings, d)))
}

fn converge(event: &Event, root: &Root, tools: &HookTools, o: &Observed, state: &mut State) -> Result<Status> {
    crate::panic::point("converge");
    if let Some(waiting) = plan::principal_missing(o) {
        return Ok(waiting);
    }
    // Resources change only through attach-resource, which fires
    // upgrade-charm: fetch them then (and at install), not on every hook.
    if matches!(event, Event::Install | Event::UpgradeCharm) || state.resources.is_none() || state.refetch_resources {
        match supply::fetch(tools, root, (o.root_uid, o.root_gid))? {
            Ok(r) => {
                state.resources = Some(r);
                state.refetch_resources = false;
            }
            Err(message) => {
                state.refetch_resources = true;
                return Ok(Status::blocked(message));
            }
        }
    }
    let resources = state.resource_facts();
    let desired = match desired_state(event, tools, o, &resources)? {
        Ok((settings, d)) => {
            state.secret_uri = settings.kubeconfig_secret;
            d
        }
        Err(status) => return Ok(status),
    };
    if let Some(rejected) = &state.rejected {
        if rejected.fingerprint == desired.fingerprint() && *event != Event::UpgradeCharm {
            return Ok(rejected.status.clone());
        }
    }
    let mut changes = plan::diff(&desired, o);
    if changes.is_empty() && state.pending_restart {
        // A hook died after changing files but before the restart that
        // makes them count: do that part now.
        crate::note!("an earlier hook stopped before restarting magnum: restarting now");
        changes = Changes {
            daemon_reload: true,
            restart: true,
            ..Changes::default()
        };
    }
    // Rolling restarts: with other units, a restart waits for its turn; the
    // leader moves the roll. Only looked at when there is something to do.
    let peer_duty = event.peer_news() || state.leading || changes.restart || state.restart_nonce.is_some();
    let mut peers = if peer_duty {
        peers::load(tools, desired.grant_timeout)?
    } else {
        None
    };
    if let Some(p) = peers.as_mut() {
        p.lead(tools)?;
        state.leading = p.leader && p.rolling();
    } else {
        state.leading = false;
    }
    if changes.is_empty() {
        state.rejected = None;
        if state.applied.as_ref().map(|a| &a.fingerprint) != Some(&desired.fingerprint()) {
            // The unit already is as desired (adopted, or an older state
            // file): remember it as applied and as the last good.
            record_applied(root, o, &desired, state)?;
        }
        if *event == Event::UpdateStatus {
            return services_up(root, &desired, state);
        }
        return finish(tools, &desired, state);
    }
    apply(root, tools, o, &desired, &changes, state, peers.as_mut())
}

/// Set the application version when it changed; the ready status.
fn finish(tools: &HookTools, desired: &Desired, state: &mut State) -> Result<Status> {
    if state.app_version.as_deref() != Some(desired.driver_version.as_str()) {
        tools.application_version_set(&desired.driver_version)?;
        state.app_version = Some(desired.driver_version.clone());
    }
    Ok(desired.ready.clone())
}

/// update-status on a converged unit: are both services up? A stopped or
/// failed one is restarted and watched.
fn services_up(root: &Root, desired: &Desired, state: &mut State) -> Result<Status> {
    let states = systemd::show(root, &SERVICES)?;
    // Restarted by systemd since the last look: a crash, or a restart loop.
    let mut looping = Vec::new();
    for (s, name) in states.iter().zip(SERVICES) {
        let seen = state.n_restarts.insert(name.to_string(), s.n_restarts).unwrap_or(0);
        if s.n_restarts > seen || s.sub_state == "auto-restart" {
            looping.push(format!("{name} restarted {} times by systemd", s.n_restarts));
        }
    }
    if !looping.is_empty() {
        let recent = crate::clock::epoch_secs().saturating_sub(600);
        let journal = systemd::journal_since(&SERVICES, recent).unwrap_or_default();
        let (why, fix) = match crate::plan::red_flags::first_red_flag(&journal) {
            Some((flag, line)) => (format!("{}: {line}", flag.cause), flag.fix.to_string()),
            None => (
                "no red flag in the journal".to_string(),
                "journalctl -u magnum-api -u magnum-conductor on the unit".to_string(),
            ),
        };
        tracing::warn!("{}: {why}", looping.join(", "));
        return Ok(Status::blocked(format!(
            "{} since the last check (crash loop?): {why}; fix: {fix}",
            looping.join(", ")
        )));
    }
    let down: Vec<&str> = SERVICES
        .iter()
        .zip(&states)
        .filter(|(_, s)| !s.up())
        .map(|(name, _)| *name)
        .collect();
    if down.is_empty() {
        return Ok(desired.ready.clone());
    }
    crate::note!("{} not running: restarting", down.join(", "));
    let _ = state;
    let since = systemd::journal_mark(root, &down);
    systemd::reset_failed(&down);
    systemd::restart(&down)?;
    Ok(
        match health::watch(root, &down, Duration::from_secs(desired.settle_seconds), &since)? {
            None => desired.ready.clone(),
            Some(v) => Status::blocked(format!(
                "{} not healthy after restart: {}; fix: {}",
                down.join(", "),
                v.problem,
                v.fix
            )),
        },
    )
}

fn apply(
    root: &Root,
    tools: &HookTools,
    o: &Observed,
    d: &Desired,
    c: &Changes,
    state: &mut State,
    peers: Option<&mut Peers>,
) -> Result<Status> {
    let ids = (o.root_uid, o.root_gid);
    if state.status.as_ref().map(|s| s.kind) != Some(StatusKind::Maintenance) {
        let working = Status::maintenance("applying magnum-capi-helm configuration");
        tools.status_set(&working)?;
        state.status = Some(working);
    }
    // Before the first change: the unit as it is now is what remove puts
    // back, and the rollback target until something better is proven
    // healthy. Saved at once, so a crash later cannot lose it.
    if state.prestate.is_none() {
        state.prestate = Some(lifecycle::capture(root, o)?);
    }
    if state.last_good.is_none() {
        state.save_last_good(root, ids, &o.files)?;
    }
    // A restart is owed from here on, even if this process dies before it;
    // a step that fails having changed nothing gives it back.
    let owed = state.pending_restart;
    state.pending_restart |= c.restart;
    state.save(root, ids)?;

    if c.install_driver {
        if let Some(status) = install_driver(root, o, d, state, owed)? {
            return Ok(status);
        }
    }
    if c.install_helm {
        let staged = std::fs::read(root.path(STAGED_HELM))
            .context("the staged helm is missing: juju attach-resource magnum-capi helm=<file> again")?;
        let target = root.path(HELM);
        if let Some(dir) = target.parent() {
            if !dir.exists() {
                files::ensure_dir(dir, 0o755, o.root_uid, o.root_gid)?;
            }
        }
        crate::note!("installing helm to {HELM}");
        files::write_atomic(&target, &staged, 0o755, o.root_uid, o.root_gid)?;
        let version = std::process::Command::new("helm")
            .args(["version", "--short"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        tracing::info!("helm {}", version.as_deref().unwrap_or("(version unknown)"));
        state.helm = Some(HelmRecord {
            sha256: d.helm.clone().unwrap_or_default(),
            stat: file_stat(&target),
            version,
        });
    }
    if c.fix_conf_d {
        files::ensure_dir(&root.path(CONF_D), d.conf_d.mode, d.conf_d.uid, d.conf_d.gid)?;
    }
    for f in &c.writes {
        crate::note!("writing {}", f.path);
        let path = root.path(&f.path);
        if let Some(dir) = path.parent() {
            if !dir.exists() {
                files::ensure_dir(dir, 0o755, o.root_uid, o.root_gid)?;
            }
        }
        files::write_atomic(&path, &f.content, f.mode, f.uid, f.gid)?;
    }
    for p in &c.removes {
        crate::note!("removing {p}");
        files::remove(&root.path(p))?;
    }
    if c.daemon_reload {
        systemd::daemon_reload()?;
    }
    let mut peers = peers;
    if c.restart {
        if let Some(p) = peers.as_deref_mut() {
            if let Some(waiting) = await_turn(root, tools, o, d, state, p)? {
                return Ok(waiting);
            }
        } else if let Some(waiting) = not_alone(tools)? {
            // The new files are written and the restart stays owed: a
            // later hook, with the peers in the relation, takes its turn.
            state.save(root, ids)?;
            return Ok(waiting);
        }
        let since = systemd::journal_mark(root, &SERVICES);
        crate::note!("restarting {}", SERVICES.join(", "));
        // A service that crash-looped into systemd's start limit (`failed`,
        // start-limit-hit) refuses a restart until reset-failed; this also
        // clears the NRestarts a crash loop left, which a restart landing in
        // `auto-restart` keeps (seen on a real unit).
        systemd::reset_failed(&SERVICES);
        let verdict = match systemd::restart(&SERVICES) {
            Ok(()) => health::watch(root, &SERVICES, Duration::from_secs(d.settle_seconds), &since)?,
            // Refused at once: as unhealthy as a crash, rolled back once.
            Err(e) if e.is::<systemd::JobFailed>() => Some(health::refused(&SERVICES, &since, &e)),
            // systemd not reached: the restart stays owed, retried next hook.
            Err(e) => return Err(e.context("restarting the magnum services")),
        };
        if let Some(verdict) = verdict {
            let status = rollback(root, o, d, state, verdict)?;
            if let (Some(p), Some(nonce)) = (peers.as_deref_mut(), state.restart_nonce.take()) {
                let failed = format!("{nonce} {}", status.message);
                p.set(tools, &[(rolling::FAILED, failed.as_str())])?;
                p.lead(tools)?;
            }
            return Ok(status);
        }
        if let (Some(p), Some(nonce)) = (peers, state.restart_nonce.take()) {
            p.set(tools, &[(rolling::DONE, nonce.as_str())])?;
            // A hook that dies after this line: Juju drops its relation
            // settings (committed only on exit 0), so the others never see
            // this `done`; the retried hook restarts again and says it again.
            crate::fault::point("rolling:done-set");
            p.lead(tools)?;
            state.leading = p.leader && p.rolling();
        }
    }
    record_applied(root, o, d, state)?;
    state.rejected = None;
    state.pending_restart = false;
    if c.restart {
        state.n_restarts.clear();
    }
    finish(&HookTools, d, state)
}

/// The pip arguments that install `version` from `source`; `reinstall`
/// when that version is installed already (new bytes, same version).
fn pip_args(
    root: &Root,
    (uid, gid): (u32, u32),
    version: &str,
    source: &DriverSource,
    reinstall: bool,
) -> Result<Vec<String>> {
    let sites = site_dirs(root);
    let pip_v = pip_version(&sites);
    let mut args = match source {
        DriverSource::Wheels { .. } => {
            let dir = root.path(STAGED_WHEELS);
            let mut dirs = vec![dir.to_string_lossy().into_owned()];
            let kept = root.path(LAST_GOOD_WHEELS);
            if kept.is_dir() {
                dirs.push(kept.to_string_lossy().into_owned());
            }
            pip::install_from_wheels_args(version, &dirs, pip_v.as_deref())
        }
        DriverSource::Index { url, sha256: Some(sha) } => {
            let reqs = root.path(REQUIREMENTS);
            files::write_atomic(&reqs, pip::requirements(version, sha).as_bytes(), 0o600, uid, gid)?;
            pip::install_pinned_args(&reqs.to_string_lossy(), url.as_deref(), pip_v.as_deref())
        }
        DriverSource::Index { url, sha256: None } => pip::install_args(version, url.as_deref(), pip_v.as_deref()),
    };
    if reinstall {
        args.insert(1, "--force-reinstall".into());
    }
    Ok(args)
}

fn drop_requirements(root: &Root) -> Result<()> {
    files::remove(&root.path(REQUIREMENTS)).map(|_| ())
}

/// Keep a copy of the staged driver wheel that now installed and loads, for
/// a put-back after a later resource revision that does not load.
fn keep_wheel(root: &Root, (uid, gid): (u32, u32), state: &State) -> Result<()> {
    let Some(file) = state
        .resources
        .as_ref()
        .and_then(|r| r.wheel.as_ref())
        .map(|w| w.file.clone())
    else {
        return Ok(());
    };
    let dir = root.path(LAST_GOOD_WHEELS);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    files::ensure_dir(&dir, 0o700, uid, gid)?;
    let bytes = std::fs::read(root.path(STAGED_WHEELS).join(&file))
        .with_context(|| format!("cannot read the staged {file}"))?;
    files::write_atomic(&dir.join(&file), &bytes, 0o600, uid, gid)
}

/// Install the desired driver and check that it loads. `Some(status)` when
/// the change failed; then the unit is as it was: pip failed having
/// changed nothing, or the new driver did not load and the one before it
/// was put back. Either way the restart this change would have owed is
/// given back (`owed`: what was owed before it), so the applied config
/// on the next hook finds nothing to do.
fn install_driver(root: &Root, o: &Observed, d: &Desired, state: &mut State, owed: bool) -> Result<Option<Status>> {
    let ids = (o.root_uid, o.root_gid);
    // Same version, new bytes (a new wheel was attached): reinstall.
    let reinstall = o.driver_version.as_deref() == Some(d.driver_version.as_str());
    let args = pip_args(root, ids, &d.driver_version, &d.driver_source, reinstall)?;
    crate::note!("installing magnum-capi-helm {}", d.driver_version);
    let installed = pip::install(&args, &d.pip_env);
    // The hash-pinned requirements file is pip's input only: a failed
    // change leaves nothing behind.
    drop_requirements(root)?;
    if let Err(e) = installed {
        state.pending_restart = owed;
        return Ok(Some(Status::blocked(format!(
            "{e:#}; fix the index or juju config magnum-capi driver-version=<version>"
        ))));
    }
    let check = pip::import_check()?;
    let Some(problem) = check.problem() else {
        tracing::info!("driver loads: {}", check.entry_point.unwrap_or_default());
        if matches!(d.driver_source, DriverSource::Wheels { .. }) {
            keep_wheel(root, ids, state)?;
        }
        state.installed_wheel_sha256 = match &d.driver_source {
            DriverSource::Wheels { sha256 } => Some(sha256.clone()),
            DriverSource::Index { sha256, .. } => sha256.clone(),
        };
        return Ok(None);
    };
    // Do not go on to restart magnum onto a driver that cannot load, on
    // this hook or the next: put back the driver the services run, and
    // wait for a different desired state.
    let mut put_back = String::new();
    if let Some(prev) = o.driver_version.as_deref().filter(|v| *v != d.driver_version) {
        let source = match &d.driver_source {
            DriverSource::Index { url, .. } => DriverSource::Index {
                url: url.clone(),
                sha256: crate::plan::compat::release(prev).map(|r| r.wheel_sha256.to_string()),
            },
            wheels => wheels.clone(),
        };
        let put = pip_args(root, ids, prev, &source, false).and_then(|a| pip::install(&a, &d.pip_env));
        drop_requirements(root)?;
        match put {
            Ok(()) => {
                crate::note!("put back magnum-capi-helm {prev}");
                state.pending_restart = owed;
            }
            Err(e) => {
                crate::note!(error: "could not put back magnum-capi-helm {prev}: {e:#}");
                put_back = format!(" (and magnum-capi-helm {prev} could not be put back: the next hook retries)");
            }
        }
    } else if o.driver_version.is_none() {
        state.pending_restart = owed;
    }
    let status = Status::blocked(format!(
        "{problem}{put_back}; fix: juju config magnum-capi driver-version=<a working version>"
    ));
    state.rejected = Some(Rejected {
        fingerprint: d.fingerprint(),
        status: status.clone(),
    });
    Ok(Some(status))
}

/// With other units: ask for the restart turn (once per change), and wait
/// for it. `Some(status)` when this unit must not restart now: queued, or
/// the roll halted on this very change (then this unit's new files are put
/// back: it keeps the config it runs).
fn await_turn(
    root: &Root,
    tools: &HookTools,
    o: &Observed,
    d: &Desired,
    state: &mut State,
    p: &mut Peers,
) -> Result<Option<Status>> {
    let fingerprint = d.fingerprint();
    let nonce = match &state.restart_nonce {
        Some(n) if rolling::change_of(n) == fingerprint => n.clone(),
        _ => {
            let n = format!("{fingerprint}-{}", crate::clock::epoch_secs());
            p.set(tools, &[(rolling::REQUEST, n.as_str()), (rolling::FAILED, "")])?;
            state.restart_nonce = Some(n.clone());
            state.save(root, (o.root_uid, o.root_gid))?;
            p.lead(tools)?;
            n
        }
    };
    if let Some(halt) = rolling::halted_on(&p.view.app, &nonce).map(str::to_string) {
        put_back(root, state.last_good_files(root)?)?;
        systemd::daemon_reload()?;
        p.set(tools, &[(rolling::REQUEST, "")])?;
        state.restart_nonce = None;
        state.pending_restart = false;
        let status = Status::blocked(format!(
            "rolling restart halted: {halt}; this unit keeps the config it runs: fix the change (juju config magnum-capi ...)"
        ));
        state.rejected = Some(Rejected {
            fingerprint,
            status: status.clone(),
        });
        return Ok(Some(status));
    }
    if rolling::granted(&p.view.app, &p.me, &nonce) {
        tracing::info!("rolling restart: {} has the turn", p.me);
        return Ok(None);
    }
    state.leading = p.leader && p.rolling();
    let holder = p
        .view
        .app
        .get(rolling::GRANTED)
        .cloned()
        .unwrap_or_else(|| "the leader".into());
    Ok(Some(Status::waiting(format!(
        "restart queued: magnum units restart one at a time ({holder} goes first); new config written, takes effect at this unit's turn"
    ))))
}

/// No peer in the restart relation, yet Juju is bringing up other units of
/// this application (goal-state): during install the relation is not in
/// the hook's context at all, and until they join it lists none of them.
/// A bundle deploy onto running magnum units would otherwise restart all of
/// them at once. `Some(status)`: the restart waits for the roll.
fn not_alone(tools: &HookTools) -> Result<Option<Status>> {
    let me = crate::peers::me();
    // This subordinate's own principal (Juju sets JUJU_PRINCIPAL_UNIT).
    let principal = std::env::var("JUJU_PRINCIPAL_UNIT").unwrap_or_default();
    let others: Vec<String> = match tools.goal_state_units() {
        Ok((units, principals)) => units
            .into_iter()
            .filter(|u| *u != me)
            .chain(
                principals
                    .into_iter()
                    .filter(|p| *p != principal)
                    .map(|p| format!("the magnum-capi unit on {p}")),
            )
            .collect(),
        Err(e) => {
            tracing::warn!("goal-state failed ({e:#}): restarting as if this unit were alone");
            return Ok(None);
        }
    };
    if others.is_empty() {
        return Ok(None);
    }
    crate::note!(
        "restart deferred: {} not in the restart relation yet",
        others.join(", ")
    );
    Ok(Some(Status::waiting(format!(
        "restart queued: {} deploying too, magnum units restart one at a time once they join; new config written, takes effect at this unit's turn",
        others.join(", ")
    ))))
}

/// Put files back as stored: written with their owner and mode, or removed
/// when they did not exist.
fn put_back(root: &Root, stored: BTreeMap<String, Option<FileFacts>>) -> Result<()> {
    for (path, facts) in stored {
        let target = root.path(&path);
        match facts {
            Some(f) => files::write_atomic(&target, &f.content, f.mode, f.uid, f.gid)?,
            None => {
                files::remove(&target)?;
            }
        }
    }
    Ok(())
}

/// The desired state is on the unit and healthy: it becomes the last good
/// (rollback target) and what update-status compares with.
fn record_applied(root: &Root, o: &Observed, d: &Desired, state: &mut State) -> Result<()> {
    let mut good: BTreeMap<String, Option<FileFacts>> = BTreeMap::new();
    for f in &d.files {
        good.insert(f.path.clone(), Some(f.facts()));
    }
    for p in &d.absent {
        good.insert(p.clone(), None);
    }
    state.save_last_good(root, (o.root_uid, o.root_gid), &good)?;
    state.applied = Some(Applied {
        fingerprint: d.fingerprint(),
        driver_version: d.driver_version.clone(),
        conf_d: Meta {
            mode: d.conf_d.mode,
            uid: d.conf_d.uid,
            gid: d.conf_d.gid,
        },
    });
    Ok(())
}

/// The stamps to keep after a hook: none unless the unit ended settled.
/// When nothing the hook observed has changed since (it changed nothing),
/// its own stamps; otherwise the unit is observed again and stamped, if it
/// is as the charm applied it.
fn restamp(root: &Root, seen: Watch, state: &State) -> Result<Option<Watch>> {
    if !state.settled() {
        return Ok(None);
    }
    if seen.unchanged(root) {
        return Ok(Some(seen));
    }
    let mut now = observe(root)?;
    state.complete(root, &mut now);
    Ok(as_applied(root, &now, state)?.then_some(now.watch))
}

/// update-status when the stamps did not hold: the unit is exactly as last
/// applied (read and compare, no spawn) and both services are up (D-Bus, no
/// spawn). Anything else (drift, a service down, a blocked or waiting unit)
/// takes the full path, secret-get included, so a unit waiting for a grant
/// retries.
fn still_converged(root: &Root, o: &Observed, state: &State) -> Result<bool> {
    if !state.settled() || !as_applied(root, o, state)? {
        return Ok(false);
    }
    let states = systemd::show(root, &SERVICES)?;
    Ok(services_steady(&states, &state.n_restarts))
}

/// The observed unit is as the charm last applied it: driver, helm, the
/// conf.d directory and every managed file.
fn as_applied(root: &Root, o: &Observed, state: &State) -> Result<bool> {
    let Some(applied) = &state.applied else {
        return Ok(false);
    };
    if o.driver_version.as_deref() != Some(&applied.driver_version) {
        return Ok(false);
    }
    if state.helm.is_some() && !o.helm_intact {
        tracing::info!(
            "{} changed since the charm installed it: repairing",
            crate::plan::paths::HELM
        );
        return Ok(false);
    }
    let m = applied.conf_d;
    if o.conf_d
        != Some(DirFacts {
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
        })
    {
        return Ok(false);
    }
    let good = state.last_good_files(root)?;
    if good.iter().any(|(path, facts)| o.files.get(path) != Some(facts)) {
        tracing::info!("managed files drifted from what was applied: repairing");
        return Ok(false);
    }
    Ok(true)
}

/// Put back the last good files, restart on them, and remember the change
/// that failed so the next hook does not try it again.
fn rollback(root: &Root, o: &Observed, d: &Desired, state: &mut State, verdict: health::Verdict) -> Result<Status> {
    crate::note!(error: "restart unhealthy: {}; rolling back", verdict.problem);
    put_back(root, state.last_good_files(root)?)?;
    systemd::daemon_reload()?;
    systemd::reset_failed(&SERVICES);
    // On the last good files; if even that is refused, say so (the next
    // hooks do not retry the rejected change; update-status restarts a
    // service that is down once the cause is fixed by hand).
    let again = match systemd::restart(&SERVICES) {
        Ok(()) => String::new(),
        Err(e) => format!(" (and restarting on it failed too: {e:#})"),
    };
    let _ = o;
    let status = Status::blocked(format!(
        "restart unhealthy, rolled back to the last good config{again}: {}; fix: {}",
        verdict.problem, verdict.fix
    ));
    state.pending_restart = false;
    state.rejected = Some(Rejected {
        fingerprint: d.fingerprint(),
        status: status.clone(),
    });
    Ok(status)
}
