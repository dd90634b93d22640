//! `juju run magnum-capi/0 verify`: is the CAPI driver really working on
//! this unit, and if not, what to do. The runbook's sections 5, 9 and 10 and
//! its done-when list as checks, each pass, fail or skip with a detail and,
//! on fail, the fix. Reads only; changes nothing.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::check::{self, Check};
use crate::clients::kube::Kube;
use crate::converge::desired_state;
use crate::event::Event;
use crate::juju::{HookTools, Stop};
use crate::plan::paths::{CAPI_CONF, CONF_D, KUBECONFIG, SERVICES, SERVICE_PATH};
use crate::plan::red_flags::first_red_flag;
use crate::plan::settings::{ServiceOverride, Settings, DRIVER_ENTRY_POINT};
use crate::plan::{compat, ini, kubeconfig, render, x509, Desired, Observed};
use crate::unit::observe::observe;
use crate::unit::services::{self as systemd, ServiceState};
use crate::unit::{Accounts, Root};

/// The management cluster gets this long, once: a dead server costs it
/// once, not per check.
const KUBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks 2-4 in one python3 run: the driver's entry point, magnum's own
/// driver lookup and config loader, as the service runs them.
const PYTHON_CHECK: &str = include_str!("verify_check.py");

#[derive(Debug, Default, Deserialize)]
struct PythonReport {
    driver: Option<String>,
    get_driver: Option<String>,
    #[serde(default)]
    claimants: Vec<String>,
    conf: Option<LoadedConf>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LoadedConf {
    kubeconfig_file: String,
    disabled_drivers: Vec<String>,
}

/// The --config-file/--config-dir arguments of an effective ExecStart
/// (`{ path=... ; argv[]=... ; ... }`); none means oslo.config's defaults.
pub fn config_args(exec_start: &str) -> Vec<String> {
    let argv = exec_start
        .split("argv[]=")
        .nth(1)
        .and_then(|s| s.split(" ;").next())
        .unwrap_or("");
    config_args_of(argv.split_whitespace())
}

/// The --config-file/--config-dir arguments among these words, in order.
fn config_args_of<'a>(words: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut words = words.into_iter();
    while let Some(w) = words.next() {
        if w.starts_with("--config-file=") || w.starts_with("--config-dir=") {
            out.push(w.to_string());
        } else if w == "--config-file" || w == "--config-dir" {
            if let Some(v) = words.next() {
                out.push(format!("{w}={v}"));
            }
        }
    }
    out
}

/// The config arguments magnum's own parser gets in a running service,
/// from its `/proc/<pid>/cmdline`: the service's arguments, or under uwsgi
/// (the packaged API on Debian) the app's, which uwsgi passes from
/// `--pyargv` (one word, split on spaces into the app's `sys.argv`).
/// `None` when the process cannot be read.
pub fn running_config_args(root: &Root, pid: u32) -> Option<Vec<String>> {
    let bytes = std::fs::read(root.path(format!("/proc/{pid}/cmdline"))).ok()?;
    let argv: Vec<String> = bytes
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let uwsgi = argv
        .first()
        .is_some_and(|a| a.rsplit('/').next().is_some_and(|b| b.starts_with("uwsgi")));
    if uwsgi {
        let pyargv = argv
            .iter()
            .position(|w| w == "--pyargv")
            .and_then(|i| argv.get(i + 1))
            .map_or("", String::as_str);
        return Some(config_args_of(pyargv.split_whitespace()));
    }
    Some(config_args_of(argv.iter().skip(1).map(String::as_str)))
}

/// A service's start as wall-clock seconds, from its monotonic timestamp.
fn started_at(s: &ServiceState) -> Option<f64> {
    let mono = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok()?;
    let mono_now = mono.tv_sec() as f64 + mono.tv_nsec() as f64 / 1e9;
    (s.exec_main_start_monotonic > 0)
        .then(|| crate::clock::epoch_secs_f64() - (mono_now - s.exec_main_start_monotonic as f64 / 1e6))
}

struct Verify<'a> {
    tools: &'a HookTools,
    checks: Vec<Check>,
}

impl Verify<'_> {
    fn record(&mut self, c: Check) -> Result<()> {
        self.tools.action_log(&c.log_line())?;
        self.checks.push(c);
        Ok(())
    }
}

pub fn run(root: &Root, tools: &HookTools) -> Result<()> {
    crate::panic::point("verify");
    let mut v = Verify {
        tools,
        checks: Vec::new(),
    };
    let state = crate::state::State::load(root)?;
    let mut o = observe(root)?;
    state.complete(root, &mut o);
    let services_before = systemd::show(root, &SERVICES).ok();
    let desired = match crate::plan::principal_missing(&o) {
        Some(waiting) => Err(Stop::Report(waiting)),
        None => desired_state(
            &Event::Action(crate::event::Action::Verify),
            tools,
            &o,
            &state.resource_facts(),
        ),
    };
    let (settings, desired) = match desired {
        Ok((s, d)) => (Some(s), Some(d)),
        Err(Stop::Failed(e)) => return Err(e),
        Err(Stop::Report(status)) => {
            v.record(Check::fail(
                "configuration",
                status.message.clone(),
                "see the message; juju status magnum-capi shows it too",
            ))?;
            (None, None)
        }
    };

    // 1. The driver at the configured version.
    let want = settings
        .as_ref()
        .map_or(crate::plan::settings::DEFAULT_DRIVER_VERSION.to_string(), |s| {
            s.driver_version.clone()
        });
    v.record(match &o.driver_version {
        Some(have) if *have == want => Check::pass(
            "driver-installed",
            match compat::release(have) {
                Some(_) => format!("magnum-capi-helm {have} (a release the charm knows: installed only with PyPI's sha256)"),
                None => format!("magnum-capi-helm {have}: unpinned (not in the charm's table of released wheels; its bytes were checked only against driver-sha256, if set)"),
            },
        ),
        Some(have) => Check::fail(
            "driver-installed",
            format!("magnum-capi-helm {have} installed, {want} configured"),
            "wait for the next hook, or check juju status magnum-capi for why the install failed",
        ),
        None => Check::fail(
            "driver-installed",
            "magnum-capi-helm is not installed in the system Python",
            "check juju status magnum-capi; the charm installs it on every hook",
        ),
    })?;

    // The services' effective command lines (check 8, and the config
    // arguments for check 3).
    let shown = systemd::show_properties(&SERVICES, "Id,ExecStart,DropInPaths,MainPID").unwrap_or_default();
    let exec = |i: usize| {
        shown
            .get(i)
            .and_then(|m| m.get("ExecStart"))
            .cloned()
            .unwrap_or_default()
    };
    // What each running service was given (the packaged init script
    // composes its arguments), read once; for the conductor's config
    // loader check, else what systemd would start.
    let pid_of = |i: usize| {
        shown
            .get(i)
            .and_then(|m| m.get("MainPID"))
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|p| *p != 0)
    };
    let running: Vec<Option<Vec<String>>> = (0..SERVICES.len())
        .map(|i| pid_of(i).and_then(|pid| running_config_args(root, pid)))
        .collect();
    let conductor_args = running[1].clone().unwrap_or_else(|| config_args(&exec(1)));

    // 2-4. One python3 run.
    let py = python_report(&conductor_args);
    v.record(match (&py.driver, &py.get_driver, &py.error) {
        (Some(_), Some(found), None) if found.starts_with("magnum_capi_helm") => Check::pass(
            "driver-loads",
            format!(
                "entry point {DRIVER_ENTRY_POINT} loads; magnum's get_driver(vm, ubuntu, kubernetes) returns {found}"
            ),
        ),
        (_, Some(found), None) => Check::fail(
            "driver-loads",
            format!("magnum's get_driver(vm, ubuntu, kubernetes) returns {found}, not the CAPI driver"),
            "juju config magnum-capi disabled-drivers=auto, or set the image property magnum_driver=k8s_capi_helm_v1",
        ),
        (None, _, _) => Check::fail(
            "driver-loads",
            format!(
                "entry point {DRIVER_ENTRY_POINT} not found{}",
                py.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
            ),
            "juju config magnum-capi driver-version=1.1.0 (a release with the k8s_capi_helm_v1 entry point)",
        ),
        (_, _, Some(e)) => Check::fail(
            "driver-loads",
            format!("magnum cannot load the driver: {e}"),
            "read the error; journalctl -u magnum-conductor on the unit",
        ),
        _ => Check::fail(
            "driver-loads",
            "no answer from the python check",
            "run python3 -c 'import magnum_capi_helm' on the unit",
        ),
    })?;
    v.record(config_loader_check(&py, desired.as_ref(), &conductor_args))?;
    v.record(capi_conf_check(root, &o, desired.as_ref(), settings.as_ref(), &py)?)?;

    // 5. The kubeconfig file.
    v.record(kubeconfig_file_check(root, &o)?)?;

    // 6, 6b, 6c. The management cluster: reachable, credentials the
    // installed driver can use, the API versions it requests.
    let api_resources = settings.as_ref().and_then(|s| {
        s.driver_options
            .iter()
            .find(|o| o.key == "api_resources")
            .map(|o| o.value.replace("$$", "$"))
    });
    let (reach, creds, apis) = management_cluster_checks(root, o.driver_version.as_deref(), api_resources.as_deref());
    v.record(reach)?;
    v.record(creds)?;
    v.record(apis)?;

    // 7. helm, as the conductor finds and runs it.
    v.record(helm_check(root, pid_of(1)))?;

    // 8. Drop-ins, or the packaged start's arguments.
    v.record(dropin_check(
        &shown,
        &running,
        settings.as_ref().map(|s| s.service_override),
    ))?;

    // 9, 10. Services and their journal.
    let services_after = systemd::show(root, &SERVICES).ok();
    v.record(services_check(
        root,
        &o,
        services_before.as_deref(),
        services_after.as_deref(),
    ))?;
    v.record(journal_check(services_after.as_deref()))?;

    // 11. The runbook's driver check through the Magnum API.
    v.record(api_driver_check(tools, settings.as_ref())?)?;

    tools.action_set(&check::results(&v.checks))?;
    if let Some(message) = check::failure(&v.checks) {
        tools.action_fail(&message)?;
    }
    Ok(())
}

/// The runbook's section 10: a throw-away cluster template made and deleted
/// through the Magnum API proves the API loads the CAPI driver for the
/// image. Needs openstack-credentials-secret and an `image` parameter.
fn api_driver_check(tools: &HookTools, settings: Option<&Settings>) -> Result<Check> {
    const NAME: &str = "api-driver-check";
    let Some(uri) = settings.and_then(|s| s.openstack_credentials_secret.clone()) else {
        return Ok(Check::skip(NAME, "no openstack-credentials-secret: juju config magnum-capi openstack-credentials-secret=<secret uri> to run it"));
    };
    let params = tools.action_get()?;
    let param = |k: &str| {
        params
            .get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let Some(image) = param("image") else {
        return Ok(Check::skip(
            NAME,
            "credentials set; run verify image=<glance image> external-network=<network> to check the Magnum API",
        ));
    };
    let os = match crate::actions::smoketest::openstack(tools, Some(&uri)) {
        Ok(os) => os,
        Err(Stop::Report(m)) => return Ok(Check::fail(NAME, m, "fix openstack-credentials-secret")),
        Err(Stop::Failed(e)) => return Err(e),
    };
    let mut body = serde_json::json!({
        "name": format!("magnum-capi-verify-{:08x}", std::process::id() ^ (crate::clock::epoch_secs_f64() as u32)),
        "image_id": image,
        "coe": "kubernetes",
        "network_driver": "calico",
    });
    for (param_name, field) in [
        ("external-network", "external_network_id"),
        ("flavor", "flavor_id"),
        ("keypair", "keypair_id"),
    ] {
        if let Some(v) = param(param_name) {
            body[field] = serde_json::json!(v);
            if field == "flavor_id" {
                body["master_flavor_id"] = serde_json::json!(v);
            }
        }
    }
    let created = match os.magnum("POST", "/clustertemplates", Some(&body)) {
        Ok(a) if a.ok() => a.body,
        Ok(a) => {
            return Ok(Check::fail(NAME, format!("Magnum refused a kubernetes template for {image}: {}", a.error_text()), "the image needs os_distro=ubuntu (or flatcar) and kube_version; if it has them, the API does not load the CAPI driver: see the driver-loads and config-loader checks"))
        }
        Err(e) => return Ok(Check::fail(NAME, format!("{e:#}"), "check the Magnum API endpoint in the catalog")),
    };
    let uuid = created["uuid"].as_str().unwrap_or("").to_string();
    let deleted = os.magnum(
        "DELETE",
        &format!("/clustertemplates/{}", crate::clients::openstack::enc(&uuid)),
        None,
    );
    Ok(match deleted {
        Ok(a) if a.ok() || a.status == 404 => Check::pass(
            NAME,
            format!("the Magnum API made and deleted a kubernetes cluster template for {image}"),
        ),
        Ok(a) => Check::fail(
            NAME,
            format!("template {uuid} made but not deleted: {}", a.error_text()),
            format!("openstack coe cluster template delete {uuid}"),
        ),
        Err(e) => Check::fail(
            NAME,
            format!("template {uuid} made but not deleted: {e:#}"),
            format!("openstack coe cluster template delete {uuid}"),
        ),
    })
}

fn python_report(args: &[String]) -> PythonReport {
    let args_json = serde_json::to_string(args).unwrap_or_else(|_| "[]".into());
    let out = Command::new("python3")
        .args(["-c", PYTHON_CHECK, &args_json])
        .stdin(Stdio::null())
        .output();
    match out {
        Err(e) => PythonReport {
            error: Some(format!("cannot run python3: {e}")),
            ..PythonReport::default()
        },
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or("");
            serde_json::from_str(line).unwrap_or_else(|_| PythonReport {
                error: Some(format!(
                    "python3 printed no result: {}",
                    String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
                )),
                ..PythonReport::default()
            })
        }
    }
}

/// The disabled drivers the charm writes, from its desired 99-capi.conf.
fn desired_disabled(d: &Desired) -> Vec<String> {
    let conf = d
        .files
        .iter()
        .find(|f| f.path == CAPI_CONF)
        .map(|f| String::from_utf8_lossy(&f.content).into_owned());
    conf.as_deref()
        .unwrap_or("")
        .lines()
        .find_map(|l| l.strip_prefix("disabled_drivers = "))
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

fn config_loader_check(py: &PythonReport, desired: Option<&Desired>, args: &[String]) -> Check {
    const NAME: &str = "config-loader";
    let how = if args.is_empty() {
        "oslo.config's default files".to_string()
    } else {
        args.join(" ")
    };
    let Some(conf) = &py.conf else {
        return Check::fail(
            NAME,
            format!(
                "magnum's config loader failed with {how}: {}",
                py.error.as_deref().unwrap_or("no result")
            ),
            "fix the config file it names; journalctl -u magnum-conductor",
        );
    };
    if conf.kubeconfig_file != KUBECONFIG {
        return Check::fail(
            NAME,
            format!(
                "magnum reads [capi_helm] kubeconfig_file = {:?} with {how}",
                conf.kubeconfig_file
            ),
            "juju config magnum-capi service-override=packaged (conf.d must win over magnum.conf)",
        );
    }
    if let Some(d) = desired {
        let want = desired_disabled(d);
        if conf.disabled_drivers != want {
            return Check::fail(
                NAME,
                format!(
                    "magnum reads [drivers] disabled_drivers = {:?}, the charm wrote {want:?}",
                    conf.disabled_drivers
                ),
                "another config file overrides it; see the capi-conf check",
            );
        }
    }
    Check::pass(
        NAME,
        format!(
            "magnum reads kubeconfig_file = {KUBECONFIG} and disabled_drivers = {:?} with {how}",
            conf.disabled_drivers
        ),
    )
}

fn capi_conf_check(
    root: &Root,
    o: &Observed,
    desired: Option<&Desired>,
    settings: Option<&Settings>,
    py: &PythonReport,
) -> Result<Check> {
    const NAME: &str = "capi-conf";
    let Some(actual) = o.files.get(CAPI_CONF).cloned().flatten() else {
        return Ok(Check::fail(
            NAME,
            format!("{CAPI_CONF} is missing"),
            "check juju status magnum-capi; the next hook writes it",
        ));
    };
    let text = String::from_utf8_lossy(&actual.content).into_owned();
    if !render::is_clean_ascii(&text) {
        return Ok(Check::fail(
            NAME,
            format!("{CAPI_CONF} has non-ASCII or control bytes"),
            "juju run the next hook (e.g. juju config magnum-capi restart-settle-seconds=10) to rewrite it",
        ));
    }
    if let Some(d) = desired {
        let want = d
            .files
            .iter()
            .find(|f| f.path == CAPI_CONF)
            .map(|f| f.content.clone())
            .unwrap_or_default();
        if actual.content != want {
            return Ok(Check::fail(
                NAME,
                format!("{CAPI_CONF} differs from what the charm would write (edited by hand?)"),
                "the next update-status rewrites it; juju config changes go through juju config magnum-capi",
            ));
        }
    }
    // Files read after ours win on a duplicate key.
    let ours = ini::keys(&text);
    let mut later: Vec<std::path::PathBuf> = std::fs::read_dir(root.path(CONF_D))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "conf")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n > "99-capi.conf")
        })
        .collect();
    later.sort();
    if settings.is_some_and(|s| s.service_override == ServiceOverride::None) {
        later.push(root.path(crate::plan::paths::MAGNUM_CONF));
    }
    for file in later {
        let theirs = ini::keys(&std::fs::read_to_string(&file).unwrap_or_default());
        if let Some((s, k)) = ours.iter().find(|p| theirs.contains(p)) {
            let name = file
                .strip_prefix(root.dir())
                .map(|p| format!("/{}", p.display()))
                .unwrap_or_default();
            return Ok(Check::fail(
                NAME,
                format!("{name} also sets [{s}] {k} and is read after 99-capi.conf, so it wins"),
                format!("remove [{s}] {k} from {name}"),
            ));
        }
    }
    if let Some(other) = py.claimants.iter().find(|n| *n != DRIVER_ENTRY_POINT) {
        return Ok(Check::fail(
            NAME,
            format!("driver {other} also provides (vm, ubuntu, kubernetes) and is not disabled: the last loaded wins"),
            format!("juju config magnum-capi disabled-drivers=auto (or add {other})"),
        ));
    }
    let unread = match (desired, &o.driver_version) {
        (Some(d), Some(v)) if !d.unknown_options.is_empty() => format!(
            "; not written, magnum-capi-helm {v} does not read them: {}",
            d.unknown_options.join(", ")
        ),
        _ => String::new(),
    };
    Ok(Check::pass(
        NAME,
        format!("{CAPI_CONF} is ASCII, as the charm writes it, and nothing read later overrides it{unread}"),
    ))
}

/// Can `uid`/`gids` traverse (x) or read (r) a file with this metadata?
fn may(meta: &std::fs::Metadata, uid: u32, gids: &[u32], bit: u32) -> bool {
    let mode = meta.mode();
    if meta.uid() == uid {
        mode & (bit << 6) != 0
    } else if gids.contains(&meta.gid()) {
        mode & (bit << 3) != 0
    } else {
        mode & bit != 0
    }
}

fn kubeconfig_file_check(root: &Root, o: &Observed) -> Result<Check> {
    const NAME: &str = "kubeconfig";
    let Some(f) = o.files.get(KUBECONFIG).cloned().flatten() else {
        return Ok(Check::fail(
            NAME,
            format!("{KUBECONFIG} is missing"),
            "juju config magnum-capi kubeconfig-secret=<secret uri>, then check juju status",
        ));
    };
    let magnum_gid = o.magnum_gid.unwrap_or(u32::MAX);
    if (f.mode, f.uid, f.gid) != (0o640, o.root_uid, magnum_gid) {
        return Ok(Check::fail(
            NAME,
            format!("{KUBECONFIG} is {:o} {}:{}, not 0640 root:magnum", f.mode, f.uid, f.gid),
            "the next hook repairs it (update-status at the latest)",
        ));
    }
    let accounts = Accounts::read(&root.path("/etc/passwd"), &root.path("/etc/group"))?;
    let Some(magnum) = accounts.user("magnum") else {
        return Ok(Check::fail(NAME, "no magnum user", "juju integrate magnum-capi magnum"));
    };
    let gids = [magnum.gid, magnum_gid];
    for dir in ["/", "/etc", "/etc/magnum"] {
        let meta = std::fs::metadata(root.path(dir)).with_context(|| format!("stat {dir}"))?;
        if !may(&meta, magnum.uid, &gids, 0o1) {
            return Ok(Check::fail(
                NAME,
                format!("the magnum user cannot enter {dir} ({:o})", meta.mode() & 0o7777),
                format!("chmod o+x or g+x {dir} for the magnum group"),
            ));
        }
    }
    let meta = match std::fs::metadata(root.path(KUBECONFIG)) {
        Ok(m) => m,
        // Gone since the unit was observed: a check's failure, named, not
        // the action's error without a path.
        Err(e) => {
            return Ok(Check::fail(
                NAME,
                format!("cannot stat {KUBECONFIG}: {e}"),
                "the next hook rewrites it (update-status at the latest)",
            ))
        }
    };
    if !may(&meta, magnum.uid, &gids, 0o4) {
        return Ok(Check::fail(
            NAME,
            "the magnum user cannot read the kubeconfig",
            "the next hook repairs the mode",
        ));
    }
    Ok(Check::pass(
        NAME,
        format!("{KUBECONFIG} 0640 root:magnum, readable by magnum"),
    ))
}

/// The group/versions the installed driver requests (compat.rs), with
/// 1.4.0's `[capi_helm] api_resources` overrides applied (kind ->
/// `{"api_version": "group/version"}`, kubernetes.py reads them at import).
pub fn driver_apis(installed: &str, api_resources: Option<&str>) -> Vec<String> {
    let release = compat::nearest(installed);
    let overrides: serde_json::Value = api_resources
        .filter(|_| release.layout >= compat::Layout::V1_4)
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    let mut apis = std::collections::BTreeSet::new();
    for (kind, group) in [
        ("Cluster", "cluster.x-k8s.io"),
        ("MachineDeployment", "cluster.x-k8s.io"),
        ("Machine", "cluster.x-k8s.io"),
        ("K8sControlPlane", "controlplane.cluster.x-k8s.io"),
        ("OpenstackCluster", "infrastructure.cluster.x-k8s.io"),
    ] {
        let prefix = format!("{group}/");
        let default = release
            .apis
            .iter()
            .find(|a| a.starts_with(&prefix))
            .map(|a| a.to_string());
        let chosen = overrides[kind]["api_version"]
            .as_str()
            .filter(|v| v.starts_with(&prefix))
            .map(str::to_string)
            .or(default);
        apis.extend(chosen);
    }
    apis.into_iter().collect()
}

/// The fix for a management cluster that lacks `missing`.
fn api_fix(missing: &str, installed: &str) -> String {
    if missing.ends_with("/v1alpha6") {
        format!(
            "magnum-capi-helm {installed} requests {missing}, which CAPO 0.11 and later no longer serve: juju config magnum-capi driver-version={} (OpenStackCluster v1beta1), or run a CAPO that serves v1alpha6",
            compat::DEFAULT_VERSION
        )
    } else {
        format!("install or upgrade Cluster API and CAPO on the management cluster (clusterctl init --infrastructure openstack) so that it serves {missing}")
    }
}

fn management_cluster_checks(
    root: &Root,
    installed: Option<&str>,
    api_resources: Option<&str>,
) -> (Check, Check, Check) {
    const REACH: &str = "management-cluster";
    const CREDS: &str = "kubeconfig-credentials";
    const APIS: &str = "management-cluster-apis";
    let bytes = match std::fs::read(root.path(KUBECONFIG)) {
        Ok(b) => b,
        Err(_) => {
            return (
                Check::skip(REACH, "no kubeconfig"),
                Check::skip(CREDS, "no kubeconfig"),
                Check::skip(APIS, "no kubeconfig"),
            )
        }
    };
    let target = match kubeconfig::target(&bytes) {
        Ok(t) => t,
        Err(e) => {
            return (
                Check::fail(
                    REACH,
                    e,
                    "juju update-secret <secret> kubeconfig#file=<good kubeconfig>",
                ),
                Check::skip(CREDS, "kubeconfig unreadable"),
                Check::skip(APIS, "kubeconfig unreadable"),
            )
        }
    };
    if target.plugin {
        return (
            Check::skip(
                REACH,
                "the kubeconfig uses an exec/auth-provider plugin: not supported (the driver cannot run it either)",
            ),
            Check::fail(
                CREDS,
                "exec/auth-provider plugin credentials",
                "use a service-account token kubeconfig",
            ),
            Check::skip(APIS, "the management cluster was not reached"),
        );
    }
    let creds = credentials_check(&target, installed);
    let kube = match Kube::new(target.clone(), KUBE_TIMEOUT) {
        Ok(k) => k,
        Err(e) => {
            return (
                Check::fail(
                    REACH,
                    format!("{e:#}"),
                    "juju update-secret <secret> kubeconfig#file=<good kubeconfig>",
                ),
                creds,
                Check::skip(APIS, "the management cluster was not reached"),
            )
        }
    };
    let server = &target.server;
    // The versions a group serves, from API discovery (GET /apis/<group>).
    let served = |group: &str| -> Result<Option<Vec<String>>, String> {
        match kube.get(&format!("/apis/{group}")) {
            Ok((200, body)) => Ok(Some(
                serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| {
                        v["versions"].as_array().map(|a| {
                            a.iter()
                                .filter_map(|x| x["version"].as_str().map(str::to_string))
                                .collect()
                        })
                    })
                    .unwrap_or_default(),
            )),
            Ok((404, _)) => Ok(None),
            Ok((status, _)) => Err(format!("GET {server}/apis/{group}: HTTP {status}")),
            Err(e) => Err(format!("GET {server}/apis/{group}: {e:#}")),
        }
    };
    let reach = match kube.get("/version") {
        Err(e) => Check::fail(REACH, format!("GET {server}/version: {e:#}"), "check the management cluster is up and reachable from this unit (routes, firewall, CA)"),
        Ok((status, _)) if status == 401 || status == 403 => Check::fail(REACH, format!("GET {server}/version: HTTP {status}"), "the kubeconfig's credentials are refused: juju update-secret with a fresh service-account token kubeconfig"),
        Ok((status, body)) if status != 200 => Check::fail(REACH, format!("GET {server}/version: HTTP {status} {}", body.chars().take(80).collect::<String>()), "check the server URL in the kubeconfig"),
        Ok((_, body)) => {
            let version = serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| v["gitVersion"].as_str().map(str::to_string)).unwrap_or_else(|| "unknown".into());
            match served("cluster.x-k8s.io") {
                Ok(Some(versions)) if !versions.is_empty() => Check::pass(REACH, format!("Kubernetes {version} at {server}; Cluster API {}", versions.join(", "))),
                Ok(Some(_)) => Check::fail(REACH, format!("Kubernetes {version} at {server}, but cluster.x-k8s.io lists no version"), "install Cluster API (clusterctl init --infrastructure openstack) on the management cluster"),
                Ok(None) => Check::fail(REACH, format!("Kubernetes {version} at {server}, but GET /apis/cluster.x-k8s.io: HTTP 404"), "install Cluster API (clusterctl init --infrastructure openstack) on the management cluster"),
                Err(e) => Check::fail(REACH, e, "check the management cluster"),
            }
        }
    };
    if reach.outcome != check::Outcome::Pass {
        return (
            reach,
            creds,
            Check::skip(APIS, "the management cluster was not reached"),
        );
    }
    let Some(installed) = installed else {
        return (reach, creds, Check::skip(APIS, "no driver installed"));
    };
    let wanted = driver_apis(installed, api_resources);
    let mut missing = Vec::new();
    let mut cache: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
    for gv in &wanted {
        let (group, version) = gv.split_once('/').unwrap_or((gv, ""));
        if !cache.contains_key(group) {
            match served(group) {
                Ok(v) => {
                    cache.insert(group.to_string(), v);
                }
                Err(e) => return (reach, creds, Check::fail(APIS, e, "check the management cluster")),
            }
        }
        let serves = cache[group].as_ref().is_some_and(|v| v.iter().any(|x| x == version));
        if !serves {
            let has = match &cache[group] {
                Some(v) if !v.is_empty() => format!("{group} serves {}", v.join(", ")),
                _ => format!("{group} is not served at all"),
            };
            missing.push((gv.clone(), has));
        }
    }
    let apis = match missing.first() {
        None => Check::pass(
            APIS,
            format!("the management cluster serves every API magnum-capi-helm {installed} requests: {}", wanted.join(", ")),
        ),
        Some((first, _)) => Check::fail(
            APIS,
            format!(
                "magnum-capi-helm {installed} requests {}, which the management cluster does not serve ({}): every cluster create or status poll would fail",
                missing.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>().join(", "),
                missing.iter().map(|(_, h)| h.as_str()).collect::<Vec<_>>().join("; ")
            ),
            api_fix(first, installed),
        ),
    };
    (reach, creds, apis)
}

fn credentials_check(target: &kubeconfig::KubeTarget, installed: Option<&str>) -> Check {
    const NAME: &str = "kubeconfig-credentials";
    let Some(pem) = &target.client_cert_pem else {
        return match &target.token {
            Some(_) => match installed.and_then(compat::release).filter(|r| !r.token) {
                Some(r) => Check::fail(
                    NAME,
                    format!(
                        "a bearer token, but magnum-capi-helm {} reads only client certificates (kubernetes.py asserts one): every cluster create fails with AssertionError",
                        r.version
                    ),
                    format!("juju config magnum-capi driver-version={}", compat::DEFAULT_VERSION),
                ),
                None => Check::pass(NAME, "bearer token (does not expire with a certificate)"),
            },
            None => Check::fail(
                NAME,
                "no client certificate and no token",
                "use a service-account token kubeconfig",
            ),
        };
    };
    let der = ureq::tls::parse_pem(pem).find_map(|i| match i {
        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.der().to_vec()),
        _ => None,
    });
    let Some(not_after) = der.as_deref().and_then(x509::not_after) else {
        return Check::fail(
            NAME,
            "client-certificate-data is not a readable X.509 certificate",
            "juju update-secret with a service-account token kubeconfig",
        );
    };
    let days = (not_after as f64 - crate::clock::epoch_secs_f64()) / 86400.0;
    let date = x509::date(not_after);
    if days < 0.0 {
        Check::fail(
            NAME,
            format!("client certificate expired on {date}"),
            "juju update-secret with a service-account token kubeconfig (kubeadm client certificates last a year)",
        )
    } else if days < 30.0 {
        Check::fail(
            NAME,
            format!("client certificate expires on {date}, in {} days", days as i64),
            "juju update-secret with a service-account token kubeconfig before then",
        )
    } else if days < 90.0 {
        Check::pass(
            NAME,
            format!(
                "client certificate valid until {date}; warning: {} days left, consider a service-account token",
                days as i64
            ),
        )
    } else {
        Check::pass(NAME, format!("client certificate valid until {date}"))
    }
}

/// The environment of a running process (`/proc/<pid>/environ`).
fn environ(root: &Root, pid: u32) -> Option<BTreeMap<String, String>> {
    let bytes = std::fs::read(root.path(format!("/proc/{pid}/environ"))).ok()?;
    Some(
        bytes
            .split(|b| *b == 0)
            .filter_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect(),
    )
}

/// helm as the driver runs it: the first `helm` on magnum-conductor's own
/// PATH (read from the running process: the packaged init script resets
/// PATH), run with the conductor's environment as the magnum user. When
/// the conductor is not running, systemd's default PATH stands in.
fn helm_check(root: &Root, conductor_pid: Option<u32>) -> Check {
    const NAME: &str = "helm";
    let env = conductor_pid.and_then(|pid| environ(root, pid));
    let (path, whose) = match (env.as_ref().and_then(|e| e.get("PATH")), conductor_pid) {
        (Some(p), _) => (p.clone(), "magnum-conductor's PATH"),
        (None, None) => (
            SERVICE_PATH.join(":"),
            "systemd's default PATH (magnum-conductor is not running)",
        ),
        (None, Some(_)) => (
            SERVICE_PATH.join(":"),
            "systemd's default PATH (magnum-conductor's environment is unreadable)",
        ),
    };
    let Some(dir) = path
        .split(':')
        .find(|d| d.starts_with('/') && !d.contains("..") && root.path(d).join("helm").is_file())
    else {
        return Check::fail(
            NAME,
            format!("no helm on {whose} ({path}): the driver runs helm to create clusters"),
            "install a helm v3 binary as /usr/local/bin/helm (juju attach-resource magnum-capi helm=...), and juju config magnum-capi service-override (either mode puts /usr/local/bin on the conductor's PATH)",
        );
    };
    let mut cmd = Command::new(root.path(dir).join("helm"));
    cmd.args(["version", "--short"]).stdin(Stdio::null());
    if let Some(env) = &env {
        cmd.env_clear().envs(env);
        // As the conductor's user, when this action can switch to it.
        if nix::unistd::geteuid().is_root() {
            let accounts = Accounts::read(&root.path("/etc/passwd"), &root.path("/etc/group")).ok();
            if let Some(u) = accounts.as_ref().and_then(|a| a.user("magnum")) {
                use std::os::unix::process::CommandExt;
                cmd.uid(u.uid)
                    .gid(accounts.as_ref().and_then(|a| a.group("magnum")).unwrap_or(u.gid));
            }
        }
    }
    let as_whom = if env.is_some() {
        " as magnum, with the conductor's environment"
    } else {
        ""
    };
    match cmd.output() {
        Ok(out) if out.status.success() => Check::pass(
            NAME,
            format!(
                "{dir}/helm {} (on {whose}{as_whom})",
                String::from_utf8_lossy(&out.stdout).trim()
            ),
        ),
        Ok(out) => Check::fail(
            NAME,
            format!(
                "{dir}/helm version failed{as_whom}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "replace it with a working static helm v3 binary",
        ),
        Err(e) => Check::fail(
            NAME,
            format!("cannot run {dir}/helm: {e}"),
            "install a helm v3 binary as /usr/local/bin/helm",
        ),
    }
}

fn dropin_check(
    shown: &[BTreeMap<String, String>],
    running: &[Option<Vec<String>>],
    mode: Option<ServiceOverride>,
) -> Check {
    const NAME: &str = "dropins";
    if shown.len() != SERVICES.len() {
        return Check::fail(
            NAME,
            "systemctl show gave no answer for the services",
            "systemctl status magnum-api magnum-conductor on the unit",
        );
    }
    let conf_dir = format!("--config-dir={CONF_D}");
    for (i, (service, props)) in SERVICES.iter().zip(shown).enumerate() {
        let exec = props.get("ExecStart").map(String::as_str).unwrap_or("");
        let dropins = props.get("DropInPaths").map(String::as_str).unwrap_or("");
        let ours = dropins.split_whitespace().any(|p| p.ends_with("99-magnum-capi.conf"));
        let reads_confd = exec.contains(&conf_dir);
        match mode {
            Some(ServiceOverride::Runbook) if !(ours && reads_confd) => {
                return Check::fail(
                    NAME,
                    format!("{service}: the drop-in is not in effect (ExecStart has no --config-dir)"),
                    "systemctl daemon-reload on the unit, or wait for the next hook",
                )
            }
            Some(ServiceOverride::None | ServiceOverride::Packaged) | None if ours => {
                return Check::fail(
                    NAME,
                    format!("{service}: the runbook drop-in is still loaded, but service-override is not runbook"),
                    "systemctl daemon-reload on the unit",
                )
            }
            Some(ServiceOverride::Packaged) | None => match running.get(i).cloned().flatten() {
                Some(args) if !args.contains(&conf_dir) => {
                    return Check::fail(
                        NAME,
                        format!(
                            "{service} runs without {conf_dir} (its arguments: {}), so magnum.conf wins over conf.d",
                            if args.is_empty() { "oslo.config's defaults".to_string() } else { args.join(" ") }
                        ),
                        format!("systemctl restart {service} (it was started before /etc/default/{service} had the charm's block), or juju config magnum-capi service-override=runbook if this packaging does not read /etc/default/{service}"),
                    )
                }
                _ => {}
            },
            _ => {}
        }
    }
    Check::pass(
        NAME,
        match mode {
            Some(ServiceOverride::None) => "service-override=none: packaged ExecStart, no charm drop-in".to_string(),
            Some(ServiceOverride::Runbook) => {
                "both services run with --config-file=/etc/magnum/magnum.conf --config-dir=/etc/magnum/magnum.conf.d"
                    .to_string()
            }
            _ => format!("service-override=packaged: the packaged start, given {conf_dir} by /etc/default/magnum-*"),
        },
    )
}

fn services_check(root: &Root, o: &Observed, before: Option<&[ServiceState]>, after: Option<&[ServiceState]>) -> Check {
    const NAME: &str = "services";
    let (Some(before), Some(after)) = (before, after) else {
        return Check::fail(
            NAME,
            "cannot read the services' state from systemd",
            "systemctl status magnum-api magnum-conductor",
        );
    };
    // The newest change to a file the services read.
    let newest = o
        .files
        .iter()
        .filter(|(_, f)| f.is_some())
        .filter_map(|(p, _)| std::fs::metadata(root.path(p)).ok())
        .map(|m| m.mtime() as f64)
        .fold(0.0, f64::max);
    for (b, a) in before.iter().zip(after) {
        let name = a.id.trim_end_matches(".service");
        if a.active_state != "active" {
            return Check::fail(
                NAME,
                format!("{name} is {} ({})", a.active_state, a.sub_state),
                format!("journalctl -u {name} on the unit; juju status magnum-capi"),
            );
        }
        if a.n_restarts != b.n_restarts || a.n_restarts > 0 {
            return Check::fail(
                NAME,
                format!("{name} is restarting (NRestarts {} -> {})", b.n_restarts, a.n_restarts),
                format!("journalctl -u {name}: see the journal check"),
            );
        }
        if started_at(a).is_some_and(|t| t + 1.0 < newest) {
            return Check::fail(
                NAME,
                format!("{name} started before the last change to its config files: it runs an old config"),
                "the next hook restarts it; or systemctl restart magnum-api magnum-conductor",
            );
        }
    }
    Check::pass(NAME, "magnum-api and magnum-conductor active, no restarts")
}

fn journal_check(states: Option<&[ServiceState]>) -> Check {
    const NAME: &str = "journal";
    let since = states
        .unwrap_or(&[])
        .iter()
        .filter_map(started_at)
        .fold(f64::MAX, f64::min);
    let since = if since == f64::MAX {
        crate::clock::epoch_secs_f64() - 600.0
    } else {
        since
    };
    match systemd::journal_since(&SERVICES, since.max(0.0) as u64) {
        Err(e) => Check::fail(
            NAME,
            format!("cannot read the journal: {e:#}"),
            "journalctl -u magnum-api -u magnum-conductor on the unit",
        ),
        Ok(text) => match first_red_flag(&text) {
            Some((flag, line)) => Check::fail(NAME, format!("{}: {line}", flag.cause), flag.fix),
            None => Check::pass(NAME, "no red flags since the services started"),
        },
    }
}
