//! The fake OpenStack of tests/support/openstack/, checked two ways:
//!
//! - against the REAL clients: `openstack` (python-openstackclient 10.5.0 +
//!   python-magnumclient 5.0.0, keystoneauth1 5.18.1, openstacksdk 4.22.0)
//!   from the venv `bash tests/venvs/openstack.sh` builds, and Debian's
//!   `kubectl` for the cluster's Kubernetes API. What the CLI prints must be
//!   what the fake holds, so the fake speaks the APIs as the real clients
//!   expect. Without the venv (or kubectl) these tests say so loudly and
//!   pass, unless MAGNUM_CAPI_REQUIRE_REAL is set (CI), where that is a
//!   failure;
//! - by plain Rust tests of its state machine and error shapes, over ureq
//!   (the HTTP client the charm uses), with no sleeps.

#[path = "support/http.rs"]
mod http;
#[path = "support/openstack/mod.rs"]
mod openstack;
#[path = "support/skip.rs"]
mod skip;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use base64::Engine;
use openstack::*;
use serde_json::{json, Value};

const IMAGE: &str = "ubuntu-jammy-kube-v1.30.4";

// ---------------------------------------------------------------------------
// The real CLI.
// ---------------------------------------------------------------------------

fn skip(what: &str, how: &str) {
    skip::skip_real(&format!("tests/openstack_fake.rs ({what})"), how);
}

/// The venv's `openstack`, or None (after saying why) when the test should
/// skip.
fn osc() -> Option<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = std::env::var_os("OPENSTACK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target/venv-openstack"));
    let bin = venv.join("bin/openstack");
    if bin.exists() {
        return Some(bin);
    }
    skip(
        "real openstack CLI",
        &format!(
            "the real OpenStack CLI venv is missing at {}: create it with `bash tests/venvs/openstack.sh`",
            venv.display()
        ),
    );
    None
}

fn kubectl() -> Option<PathBuf> {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let p = Path::new(dir).join("kubectl");
        if p.exists() {
            return Some(p);
        }
    }
    skip(
        "real kubectl",
        "kubectl is not installed: `apt-get install kubernetes-client` (Debian) puts it in /usr/bin",
    );
    None
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "the real CLI failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    fn json(&self) -> Value {
        let start = self.stdout.find(['{', '[']).unwrap_or(0);
        serde_json::from_str(&self.stdout[start..])
            .unwrap_or_else(|e| panic!("CLI printed no JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

/// How the CLI authenticates.
enum Auth<'a> {
    AppCred,
    AppCredWithProject,
    AppCredSecret(&'a str),
    Password,
}

/// The real `openstack` against the fake: no clouds.yaml, no OS_* from the
/// environment, HOME in a temp dir.
struct Cli {
    bin: PathBuf,
    home: tempfile::TempDir,
    extra: Vec<String>,
}

impl Cli {
    fn new() -> Option<Cli> {
        Some(Cli {
            bin: osc()?,
            home: tempfile::tempdir().unwrap(),
            extra: Vec::new(),
        })
    }

    fn with(mut self, args: &[&str]) -> Cli {
        self.extra.extend(args.iter().map(|s| s.to_string()));
        self
    }

    fn run(&self, cloud: &FakeOpenStack, args: &[&str]) -> Out {
        self.run_as(cloud, Auth::AppCred, args)
    }

    fn run_as(&self, cloud: &FakeOpenStack, auth: Auth, args: &[&str]) -> Out {
        let c = cloud.credentials();
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear()
            .env("HOME", self.home.path())
            .env("PATH", "/usr/bin:/bin")
            .env("SHELL", "/bin/bash")
            .env("LANG", "C.UTF-8")
            .args(["--os-auth-url", &cloud.auth_url(), "--os-region-name", &cloud.region()]);
        match auth {
            Auth::AppCred | Auth::AppCredWithProject | Auth::AppCredSecret(_) => {
                let secret = match auth {
                    Auth::AppCredSecret(s) => s.to_string(),
                    _ => c.application_credential_secret.clone(),
                };
                cmd.args([
                    "--os-auth-type",
                    "v3applicationcredential",
                    "--os-application-credential-id",
                    &c.application_credential_id,
                    "--os-application-credential-secret",
                    &secret,
                ]);
                if matches!(auth, Auth::AppCredWithProject) {
                    cmd.args([
                        "--os-project-name",
                        &c.project_name,
                        "--os-project-domain-name",
                        &c.project_domain_name,
                    ]);
                }
            }
            Auth::Password => {
                cmd.args([
                    "--os-auth-type",
                    "password",
                    "--os-username",
                    &c.username,
                    "--os-password",
                    &c.password,
                    "--os-user-domain-name",
                    &c.user_domain_name,
                    "--os-project-name",
                    &c.project_name,
                    "--os-project-domain-name",
                    &c.project_domain_name,
                ]);
            }
        }
        cmd.args(&self.extra).args(args);
        let out = cmd.output().expect("run the real openstack CLI");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// `openstack coe cluster template create` as the runbook does it, flavors
/// given explicitly (the CLI's default is m1.medium).
fn create_template_args(name: &str) -> Vec<&str> {
    vec![
        "coe",
        "cluster",
        "template",
        "create",
        name,
        "--coe",
        "kubernetes",
        "--image",
        IMAGE,
        "--external-network",
        "public",
        "--keypair",
        "mykey",
        "--flavor",
        "ds4G",
        "--master-flavor",
        "ds4G",
        "--network-driver",
        "calico",
        "--labels",
        "capi_helm_chart_version=0.4.0,boot_volume_size=20",
        "-f",
        "json",
    ]
}

#[test]
fn real_cli_template_create_list_show_delete() {
    let Some(cli) = Cli::new() else { return };
    let cloud = FakeOpenStack::start(Scenario::default());

    let created = cli.run(&cloud, &create_template_args("smoke-t1")).ok().json();
    let held = cloud
        .template("smoke-t1")
        .expect("the fake holds the template the CLI created");
    assert_eq!(created["uuid"], held["uuid"]);
    assert_eq!(created["image_id"], IMAGE);
    assert_eq!(
        created["cluster_distro"], "ubuntu",
        "magnum sets cluster_distro from the image's os_distro"
    );
    assert_eq!(
        held["labels"],
        json!({"capi_helm_chart_version": "0.4.0", "boot_volume_size": "20"}),
        "the CLI sends labels as a JSON object of strings"
    );
    assert_eq!(held["flavor_id"], "ds4G");
    assert_eq!(held["network_driver"], "calico");

    let list = cli
        .run(&cloud, &["coe", "cluster", "template", "list", "-f", "json"])
        .ok()
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "smoke-t1");
    assert_eq!(list[0]["uuid"], held["uuid"]);

    // Show by name and by uuid.
    let shown = cli
        .run(
            &cloud,
            &["coe", "cluster", "template", "show", "smoke-t1", "-f", "json"],
        )
        .ok()
        .json();
    assert_eq!(shown["uuid"], held["uuid"]);
    let uuid = held["uuid"].as_str().unwrap();
    let shown = cli
        .run(&cloud, &["coe", "cluster", "template", "show", uuid, "-f", "json"])
        .ok()
        .json();
    assert_eq!(shown["name"], "smoke-t1");

    let out = cli.run(&cloud, &["coe", "cluster", "template", "delete", "smoke-t1"]);
    out.ok();
    assert!(out.stdout.contains("has been accepted"), "{}", out.stdout);
    assert!(cloud.templates().is_empty(), "the template is gone from the fake");

    // What the real client sent.
    let magnum: Vec<Request> = cloud
        .requests()
        .into_iter()
        .filter(|r| r.service == "container-infra")
        .collect();
    assert!(!magnum.is_empty());
    for r in &magnum {
        assert_eq!(
            r.header("openstack-api-version"),
            Some("container-infra latest"),
            "{} {}",
            r.method,
            r.path
        );
        assert_eq!(r.interface, "public");
        assert!(r.header("x-auth-token").is_some());
    }
    let post = magnum.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(post.route(), "/magnum/v1/clustertemplates");
    assert_eq!(post.status, 201);
    let body: Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(body["coe"], "kubernetes");
    assert_eq!(body["image_id"], IMAGE);
    assert_eq!(body["external_network_id"], "public");
    assert_eq!(body["keypair_id"], "mykey");
    assert_eq!(body["master_flavor_id"], "ds4G");
    assert_eq!(cloud.count("DELETE", "/magnum/v1/clustertemplates/smoke-t1"), 1);
}

/// FACTS.md: the real CLI's `template delete` exits 0 even when magnum
/// refuses the delete; it only prints the error (title, status).
#[test]
fn real_cli_template_delete_refused_exits_zero() {
    let Some(cli) = Cli::new() else { return };
    let cloud = FakeOpenStack::start(Scenario::default());
    cli.run(&cloud, &create_template_args("smoke-t2")).ok();
    let out = cli.run(
        &cloud,
        &["coe", "cluster", "create", "smoke-c2", "--cluster-template", "smoke-t2"],
    );
    out.ok();
    assert!(out.stdout.contains("Request to create cluster"), "{}", out.stdout);

    let uuid = cloud.template("smoke-t2").unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let out = cli.run(&cloud, &["coe", "cluster", "template", "delete", "smoke-t2"]);
    assert_eq!(
        out.code, 0,
        "the real CLI exits 0 on a refused delete\n{}{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.contains(&format!(
            "Delete for cluster template smoke-t2 failed: ClusterTemplate {uuid} is referenced by one or multiple clusters (HTTP 400)"
        )),
        "the CLI prints magnum's title: {}",
        out.stdout
    );
    assert!(cloud.template("smoke-t2").is_some(), "the template is still there");
}

#[test]
fn real_cli_cluster_show_follows_the_state_machine_through_delete() {
    let Some(cli) = Cli::new() else { return };
    let cloud = FakeOpenStack::start(
        Scenario::default()
            .create(Create::Complete { in_progress: 2 })
            .delete(Delete::Complete { in_progress: 1 }),
    );
    cli.run(&cloud, &create_template_args("smoke-t3")).ok();
    cli.run(
        &cloud,
        &[
            "coe",
            "cluster",
            "create",
            "smoke-c3",
            "--cluster-template",
            "smoke-t3",
            "--master-count",
            "1",
            "--node-count",
            "2",
            "--labels",
            "kube_tag=ignored",
            "--merge-labels",
        ],
    )
    .ok();
    let held = cloud.cluster("smoke-c3").unwrap();
    assert_eq!(held["node_count"], 2);
    assert_eq!(held["labels"]["kube_tag"], "ignored");
    assert_eq!(
        held["labels"]["capi_helm_chart_version"], "0.4.0",
        "--merge-labels keeps the template's"
    );

    let show = |cli: &Cli| {
        cli.run(&cloud, &["coe", "cluster", "show", "smoke-c3", "-f", "json"])
            .ok()
            .json()
    };
    let first = show(&cli);
    assert_eq!(first["status"], "CREATE_IN_PROGRESS");
    assert_eq!(first["api_address"], Value::Null);
    assert_eq!(first["uuid"], held["uuid"]);
    assert_eq!(
        first["cluster_template_id"],
        cloud.template("smoke-t3").unwrap()["uuid"]
    );
    assert_eq!(first["master_count"], 1);
    assert_eq!(first["node_count"], 2);
    assert_eq!(first["keypair"], "mykey", "the cluster takes the template's keypair");
    let second = show(&cli);
    assert_eq!(second["status"], "CREATE_IN_PROGRESS");
    assert!(
        second["api_address"]
            .as_str()
            .is_some_and(|a| a.starts_with("https://127.0.0.1:")),
        "api_address can show up before the create completes: {second}"
    );
    let third = show(&cli);
    assert_eq!(third["status"], "CREATE_COMPLETE");
    assert_eq!(third["status_reason"], Value::Null);
    assert_eq!(cloud.polls("smoke-c3"), 3);

    let list = cli.run(&cloud, &["coe", "cluster", "list", "-f", "json"]).ok().json();
    assert_eq!(list[0]["name"], "smoke-c3");
    assert_eq!(list[0]["status"], "CREATE_COMPLETE");

    let out = cli.run(&cloud, &["coe", "cluster", "delete", "smoke-c3"]);
    out.ok();
    assert!(
        out.stdout
            .contains("Request to delete cluster smoke-c3 has been accepted"),
        "{}",
        out.stdout
    );
    assert_eq!(show(&cli)["status"], "DELETE_IN_PROGRESS");
    let gone = cli.run(&cloud, &["coe", "cluster", "show", "smoke-c3", "-f", "json"]);
    assert_eq!(gone.code, 1);
    assert!(
        gone.stderr.contains("Cluster smoke-c3 could not be found (HTTP 404)"),
        "{}",
        gone.stderr
    );
    assert!(cloud.clusters().is_empty());
    cli.run(&cloud, &["coe", "cluster", "template", "delete", "smoke-t3"])
        .ok();
    assert!(cloud.templates().is_empty());
}

#[test]
fn real_cli_cluster_failure_shows_the_status_reason() {
    let Some(cli) = Cli::new() else { return };
    let reason = "Failed to create trustee or trust for Cluster: 1b2c";
    let cloud = FakeOpenStack::start(Scenario::default().create(Create::Fail {
        in_progress: 0,
        reason: reason.into(),
    }));
    cli.run(&cloud, &create_template_args("smoke-t4")).ok();
    cli.run(
        &cloud,
        &["coe", "cluster", "create", "smoke-c4", "--cluster-template", "smoke-t4"],
    )
    .ok();
    let shown = cli
        .run(&cloud, &["coe", "cluster", "show", "smoke-c4", "-f", "json"])
        .ok()
        .json();
    assert_eq!(shown["status"], "CREATE_FAILED");
    assert_eq!(shown["status_reason"], reason);
}

/// `openstack coe cluster config` (certificate mode) against the fake's
/// certificates API, then the real kubectl with the kubeconfig it wrote
/// against the cluster's Kubernetes API.
#[test]
fn real_cli_cluster_config_then_real_kubectl_sees_the_nodes() {
    let Some(cli) = Cli::new() else { return };
    let cloud = FakeOpenStack::start(
        Scenario::default()
            .create(Create::Complete { in_progress: 0 })
            .ready_nodes(2),
    );
    cli.run(&cloud, &create_template_args("smoke-t5")).ok();
    cli.run(
        &cloud,
        &[
            "coe",
            "cluster",
            "create",
            "smoke-c5",
            "--cluster-template",
            "smoke-t5",
            "--node-count",
            "2",
        ],
    )
    .ok();
    let shown = cli
        .run(&cloud, &["coe", "cluster", "show", "smoke-c5", "-f", "json"])
        .ok()
        .json();
    assert_eq!(shown["status"], "CREATE_COMPLETE");

    let dir = tempfile::tempdir().unwrap();
    let out = cli.run(
        &cloud,
        &[
            "coe",
            "cluster",
            "config",
            "smoke-c5",
            "--dir",
            dir.path().to_str().unwrap(),
            "--force",
        ],
    );
    out.ok();
    assert!(out.stdout.contains("export KUBECONFIG="), "{}", out.stdout);
    let kubeconfig = dir.path().join("config");
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        text.contains(&format!("server: {}", shown["api_address"].as_str().unwrap())),
        "{text}"
    );
    assert!(text.contains("client-certificate-data: "), "{text}");

    // What the CLI did: the CA, then an RSA-2048 CSR (CN=admin,
    // O=system:masters) signed by the cluster CA.
    let uuid = shown["uuid"].as_str().unwrap();
    assert_eq!(cloud.count("GET", &format!("/magnum/v1/certificates/{uuid}")), 1);
    let post = cloud
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.route() == "/magnum/v1/certificates")
        .expect("the CLI posts a CSR");
    assert_eq!(post.status, 201);
    let body: Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(body["cluster_uuid"], uuid);
    assert!(body["csr"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE REQUEST-----"));

    let Some(kubectl) = kubectl() else { return };
    let out = Command::new(kubectl)
        .env_clear()
        .env("HOME", dir.path())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(["get", "nodes", "-o", "json", "--request-timeout", "20s"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the real kubectl failed with the CLI's kubeconfig:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nodes: Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = nodes["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "1 master + 2 workers");
    let ready = items
        .iter()
        .filter(|n| {
            n["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .count();
    assert_eq!(ready, 2, "Scenario::ready_nodes(2)");
}

#[test]
fn real_cli_password_auth() {
    let Some(cli) = Cli::new() else { return };
    let cloud = FakeOpenStack::start(Scenario::default().leftover_template("magnum-smoketest-old"));
    let list = cli
        .run_as(
            &cloud,
            Auth::Password,
            &["coe", "cluster", "template", "list", "-f", "json"],
        )
        .ok()
        .json();
    assert_eq!(list[0]["name"], "magnum-smoketest-old");
    // keystoneauth's generic password plugin discovers the identity API
    // (GET /identity/v3) before it authenticates.
    let auth = cloud.requests().into_iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(auth.route(), "/identity/v3/auth/tokens");
    let body: Value = serde_json::from_str(&auth.body).unwrap();
    assert_eq!(body["auth"]["identity"]["methods"], json!(["password"]));
    assert_eq!(body["auth"]["scope"]["project"]["name"], "demo");
}

/// FACTS.md: Keystone answers 401 when an application-credential auth also
/// sends a scope; the real CLI sends one when given a project.
#[test]
fn real_cli_app_cred_with_a_project_is_refused() {
    let Some(cli) = Cli::new() else { return };
    let cloud = FakeOpenStack::start(Scenario::default());
    let out = cli.run_as(
        &cloud,
        Auth::AppCredWithProject,
        &["coe", "cluster", "template", "list"],
    );
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("Application credentials cannot request a scope. (HTTP 401)"),
        "{}",
        out.stderr
    );
    assert_eq!(cloud.auth_count(), 0);
}

#[test]
fn real_cli_wrong_secret_is_401() {
    let Some(cli) = Cli::new() else { return };
    let cloud = FakeOpenStack::start(Scenario::default());
    let out = cli.run_as(&cloud, Auth::AppCredSecret("wrong"), &["coe", "cluster", "list"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("(HTTP 401)"), "{}", out.stderr);
    assert_eq!(cloud.count("GET", "/magnum"), 0);
}

/// keystoneauth re-authenticates once on a 401 (FACTS.md): the fake's 401
/// is one the real client recovers from.
#[test]
fn real_cli_reauthenticates_once_when_the_token_expires() {
    let Some(cli) = Cli::new() else { return };
    // `coe cluster config` makes several magnum requests in one run: GET
    // the cluster, GET its template (the 2nd use of the token: 401), GET the
    // CA, POST the CSR.
    let cloud = FakeOpenStack::start(Scenario::default().expire_token_at(2).leftover_cluster("old"));
    let dir = tempfile::tempdir().unwrap();
    cli.run(
        &cloud,
        &["coe", "cluster", "config", "old", "--dir", dir.path().to_str().unwrap()],
    )
    .ok();
    let log: Vec<(String, String, u16)> = cloud
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.route().to_string(), r.status))
        .collect();
    assert_eq!(cloud.auth_count(), 2, "{log:?}");
    let refused: Vec<usize> = (0..log.len()).filter(|&i| log[i].2 == 401).collect();
    assert_eq!(refused.len(), 1, "{log:?}");
    let i = refused[0];
    assert!(log[i].1.starts_with("/magnum/v1/clustertemplates/"), "{log:?}");
    assert_eq!(log[i + 1].1, "/identity/v3/auth/tokens", "{log:?}");
    assert_eq!(
        (&log[i + 2].1, log[i + 2].2),
        (&log[i].1, 200),
        "the same request again: {log:?}"
    );
    assert!(dir.path().join("config").exists());
}

#[test]
fn real_cli_over_https_with_the_cloud_ca() {
    let Some(cli) = Cli::new() else { return };
    let cloud = FakeOpenStack::start(Scenario::default().tls().leftover_template("t-https"));
    assert!(cloud.auth_url().starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cloud.ca_pem().unwrap()).unwrap();
    let refused = cli.run(&cloud, &["coe", "cluster", "template", "list"]);
    assert_ne!(refused.code, 0, "without the CA the CLI must refuse the cloud");
    assert!(
        refused.stderr.contains("CERTIFICATE_VERIFY_FAILED") || refused.stderr.contains("SSL"),
        "{}",
        refused.stderr
    );
    let cli = cli.with(&["--os-cacert", ca.to_str().unwrap()]);
    let list = cli
        .run(&cloud, &["coe", "cluster", "template", "list", "-f", "json"])
        .ok()
        .json();
    assert_eq!(list[0]["name"], "t-https");
}

#[test]
fn real_cli_internal_interface_uses_the_internal_endpoints() {
    let Some(cli) = Cli::new() else { return };
    let cloud = FakeOpenStack::start(Scenario::default().leftover_template("t-int"));
    let cli = cli.with(&["--os-interface", "internal"]);
    cli.run(&cloud, &["coe", "cluster", "template", "list"]).ok();
    cli.run(&cloud, &["image", "show", IMAGE]).ok();
    let used: Vec<Request> = cloud
        .requests()
        .into_iter()
        .filter(|r| r.service != "identity")
        .collect();
    assert!(!used.is_empty());
    for r in &used {
        assert_eq!(r.interface, "internal", "{} {}\n{used:#?}", r.method, r.path);
        assert!(r.path.starts_with("/internal/"), "{}", r.path);
    }
}

/// Glance, Nova and Neutron as openstacksdk reads them (version discovery,
/// lookups by name after a 404 by id, image properties, extra specs).
#[test]
fn real_cli_glance_nova_neutron() {
    let Some(cli) = Cli::new() else { return };
    let cloud = FakeOpenStack::start(Scenario::default());

    let image = cli.run(&cloud, &["image", "show", IMAGE, "-f", "json"]).ok().json();
    assert_eq!(image["properties"]["os_distro"], "ubuntu", "{image}");
    assert_eq!(image["properties"]["kube_version"], "v1.30.4");
    assert_eq!(image["status"], "active");

    let flavor = cli.run(&cloud, &["flavor", "show", "ds4G", "-f", "json"]).ok().json();
    assert_eq!(flavor["ram"], 4096);
    assert_eq!(flavor["vcpus"], 4);
    let big = cli
        .run(&cloud, &["flavor", "list", "--min-ram", "4096", "-f", "json"])
        .ok()
        .json();
    let names: Vec<&str> = big
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["m1.medium", "ds4G"]);

    let kp = cli.run(&cloud, &["keypair", "show", "mykey", "-f", "json"]).ok().json();
    assert_eq!(kp["name"], "mykey");
    let missing = cli.run(&cloud, &["keypair", "show", "nokey"]);
    assert_ne!(missing.code, 0);

    let net = cli
        .run(&cloud, &["network", "show", "public", "-f", "json"])
        .ok()
        .json();
    assert_eq!(net["router:external"], true);
    let ext = cli
        .run(&cloud, &["network", "list", "--external", "-f", "json"])
        .ok()
        .json();
    assert_eq!(ext.as_array().unwrap().len(), 1);
    assert_eq!(ext[0]["Name"], "public");
    assert!(cloud
        .requests()
        .iter()
        .any(|r| r.path == "/network/v2.0/networks?router%3Aexternal=True"));
}

/// Magnum's refusals reach the real CLI as magnum words them.
#[test]
fn real_cli_template_create_refusals() {
    let Some(cli) = Cli::new() else { return };
    let cloud = FakeOpenStack::start(Scenario::default());
    let mut args = create_template_args("t-bad");
    let image = args.iter().position(|a| *a == IMAGE).unwrap();
    args[image] = "cirros-0.6.2";
    let out = cli.run(&cloud, &args);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("Cluster type (vm, None, kubernetes) not supported (HTTP 400)"),
        "an image without os_distro: {}",
        out.stderr
    );
    args[image] = "no-such-image";
    let out = cli.run(&cloud, &args);
    assert!(
        out.stderr
            .contains("Cluster type (vm, None, kubernetes) not supported (HTTP 400)"),
        "{}",
        out.stderr
    );
    let mut args = create_template_args("t-bad");
    let ext = args.iter().position(|a| *a == "public").unwrap();
    args[ext] = "private";
    let out = cli.run(&cloud, &args);
    assert!(
        out.stderr
            .contains("Unable to find external network private (HTTP 400)"),
        "{}",
        out.stderr
    );
    assert!(cloud.templates().is_empty());
}

#[test]
fn real_cli_sees_a_server_error_mid_poll() {
    let Some(cli) = Cli::new() else { return };
    let cloud = FakeOpenStack::start(
        Scenario::default()
            .fault_at_poll(1, Fault::GatewayHtml(503))
            .fault_at_poll(2, Fault::ServerError(500)),
    );
    cli.run(&cloud, &create_template_args("t6")).ok();
    cli.run(&cloud, &["coe", "cluster", "create", "c6", "--cluster-template", "t6"])
        .ok();
    let out = cli.run(&cloud, &["coe", "cluster", "show", "c6"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("503"), "{}", out.stderr);
    let out = cli.run(&cloud, &["coe", "cluster", "show", "c6"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("Remote error: DBConnectionError"), "{}", out.stderr);
    assert!(out.stderr.contains("(HTTP 500)"), "{}", out.stderr);
    let shown = cli
        .run(&cloud, &["coe", "cluster", "show", "c6", "-f", "json"])
        .ok()
        .json();
    assert_eq!(
        shown["status"], "CREATE_IN_PROGRESS",
        "faulted polls do not advance the machine"
    );
}

// ---------------------------------------------------------------------------
// Plain Rust: the state machine and the wire shapes, over ureq.
// ---------------------------------------------------------------------------

struct Api {
    agent: ureq::Agent,
    cloud: FakeOpenStack,
    token: String,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(ureq::Agent::config_builder().http_status_as_error(false).build())
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.expect("request to the fake");
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    Reply {
        status: r.status().as_u16(),
        headers,
        body: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

fn app_cred_auth(c: &Credentials) -> Value {
    json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": c.application_credential_id, "secret": c.application_credential_secret}}}})
}

impl Api {
    fn new(scenario: Scenario) -> Api {
        let cloud = FakeOpenStack::start(scenario);
        let mut api = Api {
            agent: agent(),
            cloud,
            token: String::new(),
        };
        api.login();
        api
    }

    fn login(&mut self) {
        let r = self.auth(&app_cred_auth(&self.cloud.credentials()));
        assert_eq!(r.status, 201, "{}", r.body);
        self.token = r.header("x-subject-token").unwrap().to_string();
    }

    fn auth(&self, body: &Value) -> Reply {
        reply(
            self.agent
                .post(format!("{}/auth/tokens", self.cloud.auth_url()))
                .send_json(body),
        )
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cloud.base_url())
    }

    fn get(&self, path: &str) -> Reply {
        reply(
            self.agent
                .get(self.url(path))
                .header("X-Auth-Token", &self.token)
                .header("OpenStack-API-Version", "container-infra latest")
                .call(),
        )
    }

    fn post(&self, path: &str, body: &Value) -> Reply {
        reply(
            self.agent
                .post(self.url(path))
                .header("X-Auth-Token", &self.token)
                .header("OpenStack-API-Version", "container-infra latest")
                .send_json(body),
        )
    }

    fn delete(&self, path: &str) -> Reply {
        reply(
            self.agent
                .delete(self.url(path))
                .header("X-Auth-Token", &self.token)
                .header("OpenStack-API-Version", "container-infra latest")
                .call(),
        )
    }

    /// A template as the smoketest makes it; its uuid.
    fn template(&self, name: &str, image: &str, flavor: &str) -> String {
        let r = self.post(
            "/magnum/v1/clustertemplates",
            &json!({"name": name, "coe": "kubernetes", "image_id": image, "keypair_id": "mykey",
                "external_network_id": "public", "flavor_id": flavor, "master_flavor_id": flavor,
                "network_driver": "calico", "labels": {}}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["uuid"].as_str().unwrap().to_string()
    }

    /// A cluster on that template; its uuid.
    fn cluster(&self, name: &str, template: &str) -> String {
        let r = self.post(
            "/magnum/v1/clusters",
            &json!({"name": name, "cluster_template_id": template, "master_count": 1, "node_count": 1}),
        );
        assert_eq!(r.status, 202, "{}", r.body);
        let v = r.json();
        assert_eq!(
            v.as_object().unwrap().len(),
            1,
            "POST /clusters answers only the uuid: {v}"
        );
        v["uuid"].as_str().unwrap().to_string()
    }

    fn status(&self, cluster: &str) -> (u16, Value) {
        let r = self.get(&format!("/magnum/v1/clusters/{cluster}"));
        let v = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        (r.status, v)
    }

    fn ready_cluster(&self) -> (String, String) {
        let t = self.template("t", IMAGE, "ds4G");
        let c = self.cluster("c", &t);
        (t, c)
    }
}

fn magnum_error(v: &Value) -> (String, String) {
    let e = &v["errors"][0];
    (
        e["title"].as_str().unwrap_or("").to_string(),
        e["detail"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn keystone_issues_a_token_with_the_catalog() {
    let cloud = FakeOpenStack::start(Scenario::default());
    let agent = agent();
    let r = reply(
        agent
            .post(format!("{}/auth/tokens", cloud.auth_url()))
            .send_json(app_cred_auth(&cloud.credentials())),
    );
    assert_eq!(r.status, 201);
    let token = r.header("x-subject-token").unwrap();
    assert!(token.starts_with("gAAAAAB"));
    assert_eq!(cloud.tokens_issued(), vec![token.to_string()]);
    let body = r.json();
    let t = &body["token"];
    assert_eq!(t["methods"], json!(["application_credential"]));
    assert_eq!(t["project"]["name"], "demo");
    assert_eq!(t["application_credential"]["restricted"], true);
    let catalog = t["catalog"].as_array().unwrap();
    for (ty, path) in [
        ("container-infra", "/magnum/v1"),
        ("image", "/image"),
        ("compute", "/compute/v2.1"),
        ("network", "/network"),
        ("identity", "/identity"),
    ] {
        let svc = catalog
            .iter()
            .find(|s| s["type"] == ty)
            .unwrap_or_else(|| panic!("{ty} in the catalog"));
        let eps = svc["endpoints"].as_array().unwrap();
        assert_eq!(eps.len(), 3);
        for i in ["public", "internal", "admin"] {
            let ep = eps.iter().find(|e| e["interface"] == i).unwrap();
            assert_eq!(ep["region_id"], "RegionOne");
            assert_eq!(ep["region"], "RegionOne");
            assert_eq!(ep["url"], cloud.endpoint(ty, i));
            assert!(ep["url"].as_str().unwrap().ends_with(path));
        }
    }
    assert_eq!(
        cloud.endpoint("container-infra", "internal"),
        format!("{}/internal/magnum/v1", cloud.base_url())
    );
}

#[test]
fn keystone_refuses_bad_credentials_and_a_scoped_app_cred() {
    let api = Api::new(Scenario::default());
    let c = api.cloud.credentials();
    let mut wrong = app_cred_auth(&c);
    wrong["auth"]["identity"]["application_credential"]["secret"] = json!("nope");
    let r = api.auth(&wrong);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], 401);
    assert!(r.header("x-subject-token").is_none());

    let mut scoped = app_cred_auth(&c);
    scoped["auth"]["scope"] = json!({"project": {"name": "demo", "domain": {"name": "Default"}}});
    let r = api.auth(&scoped);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"]["message"],
        "Error authenticating with application credential: Application credentials cannot request a scope."
    );

    // By name, with the user.
    let by_name = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"name": c.application_credential_name, "secret": c.application_credential_secret,
            "user": {"name": c.username, "domain": {"name": "Default"}}}}}});
    assert_eq!(api.auth(&by_name).status, 201);
    assert_eq!(api.cloud.auth_count(), 2);
}

#[test]
fn keystone_password_scoped_and_unscoped() {
    let api = Api::new(Scenario::default());
    let c = api.cloud.credentials();
    let identity = json!({"methods": ["password"], "password": {"user":
        {"name": c.username, "domain": {"name": c.user_domain_name}, "password": c.password}}});
    let scoped = json!({"auth": {"identity": identity,
        "scope": {"project": {"name": c.project_name, "domain": {"name": c.project_domain_name}}}}});
    let r = api.auth(&scoped);
    assert_eq!(r.status, 201);
    assert!(r.json()["token"]["catalog"].as_array().is_some_and(|c| c.len() == 5));

    let unscoped = json!({"auth": {"identity": identity}});
    let r = api.auth(&unscoped);
    assert_eq!(r.status, 201);
    assert!(
        r.json()["token"].get("catalog").is_none(),
        "an unscoped token has no catalog"
    );
    assert!(r.json()["token"].get("project").is_none());

    let mut bad = scoped.clone();
    bad["auth"]["scope"]["project"]["name"] = json!("other");
    assert_eq!(api.auth(&bad).status, 401);
    let mut bad = scoped;
    bad["auth"]["identity"]["password"]["user"]["password"] = json!("x");
    assert_eq!(api.auth(&bad).status, 401);
}

#[test]
fn services_want_a_valid_token() {
    let api = Api::new(Scenario::default());
    let r = reply(api.agent.get(api.url("/magnum/v1/clusters")).call());
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Keystone uri="));
    assert_eq!(r.json()["error"]["title"], "Unauthorized");
    let r = reply(
        api.agent
            .get(api.url("/image/v2/images"))
            .header("X-Auth-Token", "gAAAAABforged")
            .call(),
    );
    assert_eq!(r.status, 401);
    api.cloud.revoke_credentials();
    assert_eq!(api.get("/magnum/v1/clusters").status, 401, "revoked: old tokens die");
    assert_eq!(
        api.auth(&app_cred_auth(&api.cloud.credentials())).status,
        401,
        "and no new ones"
    );
}

#[test]
fn magnum_microversion_headers() {
    let api = Api::new(Scenario::default());
    let r = api.get("/magnum/v1/clustertemplates");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("openstack-api-version"), Some("container-infra 1.11"));
    assert_eq!(r.header("openstack-api-minimum-version"), Some("container-infra 1.1"));
    assert_eq!(r.header("openstack-api-maximum-version"), Some("container-infra 1.11"));
    assert!(r.header("x-openstack-request-id").unwrap().starts_with("req-"));
    let none = reply(
        api.agent
            .get(api.url("/magnum/v1/clusters"))
            .header("X-Auth-Token", &api.token)
            .call(),
    );
    assert_eq!(
        none.header("openstack-api-version"),
        Some("container-infra 1.1"),
        "no header: the minimum"
    );
    let too_new = reply(
        api.agent
            .get(api.url("/magnum/v1/clusters"))
            .header("X-Auth-Token", &api.token)
            .header("OpenStack-API-Version", "container-infra 1.99")
            .call(),
    );
    assert_eq!(too_new.status, 406);
    assert_eq!(too_new.json()["errors"][0]["max_version"], "1.11");
}

#[test]
fn create_completes_after_the_in_progress_polls() {
    let api = Api::new(Scenario::default().create(Create::Complete { in_progress: 3 }));
    let (t, c) = api.ready_cluster();
    for n in 1..=3 {
        let (code, v) = api.status(&c);
        assert_eq!(
            (code, v["status"].as_str().unwrap()),
            (200, "CREATE_IN_PROGRESS"),
            "poll {n}"
        );
        assert_eq!(v["api_address"].is_null(), n < 2, "api_address from the 2nd poll: {v}");
    }
    let (_, v) = api.status("c");
    assert_eq!(v["status"], "CREATE_COMPLETE");
    assert_eq!(v["cluster_template_id"], t.as_str());
    assert_eq!(v["master_count"], 1);
    assert_eq!(v["node_count"], 1);
    assert_eq!(v["keypair"], "mykey");
    assert_eq!(v["status_reason"], Value::Null);
    assert!(v["api_address"].as_str().unwrap().starts_with("https://127.0.0.1:"));
    assert_eq!(api.status(&c).1["status"], "CREATE_COMPLETE", "it stays complete");
    assert_eq!(api.cloud.polls(&c), 5);
    // The list shows magnum's summary only.
    let list = api.get("/magnum/v1/clusters").json();
    let one = &list["clusters"][0];
    assert_eq!(one["status"], "CREATE_COMPLETE");
    assert!(
        one.get("status_reason").is_none() && one.get("api_address").is_none(),
        "{one}"
    );
    assert_eq!(list["next"], Value::Null);
    let detail = api.get("/magnum/v1/clusters/detail").json();
    assert!(detail["clusters"][0].get("api_address").is_some());
}

#[test]
fn create_failed_carries_the_status_reason() {
    let api = Api::new(Scenario::default().create(Create::Fail {
        in_progress: 1,
        reason: "Resource CREATE failed: OverQuota".into(),
    }));
    let (_, c) = api.ready_cluster();
    assert_eq!(api.status(&c).1["status"], "CREATE_IN_PROGRESS");
    let (_, v) = api.status(&c);
    assert_eq!(v["status"], "CREATE_FAILED");
    assert_eq!(v["status_reason"], "Resource CREATE failed: OverQuota");
}

#[test]
fn create_that_never_completes() {
    let api = Api::new(Scenario::default().create(Create::Never));
    let (_, c) = api.ready_cluster();
    for _ in 0..50 {
        assert_eq!(api.status(&c).1["status"], "CREATE_IN_PROGRESS");
    }
}

/// The driver's checks fail the cluster, not the POST (FACTS.md: a
/// kube_tag-only image fails late).
#[test]
fn driver_checks_fail_the_cluster_at_create() {
    let api = Api::new(Scenario::default());
    let t = api.template("t-tag", "ubuntu-kube-tag-only", "ds4G");
    let c = api.cluster("c-tag", &t);
    let (_, v) = api.status(&c);
    assert_eq!(v["status"], "CREATE_FAILED");
    assert!(
        v["status_reason"]
            .as_str()
            .unwrap()
            .ends_with("does not have a kube_version property."),
        "{v}"
    );

    let t = api.template("t-small", IMAGE, "m1.small");
    let c = api.cluster("c-small", &t);
    let (_, v) = api.status(&c);
    assert_eq!(v["status"], "CREATE_FAILED");
    assert_eq!(
        v["status_reason"],
        "Flavor m1.small does not have enough CPU to run Kubernetes. Minimum 2 vcpus required."
    );
    let api2 = Api::new(Scenario::default().flavor(Flavor::new("tiny", 1024, 4, 10)));
    let t = api2.template("t-tiny", IMAGE, "tiny");
    let c = api2.cluster("c-tiny", &t);
    assert_eq!(
        api2.status(&c).1["status_reason"],
        "Flavor tiny does not have enough RAM to run Kubernetes. Minimum 2048 MB required."
    );
}

#[test]
fn template_and_cluster_create_refusals() {
    let api = Api::new(Scenario::default().without_keypairs());
    let post = |body: Value| api.post("/magnum/v1/clustertemplates", &body);
    let base = json!({"name": "t", "coe": "kubernetes", "image_id": IMAGE, "external_network_id": "public",
        "flavor_id": "ds4G"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let r = post(with("image_id", json!("cirros-0.6.2")));
    assert_eq!(r.status, 400);
    assert_eq!(
        magnum_error(&r.json()),
        (
            "Cluster type (vm, None, kubernetes) not supported".to_string(),
            "Cluster type (vm, None, kubernetes) not supported.".to_string()
        )
    );
    assert_eq!(r.json()["errors"][0]["code"], "client");
    let r = post(with("flavor_id", json!("m9.huge")));
    assert_eq!(
        (r.status, magnum_error(&r.json()).1),
        (400, "Unable to find flavor m9.huge.".into())
    );
    let r = post(with("external_network_id", json!("private")));
    assert_eq!(r.status, 400);
    let r = post(with("template_id", json!("x")));
    assert_eq!(r.status, 400, "unknown attributes are refused");
    let r = post(json!({"name": "t", "image_id": IMAGE}));
    assert_eq!(r.status, 400, "coe is mandatory");
    let mut debian = Scenario::default();
    debian.images.push(Image::new(
        "debian-12",
        &[("os_distro", "debian"), ("kube_version", "v1.30.4")],
    ));
    let api_d = Api::new(debian);
    let r = api_d.post("/magnum/v1/clustertemplates", &with("image_id", json!("debian-12")));
    assert_eq!(
        magnum_error(&r.json()).1,
        "Cluster type (vm, debian, kubernetes) not supported."
    );

    // Cluster create: keypair (from the template) missing, bad name,
    // master_count > 1 without a load balancer, unknown template.
    let r = post(with("keypair_id", json!("mykey")));
    assert_eq!(r.status, 201, "magnum checks the keypair only at cluster create");
    let t = r.json()["uuid"].as_str().unwrap().to_string();
    let r = api.post("/magnum/v1/clusters", &json!({"name": "c", "cluster_template_id": t}));
    assert_eq!(
        (r.status, magnum_error(&r.json()).1),
        (404, "Unable to find keypair mykey.".into())
    );
    let api = Api::new(Scenario::default());
    let t = api.template("t", IMAGE, "ds4G");
    let r = api.post(
        "/magnum/v1/clusters",
        &json!({"name": "1bad", "cluster_template_id": t}),
    );
    assert_eq!(r.status, 400);
    let r = api.post(
        "/magnum/v1/clusters",
        &json!({"name": "c", "cluster_template_id": t, "master_count": 3}),
    );
    assert_eq!(
        magnum_error(&r.json()).1,
        "master_count must be 1 when master_lb_enabled is False"
    );
    let r = api.post(
        "/magnum/v1/clusters",
        &json!({"name": "c", "cluster_template_id": "nope"}),
    );
    assert_eq!(
        (r.status, magnum_error(&r.json()).1),
        (404, "ClusterTemplate nope could not be found.".into())
    );
    assert!(api.cloud.clusters().is_empty());
}

#[test]
fn a_server_error_mid_poll_does_not_advance_the_machine() {
    let api = Api::new(
        Scenario::default()
            .create(Create::Complete { in_progress: 1 })
            .fault_at_poll(2, Fault::ServerError(500))
            .fault_at_poll(3, Fault::GatewayHtml(503)),
    );
    let (_, c) = api.ready_cluster();
    assert_eq!(api.status(&c).1["status"], "CREATE_IN_PROGRESS");
    let r = api.get(&format!("/magnum/v1/clusters/{c}"));
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["errors"][0]["code"], "server");
    assert!(magnum_error(&r.json()).0.starts_with("Remote error: DBConnectionError"));
    let r = api.get(&format!("/magnum/v1/clusters/{c}"));
    assert_eq!(r.status, 503);
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert!(r.body.contains("No server is available"));
    assert_eq!(api.status(&c).1["status"], "CREATE_COMPLETE");
}

#[test]
fn a_401_mid_poll_needs_one_reauthentication() {
    let mut api = Api::new(
        Scenario::default()
            .create(Create::Complete { in_progress: 1 })
            .fault_at_poll(2, Fault::Unauthorized),
    );
    let (_, c) = api.ready_cluster();
    assert_eq!(api.status(&c).1["status"], "CREATE_IN_PROGRESS");
    let r = api.get(&format!("/magnum/v1/clusters/{c}"));
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], 401);
    assert_eq!(api.status(&c).0, 401, "the token stays revoked");
    api.login();
    assert_eq!(api.status(&c).1["status"], "CREATE_COMPLETE");
    assert_eq!(api.cloud.auth_count(), 2);
}

#[test]
fn the_first_token_expires_at_the_nth_request() {
    let mut api = Api::new(Scenario::default().expire_token_at(3));
    assert_eq!(api.get("/magnum/v1/clusters").status, 200);
    assert_eq!(api.get("/image/v2/images?name=x").status, 200);
    assert_eq!(
        api.get("/magnum/v1/clusters").status,
        401,
        "3rd request with the first token"
    );
    assert_eq!(api.get("/magnum/v1/clusters").status, 401);
    api.login();
    for _ in 0..10 {
        assert_eq!(api.get("/magnum/v1/clusters").status, 200, "later tokens never expire");
    }
}

#[test]
fn delete_goes_through_in_progress_to_gone() {
    let api = Api::new(
        Scenario::default()
            .create(Create::Complete { in_progress: 0 })
            .delete(Delete::Complete { in_progress: 2 }),
    );
    let (t, c) = api.ready_cluster();
    assert_eq!(api.status(&c).1["status"], "CREATE_COMPLETE");
    let r = api.delete(&format!("/magnum/v1/clusters/{c}"));
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert_eq!(api.status(&c).1["status"], "DELETE_IN_PROGRESS");
    // The template cannot go while the cluster is still there.
    let r = api.delete(&format!("/magnum/v1/clustertemplates/{t}"));
    assert_eq!(r.status, 400);
    assert_eq!(
        magnum_error(&r.json()),
        (
            format!("ClusterTemplate {t} is referenced by one or multiple clusters"),
            format!("ClusterTemplate {t} is referenced by one or multiple clusters.")
        )
    );
    assert_eq!(api.status(&c).1["status"], "DELETE_IN_PROGRESS");
    let (code, v) = api.status(&c);
    assert_eq!(code, 404);
    assert_eq!(magnum_error(&v).1, format!("Cluster {c} could not be found."));
    assert!(api.cloud.clusters().is_empty());
    assert_eq!(api.delete(&format!("/magnum/v1/clustertemplates/{t}")).status, 204);
    assert!(api.cloud.templates().is_empty());
    assert_eq!(api.cloud.count("DELETE", "/magnum/v1/clusters/"), 1);
    assert_eq!(api.cloud.count("DELETE", "/magnum/v1/clustertemplates/"), 2);
}

#[test]
fn delete_fails_then_a_retry_succeeds() {
    let api = Api::new(
        Scenario::default()
            .create(Create::Complete { in_progress: 0 })
            .delete(Delete::Fail {
                in_progress: 1,
                times: 1,
                reason: "Failed to delete the load balancer".into(),
            }),
    );
    let (_, c) = api.ready_cluster();
    api.status(&c);
    assert_eq!(api.delete(&format!("/magnum/v1/clusters/{c}")).status, 204);
    assert_eq!(api.status(&c).1["status"], "DELETE_IN_PROGRESS");
    let (_, v) = api.status(&c);
    assert_eq!(v["status"], "DELETE_FAILED");
    assert_eq!(v["status_reason"], "Failed to delete the load balancer");
    assert_eq!(api.status(&c).1["status"], "DELETE_FAILED", "it stays failed");
    assert_eq!(api.delete(&format!("/magnum/v1/clusters/{c}")).status, 204);
    assert_eq!(api.status(&c).1["status"], "DELETE_IN_PROGRESS");
    assert_eq!(api.status(&c).0, 404);
}

#[test]
fn delete_that_never_ends() {
    let api = Api::new(Scenario::default().delete(Delete::Never));
    let (_, c) = api.ready_cluster();
    api.delete(&format!("/magnum/v1/clusters/{c}"));
    for _ in 0..20 {
        assert_eq!(api.status(&c).1["status"], "DELETE_IN_PROGRESS");
    }
}

#[test]
fn lookups_by_name_and_duplicates() {
    let api = Api::new(Scenario::default());
    let t1 = api.template("dup", IMAGE, "ds4G");
    assert_eq!(api.get("/magnum/v1/clustertemplates/dup").json()["uuid"], t1.as_str());
    api.template("dup", IMAGE, "ds4G");
    let r = api.get("/magnum/v1/clustertemplates/dup");
    assert_eq!(
        r.status, 409,
        "magnum allows duplicate names, then refuses them as identifiers"
    );
    let r = api.get("/magnum/v1/clustertemplates/nope");
    assert_eq!(
        (r.status, magnum_error(&r.json()).1),
        (404, "ClusterTemplate nope could not be found.".into())
    );
    assert_eq!(api.get(&format!("/magnum/v1/clustertemplates/{t1}")).status, 200);
}

#[test]
fn leftovers_from_an_earlier_run() {
    let api = Api::new(
        Scenario::default()
            .leftover_template("magnum-smoketest-0a1b")
            .leftover_cluster("magnum-smoketest-9f8e"),
    );
    let names: Vec<Value> = api.get("/magnum/v1/clustertemplates").json()["clustertemplates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("magnum-smoketest-0a1b"), json!("magnum-smoketest-9f8e-template")]
    );
    let clusters = api.get("/magnum/v1/clusters").json();
    assert_eq!(clusters["clusters"][0]["name"], "magnum-smoketest-9f8e");
    assert_eq!(clusters["clusters"][0]["status"], "CREATE_COMPLETE");
}

#[test]
fn glance_nova_neutron_lookups() {
    let api = Api::new(Scenario::default());
    let imgs = api.get(&format!("/image/v2/images?name={IMAGE}")).json();
    let img = &imgs["images"][0];
    assert_eq!(img["os_distro"], "ubuntu", "properties are top-level keys");
    assert_eq!(img["kube_version"], "v1.30.4");
    let id = img["id"].as_str().unwrap();
    assert_eq!(api.get(&format!("/image/v2/images/{id}")).json()["name"], IMAGE);
    assert_eq!(api.get("/image/v2/images?name=nope").json()["images"], json!([]));
    assert_eq!(
        api.get("/image/v2/images/0d3c0e0f-0000-4000-8000-000000000000").status,
        404
    );
    assert_eq!(
        api.get("/image/v2/images?os_distro=ubuntu").json()["images"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let flavors = api.get("/compute/v2.1/flavors/detail").json();
    let ds = flavors["flavors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "ds4G")
        .unwrap()
        .clone();
    assert_eq!((ds["ram"].as_u64(), ds["vcpus"].as_u64()), (Some(4096), Some(4)));
    assert_eq!(
        api.get("/compute/v2.1/flavors/detail?minRam=4096").json()["flavors"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        api.get("/compute/v2.1/flavors/ds4G").status,
        404,
        "nova finds flavors by id only"
    );
    let fid = ds["id"].as_str().unwrap();
    assert_eq!(
        api.get(&format!("/compute/v2.1/flavors/{fid}")).json()["flavor"]["name"],
        "ds4G"
    );
    assert_eq!(
        api.get("/compute/v2.1/os-keypairs/mykey").json()["keypair"]["name"],
        "mykey"
    );
    let r = api.get("/compute/v2.1/os-keypairs/nokey");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["itemNotFound"]["code"], 404);

    let nets = api.get("/network/v2.0/networks?name=public").json();
    assert_eq!(nets["networks"][0]["router:external"], true);
    let ext = api.get("/network/v2.0/networks?router%3Aexternal=True").json();
    assert_eq!(ext["networks"].as_array().unwrap().len(), 1);
    let private = api
        .get("/network/v2.0/networks?name=private&router:external=true")
        .json();
    assert_eq!(private["networks"], json!([]));
}

#[test]
fn the_request_log_shows_the_interface() {
    let api = Api::new(Scenario::default());
    let internal = api.cloud.endpoint("container-infra", "internal");
    let r = reply(
        api.agent
            .get(format!("{internal}/clustertemplates"))
            .header("X-Auth-Token", &api.token)
            .call(),
    );
    assert_eq!(r.status, 200);
    let last = api.cloud.requests().pop().unwrap();
    assert_eq!(last.interface, "internal");
    assert_eq!(last.service, "container-infra");
    assert_eq!(last.route(), "/magnum/v1/clustertemplates");
    assert_eq!(last.path, "/internal/magnum/v1/clustertemplates");
}

/// `openstack coe cluster config` the Rust way: the CA from the
/// certificates API, an ECDSA CSR signed by it, then the cluster's
/// Kubernetes API over mutual TLS.
#[test]
fn certificates_and_the_cluster_kubernetes_api() {
    let api = Api::new(
        Scenario::default()
            .create(Create::Complete { in_progress: 0 })
            .ready_nodes(1),
    );
    let t = api.template("t", IMAGE, "ds4G");
    let r = api.post(
        "/magnum/v1/clusters",
        &json!({"name": "c", "cluster_template_id": t, "master_count": 1, "node_count": 2}),
    );
    let c = r.json()["uuid"].as_str().unwrap().to_string();
    let (_, v) = api.status(&c);
    let address = v["api_address"].as_str().unwrap().to_string();

    let ca = api.get(&format!("/magnum/v1/certificates/{c}")).json();
    assert_eq!(ca["cluster_uuid"], c.as_str());
    let ca_pem = ca["pem"].as_str().unwrap().to_string();
    assert_eq!(Some(ca_pem.clone()), api.cloud.cluster_ca_pem("c"));

    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "admin");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:masters");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let r = api.post("/magnum/v1/certificates", &json!({"cluster_uuid": c, "csr": csr}));
    assert_eq!(r.status, 201, "{}", r.body);
    let cert_pem = r.json()["pem"].as_str().unwrap().to_string();
    assert!(cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));

    // A CSR whose signature does not match its key is refused.
    let other = rcgen::KeyPair::generate().unwrap();
    let forged = params.serialize_request(&other).unwrap().der().to_vec();
    let mut tampered = forged.clone();
    let n = tampered.len();
    tampered[n - 5] ^= 0xff;
    let pem = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        base64::engine::general_purpose::STANDARD.encode(&tampered)
    );
    let r = api.post("/magnum/v1/certificates", &json!({"cluster_uuid": c, "csr": pem}));
    assert_eq!(r.status, 400, "{}", r.body);
    let r = api.post("/magnum/v1/certificates", &json!({"cluster_uuid": "nope", "csr": csr}));
    assert_eq!(
        (r.status, magnum_error(&r.json()).1),
        (400, "Cluster nope could not be found.".into())
    );

    // The Kubernetes API wants the client certificate.
    let (code, body) = kube_get(&address, &ca_pem, None, "/api/v1/nodes");
    assert_eq!(code, 401, "{body}");
    let (code, body) = kube_get(&address, &ca_pem, Some((&cert_pem, &key)), "/api/v1/nodes");
    assert_eq!(code, 200, "{body}");
    let nodes: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(nodes["kind"], "NodeList");
    let items = nodes["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let ready = items
        .iter()
        .filter(|n| n["status"]["conditions"][0]["type"] == "Ready" && n["status"]["conditions"][0]["status"] == "True")
        .count();
    assert_eq!(ready, 1);
    // A certificate from another cluster's CA is refused at the TLS layer.
    let t2 = api.template("t2", IMAGE, "ds4G");
    let c2 = api.cluster("c2", &t2);
    let r = api.post("/magnum/v1/certificates", &json!({"cluster_uuid": c2, "csr": csr}));
    let foreign = r.json()["pem"].as_str().unwrap().to_string();
    let (code, _) = kube_get(&address, &ca_pem, Some((&foreign, &key)), "/api/v1/nodes");
    assert_eq!(code, 0, "the TLS handshake fails");

    // Deleting the cluster takes its API down.
    api.delete(&format!("/magnum/v1/clusters/{c}"));
    api.status(&c);
    assert_eq!(api.status(&c).0, 404);
    let (code, _) = kube_get(&address, &ca_pem, Some((&cert_pem, &key)), "/api/v1/nodes");
    assert_eq!(code, 0);
}

/// GET over TLS with an optional client certificate; (0, error) when the
/// connection or handshake fails.
fn kube_get(address: &str, ca_pem: &str, client: Option<(&str, &rcgen::KeyPair)>, path: &str) -> (u16, String) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(pem_to_der(ca_pem, "CERTIFICATE").unwrap()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(pem_to_der(cert, "CERTIFICATE").unwrap())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, "connect".into());
    };
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let conn = rustls::ClientConnection::new(
        Arc::new(config),
        ServerName::IpAddress("127.0.0.1".parse::<std::net::IpAddr>().unwrap().into()),
    )
    .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
    if let Err(e) = tls.write_all(req.as_bytes()) {
        return (0, e.to_string());
    }
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e) if raw.is_empty() => return (0, e.to_string()),
        Err(_) => {}
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// HTTP/1.1 details other clients use: `Expect: 100-continue` (curl, for a
/// CSR) and chunked request bodies.
#[test]
fn http_expect_continue_and_chunked_bodies() {
    let cloud = FakeOpenStack::start(Scenario::default());
    let body = serde_json::to_string(&app_cred_auth(&cloud.credentials())).unwrap();
    let port: u16 = cloud.base_url().rsplit(':').next().unwrap().parse().unwrap();

    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /identity/v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut buf = [0u8; 25];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 100 Continue\r\n\r\n");
    write!(s, "{body}").unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 201");

    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let (a, b) = body.split_at(10);
    write!(
        s,
        "POST /identity/v3/auth/tokens HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 201 Created\r\n"), "{out}");
    assert!(out.to_ascii_lowercase().contains("x-subject-token: gaaaaab"), "{out}");
    assert_eq!(cloud.auth_count(), 2);
}
