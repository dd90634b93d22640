//! The charm's 99-capi.conf read by the REAL oslo.config, with magnum's
//! options and the magnum-capi-helm driver's `[capi_helm]` options
//! registered as the services do (tests/oslo/read_conf.py, run in the venv
//! that `bash tests/venvs/oslo.sh` builds: magnum 18.0.1, the driver 1.4.0,
//! and 1.1.0's wheel beside it for its option layout, oslo.config 9.4.0).
//! What the services would see is asserted, not the text the charm wrote.
//!
//! Without the venv each test says so loudly and passes, unless
//! MAGNUM_CAPI_REQUIRE_REAL is set (CI), where a missing venv is a failure.

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use support::kube_server::{Api, KubeServer, Pki};
use support::{Unit, KUBECONFIG};

const CAPI_CONF: &str = "/etc/magnum/magnum.conf.d/99-capi.conf";
const MAGNUM_CONF: &str = "/etc/magnum/magnum.conf";
const CONF_D: &str = "/etc/magnum/magnum.conf.d";

/// The real parser: the venv's python and the reader script.
struct Oslo {
    python: PathBuf,
    script: PathBuf,
    /// 1.1.0's wheel, for `read_runbook_with_1_1_0`.
    old_wheel: PathBuf,
}

impl Oslo {
    /// The venv, or None (after saying why) when the test should skip.
    fn find() -> Option<Oslo> {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let venv = std::env::var_os("OSLO_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest.join("target/venv-oslo"));
        let python = venv.join("bin/python");
        let script = manifest.join("tests/oslo/read_conf.py");
        let old_wheel = venv.join("wheels/magnum_capi_helm-1.1.0-py3-none-any.whl");
        if python.exists() && old_wheel.exists() {
            return Some(Oslo {
                python,
                script,
                old_wheel,
            });
        }
        let how = format!(
            "the real oslo.config venv is missing at {}: create it with `bash tests/venvs/oslo.sh`",
            venv.display()
        );
        support::skip::skip_real("tests/oslo_config.rs", &how);
        None
    }

    /// What magnum would read, given the service's own arguments.
    fn read(&self, args: &[String]) -> Value {
        let out = Command::new(&self.python)
            .arg(&self.script)
            .args(args)
            .env_remove("PYTHONPATH")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .expect("run the venv's python");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "read_conf.py printed no JSON ({e}), exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(
            out.status.success(),
            v.get("error").is_none(),
            "exit {:?} with {v}",
            out.status.code()
        );
        v
    }

    /// The runbook's drop-in: `--config-file magnum.conf --config-dir conf.d`.
    fn read_runbook(&self, unit: &Unit) -> Value {
        self.read_runbook_as(unit, &[])
    }

    /// The same, with driver 1.1.0's options registered instead.
    fn read_runbook_with_1_1_0(&self, unit: &Unit) -> Value {
        let v = self.read_runbook_as(unit, &["--driver-wheel".into(), self.old_wheel.display().to_string()]);
        assert!(
            v["driver"].as_str().unwrap().contains("magnum_capi_helm-1.1.0"),
            "{}",
            v["driver"]
        );
        v
    }

    fn read_runbook_as(&self, unit: &Unit, extra: &[String]) -> Value {
        let mut args = vec![
            "--config-file".into(),
            unit.path(MAGNUM_CONF).display().to_string(),
            "--config-dir".into(),
            unit.path(CONF_D).display().to_string(),
        ];
        args.extend_from_slice(extra);
        let v = self.read(&args);
        assert!(
            v.get("error").is_none(),
            "the real parser refused the unit's config: {v}\n99-capi.conf:\n{}",
            unit.text(CAPI_CONF)
        );
        v
    }

    /// service-override=none: the packaged command line has only
    /// `--config-file`, and oslo.config reads conf.d as its default dir.
    fn read_packaged(&self, unit: &Unit) -> Value {
        let v = self.read(&[
            "--config-file".into(),
            unit.path(MAGNUM_CONF).display().to_string(),
            "--default-config-dir".into(),
            unit.path(CONF_D).display().to_string(),
        ]);
        assert!(
            v.get("error").is_none(),
            "the real parser refused the unit's config: {v}"
        );
        v
    }
}

/// The skip-or-fail preamble of every test.
macro_rules! oslo {
    () => {
        match Oslo::find() {
            Some(o) => o,
            None => return,
        }
    };
}

/// The driver 1.4.0's `[capi_helm]` defaults, as oslo.config returns them
/// (tests/fakes/research/magnum-capi-helm-wheels.md, conf.py).
fn driver_defaults() -> Value {
    json!({
        "kubeconfig_file": "",
        "namespace_prefix": "magnum",
        "helm_chart_repo": "https://azimuth-cloud.github.io/capi-helm-charts",
        "helm_chart_name": "openstack-cluster",
        "default_helm_chart_version": "0.10.1",
        "minimum_flavor_ram": 2048,
        "minimum_flavor_vcpus": 2,
        "csi_cinder_default_volume_type": null,
        "csi_cinder_allowed_topologies": [],
        "app_cred_interface_type": "public",
        "api_resources": "{}",
        "k8s_control_plane_resource_conditions": ["MachinesReady", "Ready", "EtcdClusterHealthy", "ControlPlaneComponentsHealthy"],
    })
}

/// The driver 1.1.0's `[capi_helm]` defaults (FACTS.md), as oslo.config
/// returns them.
fn driver_1_1_0_defaults() -> Value {
    json!({
        "kubeconfig_file": "",
        "namespace_prefix": "magnum",
        "helm_chart_repo": "https://stackhpc.github.io/capi-helm-charts",
        "helm_chart_name": "openstack-cluster",
        "default_helm_chart_version": "0.4.0",
        "minimum_flavor_ram": 2048,
        "minimum_flavor_vcpus": 2,
        "csi_cinder_default_volume_type": null,
        "csi_cinder_reclaim_policy": "Retain",
        "csi_cinder_allow_volume_expansion": true,
        "csi_cinder_allowed_topologies": [],
        "csi_cinder_fstype": "ext4",
        "csi_cinder_volume_binding_mode": "Immediate",
        "csi_cinder_availability_zone": "nova",
        "app_cred_interface_type": "public",
    })
}

fn with(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        assert!(base.get(k).is_some(), "{k} is not a [capi_helm] option of the driver");
        base[k] = v.clone();
    }
    base
}

/// A magnum unit set up by `setup`, install run and active.
fn installed(setup: impl FnOnce(&Unit)) -> Unit {
    let unit = Unit::new();
    setup(&unit);
    unit.hook("install").expect_active().run();
    unit
}

fn config_changed(unit: &Unit) {
    unit.hook("config-changed").expect_active().run();
}

#[test]
fn defaults_read_back_as_the_kubeconfig_and_the_other_drivers_disabled() {
    let oslo = oslo!();
    let unit = Unit::converged();
    let v = oslo.read_runbook(&unit);

    assert_eq!(
        v["capi_helm"],
        with(driver_defaults(), json!({"kubeconfig_file": "/etc/magnum/kubeconfig"}))
    );
    // The fake unit's magnum egg-info lists these two drivers.
    assert_eq!(
        v["drivers"]["disabled_drivers"],
        json!(["k8s_fedora_atomic_v1", "k8s_fedora_coreos_v1"])
    );
    assert_eq!(v["drivers"]["enabled_beta_drivers"], json!([]));
    // magnum.conf's own [drivers] key is still read: the charm adds, it
    // does not replace.
    assert_eq!(v["drivers"]["openstack_ca_file"], "/etc/ssl/certs/ca-certificates.crt");
    assert_eq!(
        v["config_dir_files"],
        json!([unit.path(CAPI_CONF).display().to_string()])
    );
    assert_eq!(
        v["ignored"],
        json!([]),
        "every key the charm writes is one magnum reads"
    );
}

#[test]
fn every_option_reads_back_typed_and_dollars_literal() {
    let oslo = oslo!();
    let unit = installed(|u| {
        u.kubeconfig(KUBECONFIG)
            .config("namespace-prefix", "a$b")
            .config("helm-chart-repo", "https://charts.example.com/capi?x=1&y=$HOME")
            // The injection FACTS.md warns of: unescaped it crashes magnum.
            .config("helm-chart-name", "$capi_helm.namespace_prefix")
            .config("default-helm-chart-version", "0.16.0")
            .config("minimum-flavor-ram", 4096)
            .config("minimum-flavor-vcpus", 4)
            .config("csi-cinder-default-volume-type", "${fast}")
            .config("csi-cinder-reclaim-policy", "Delete")
            // A string option in config.yaml: true, false or empty.
            .config("csi-cinder-allow-volume-expansion", "true")
            .config("csi-cinder-allowed-topologies", "zone-a, zone-b")
            .config("csi-cinder-fstype", "xfs")
            .config("csi-cinder-volume-binding-mode", "WaitForFirstConsumer")
            .config("csi-cinder-availability-zone", "az$$1$")
            .config("app-cred-interface-type", "internal");
    });
    let text = unit.text(CAPI_CONF);
    assert!(text.contains("namespace_prefix = a$$b\n"), "{text}");

    let v = oslo.read_runbook(&unit);
    assert_eq!(
        v["capi_helm"],
        json!({
            "kubeconfig_file": "/etc/magnum/kubeconfig",
            "namespace_prefix": "a$b",
            "helm_chart_repo": "https://charts.example.com/capi?x=1&y=$HOME",
            "helm_chart_name": "$capi_helm.namespace_prefix",
            "default_helm_chart_version": "0.16.0",
            "minimum_flavor_ram": 4096,
            "minimum_flavor_vcpus": 4,
            "csi_cinder_default_volume_type": "${fast}",
            "csi_cinder_allowed_topologies": ["zone-a", "zone-b"],
            "app_cred_interface_type": "internal",
            "api_resources": "{}",
            "k8s_control_plane_resource_conditions": ["MachinesReady", "Ready", "EtcdClusterHealthy", "ControlPlaneComponentsHealthy"],
        }),
        "99-capi.conf:\n{text}"
    );
    // 1.4.0 moved five csi_cinder_* options to [capi_helm_cluster_labels],
    // where the charm writes them for it.
    let labels = &v["capi_helm_cluster_labels"];
    for (key, want) in [
        ("csi_cinder_reclaim_policy", json!("Delete")),
        ("csi_cinder_allow_volume_expansion", json!(true)),
        ("csi_cinder_fstype", json!("xfs")),
        ("csi_cinder_volume_binding_mode", json!("WaitForFirstConsumer")),
        ("csi_cinder_availability_zone", json!("az$$1$")),
    ] {
        assert_eq!(labels[key], want, "{key}: {labels}\n{text}");
    }
    assert_eq!(v["ignored"], json!([]));

    // false reads back too (true is also the driver's default), and an
    // int option at 0 (config.yaml's "driver default") is the driver's.
    unit.config("csi-cinder-allow-volume-expansion", "False");
    unit.config("minimum-flavor-ram", 0);
    config_changed(&unit);
    let v = oslo.read_runbook(&unit);
    assert_eq!(
        v["capi_helm_cluster_labels"]["csi_cinder_allow_volume_expansion"],
        false
    );
    assert_eq!(v["capi_helm"]["minimum_flavor_ram"], 2048);
    assert_eq!(v["capi_helm"]["minimum_flavor_vcpus"], 4);

    // Unset again: the option leaves the file and the driver's default is back.
    for option in [
        "namespace-prefix",
        "helm-chart-repo",
        "helm-chart-name",
        "default-helm-chart-version",
        "minimum-flavor-ram",
        "minimum-flavor-vcpus",
        "csi-cinder-default-volume-type",
        "csi-cinder-reclaim-policy",
        "csi-cinder-allow-volume-expansion",
        "csi-cinder-allowed-topologies",
        "csi-cinder-fstype",
        "csi-cinder-volume-binding-mode",
        "csi-cinder-availability-zone",
        "app-cred-interface-type",
    ] {
        unit.unset_config(option);
    }
    config_changed(&unit);
    let v = oslo.read_runbook(&unit);
    assert_eq!(
        v["capi_helm"],
        with(driver_defaults(), json!({"kubeconfig_file": "/etc/magnum/kubeconfig"}))
    );
}

/// An OCI chart: `helm_chart_repo` must be empty (the driver's own rule),
/// and magnum's loader must read it as '' (issue 20).
#[test]
fn an_oci_chart_name_reads_back_with_an_empty_repo() {
    let oslo = oslo!();
    let unit = installed(|u| {
        u.kubeconfig(KUBECONFIG).config(
            "helm-chart-name",
            "oci://registry.example/capi-charts/openstack-cluster",
        );
    });
    let v = oslo.read_runbook(&unit);
    assert_eq!(v["capi_helm"]["helm_chart_repo"], "", "{}", v["capi_helm"]);
    assert_eq!(
        v["capi_helm"]["helm_chart_name"],
        "oci://registry.example/capi-charts/openstack-cluster"
    );
    assert_eq!(v["ignored"], json!([]));
}

#[test]
fn disabled_drivers_empty_writes_no_drivers_key_and_reads_as_none() {
    let oslo = oslo!();
    let unit = installed(|u| {
        u.kubeconfig(KUBECONFIG).config("disabled-drivers", "");
    });
    let text = unit.text(CAPI_CONF);
    assert!(
        !text.contains("[drivers]") && !text.contains("disabled_drivers"),
        "{text}"
    );
    let v = oslo.read_runbook(&unit);
    assert_eq!(v["drivers"]["disabled_drivers"], json!([]));
    assert_eq!(v["capi_helm"]["kubeconfig_file"], "/etc/magnum/kubeconfig");
}

#[test]
fn disabled_drivers_explicit_list_reads_as_that_list() {
    let oslo = oslo!();
    let unit = installed(|u| {
        u.kubeconfig(KUBECONFIG).config("disabled-drivers", "a,b");
    });
    assert_eq!(
        oslo.read_runbook(&unit)["drivers"]["disabled_drivers"],
        json!(["a", "b"])
    );

    unit.config("disabled-drivers", " k8s_fedora_coreos_v1 , magnum_cluster_api.driver ");
    config_changed(&unit);
    assert_eq!(
        oslo.read_runbook(&unit)["drivers"]["disabled_drivers"],
        json!(["k8s_fedora_coreos_v1", "magnum_cluster_api.driver"])
    );

    unit.config("disabled-drivers", "auto");
    config_changed(&unit);
    assert_eq!(
        oslo.read_runbook(&unit)["drivers"]["disabled_drivers"],
        json!(["k8s_fedora_atomic_v1", "k8s_fedora_coreos_v1"])
    );
}

/// The fact the charm's runbook mode relies on (FACTS.md): with
/// `--config-file magnum.conf --config-dir conf.d`, conf.d wins over a
/// duplicate key in magnum.conf; with the packaged command line (conf.d
/// read as oslo.config's default dir) magnum.conf wins, which is why
/// service-override=none must refuse such a magnum.conf.
#[test]
fn conf_d_wins_over_magnum_conf_only_in_the_runbook_argument_order() {
    let oslo = oslo!();
    let unit = installed(|u| {
        u.kubeconfig(KUBECONFIG).config("namespace-prefix", "tenant");
    });
    // As the principal charm would re-render it, after our install.
    let magnum_conf = unit.text(MAGNUM_CONF)
        + "\n[capi_helm]\nkubeconfig_file = /other\nnamespace_prefix = theirs\nminimum_flavor_vcpus = 8\n";
    unit.put(MAGNUM_CONF, &magnum_conf, 0o640);

    let runbook = oslo.read_runbook(&unit);
    assert_eq!(runbook["capi_helm"]["kubeconfig_file"], "/etc/magnum/kubeconfig");
    assert_eq!(runbook["capi_helm"]["namespace_prefix"], "tenant");
    // A key only magnum.conf sets still comes through.
    assert_eq!(runbook["capi_helm"]["minimum_flavor_vcpus"], 8);

    let packaged = oslo.read_packaged(&unit);
    assert_eq!(
        packaged["config_dir_files"],
        json!([unit.path(CAPI_CONF).display().to_string()]),
        "conf.d is read by default"
    );
    assert_eq!(packaged["capi_helm"]["kubeconfig_file"], "/other");
    assert_eq!(packaged["capi_helm"]["namespace_prefix"], "theirs");
    assert_eq!(
        packaged["drivers"]["disabled_drivers"],
        json!(["k8s_fedora_atomic_v1", "k8s_fedora_coreos_v1"])
    );
}

/// The parser itself, so a broken venv or reader cannot pass the tests
/// above by reading nothing.
#[test]
fn the_reader_reports_what_the_services_would_crash_on() {
    let oslo = oslo!();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("magnum.conf");
    let args = |extra: &str| {
        std::fs::write(&conf, format!("[DEFAULT]\ntransport_url = fake:/\n{extra}")).unwrap();
        vec!["--config-file".to_string(), conf.display().to_string()]
    };
    let err = |v: Value| {
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {v}"))
            .to_string()
    };

    assert!(err(oslo.read(&args("[capi_helm]\nminimum_flavor_ram = lots\n"))).contains("minimum_flavor_ram"));
    assert!(err(oslo.read(&args("[drivers]\ngarbage\n"))).contains("ConfigFileParseError"));
    // FACTS.md: an unescaped `$group.opt` for a group not yet registered
    // crashes the services' log_opt_values at start.
    assert!(err(oslo.read(&args("debug = $capi_helm.namespace_prefix\n"))).contains("NoSuchGroupError"));
    // And an unknown [capi_helm] key is dropped without a word.
    let v = oslo.read(&args("[capi_helm]\nkubeconfig = /typo\n"));
    assert_eq!(v["ignored"], json!(["magnum.conf: [capi_helm] kubeconfig"]));
    assert_eq!(v["capi_helm"]["kubeconfig_file"], "");
}

/// Each release reads its options where it looks for them (issue 20):
/// 1.4.0 reads the label defaults and the moved csi_cinder_* options in
/// [capi_helm_cluster_labels] and its own api_resources; 1.1.0 reads
/// csi_cinder_* in [capi_helm] and knows none of the newer options, which
/// the charm then does not write (nothing ignored, nothing lost).
#[test]
fn each_release_reads_every_option_the_charm_writes_for_it() {
    let oslo = oslo!();
    let api_resources = r#"{"K8sControlPlane": {"api_version": "controlplane.cluster.x-k8s.io/v1beta1"}}"#;
    let unit = installed(|u| {
        u.kubeconfig(KUBECONFIG)
            .config("api-resources", api_resources)
            .config("k8s-control-plane-resource-conditions", "Ready,MachinesReady")
            .config("csi-cinder-fstype", "xfs")
            .config("octavia-provider", "ovn")
            .config("master-lb-floating-ip-enabled", "false")
            .config("boot-volume-size", 40)
            .config("api-master-lb-allowed-cidrs", "10.0.0.0/8,192.168.0.0/16");
    });
    let v = oslo.read_runbook(&unit);
    assert_eq!(v["ignored"], json!([]), "{}", unit.text(CAPI_CONF));
    assert_eq!(v["capi_helm"]["api_resources"], api_resources);
    assert_eq!(
        v["capi_helm"]["k8s_control_plane_resource_conditions"],
        json!(["Ready", "MachinesReady"])
    );
    let labels = &v["capi_helm_cluster_labels"];
    assert_eq!(labels["csi_cinder_fstype"], "xfs");
    assert_eq!(labels["octavia_provider"], "ovn");
    assert_eq!(labels["master_lb_floating_ip_enabled"], false);
    assert_eq!(labels["boot_volume_size"], 40);
    assert_eq!(labels["api_master_lb_allowed_cidrs"], "10.0.0.0/8,192.168.0.0/16");

    // 1.1.0, with the same options (and a certificate kubeconfig: it reads
    // no token).
    let k8s = KubeServer::start(Pki::new((2099, 1, 1)), Api::OldCapo);
    let unit = installed(|u| {
        u.kubeconfig(&k8s.cert_kubeconfig())
            .config("driver-version", "1.1.0")
            .config("api-resources", api_resources)
            .config("k8s-control-plane-resource-conditions", "Ready,MachinesReady")
            .config("csi-cinder-fstype", "xfs")
            .config("octavia-provider", "ovn")
            .config("master-lb-floating-ip-enabled", "false")
            .config("boot-volume-size", 40)
            .config("api-master-lb-allowed-cidrs", "10.0.0.0/8,192.168.0.0/16");
    });
    let v = oslo.read_runbook_with_1_1_0(&unit);
    assert_eq!(v["ignored"], json!([]), "{}", unit.text(CAPI_CONF));
    assert_eq!(v["capi_helm_cluster_labels"], Value::Null, "1.1.0 has no label group");
    assert_eq!(
        v["capi_helm"],
        with(
            driver_1_1_0_defaults(),
            json!({"kubeconfig_file": "/etc/magnum/kubeconfig", "csi_cinder_fstype": "xfs"})
        )
    );
}

/// oslo.config's INI parser strips one pair of matching outer quotes from a
/// value (`"tenant"` and `'tenant'` read as `tenant`; a lone `"` or `'` reads
/// as the empty string). A value must either read back exactly or be refused
/// (blocked, 99-capi.conf left as it was). The charm refuses a value that
/// starts or ends with a quote.
#[test]
fn values_in_quotes_read_back_exactly_or_are_refused() {
    let oslo = oslo!();
    for value in ["\"tenant\"", "'tenant'", "\"", "'", "\"a'b\""] {
        let unit = Unit::converged();
        let before = unit.file(CAPI_CONF);
        unit.config("namespace-prefix", value);
        unit.hook("config-changed").run();
        match unit.status() {
            (kind, _) if kind == "active" => {
                let got = oslo.read_runbook(&unit)["capi_helm"]["namespace_prefix"].clone();
                assert_eq!(
                    got,
                    json!(value),
                    "namespace-prefix={value} is active but magnum reads {got}\n{}",
                    unit.text(CAPI_CONF)
                );
            }
            (kind, message) => {
                assert_eq!(kind, "blocked", "{message}");
                assert!(message.contains("namespace-prefix"), "{message}");
                assert_eq!(
                    unit.file(CAPI_CONF),
                    before,
                    "a refused value leaves 99-capi.conf as it was"
                );
            }
        }
    }
}

/// verify's python check (src/actions/verify_check.py) run by the real
/// magnum and driver: the entry point loads, magnum's own get_driver picks
/// the CAPI driver for (vm, ubuntu, kubernetes), and the loader reads what
/// the charm wrote; a later conf.d file that overrides it is seen.
#[test]
fn verify_python_check_runs_on_the_real_magnum() {
    let oslo = oslo!();
    let unit = Unit::converged();
    let script =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/actions/verify_check.py")).unwrap();
    let run = |unit: &Unit| -> Value {
        let args = json!([
            format!("--config-file={}", unit.path(MAGNUM_CONF).display()),
            format!("--config-dir={}", unit.path(CONF_D).display()),
        ]);
        let out = Command::new(&oslo.python)
            .args(["-c", &script, &args.to_string()])
            .env_remove("PYTHONPATH")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.lines().last().unwrap_or(""))
            .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)))
    };
    let v = run(&unit);
    assert_eq!(v["error"], Value::Null, "{v}");
    assert_eq!(v["driver"], "magnum_capi_helm.driver:Driver");
    assert_eq!(v["get_driver"], "magnum_capi_helm.driver:Driver");
    assert_eq!(v["claimants"], json!(["k8s_capi_helm_v1"]));
    assert_eq!(v["conf"]["kubeconfig_file"], "/etc/magnum/kubeconfig");
    assert_eq!(
        v["conf"]["disabled_drivers"],
        json!(["k8s_fedora_atomic_v1", "k8s_fedora_coreos_v1"])
    );

    unit.put(
        "/etc/magnum/magnum.conf.d/zz-local.conf",
        "[capi_helm]\nkubeconfig_file = /root/.kube/config\n",
        0o640,
    );
    let v = run(&unit);
    assert_eq!(v["conf"]["kubeconfig_file"], "/root/.kube/config", "{v}");
}
