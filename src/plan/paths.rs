//! The unit paths the charm owns or reads. Absolute unit paths; `unit::Root`
//! puts them under the root.

pub const MAGNUM_CONF: &str = "/etc/magnum/magnum.conf";
pub const CONF_D: &str = "/etc/magnum/magnum.conf.d";
pub const CAPI_CONF: &str = "/etc/magnum/magnum.conf.d/99-capi.conf";
pub const KUBECONFIG: &str = "/etc/magnum/kubeconfig";
/// Where the charm keeps its own state (survives upgrade-charm): root only.
pub const STATE_DIR: &str = "/var/lib/magnum-capi";
pub const STATE_FILE: &str = "/var/lib/magnum-capi/state.json";
pub const LAST_GOOD_DIR: &str = "/var/lib/magnum-capi/last-good";
/// Left by a hook that panicked after setting its own status (src/panic.rs):
/// the status the charm remembers is not what Juju shows.
pub const STATUS_UNKNOWN: &str = "/var/lib/magnum-capi/status-unknown";

/// The services the driver runs in.
pub const SERVICES: [&str; 2] = ["magnum-api", "magnum-conductor"];

/// Our drop-in: named to sort after any other drop-in (the runbook's
/// `override.conf` included) so its `ExecStart=` reset is the last word.
pub fn dropin(service: &str) -> String {
    format!("/etc/systemd/system/{service}.service.d/99-magnum-capi.conf")
}

/// The runbook's hand-made drop-in (section 8), adopted by the charm.
pub fn runbook_dropin(service: &str) -> String {
    format!("/etc/systemd/system/{service}.service.d/override.conf")
}

/// The packaging's environment file, sourced by its init script.
pub fn env_default(service: &str) -> String {
    format!("/etc/default/{service}")
}

/// The packaged init script the unit file runs (`systemd-start`).
pub fn init_script(service: &str) -> String {
    format!("/etc/init.d/{service}")
}

pub fn dropin_dir(service: &str) -> String {
    format!("/etc/systemd/system/{service}.service.d")
}

/// Resources staged by the charm (supply chain), and pip's hash-pinned
/// requirements file.
pub const STAGED_WHEELS: &str = "/var/lib/magnum-capi/resources/wheels";
pub const STAGED_HELM: &str = "/var/lib/magnum-capi/resources/helm";
pub const REQUIREMENTS: &str = "/var/lib/magnum-capi/requirements.txt";
/// A copy of the driver wheel the services run, when it came from the
/// resource: a later resource revision replaces STAGED_WHEELS, and a put-back
/// after a wheel that does not load needs the previous one.
pub const LAST_GOOD_WHEELS: &str = "/var/lib/magnum-capi/resources/last-good-wheel";
/// Where the charm installs helm: on the services' PATH.
pub const HELM: &str = "/usr/local/bin/helm";
/// Where else a helm may be: snap's, on Ubuntu (`snap install helm`).
pub const SNAP_BIN: &str = "/snap/bin";
/// A systemd service's PATH (systemd's default).
pub const SERVICE_PATH: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Where the charm keeps the unit's files as they were before it came.
pub const PRESTATE_DIR: &str = "/var/lib/magnum-capi/prestate";

/// Where systemd unit files of packages live, in systemd's order.
pub const UNIT_DIRS: [&str; 3] = ["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];

/// Where the system Python finds packages: pip's root installs land in the
/// first (FACTS.md), the distro's magnum in the last.
pub const SITE_DIRS_GLOB: [&str; 4] = [
    "/usr/local/lib/python3*/dist-packages",
    "/usr/lib/python3/dist-packages",
    "/usr/local/lib/python3*/site-packages",
    "/usr/lib/python3*/site-packages",
];

/// Where a service's binary may be.
pub const BIN_DIRS: [&str; 2] = ["/usr/bin", "/usr/local/bin"];

/// systemd's link to a unit's current invocation ID, replaced (a new
/// inode) at every start of the unit, restarts by systemd included:
/// watching it tells a restart since the last look without asking systemd.
pub fn invocation_link(service: &str) -> String {
    format!("/run/systemd/units/invocation:{service}.service")
}
