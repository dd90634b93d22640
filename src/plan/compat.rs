//! What each magnum-capi-helm release can work with, read from the released
//! wheels themselves (`pip download --no-deps magnum-capi-helm==X`, every
//! PyPI release; tests/fakes/research/magnum-capi-helm-wheels.md has each
//! fact with its file and line):
//!
//! - the wheel's sha256, as PyPI's project JSON and simple index list it and
//!   as `sha256sum` of the downloaded file gives it (all three agree);
//! - `Requires-Python` from the wheel's METADATA;
//! - the kubeconfig credentials `magnum_capi_helm/kubernetes.py` reads:
//!   1.0.0 - 1.2.1 `assert client_cert is not None` (certificate only),
//!   1.3.0 and 1.4.0 fall back to `users[].user.token` (a bearer token);
//! - the `apiVersion` of every Cluster API kind kubernetes.py requests:
//!   OpenStackCluster is `infrastructure.cluster.x-k8s.io/v1alpha6` up to
//!   1.3.0, `v1beta1` in 1.4.0 (CAPO stopped serving v1alpha6 in 0.11);
//! - the options `conf.py` registers, loaded with oslo.config per version:
//!   1.4.0 adds `[capi_helm] api_resources`,
//!   `k8s_control_plane_resource_conditions` and the
//!   `[capi_helm_cluster_labels]` group, and moves five `csi_cinder_*`
//!   options there (the old place is a DeprecatedOpt).
//!
//! Pure data and lookups; no I/O.

use std::cmp::Ordering;

use super::kubeconfig::Auth;

/// Which options a release reads, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layout {
    /// 1.0.0 - 1.3.0: `[capi_helm]` only, the options of 1.0.0's conf.py.
    V1_0,
    /// 1.4.0: `[capi_helm]` plus `[capi_helm_cluster_labels]`.
    V1_4,
}

/// One released driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    pub version: &'static str,
    /// sha256 of `magnum_capi_helm-<version>-py3-none-any.whl` on PyPI.
    pub wheel_sha256: &'static str,
    /// `Requires-Python`, as (major, minor).
    pub min_python: (u32, u32),
    /// Reads a bearer token (`users[].user.token`) when there is no client
    /// certificate.
    pub token: bool,
    /// group/version of every Cluster API kind the driver requests.
    pub apis: &'static [&'static str],
    pub layout: Layout,
}

const APIS_V1ALPHA6: &[&str] = &[
    "cluster.x-k8s.io/v1beta1",
    "controlplane.cluster.x-k8s.io/v1beta1",
    "infrastructure.cluster.x-k8s.io/v1alpha6",
];
const APIS_V1BETA1: &[&str] = &[
    "cluster.x-k8s.io/v1beta1",
    "controlplane.cluster.x-k8s.io/v1beta1",
    "infrastructure.cluster.x-k8s.io/v1beta1",
];

/// Every release on PyPI, oldest first.
pub const RELEASES: [Release; 6] = [
    Release {
        version: "1.0.0",
        wheel_sha256: "d50c3567ed6517602738f84440a4f54d11869effffcb52a62be88dd1a7b4192c",
        min_python: (3, 6),
        token: false,
        apis: APIS_V1ALPHA6,
        layout: Layout::V1_0,
    },
    Release {
        version: "1.1.0",
        wheel_sha256: "a90b39640c9f79763d23d3e319b49f9eab917e8349f6e1cc686eb64bfb5819a0",
        min_python: (3, 6),
        token: false,
        apis: APIS_V1ALPHA6,
        layout: Layout::V1_0,
    },
    Release {
        version: "1.2.0",
        wheel_sha256: "252363ff1020cfdc19137002f835e373337fa60969f82bacc8a47654de59be4d",
        min_python: (3, 6),
        token: false,
        apis: APIS_V1ALPHA6,
        layout: Layout::V1_0,
    },
    Release {
        version: "1.2.1",
        wheel_sha256: "2c3e9a617574b6cafbfd27a04e907c4a2512fcce9085a1bd60019005ca7df8e6",
        min_python: (3, 6),
        token: false,
        apis: APIS_V1ALPHA6,
        layout: Layout::V1_0,
    },
    Release {
        version: "1.3.0",
        wheel_sha256: "0e1a8b3416afd4c1e173d72cd2840bda34766b3ea3eeea8f373e4919cc120dbf",
        min_python: (3, 6),
        token: true,
        apis: APIS_V1ALPHA6,
        layout: Layout::V1_0,
    },
    Release {
        version: "1.4.0",
        wheel_sha256: "1e0878ea39dbe6ea3d40674c0c443ee5a0494835bdfbcc4f8052bc1178f508b9",
        min_python: (3, 10),
        token: true,
        apis: APIS_V1BETA1,
        layout: Layout::V1_4,
    },
];

/// The default `driver-version`: the newest release that works with a
/// CAPO of today (v1beta1) and with a token kubeconfig, on both Python
/// lines Charmed OpenStack runs (3.10 on 22.04, 3.12 on 24.04).
pub const DEFAULT_VERSION: &str = "1.4.0";

/// The release of this version, if it is a published one.
pub fn release(version: &str) -> Option<&'static Release> {
    RELEASES.iter().find(|r| r.version == version)
}

/// Numeric release segments of a plain version (`1.2.0rc1` -> [1, 2, 0]).
fn numbers(version: &str) -> Vec<u64> {
    version
        .split('.')
        .map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap_or(0)
        })
        .collect()
}

/// Compare two plain versions by their numeric segments.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (numbers(a), numbers(b));
    let n = x.len().max(y.len());
    x.resize(n, 0);
    y.resize(n, 0);
    x.cmp(&y)
}

/// The table's facts for any version: its own row, or for one not in the
/// table (a pre-release, a mirror's rebuild, a release after this charm)
/// the newest release at or below it, else the oldest.
pub fn nearest(version: &str) -> &'static Release {
    release(version).unwrap_or_else(|| {
        RELEASES
            .iter()
            .rev()
            .find(|r| compare(r.version, version) != Ordering::Greater)
            .unwrap_or(&RELEASES[0])
    })
}

/// The first release that reads a bearer token.
fn first_with_token() -> &'static str {
    RELEASES.iter().find(|r| r.token).map_or(DEFAULT_VERSION, |r| r.version)
}

/// Why this driver cannot work on this unit with this kubeconfig, as a
/// blocked message with the fix; `None` when it can (or the table does not
/// know the version: it installs as before, and verify says unpinned).
pub fn refusal(version: &str, auth: Option<Auth>, python: Option<(u32, u32)>) -> Option<String> {
    let r = release(version)?;
    if auth == Some(Auth::Token) && !r.token {
        return Some(format!(
            "driver-version {version} cannot use the kubeconfig's bearer token (magnum-capi-helm reads only client certificates before {}; every cluster create would fail): juju config magnum-capi driver-version={DEFAULT_VERSION}",
            first_with_token()
        ));
    }
    if let Some((major, minor)) = python.filter(|p| *p < r.min_python) {
        let (need_major, need_minor) = r.min_python;
        let newest = RELEASES
            .iter()
            .rev()
            .find(|x| x.min_python <= (major, minor))
            .map_or("none", |x| x.version);
        return Some(format!(
            "driver-version {version} needs Python >= {need_major}.{need_minor}, this unit has {major}.{minor}: juju config magnum-capi driver-version={newest}"
        ));
    }
    None
}

/// The unit's Python from the name `/usr/bin/python3` links to
/// (`python3.11`), or a `pythonX.Y` directory name.
pub fn python_version(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("python")?;
    let (major, minor) = rest.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_version_order_and_ends_at_the_default() {
        for w in RELEASES.windows(2) {
            assert_eq!(compare(w[0].version, w[1].version), Ordering::Less);
        }
        assert_eq!(RELEASES.last().unwrap().version, DEFAULT_VERSION);
        for r in RELEASES {
            assert!(
                super::super::artifact::parse_sha256(r.wheel_sha256).is_some(),
                "{}",
                r.version
            );
        }
    }

    #[test]
    fn only_1_4_speaks_the_capo_of_today() {
        for r in RELEASES {
            let v1beta1 = r.apis.contains(&"infrastructure.cluster.x-k8s.io/v1beta1");
            assert_eq!(v1beta1, r.version == "1.4.0", "{}", r.version);
        }
    }

    #[test]
    fn a_token_needs_1_3() {
        let e = refusal("1.1.0", Some(Auth::Token), Some((3, 11))).unwrap();
        assert!(
            e.contains("bearer token") && e.contains("before 1.3.0") && e.contains("driver-version=1.4.0"),
            "{e}"
        );
        assert_eq!(refusal("1.1.0", Some(Auth::ClientCertificate), Some((3, 11))), None);
        assert_eq!(refusal("1.3.0", Some(Auth::Token), Some((3, 11))), None);
        // Not in the table: installs as before.
        assert_eq!(refusal("1.1.0.post1", Some(Auth::Token), None), None);
    }

    #[test]
    fn python_3_9_cannot_run_1_4() {
        let e = refusal("1.4.0", Some(Auth::Token), Some((3, 9))).unwrap();
        assert!(
            e.contains("needs Python >= 3.10, this unit has 3.9") && e.ends_with("driver-version=1.3.0"),
            "{e}"
        );
        assert_eq!(refusal("1.4.0", None, Some((3, 10))), None);
        assert_eq!(refusal("1.4.0", None, None), None);
    }

    #[test]
    fn versions_outside_the_table_take_the_nearest_row() {
        assert_eq!(nearest("1.4.0").version, "1.4.0");
        assert_eq!(nearest("1.5.0").layout, Layout::V1_4);
        assert_eq!(nearest("1.10.0").version, "1.4.0");
        assert_eq!(nearest("1.3.1").version, "1.3.0");
        assert_eq!(nearest("0.9").version, "1.0.0");
        assert_eq!(nearest("1.2.0rc1").version, "1.2.0");
    }

    #[test]
    fn python_names() {
        assert_eq!(python_version("python3.11"), Some((3, 11)));
        assert_eq!(python_version("python3"), None);
        assert_eq!(python_version("/usr/bin/fake-tool"), None);
    }
}
