//! Supply chain: the driver from a wheel, a wheelhouse or a pinned index,
//! helm from a binary or its release tarball, sha256 pins, and no install
//! when the bytes are the same. The archives are made by the real `zip`,
//! `tar` and `gzip` here, to feed the charm's parsers what operators
//! attach.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{Pip, Unit, FAKE_TOOL, KUBECONFIG};

fn sh(dir: &Path, cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
}

fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A tiny but real wheel of `name` at `version`, built with zip.
fn wheel(dir: &Path, name: &str, version: &str) -> PathBuf {
    let src = dir.join(format!("src-{name}-{version}"));
    let info = src.join(format!("{name}-{version}.dist-info"));
    std::fs::create_dir_all(src.join(name)).unwrap();
    std::fs::create_dir_all(&info).unwrap();
    std::fs::write(src.join(name).join("__init__.py"), "").unwrap();
    std::fs::write(
        info.join("METADATA"),
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
    )
    .unwrap();
    std::fs::write(
        info.join("WHEEL"),
        "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    )
    .unwrap();
    std::fs::write(
        info.join("entry_points.txt"),
        "[magnum.drivers]\nk8s_capi_helm_v1 = magnum_capi_helm.driver:Driver\n",
    )
    .unwrap();
    std::fs::write(info.join("RECORD"), "").unwrap();
    let whl = dir.join(format!("{name}-{version}-py3-none-any.whl"));
    sh(&src, &format!("zip -q -r {} .", whl.display()));
    whl
}

/// An ELF "helm" for an architecture: the fake tool (a real x86-64 or
/// aarch64 executable) with e_machine patched when another arch is wanted.
fn helm_binary(dir: &Path, arch: &str) -> PathBuf {
    let mut bytes = std::fs::read(FAKE_TOOL).unwrap();
    let machine: u16 = match arch {
        "amd64" => 62,
        "arm64" => 183,
        _ => unreachable!(),
    };
    bytes[18..20].copy_from_slice(&machine.to_le_bytes());
    let p = dir.join(format!("helm-{arch}"));
    std::fs::write(&p, bytes).unwrap();
    p
}

/// helm's release tarball layout: linux-<arch>/helm, LICENSE, README.md.
fn helm_tarball(dir: &Path, arch: &str) -> PathBuf {
    let bin = helm_binary(dir, arch);
    let tree = dir.join(format!("tree-{arch}"));
    std::fs::create_dir_all(tree.join(format!("linux-{arch}"))).unwrap();
    std::fs::copy(&bin, tree.join(format!("linux-{arch}/helm"))).unwrap();
    std::fs::write(tree.join(format!("linux-{arch}/LICENSE")), "Apache-2.0\n").unwrap();
    let tgz = dir.join(format!("helm-v3.17.2-linux-{arch}.tar.gz"));
    sh(&tree, &format!("tar czf {} linux-{arch}", tgz.display()));
    tgz
}

const ARCH: &str = if cfg!(target_arch = "aarch64") {
    "arm64"
} else {
    "amd64"
};
const OTHER_ARCH: &str = if cfg!(target_arch = "aarch64") {
    "amd64"
} else {
    "arm64"
};

/// The test wheels are built here, so their bytes are not PyPI's: they
/// stand for a version the charm's table of released wheels does not know
/// (pinned by driver-sha256 only, as before the table).
const V: &str = "1.5.0";

fn new_unit() -> (Unit, tempfile::TempDir) {
    let unit = Unit::new();
    unit.kubeconfig(KUBECONFIG);
    unit.config("driver-version", V);
    (unit, tempfile::tempdir().unwrap())
}

/// The driver wheel attached as the driver-wheel resource, stored as
/// Juju stores it (under metadata's filename, not the original): its path.
fn attach_driver_wheel(unit: &Unit, dir: &Path) -> PathBuf {
    let whl = wheel(dir, "magnum_capi_helm", V);
    let stored = dir.join("driver-wheel");
    std::fs::copy(&whl, &stored).unwrap();
    unit.resource("driver-wheel", &stored);
    stored
}

#[test]
fn a_wheel_resource_installs_with_no_index() {
    let (unit, dir) = new_unit();
    attach_driver_wheel(&unit, dir.path());
    let run = unit.hook("install").expect_active().run();
    let pip = &run.calls_of("pip3")[0];
    let staged = unit.path("/var/lib/magnum-capi/resources/wheels");
    assert_eq!(
        pip.args,
        [
            "install",
            "--break-system-packages",
            "--no-deps",
            "--no-index",
            "--find-links",
            &staged.display().to_string(),
            "magnum-capi-helm==1.5.0"
        ]
    );
    assert!(staged.join("magnum_capi_helm-1.5.0-py3-none-any.whl").exists());
    // The next hooks neither fetch nor install again.
    unit.hook("config-changed")
        .expect_spawned(&["config-get", "secret-get"])
        .run();
}

#[test]
fn a_wheelhouse_tarball_and_zip_are_unpacked() {
    for kind in ["tar.gz", "zip"] {
        let (unit, dir) = new_unit();
        let house = dir.path().join("house");
        std::fs::create_dir_all(&house).unwrap();
        for (n, v) in [("magnum_capi_helm", V), ("pyyaml", "6.0.1")] {
            let w = wheel(dir.path(), n, v);
            std::fs::copy(&w, house.join(w.file_name().unwrap())).unwrap();
        }
        let archive = dir.path().join("driver-wheel");
        match kind {
            "tar.gz" => sh(
                dir.path(),
                &format!("tar czf {} -C {} .", archive.display(), house.display()),
            ),
            // zip adds .zip to a name without one; Juju names it driver-wheel.
            _ => sh(
                &house,
                &format!("zip -q -r ../house.zip . && mv ../house.zip {}", archive.display()),
            ),
        }
        unit.resource("driver-wheel", &archive);
        let run = unit.hook("install").note(kind).expect_active().run();
        let staged = unit.path("/var/lib/magnum-capi/resources/wheels");
        assert!(staged.join("pyyaml-6.0.1-py3-none-any.whl").exists(), "{kind}");
        assert!(run.calls_of("pip3")[0].args.contains(&"--no-index".to_string()));
    }
}

#[test]
fn a_wheel_hash_pin_matches_or_blocks_with_both_hashes() {
    let (unit, dir) = new_unit();
    let whl = wheel(dir.path(), "magnum_capi_helm", V);
    let sha = sha256_of(&whl);
    unit.resource("driver-wheel", &whl);
    unit.config("driver-sha256", "f".repeat(64));
    // Nothing installed.
    unit.hook("install")
        .expect_blocked(&sha)
        .expect_blocked(&"f".repeat(64))
        .expect_unchanged()
        .run();

    unit.config("driver-sha256", sha.as_str());
    unit.hook("config-changed").expect_active().run();
}

#[test]
fn an_index_install_is_hash_pinned_through_pip() {
    let (unit, _dir) = new_unit();
    let good = "ab".repeat(32);
    unit.pip(Pip::index_sha256(&good))
        .config("driver-sha256", "cd".repeat(32));
    let run = unit
        .hook("install")
        .expect_blocked(&good)
        .expect_blocked(&"cd".repeat(32))
        .run();
    assert!(run.calls_of("pip3")[0].args.contains(&"--require-hashes".to_string()));
    assert!(unit.file("/etc/magnum/magnum.conf.d/99-capi.conf").is_none());

    unit.config("driver-sha256", good.as_str());
    unit.hook("config-changed").expect_active().run();
    let reqs = unit.pip_requirements();
    assert_eq!(reqs, format!("magnum-capi-helm==1.5.0 --hash=sha256:{good}\n"));
}

/// A released version is pinned to the sha256 PyPI published for it (the
/// charm's table) with driver-sha256 unset: other bytes under its name,
/// from a resource or from an index, are refused with both hashes, and
/// nothing is installed (issue 20).
#[test]
fn a_released_version_with_other_bytes_is_refused_by_default() {
    const PYPI_1_4_0: &str = "1e0878ea39dbe6ea3d40674c0c443ee5a0494835bdfbcc4f8052bc1178f508b9";
    let (unit, dir) = new_unit();
    unit.config("driver-version", "1.4.0");
    let whl = wheel(dir.path(), "magnum_capi_helm", "1.4.0");
    let sha = sha256_of(&whl);
    unit.resource("driver-wheel", &whl);
    // Nothing installed.
    let run = unit
        .hook("install")
        .expect_blocked(&sha)
        .expect_blocked(PYPI_1_4_0)
        .expect_blocked(&format!("driver-sha256={sha}"))
        .expect_unchanged()
        .run();
    assert!(!run.called("pip3 install"));
    // The operator vouches for this build: it installs.
    unit.config("driver-sha256", sha.as_str());
    unit.hook("config-changed").expect_active().run();

    // From an index that serves other bytes for 1.4.0: pip's hash check.
    let (unit, _dir) = new_unit();
    unit.unset_config("driver-version");
    let tampered = "ee".repeat(32);
    unit.pip(Pip::index_sha256(&tampered));
    let run = unit
        .hook("install")
        .expect_blocked(&tampered)
        .expect_blocked(PYPI_1_4_0)
        .run();
    assert!(run.calls_of("pip3")[0].args.contains(&"--require-hashes".to_string()));
    assert!(unit.file("/etc/magnum/magnum.conf.d/99-capi.conf").is_none());
}

#[test]
fn a_wheel_of_another_version_or_package_is_refused() {
    let (unit, dir) = new_unit();
    unit.resource("driver-wheel", &wheel(dir.path(), "magnum_capi_helm", "1.4.0"));
    unit.hook("install").run();
    assert!(unit.status().1.contains("driver-version=1.4.0"), "{:?}", unit.status());

    let (unit, dir) = new_unit();
    unit.resource("driver-wheel", &wheel(dir.path(), "requests", "2.31.0"));
    unit.hook("install").run();
    assert!(
        unit.status().1.contains("no magnum-capi-helm wheel"),
        "{:?}",
        unit.status()
    );
}

#[test]
fn helm_from_a_tarball_or_a_bare_binary_is_installed_once() {
    for source in ["tarball", "binary"] {
        let (unit, dir) = new_unit();
        unit.without_helm();
        let file = if source == "tarball" {
            helm_tarball(dir.path(), ARCH)
        } else {
            helm_binary(dir.path(), ARCH)
        };
        unit.resource("helm", &file);
        let run = unit.hook("install").note(source).expect_active().run();
        let helm = unit.file("/usr/local/bin/helm").unwrap();
        assert_eq!((helm.mode, helm.uid), (0o755, unit.ids.root_uid));
        assert_eq!(
            helm.content,
            std::fs::read(helm_binary(dir.path(), ARCH)).unwrap(),
            "{source}"
        );
        assert!(run.called("helm"), "helm version recorded");
        // Same bytes: nothing to do.
        unit.hook("update-status").note(source).expect_no_spawn().run();
        // Removed by hand: put back on the next update-status.
        std::fs::remove_file(unit.path("/usr/local/bin/helm")).unwrap();
        unit.hook("update-status").run();
        assert!(unit.file("/usr/local/bin/helm").is_some(), "{source}");
    }
}

#[test]
fn helm_for_the_wrong_arch_is_refused() {
    for source in ["tarball", "binary"] {
        let (unit, dir) = new_unit();
        unit.without_helm();
        let file = if source == "tarball" {
            helm_tarball(dir.path(), OTHER_ARCH)
        } else {
            helm_binary(dir.path(), OTHER_ARCH)
        };
        unit.resource("helm", &file);
        unit.hook("install")
            .note(source)
            .expect_blocked(OTHER_ARCH)
            .expect_blocked(ARCH)
            .run();
        assert!(unit.file("/usr/local/bin/helm").is_none());
    }
}

#[test]
fn no_helm_anywhere_blocks_with_the_attach_command() {
    let (unit, _dir) = new_unit();
    unit.without_helm();
    unit.hook("install")
        .expect_blocked("juju attach-resource magnum-capi helm=")
        .run();
}

#[test]
fn a_helm_pin_mismatch_blocks_with_both_hashes() {
    let (unit, dir) = new_unit();
    unit.without_helm();
    let bin = helm_binary(dir.path(), ARCH);
    let sha = sha256_of(&bin);
    unit.resource("helm", &bin);
    unit.config("helm-sha256", "0".repeat(64));
    unit.hook("install").run();
    let message = unit.status().1;
    assert!(message.contains(&sha) && message.contains(&"0".repeat(64)), "{message}");
    assert!(unit.file("/usr/local/bin/helm").is_none());
}

#[test]
fn a_new_resource_revision_is_picked_up_on_upgrade_charm() {
    let (unit, dir) = new_unit();
    let first = wheel(dir.path(), "magnum_capi_helm", V);
    unit.resource("driver-wheel", &first);
    unit.hook("install").run();
    // attach-resource: new bytes, same version; Juju fires upgrade-charm.
    let rebuilt_dir = dir.path().join("rebuilt");
    std::fs::create_dir_all(&rebuilt_dir).unwrap();
    let second = wheel(&rebuilt_dir, "magnum_capi_helm", V);
    sh(
        &rebuilt_dir,
        &format!("echo '# rebuilt' > extra.txt && zip -q {} extra.txt", second.display()),
    );
    unit.resource("driver-wheel", &second);
    let run = unit.hook("upgrade-charm").run();
    let pip = &run.calls_of("pip3")[0];
    assert!(pip.args.contains(&"--force-reinstall".to_string()), "{:?}", pip.args);
    assert!(run.called("systemctl restart"));
    // And removal of the charm takes helm and the driver away again.
}

#[test]
fn remove_takes_away_the_helm_the_charm_installed() {
    let (unit, dir) = new_unit();
    unit.without_helm();
    let before = unit.snapshot_all();
    unit.resource("helm", &helm_binary(dir.path(), ARCH));
    unit.hook("install").run();
    assert!(unit.file("/usr/local/bin/helm").is_some());
    unit.hook("stop").run();
    assert_eq!(unit.snapshot_all(), before);
}

/// Issue 19, item 4: only a local charm's never-uploaded resource is a
/// deliberate not-found. A resource the controller fails to download keeps
/// the staged wheels and the installed driver: nothing is installed or
/// restarted, the status names the resource and the error, and the next
/// hook tries again.
#[test]
fn a_resource_that_fails_to_download_changes_nothing_and_is_retried() {
    let (unit, dir) = new_unit();
    let stored = attach_driver_wheel(&unit, dir.path());
    unit.hook("install").expect_active().run();
    let staged = unit.path("/var/lib/magnum-capi/resources/wheels/magnum_capi_helm-1.5.0-py3-none-any.whl");
    assert!(staged.exists());
    let started = unit.systemd("magnum-conductor").start;

    unit.resource_error("driver-wheel", "while getting resource from charmhub: Get \"https://api.charmhub.io/v2/charms/refresh\": dial tcp: lookup api.charmhub.io: no such host");
    let run = unit
        .hook("upgrade-charm")
        .expect_blocked("no such host")
        .expect_unchanged()
        .run();
    let message = unit.status().1;
    assert!(
        message.starts_with("driver-wheel resource: could not download resource"),
        "{message}"
    );
    assert!(staged.exists(), "the staged wheel was deleted");
    assert!(
        !run.called("pip3 install") && !run.called("systemctl restart"),
        "{:?}",
        run.spawned()
    );
    assert_eq!(unit.systemd("magnum-conductor").start, started);

    // The next hook tries again; with the controller back, all is well.
    let again = unit.hook("update-status").expect_blocked("").run();
    assert!(again.called("resource-get"), "{:?}", again.spawned());
    unit.resource("driver-wheel", &stored);
    let ok = unit.hook("update-status").expect_active().run();
    assert!(ok.called("resource-get"));
    assert!(
        !ok.called("pip3 install"),
        "the same wheel is not installed again: {:?}",
        ok.spawned()
    );
    let quiet = unit.hook("config-changed").run();
    assert!(!quiet.called("resource-get"), "{:?}", quiet.spawned());
}

/// A new wheel resource whose driver does not load: the driver the services
/// run is put back from the charm's copy of the wheel it came from (the
/// staged directory now holds only the new one), nothing restarts, and
/// attaching the good wheel again costs nothing (issue 23, item 1).
#[test]
fn a_wheel_that_does_not_load_puts_back_the_one_the_services_run() {
    let (unit, dir) = new_unit();
    let good = attach_driver_wheel(&unit, dir.path());
    unit.hook("install").expect_active().run();
    let before = unit.snapshot();
    let started = unit.systemd("magnum-conductor").start;

    let bad_dir = dir.path().join("bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let bad = wheel(&bad_dir, "magnum_capi_helm", "1.6.0");
    unit.resource("driver-wheel", &bad);
    unit.config("driver-version", "1.6.0");
    unit.pip(Pip::no_entry_point("1.6.0"));
    let run = unit.hook("upgrade-charm").expect_blocked("driver does not load").run();
    let message = unit.status().1;
    assert!(!message.contains("could not be put back"), "{message}");
    let put_back = &run.calls_of("pip3")[1];
    assert!(
        put_back.args.last().unwrap().ends_with("==1.5.0"),
        "{:?}",
        put_back.args
    );
    assert!(
        put_back.args.iter().any(|a| a.ends_with("/last-good-wheel")),
        "{:?}",
        put_back.args
    );
    assert!(unit
        .file("/usr/local/lib/python3.11/dist-packages/magnum_capi_helm-1.5.0.dist-info/METADATA")
        .is_some());
    assert!(!run.called("systemctl restart"));

    // The good wheel again, and the version the unit runs: nothing to do.
    unit.resource("driver-wheel", &good);
    unit.config("driver-version", V);
    let run = unit.hook("upgrade-charm").expect_active().run();
    assert!(
        !run.called("pip3 install") && !run.called("systemctl restart"),
        "{:?}",
        run.spawned()
    );
    assert_eq!(unit.snapshot(), before);
    assert_eq!(unit.systemd("magnum-conductor").start, started);
}
