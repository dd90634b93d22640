//! The `Unit` fixture: a fake magnum unit in a temp directory (its root
//! filesystem, the fake programs first and alone on PATH, the fakes' world),
//! and the real built charm binary run against it with a Juju hook
//! environment. Tests read like a story: set the world up, declare what a
//! hook must do, run it.
//!
//! ```ignore
//! let unit = Unit::new();
//! unit.kubeconfig(KUBECONFIG).config("driver-version", "1.4.0");
//! unit.hook("install")
//!     .expect_status("active", "magnum-capi-helm 1.4.0 ready")
//!     .run();
//! // Between runs, the same mutations (each takes &self, returns &Self).
//! unit.config("namespace-prefix", "tenant")
//!     .service("magnum-api", Service::stopped(2_000_000));
//! let run = unit.hook("config-changed").expect_active().run();
//! assert!(run.called("systemctl restart"));
//! unit.fail("pip3", "ERROR: no index").config("driver-version", "1.3.0");
//! unit.hook("config-changed").expect_blocked("no index").expect_unchanged().run();
//! unit.heal("pip3");
//! ```
//!
//! - Mutations of the world (one name each): `config`/`unset_config`,
//!   `kubeconfig`, `secret`/`secret_error`, `fail`/`heal`, and the typed
//!   world keys of tests/fakes/fake_tool.rs: `pip(Pip)`, `service(name,
//!   Service)`, `resource`/`resource_error`, `journal`/`journal_append`,
//!   `apt(Apt)`, `unhealthy_if(Unhealthy)`, `python(Python)`,
//!   `loaded(name, Loaded)`, `at_stop`, `verify_python(VerifyPython)`;
//!   and of the unit itself: `put`, `chmod`, `without_bus`, `with_helm`,
//!   `without_helm`, `add_magnum`. No raw escape hatch: every key a test
//!   sets has a type (action parameters are free-form JSON by nature, and
//!   are `action`'s argument).
//! - Runs: `hook(name)`, `action(name, params)`, `dispatch(path)` return a
//!   `#[must_use]` [`Expect`]; its `expect_*` methods declare what the run
//!   must do: `expect_ok` (the default) / `expect_fail` / `expect_any_exit`,
//!   `expect_status(kind, message)`, `expect_active`, `expect_blocked(part)`,
//!   `expect_unchanged` (the unit's files as before, the charm's own state
//!   aside), `expect_spawned(labels)` / `expect_no_spawn`,
//!   `expect_action_failed(part)`; `env`, `program` and `note` (a label for
//!   the failure message) shape the run. `run()` runs the charm, checks
//!   every declaration, panics at the caller's line with the exit code,
//!   status, spawned programs and stderr if one fails, and returns the
//!   [`Run`] for any further reading.
//! - Constructors: `Unit::empty()` (no magnum yet), `Unit::new()` (a
//!   healthy magnum unit), `Unit::installed()` (with the kubeconfig secret,
//!   install run and exited 0), `Unit::converged()` (installed and active),
//!   `Unit::member(name, peers)` (one unit of a multi-unit test).
#![allow(dead_code)]

pub mod http;
pub mod kube_server;
pub mod openstack;
pub mod skip;

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const CHARM: &str = env!("CARGO_BIN_EXE_magnum-capi");
pub const FAKE_TOOL: &str = env!("CARGO_BIN_EXE_fake-tool");

/// Every program the charm may run; each is the fake, by name.
pub const TOOLS: [&str; 24] = [
    "relation-ids",
    "relation-list",
    "relation-get",
    "relation-set",
    "config-get",
    "secret-get",
    "status-set",
    "application-version-set",
    "action-get",
    "action-set",
    "action-fail",
    "action-log",
    "resource-get",
    "juju-log",
    "is-leader",
    "goal-state",
    "systemctl",
    "journalctl",
    "pip3",
    "python3",
    "helm",
    "pip",
    "python",
    "apt-get",
];

pub const SECRET_URI: &str = "secret:d1f8kq7mp25c77s6iqgg";

/// A valid service-account (token) kubeconfig.
pub const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: capi-mgmt
  cluster:
    server: https://10.20.0.10:6443
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJoVENDQVN1Z0F3SUJBZ0lVTHpVVlMwTXJQTTJlazR6NDFmdVlsMnN4c0ZRd0NnWUlLb1pJemowRUF3SXcKRnpFVk1CTUdBMVVFQXd3TVkyRndhUzF0WjIxMExXTmhNQ0FYRFRJMk1USXdOakEwTVRBeE5Gb1lEekl4TWpZeApNVEV5TURReE1ERTBXakFYTVJVd0V3WURWUVFEREF4allYQnBMVzFuYlhRdFkyRXdXVEFUQmdjcWhrak9QUUlCCkJnZ3Foa2pPUFFNQkJ3TkNBQVJuY1ZtL3hVaHExSmFJS3hoeGttM1VHb09BWGF1K3FzbExTaS93ckhuZklBSmoKb3hLQmE1RG5ZUTVuZHRPMWtBaktVVFdPRlZEY2cyTGxDTXoxcXhpWG8xTXdVVEFkQmdOVkhRNEVGZ1FVbGFGOQpscmFaVHpLRU9YVlMzQlArdGdGSkFIUXdId1lEVlIwakJCZ3dGb0FVbGFGOWxyYVpUektFT1hWUzNCUCt0Z0ZKCkFIUXdEd1lEVlIwVEFRSC9CQVV3QXdFQi96QUtCZ2dxaGtqT1BRUURBZ05JQURCRkFpRUF4RjFBWWNZSUZ2Wm0KOTlFY3dTREs4c2Y1OWo0dzNSTXk1ejg5U0tDSFcxNENJR0dTcFMweWdkV1BLZ0kzeDkvU2M4Z2V0dUFNK2w0MgpXdzhUZTFLMVhsVzUKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=
contexts:
- name: magnum@capi-mgmt
  context:
    cluster: capi-mgmt
    user: magnum
current-context: magnum@capi-mgmt
users:
- name: magnum
  user:
    token: eyJhbGciOiJSUzI1NiJ9.canary-token-0001.sig
";

/// Apply one hook's relation settings to the peers file (empty value:
/// delete), as the controller applies CommitHookChanges.
fn commit_relation_settings(peers: &Path, me: &str, changes: &Value) {
    let mut world: Value = fs::read(peers)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(json!({}));
    for (scope, target_path) in [
        ("app", vec!["app".to_string()]),
        ("unit", vec!["units".to_string(), me.to_string()]),
    ] {
        let Some(kv) = changes.get(scope).and_then(Value::as_object) else {
            continue;
        };
        let mut target = &mut world;
        for p in &target_path {
            if !target.is_object() {
                *target = json!({});
            }
            target = &mut target[p.as_str()];
        }
        if !target.is_object() {
            *target = json!({});
        }
        for (k, v) in kv {
            if v.is_null() {
                target.as_object_mut().unwrap().remove(k);
            } else {
                target[k.as_str()] = v.clone();
            }
        }
    }
    let tmp = peers.with_extension("tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(&world).unwrap()).unwrap();
    fs::rename(tmp, peers).unwrap();
}

/// The ids the fake unit's accounts map to. As root they are realistic;
/// as another user every account maps to ourselves, so chown still works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub root_uid: u32,
    pub root_gid: u32,
    pub magnum_uid: u32,
    pub magnum_gid: u32,
}

impl Ids {
    fn here() -> Ids {
        let (uid, gid) = (nix_uid(), nix_gid());
        if uid == 0 {
            Ids {
                root_uid: 0,
                root_gid: 0,
                magnum_uid: 64060,
                magnum_gid: 64060,
            }
        } else {
            Ids {
                root_uid: uid,
                root_gid: gid,
                magnum_uid: uid,
                magnum_gid: gid,
            }
        }
    }
}

/// CLOCK_MONOTONIC in microseconds, as systemd stamps a service's start.
pub fn monotonic_us() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000
}

fn nix_uid() -> u32 {
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

fn nix_gid() -> u32 {
    fs::metadata("/proc/self").map(|m| m.gid()).unwrap_or(0)
}

/// A file under the unit root as a test sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct FileState {
    pub content: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl std::fmt::Debug for FileState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:o} {}:{} {:?}", self.mode, self.uid, self.gid, self.text())
    }
}

impl FileState {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.content).into_owned()
    }
}

/// One program the charm ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub tool: String,
    pub args: Vec<String>,
    /// The proxy variables in its environment.
    pub env: std::collections::BTreeMap<String, String>,
}

impl Call {
    /// `tool verb` for systemctl-like tools, else the tool.
    pub fn label(&self) -> String {
        match self.tool.as_str() {
            "systemctl" | "pip3" => format!("{} {}", self.tool, self.args.first().cloned().unwrap_or_default()),
            _ => self.tool.clone(),
        }
    }
}

pub struct Unit {
    dir: tempfile::TempDir,
    pub ids: Ids,
    /// JUJU_UNIT_NAME, and the shared peer relation store of a multi-unit
    /// test (FAKE_PEERS).
    pub name: String,
    peers: Option<PathBuf>,
    /// The fake systemd on D-Bus, when it runs.
    bus: RefCell<Option<std::process::Child>>,
}

impl Drop for Unit {
    fn drop(&mut self) {
        self.stop_bus();
    }
}

/// What one run of the charm did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub calls: Vec<Call>,
}

impl Run {
    /// The programs run, labelled (`systemctl restart`, `config-get`, ...).
    /// D-Bus calls are not spawns: see `bus_calls`.
    /// On a converged unit the charm starts `config-get` and `secret-get`
    /// together (both run while it observes the unit): which one the fakes
    /// record first is a race between two processes, so a leading pair of
    /// them reads in one order, config-get first.
    pub fn spawned(&self) -> Vec<String> {
        let mut labels: Vec<String> = self
            .calls
            .iter()
            .filter(|c| c.tool != "dbus")
            .map(Call::label)
            .collect();
        if labels.len() >= 2 && labels[0] == "secret-get" && labels[1] == "config-get" {
            labels.swap(0, 1);
        }
        labels
    }

    /// Calls the fake systemd received over D-Bus (`LoadUnit`, `Get`).
    pub fn bus_calls(&self) -> Vec<Vec<String>> {
        self.calls
            .iter()
            .filter(|c| c.tool == "dbus")
            .map(|c| c.args.clone())
            .collect()
    }

    pub fn called(&self, label: &str) -> bool {
        self.spawned().iter().any(|l| l == label)
    }

    pub fn calls_of(&self, tool: &str) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.tool == tool).collect()
    }
}

// ---- the fakes' world, typed (tests/fakes/fake_tool.rs reads it) ----

/// A service as the fake systemd holds it (world `services`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub active_state: String,
    pub sub_state: String,
    pub result: String,
    pub n_restarts: u64,
    /// ExecMainStartTimestampMonotonic, in microseconds.
    pub start: u64,
    /// MainPID; unset, the fake derives one from `start` while active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_pid: Option<u64>,
}

impl Service {
    /// Running since `start`, never restarted by systemd.
    pub fn running(start: u64) -> Service {
        Service {
            active_state: "active".into(),
            sub_state: "running".into(),
            result: "success".into(),
            n_restarts: 0,
            start,
            main_pid: None,
        }
    }

    /// Stopped cleanly (inactive, dead), last started at `start`.
    pub fn stopped(start: u64) -> Service {
        Service {
            active_state: "inactive".into(),
            sub_state: "dead".into(),
            ..Service::running(start)
        }
    }
}

/// pip's behaviour (world `pip`); `Pip::default()` is a healthy PyPI.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pip {
    /// pip install fails with this stderr.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail: Option<String>,
    /// This version installs without registering the driver's entry point
    /// (the fake also takes `true`, every version; no test needs that).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_entry_point: Option<String>,
    /// The site's Python (`/usr/local/lib/python<this>`), default 3.11.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    /// The versions the index has (else any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_versions: Option<Vec<String>>,
    /// The sha256 of the index's wheel (else PyPI's for the version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_sha256: Option<String>,
}

impl Pip {
    pub fn failing(stderr: &str) -> Pip {
        Pip {
            fail: Some(stderr.into()),
            ..Pip::default()
        }
    }

    pub fn no_entry_point(version: &str) -> Pip {
        Pip {
            no_entry_point: Some(version.into()),
            ..Pip::default()
        }
    }

    pub fn index_versions(versions: &[&str]) -> Pip {
        Pip {
            index_versions: Some(versions.iter().map(|v| v.to_string()).collect()),
            ..Pip::default()
        }
    }

    pub fn index_sha256(sha256: &str) -> Pip {
        Pip {
            index_sha256: Some(sha256.into()),
            ..Pip::default()
        }
    }
}

/// apt-get's behaviour (world `apt`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Apt {
    /// Package lists present (default true; `apt-get update` sets it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lists: Option<bool>,
    /// apt-get install fails with this stderr.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail: Option<String>,
}

/// A restart while the unit file at `path` contains `contains` is
/// unhealthy (world `unhealthy_if`): a restart loop logging `journal`, or
/// with `refuse` a start job that fails at once.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Unhealthy {
    pub path: String,
    pub contains: String,
    pub journal: Vec<String>,
    pub refuse: bool,
}

/// The import check's answer (world `python`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Python {
    pub missing: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What systemd has loaded for a service (world `loaded`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Loaded {
    pub exec_start: String,
    /// Space-separated drop-in paths.
    pub dropins: String,
}

/// The verify script's answer, instead of one computed from the unit's
/// files (world `verify_python`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyPython {
    pub driver: Option<String>,
    pub get_driver: Option<String>,
    pub claimants: Vec<String>,
    pub conf: Option<VerifyConf>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyConf {
    pub kubeconfig_file: String,
    pub disabled_drivers: Vec<String>,
}

// ---- declared expectations of one run ----

#[derive(Debug, Clone, Copy)]
enum Exit {
    Zero,
    NonZero,
    Any,
}

/// One run of the charm, not yet run: what it must do is declared first
/// (`expect_*`), then `run()` runs it and checks every declaration.
#[must_use = "nothing runs until .run()"]
pub struct Expect<'u> {
    unit: &'u Unit,
    program: Option<PathBuf>,
    path: String,
    env: Vec<(String, String)>,
    action_params: Option<Value>,
    exit: Exit,
    status: Option<(String, String)>,
    kind: Option<String>,
    blocked: Vec<String>,
    unchanged: bool,
    spawned: Option<Vec<String>>,
    action_failed: Vec<String>,
    note: Option<String>,
}

impl<'u> Expect<'u> {
    fn new(unit: &'u Unit, path: &str) -> Expect<'u> {
        Expect {
            unit,
            program: None,
            path: path.to_string(),
            env: Vec::new(),
            action_params: None,
            exit: Exit::Zero,
            status: None,
            kind: None,
            blocked: Vec::new(),
            unchanged: false,
            spawned: None,
            action_failed: Vec::new(),
            note: None,
        }
    }

    /// Name the case in the failure message (a table's row, a loop's item).
    pub fn note(mut self, note: &str) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Extra environment for the charm.
    pub fn env(mut self, vars: &[(&str, &str)]) -> Self {
        self.env
            .extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// Run this program instead of the charm binary (a hook link).
    pub fn program(mut self, program: &Path) -> Self {
        self.program = Some(program.to_path_buf());
        self
    }

    /// The charm exits 0 (the default).
    pub fn expect_ok(mut self) -> Self {
        self.exit = Exit::Zero;
        self
    }

    /// The charm exits non-zero.
    pub fn expect_fail(mut self) -> Self {
        self.exit = Exit::NonZero;
        self
    }

    /// Either exit code: the caller reads `Run::code` itself (a fault
    /// point that may or may not be reached in this run).
    pub fn expect_any_exit(mut self) -> Self {
        self.exit = Exit::Any;
        self
    }

    /// The workload status afterwards, exactly.
    pub fn expect_status(mut self, kind: &str, message: &str) -> Self {
        self.status = Some((kind.into(), message.into()));
        self
    }

    /// The workload status is active afterwards, whatever its message.
    pub fn expect_active(mut self) -> Self {
        self.kind = Some("active".into());
        self
    }

    /// Blocked afterwards, the message containing `substring` (each one, when
    /// declared more than once).
    pub fn expect_blocked(mut self, substring: &str) -> Self {
        self.blocked.push(substring.into());
        self
    }

    /// Every file under the root (but the charm's own state) is as before.
    pub fn expect_unchanged(mut self) -> Self {
        self.unchanged = true;
        self
    }

    /// Exactly these programs run, in order (`Run::spawned` labels).
    pub fn expect_spawned(mut self, labels: &[&str]) -> Self {
        self.spawned = Some(labels.iter().map(|l| l.to_string()).collect());
        self
    }

    /// No program runs at all.
    pub fn expect_no_spawn(self) -> Self {
        self.expect_spawned(&[])
    }

    /// The action calls action-fail, its message containing `substring`
    /// (may be declared more than once).
    pub fn expect_action_failed(mut self, substring: &str) -> Self {
        self.action_failed.push(substring.into());
        self
    }

    /// Run the charm, then check every declared expectation.
    #[track_caller]
    pub fn run(self) -> Run {
        let unit = self.unit;
        let before = self.unchanged.then(|| unit.snapshot());
        if let Some(params) = &self.action_params {
            unit.update(|w| w["action_params"] = params.clone());
            for f in ["action-results.json", "action-failed", "action-log.txt"] {
                let _ = fs::remove_file(unit.fake_dir().join(f));
            }
        }
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let charm = self.program.clone().unwrap_or_else(|| {
            std::env::var_os("MAGNUM_CAPI_CHARM_BIN").map_or_else(|| PathBuf::from(CHARM), PathBuf::from)
        });
        let run = unit.run_program(&charm, &self.path, &env);

        let mut wrong = Vec::new();
        match self.exit {
            Exit::Zero if run.code != 0 => wrong.push(format!("exited {}, expected 0", run.code)),
            Exit::NonZero if run.code == 0 => wrong.push("exited 0, expected a failure".to_string()),
            _ => {}
        }
        let status = unit.status();
        if let Some(want) = &self.status {
            if &status != want {
                wrong.push(format!("status {status:?}, expected {want:?}"));
            }
        }
        if let Some(kind) = &self.kind {
            if &status.0 != kind {
                wrong.push(format!("status {status:?}, expected {kind}"));
            }
        }
        for want in &self.blocked {
            if status.0 != "blocked" || !status.1.contains(want.as_str()) {
                wrong.push(format!("status {status:?}, expected blocked saying {want:?}"));
            }
        }
        if let Some(before) = before {
            let after = unit.snapshot();
            if after != before {
                // Paths added, removed, or different.
                let changed: std::collections::BTreeSet<&String> = before
                    .iter()
                    .filter(|e| !after.contains(e))
                    .chain(after.iter().filter(|e| !before.contains(e)))
                    .map(|(p, _)| p)
                    .collect();
                wrong.push(format!("the unit changed: {changed:?}"));
            }
        }
        if let Some(want) = &self.spawned {
            if &run.spawned() != want {
                wrong.push(format!("spawned {:?}, expected {want:?}", run.spawned()));
            }
        }
        if !self.action_failed.is_empty() {
            match unit.action_failed() {
                None => wrong.push(format!("action-fail not called, expected {:?}", self.action_failed)),
                Some(msg) => {
                    for want in &self.action_failed {
                        if !msg.contains(want.as_str()) {
                            wrong.push(format!("action-fail {msg:?} does not say {want:?}"));
                        }
                    }
                }
            }
        }
        if !wrong.is_empty() {
            panic!(
                "{}{} {}: {}\nexit: {}\nstatus: {:?}\nspawned: {:?}\nstderr:\n{}",
                self.note.map(|n| format!("{n}: ")).unwrap_or_default(),
                unit.name,
                self.path,
                wrong.join("; "),
                run.code,
                status,
                run.spawned(),
                run.stderr
            );
        }
        run
    }
}

impl Default for Unit {
    fn default() -> Self {
        Unit::new()
    }
}

impl Unit {
    /// An empty unit: a root with nothing in it, before magnum arrives.
    pub fn empty() -> Unit {
        let dir = tempfile::tempdir().expect("temp dir");
        let unit = Unit {
            dir,
            ids: Ids::here(),
            name: "magnum-capi/0".into(),
            peers: None,
            bus: RefCell::new(None),
        };
        fs::create_dir_all(unit.root()).unwrap();
        fs::create_dir_all(unit.bin()).unwrap();
        fs::create_dir_all(unit.fake_dir()).unwrap();
        for tool in TOOLS {
            std::os::unix::fs::symlink(FAKE_TOOL, unit.bin().join(tool)).unwrap();
        }
        unit.write_world(&json!({"config": {"driver-version": "1.4.0", "disabled-drivers": "auto", "service-override": "runbook", "restart-settle-seconds": 0}}));
        unit.start_bus();
        unit
    }

    /// A healthy magnum unit as Debian packages it (FACTS.md): accounts,
    /// /etc/magnum, magnum.conf, the two services running from their
    /// packaged unit files, the distro magnum and pip in the system Python.
    pub fn new() -> Unit {
        let unit = Unit::empty();
        unit.add_magnum();
        unit
    }

    /// A healthy magnum unit given the kubeconfig secret, `install` run
    /// and exited 0.
    #[track_caller]
    pub fn installed() -> Unit {
        let unit = Unit::new();
        unit.kubeconfig(KUBECONFIG);
        unit.hook("install").run();
        unit
    }

    /// `Unit::installed()`, and active.
    #[track_caller]
    pub fn converged() -> Unit {
        let unit = Unit::new();
        unit.kubeconfig(KUBECONFIG);
        unit.hook("install").expect_active().run();
        unit
    }

    /// One of several units sharing a peer relation store (multi-unit tests).
    pub fn member(name: &str, peers: &Path) -> Unit {
        let mut unit = Unit::new();
        unit.name = name.to_string();
        unit.peers = Some(peers.to_path_buf());
        unit
    }

    fn bus_socket(&self) -> PathBuf {
        self.dir.path().join("system_bus_socket")
    }

    /// Serve the fake systemd on a private bus (DBUS_SYSTEM_BUS_ADDRESS
    /// for the charm); returns once it accepts connections.
    fn start_bus(&self) {
        use std::io::BufRead;
        let link = self.dir.path().join("fake-systemd-bus");
        std::os::unix::fs::symlink(FAKE_TOOL, &link).unwrap();
        let mut child = Command::new(&link)
            .arg(self.bus_socket())
            .env("FAKE_UNIT", self.fake_dir())
            .env("MAGNUM_CAPI_ROOT", self.root())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the fake systemd bus");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "fake systemd bus did not start");
        *self.bus.borrow_mut() = Some(child);
    }

    fn stop_bus(&self) {
        if let Some(mut child) = self.bus.borrow_mut().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    // ---- mutations: what the test sets up, at first or between runs ----

    /// No D-Bus: the charm must fall back to `systemctl show`.
    pub fn without_bus(&self) -> &Self {
        self.stop_bus();
        let _ = fs::remove_file(self.bus_socket());
        self
    }

    /// Magnum arrives: what `Unit::new()` adds to `Unit::empty()`.
    pub fn add_magnum(&self) -> &Self {
        let ids = self.ids;
        self.put(
            "/etc/passwd",
            &format!(
                "root:x:{}:{}:root:/root:/bin/bash\nmagnum:x:{}:{}::/var/lib/magnum:/usr/sbin/nologin\n",
                ids.root_uid, ids.root_gid, ids.magnum_uid, ids.magnum_gid
            ),
            0o644,
        );
        self.put(
            "/etc/group",
            &format!("root:x:{}:\nmagnum:x:{}:\n", ids.root_gid, ids.magnum_gid),
            0o644,
        );
        // Directories every Debian/Ubuntu magnum unit has.
        for d in [
            "/etc/default",
            "/etc/systemd/system",
            "/usr/local/lib/python3.11/dist-packages",
            "/var/lib/magnum",
            "/run/systemd",
        ] {
            fs::create_dir_all(self.path(d)).unwrap();
        }
        fs::create_dir_all(self.path("/etc/magnum")).unwrap();
        std::os::unix::fs::chown(self.path("/etc/magnum"), Some(ids.magnum_uid), Some(ids.magnum_gid)).unwrap();
        self.chmod("/etc/magnum", 0o750);
        self.put("/etc/magnum/magnum.conf", "[DEFAULT]\ntransport_url = fake:/\n\n[database]\nconnection = sqlite:////var/lib/magnum/magnum.sqlite\n\n[drivers]\nopenstack_ca_file = /etc/ssl/certs/ca-certificates.crt\n", 0o640);
        for (service, exec) in [
            ("magnum-api", "/etc/init.d/magnum-api systemd-start"),
            ("magnum-conductor", "/etc/init.d/magnum-conductor systemd-start"),
        ] {
            self.put(
                &format!("/lib/systemd/system/{service}.service"),
                &format!("[Unit]\nDescription=OpenStack Magnum ({service})\nAfter=network-online.target\n\n[Service]\nUser=magnum\nGroup=magnum\nType=simple\nWorkingDirectory=/var/lib/magnum\nExecStart={exec}\nRestart=on-failure\nLimitNOFILE=65535\nTimeoutStopSec=15\n\n[Install]\nWantedBy=multi-user.target\n"),
                0o644,
            );
            self.put(&format!("/usr/bin/{service}"), "#!/usr/bin/python3\n# magnum\n", 0o755);
            // The packaged init script the unit runs: the lines of
            // openstack-pkg-tools' template that matter here, as Debian
            // bookworm's magnum-api 15.0.1-4 and magnum-conductor ship them
            // (/etc/init.d/magnum-*; the API's adds the UWSGI_* lines).
            let uwsgi = if service == "magnum-api" {
                "UWSGI_PORT=9511\nUWSGI_INI_PATH=/etc/magnum/magnum-api-uwsgi.ini\nUWSGI_INI_APP=/usr/bin/magnum-api-wsgi\n"
            } else {
                ""
            };
            self.put(
                &format!("/etc/init.d/{service}"),
                &format!("#!/bin/sh\n### BEGIN INIT INFO\n# Provides:          {service}\n### END INIT INFO\nDESC=\"OpenStack Magnum ({service})\"\nPROJECT_NAME=magnum\nNAME={service}\n{uwsgi}PATH=/sbin:/usr/sbin:/bin:/usr/bin\nif [ -z \"${{CONFIG_FILE}}\" ] ; then\n\tCONFIG_FILE=/etc/${{PROJECT_NAME}}/${{PROJECT_NAME}}.conf\nfi\nif [ -z \"${{NO_OPENSTACK_CONFIG_FILE_DAEMON_ARG}}\" ] ; then\n\tDAEMON_ARGS=\"--config-file=${{CONFIG_FILE}} ${{DAEMON_ARGS}}\"\nfi\n[ -r /etc/default/openstack ] && . /etc/default/openstack\n[ -r /etc/default/$NAME ] && . /etc/default/$NAME\n"),
                0o755,
            );
        }
        self.put(
            "/usr/lib/python3/dist-packages/magnum-15.0.1.egg-info/PKG-INFO",
            "Metadata-Version: 1.2\nName: magnum\nVersion: 15.0.1\n",
            0o644,
        );
        self.put(
            "/usr/lib/python3/dist-packages/magnum-15.0.1.egg-info/entry_points.txt",
            "[console_scripts]\nmagnum-api = magnum.cmd.api:main\n\n[magnum.drivers]\nk8s_fedora_atomic_v1 = magnum.drivers.k8s_fedora_atomic_v1.driver:Driver\nk8s_fedora_coreos_v1 = magnum.drivers.k8s_fedora_coreos_v1.driver:Driver\n",
            0o644,
        );
        self.put(
            "/usr/lib/python3/dist-packages/pip-23.0.1.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: pip\nVersion: 23.0.1\n",
            0o644,
        );
        self.put(
            "/usr/lib/python3.11/EXTERNALLY-MANAGED",
            "[externally-managed]\n",
            0o644,
        );
        // A helm on the services' PATH (the supply-chain tests remove it).
        self.put("/usr/local/bin/helm", "#!/bin/sh\n# stands for helm v3\n", 0o755);
        let started = monotonic_us();
        self.service("magnum-api", Service::running(started))
            .service("magnum-conductor", Service::running(started))
    }

    /// `juju config magnum-capi key=value`.
    pub fn config(&self, key: &str, value: impl Into<Value>) -> &Self {
        let value = value.into();
        self.update(|w| w["config"][key] = value)
    }

    /// `juju config magnum-capi --reset key`.
    pub fn unset_config(&self, key: &str) -> &Self {
        self.update(|w| {
            w["config"].as_object_mut().unwrap().remove(key);
        })
    }

    /// A user secret granted to the charm, and kubeconfig-secret set to it.
    pub fn kubeconfig(&self, kubeconfig: &str) -> &Self {
        self.secret(SECRET_URI, json!({"kubeconfig": kubeconfig}))
            .config("kubeconfig-secret", SECRET_URI)
    }

    /// A secret's content (its latest revision), readable by the charm.
    pub fn secret(&self, uri: &str, content: Value) -> &Self {
        self.update(|w| w["secrets"][uri] = json!({"content": content}))
    }

    /// `not-found` or `denied` for this secret.
    pub fn secret_error(&self, uri: &str, error: &str) -> &Self {
        self.update(|w| w["secrets"][uri] = json!({"error": error}))
    }

    /// Make `tool` (or `tool verb`) fail with this stderr.
    pub fn fail(&self, tool: &str, stderr: &str) -> &Self {
        self.update(|w| w["fail"][tool] = json!({"code": 1, "stderr": stderr}))
    }

    /// `tool` (or `tool verb`) works again.
    pub fn heal(&self, tool: &str) -> &Self {
        self.update(|w| {
            if let Some(f) = w["fail"].as_object_mut() {
                f.remove(tool);
            }
        })
    }

    /// How pip behaves (replaces what was set before).
    pub fn pip(&self, pip: Pip) -> &Self {
        self.set_key("pip", pip)
    }

    /// How apt-get behaves.
    pub fn apt(&self, apt: Apt) -> &Self {
        self.set_key("apt", apt)
    }

    /// What the import check answers.
    pub fn python(&self, python: Python) -> &Self {
        self.set_key("python", python)
    }

    /// What the verify script answers.
    pub fn verify_python(&self, answer: VerifyPython) -> &Self {
        self.set_key("verify_python", answer)
    }

    /// One service's state in the fake systemd.
    pub fn service(&self, name: &str, service: Service) -> &Self {
        let service = serde_json::to_value(service).unwrap();
        self.update(|w| w["services"][name] = service)
    }

    /// What systemd has loaded for a service (as if daemon-reload ran on
    /// other files).
    pub fn loaded(&self, name: &str, loaded: Loaded) -> &Self {
        let loaded = serde_json::to_value(loaded).unwrap();
        self.update(|w| w["loaded"][name] = loaded)
    }

    /// When a restart stops `service`, its running instance logs `lines`.
    pub fn at_stop(&self, service: &str, lines: &[&str]) -> &Self {
        self.update(|w| w["at_stop"][service] = json!(lines))
    }

    /// Restarts are unhealthy while a file says so.
    pub fn unhealthy_if(&self, unhealthy: Unhealthy) -> &Self {
        self.set_key("unhealthy_if", unhealthy)
    }

    /// The journal, replaced by these messages.
    pub fn journal(&self, lines: &[&str]) -> &Self {
        self.update(|w| w["journal"] = json!(lines))
    }

    /// One more message at the end of the journal.
    pub fn journal_append(&self, line: &str) -> &Self {
        self.update(|w| {
            let mut journal = w["journal"].as_array().cloned().unwrap_or_default();
            journal.push(json!(line));
            w["journal"] = Value::Array(journal);
        })
    }

    /// `resource-get name` answers this path.
    pub fn resource(&self, name: &str, path: &Path) -> &Self {
        let path = path.display().to_string();
        self.update(|w| w["resources"][name] = json!(path))
    }

    /// `resource-get name` fails to download it with this error.
    pub fn resource_error(&self, name: &str, error: &str) -> &Self {
        self.update(|w| w["resources"][name] = json!({"error": error}))
    }

    /// A static helm v3 on the services' PATH (the fake answers `helm
    /// version`). `Unit::new()` has one already.
    pub fn with_helm(&self) -> &Self {
        self.put("/usr/local/bin/helm", "#!/bin/sh\n# stands for helm v3\n", 0o755)
    }

    /// No helm anywhere on the services' PATH.
    pub fn without_helm(&self) -> &Self {
        let _ = fs::remove_file(self.path("/usr/local/bin/helm"));
        self
    }

    /// Write a file on the unit, owned as a package would own it.
    pub fn put(&self, unit_path: &str, content: &str, mode: u32) -> &Self {
        let p = self.path(unit_path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    pub fn chmod(&self, unit_path: &str, mode: u32) -> &Self {
        fs::set_permissions(self.path(unit_path), fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    fn set_key(&self, key: &str, value: impl Serialize) -> &Self {
        let value = serde_json::to_value(value).unwrap();
        self.update(|w| w[key] = value)
    }

    fn update(&self, change: impl FnOnce(&mut Value)) -> &Self {
        let mut w = self.world();
        change(&mut w);
        self.write_world(&w);
        self
    }

    // ---- running the charm ----

    /// Juju runs this hook.
    pub fn hook(&self, hook: &str) -> Expect<'_> {
        Expect::new(self, &format!("hooks/{hook}"))
    }

    /// `juju run magnum-capi/0 action` with these parameters.
    pub fn action(&self, action: &str, params: Value) -> Expect<'_> {
        let mut run = Expect::new(self, &format!("actions/{action}"))
            .env(&[("JUJU_ACTION_NAME", action), ("JUJU_ACTION_UUID", "1")]);
        run.action_params = Some(params);
        run
    }

    /// The charm run with this JUJU_DISPATCH_PATH. The charm under test
    /// is the freshly built binary, or the packed `dispatch` named by
    /// `MAGNUM_CAPI_CHARM_BIN` (CI runs the routing tests against the
    /// packed charm too), or `Expect::program`.
    pub fn dispatch(&self, path: &str) -> Expect<'_> {
        Expect::new(self, path)
    }

    /// Run a program as Juju's dispatch would, plus extra env.
    fn run_program(&self, program: &Path, dispatch_path: &str, extra: &[(&str, &str)]) -> Run {
        let calls_before = self.all_calls().len();
        // The charm's directory, as Juju unpacks it: its YAML files (the
        // fake config-get reads the defaults from config.yaml).
        let charm_dir = self.dir.path().join("charm");
        if !charm_dir.join("config.yaml").exists() {
            fs::create_dir_all(&charm_dir).unwrap();
            for f in ["metadata.yaml", "config.yaml", "actions.yaml"] {
                fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join(f), charm_dir.join(f)).unwrap();
            }
        }
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .current_dir(&charm_dir)
            .env("PATH", self.bin())
            .env("MAGNUM_CAPI_ROOT", self.root())
            .env("FAKE_UNIT", self.fake_dir())
            .env("JUJU_DISPATCH_PATH", dispatch_path)
            .env("JUJU_CHARM_DIR", &charm_dir)
            .env("JUJU_UNIT_NAME", &self.name)
            // A subordinate's hooks name its principal (magnum-capi/N is
            // on magnum/N here).
            .env(
                "JUJU_PRINCIPAL_UNIT",
                format!("magnum/{}", self.name.rsplit('/').next().unwrap_or("0")),
            )
            .env("JUJU_MODEL_NAME", "openstack")
            .env("JUJU_VERSION", "3.6.4");
        if let Some(p) = &self.peers {
            cmd.env("FAKE_PEERS", p);
        }
        if self.bus.borrow().is_some() {
            cmd.env(
                "DBUS_SYSTEM_BUS_ADDRESS",
                format!("unix:path={}", self.bus_socket().display()),
            );
        }
        if let Some(hook) = dispatch_path.strip_prefix("hooks/") {
            cmd.env("JUJU_HOOK_NAME", hook);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        // What the Juju agent does around the charm (tests/fakes/research/
        // juju-3.6-hook-tools.md, item 8): before install it sets the unit's
        // status to `maintenance: installing charm software` itself.
        let status_file = self.fake_dir().join("status.json");
        let juju_sets = match dispatch_path {
            "hooks/install" => Some("installing charm software"),
            "hooks/stop" => Some("stopping charm software"),
            "hooks/remove" => Some("cleaning up prior to charm deletion"),
            _ => None,
        };
        if let Some(message) = juju_sets {
            fs::write(
                &status_file,
                json!({"kind": "maintenance", "message": message}).to_string(),
            )
            .unwrap();
        }
        let history_before = fs::read_to_string(self.fake_dir().join("status-history.jsonl")).unwrap_or_default();
        let out = cmd.output().expect("run the charm");
        // The agent's Flush: relation settings the hook set are committed
        // only when it exited 0 (juju 3.6 context.go), else dropped.
        let pending = self.fake_dir().join("relation-pending.json");
        if let (Some(peers), Ok(bytes)) = (&self.peers, fs::read(&pending)) {
            if out.status.success() {
                let changes: Value = serde_json::from_slice(&bytes).unwrap_or(json!({}));
                commit_relation_settings(&peers.join("peers.json"), &self.name, &changes);
            }
            let _ = fs::remove_file(&pending);
        }
        // After start, a charm that never set a status shows `unknown`.
        if dispatch_path == "hooks/start" && history_before.is_empty() {
            let history = fs::read_to_string(self.fake_dir().join("status-history.jsonl")).unwrap_or_default();
            if history.is_empty() {
                fs::write(&status_file, json!({"kind": "unknown", "message": ""}).to_string()).unwrap();
            }
        }
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            calls: self.all_calls().split_off(calls_before),
        }
    }

    // ---- what the test reads back ----

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// The requirements file pip was last given (`-r`), as it read it.
    pub fn pip_requirements(&self) -> String {
        fs::read_to_string(self.fake_dir().join("pip-requirements.txt")).unwrap_or_default()
    }

    pub fn fake_dir(&self) -> PathBuf {
        self.dir.path().join("fake")
    }

    /// A unit path under the root.
    pub fn path(&self, unit_path: &str) -> PathBuf {
        self.root().join(unit_path.trim_start_matches('/'))
    }

    pub fn file(&self, unit_path: &str) -> Option<FileState> {
        let p = self.path(unit_path);
        let meta = fs::symlink_metadata(&p).ok()?;
        Some(FileState {
            content: fs::read(&p).unwrap_or_default(),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        })
    }

    pub fn text(&self, unit_path: &str) -> String {
        self.file(unit_path)
            .unwrap_or_else(|| panic!("{unit_path} does not exist"))
            .text()
    }

    /// Every file and directory under the root with its state, but the
    /// charm's own memory (/var/lib/magnum-capi): to assert that a run
    /// changed nothing on the unit.
    pub fn snapshot(&self) -> Vec<(String, FileState)> {
        self.snapshot_all()
            .into_iter()
            .filter(|(p, _)| !p.starts_with("/var/lib/magnum-capi/"))
            .collect()
    }

    /// Every file and directory under the root, the charm's state included.
    /// Let the kernel's coarse clock (the one file times come from) move
    /// past now, so every file written so far is older than any stamp the
    /// charm takes next: it trusts a stat stamp only for a file changed
    /// before the tick it was stamped in (src/unit/watch.rs), so a unit
    /// written to within the same few milliseconds is read in full once.
    /// File times may also be fine-grained (multigrain timestamps, Linux
    /// 6.13+), ahead of the coarse clock: so wait until the coarse clock
    /// passes the fine one as read now. Spins on the clock for at most a
    /// tick or two; not a sleep.
    pub fn tick(&self) -> &Self {
        let read = |id| {
            let t = nix::time::clock_gettime(id).unwrap();
            (t.tv_sec(), t.tv_nsec())
        };
        let now = read(nix::time::ClockId::CLOCK_REALTIME);
        while read(nix::time::ClockId::CLOCK_REALTIME_COARSE) <= now {
            std::thread::yield_now();
        }
        self
    }

    pub fn snapshot_all(&self) -> Vec<(String, FileState)> {
        let mut out = Vec::new();
        let mut stack = vec![self.root()];
        while let Some(dir) = stack.pop() {
            for e in fs::read_dir(&dir).unwrap().flatten() {
                let p = e.path();
                let meta = fs::symlink_metadata(&p).unwrap();
                let rel = format!("/{}", p.strip_prefix(self.root()).unwrap().display());
                if meta.is_dir() {
                    out.push((
                        rel.clone() + "/",
                        FileState {
                            content: vec![],
                            mode: meta.mode() & 0o7777,
                            uid: meta.uid(),
                            gid: meta.gid(),
                        },
                    ));
                    stack.push(p);
                } else {
                    out.push((rel.clone(), self.file(&rel).unwrap()));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The fakes' world as it is now (tests/fakes/fake_tool.rs), to read.
    pub fn world(&self) -> Value {
        serde_json::from_slice(&fs::read(self.fake_dir().join("world.json")).unwrap()).unwrap()
    }

    fn write_world(&self, w: &Value) {
        fs::write(
            self.fake_dir().join("world.json"),
            serde_json::to_vec_pretty(w).unwrap(),
        )
        .unwrap();
    }

    pub fn all_calls(&self) -> Vec<Call> {
        fs::read_to_string(self.fake_dir().join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                Call {
                    tool: v["tool"].as_str().unwrap().to_string(),
                    args: v["args"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a.as_str().unwrap().to_string())
                        .collect(),
                    env: v["env"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    /// The unit's workload status as `juju status` would show it.
    pub fn status(&self) -> (String, String) {
        let s: Value = fs::read(self.fake_dir().join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(json!({"kind": "unknown", "message": ""}));
        (
            s["kind"].as_str().unwrap().to_string(),
            s["message"].as_str().unwrap().to_string(),
        )
    }

    /// Keep the unit's directory after the test (for measuring or
    /// debugging by hand) and return its path.
    pub fn keep(mut self) -> PathBuf {
        self.stop_bus();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()).keep()
    }

    pub fn app_version(&self) -> Option<String> {
        fs::read_to_string(self.fake_dir().join("app-version")).ok()
    }

    pub fn action_results(&self) -> Value {
        fs::read(self.fake_dir().join("action-results.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(json!({}))
    }

    pub fn action_failed(&self) -> Option<String> {
        fs::read_to_string(self.fake_dir().join("action-failed")).ok()
    }

    pub fn action_log(&self) -> Vec<String> {
        fs::read_to_string(self.fake_dir().join("action-log.txt"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The fake systemd's view of a service.
    pub fn systemd(&self, name: &str) -> Service {
        serde_json::from_value(self.world()["services"][name].clone()).unwrap()
    }

    /// Temp files the charm left behind anywhere under the root.
    pub fn temp_files(&self) -> Vec<String> {
        self.snapshot_all()
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| p.contains("magnum-capi-tmp"))
            .collect()
    }
}
