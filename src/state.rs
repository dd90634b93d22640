//! The charm's own memory on the unit, under `/var/lib/magnum-capi` (root
//! only, survives upgrade-charm): the unit as it was before the charm came
//! (restored on remove), the status it last set, what it applied, a change
//! it rolled back, and the last good copies of its files. Versioned:
//! `load` migrates older formats.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::apply::files::{ensure_dir, write_atomic};
use crate::juju::Status;
use crate::plan::paths::{LAST_GOOD_DIR, PRESTATE_DIR, STATE_DIR, STATE_FILE, STATUS_UNKNOWN};
use crate::plan::{FileFacts, Observed};
use crate::unit::observe::read_optional;
use crate::unit::Root;

/// Bumped when the format changes; `load` migrates older ones.
/// 1: status, applied, rejected, last good. 2: + the pre-install state.
pub const FORMAT: u32 = 2;

/// What update-status's lean look needs of the state file, and no more:
/// the rest (last good, pre-install state, resources) is skipped unparsed.
#[derive(Debug, Deserialize)]
pub struct Glance {
    pub status: Option<Status>,
    pub applied: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub rejected: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub pending_restart: bool,
    #[serde(default)]
    pub restart_nonce: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub leading: bool,
    #[serde(default)]
    pub n_restarts: BTreeMap<String, u32>,
    #[serde(default)]
    pub watch: Option<crate::unit::watch::Watch>,
}

impl Glance {
    /// `None` when the file is missing or unreadable (the full hook then
    /// reads it, and says why).
    pub fn load(root: &Root) -> Option<Glance> {
        let bytes = std::fs::read(root.path(STATE_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// See `State::settled`.
    pub fn settled(&self) -> bool {
        settled(
            self.status.as_ref(),
            self.applied.is_some(),
            self.rejected.is_some(),
            self.pending_restart,
            self.restart_nonce.is_some(),
            self.leading,
        )
    }
}

/// Nothing owed: active, applied, nothing rejected, no restart pending or
/// waiting for its turn, no roll to lead. For `State` and `Glance` alike.
fn settled(
    status: Option<&Status>,
    applied: bool,
    rejected: bool,
    pending_restart: bool,
    restart_nonce: bool,
    leading: bool,
) -> bool {
    applied
        && status.is_some_and(|s| s.kind == crate::juju::StatusKind::Active)
        && !rejected
        && !pending_restart
        && !restart_nonce
        && !leading
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub format: u32,
    /// The status the charm last set: Juju keeps it between hooks, so an
    /// unchanged status is not set again.
    pub status: Option<Status>,
    pub app_version: Option<String>,
    /// The desired state last applied and found healthy: what a lean
    /// update-status compares the unit with.
    pub applied: Option<Applied>,
    /// A desired state that was applied, found unhealthy and rolled back:
    /// not tried again until the config changes (or upgrade-charm).
    pub rejected: Option<Rejected>,
    /// Managed files as they were at the last healthy point: owner and mode
    /// here, content in LAST_GOOD_DIR. `None` = the file did not exist.
    pub last_good: Option<BTreeMap<String, Option<Meta>>>,
    /// The unit before the charm changed anything (captured once, before
    /// the first change): what `stop`/`remove` put back.
    #[serde(default)]
    pub prestate: Option<Prestate>,
    /// The Juju resources as last fetched and staged.
    #[serde(default)]
    pub resources: Option<crate::supply::Resources>,
    /// The last fetch failed to download a resource: the next hook fetches
    /// again (the staged files and the installed driver were kept).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refetch_resources: bool,
    /// sha256 of the driver wheel the charm installed (when pinned or from
    /// a resource).
    #[serde(default)]
    pub installed_wheel_sha256: Option<String>,
    /// The helm the charm installed at /usr/local/bin/helm.
    #[serde(default)]
    pub helm: Option<HelmRecord>,
    /// Files changed and the restart that makes them count is not done
    /// yet (a hook died in between): the next hook restarts.
    #[serde(default)]
    pub pending_restart: bool,
    /// Rolling restart: this unit's request (`<change>-<epoch>`) while it
    /// waits for its turn, and whether, as leader, it has a roll to move.
    #[serde(default)]
    pub restart_nonce: Option<String>,
    #[serde(default)]
    pub leading: bool,
    /// NRestarts of each service at the last look: more means systemd
    /// restarted it since (a crash or a restart loop).
    #[serde(default)]
    pub n_restarts: BTreeMap<String, u32>,
    /// The unit's paths as stamped when it was last found as applied and
    /// active (unit::watch): while every stamp holds, update-status needs
    /// no more than stats and one look at systemd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<crate::unit::watch::Watch>,
    /// The kubeconfig secret's URI as the config last named it: a hook
    /// starts `secret-get` of it ahead, while it reads the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_uri: Option<String>,
    /// Loaded from an older format (logged; the next save writes format 2).
    #[serde(skip)]
    pub migrated: bool,
    /// The bytes last read from or written to the state file: a save that
    /// would write the same bytes writes nothing.
    #[serde(skip)]
    pub persisted: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmRecord {
    pub sha256: String,
    /// (size, mtime in ns, inode) right after install: a cheap drift check.
    pub stat: Option<(u64, i128, u64)>,
    pub version: Option<String>,
}

/// (size, mtime ns, inode) of a file.
pub fn file_stat(path: &std::path::Path) -> Option<(u64, i128, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.len(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        m.ino(),
    ))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prestate {
    /// Every file the charm manages or adopts; content in PRESTATE_DIR.
    pub files: BTreeMap<String, Option<Meta>>,
    /// The directories the charm may create.
    pub dirs: BTreeMap<String, Option<Meta>>,
    /// The driver version installed before the charm, if any.
    pub driver: Option<String>,
    /// False when unknown (a state migrated from format 1): then remove
    /// never uninstalls the driver.
    pub driver_known: bool,
    /// The services' ActiveState before.
    pub services: BTreeMap<String, String>,
    /// What the charm took over from a hand-made (runbook) setup.
    pub adopted: Vec<String>,
    /// Whether /usr/local/bin/helm existed: if not and the charm installed
    /// one, remove takes it away again.
    #[serde(default)]
    pub helm_existed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub fingerprint: String,
    pub driver_version: String,
    pub conf_d: Meta,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub fingerprint: String,
    pub status: Status,
}

/// A file's or directory's mode and owner, as stored.
pub type Meta = crate::plan::DirFacts;

fn stored_name(path: &str) -> String {
    path.trim_start_matches('/').replace('/', "%")
}

impl State {
    /// Nothing owed: active, applied, nothing rejected, no restart pending
    /// or waiting for its turn, no roll to lead.
    pub fn settled(&self) -> bool {
        settled(
            self.status.as_ref(),
            self.applied.is_some(),
            self.rejected.is_some(),
            self.pending_restart,
            self.restart_nonce.is_some(),
            self.leading,
        )
    }

    pub fn load(root: &Root) -> Result<State> {
        let path = root.path(STATE_FILE);
        match read_optional(&path)? {
            None => Ok(State {
                format: FORMAT,
                ..State::default()
            }),
            Some(bytes) => match serde_json::from_slice::<State>(&bytes) {
                Ok(s) => {
                    let mut s = State {
                        persisted: Some(bytes),
                        ..s.migrated()
                    };
                    // A hook panicked after setting a status of its own:
                    // what Juju shows is not the copy kept here.
                    if root.path(STATUS_UNKNOWN).exists() {
                        s.status = None;
                    }
                    Ok(s)
                }
                Err(e) => {
                    // A state file we cannot read is not fatal: converge
                    // from scratch (it only loses "unchanged" shortcuts).
                    tracing::warn!("ignoring unreadable {}: {e}", path.display());
                    Ok(State {
                        format: FORMAT,
                        ..State::default()
                    })
                }
            },
        }
    }

    /// What the next step depends on (plan::step).
    pub fn memory(&self) -> crate::plan::step::Memory<'_> {
        crate::plan::step::Memory {
            applied: self.applied.as_ref().map(|a| a.fingerprint.as_str()),
            rejected: self.rejected.as_ref().map(|r| (r.fingerprint.as_str(), &r.status)),
            pending_restart: self.pending_restart,
            waiting_turn: self.restart_nonce.is_some(),
            leading: self.leading,
            resources_fetched: self.resources.is_some() && !self.refetch_resources,
        }
    }

    /// Add what only the charm's memory knows to the observed unit: what
    /// it installed, and whether helm is still as it left it.
    pub fn complete(&self, root: &Root, o: &mut Observed) {
        o.installed_wheel_sha256 = self.installed_wheel_sha256.clone();
        o.installed_helm_sha256 = self.helm.as_ref().map(|h| h.sha256.clone());
        o.helm_intact = self
            .helm
            .as_ref()
            .is_some_and(|h| h.stat.is_some() && h.stat == file_stat(&root.path(crate::plan::paths::HELM)));
    }

    /// The staged resources, as the plan sees them.
    pub fn resource_facts(&self) -> crate::plan::ResourceFacts {
        let r = self.resources.clone().unwrap_or_default();
        crate::plan::ResourceFacts {
            wheel: r.wheel.map(|w| (w.version, w.sha256)),
            helm: r.helm.map(|h| h.sha256),
        }
    }

    /// Bring an older format up to FORMAT.
    fn migrated(mut self) -> State {
        if self.format < 2 {
            // Format 1 did not record the unit before install. The charm's
            // files were its own (restore removes them); whether it
            // installed the driver is unknown, so remove keeps the driver.
            if self.applied.is_some() || self.last_good.is_some() {
                let files = crate::plan::managed_paths()
                    .into_iter()
                    .filter(|p| !p.ends_with("/override.conf") && !p.starts_with("/etc/default/"))
                    .map(|p| (p, None))
                    .collect();
                let dirs = crate::plan::managed_dirs()
                    .into_iter()
                    .map(|d| {
                        (
                            d,
                            Some(Meta {
                                mode: 0,
                                uid: 0,
                                gid: 0,
                            }),
                        )
                    })
                    .collect();
                self.prestate = Some(Prestate {
                    files,
                    dirs,
                    driver: None,
                    driver_known: false,
                    services: BTreeMap::new(),
                    adopted: vec![],
                    helm_existed: true,
                });
            }
            tracing::info!("charm state migrated from format {} to {FORMAT}", self.format);
            self.format = FORMAT;
            self.migrated = true;
        }
        self
    }

    /// Write the state file, unless it already holds exactly this.
    pub fn save(&mut self, root: &Root, (uid, gid): (u32, u32)) -> Result<()> {
        let body = serde_json::to_vec_pretty(self).context("cannot serialise the charm state")?;
        if self.persisted.as_ref() == Some(&body) {
            return Ok(());
        }
        ensure_dir(&root.path(STATE_DIR), 0o700, uid, gid)?;
        write_atomic(&root.path(STATE_FILE), &body, 0o600, uid, gid)?;
        self.persisted = Some(body);
        Ok(())
    }

    /// Keep `files` as the last good copies.
    pub fn save_last_good(
        &mut self,
        root: &Root,
        ids: (u32, u32),
        files: &BTreeMap<String, Option<FileFacts>>,
    ) -> Result<()> {
        self.last_good = Some(store_files(root, ids, LAST_GOOD_DIR, files)?);
        Ok(())
    }

    /// The last good copies, content included.
    pub fn last_good_files(&self, root: &Root) -> Result<BTreeMap<String, Option<FileFacts>>> {
        load_files(root, LAST_GOOD_DIR, self.last_good.as_ref())
    }

    /// The pre-install copies, content included.
    pub fn prestate_files(&self, root: &Root) -> Result<BTreeMap<String, Option<FileFacts>>> {
        load_files(root, PRESTATE_DIR, self.prestate.as_ref().map(|p| &p.files))
    }
}

/// Copy `files` (content) into `dir` under the state directory, root only;
/// return their owner and mode (`None`: the file does not exist).
pub fn store_files(
    root: &Root,
    (uid, gid): (u32, u32),
    dir: &str,
    files: &BTreeMap<String, Option<FileFacts>>,
) -> Result<BTreeMap<String, Option<Meta>>> {
    ensure_dir(&root.path(STATE_DIR), 0o700, uid, gid)?;
    ensure_dir(&root.path(dir), 0o700, uid, gid)?;
    let mut metas = BTreeMap::new();
    for (path, facts) in files {
        let stored = root.path(dir).join(stored_name(path));
        match facts {
            Some(f) => {
                if read_optional(&stored)?.as_deref() != Some(&f.content[..]) {
                    write_atomic(&stored, &f.content, 0o600, uid, gid)?;
                }
                metas.insert(
                    path.clone(),
                    Some(Meta {
                        mode: f.mode,
                        uid: f.uid,
                        gid: f.gid,
                    }),
                );
            }
            None => {
                crate::apply::files::remove(&stored)?;
                metas.insert(path.clone(), None);
            }
        }
    }
    Ok(metas)
}

/// The files stored by `store_files`, content included.
fn load_files(
    root: &Root,
    dir: &str,
    metas: Option<&BTreeMap<String, Option<Meta>>>,
) -> Result<BTreeMap<String, Option<FileFacts>>> {
    let mut out = BTreeMap::new();
    for (path, meta) in metas.into_iter().flatten() {
        let facts = match meta {
            None => None,
            Some(m) => {
                let stored = root.path(dir).join(stored_name(path));
                let content =
                    read_optional(&stored)?.with_context(|| format!("stored copy {} is missing", stored.display()))?;
                Some(FileFacts {
                    content,
                    mode: m.mode,
                    uid: m.uid,
                    gid: m.gid,
                })
            }
        };
        out.insert(path.clone(), facts);
    }
    Ok(out)
}
