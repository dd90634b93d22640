//! Hostile input: a bad `juju config`, a garbage secret, bad action
//! parameters and bad resources each get a clear message (status or
//! action-fail), no panic, no file changed and no service touched. The
//! table is the whole test: one line an input.

mod support;

use serde_json::{json, Value};
use support::kube_server::{Api, KubeServer, Pki};
use support::{Expect, Unit, KUBECONFIG, SECRET_URI};

const CREDS_URI: &str = "secret:d1f8kq7mp25c77screds";

enum Input {
    /// `juju config magnum-capi key=value`, then config-changed.
    Config(&'static str, Value),
    /// The kubeconfig secret's content, then secret-changed.
    Kubeconfig(String),
    /// The kubeconfig secret's whole key/value map, then secret-changed.
    KubeconfigSecret(Value),
    /// OpenStack credentials secret content, then the smoketest action.
    Credentials(Value),
    /// Smoketest parameters (with valid credentials set).
    Smoketest(Value),
    /// A resource's bytes, then upgrade-charm.
    Resource(&'static str, Vec<u8>),
}

fn smoketest_params(extra: Value) -> Value {
    let mut p = json!({"image": "ubuntu-jammy", "keypair": "ops", "external-network": "ext_net", "flavor": "m1.medium", "master-flavor": "m1.medium"});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

/// A certificate kubeconfig from a fresh test PKI, one part of it changed.
fn cert_kubeconfig(change: impl FnOnce(&mut Pki)) -> String {
    let mut pki = Pki::new((2099, 1, 1));
    change(&mut pki);
    let b64 = support::kube_server::b64;
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: mgmt\n  cluster:\n    server: https://10.20.0.10:6443\n    certificate-authority-data: {}\ncontexts:\n- name: m\n  context:\n    cluster: mgmt\n    user: magnum\ncurrent-context: m\nusers:\n- name: magnum\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(pki.ca_pem.as_bytes()),
        b64(pki.client_cert_pem.as_bytes()),
        b64(pki.client_key_pem.as_bytes())
    )
}

fn table() -> Vec<(&'static str, Input, &'static str)> {
    use Input::*;
    let big = "a".repeat(10 * 1024 * 1024);
    let bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n".to_string();
    vec![
        // juju config
        (
            "version with a shell command",
            Config("driver-version", json!("1.1.0; rm -rf /")),
            "driver-version",
        ),
        (
            "version path traversal",
            Config("driver-version", json!("../../x")),
            "driver-version",
        ),
        (
            "version command substitution",
            Config("driver-version", json!("$(reboot)")),
            "driver-version",
        ),
        ("version empty", Config("driver-version", json!("")), "driver-version"),
        (
            "version huge",
            Config("driver-version", json!(big.clone())),
            "driver-version",
        ),
        (
            "version wrong type",
            Config("driver-version", json!(11)),
            "not a string",
        ),
        (
            "index not http",
            Config("pip-index-url", json!("file:///etc/passwd")),
            "pip-index-url",
        ),
        (
            "index with a space",
            Config("pip-index-url", json!("https://mirror/simple --trusted-host evil")),
            "pip-index-url",
        ),
        (
            "newline section injection",
            Config("namespace-prefix", json!("x\n[DEFAULT]\ndebug = true")),
            "line break",
        ),
        (
            "carriage return injection",
            Config("namespace-prefix", json!("x\r[DEFAULT]\rdebug = true")),
            "line break",
        ),
        ("NUL byte", Config("namespace-prefix", json!("a\u{0}b")), "NUL"),
        (
            "non-ASCII em dash",
            Config("namespace-prefix", json!("magnum\u{2014}capi")),
            "non-ASCII",
        ),
        (
            "brackets",
            Config("helm-chart-repo", json!("https://charts/[x]")),
            "'['",
        ),
        (
            "quoted value oslo strips",
            Config("namespace-prefix", json!("\"tenant\"")),
            "quote",
        ),
        ("huge value", Config("helm-chart-name", json!(big.clone())), "limit"),
        (
            "int as text",
            Config("minimum-flavor-ram", json!("lots")),
            "minimum-flavor-ram",
        ),
        (
            "negative int",
            Config("minimum-flavor-ram", json!(-5)),
            "minimum-flavor-ram",
        ),
        (
            "float for int",
            Config("minimum-flavor-vcpus", json!(1.5)),
            "minimum-flavor-vcpus",
        ),
        (
            "bool as maybe",
            Config("csi-cinder-allow-volume-expansion", json!("maybe")),
            "csi-cinder-allow-volume-expansion",
        ),
        (
            "choice off the list",
            Config("csi-cinder-reclaim-policy", json!("Keep")),
            "csi-cinder-reclaim-policy",
        ),
        (
            "override mode unknown",
            Config("service-override", json!("sometimes")),
            "service-override",
        ),
        (
            "driver list shell chars",
            Config("disabled-drivers", json!("a;b")),
            "disabled-drivers",
        ),
        (
            "disabling our own driver",
            Config("disabled-drivers", json!("k8s_capi_helm_v1")),
            "disabled-drivers",
        ),
        (
            "settle too long",
            Config("restart-settle-seconds", json!(100000)),
            "restart-settle-seconds",
        ),
        (
            "secret uri traversal",
            Config("kubeconfig-secret", json!("secret:../../etc/shadow")),
            "not a secret URI",
        ),
        (
            "secret uri garbage",
            Config("kubeconfig-secret", json!("https://evil/secret")),
            "not a secret URI",
        ),
        (
            "sha256 pin not hex",
            Config("driver-sha256", json!("xyz")),
            "driver-sha256",
        ),
        (
            "sha256 pin wrong length",
            Config("helm-sha256", json!("g".repeat(64))),
            "helm-sha256",
        ),
        // the kubeconfig secret
        ("kubeconfig not YAML", Kubeconfig("{{{ :".into()), "not valid YAML"),
        ("kubeconfig a list", Kubeconfig("- a\n- b\n".into()), "kind: Config"),
        (
            "kubeconfig kind Pod",
            Kubeconfig(KUBECONFIG.replace("kind: Config", "kind: Pod")),
            "kind: Config",
        ),
        (
            "kubeconfig no context",
            Kubeconfig(KUBECONFIG.replace("current-context: magnum@capi-mgmt\n", "")),
            "current-context",
        ),
        (
            "kubeconfig http",
            Kubeconfig(KUBECONFIG.replace("https://", "http://")),
            "https",
        ),
        (
            "kubeconfig bad base64",
            Kubeconfig(KUBECONFIG.replace("LS0tLS1CRUdJTi", "ab$cd")),
            "base64",
        ),
        (
            "kubeconfig exec plugin",
            Kubeconfig(KUBECONFIG.replace(
                "token: eyJhbGciOiJSUzI1NiJ9.canary-token-0001.sig",
                "exec: {command: /bin/sh, args: [-c, id]}",
            )),
            "plugin",
        ),
        (
            "kubeconfig file references",
            Kubeconfig(KUBECONFIG.replace(
                "token: eyJhbGciOiJSUzI1NiJ9.canary-token-0001.sig",
                "client-certificate: ../../etc/ssl/key.pem\n    client-key: /root/key",
            )),
            "files on another machine",
        ),
        ("kubeconfig huge", Kubeconfig(format!("{KUBECONFIG}#{big}")), "1 MiB"),
        ("kubeconfig NUL", Kubeconfig(format!("{KUBECONFIG}\u{0}")), "NUL"),
        ("kubeconfig billion laughs", Kubeconfig(bomb), "YAML"),
        ("kubeconfig deep nesting", Kubeconfig("[".repeat(200_000)), "YAML"),
        (
            "kubeconfig duplicate keys",
            Kubeconfig(KUBECONFIG.replace("kind: Config\n", "kind: Config\nkind: Config\n")),
            "YAML",
        ),
        // Each PEM field of a certificate kubeconfig wrong in turn (issue
        // 23, item 6): valid base64 of something that is not what the
        // field claims.
        (
            "kubeconfig CA not PEM",
            Kubeconfig(cert_kubeconfig(|p| p.ca_pem = "not a certificate".into())),
            "certificate-authority-data holds no PEM certificate",
        ),
        (
            "kubeconfig CA a key",
            Kubeconfig(cert_kubeconfig(|p| p.ca_pem = p.server_key_pem.clone())),
            "certificate-authority-data holds a private key",
        ),
        (
            "kubeconfig client cert not PEM",
            Kubeconfig(cert_kubeconfig(|p| p.client_cert_pem = "\u{1}\u{2}binary".into())),
            "client-certificate-data holds no PEM certificate",
        ),
        (
            "kubeconfig client cert a key",
            Kubeconfig(cert_kubeconfig(|p| p.client_cert_pem = p.client_key_pem.clone())),
            "client-certificate-data holds a private key",
        ),
        (
            "kubeconfig client key not PEM",
            Kubeconfig(cert_kubeconfig(|p| {
                p.client_key_pem = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC".into()
            })),
            "client-key-data must hold exactly one PEM private key",
        ),
        (
            "kubeconfig client key a certificate",
            Kubeconfig(cert_kubeconfig(|p| p.client_key_pem = p.client_cert_pem.clone())),
            "client-key-data holds a certificate",
        ),
        (
            "kubeconfig client key of another certificate",
            Kubeconfig(cert_kubeconfig(|p| p.client_key_pem = p.server_key_pem.clone())),
            "client-key-data is not the private key of client-certificate-data",
        ),
        (
            "kubeconfig client key garbage DER",
            Kubeconfig(cert_kubeconfig(|p| {
                p.client_key_pem = "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n".into()
            })),
            "client-key-data is not a usable",
        ),
        (
            "kubeconfig client certificate expired",
            Kubeconfig(KubeServer::start(Pki::new((2024, 1, 2)), Api::Capo).cert_kubeconfig()),
            "client certificate expired on 2024-01-02",
        ),
        (
            "secret without the key",
            KubeconfigSecret(json!({"config": KUBECONFIG})),
            "no key kubeconfig",
        ),
        // OpenStack credentials (smoketest)
        (
            "creds no auth-url",
            Credentials(json!({"application-credential-id": "i", "application-credential-secret": "s"})),
            "auth-url",
        ),
        (
            "creds auth-url not http",
            Credentials(
                json!({"auth-url": "ldap://k", "application-credential-id": "i", "application-credential-secret": "s"}),
            ),
            "auth-url",
        ),
        (
            "creds half an app cred",
            Credentials(json!({"auth-url": "https://k/v3", "application-credential-id": "i"})),
            "go together",
        ),
        (
            "creds bad interface",
            Credentials(
                json!({"auth-url": "https://k/v3", "application-credential-id": "i", "application-credential-secret": "s", "interface": "private"}),
            ),
            "interface",
        ),
        (
            "creds ca-cert not PEM",
            Credentials(
                json!({"auth-url": "https://k/v3", "application-credential-id": "i", "application-credential-secret": "s", "ca-cert": "hello"}),
            ),
            "ca-cert",
        ),
        (
            "creds control characters",
            Credentials(
                json!({"auth-url": "https://k/v3", "application-credential-id": "i\u{1b}[2J", "application-credential-secret": "s"}),
            ),
            "control characters",
        ),
        // smoketest parameters
        ("params missing image", Smoketest(json!({"keypair": "ops"})), "image"),
        (
            "params bad labels",
            Smoketest(smoketest_params(json!({"labels": "kube_tag"}))),
            "key=value",
        ),
        (
            "params zero masters",
            Smoketest(smoketest_params(json!({"master-count": 0}))),
            "master-count",
        ),
        (
            "params prefix with spaces",
            Smoketest(smoketest_params(json!({"name-prefix": "a b; rm"}))),
            "name-prefix",
        ),
        (
            "params newline in a name",
            Smoketest(smoketest_params(json!({"image": "x\ny"}))),
            "image",
        ),
        (
            "params wrong type",
            Smoketest(smoketest_params(json!({"keep-on-failure": "yes"}))),
            "keep-on-failure",
        ),
        // resources
        (
            "wheel resource garbage",
            Resource("driver-wheel", b"\x00\x01 not a wheel at all".to_vec()),
            "neither a wheel",
        ),
        (
            "wheel resource truncated zip",
            Resource("driver-wheel", b"PK\x03\x04truncated".to_vec()),
            "zip",
        ),
        (
            "wheel resource truncated gzip",
            Resource("driver-wheel", vec![0x1f, 0x8b, 8, 0, 0, 0]),
            "tar.gz",
        ),
        (
            "helm resource a shell script",
            Resource("helm", b"#!/bin/sh\nrm -rf /\n".to_vec()),
            "neither a helm binary",
        ),
        (
            "helm resource truncated ELF",
            Resource("helm", b"\x7fELF".to_vec()),
            "not an ELF",
        ),
    ]
}

/// A unit as an operator has it: converged, with smoketest credentials set.
fn working_unit() -> Unit {
    let unit = Unit::new();
    unit.kubeconfig(KUBECONFIG);
    unit.secret(CREDS_URI, json!({"auth-url": "https://127.0.0.1:9/v3", "application-credential-id": "id", "application-credential-secret": "canary-creds-0001"}));
    unit.config("openstack-credentials-secret", CREDS_URI);
    unit.hook("install").expect_active().run();
    unit
}

/// Set the input up; the run that meets it.
fn apply(unit: &Unit, input: Input) -> Expect<'_> {
    match input {
        Input::Config(k, v) => {
            unit.config(k, v);
            unit.hook("config-changed")
        }
        Input::Kubeconfig(k) => {
            unit.secret(SECRET_URI, json!({"kubeconfig": k}));
            unit.hook("secret-changed")
        }
        Input::KubeconfigSecret(content) => {
            unit.secret(SECRET_URI, content);
            unit.hook("secret-changed")
        }
        Input::Credentials(c) => {
            unit.secret(CREDS_URI, c);
            unit.action("smoketest", smoketest_params(json!({})))
        }
        Input::Smoketest(p) => unit.action("smoketest", p),
        Input::Resource(name, bytes) => {
            let path = unit.path(&format!("/../resource-{name}"));
            std::fs::write(&path, bytes).unwrap();
            unit.resource(name, &path);
            unit.hook("upgrade-charm")
        }
    }
}

#[test]
fn every_hostile_input_gets_a_clear_message_and_changes_nothing() {
    let table = table();
    assert!(table.len() >= 40, "{} inputs", table.len());
    for (name, input, want) in table {
        let unit = working_unit();
        let services = unit.world()["services"].clone();
        let is_action = matches!(input, Input::Credentials(_) | Input::Smoketest(_));
        let run = apply(&unit, input).note(name).expect_unchanged().run();
        assert!(!run.stderr.contains("panicked"), "{name}: panic\n{}", run.stderr);
        let message = if is_action {
            unit.action_failed()
                .unwrap_or_else(|| panic!("{name}: the action did not fail"))
        } else {
            let (kind, message) = unit.status();
            assert_eq!(kind, "blocked", "{name}: {message}");
            message
        };
        assert!(message.contains(want), "{name}: {message:?} does not say {want:?}");
        assert!(message.len() < 1000, "{name}: a {}-byte message", message.len());
        assert_eq!(unit.world()["services"], services, "{name}: services touched");
        assert!(
            !run.called("systemctl restart") && !run.called("pip3 install"),
            "{name}: {:?}",
            run.spawned()
        );
    }
}

/// A canary in every secret field never leaves the file it belongs in:
/// not in a log line, stderr, status, action result, the fake journal, or
/// any file but the kubeconfig (and the charm's root-only copies of it).
#[test]
fn secrets_never_leak() {
    const CANARY_K: &str = "canary-token-0001";
    const CANARY_C: &str = "canary-creds-0001";
    let unit = working_unit();
    let mut runs = Vec::new();
    for hook in [
        "config-changed",
        "update-status",
        "secret-changed",
        "upgrade-charm",
        "start",
    ] {
        runs.push(unit.hook(hook).run());
    }
    runs.push(unit.action("verify", json!({})).run());
    runs.push(unit.action("smoketest", smoketest_params(json!({}))).run());
    // Failure paths: a bad kubeconfig carrying the canary, refused creds.
    unit.secret(
        SECRET_URI,
        json!({"kubeconfig": KUBECONFIG.replace("kind: Config", "kind: Pod")}),
    );
    runs.push(unit.hook("secret-changed").run());
    unit.secret(CREDS_URI, json!({"auth-url": "https://127.0.0.1:9/v3", "application-credential-id": CANARY_C, "application-credential-secret": CANARY_C, "interface": "private"}));
    runs.push(unit.action("smoketest", smoketest_params(json!({}))).run());
    unit.hook("stop").run();

    let mut seen = Vec::new();
    for r in &runs {
        seen.push(r.stderr.clone());
        seen.push(r.stdout.clone());
        for c in &r.calls {
            seen.push(c.args.join(" "));
        }
    }
    let fake = unit.fake_dir();
    for f in [
        "status-history.jsonl",
        "action-results.json",
        "action-failed",
        "action-log.txt",
        "juju-log.txt",
    ] {
        seen.push(std::fs::read_to_string(fake.join(f)).unwrap_or_default());
    }
    seen.push(unit.world()["journal"].to_string());
    for text in &seen {
        assert!(
            !text.contains(CANARY_K) && !text.contains(CANARY_C),
            "a secret leaked: {text}"
        );
    }
    for (path, f) in unit.snapshot_all() {
        let t = f.text();
        if t.contains(CANARY_K) || t.contains(CANARY_C) {
            let allowed =
                path == "/etc/magnum/kubeconfig" || (path.starts_with("/var/lib/magnum-capi/") && f.mode == 0o600);
            assert!(allowed, "the secret is in {path}");
        }
    }
}

/// ENOSPC and EROFS while writing: the old file stays, the unit is blocked
/// with the error, magnum is not restarted. Needs root (mount).
#[test]
fn a_full_or_read_only_disk_leaves_the_old_file_and_blocks() {
    if nix_is_root().is_none() {
        if std::env::var_os("MAGNUM_CAPI_REQUIRE_REAL").is_some() {
            panic!("this test needs root to mount a small tmpfs (CI runs as root)");
        }
        eprintln!("SKIPPED a_full_or_read_only_disk_leaves_the_old_file_and_blocks: needs root");
        return;
    }
    for fault in ["ENOSPC", "EROFS"] {
        let unit = working_unit();
        let conf = "/etc/magnum/magnum.conf.d/99-capi.conf";
        let dir = unit.path("/etc/magnum/magnum.conf.d");
        let old = unit.file(conf).unwrap();
        let keep = unit.path("/../old-99-capi.conf");
        std::fs::copy(unit.path(conf), &keep).unwrap();
        let sh = |cmd: String| {
            let out = std::process::Command::new("sh").arg("-c").arg(&cmd).output().unwrap();
            assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let d = dir.display();
        match fault {
            "ENOSPC" => {
                sh(format!("mount -t tmpfs -o size=64k,mode=0750 tmpfs {d} && cp -p {} {d}/99-capi.conf && chown --reference={} {d}/99-capi.conf && (dd if=/dev/zero of={d}/filler bs=4k 2>/dev/null || true)", keep.display(), keep.display()));
            }
            _ => sh(format!("mount --bind {d} {d} && mount -o remount,bind,ro {d}")),
        }
        let _umount = Umount(dir.clone());
        let before = std::fs::read(unit.path(conf)).unwrap();
        unit.config("namespace-prefix", "tenant");
        let run = unit
            .hook("config-changed")
            .note(fault)
            .expect_blocked("99-capi.conf")
            .run();
        assert_eq!(
            std::fs::read(unit.path(conf)).unwrap(),
            before,
            "{fault}: the old file changed"
        );
        assert_eq!(before, old.content);
        assert!(!run.called("systemctl restart"), "{fault}: {:?}", run.spawned());
        assert!(
            unit.temp_files().is_empty() || fault == "EROFS",
            "{fault}: {:?}",
            unit.temp_files()
        );
    }
}

struct Umount(std::path::PathBuf);

impl Drop for Umount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn nix_is_root() -> Option<()> {
    (std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .ok()
        == Some(0))
    .then_some(())
}
