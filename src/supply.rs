//! The supply chain: the driver wheel (or a wheelhouse) and helm from Juju
//! resources, for clouds with no internet on their control plane. Fetched
//! with `resource-get` only on install and upgrade-charm (`juju
//! attach-resource` fires upgrade-charm), unpacked and hashed here, and
//! staged under the charm's state directory so later hooks need no spawn.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::apply::files::{ensure_dir, write_atomic};
use crate::juju::{HookTools, Stop};
use crate::plan::artifact::{self, Kind};
use crate::plan::paths::{STAGED_HELM, STAGED_WHEELS, STATE_DIR};
use crate::unit::Root;

/// Larger than any wheelhouse or helm release.
const MAX_RESOURCE: u64 = 256 * 1024 * 1024;

/// The resources as last fetched (kept in the charm's state).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub wheel: Option<StagedWheel>,
    pub helm: Option<StagedHelm>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedWheel {
    /// The magnum-capi-helm wheel's file name in STAGED_WHEELS.
    pub file: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedHelm {
    pub sha256: String,
}

pub fn sha256(bytes: &[u8]) -> String {
    artifact::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn read_resource(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot stat resource {}", path.display()))?;
    if meta.len() > MAX_RESOURCE {
        anyhow::bail!(
            "resource {} is {} bytes, over the 256 MiB limit",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read resource {}", path.display()))
}

/// `resource-get` both resources and stage them. `Stop::Report`: a blocked
/// status about a resource (not downloaded, wrong kind, wrong arch, no
/// driver in the wheelhouse); `Stop::Failed`: a failure to run or write.
pub fn fetch(tools: &HookTools, root: &Root, ids: (u32, u32)) -> Result<Resources, Stop> {
    // Both first: a resource the controller failed to download is not a
    // resource that was never attached. Then nothing staged is touched and
    // nothing installed changes; the status names it, the next hook retries.
    let get = |name: &str| -> Result<Option<std::path::PathBuf>, Stop> {
        tools.resource_get(name)?.map_err(|why| {
            Stop::blocked(format!("{name} resource: {why}; nothing was changed, the next hook tries again (juju resources magnum-capi; juju attach-resource magnum-capi {name}=<file>)"))
        })
    };
    let wheel_path = get("driver-wheel")?;
    let helm_path = get("helm")?;
    let mut res = Resources::default();
    ensure_dir(&root.path(STATE_DIR), 0o700, ids.0, ids.1)?;
    let wheels = root.path(STAGED_WHEELS);
    if wheels.exists() {
        std::fs::remove_dir_all(&wheels).with_context(|| format!("cannot clear {}", wheels.display()))?;
    }
    if let Some(path) = wheel_path {
        let bytes = read_resource(&path)?;
        ensure_dir(&root.path(format!("{STATE_DIR}/resources")), 0o700, ids.0, ids.1)?;
        ensure_dir(&wheels, 0o700, ids.0, ids.1)?;
        res.wheel = Some(stage_wheels(&bytes, &wheels, ids).map_err(|s| s.prefixed("driver-wheel resource: "))?);
    }
    if let Some(path) = helm_path {
        let bytes = read_resource(&path)?;
        let helm = helm_binary(&bytes).map_err(|s| s.prefixed("helm resource: "))?;
        ensure_dir(&root.path(format!("{STATE_DIR}/resources")), 0o700, ids.0, ids.1)?;
        write_atomic(&root.path(STAGED_HELM), &helm, 0o700, ids.0, ids.1)?;
        res.helm = Some(StagedHelm { sha256: sha256(&helm) });
    }
    Ok(res)
}

/// A wheel, or a .zip/.tar.gz of wheels: stage every wheel under its pip
/// name and describe the magnum-capi-helm one.
fn stage_wheels(bytes: &[u8], dir: &Path, ids: (u32, u32)) -> Result<StagedWheel, Stop> {
    let mut wheels: Vec<(String, Vec<u8>)> = Vec::new();
    match artifact::sniff(bytes) {
        Kind::Zip => {
            let Ok(mut zip) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
                return Err(Stop::blocked("not a readable zip file"));
            };
            let names: Vec<String> = zip.file_names().map(str::to_string).collect();
            if names.iter().any(|n| n.ends_with(".dist-info/WHEEL")) {
                // A single wheel: its name comes from its own metadata.
                let Some((name, version)) = artifact::wheel_identity(names.iter().map(String::as_str)) else {
                    return Err(Stop::blocked("a wheel without a .dist-info directory"));
                };
                let wheel_meta = names
                    .iter()
                    .find(|n| n.ends_with(".dist-info/WHEEL"))
                    .cloned()
                    .unwrap_or_default();
                let mut text = String::new();
                if zip
                    .by_name(&wheel_meta)
                    .map(|mut f| f.read_to_string(&mut text))
                    .is_err()
                {
                    return Err(Stop::blocked("the wheel's WHEEL file is unreadable"));
                }
                let Some(file) = artifact::wheel_file_name(&name, &version, &text) else {
                    return Err(Stop::blocked("the wheel's WHEEL file has no usable Tag"));
                };
                wheels.push((file, bytes.to_vec()));
            } else {
                for i in 0..zip.len() {
                    let Ok(mut entry) = zip.by_index(i) else {
                        return Err(Stop::blocked("a damaged zip entry"));
                    };
                    let name = entry.name().to_string();
                    if let Some(leaf) = artifact::safe_leaf(&name).filter(|l| l.ends_with(".whl")) {
                        let mut data = Vec::new();
                        if entry.read_to_end(&mut data).is_err() {
                            return Err(Stop::blocked(format!("cannot unpack {name}")));
                        }
                        wheels.push((leaf.to_string(), data));
                    }
                }
            }
        }
        Kind::Gzip => {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
            let Ok(entries) = tar.entries() else {
                return Err(Stop::blocked("not a readable .tar.gz"));
            };
            for entry in entries {
                let Ok(mut entry) = entry else {
                    return Err(Stop::blocked("a damaged .tar.gz"));
                };
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let name = entry
                    .path()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if let Some(leaf) = artifact::safe_leaf(&name).filter(|l| l.ends_with(".whl")) {
                    let mut data = Vec::new();
                    if entry.read_to_end(&mut data).is_err() {
                        return Err(Stop::blocked(format!("cannot unpack {name}")));
                    }
                    wheels.push((leaf.to_string(), data));
                }
            }
        }
        _ => {
            return Err(Stop::blocked(
                "neither a wheel (.whl) nor a wheelhouse (.tar.gz or .zip)",
            ))
        }
    }
    let mut driver = None;
    for (file, data) in &wheels {
        write_atomic(&dir.join(file), data, 0o600, ids.0, ids.1)?;
        let norm = file.to_ascii_lowercase().replace('-', "_");
        if norm.starts_with("magnum_capi_helm_") {
            let version = file.split('-').nth(1).unwrap_or("").to_string();
            driver = Some(StagedWheel {
                file: file.clone(),
                version,
                sha256: sha256(data),
            });
        }
    }
    driver.ok_or_else(|| Stop::blocked(format!("no magnum-capi-helm wheel in it ({} wheels)", wheels.len())))
}

/// A static helm v3 binary, or helm's `helm-vX-linux-<arch>.tar.gz`, for
/// this unit's architecture.
fn helm_binary(bytes: &[u8]) -> Result<Vec<u8>, Stop> {
    let ours = artifact::our_arch();
    let binary = match artifact::sniff(bytes) {
        Kind::Elf => bytes.to_vec(),
        Kind::Gzip => {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
            let Ok(entries) = tar.entries() else {
                return Err(Stop::blocked("not a readable .tar.gz"));
            };
            let mut found = None;
            let mut arches = Vec::new();
            for entry in entries {
                let Ok(mut entry) = entry else {
                    return Err(Stop::blocked("a damaged .tar.gz"));
                };
                let name = entry
                    .path()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if let Some(dir) = name.strip_suffix("/helm") {
                    let arch = dir
                        .rsplit('/')
                        .next()
                        .unwrap_or("")
                        .trim_start_matches("linux-")
                        .to_string();
                    if arch == ours {
                        let mut data = Vec::new();
                        if entry.read_to_end(&mut data).is_err() {
                            return Err(Stop::blocked(format!("cannot unpack {name}")));
                        }
                        found = Some(data);
                    } else {
                        arches.push(arch);
                    }
                }
            }
            match found {
                Some(b) => b,
                None if !arches.is_empty() => {
                    return Err(Stop::blocked(format!(
                        "the tarball is for linux-{}, this unit is linux-{ours}: attach helm-vX-linux-{ours}.tar.gz",
                        arches.join(", linux-")
                    )))
                }
                None => return Err(Stop::blocked("no linux-<arch>/helm in the tarball")),
            }
        }
        _ => return Err(Stop::blocked("neither a helm binary nor a helm-vX-linux-<arch>.tar.gz")),
    };
    match artifact::elf_arch(&binary) {
        Some(a) if a == ours => Ok(binary),
        Some(a) => Err(Stop::blocked(format!(
            "the helm binary is for {a}, this unit is {ours}"
        ))),
        None => Err(Stop::blocked("the helm in it is not an ELF executable")),
    }
}
