//! Every decision, pure (no I/O, tested in this directory); every
//! bad-input message is born here or in the submodules.
//!
//! - here: (settings, kubeconfig, observed unit) -> `desired` state ->
//!   the difference to apply (`diff`);
//! - `step`: what a converging hook does next (wait, fetch, report a
//!   rejected change, record, apply), and the driver put-back;
//! - `health`: the one "is the unit fine" predicate, drift, crash loops,
//!   the verdict on a restart, rollback's status;
//! - `rolling`: the rolling-restart protocol (the leader's moves, a unit's
//!   turn);
//! - `settings`, `kubeconfig`, `credentials`, `compat`, `render`, `ini`,
//!   `x509`, `artifact`, `red_flags`, `paths`: inputs checked and files
//!   rendered.

pub mod artifact;
pub mod compat;
pub mod credentials;
pub mod health;
pub mod ini;
pub mod kubeconfig;
pub mod paths;
pub mod red_flags;
pub mod render;
pub mod rolling;
pub mod settings;
pub mod step;
pub mod x509;

use std::collections::BTreeMap;

use crate::juju::{SecretError, Status};
use paths::{CAPI_CONF, KUBECONFIG, SERVICES};
use settings::{DisabledDrivers, ServiceOverride, Settings, DRIVER_ENTRY_POINT};

/// A file as found on the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    pub content: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A directory's mode and owner: as found on the unit, as desired
/// (`DirSpec`), and as the charm's state remembers it (`state::Meta`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirFacts {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Everything the plan needs to know about the unit, read without spawning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// uid/gid of `root` in the unit's passwd (0/0 on a real unit).
    pub root_uid: u32,
    pub root_gid: u32,
    /// The `magnum` user and group, once the principal created them.
    pub magnum_user: bool,
    pub magnum_gid: Option<u32>,
    /// `/etc/magnum/magnum.conf`, if present (lossy text).
    pub magnum_conf: Option<String>,
    /// Which of SERVICES have a unit file.
    pub unit_files: BTreeMap<String, bool>,
    /// Which of SERVICES start the packaged way, through an init script
    /// that sources `/etc/default/<service>` (openstack-pkg-tools' units:
    /// `ExecStart=/etc/init.d/<service> systemd-start`).
    pub reads_env_default: BTreeMap<String, bool>,
    /// Each service's binary (`/usr/bin/magnum-api`), if found.
    pub binaries: BTreeMap<String, Option<String>>,
    /// Installed magnum-capi-helm version (dist-info).
    pub driver_version: Option<String>,
    /// Every other `magnum.drivers` entry point installed.
    pub other_drivers: Vec<String>,
    pub conf_d: Option<DirFacts>,
    /// Every path the charm may manage, and what is there now.
    pub files: BTreeMap<String, Option<FileFacts>>,
    /// A helm on the services' PATH (any directory), and whether the one
    /// the charm installed is still as it left it (stat compare).
    pub helm_present: bool,
    pub helm_intact: bool,
    /// The directory of the first helm on the services' PATH (or in
    /// /snap/bin), for the services' PATH.
    pub helm_dir: Option<String>,
    /// The system Python as (major, minor), from `/usr/bin/python3`'s link.
    pub python: Option<(u32, u32)>,
    /// What the charm recorded installing: the wheel's and helm's sha256.
    pub installed_wheel_sha256: Option<String>,
    pub installed_helm_sha256: Option<String>,
    /// Every path the above was read from, stamped before it was read.
    pub watch: crate::unit::watch::Watch,
}

/// Where the driver comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverSource {
    /// A package index (`pip-index-url`, or pip's default), optionally
    /// hash-pinned.
    Index {
        url: Option<String>,
        sha256: Option<String>,
    },
    /// The wheels staged from the `driver-wheel` resource: no index.
    Wheels { sha256: String },
}

/// Juju resources as the charm staged them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceFacts {
    /// (version, sha256) of the staged magnum-capi-helm wheel.
    pub wheel: Option<(String, String)>,
    /// sha256 of the staged helm.
    pub helm: Option<String>,
}

/// The kubeconfig secret as `secret-get` gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretInput {
    Content(BTreeMap<String, String>),
    Error(SecretError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl FileSpec {
    /// The file as it will be found once written.
    pub fn facts(&self) -> FileFacts {
        FileFacts {
            content: self.content.clone(),
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
        }
    }
}

/// A directory as it should be.
pub type DirSpec = DirFacts;

/// The state the unit should be in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub driver_version: String,
    pub driver_source: DriverSource,
    /// sha256 of the helm to install at /usr/local/bin/helm (from the
    /// resource); `None`: helm is not the charm's to manage.
    pub helm: Option<String>,
    pub conf_d: DirSpec,
    pub files: Vec<FileSpec>,
    /// Managed paths that must not exist (our drop-ins in `none` mode).
    pub absent: Vec<String>,
    pub settle_seconds: u64,
    /// Rolling restart: how long a unit may hold the turn.
    pub grant_timeout: u64,
    pub ready: Status,
    /// Charm options set that this driver version does not read (not
    /// written; verify names them).
    pub unknown_options: Vec<&'static str>,
    /// pip's environment: Juju's proxies.
    pub pip_env: Vec<(&'static str, String)>,
}

impl Desired {
    /// A stable fingerprint of everything that would be applied, to
    /// recognise a change already tried (rolled back, or waiting for its
    /// restart turn). SHA-256 over an explicit encoding (each field
    /// length-prefixed, in a fixed order, versioned), never over `Debug`
    /// output: a charm built by another compiler gives the same value for
    /// the same desired state (pinned by a test in plan/tests.rs).
    pub fn fingerprint(&self) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut feed = |bytes: &[u8]| {
            ctx.update(&(bytes.len() as u64).to_be_bytes());
            ctx.update(bytes);
        };
        feed(b"magnum-capi desired state v1");
        feed(self.driver_version.as_bytes());
        match &self.driver_source {
            DriverSource::Index { url, sha256 } => {
                feed(b"index");
                feed(url.as_deref().unwrap_or("").as_bytes());
                feed(sha256.as_deref().unwrap_or("").as_bytes());
            }
            DriverSource::Wheels { sha256 } => {
                feed(b"wheels");
                feed(sha256.as_bytes());
            }
        }
        feed(self.helm.as_deref().unwrap_or("").as_bytes());
        feed(&(self.files.len() as u64).to_be_bytes());
        for f in &self.files {
            feed(f.path.as_bytes());
            feed(&f.content);
            feed(&[f.mode, f.uid, f.gid].map(u32::to_be_bytes).concat());
        }
        feed(&(self.absent.len() as u64).to_be_bytes());
        for p in &self.absent {
            feed(p.as_bytes());
        }
        let digest = ctx.finish();
        artifact::hex(&digest.as_ref()[..16])
    }
}

/// What must change to reach the desired state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub install_driver: bool,
    pub install_helm: bool,
    pub fix_conf_d: bool,
    pub writes: Vec<FileSpec>,
    pub removes: Vec<String>,
    pub daemon_reload: bool,
    pub restart: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }
}

/// Every file the charm may manage: its own, and the runbook's drop-ins it
/// adopts.
pub fn managed_paths() -> Vec<String> {
    let mut p = vec![KUBECONFIG.to_string(), CAPI_CONF.to_string()];
    p.extend(SERVICES.iter().map(|s| paths::dropin(s)));
    p.extend(SERVICES.iter().map(|s| paths::runbook_dropin(s)));
    p.extend(SERVICES.iter().map(|s| paths::env_default(s)));
    p
}

/// Directories the charm may create.
pub fn managed_dirs() -> Vec<String> {
    let mut d = vec![paths::CONF_D.to_string()];
    d.extend(SERVICES.iter().map(|s| paths::dropin_dir(s)));
    d
}

/// Is this drop-in the runbook's (section 8): nothing but `[Service]`, an
/// `ExecStart=` reset and a magnum binary run with `--config-dir`? Then the
/// charm's own drop-in replaces it. Anything else is the operator's and is
/// left alone.
pub fn is_runbook_override(text: &str) -> bool {
    let mut runs_with_config_dir = false;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
    {
        match line {
            "[Service]" | "ExecStart=" => {}
            l if l.starts_with("ExecStart=") && l.contains("/magnum-") && l.contains("--config-dir") => {
                runs_with_config_dir = true
            }
            _ => return false,
        }
    }
    runs_with_config_dir
}

/// Does the service start the packaged way, through an init script that
/// sources `/etc/default/<service>`? The unit file (the first in systemd's
/// order) runs `ExecStart=/etc/init.d/<service> systemd-start`, and that
/// script reads `/etc/default/$NAME` (openstack-pkg-tools' init template, as
/// Debian bookworm and trixie and Ubuntu's magnum packages ship it; see
/// tests/fakes/research/ubuntu-magnum-packaging.md).
pub fn starts_through_env_default(service: &str, unit_file: &str, init_script: &str) -> bool {
    let exec = unit_file
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .rfind(|v| !v.is_empty());
    let sources = init_script.lines().map(str::trim).any(|l| {
        !l.starts_with('#') && (l.contains("/etc/default/$NAME") || l.contains(&format!("/etc/default/{service}")))
    });
    exec == Some(&format!("/etc/init.d/{service} systemd-start")) && sources
}

/// `waiting` when magnum is not (yet) on this machine.
pub fn principal_missing(o: &Observed) -> Option<Status> {
    let mut missing = Vec::new();
    if o.magnum_conf.is_none() {
        missing.push(paths::MAGNUM_CONF.to_string());
    }
    if !o.magnum_user || o.magnum_gid.is_none() {
        missing.push("the magnum user and group".to_string());
    }
    for s in SERVICES {
        if !o.unit_files.get(s).copied().unwrap_or(false) {
            missing.push(format!("{s}.service"));
        }
    }
    if missing.is_empty() {
        return None;
    }
    Some(Status::waiting(format!(
        "waiting for magnum on this machine (no {}): juju integrate magnum-capi magnum",
        missing.join(", no ")
    )))
}

/// The kubeconfig to write, and the credential kind it carries.
#[derive(Clone, PartialEq, Eq)]
pub struct Kubeconfig {
    pub bytes: Vec<u8>,
    pub auth: Option<kubeconfig::Auth>,
}

impl std::fmt::Debug for Kubeconfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kubeconfig({} bytes, {:?})", self.bytes.len(), self.auth)
    }
}

/// Turn the kubeconfig secret into the bytes to write, or a blocked status
/// that says what to run.
pub fn kubeconfig_from_secret(uri: Option<&str>, secret: Option<&SecretInput>, now: i64) -> Result<Kubeconfig, Status> {
    let Some(uri) = uri else {
        return Err(Status::blocked(
            "kubeconfig-secret unset: juju add-secret capi-kubeconfig kubeconfig#file=mgmt.kubeconfig && juju grant-secret capi-kubeconfig magnum-capi && juju config magnum-capi kubeconfig-secret=<secret uri>",
        ));
    };
    let content = match secret {
        Some(SecretInput::Content(c)) => c,
        Some(SecretInput::Error(SecretError::NotGranted)) => {
            return Err(Status::blocked(format!(
                "secret {uri} not granted: juju grant-secret <secret name> magnum-capi"
            )))
        }
        Some(SecretInput::Error(SecretError::NotFound)) => {
            return Err(Status::blocked(format!(
            "secret {uri} not found: check juju secrets, then juju config magnum-capi kubeconfig-secret=<secret uri>"
        )))
        }
        Some(SecretInput::Error(SecretError::Other(e))) => {
            return Err(Status::blocked(format!("cannot read secret {uri}: {e}")))
        }
        None => return Err(Status::blocked(format!("secret {uri} was not read"))),
    };
    let Some(kubeconfig) = content.get("kubeconfig") else {
        return Err(Status::blocked(format!(
            "secret {uri} has no key kubeconfig: juju update-secret {uri} kubeconfig#file=mgmt.kubeconfig"
        )));
    };
    let info = kubeconfig::validate(kubeconfig.as_bytes(), now).map_err(|e| {
        Status::blocked(format!(
            "secret {uri}: {e}; fix: juju update-secret {uri} kubeconfig#file=<good kubeconfig>"
        ))
    })?;
    Ok(Kubeconfig {
        bytes: kubeconfig.as_bytes().to_vec(),
        auth: Some(info.auth),
    })
}

/// The desired state, or the status that says why the charm will not act.
pub fn desired(
    settings: &Settings,
    kubeconfig: Kubeconfig,
    o: &Observed,
    resources: &ResourceFacts,
) -> Result<Desired, Status> {
    let version = settings.driver_version.as_str();
    if let Some(why) = compat::refusal(version, kubeconfig.auth, o.python) {
        return Err(Status::blocked(why));
    }
    // A released version installs only as PyPI published it, unless the
    // operator pins another build with driver-sha256.
    let released = compat::release(version).map(|r| r.wheel_sha256.to_string());
    let pin = settings.driver_sha256.clone().or(released.clone());
    let driver_source = match &resources.wheel {
        Some((version, sha)) => {
            if *version != settings.driver_version {
                return Err(Status::blocked(format!(
                    "the driver-wheel resource is magnum-capi-helm {version} but driver-version is {}: juju config magnum-capi driver-version={version}, or attach the {} wheel",
                    settings.driver_version, settings.driver_version
                )));
            }
            if let Some(pin) = settings.driver_sha256.as_ref().filter(|p| *p != sha) {
                return Err(Status::blocked(format!(
                    "driver wheel sha256 {sha} does not match driver-sha256 {pin}: nothing installed; attach the right wheel or fix the pin"
                )));
            }
            if let Some(pypi) = released
                .as_ref()
                .filter(|p| settings.driver_sha256.is_none() && *p != sha)
            {
                return Err(Status::blocked(format!(
                    "driver wheel sha256 {sha} is not magnum-capi-helm {version} as released (sha256 {pypi}): nothing installed; attach the released wheel, or trust this build with juju config magnum-capi driver-sha256={sha}"
                )));
            }
            DriverSource::Wheels { sha256: sha.clone() }
        }
        None => DriverSource::Index {
            url: settings.pip_index_url.clone(),
            sha256: pin,
        },
    };
    let helm = match &resources.helm {
        Some(sha) => {
            if let Some(pin) = settings.helm_sha256.as_ref().filter(|p| *p != sha) {
                return Err(Status::blocked(format!(
                    "helm sha256 {sha} does not match helm-sha256 {pin}: nothing installed; attach the right helm or fix the pin"
                )));
            }
            Some(sha.clone())
        }
        None if o.helm_present => None,
        None => {
            return Err(Status::blocked(format!(
                "helm missing (the driver runs it to create clusters): juju attach-resource magnum-capi helm=./helm-v3.17.2-linux-{}.tar.gz",
                artifact::our_arch()
            )))
        }
    };
    let magnum_gid = o.magnum_gid.unwrap_or(0);
    let disabled: Vec<String> = match &settings.disabled_drivers {
        DisabledDrivers::Auto => {
            let mut d: Vec<String> = o
                .other_drivers
                .iter()
                .filter(|n| *n != DRIVER_ENTRY_POINT)
                .cloned()
                .collect();
            d.sort();
            d.dedup();
            d
        }
        DisabledDrivers::List(l) => l.clone(),
    };
    // Each option in the section this release reads; options it does not
    // know are not written (verify names them).
    let layout = compat::nearest(version).layout;
    let (mut capi_helm, mut labels, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
    for opt in &settings.driver_options {
        match opt.place.section(layout) {
            Some("capi_helm") => capi_helm.push((opt.key, opt.value.clone())),
            Some(_) => labels.push((opt.key, opt.value.clone())),
            None => unknown.push(opt.option),
        }
    }
    let conf = render::capi_conf(&capi_helm, &labels, &disabled);
    if !render::is_clean_ascii(&conf) {
        return Err(Status::blocked(
            "99-capi.conf would not be plain ASCII; check juju config magnum-capi values",
        ));
    }

    if settings.service_override == ServiceOverride::None {
        // magnum.conf is read after conf.d and wins on a duplicate key.
        let ours: Vec<(String, String)> = ini::keys(&conf);
        let theirs = ini::keys(o.magnum_conf.as_deref().unwrap_or(""));
        if let Some((s, k)) = ours.iter().find(|pair| theirs.contains(pair)) {
            return Err(Status::blocked(format!(
                "service-override=none but /etc/magnum/magnum.conf sets [{s}] {k}, which wins over 99-capi.conf: remove it there or juju config magnum-capi service-override=runbook"
            )));
        }
    }

    let mut files = vec![
        FileSpec {
            path: KUBECONFIG.into(),
            content: kubeconfig.bytes,
            mode: 0o640,
            uid: o.root_uid,
            gid: magnum_gid,
        },
        FileSpec {
            path: CAPI_CONF.into(),
            content: conf.into_bytes(),
            mode: 0o640,
            uid: o.root_uid,
            gid: magnum_gid,
        },
    ];
    let mut absent = Vec::new();
    // The services' environment: helm's directory on PATH, Juju's proxies.
    let env = render::ServiceEnv {
        extra_path: o
            .helm_dir
            .iter()
            .filter(|d| !paths::SERVICE_PATH.contains(&d.as_str()))
            .cloned()
            .collect(),
        vars: settings.proxy.vars(),
    };
    // The runbook's own drop-ins are adopted: ours takes their place.
    for service in SERVICES {
        // Absent ones are listed too, so the desired state is the same
        // before and after the adoption (the hook after it has nothing to
        // do). Any other override.conf is the operator's.
        let path = paths::runbook_dropin(service);
        match o.files.get(&path) {
            Some(Some(f)) if !is_runbook_override(&String::from_utf8_lossy(&f.content)) => {}
            _ => absent.push(path),
        }
    }
    for service in SERVICES {
        let path = paths::dropin(service);
        match settings.service_override {
            ServiceOverride::Runbook => {
                let Some(Some(binary)) = o.binaries.get(service) else {
                    return Err(Status::blocked(format!(
                        "{service} binary not found in /usr/bin or /usr/local/bin, needed by service-override=runbook: juju config magnum-capi service-override=none"
                    )));
                };
                files.push(FileSpec {
                    path,
                    content: render::runbook_dropin(binary, &env).into_bytes(),
                    mode: 0o644,
                    uid: o.root_uid,
                    gid: o.root_gid,
                });
            }
            ServiceOverride::None | ServiceOverride::Packaged => absent.push(path),
        }
        // The packaging's /etc/default file: the charm's block in `packaged`
        // mode (with --config-dir) and `none` mode (the packaged ExecStart
        // stays, and its init script resets PATH); in `runbook` mode the
        // drop-in carries the environment and the block comes out. The rest
        // of the file is the operator's.
        let path = paths::env_default(service);
        let existing = o.files.get(&path).cloned().flatten();
        let theirs = existing
            .as_ref()
            .map(|f| render::strip_block(&String::from_utf8_lossy(&f.content)));
        let (mode, uid, gid) = existing
            .as_ref()
            .map_or((0o644, o.root_uid, o.root_gid), |f| (f.mode, f.uid, f.gid));
        let ours = existing.as_ref().is_some_and(|f| {
            String::from_utf8_lossy(&f.content)
                .lines()
                .any(|l| l.trim_end() == render::BLOCK_BEGIN)
        });
        let content = match settings.service_override {
            ServiceOverride::Packaged => {
                if !o.reads_env_default.get(service).copied().unwrap_or(false) {
                    return Err(Status::blocked(format!(
                        "service-override=packaged needs {service}.service to start through /etc/init.d/{service}, which reads /etc/default/{service}; this unit starts it another way: juju config magnum-capi service-override=runbook"
                    )));
                }
                Some(render::env_default(
                    theirs.as_deref().unwrap_or(""),
                    service,
                    &env,
                    true,
                ))
            }
            ServiceOverride::None => Some(render::env_default(
                theirs.as_deref().unwrap_or(""),
                service,
                &env,
                false,
            )),
            // Only a file with the charm's block is the charm's to change.
            ServiceOverride::Runbook if ours => theirs,
            ServiceOverride::Runbook => continue,
        };
        match content {
            // Nothing of the operator's left: the charm made the file.
            Some(c) if c.trim().is_empty() => absent.push(path),
            Some(c) => files.push(FileSpec {
                path,
                content: c.into_bytes(),
                mode,
                uid,
                gid,
            }),
            None => absent.push(path),
        }
    }
    Ok(Desired {
        driver_version: settings.driver_version.clone(),
        driver_source,
        helm,
        conf_d: DirSpec {
            mode: 0o750,
            uid: o.root_uid,
            gid: magnum_gid,
        },
        files,
        absent,
        settle_seconds: settings.restart_settle_seconds,
        grant_timeout: settings.restart_grant_timeout,
        ready: Status::active(format!("magnum-capi-helm {} ready", settings.driver_version)),
        unknown_options: unknown,
        pip_env: settings.proxy.vars(),
    })
}

/// The difference between the desired and the observed unit.
pub fn diff(d: &Desired, o: &Observed) -> Changes {
    // The same version from other bytes (a new wheel attached) reinstalls.
    let new_wheel = matches!(&d.driver_source, DriverSource::Wheels { sha256 } if o.installed_wheel_sha256.as_ref() != Some(sha256));
    let mut c = Changes {
        install_driver: o.driver_version.as_deref() != Some(d.driver_version.as_str()) || new_wheel,
        install_helm: d
            .helm
            .as_ref()
            .is_some_and(|sha| o.installed_helm_sha256.as_ref() != Some(sha) || !o.helm_intact),
        fix_conf_d: o.conf_d != Some(d.conf_d),
        ..Changes::default()
    };
    for f in &d.files {
        if o.files.get(&f.path).and_then(Option::as_ref) != Some(&f.facts()) {
            c.writes.push(f.clone());
        }
    }
    for p in &d.absent {
        if matches!(o.files.get(p), Some(Some(_))) {
            c.removes.push(p.clone());
        }
    }
    let is_dropin = |p: &str| p.starts_with("/etc/systemd/");
    c.daemon_reload = c.writes.iter().any(|f| is_dropin(&f.path)) || c.removes.iter().any(|p| is_dropin(p));
    c.restart = c.install_driver || !c.writes.is_empty() || !c.removes.is_empty() || c.fix_conf_d;
    c
}

#[cfg(test)]
pub(crate) mod tests;
