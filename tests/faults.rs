//! Crash anywhere, converge on the next hook. With the `faults` feature
//! the charm aborts (as kill -9 would stop it) at a named point: before and
//! after every file write, rename, removal, daemon-reload, restart and pip
//! run. For every point an install reaches, crash there, run the hook
//! again as Juju would, and compare with an uninterrupted install.
#![cfg(feature = "faults")]

mod support;

use support::{FileState, Unit, KUBECONFIG};

fn unit_files(unit: &Unit) -> Vec<(String, FileState)> {
    // The charm's own state may differ in bookkeeping; the unit's files,
    // modes and owners must not.
    unit.snapshot()
}

fn points_of(hook: &str, setup: impl Fn() -> Unit) -> Vec<String> {
    let unit = setup();
    let log = unit.path("/../fault-points.log");
    let log_s = log.display().to_string();
    unit.hook(hook).env(&[("MAGNUM_CAPI_FAULT_LOG", log_s.as_str())]).run();
    std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn crash_everywhere(hook: &str, setup: impl Fn() -> Unit) -> usize {
    let reference = setup();
    reference.hook(hook).run();
    let want_status = reference.status();
    let want = unit_files(&reference);

    let points = points_of(hook, &setup);
    assert!(points.len() >= 8, "too few fault points on {hook}: {points:?}");
    for point in &points {
        let unit = setup();
        let crashed = unit
            .hook(hook)
            .env(&[("MAGNUM_CAPI_FAULT", point.as_str())])
            .expect_fail()
            .run();
        assert!(
            crashed.stderr.contains(&format!("fault injected at {point}")),
            "{point}: {}",
            crashed.stderr
        );
        // Juju runs the failed hook again.
        unit.hook(hook).run();
        assert_eq!(unit.status(), want_status, "{point}: status");
        let got = unit_files(&unit);
        assert_eq!(
            got, want,
            "{point}: the unit did not converge to the uninterrupted result"
        );
        assert!(
            unit.temp_files().is_empty(),
            "{point}: temp files left: {:?}",
            unit.temp_files()
        );
        for s in ["magnum-api", "magnum-conductor"] {
            assert_eq!(unit.systemd(s).active_state, "active", "{point}: {s}");
        }
    }
    points.len()
}

#[test]
fn an_install_crashed_at_any_point_converges_on_the_next_hook() {
    let setup = || {
        let unit = Unit::new();
        unit.kubeconfig(KUBECONFIG);
        unit
    };
    let n = crash_everywhere("install", setup);
    eprintln!("install: {n} fault points exercised");
}

#[test]
fn a_config_change_crashed_at_any_point_converges() {
    let setup = || {
        let unit = Unit::installed();
        unit.config("namespace-prefix", "tenant")
            .config("service-override", "none");
        unit
    };
    let n = crash_everywhere("config-changed", setup);
    eprintln!("config-changed: {n} fault points exercised");
}

#[test]
fn a_remove_crashed_at_any_point_still_restores_the_unit() {
    let points = points_of("stop", Unit::installed);
    assert!(!points.is_empty());
    for point in &points {
        let unit = Unit::new();
        unit.kubeconfig(KUBECONFIG);
        let before = unit.snapshot_all();
        unit.hook("install").run();
        unit.hook("stop")
            .env(&[("MAGNUM_CAPI_FAULT", point.as_str())])
            .expect_fail()
            .run();
        unit.hook("stop").run();
        unit.hook("remove").run();
        assert_eq!(unit.snapshot_all(), before, "{point}: not restored");
    }
}
