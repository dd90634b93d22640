//! The converging hooks, as the imperative shell: gather facts, ask
//! `plan` for the next step, carry it out, report. Nothing is decided
//! here that `plan` could decide from data:
//!
//! - **routed** in src/main.rs: update-status's lean path
//!   (`healthy_unchanged`), then `run` for every converging hook;
//! - **decided** in plan/: `plan::step` (what this hook does next),
//!   `plan::health` (is the unit fine, is a restart healthy, crash loops),
//!   `plan::rolling` (whose turn), `plan::diff` (what to change);
//! - **read** by unit/ (observe, services) and the hook tools (juju/);
//! - **changed** by apply/ only (files, pip, systemd's verbs).
//!
//! The order: the state file; the observed unit; `step::before_config`
//! (wait for magnum, fetch resources); Juju's config and secret ->
//! `plan::desired`; `step::next_step` (rejected, as desired, apply); the
//! peers when the step needs them; then apply, the turn, the restart, its
//! verdict, and rollback.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::apply::{files, helm, pip, systemd};
use crate::event::Event;
use crate::juju::{HookTools, Status, StatusKind, Stop};
use crate::lifecycle;
use crate::peers::{self, Peers};
use crate::plan::health::{self, Drift, Services, Verdict};
use crate::plan::paths::{CONF_D, HELM, LAST_GOOD_WHEELS, REQUIREMENTS, SERVICES, STAGED_HELM, STAGED_WHEELS};
use crate::plan::rolling::{self, Turn};
use crate::plan::settings::{Proxy, Settings};
use crate::plan::step::{self, Before, Then};
use crate::plan::{self, Changes, Desired, DriverSource, FileFacts, Observed, ResourceFacts, SecretInput};
use crate::state::{file_stat, Applied, HelmRecord, Rejected, State};
use crate::supply;
use crate::unit::observe::{observe, pip_version, site_dirs};
use crate::unit::services;
use crate::unit::watch::Watch;
use crate::unit::Root;

/// update-status on a healthy unit, as lean as it gets: the state file,
/// a stat of every watched path, one D-Bus exchange with systemd. True when
/// all of it says "as applied, services up" (`health::unit_fine`): nothing
/// to do, nothing to log. Anything else (no watch yet, a changed stamp, a
/// service down, the bus unreachable) is false, and the full hook runs.
/// Called before logging is set up: the healthy path neither logs nor
/// spawns.
pub fn healthy_unchanged(root: &Root) -> bool {
    use crate::unit::dbus;
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
    let settled = glance.settled();
    // Stats only when there is nothing owed; the answer only when they held.
    let as_applied = settled && watch.unchanged(root);
    if !as_applied {
        return false;
    }
    let Ok(states) = asked.answer() else {
        return false;
    };
    health::unit_fine(settled, as_applied, Some((&states, &glance.n_restarts)))
}

/// Run a converging hook and report its status.
pub fn run(event: &Event, root: &Root, tools: &HookTools) -> Result<()> {
    let mut state = State::load(root)?;
    if step::forget_status(event) {
        state.status = None;
        state.app_version = None;
    }
    if step::prefetch(event, &state.memory()) {
        // config-get runs while the unit is observed; and the secret it
        // named last time, alongside (two CPUs: the two tools run at once
        // instead of one after the other).
        tools.prefetch_config();
        if let Some(uri) = &state.secret_uri {
            tools.prefetch_secret(uri, refresh_for(event, uri));
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
    let shell = Shell {
        root,
        tools,
        o: &observed,
        ids,
    };
    let status = match shell.converge(event, &mut state) {
        Ok(status) | Err(Stop::Report(status)) => status,
        Err(Stop::Failed(e)) => {
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

/// The desired state from Juju's config and secret and the observed unit
/// (with magnum on it: callers check `plan::principal_missing` first), or
/// `Stop::Report` with the status that says why there is none. Spawns
/// config-get and secret-get (with `--refresh` on secret-changed).
pub fn desired_state(
    event: &Event,
    tools: &HookTools,
    o: &Observed,
    resources: &ResourceFacts,
) -> Result<(Settings, Desired), Stop> {
    let mut settings = Settings::parse(&tools.config_get()?).map_err(Stop::blocked)?;
    settings.proxy = Proxy::from_env(|k| std::env::var(k).ok()).map_err(Stop::blocked)?;
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
    let kubeconfig = plan::kubeconfig_from_secret(
        settings.kubeconfig_secret.as_deref(),
        secret.as_ref(),
        crate::clock::epoch_secs() as i64,
    )
    .map_err(Stop::Report)?;
    let desired = plan::desired(&settings, kubeconfig, o, resources).map_err(Stop::Report)?;
    Ok((settings, desired))
}

/// What a hook works on: the unit's root, the hook tools, the unit as
/// observed at the start of the hook, and root's ids there.
struct Shell<'a> {
    root: &'a Root,
    tools: &'a HookTools,
    o: &'a Observed,
    ids: (u32, u32),
}

impl Shell<'_> {
    fn converge(&self, event: &Event, state: &mut State) -> Result<Status, Stop> {
        crate::panic::point("converge");
        match step::before_config(event, self.o, &state.memory()) {
            Before::Wait(waiting) => return Ok(waiting),
            Before::FetchResources => match supply::fetch(self.tools, self.root, self.ids) {
                Ok(r) => {
                    state.resources = Some(r);
                    state.refetch_resources = false;
                }
                Err(stop) => {
                    // A bad or missing resource: fetched again next hook.
                    state.refetch_resources |= matches!(stop, Stop::Report(_));
                    return Err(stop);
                }
            },
            Before::Config => {}
        }
        let (settings, desired) = desired_state(event, self.tools, self.o, &state.resource_facts())?;
        state.secret_uri = settings.kubeconfig_secret;
        let step = step::next_step(event, &desired, plan::diff(&desired, self.o), &state.memory());
        if step.owed_restart {
            crate::note!("an earlier hook stopped before restarting magnum: restarting now");
        }
        match step.then {
            Then::Rejected(status) => Ok(status),
            Then::AsDesired { record, check_services } => {
                self.peers(step.peers, &desired, state)?;
                state.rejected = None;
                if record {
                    // The unit already is as desired (adopted, or an older
                    // state file): remember it as applied and last good.
                    self.record_applied(&desired, state)?;
                }
                if check_services {
                    return self.services_up(&desired, state);
                }
                self.finish(&desired, state)
            }
            Then::Apply(changes) => {
                let mut peers = self.peers(step.peers, &desired, state)?;
                self.apply(&desired, &changes, state, peers.as_mut())
            }
        }
    }

    /// Rolling restarts: with other units, a restart waits for its turn;
    /// the leader moves the roll. The peers when the step needs them
    /// (`read`), after the leader's move.
    fn peers(&self, read: bool, desired: &Desired, state: &mut State) -> Result<Option<Peers>> {
        let mut peers = if read {
            peers::load(self.tools, desired.grant_timeout)?
        } else {
            None
        };
        if let Some(p) = peers.as_mut() {
            p.lead(self.tools)?;
            state.leading = p.leader && p.rolling();
        } else {
            state.leading = false;
        }
        Ok(peers)
    }

    /// Set the application version when it changed; the ready status.
    fn finish(&self, desired: &Desired, state: &mut State) -> Result<Status, Stop> {
        if state.app_version.as_deref() != Some(desired.driver_version.as_str()) {
            self.tools.application_version_set(&desired.driver_version)?;
            state.app_version = Some(desired.driver_version.clone());
        }
        Ok(desired.ready.clone())
    }

    /// update-status on a converged unit: are both services up? A crash
    /// loop is reported with the journal's red flag; a stopped or failed
    /// service is restarted and watched.
    fn services_up(&self, desired: &Desired, state: &mut State) -> Result<Status, Stop> {
        let states = services::show(self.root, &SERVICES)?;
        match health::classify(&states, &mut state.n_restarts) {
            Services::Ready => Ok(desired.ready.clone()),
            Services::Looping(looping) => {
                let recent = crate::clock::epoch_secs().saturating_sub(600);
                let journal = services::journal_since(&SERVICES, recent).unwrap_or_default();
                let status = health::crash_loop_status(&looping, &journal);
                tracing::warn!("{}", status.message);
                Ok(status)
            }
            Services::Down(down) => {
                crate::note!("{} not running: restarting", down.join(", "));
                let since = services::journal_mark(self.root, &down);
                systemd::reset_failed(&down);
                systemd::restart(&down)?;
                let settle = Duration::from_secs(desired.settle_seconds);
                Ok(match services::settle(self.root, &down, settle, &since)? {
                    None => desired.ready.clone(),
                    Some(v) => health::restart_unhealthy_status(&down, &v),
                })
            }
        }
    }

    /// Change the unit: remember what it was, install, write, then restart
    /// (at this unit's turn) and judge the restart.
    fn apply(&self, d: &Desired, c: &Changes, state: &mut State, peers: Option<&mut Peers>) -> Result<Status, Stop> {
        if state.status.as_ref().map(|s| s.kind) != Some(StatusKind::Maintenance) {
            let working = Status::maintenance("applying magnum-capi-helm configuration");
            self.tools.status_set(&working)?;
            state.status = Some(working);
        }
        // Before the first change: the unit as it is now is what remove
        // puts back, and the rollback target until something better is
        // proven healthy. Saved at once, so a crash later cannot lose it.
        if state.prestate.is_none() {
            state.prestate = Some(lifecycle::capture(self.root, self.o)?);
        }
        if state.last_good.is_none() {
            state.save_last_good(self.root, self.ids, &self.o.files)?;
        }
        // A restart is owed from here on, even if this process dies before
        // it; a step that fails having changed nothing gives it back.
        let owed = state.pending_restart;
        state.pending_restart |= c.restart;
        state.save(self.root, self.ids)?;

        if c.install_driver {
            if let Some(status) = self.install_driver(d, state, owed)? {
                return Ok(status);
            }
        }
        if c.install_helm {
            self.install_helm(d, state)?;
        }
        if c.fix_conf_d {
            files::ensure_dir(&self.root.path(CONF_D), d.conf_d.mode, d.conf_d.uid, d.conf_d.gid)?;
        }
        for f in &c.writes {
            crate::note!("writing {}", f.path);
            let path = self.root.path(&f.path);
            self.ensure_parent(&path)?;
            files::write_atomic(&path, &f.content, f.mode, f.uid, f.gid)?;
        }
        for p in &c.removes {
            crate::note!("removing {p}");
            files::remove(&self.root.path(p))?;
        }
        if c.daemon_reload {
            systemd::daemon_reload()?;
        }
        if c.restart {
            let mut peers = peers;
            if let Some(waiting) = self.await_turn(d, state, peers.as_deref_mut())? {
                return Ok(waiting);
            }
            if let Some(status) = self.restart(d, state, peers)? {
                return Ok(status);
            }
        }
        self.record_applied(d, state)?;
        state.rejected = None;
        state.pending_restart = false;
        if c.restart {
            state.n_restarts.clear();
        }
        self.finish(d, state)
    }

    fn ensure_parent(&self, path: &std::path::Path) -> Result<()> {
        match path.parent() {
            Some(dir) if !dir.exists() => files::ensure_dir(dir, 0o755, self.ids.0, self.ids.1),
            _ => Ok(()),
        }
    }

    /// The staged helm to /usr/local/bin/helm, recorded with its stat.
    fn install_helm(&self, d: &Desired, state: &mut State) -> Result<()> {
        let staged = std::fs::read(self.root.path(STAGED_HELM))
            .context("the staged helm is missing: juju attach-resource magnum-capi helm=<file> again")?;
        let target = self.root.path(HELM);
        self.ensure_parent(&target)?;
        crate::note!("installing helm to {HELM}");
        files::write_atomic(&target, &staged, 0o755, self.ids.0, self.ids.1)?;
        let version = helm::version();
        tracing::info!("helm {}", version.as_deref().unwrap_or("(version unknown)"));
        state.helm = Some(HelmRecord {
            sha256: d.helm.clone().unwrap_or_default(),
            stat: file_stat(&target),
            version,
        });
        Ok(())
    }

    /// With other units: ask for the restart turn (once per change), and
    /// wait for it (`plan::rolling::turn`). Alone while Juju brings up
    /// others (`step::others_deploying`): wait for them to join. `Some(status)`
    /// when this unit must not restart now; the new files are written and
    /// the restart stays owed, except when the roll halted on this very
    /// change: then this unit's new files are put back (it keeps the config
    /// it runs).
    fn await_turn(&self, d: &Desired, state: &mut State, peers: Option<&mut Peers>) -> Result<Option<Status>> {
        let Some(p) = peers else {
            let waiting = self.lone_restart()?;
            if waiting.is_some() {
                state.save(self.root, self.ids)?;
            }
            return Ok(waiting);
        };
        let fingerprint = d.fingerprint();
        if let Some(n) = rolling::request(state.restart_nonce.as_deref(), &fingerprint, crate::clock::epoch_secs()) {
            p.set(self.tools, &[(rolling::REQUEST, n.as_str()), (rolling::FAILED, "")])?;
            state.restart_nonce = Some(n);
            state.save(self.root, self.ids)?;
            p.lead(self.tools)?;
        }
        let nonce = state.restart_nonce.clone().unwrap_or_default();
        match rolling::turn(&p.view.app, &p.me, &nonce) {
            Turn::Go => {
                tracing::info!("rolling restart: {} has the turn", p.me);
                Ok(None)
            }
            Turn::Queued(status) => {
                state.leading = p.leader && p.rolling();
                Ok(Some(status))
            }
            Turn::Halted(status) => {
                put_back(self.root, state.last_good_files(self.root)?)?;
                systemd::daemon_reload()?;
                p.set(self.tools, &[(rolling::REQUEST, "")])?;
                state.restart_nonce = None;
                state.pending_restart = false;
                state.rejected = Some(Rejected {
                    fingerprint,
                    status: status.clone(),
                });
                Ok(Some(status))
            }
        }
    }

    /// goal-state's view for `step::others_deploying`; a failing goal-state
    /// restarts as if this unit were alone.
    fn lone_restart(&self) -> Result<Option<Status>> {
        let me = crate::peers::me();
        // This subordinate's own principal (Juju sets JUJU_PRINCIPAL_UNIT).
        let principal = std::env::var("JUJU_PRINCIPAL_UNIT").unwrap_or_default();
        let (units, principals) = match self.tools.goal_state_units() {
            Ok(view) => view,
            Err(e) => {
                tracing::warn!("goal-state failed ({e:#}): restarting as if this unit were alone");
                return Ok(None);
            }
        };
        let others = step::others_deploying(&me, &principal, &units, &principals);
        if others.is_empty() {
            return Ok(None);
        }
        crate::note!(
            "restart deferred: {} not in the restart relation yet",
            others.join(", ")
        );
        Ok(Some(step::deferred_status(&others)))
    }

    /// Restart both services and judge the restart. `Some(status)` when it
    /// was unhealthy and rolled back; the roll hears of it either way.
    fn restart(&self, d: &Desired, state: &mut State, mut peers: Option<&mut Peers>) -> Result<Option<Status>, Stop> {
        let since = services::journal_mark(self.root, &SERVICES);
        crate::note!("restarting {}", SERVICES.join(", "));
        // A service that crash-looped into systemd's start limit (`failed`,
        // start-limit-hit) refuses a restart until reset-failed; this also
        // clears the NRestarts a crash loop left, which a restart landing in
        // `auto-restart` keeps (seen on a real unit).
        systemd::reset_failed(&SERVICES);
        let verdict = match systemd::restart(&SERVICES) {
            Ok(()) => services::settle(self.root, &SERVICES, Duration::from_secs(d.settle_seconds), &since)?,
            // Refused at once: as unhealthy as a crash, rolled back once.
            Err(e) if e.is::<systemd::JobFailed>() => Some(services::refused(&SERVICES, &since, &e)),
            // systemd not reached: the restart stays owed, retried next hook.
            Err(e) => return Err(e.context("restarting the magnum services").into()),
        };
        if let Some(verdict) = verdict {
            let status = self.rollback(d, state, verdict)?;
            if let (Some(p), Some(nonce)) = (peers.as_deref_mut(), state.restart_nonce.take()) {
                let failed = format!("{nonce} {}", status.message);
                p.set(self.tools, &[(rolling::FAILED, failed.as_str())])?;
                p.lead(self.tools)?;
            }
            return Ok(Some(status));
        }
        if let (Some(p), Some(nonce)) = (peers, state.restart_nonce.take()) {
            p.set(self.tools, &[(rolling::DONE, nonce.as_str())])?;
            // A hook that dies after this line: Juju drops its relation
            // settings (committed only on exit 0), so the others never see
            // this `done`; the retried hook restarts again and says it again.
            crate::fault::point("rolling:done-set");
            p.lead(self.tools)?;
            state.leading = p.leader && p.rolling();
        }
        Ok(None)
    }

    /// Put back the last good files, restart on them, and remember the
    /// change that failed so the next hook does not try it again.
    fn rollback(&self, d: &Desired, state: &mut State, verdict: Verdict) -> Result<Status> {
        crate::note!(error: "restart unhealthy: {}; rolling back", verdict.problem);
        put_back(self.root, state.last_good_files(self.root)?)?;
        systemd::daemon_reload()?;
        systemd::reset_failed(&SERVICES);
        // On the last good files; if even that is refused, say so (the next
        // hooks do not retry the rejected change; update-status restarts a
        // service that is down once the cause is fixed by hand).
        let again = systemd::restart(&SERVICES).err().map(|e| format!("{e:#}"));
        let status = health::rolled_back_status(&verdict, again.as_deref());
        state.pending_restart = false;
        state.rejected = Some(Rejected {
            fingerprint: d.fingerprint(),
            status: status.clone(),
        });
        Ok(status)
    }

    /// The pip arguments that install `version` from `source`; `reinstall`
    /// when that version is installed already (new bytes, same version).
    fn pip_args(&self, version: &str, source: &DriverSource, reinstall: bool) -> Result<Vec<String>> {
        let pip_v = pip_version(&site_dirs(self.root));
        let mut args = match source {
            DriverSource::Wheels { .. } => {
                let mut dirs = vec![self.root.path(STAGED_WHEELS).to_string_lossy().into_owned()];
                let kept = self.root.path(LAST_GOOD_WHEELS);
                if kept.is_dir() {
                    dirs.push(kept.to_string_lossy().into_owned());
                }
                pip::install_from_wheels_args(version, &dirs, pip_v.as_deref())
            }
            DriverSource::Index { url, sha256: Some(sha) } => {
                let reqs = self.root.path(REQUIREMENTS);
                files::write_atomic(
                    &reqs,
                    pip::requirements(version, sha).as_bytes(),
                    0o600,
                    self.ids.0,
                    self.ids.1,
                )?;
                pip::install_pinned_args(&reqs.to_string_lossy(), url.as_deref(), pip_v.as_deref())
            }
            DriverSource::Index { url, sha256: None } => pip::install_args(version, url.as_deref(), pip_v.as_deref()),
        };
        if reinstall {
            args.insert(1, "--force-reinstall".into());
        }
        Ok(args)
    }

    /// The hash-pinned requirements file is pip's input only: a failed
    /// change leaves nothing behind.
    fn drop_requirements(&self) -> Result<()> {
        files::remove(&self.root.path(REQUIREMENTS)).map(drop)
    }

    /// Keep a copy of the staged driver wheel that now installed and
    /// loads, for a put-back after a later resource revision that does not
    /// load.
    fn keep_wheel(&self, state: &State) -> Result<()> {
        let Some(file) = state
            .resources
            .as_ref()
            .and_then(|r| r.wheel.as_ref())
            .map(|w| w.file.clone())
        else {
            return Ok(());
        };
        let dir = self.root.path(LAST_GOOD_WHEELS);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        files::ensure_dir(&dir, 0o700, self.ids.0, self.ids.1)?;
        let bytes = std::fs::read(self.root.path(STAGED_WHEELS).join(&file))
            .with_context(|| format!("cannot read the staged {file}"))?;
        files::write_atomic(&dir.join(&file), &bytes, 0o600, self.ids.0, self.ids.1)
    }

    /// Install the desired driver and check that it loads. `Some(status)`
    /// when the change failed; then the unit is as it was: pip failed
    /// having changed nothing, or the new driver did not load and the one
    /// before it was put back. Either way the restart this change would
    /// have owed is given back (`owed`: what was owed before it), so the
    /// applied config on the next hook finds nothing to do.
    fn install_driver(&self, d: &Desired, state: &mut State, owed: bool) -> Result<Option<Status>> {
        let args = self.pip_args(&d.driver_version, &d.driver_source, step::reinstall(self.o, d))?;
        crate::note!("installing magnum-capi-helm {}", d.driver_version);
        let installed = pip::install(&args, &d.pip_env);
        self.drop_requirements()?;
        if let Err(e) = installed {
            state.pending_restart = owed;
            return Ok(Some(step::pip_failed_status(&format!("{e:#}"))));
        }
        let check = pip::import_check()?;
        let Some(problem) = check.problem() else {
            tracing::info!("driver loads: {}", check.entry_point.unwrap_or_default());
            if matches!(d.driver_source, DriverSource::Wheels { .. }) {
                self.keep_wheel(state)?;
            }
            state.installed_wheel_sha256 = step::installed_sha256(d);
            return Ok(None);
        };
        // Do not go on to restart magnum onto a driver that cannot load, on
        // this hook or the next: put back the driver the services run, and
        // wait for a different desired state.
        let mut put_back_failed = None;
        if let Some(prev) = step::put_back_version(self.o, d) {
            let put = self
                .pip_args(prev, &step::put_back_source(d, prev), false)
                .and_then(|a| pip::install(&a, &d.pip_env));
            self.drop_requirements()?;
            match put {
                Ok(()) => {
                    crate::note!("put back magnum-capi-helm {prev}");
                    state.pending_restart = owed;
                }
                Err(e) => {
                    crate::note!(error: "could not put back magnum-capi-helm {prev}: {e:#}");
                    put_back_failed = Some(prev);
                }
            }
        } else if self.o.driver_version.is_none() {
            state.pending_restart = owed;
        }
        let status = step::driver_failed_status(&problem, put_back_failed);
        state.rejected = Some(Rejected {
            fingerprint: d.fingerprint(),
            status: status.clone(),
        });
        Ok(Some(status))
    }

    /// The desired state is on the unit and healthy: it becomes the last
    /// good (rollback target) and what update-status compares with.
    fn record_applied(&self, d: &Desired, state: &mut State) -> Result<()> {
        let mut good: BTreeMap<String, Option<FileFacts>> = BTreeMap::new();
        for f in &d.files {
            good.insert(f.path.clone(), Some(f.facts()));
        }
        for p in &d.absent {
            good.insert(p.clone(), None);
        }
        state.save_last_good(self.root, self.ids, &good)?;
        state.applied = Some(Applied {
            fingerprint: d.fingerprint(),
            driver_version: d.driver_version.clone(),
            conf_d: d.conf_d,
        });
        Ok(())
    }
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

/// The stamps to keep after a hook: none unless the unit ended settled.
/// When nothing the hook observed has changed since (it changed nothing),
/// its own stamps; otherwise the unit is observed again and stamped, if it
/// is as the charm applied it (`health::unit_fine`, without asking systemd:
/// the hook just did).
fn restamp(root: &Root, seen: Watch, state: &State) -> Result<Option<Watch>> {
    if !state.settled() {
        return Ok(None);
    }
    if seen.unchanged(root) {
        return Ok(Some(seen));
    }
    let mut now = observe(root)?;
    state.complete(root, &mut now);
    let fine = health::unit_fine(true, as_applied(root, &now, state)?, None);
    Ok(fine.then_some(now.watch))
}

/// update-status when the stamps did not hold: the unit is exactly as last
/// applied (read and compare, no spawn) and both services are up (D-Bus, no
/// spawn). Anything else (drift, a service down, a blocked or waiting unit)
/// takes the full path, secret-get included, so a unit waiting for a grant
/// retries.
fn still_converged(root: &Root, o: &Observed, state: &State) -> Result<bool> {
    let settled = state.settled();
    if !settled || !as_applied(root, o, state)? {
        return Ok(false);
    }
    let states = services::show(root, &SERVICES)?;
    Ok(health::unit_fine(settled, true, Some((&states, &state.n_restarts))))
}

/// The observed unit is as the charm last applied it (`health::drift`).
fn as_applied(root: &Root, o: &Observed, state: &State) -> Result<bool> {
    let Some(applied) = &state.applied else {
        return Ok(false);
    };
    let good = state.last_good_files(root)?;
    let drift = health::drift(
        o,
        &health::Applied {
            driver_version: &applied.driver_version,
            conf_d: applied.conf_d,
            helm: state.helm.is_some(),
            files: &good,
        },
    );
    match drift {
        Some(Drift::Helm) => tracing::info!("{HELM} changed since the charm installed it: repairing"),
        Some(Drift::Files) => tracing::info!("managed files drifted from what was applied: repairing"),
        _ => {}
    }
    Ok(drift.is_none())
}
