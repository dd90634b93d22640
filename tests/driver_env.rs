//! What the driver needs around it (issue 20): the options each release
//! reads, in the section it reads them from; Juju's proxies for pip and
//! both services; helm's directory on the conductor's PATH in both
//! service-override modes; pip itself.

mod support;

use serde_json::json;
use support::kube_server::{Api, KubeServer, Pki};
use support::{Apt, Unit, KUBECONFIG};

const CAPI_CONF: &str = "/etc/magnum/magnum.conf.d/99-capi.conf";
const CONDUCTOR_DROPIN: &str = "/etc/systemd/system/magnum-conductor.service.d/99-magnum-capi.conf";
const CONDUCTOR_DEFAULT: &str = "/etc/default/magnum-conductor";
const PROXY: [(&str, &str); 3] = [
    ("JUJU_CHARM_HTTP_PROXY", "http://squid.internal:3128"),
    ("JUJU_CHARM_HTTPS_PROXY", "http://squid.internal:3128"),
    ("JUJU_CHARM_NO_PROXY", "127.0.0.1,10.0.0.0/8,.internal"),
];

/// The section of 99-capi.conf a key is in, if it is there.
fn section_of(conf: &str, key: &str) -> Option<String> {
    let mut section = String::new();
    for line in conf.lines() {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
        } else if line.split('=').next().map(str::trim) == Some(key) {
            return Some(section);
        }
    }
    None
}

#[test]
fn each_release_gets_its_options_where_it_reads_them() {
    // 1.1.0 reads only certificates: a certificate kubeconfig.
    let k8s = KubeServer::start(Pki::new((2099, 1, 1)), Api::OldCapo);
    let unit = Unit::new();
    unit.kubeconfig(&k8s.cert_kubeconfig());
    for (k, v) in [
        ("csi-cinder-fstype", "xfs"),
        ("csi-cinder-default-volume-type", "ssd"),
        ("octavia-provider", "ovn"),
        ("k8s-control-plane-resource-conditions", "Ready"),
    ] {
        unit.config(k, v);
    }
    unit.config("boot-volume-size", json!(40));
    unit.hook("install")
        .expect_status("active", "magnum-capi-helm 1.4.0 ready")
        .run();
    let conf = unit.text(CAPI_CONF);
    assert_eq!(
        section_of(&conf, "csi_cinder_fstype").as_deref(),
        Some("capi_helm_cluster_labels"),
        "{conf}"
    );
    assert_eq!(
        section_of(&conf, "csi_cinder_default_volume_type").as_deref(),
        Some("capi_helm"),
        "{conf}"
    );
    assert_eq!(
        section_of(&conf, "octavia_provider").as_deref(),
        Some("capi_helm_cluster_labels"),
        "{conf}"
    );
    assert_eq!(
        section_of(&conf, "boot_volume_size").as_deref(),
        Some("capi_helm_cluster_labels"),
        "{conf}"
    );
    assert_eq!(
        section_of(&conf, "k8s_control_plane_resource_conditions").as_deref(),
        Some("capi_helm"),
        "{conf}"
    );

    unit.config("driver-version", "1.1.0");
    unit.hook("config-changed")
        .expect_status("active", "magnum-capi-helm 1.1.0 ready")
        .run();
    let conf = unit.text(CAPI_CONF);
    assert_eq!(
        section_of(&conf, "csi_cinder_fstype").as_deref(),
        Some("capi_helm"),
        "{conf}"
    );
    for unknown in [
        "octavia_provider",
        "boot_volume_size",
        "k8s_control_plane_resource_conditions",
    ] {
        assert_eq!(
            section_of(&conf, unknown),
            None,
            "1.1.0 does not read {unknown}: {conf}"
        );
    }
    assert!(!conf.contains("[capi_helm_cluster_labels]"), "{conf}");
    unit.action("verify", json!({})).run();
    let detail = unit.action_results()["checks"]["capi-conf"]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("magnum-capi-helm 1.1.0 does not read them: k8s-control-plane-resource-conditions, octavia-provider, boot-volume-size"),
        "{detail}"
    );
}

#[test]
fn juju_proxies_reach_pip_and_the_services_and_a_change_restarts() {
    let unit = Unit::new();
    unit.kubeconfig(KUBECONFIG);
    let run = unit.hook("install").env(&PROXY).expect_active().run();
    let pip = &run.calls_of("pip3")[0];
    for var in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"] {
        assert_eq!(
            pip.env.get(var).map(String::as_str),
            Some("http://squid.internal:3128"),
            "{var}: {:?}",
            pip.env
        );
    }
    assert_eq!(
        pip.env.get("no_proxy").map(String::as_str),
        Some("127.0.0.1,10.0.0.0/8,.internal")
    );
    let dropin = unit.text(CONDUCTOR_DROPIN);
    assert!(
        dropin.contains("Environment=\"HTTPS_PROXY=http://squid.internal:3128\"\n"),
        "{dropin}"
    );
    assert!(
        dropin.contains("Environment=\"no_proxy=127.0.0.1,10.0.0.0/8,.internal\"\n"),
        "{dropin}"
    );

    // The same proxies again: nothing to do.
    let again = unit.hook("config-changed").env(&PROXY).run();
    assert!(!again.called("systemctl restart"), "{:?}", again.spawned());
    // The model's proxy changes: the drop-in follows, and magnum restarts.
    let moved = [("JUJU_CHARM_HTTPS_PROXY", "http://squid2.internal:3128")];
    let run = unit.hook("config-changed").env(&moved).run();
    assert!(run.called("systemctl restart"), "{:?}", run.spawned());
    let dropin = unit.text(CONDUCTOR_DROPIN);
    assert!(dropin.contains("squid2") && !dropin.contains("HTTP_PROXY="), "{dropin}");

    // A value the charm cannot pass unchanged: blocked, nothing changes.
    unit.hook("config-changed")
        .env(&[("JUJU_CHARM_HTTP_PROXY", "http://x y:1")])
        .expect_blocked("juju model-config juju-http-proxy")
        .expect_unchanged()
        .run();
}

/// `none` keeps the packaged ExecStart, whose init script resets PATH and
/// then sources /etc/default/<service>: the charm's block there puts
/// /usr/local/bin (helm) on the conductor's PATH and exports the proxies,
/// keeps the operator's own lines, and comes out on remove.
#[test]
fn service_override_none_uses_the_packagings_default_file() {
    let unit = Unit::new();
    unit.kubeconfig(KUBECONFIG);
    unit.put(CONDUCTOR_DEFAULT, "# the operator's\nUSE_SYSLOG=yes\n", 0o644);
    let before = unit.snapshot_all();
    unit.config("service-override", "none");
    unit.hook("install").env(&PROXY).expect_active().run();
    assert!(unit.file(CONDUCTOR_DROPIN).is_none());
    let text = unit.text(CONDUCTOR_DEFAULT);
    assert!(
        text.starts_with("# the operator's\nUSE_SYSLOG=yes\n# BEGIN magnum-capi\n"),
        "{text}"
    );
    assert!(
        text.contains("\nexport PATH=\"/usr/local/sbin:/usr/local/bin:$PATH\"\n"),
        "{text}"
    );
    assert!(
        text.contains("\nexport https_proxy='http://squid.internal:3128'\n"),
        "{text}"
    );
    // The file is shell: the real sh sources it and gets the values.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "PATH=/sbin:/usr/sbin:/bin:/usr/bin; . {}; printf '%s|%s' \"$PATH\" \"$HTTPS_PROXY\"",
            unit.path(CONDUCTOR_DEFAULT).display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "/usr/local/sbin:/usr/local/bin:/sbin:/usr/sbin:/bin:/usr/bin|http://squid.internal:3128"
    );
    let api = unit.text("/etc/default/magnum-api");
    assert!(api.starts_with("# BEGIN magnum-capi\n"), "{api}");

    // Back to runbook: the block comes out, the operator's lines stay, and
    // the file the charm made goes.
    unit.config("service-override", "runbook");
    unit.hook("config-changed").env(&PROXY).run();
    assert_eq!(unit.text(CONDUCTOR_DEFAULT), "# the operator's\nUSE_SYSLOG=yes\n");
    assert!(unit.file("/etc/default/magnum-api").is_none());

    // And remove takes the block out of a file edited since.
    unit.config("service-override", "none");
    unit.hook("config-changed").env(&PROXY).run();
    let edited = unit.text(CONDUCTOR_DEFAULT) + "EXTRA=1\n";
    unit.put(CONDUCTOR_DEFAULT, &edited, 0o644);
    unit.hook("juju-info-relation-departed").run();
    unit.hook("stop").run();
    assert_eq!(
        unit.text(CONDUCTOR_DEFAULT),
        "# the operator's\nUSE_SYSLOG=yes\nEXTRA=1\n"
    );
    assert!(unit.file("/etc/default/magnum-api").is_none());
    // Everything else is as before install (the operator's own later edit
    // aside).
    let others = |snap: Vec<(String, support::FileState)>| -> Vec<(String, support::FileState)> {
        snap.into_iter()
            .filter(|(p, _)| !p.ends_with(CONDUCTOR_DEFAULT))
            .collect()
    };
    assert_eq!(others(unit.snapshot_all()), others(before));
}

/// `packaged` (the default) keeps the packaged start: the charm's block in
/// /etc/default/magnum-* gives both services --config-dir through the
/// packaged init script (run here by the real sh: the fixture's init
/// scripts are the template's lines from Debian's packages), adopts the
/// runbook's hand-made drop-in, and remove gives the unit back.
#[test]
fn service_override_packaged_keeps_the_packaged_start() {
    let unit = Unit::new();
    unit.kubeconfig(KUBECONFIG);
    let runbook = "/etc/systemd/system/magnum-conductor.service.d/override.conf";
    unit.put(
        runbook,
        "[Service]\nExecStart=\nExecStart=/usr/bin/magnum-conductor --config-file=/etc/magnum/magnum.conf --config-dir=/etc/magnum/magnum.conf.d\n",
        0o644,
    );
    let before = unit.snapshot_all();
    unit.config("service-override", "packaged");
    unit.hook("install").env(&PROXY).expect_active().run();
    assert!(unit.file(CONDUCTOR_DROPIN).is_none());
    assert!(unit.file(runbook).is_none(), "the runbook's drop-in is adopted");
    // What each init script composes once it has sourced the block: its
    // own lines up to the sourcing, then the arguments.
    let args = |service: &str| {
        let script = unit.text(&format!("/etc/init.d/{service}")).replace(
            "/etc/default/$NAME",
            &unit.path(&format!("/etc/default/{service}")).display().to_string(),
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{script}\nprintf '%s|%s|%s' \"$DAEMON_ARGS\" \"$PYARGV\" \"$PATH\""
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        args("magnum-conductor"),
        "--config-file=/etc/magnum/magnum.conf  --config-dir=/etc/magnum/magnum.conf.d||/usr/local/sbin:/usr/local/bin:/sbin:/usr/sbin:/bin:/usr/bin"
    );
    // The fixture's API script composes no uwsgi arguments (the real one
    // does, and keeps them): the app's own get --config-dir in PYARGV.
    assert!(
        args("magnum-api").contains("|--config-dir=/etc/magnum/magnum.conf.d|"),
        "{}",
        args("magnum-api")
    );
    // A hook with nothing to do changes nothing.
    let snap = unit.snapshot_all();
    unit.hook("config-changed").env(&PROXY).run();
    assert_eq!(unit.snapshot_all(), snap);

    unit.hook("juju-info-relation-departed").run();
    unit.hook("stop").run();
    // The unit as before install, the runbook's drop-in put back.
    let after = unit.snapshot_all();
    let extra: Vec<_> = after.iter().filter(|e| !before.contains(e)).map(|e| &e.0).collect();
    let gone: Vec<_> = before.iter().filter(|e| !after.contains(e)).map(|e| &e.0).collect();
    assert!(extra.is_empty() && gone.is_empty(), "left: {extra:?}; gone: {gone:?}");
}

/// A unit deployed by an older charm (default `runbook`) moves to the new
/// default on upgrade-charm: the drop-ins go (daemon-reload), the block
/// with --config-dir is written, the services restart, and it is active.
#[test]
fn upgrade_from_the_old_runbook_default_moves_to_packaged() {
    let unit = Unit::new();
    unit.kubeconfig(KUBECONFIG);
    unit.config("service-override", "runbook");
    unit.hook("install").run();
    assert!(unit.file(CONDUCTOR_DROPIN).is_some());
    assert!(unit.file(CONDUCTOR_DEFAULT).is_none());
    // The new charm's config.yaml default applies once the key is unset.
    unit.unset_config("service-override");
    unit.hook("upgrade-charm").expect_active().run();
    assert!(unit.file(CONDUCTOR_DROPIN).is_none());
    assert!(unit
        .file("/etc/systemd/system/magnum-api.service.d/99-magnum-capi.conf")
        .is_none());
    let text = unit.text(CONDUCTOR_DEFAULT);
    assert!(text.contains("--config-dir=/etc/magnum/magnum.conf.d"), "{text}");
}

/// A Charmed OpenStack unit may have no pip (charm-magnum installs only its
/// own packages): the charm installs python3-pip with apt-get first, with
/// Juju's proxies, updating the package lists only when apt cannot find it.
#[test]
fn a_unit_without_pip_gets_python3_pip_from_apt() {
    let unit = Unit::new();
    unit.kubeconfig(KUBECONFIG).apt(Apt {
        lists: Some(false),
        fail: None,
    });
    std::fs::remove_file(unit.bin().join("pip3")).unwrap();
    let run = unit
        .hook("install")
        .env(&PROXY)
        .expect_status("active", "magnum-capi-helm 1.4.0 ready")
        .run();
    let apt: Vec<Vec<String>> = run.calls_of("apt-get").iter().map(|c| c.args.clone()).collect();
    assert_eq!(
        apt,
        [
            vec!["install", "-y", "-q", "--no-install-recommends", "python3-pip"],
            vec!["update", "-q"],
            vec!["install", "-y", "-q", "--no-install-recommends", "python3-pip"],
        ]
    );
    assert_eq!(
        run.calls_of("apt-get")[0].env.get("HTTP_PROXY").map(String::as_str),
        Some("http://squid.internal:3128")
    );
    assert!(run.called("pip3 install"));

    // apt cannot either: a clear blocked status, not "No such file".
    let unit = Unit::new();
    unit.kubeconfig(KUBECONFIG).apt(Apt {
        lists: None,
        fail: Some("E: Failed to fetch http://archive.ubuntu.com/ubuntu/pool/main/p/python-pip/python3-pip_24.0+dfsg-1ubuntu1_all.deb  Temporary failure resolving 'archive.ubuntu.com'".into()),
    });
    std::fs::remove_file(unit.bin().join("pip3")).unwrap();
    unit.hook("install")
        .expect_blocked("pip3 is not on this unit")
        .expect_blocked("Temporary failure resolving")
        .run();
    let message = unit.status().1;
    assert!(!message.contains("No such file"), "{message}");
}
