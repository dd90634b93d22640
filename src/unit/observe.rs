//! Observe the unit into plain data (`plan::Observed`): accounts, magnum's
//! files, installed Python packages, the files the charm manages. Only
//! reads files; never spawns a process.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::watch::{self, Watch};
use super::{Accounts, Root};
use crate::plan::paths::{self, BIN_DIRS, CONF_D, MAGNUM_CONF, SERVICES, UNIT_DIRS};
use crate::plan::{managed_paths, DirFacts, FileFacts, Observed};

/// Read a file, `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// A regular file with its mode and owner, `None` when absent.
pub fn file_facts(path: &Path) -> Result<Option<FileFacts>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot stat {}", path.display())),
    };
    // A directory or symlink where a file belongs reads as "wrong content":
    // an empty body with an impossible mode, so the plan rewrites it.
    if !meta.is_file() {
        return Ok(Some(FileFacts {
            content: Vec::new(),
            mode: u32::MAX,
            uid: meta.uid(),
            gid: meta.gid(),
        }));
    }
    let content = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(FileFacts {
        content,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    }))
}

pub fn dir_facts(path: &Path) -> Result<Option<DirFacts>> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(Some(DirFacts {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        })),
        Ok(m) => Ok(Some(DirFacts {
            mode: u32::MAX,
            uid: m.uid(),
            gid: m.gid(),
        })),
        Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot stat {}", path.display())),
    }
}

/// The system Python's package directories under the root, in import order
/// (pip's root installs first).
pub fn site_dirs(root: &Root) -> Vec<PathBuf> {
    site_candidates(root).into_iter().filter(|p| p.is_dir()).collect()
}

/// Every directory `site_dirs` may return, existing or not.
fn site_candidates(root: &Root) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pattern in paths::SITE_DIRS_GLOB {
        let (before, after) = pattern.split_once('*').map_or((pattern, None), |(b, a)| (b, Some(a)));
        match after {
            None => out.push(root.path(before)),
            Some(after) => {
                // "/usr/local/lib/python3*" + "/dist-packages"
                let parent = Path::new(before).parent().unwrap_or(Path::new("/"));
                let prefix = Path::new(before).file_name().and_then(|s| s.to_str()).unwrap_or("");
                let mut found: Vec<PathBuf> = fs::read_dir(root.path(parent))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(prefix)))
                    .map(|e| e.path().join(after.trim_start_matches('/')))
                    .collect();
                found.sort();
                found.reverse(); // newest python3.X first
                out.extend(found);
            }
        }
    }
    out
}

/// `Version:` from a dist-info's METADATA (or an egg-info's PKG-INFO).
fn metadata_version(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(dir.join("METADATA"))
        .or_else(|_| fs::read_to_string(dir.join("PKG-INFO")))
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(|v| v.trim().to_string())
}

/// Package metadata directories (`<name>-<version>.dist-info` or
/// `.egg-info`) whose normalised distribution name (lowercase, `-` and `.`
/// as `_`) passes `wanted`.
fn dist_dirs(site: &Path, wanted: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    dist_entries(site, wanted).into_iter().map(|(_, p)| p).collect()
}

/// `dist_dirs` with each directory's normalised name, sorted by path.
fn dist_entries(site: &Path, wanted: impl Fn(&str) -> bool) -> Vec<(String, PathBuf)> {
    use std::os::unix::ffi::OsStrExt;
    let metadata = |b: &[u8]| {
        let ends = |suffix: &[u8]| b.len() > suffix.len() && b[b.len() - suffix.len()..].eq_ignore_ascii_case(suffix);
        ends(b".dist-info") || ends(b".egg-info")
    };
    let mut v: Vec<(String, PathBuf)> = fs::read_dir(site)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let file = e.file_name();
            // Most entries are packages, not metadata: skip them unparsed.
            if !metadata(file.as_bytes()) {
                return None;
            }
            let file = file.to_str()?.to_ascii_lowercase();
            let stem = file
                .strip_suffix(".dist-info")
                .or_else(|| file.strip_suffix(".egg-info"))?;
            let name = stem.split_once('-').map_or(stem, |(n, _)| n).replace(['-', '.'], "_");
            wanted(&name).then(|| (name, e.path()))
        })
        .collect();
    v.sort_by(|a, b| a.1.cmp(&b.1));
    v
}

/// The metadata directories of every installed package named magnum*
/// (magnum, magnum-capi-helm, ...), site by site in import order: one scan
/// serves the driver's version, the driver list and the watch.
fn magnum_dists(sites: &[PathBuf]) -> Vec<(String, PathBuf)> {
    sites
        .iter()
        .flat_map(|s| dist_entries(s, |n| n.starts_with("magnum")))
        .collect()
}

/// The installed magnum-capi-helm version, as Python would import it,
/// from `magnum_dists`.
fn driver_version(dists: &[(String, PathBuf)]) -> Option<String> {
    dists
        .iter()
        .filter(|(name, _)| name == "magnum_capi_helm")
        .find_map(|(_, d)| metadata_version(d))
}

/// The installed pip's version (its flags differ across releases).
pub fn pip_version(sites: &[PathBuf]) -> Option<String> {
    sites
        .iter()
        .flat_map(|s| dist_dirs(s, |n| n == "pip"))
        .find_map(|d| metadata_version(&d))
}

/// Names of `magnum.drivers` entry points in `entry_points.txt` text.
pub fn magnum_driver_names(entry_points: &str) -> Vec<String> {
    let mut in_group = false;
    let mut out = Vec::new();
    for line in entry_points.lines().map(str::trim) {
        if line.starts_with('[') {
            in_group = line == "[magnum.drivers]";
        } else if in_group {
            if let Some((name, _)) = line.split_once('=') {
                out.push(name.trim().to_string());
            }
        }
    }
    out
}

/// Every `magnum.drivers` entry point of the packages whose name mentions
/// magnum (magnum itself, magnum-capi-helm, magnum-cluster-api, ...), from
/// `magnum_dists`.
fn magnum_drivers(dists: &[(String, PathBuf)]) -> Vec<String> {
    let mut out = Vec::new();
    for (_, dir) in dists {
        if let Ok(text) = fs::read_to_string(dir.join("entry_points.txt")) {
            out.extend(magnum_driver_names(&text));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Where a helm for the services may be, in the order they find one.
fn helm_dirs() -> impl Iterator<Item = &'static str> {
    paths::SERVICE_PATH.into_iter().chain([paths::SNAP_BIN])
}

fn helm_candidates(root: &Root) -> Vec<PathBuf> {
    helm_dirs().map(|d| root.path(d).join("helm")).collect()
}

/// The system Python's version: the name `/usr/bin/python3` links to
/// (`python3.11` on Debian and Ubuntu), else the newest
/// `/usr/lib/python3.N` directory.
fn python(root: &Root) -> Option<(u32, u32)> {
    let link = fs::read_link(root.path("/usr/bin/python3")).ok();
    if let Some(v) = link
        .as_deref()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .and_then(crate::plan::compat::python_version)
    {
        return Some(v);
    }
    fs::read_dir(root.path("/usr/lib"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().and_then(crate::plan::compat::python_version))
        .max()
}

/// The directories `site_candidates` lists to expand its globs.
fn site_glob_parents(root: &Root) -> Vec<PathBuf> {
    paths::SITE_DIRS_GLOB
        .iter()
        .filter_map(|pattern| pattern.split_once('*'))
        .map(|(before, _)| root.path(Path::new(before).parent().unwrap_or(Path::new("/"))))
        .collect()
}

pub fn observe(root: &Root) -> Result<Observed> {
    // Stamp each path before it is read (unit::watch).
    let mut watch = Watch::default();
    let now = watch::coarse_now();
    let mut see = |p: &Path| watch.add_at(root, p, now);
    see(&root.path("/etc/passwd"));
    see(&root.path("/etc/group"));
    // Appears when a hook panicked (src/panic.rs): the lean update-status
    // then takes the full path, which sets the status again.
    see(&root.path(crate::plan::paths::STATUS_UNKNOWN));
    let accounts = Accounts::read(&root.path("/etc/passwd"), &root.path("/etc/group"))?;
    let root_user = accounts.user("root");
    // Every place site_dirs looks: the glob parents it lists, and each
    // candidate, found or not (one that appears later changes the stamp).
    for dir in site_glob_parents(root) {
        see(&dir);
    }
    let candidates = site_candidates(root);
    for dir in &candidates {
        see(dir);
    }
    let sites: Vec<PathBuf> = candidates.into_iter().filter(|p| p.is_dir()).collect();
    let dists = magnum_dists(&sites);
    for (_, dist) in &dists {
        see(dist);
    }
    see(&root.path(MAGNUM_CONF));
    see(&root.path(CONF_D));
    // Where the first of several candidates is found, the ones after it do
    // not change what is observed: watch up to the first one there.
    let mut up_to_first = |candidates: Vec<PathBuf>| {
        for c in candidates {
            see(&c);
            if c.is_file() {
                break;
            }
        }
    };
    for s in SERVICES {
        up_to_first(
            UNIT_DIRS
                .iter()
                .map(|d| root.path(d).join(format!("{s}.service")))
                .collect(),
        );
        up_to_first(BIN_DIRS.iter().map(|d| root.path(d).join(s)).collect());
    }
    up_to_first(helm_candidates(root));
    see(&root.path("/usr/bin/python3"));
    see(&root.path(paths::HELM)); // the one the charm installs, wherever PATH finds one
    for p in managed_paths() {
        see(&root.path(&p));
    }
    for s in SERVICES {
        see(&root.path(paths::invocation_link(s)));
        see(&root.path(paths::init_script(s)));
    }
    let mut o = Observed {
        root_uid: root_user.map_or(0, |a| a.uid),
        root_gid: accounts.group("root").unwrap_or(0),
        magnum_user: accounts.user("magnum").is_some(),
        magnum_gid: accounts.group("magnum"),
        magnum_conf: read_optional(&root.path(MAGNUM_CONF))?.map(|b| {
            // Valid UTF-8 (the usual case) is kept as read, not copied.
            String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        }),
        driver_version: driver_version(&dists),
        other_drivers: magnum_drivers(&dists),
        conf_d: dir_facts(&root.path(CONF_D))?,
        ..Observed::default()
    };
    for s in SERVICES {
        let unit = format!("{s}.service");
        o.unit_files.insert(
            s.to_string(),
            UNIT_DIRS.iter().any(|d| root.path(d).join(&unit).exists()),
        );
        let unit_text = UNIT_DIRS
            .iter()
            .find_map(|d| read_optional(&root.path(d).join(&unit)).ok().flatten());
        let init_text = read_optional(&root.path(paths::init_script(s)))?;
        o.reads_env_default.insert(
            s.to_string(),
            match (unit_text, init_text) {
                (Some(u), Some(i)) => crate::plan::starts_through_env_default(
                    s,
                    &String::from_utf8_lossy(&u),
                    &String::from_utf8_lossy(&i),
                ),
                _ => false,
            },
        );
        let bin = BIN_DIRS
            .iter()
            .map(|d| format!("{d}/{s}"))
            .find(|p| root.path(p).is_file());
        o.binaries.insert(s.to_string(), bin);
    }
    let mut files = BTreeMap::new();
    for p in managed_paths() {
        let facts = file_facts(&root.path(&p))?;
        files.insert(p, facts);
    }
    o.files = files;
    o.helm_dir = helm_dirs()
        .find(|d| root.path(d).join("helm").is_file())
        .map(str::to_string);
    o.helm_present = o.helm_dir.is_some();
    o.python = python(root);
    o.watch = watch;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_of_the_magnum_drivers_group() {
        let t = "[console_scripts]\nmagnum-api = magnum.cmd.api:main\n\n[magnum.drivers]\nk8s_fedora_coreos_v1 = magnum.drivers.k8s_fedora_coreos_v1.driver:Driver\nk8s_capi_helm_v1 = magnum_capi_helm.driver:Driver\n\n[oslo.config.opts]\nx = y\n";
        assert_eq!(magnum_driver_names(t), ["k8s_fedora_coreos_v1", "k8s_capi_helm_v1"]);
    }
}
