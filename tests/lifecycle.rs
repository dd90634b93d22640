//! A charm lives longer than one install: remove restores the unit,
//! runbook-made units are adopted and given back, the principal's refresh
//! and hand edits are repaired, older state formats migrate.

mod support;

use serde_json::json;
use support::{Loaded, Unit, KUBECONFIG};

const CAPI_CONF: &str = "/etc/magnum/magnum.conf.d/99-capi.conf";
const RUNBOOK_API: &str = "/etc/systemd/system/magnum-api.service.d/override.conf";
const RUNBOOK_CONDUCTOR: &str = "/etc/systemd/system/magnum-conductor.service.d/override.conf";
const DIST_INFO: &str = "/usr/local/lib/python3.11/dist-packages/magnum_capi_helm-1.4.0.dist-info";

fn remove(unit: &Unit) {
    unit.hook("juju-info-relation-departed").run();
    unit.hook("stop").run();
    unit.hook("remove").run();
}

#[test]
fn install_then_remove_on_a_clean_unit_leaves_it_byte_identical() {
    let unit = Unit::new();
    unit.kubeconfig(KUBECONFIG);
    let before = unit.snapshot_all();
    unit.hook("install").expect_active().run();
    assert_ne!(unit.snapshot_all(), before);

    unit.hook("juju-info-relation-departed").run();
    let stop = unit.hook("stop").run();
    assert!(stop.called("pip3 uninstall"), "{:?}", stop.spawned());
    assert!(stop.called("systemctl daemon-reload"));
    assert!(stop.called("systemctl restart"));
    assert_eq!(unit.snapshot_all(), before, "the unit is as it was, byte for byte");
    assert_eq!(unit.systemd("magnum-api").active_state, "active");
    assert_eq!(unit.systemd("magnum-conductor").active_state, "active");

    // remove after stop has nothing left to do.
    unit.hook("remove").expect_no_spawn().run();
    assert_eq!(unit.snapshot_all(), before);
}

/// A unit set up by hand with the runbook (sections 5-8).
fn runbook_unit() -> Unit {
    let unit = Unit::new();
    for (path, bin) in [(RUNBOOK_API, "magnum-api"), (RUNBOOK_CONDUCTOR, "magnum-conductor")] {
        unit.put(path, &format!("[Service]\nExecStart=\nExecStart=/usr/bin/{bin} --config-file=/etc/magnum/magnum.conf --config-dir=/etc/magnum/magnum.conf.d\n"), 0o644);
    }
    unit.put(
        CAPI_CONF,
        "[DEFAULT]\nenabled_drivers = k8s_capi_helm_v1\n\n[capi_helm]\nkubeconfig_file = /etc/magnum/kubeconfig\n",
        0o644,
    );
    unit.put(
        "/etc/magnum/kubeconfig",
        &KUBECONFIG.replace("canary-token-0001", "hand-copied-0000"),
        0o640,
    );
    unit.put(
        &format!("{DIST_INFO}/METADATA"),
        "Metadata-Version: 2.1\nName: magnum-capi-helm\nVersion: 1.4.0\n",
        0o644,
    );
    unit.put(
        &format!("{DIST_INFO}/entry_points.txt"),
        "[magnum.drivers]\nk8s_capi_helm_v1 = magnum_capi_helm.driver:Driver\n",
        0o644,
    );
    // The runbook's daemon-reload happened: systemd runs its override.
    for (service, dropin) in [("magnum-api", RUNBOOK_API), ("magnum-conductor", RUNBOOK_CONDUCTOR)] {
        unit.loaded(
            service,
            Loaded {
                exec_start: format!(
                    "/usr/bin/{service} --config-file=/etc/magnum/magnum.conf --config-dir=/etc/magnum/magnum.conf.d"
                ),
                dropins: dropin.into(),
            },
        );
    }
    unit
}

#[test]
fn a_runbook_unit_is_adopted_and_given_back_on_remove() {
    let unit = runbook_unit();
    unit.kubeconfig(KUBECONFIG);
    let before = unit.snapshot_all();
    let run = unit.hook("install").expect_active().run();
    assert!(
        !run.called("pip3 install"),
        "the installed 1.4.0 is kept: {:?}",
        run.spawned()
    );
    // One drop-in, the charm's; one 99-capi.conf, without enabled_drivers.
    assert!(unit.file(RUNBOOK_API).is_none() && unit.file(RUNBOOK_CONDUCTOR).is_none());
    assert!(!unit.text(CAPI_CONF).contains("enabled_drivers"));
    for line in [
        "adopting the runbook's drop-in",
        "adopting a hand-made /etc/magnum/magnum.conf.d/99-capi.conf (its enabled_drivers is not a magnum option)",
        "adopting magnum-capi-helm 1.4.0 already pip-installed",
    ] {
        assert!(run.stdout.contains(line), "log lacks {line:?}:\n{}", run.stdout);
    }
    // systemd sees one ExecStart: the charm's.
    unit.action("verify", json!({})).run();
    assert_eq!(
        unit.action_results()["checks"]["dropins"]["status"],
        "pass",
        "{}",
        unit.action_results()
    );

    remove(&unit);
    assert_eq!(
        unit.snapshot_all(),
        before,
        "the runbook's files are back, the driver kept"
    );
}

#[test]
fn the_principals_refresh_restarts_nothing_and_a_lost_driver_is_reinstalled() {
    let unit = Unit::installed();
    // The magnum charm re-renders magnum.conf and the packages' unit files.
    let conf = unit.text("/etc/magnum/magnum.conf") + "\n[api]\nworkers = 4\n";
    unit.put("/etc/magnum/magnum.conf", &conf, 0o640);
    let api = unit
        .text("/lib/systemd/system/magnum-api.service")
        .replace("LimitNOFILE=65535", "LimitNOFILE=1048576");
    unit.put("/lib/systemd/system/magnum-api.service", &api, 0o644);
    let started = unit.systemd("magnum-api").start;
    unit.hook("config-changed")
        .expect_spawned(&["config-get", "secret-get"])
        .run();
    assert_eq!(
        unit.systemd("magnum-api").start,
        started,
        "not restarted for the principal's own files"
    );

    // A package reinstall loses the pip-installed driver.
    std::fs::remove_dir_all(unit.path(DIST_INFO)).unwrap();
    let run = unit.hook("update-status").expect_active().run();
    assert!(
        run.called("pip3 install") && run.called("systemctl restart"),
        "{:?}",
        run.spawned()
    );
    unit.hook("update-status").expect_no_spawn().run();
}

#[test]
fn upgrade_charm_migrates_a_format_1_state_and_remove_still_cleans_up() {
    let unit = Unit::installed();
    // Rewrite the state as revision 1 of the charm kept it.
    let path = "/var/lib/magnum-capi/state.json";
    let mut state: serde_json::Value = serde_json::from_str(&unit.text(path)).unwrap();
    state["format"] = json!(1);
    state.as_object_mut().unwrap().remove("prestate");
    unit.put(path, &serde_json::to_string(&state).unwrap(), 0o600);

    unit.hook("upgrade-charm").run();
    unit.hook("config-changed").run();
    let migrated: serde_json::Value = serde_json::from_str(&unit.text(path)).unwrap();
    assert_eq!(migrated["format"], 2);
    assert_eq!(migrated["prestate"]["driver_known"], false);

    remove(&unit);
    for p in [
        CAPI_CONF,
        "/etc/magnum/kubeconfig",
        "/etc/systemd/system/magnum-api.service.d/99-magnum-capi.conf",
    ] {
        assert!(unit.file(p).is_none(), "{p} left behind");
    }
    assert!(unit.file(DIST_INFO).is_some(), "unknown who installed the driver: kept");
    assert!(unit.file("/var/lib/magnum-capi").is_none());
}

#[test]
fn a_crash_after_the_first_change_still_restores_the_pre_install_unit() {
    // The pre-install state is saved before anything changes, so a hook
    // that dies after writing (here: restart fails) keeps it.
    let unit = Unit::new();
    unit.kubeconfig(KUBECONFIG).fail(
        "systemctl restart",
        "Failed to restart: Transport endpoint is not connected",
    );
    let before = unit.snapshot_all();
    unit.hook("install").expect_blocked("").run();
    unit.heal("systemctl restart");
    unit.hook("config-changed").expect_active().run();
    remove(&unit);
    assert_eq!(unit.snapshot_all(), before);
}
