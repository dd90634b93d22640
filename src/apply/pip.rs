//! Installing the driver with the system pip, and the one python3 spawn
//! that proves magnum can load it.

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// `pip3 install` arguments: `--no-deps` so pip never pulls a newer magnum
/// over the distro's (FACTS.md); `--break-system-packages` where pip knows
/// it (>= 23.0.1; older pips predate PEP 668 and refuse the flag).
pub fn install_args(version: &str, index_url: Option<&str>, pip_version: Option<&str>) -> Vec<String> {
    let mut args = base(pip_version);
    if let Some(url) = index_url {
        args.push("--index-url".into());
        args.push(url.into());
    }
    args.push(format!("magnum-capi-helm=={version}"));
    args
}

fn knows_break_system_packages(pip_version: &str) -> bool {
    let mut parts = pip_version.split('.').map(|p| {
        p.trim_matches(|c: char| !c.is_ascii_digit())
            .parse::<u32>()
            .unwrap_or(0)
    });
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    (major, minor, patch) >= (23, 0, 1)
}

/// Run pip3 with these arguments (install or uninstall), with Juju's proxy
/// settings in its environment. A unit without pip (charm-magnum installs
/// only its own packages) gets python3-pip from its own archive first.
pub fn install(args: &[String], env: &[(&str, String)]) -> Result<()> {
    crate::fault::point(&format!("pip {}", args[0]));
    let run = || {
        Command::new("pip3")
            .args(args)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_NO_INPUT", "1")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .output()
    };
    let out = match run() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            install_pip(env)?;
            run().context("cannot run pip3, although apt-get installed python3-pip")?
        }
        other => other.context("cannot run pip3")?,
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // pip's hash check names both hashes on two lines.
        let find = |p: &str| {
            err.lines()
                .find_map(|l| l.trim().strip_prefix(p).map(|h| h.trim().to_string()))
        };
        if let (Some(expected), Some(got)) = (find("Expected sha256"), find("Got")) {
            bail!("driver wheel sha256 {got} does not match {expected}, the sha256 pinned for it (driver-sha256, or the released wheel's when unset): nothing installed");
        }
        let last = last_line(&err);
        bail!("`pip3 {}` failed: {last}", args.join(" "));
    }
    crate::fault::point(&format!("pip {}:done", args[0]));
    Ok(())
}

/// `apt-get install python3-pip` from the unit's own archive; on "Unable
/// to locate package" (no package lists yet) `apt-get update` and once
/// more. The error names the last line apt printed and the fix.
fn install_pip(env: &[(&str, String)]) -> Result<()> {
    crate::note!("pip3 is not on this unit: installing python3-pip with apt-get");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .output()
            .context("pip3 is not on this unit and apt-get cannot run either: install python3-pip on the unit")
    };
    const INSTALL: [&str; 5] = ["install", "-y", "-q", "--no-install-recommends", "python3-pip"];
    let mut out = apt(&INSTALL)?;
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("Unable to locate package") {
        let update = apt(&["update", "-q"])?;
        if update.status.success() {
            out = apt(&INSTALL)?;
        } else {
            out = update;
        }
    }
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = last_line(&err);
        bail!("pip3 is not on this unit and `apt-get install python3-pip` failed: {last}; fix: install python3-pip on the unit (apt-get install python3-pip)");
    }
    crate::note!("installed python3-pip");
    Ok(())
}

/// The last non-empty line of a tool's stderr: what it failed on.
fn last_line(err: &str) -> &str {
    err.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .trim()
}

fn base(pip_version: Option<&str>) -> Vec<String> {
    let mut args = vec!["install".to_string()];
    if pip_version.is_none_or(knows_break_system_packages) {
        args.push("--break-system-packages".into());
    }
    args.push("--no-deps".into());
    args
}

/// From the wheels staged from the `driver-wheel` resource (and the kept
/// copy of the wheel the services run): no index at all.
pub fn install_from_wheels_args(version: &str, dirs: &[String], pip_version: Option<&str>) -> Vec<String> {
    let mut args = base(pip_version);
    args.push("--no-index".into());
    for dir in dirs {
        args.extend(["--find-links".into(), dir.clone()]);
    }
    args.push(format!("magnum-capi-helm=={version}"));
    args
}

/// A requirements file pinning the driver's hash, for `--require-hashes`.
pub fn requirements(version: &str, sha256: &str) -> String {
    format!("magnum-capi-helm=={version} --hash=sha256:{sha256}\n")
}

/// From an index with the wheel's hash pinned.
pub fn install_pinned_args(requirements: &str, index_url: Option<&str>, pip_version: Option<&str>) -> Vec<String> {
    let mut args = base(pip_version);
    args.push("--require-hashes".into());
    if let Some(url) = index_url {
        args.extend(["--index-url".into(), url.into()]);
    }
    args.extend(["-r".into(), requirements.into()]);
    args
}

/// `pip3 uninstall` arguments for the driver.
pub fn uninstall_args(pip_version: Option<&str>) -> Vec<String> {
    let mut args = vec!["uninstall".to_string(), "--yes".to_string()];
    if pip_version.is_none_or(knows_break_system_packages) {
        args.push("--break-system-packages".into());
    }
    args.push("magnum-capi-helm".into());
    args
}

/// Import check: the driver, its entry point, and its requirements.
const CHECK: &str = r#"
import importlib, json
r = {"missing": [], "entry_point": None, "error": None}
for m in ("magnum", "oslo_log", "oslo_utils", "pbr"):
    try:
        importlib.import_module(m)
    except Exception as e:
        r["missing"].append(m)
try:
    import importlib.metadata as md
    eps = md.entry_points()
    eps = eps.select(group="magnum.drivers") if hasattr(eps, "select") else eps.get("magnum.drivers", [])
    ep = [e for e in eps if e.name == "k8s_capi_helm_v1"]
    if not ep:
        r["error"] = "No 'k8s_capi_helm_v1' driver in entry point group magnum.drivers"
    else:
        cls = ep[0].load()
        r["entry_point"] = cls.__module__ + ":" + cls.__name__
except Exception as e:
    r["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(r))
"#;

#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct ImportCheck {
    pub missing: Vec<String>,
    pub entry_point: Option<String>,
    pub error: Option<String>,
}

impl ImportCheck {
    /// The blocked message, if the driver cannot serve.
    pub fn problem(&self) -> Option<String> {
        if !self.missing.is_empty() {
            return Some(format!(
                "driver requirements not importable: {} (install the distro magnum packages)",
                self.missing.join(", ")
            ));
        }
        self.error.as_ref().map(|e| format!("driver does not load: {e}"))
    }
}

pub fn import_check() -> Result<ImportCheck> {
    let out = Command::new("python3")
        .args(["-c", CHECK])
        .stdin(Stdio::null())
        .output()
        .context("cannot run python3")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or("");
    serde_json::from_str(line).with_context(|| {
        format!(
            "python3 import check printed no result ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_follow_the_pip_version() {
        assert_eq!(
            install_args("1.1.0", None, Some("23.0.1")),
            [
                "install",
                "--break-system-packages",
                "--no-deps",
                "magnum-capi-helm==1.1.0"
            ]
        );
        assert_eq!(
            install_args("1.1.0", Some("https://mirror/simple"), Some("22.0.2")),
            [
                "install",
                "--no-deps",
                "--index-url",
                "https://mirror/simple",
                "magnum-capi-helm==1.1.0"
            ]
        );
        assert!(install_args("1.1.0", None, None).contains(&"--break-system-packages".to_string()));
    }
}
