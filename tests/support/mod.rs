//! The `Unit` fixture: a fake magnum unit in a temp directory (its root
//! filesystem, the fake programs first and alone on PATH, the fakes' world),
//! and the real built charm binary run against it with a Juju hook
//! environment. Tests read like a story:
//!
//! ```ignore
//! let unit = Unit::new().kubeconfig(KUBECONFIG);
//! let run = unit.hook("config-changed");
//! run.assert_ok();
//! assert_eq!(unit.status(), ("active", "magnum-capi-helm 1.4.0 ready".into()));
//! ```
#![allow(dead_code)]

pub mod http;
pub mod kube_server;
pub mod openstack;
pub mod skip;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

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
    bus: Option<std::process::Child>,
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
    pub fn assert_ok(&self) -> &Run {
        assert_eq!(self.code, 0, "charm exited {}\nstderr:\n{}", self.code, self.stderr);
        self
    }

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

impl Default for Unit {
    fn default() -> Self {
        Unit::new()
    }
}

impl Unit {
    /// An empty unit: a root with nothing in it, before magnum arrives.
    pub fn empty() -> Unit {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut unit = Unit {
            dir,
            ids: Ids::here(),
            name: "magnum-capi/0".into(),
            peers: None,
            bus: None,
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

    fn bus_socket(&self) -> PathBuf {
        self.dir.path().join("system_bus_socket")
    }

    /// Serve the fake systemd on a private bus (DBUS_SYSTEM_BUS_ADDRESS
    /// for the charm); returns once it accepts connections.
    fn start_bus(&mut self) {
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
        self.bus = Some(child);
    }

    fn stop_bus(&mut self) {
        if let Some(mut child) = self.bus.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// One of several units sharing a peer relation store (multi-unit tests).
    pub fn member(mut self, name: &str, peers: &Path) -> Unit {
        self.name = name.to_string();
        self.peers = Some(peers.to_path_buf());
        self
    }

    /// No D-Bus: the charm must fall back to `systemctl show`.
    pub fn without_bus(mut self) -> Unit {
        self.stop_bus();
        let _ = fs::remove_file(self.bus_socket());
        self
    }

    /// A healthy magnum unit as Debian packages it (FACTS.md): accounts,
    /// /etc/magnum, magnum.conf, the two services running from their
    /// packaged unit files, the distro magnum and pip in the system Python.
    pub fn new() -> Unit {
        let unit = Unit::empty();
        unit.add_magnum();
        unit
    }

    pub fn add_magnum(&self) {
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
        let mut w = self.world();
        let started = monotonic_us();
        w["services"] = json!({
            "magnum-api": {"active_state": "active", "sub_state": "running", "result": "success", "n_restarts": 0, "start": started},
            "magnum-conductor": {"active_state": "active", "sub_state": "running", "result": "success", "n_restarts": 0, "start": started},
        });
        self.write_world(&w);
    }

    // ---- builder: what the test sets up ----

    /// `juju config magnum-capi key=value`.
    pub fn config(self, key: &str, value: impl Into<Value>) -> Unit {
        self.set_config(key, value);
        self
    }

    pub fn set_config(&self, key: &str, value: impl Into<Value>) {
        let mut w = self.world();
        w["config"][key] = value.into();
        self.write_world(&w);
    }

    pub fn unset_config(&self, key: &str) {
        let mut w = self.world();
        w["config"].as_object_mut().unwrap().remove(key);
        self.write_world(&w);
    }

    /// A user secret granted to the charm, and kubeconfig-secret set to it.
    pub fn kubeconfig(self, kubeconfig: &str) -> Unit {
        self.set_secret(SECRET_URI, json!({"kubeconfig": kubeconfig}));
        self.config("kubeconfig-secret", SECRET_URI)
    }

    pub fn set_secret(&self, uri: &str, content: Value) {
        let mut w = self.world();
        w["secrets"][uri] = json!({"content": content});
        self.write_world(&w);
    }

    /// `not-found` or `denied` for this secret.
    pub fn secret_error(self, uri: &str, error: &str) -> Unit {
        let mut w = self.world();
        w["secrets"][uri] = json!({"error": error});
        self.write_world(&w);
        self
    }

    /// Any key of the fakes' world (see tests/fakes/fake_tool.rs).
    pub fn with(self, key: &str, value: Value) -> Unit {
        self.set(key, value);
        self
    }

    pub fn set(&self, key: &str, value: Value) {
        let mut w = self.world();
        w[key] = value;
        self.write_world(&w);
    }

    /// Make `tool` (or `tool verb`) fail with this stderr.
    pub fn fail(self, tool: &str, stderr: &str) -> Unit {
        let mut w = self.world();
        w["fail"][tool] = json!({"code": 1, "stderr": stderr});
        self.write_world(&w);
        self
    }

    pub fn unfail(&self, tool: &str) {
        let mut w = self.world();
        if let Some(f) = w["fail"].as_object_mut() {
            f.remove(tool);
        }
        self.write_world(&w);
    }

    // ---- running the charm ----

    pub fn hook(&self, hook: &str) -> Run {
        self.dispatch(&format!("hooks/{hook}"), &[])
    }

    pub fn action(&self, action: &str, params: Value) -> Run {
        self.set("action_params", params);
        for f in ["action-results.json", "action-failed", "action-log.txt"] {
            let _ = fs::remove_file(self.fake_dir().join(f));
        }
        self.dispatch(
            &format!("actions/{action}"),
            &[("JUJU_ACTION_NAME", action), ("JUJU_ACTION_UUID", "1")],
        )
    }

    /// Run the charm binary as Juju's dispatch would, plus extra env.
    /// The charm under test is the freshly built binary, or the packed
    /// `dispatch` named by `MAGNUM_CAPI_CHARM_BIN` (CI runs the routing
    /// tests against the packed charm too).
    pub fn dispatch(&self, path: &str, extra: &[(&str, &str)]) -> Run {
        let charm = std::env::var_os("MAGNUM_CAPI_CHARM_BIN").map_or_else(|| PathBuf::from(CHARM), PathBuf::from);
        self.run_program(&charm, path, extra)
    }

    pub fn run_program(&self, program: &Path, dispatch_path: &str, extra: &[(&str, &str)]) -> Run {
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
        if self.bus.is_some() {
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

    /// Write a file on the unit, owned as a package would own it.
    pub fn put(&self, unit_path: &str, content: &str, mode: u32) {
        let p = self.path(unit_path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }

    pub fn chmod(&self, unit_path: &str, mode: u32) {
        fs::set_permissions(self.path(unit_path), fs::Permissions::from_mode(mode)).unwrap();
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

    /// A static helm v3 on the services' PATH (the fake answers `helm
    /// version`). `Unit::new()` has one already.
    pub fn with_helm(self) -> Unit {
        self.put("/usr/local/bin/helm", "#!/bin/sh\n# stands for helm v3\n", 0o755);
        self
    }

    /// No helm anywhere on the services' PATH.
    pub fn without_helm(self) -> Unit {
        let _ = fs::remove_file(self.path("/usr/local/bin/helm"));
        self
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
    pub fn service(&self, name: &str) -> Value {
        self.world()["services"][name].clone()
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
