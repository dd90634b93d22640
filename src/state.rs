//! The charm's own memory on the unit, under `/var/lib/magnum-capi` (root
//! only, survives upgrade-charm): the status it last set, what it applied,
//! a change it rolled back, and the last good copies of its files.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::apply::files::{ensure_dir, write_atomic};
use crate::juju::Status;
use crate::plan::paths::{LAST_GOOD_DIR, STATE_DIR, STATE_FILE};
use crate::plan::FileFacts;
use crate::unit::observe::read_optional;
use crate::unit::Root;

/// Bumped when the format changes; `load` migrates older ones.
pub const FORMAT: u32 = 1;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

fn stored_name(path: &str) -> String {
    path.trim_start_matches('/').replace('/', "%")
}

impl State {
    pub fn load(root: &Root) -> Result<State> {
        let path = root.path(STATE_FILE);
        match read_optional(&path)? {
            None => Ok(State {
                format: FORMAT,
                ..State::default()
            }),
            Some(bytes) => match serde_json::from_slice::<State>(&bytes) {
                Ok(s) => Ok(s),
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

    pub fn save(&self, root: &Root, (uid, gid): (u32, u32)) -> Result<()> {
        ensure_dir(&root.path(STATE_DIR), 0o700, uid, gid)?;
        let body = serde_json::to_vec_pretty(self).context("cannot serialise the charm state")?;
        write_atomic(&root.path(STATE_FILE), &body, 0o600, uid, gid)
    }

    /// Keep `files` as the last good copies.
    pub fn save_last_good(
        &mut self,
        root: &Root,
        (uid, gid): (u32, u32),
        files: &BTreeMap<String, Option<FileFacts>>,
    ) -> Result<()> {
        ensure_dir(&root.path(STATE_DIR), 0o700, uid, gid)?;
        ensure_dir(&root.path(LAST_GOOD_DIR), 0o700, uid, gid)?;
        let mut metas = BTreeMap::new();
        for (path, facts) in files {
            let stored = root.path(LAST_GOOD_DIR).join(stored_name(path));
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
        self.last_good = Some(metas);
        Ok(())
    }

    /// The last good copies, content included.
    pub fn last_good_files(&self, root: &Root) -> Result<BTreeMap<String, Option<FileFacts>>> {
        let mut out = BTreeMap::new();
        for (path, meta) in self.last_good.iter().flatten() {
            let facts = match meta {
                None => None,
                Some(m) => {
                    let stored = root.path(LAST_GOOD_DIR).join(stored_name(path));
                    let content = read_optional(&stored)?
                        .with_context(|| format!("last good copy {} is missing", stored.display()))?;
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
}
