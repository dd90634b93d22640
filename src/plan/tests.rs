//! Scenario-style tests of the pure plan: observed unit in, desired state
//! and changes out.

use super::*;
use serde_json::json;

pub(crate) fn healthy_unit() -> Observed {
    let mut o = Observed {
        root_uid: 0,
        root_gid: 0,
        magnum_user: true,
        magnum_gid: Some(64060),
        magnum_conf: Some("[DEFAULT]\ndebug = false\n".into()),
        other_drivers: vec!["k8s_fedora_coreos_v1".into(), DRIVER_ENTRY_POINT.into()],
        helm_present: true,
        ..Observed::default()
    };
    for s in SERVICES {
        o.unit_files.insert(s.into(), true);
        o.reads_env_default.insert(s.into(), true);
        o.binaries.insert(s.into(), Some(format!("/usr/bin/{s}")));
    }
    o
}

fn settings(v: serde_json::Value) -> Settings {
    Settings::parse(&serde_json::from_value(v).unwrap()).unwrap()
}

const KUBE: &str = kubeconfig::tests::TOKEN_KUBECONFIG;

fn kube() -> Kubeconfig {
    Kubeconfig {
        bytes: KUBE.into(),
        auth: Some(kubeconfig::Auth::Token),
    }
}

/// Magnum on the unit (for the other modules' tests).
pub(crate) fn observed_magnum() -> Observed {
    healthy_unit()
}

/// A desired state from the default config (for the other modules' tests).
pub(crate) fn desired_for_tests() -> Desired {
    let o = healthy_unit();
    desired(&settings(json!({})), kube(), &o, &ResourceFacts::default()).unwrap()
}

/// Make the observed unit look as if `d` had been applied.
fn applied(o: &Observed, d: &Desired) -> Observed {
    let mut o = o.clone();
    o.driver_version = Some(d.driver_version.clone());
    o.conf_d = Some(d.conf_d);
    for f in &d.files {
        o.files.insert(f.path.clone(), Some(f.facts()));
    }
    o
}

#[test]
fn a_fresh_unit_needs_everything() {
    let o = healthy_unit();
    let d = desired(&settings(json!({})), kube(), &o, &ResourceFacts::default()).unwrap();
    let c = diff(&d, &o);
    // The default (packaged) writes no drop-in: no daemon-reload.
    assert!(c.install_driver && c.fix_conf_d && !c.daemon_reload && c.restart);
    assert_eq!(c.writes.len(), 4);
    let conf = String::from_utf8(d.files[1].content.clone()).unwrap();
    assert!(conf.contains("disabled_drivers = k8s_fedora_coreos_v1\n"), "{conf}");
    assert_eq!(d.files[0].mode, 0o640);
    assert_eq!(d.files[0].gid, 64060);
    assert_eq!(d.ready, Status::active("magnum-capi-helm 1.4.0 ready"));
}

#[test]
fn an_applied_unit_needs_nothing() {
    let o = healthy_unit();
    let d = desired(&settings(json!({})), kube(), &o, &ResourceFacts::default()).unwrap();
    assert!(diff(&d, &applied(&o, &d)).is_empty());
}

#[test]
fn a_config_change_touches_only_the_conf() {
    let o = healthy_unit();
    let d1 = desired(&settings(json!({})), kube(), &o, &ResourceFacts::default()).unwrap();
    let o = applied(&o, &d1);
    let d2 = desired(
        &settings(json!({"namespace-prefix": "capi"})),
        kube(),
        &o,
        &ResourceFacts::default(),
    )
    .unwrap();
    let c = diff(&d2, &o);
    assert_eq!(
        c.writes.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        [paths::CAPI_CONF]
    );
    assert!(!c.daemon_reload && !c.install_driver && c.restart);
    assert_ne!(d1.fingerprint(), d2.fingerprint());
}

#[test]
fn a_mode_drift_is_repaired() {
    let o = healthy_unit();
    let d = desired(&settings(json!({})), kube(), &o, &ResourceFacts::default()).unwrap();
    let mut o = applied(&o, &d);
    o.files.get_mut(KUBECONFIG).unwrap().as_mut().unwrap().mode = 0o644;
    let c = diff(&d, &o);
    assert_eq!(c.writes.len(), 1);
    assert!(c.restart);
}

#[test]
fn none_mode_removes_our_dropins_and_refuses_a_shadowing_magnum_conf() {
    let o = healthy_unit();
    let d1 = desired(
        &settings(json!({"service-override": "runbook"})),
        kube(),
        &o,
        &ResourceFacts::default(),
    )
    .unwrap();
    let o = applied(&o, &d1);
    let d2 = desired(
        &settings(json!({"service-override": "none"})),
        kube(),
        &o,
        &ResourceFacts::default(),
    )
    .unwrap();
    let c = diff(&d2, &o);
    assert_eq!(c.removes.len(), 2);
    assert!(c.daemon_reload);

    let mut shadowed = o.clone();
    shadowed.magnum_conf = Some("[capi_helm]\nkubeconfig_file = /root/.kube/config\n".into());
    let e = desired(
        &settings(json!({"service-override": "none"})),
        kube(),
        &shadowed,
        &ResourceFacts::default(),
    )
    .unwrap_err();
    assert!(e.message.contains("[capi_helm] kubeconfig_file"), "{}", e.message);
}

#[test]
fn the_principal_is_awaited() {
    assert!(principal_missing(&healthy_unit()).is_none());
    let s = principal_missing(&Observed::default()).unwrap();
    assert_eq!(s.kind, crate::juju::StatusKind::Waiting);
    assert!(s.message.contains("/etc/magnum/magnum.conf"), "{}", s.message);
}

#[test]
fn secret_problems_say_what_to_run() {
    let uri = "secret:cs2ltv7mp25c77s6iqgg";
    let unset = kubeconfig_from_secret(None, None, kubeconfig::tests::NOW).unwrap_err();
    assert!(unset.message.contains("juju add-secret"));
    let ng = kubeconfig_from_secret(
        Some(uri),
        Some(&SecretInput::Error(SecretError::NotGranted)),
        kubeconfig::tests::NOW,
    )
    .unwrap_err();
    assert!(ng.message.contains("juju grant-secret"), "{}", ng.message);
    let nf = kubeconfig_from_secret(
        Some(uri),
        Some(&SecretInput::Error(SecretError::NotFound)),
        kubeconfig::tests::NOW,
    )
    .unwrap_err();
    assert!(nf.message.contains("not found"));
    let nokey = kubeconfig_from_secret(
        Some(uri),
        Some(&SecretInput::Content(BTreeMap::new())),
        kubeconfig::tests::NOW,
    )
    .unwrap_err();
    assert!(nokey.message.contains("no key kubeconfig"));
    let bad = BTreeMap::from([("kubeconfig".to_string(), "kind: Pod\n".to_string())]);
    let e = kubeconfig_from_secret(Some(uri), Some(&SecretInput::Content(bad)), kubeconfig::tests::NOW).unwrap_err();
    assert!(e.message.contains("kind: Config"));
}

#[test]
fn the_runbooks_dropin_is_recognised_and_nothing_else() {
    let runbook = "[Service]\nExecStart=\nExecStart=/usr/bin/magnum-api --config-file=/etc/magnum/magnum.conf --config-dir=/etc/magnum/magnum.conf.d\n";
    assert!(is_runbook_override(runbook));
    assert!(!is_runbook_override("[Service]\nLimitNOFILE=1048576\n"));
    assert!(!is_runbook_override(&format!("{runbook}Environment=DEBUG=1\n")));
    assert!(!is_runbook_override(""));
}

#[test]
fn a_runbook_dropin_is_adopted_and_an_operators_is_left() {
    let mut o = healthy_unit();
    let api = paths::runbook_dropin("magnum-api");
    let conductor = paths::runbook_dropin("magnum-conductor");
    let file = |t: &str| {
        Some(FileFacts {
            content: t.as_bytes().to_vec(),
            mode: 0o644,
            uid: 0,
            gid: 0,
        })
    };
    o.files.insert(api.clone(), file("[Service]\nExecStart=\nExecStart=/usr/bin/magnum-api --config-file=/etc/magnum/magnum.conf --config-dir=/etc/magnum/magnum.conf.d\n"));
    o.files
        .insert(conductor.clone(), file("[Service]\nLimitNOFILE=1048576\n"));
    let d = desired(&settings(json!({})), kube(), &o, &ResourceFacts::default()).unwrap();
    assert!(d.absent.contains(&api));
    assert!(!d.absent.contains(&conductor));
}

/// The fingerprint of a fixed desired state is pinned: a charm built by
/// another compiler (or a refactored one) must not see a change where
/// there is none (issue 23, item 4). Changing the encoding on purpose
/// means changing this value in the same commit, knowingly.
#[test]
fn the_fingerprint_is_stable() {
    let d = Desired {
        driver_version: "1.4.0".into(),
        driver_source: DriverSource::Index {
            url: Some("https://pypi.example/simple".into()),
            sha256: None,
        },
        helm: Some("ab".repeat(32)),
        conf_d: DirSpec {
            mode: 0o750,
            uid: 0,
            gid: 64060,
        },
        files: vec![FileSpec {
            path: "/etc/magnum/magnum.conf.d/99-capi.conf".into(),
            content: b"[capi_helm]\nkubeconfig_file = /etc/magnum/kubeconfig\n".to_vec(),
            mode: 0o640,
            uid: 0,
            gid: 64060,
        }],
        absent: vec!["/etc/systemd/system/magnum-api.service.d/override.conf".into()],
        settle_seconds: 20,
        grant_timeout: 600,
        ready: crate::juju::Status::active("ready"),
        unknown_options: vec![],
        pip_env: vec![],
    };
    // Computed independently: Python hashlib over the same encoding.
    assert_eq!(d.fingerprint(), "aa3f792e4404eb5e5d8d3497688fbca2");
    // Every part that is applied moves it; what is not applied does not.
    let mut other = d.clone();
    other.files[0].mode = 0o644;
    assert_ne!(other.fingerprint(), d.fingerprint());
    let mut other = d.clone();
    other.driver_source = DriverSource::Wheels { sha256: String::new() };
    assert_ne!(other.fingerprint(), d.fingerprint());
    let mut other = d.clone();
    other.absent.clear();
    assert_ne!(other.fingerprint(), d.fingerprint());
    let mut other = d.clone();
    other.ready = crate::juju::Status::active("other words");
    other.settle_seconds = 5;
    assert_eq!(other.fingerprint(), d.fingerprint());
}

/// The default keeps the packaged start: no drop-in (the runbook's is
/// adopted, i.e. removed), the /etc/default block with --config-dir, no
/// "magnum.conf wins" refusal; a unit that does not start through the
/// init script is refused with the way out.
#[test]
fn packaged_mode_keeps_the_packaged_start() {
    let mut o = healthy_unit();
    let runbook = "[Service]\nExecStart=\nExecStart=/usr/bin/magnum-conductor --config-file=/etc/magnum/magnum.conf --config-dir=/etc/magnum/magnum.conf.d\n";
    o.files.insert(
        paths::runbook_dropin("magnum-conductor"),
        Some(FileFacts {
            content: runbook.into(),
            mode: 0o644,
            uid: 0,
            gid: 0,
        }),
    );
    o.files.insert(
        paths::dropin("magnum-api"),
        Some(FileFacts {
            content: b"x".to_vec(),
            mode: 0o644,
            uid: 0,
            gid: 0,
        }),
    );
    // magnum.conf sets a key 99-capi.conf sets: conf.d wins here.
    o.magnum_conf = Some("[capi_helm]\nkubeconfig_file = /root/.kube/config\n".into());
    let s = settings(json!({"kubeconfig-secret": "secret:x"}));
    assert_eq!(s.service_override, ServiceOverride::Packaged);
    let d = desired(&s, kube(), &o, &ResourceFacts::default()).unwrap();
    for svc in SERVICES {
        assert!(d.absent.contains(&paths::dropin(svc)), "{svc}");
        let f = d.files.iter().find(|f| f.path == paths::env_default(svc)).unwrap();
        let text = String::from_utf8_lossy(&f.content);
        assert!(text.contains("--config-dir=/etc/magnum/magnum.conf.d"), "{text}");
    }
    assert!(d.absent.contains(&paths::runbook_dropin("magnum-conductor")));
    let c = diff(&d, &o);
    assert!(c.daemon_reload && c.restart);

    o.reads_env_default.insert("magnum-api".into(), false);
    let err = desired(&s, kube(), &o, &ResourceFacts::default()).unwrap_err();
    assert!(err.message.contains("service-override=runbook"), "{err:?}");
    assert!(err.message.contains("/etc/init.d/magnum-api"), "{err:?}");
}

#[test]
fn packaged_start_is_recognised_from_the_unit_file_and_init_script() {
    let unit = "[Service]\nUser=magnum\nExecStart=/etc/init.d/magnum-api systemd-start\nRestart=on-failure\n";
    let init = "#!/bin/sh\nNAME=${PROJECT_NAME}-api\n[ -r /etc/default/$NAME ] && . /etc/default/$NAME\n";
    assert!(starts_through_env_default("magnum-api", unit, init));
    assert!(!starts_through_env_default("magnum-conductor", unit, init));
    // A unit that runs the binary itself, or a script that reads no
    // /etc/default (only a comment mentions it).
    assert!(!starts_through_env_default(
        "magnum-api",
        "[Service]\nExecStart=/usr/bin/magnum-api --config-file=/etc/magnum/magnum.conf\n",
        init
    ));
    assert!(!starts_through_env_default(
        "magnum-api",
        unit,
        "#!/bin/sh\n# see /etc/default/$NAME\nexec x\n"
    ));
}
