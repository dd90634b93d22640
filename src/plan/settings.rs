//! `juju config` as typed, validated settings. Every bad-config message is
//! born here: each names the option, what is wrong and the command to fix it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::compat::Layout;

/// How the services are made to read conf.d.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceOverride {
    /// The default: the packaged start is kept (uwsgi for Debian's API).
    /// The charm's block in `/etc/default/magnum-*`, which the packaged
    /// init script sources, appends `--config-dir` to the service's
    /// arguments (`DAEMON_ARGS`, or uwsgi's `PYARGV` for the app), so
    /// conf.d wins over magnum.conf.
    Packaged,
    /// The runbook's drop-in: `ExecStart=` reset, then magnum's own binary
    /// with `--config-file` and `--config-dir` (conf.d wins on a duplicate).
    Runbook,
    /// No drop-in: oslo.config's default config dir, where magnum.conf wins.
    None,
}

/// Which magnum drivers to disable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisabledDrivers {
    /// Every other installed `magnum.drivers` entry point.
    Auto,
    /// Exactly these (possibly none).
    List(Vec<String>),
}

/// One driver option: the charm option, the INI key, its kind, and where
/// the driver reads it.
pub struct CapiOption {
    pub option: &'static str,
    pub key: &'static str,
    pub kind: Kind,
    pub place: Place,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Bool,
    Choice(&'static [&'static str]),
}

/// Where a driver option lives, by release (compat.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// `[capi_helm]` in every release.
    CapiHelm,
    /// `[capi_helm]` from 1.4.0 (api_resources, the control plane
    /// conditions); older releases do not know it.
    CapiHelmSince14,
    /// `[capi_helm]` before 1.4.0, `[capi_helm_cluster_labels]` from 1.4.0
    /// (the five csi_cinder_* options 1.4.0 moved, with a DeprecatedOpt).
    MovedToLabels,
    /// `[capi_helm_cluster_labels]`, 1.4.0 and later only.
    Labels,
}

impl Place {
    /// The section this release reads the option from, or `None` when the
    /// release does not know it.
    pub fn section(self, layout: Layout) -> Option<&'static str> {
        match (self, layout) {
            (Place::CapiHelm, _) | (Place::MovedToLabels, Layout::V1_0) | (Place::CapiHelmSince14, Layout::V1_4) => {
                Some("capi_helm")
            }
            (Place::MovedToLabels | Place::Labels, Layout::V1_4) => Some("capi_helm_cluster_labels"),
            (Place::CapiHelmSince14 | Place::Labels, Layout::V1_0) => None,
        }
    }
}

const fn opt(option: &'static str, key: &'static str, kind: Kind, place: Place) -> CapiOption {
    CapiOption {
        option,
        key,
        kind,
        place,
    }
}

/// The driver's options (conf.py of each release, compat.rs), each
/// reachable through a charm option; unset means the driver's default and
/// is not written. 1.4.0's `[capi_helm_cluster_labels]` etcd_volume_size,
/// etcd_volume_type and capi_helm_chart_version are registered but never
/// read by its driver.py, so they have no charm option.
pub const CAPI_OPTIONS: [CapiOption; 36] = [
    opt("namespace-prefix", "namespace_prefix", Kind::Str, Place::CapiHelm),
    opt("helm-chart-repo", "helm_chart_repo", Kind::Str, Place::CapiHelm),
    opt("helm-chart-name", "helm_chart_name", Kind::Str, Place::CapiHelm),
    opt(
        "default-helm-chart-version",
        "default_helm_chart_version",
        Kind::Str,
        Place::CapiHelm,
    ),
    opt("minimum-flavor-ram", "minimum_flavor_ram", Kind::Int, Place::CapiHelm),
    opt(
        "minimum-flavor-vcpus",
        "minimum_flavor_vcpus",
        Kind::Int,
        Place::CapiHelm,
    ),
    opt(
        "csi-cinder-default-volume-type",
        "csi_cinder_default_volume_type",
        Kind::Str,
        Place::CapiHelm,
    ),
    opt(
        "csi-cinder-reclaim-policy",
        "csi_cinder_reclaim_policy",
        Kind::Choice(&["Retain", "Delete"]),
        Place::MovedToLabels,
    ),
    opt(
        "csi-cinder-allow-volume-expansion",
        "csi_cinder_allow_volume_expansion",
        Kind::Bool,
        Place::MovedToLabels,
    ),
    opt(
        "csi-cinder-allowed-topologies",
        "csi_cinder_allowed_topologies",
        Kind::Str,
        Place::CapiHelm,
    ),
    opt(
        "csi-cinder-fstype",
        "csi_cinder_fstype",
        Kind::Str,
        Place::MovedToLabels,
    ),
    opt(
        "csi-cinder-volume-binding-mode",
        "csi_cinder_volume_binding_mode",
        Kind::Choice(&["Immediate", "WaitForFirstConsumer"]),
        Place::MovedToLabels,
    ),
    opt(
        "csi-cinder-availability-zone",
        "csi_cinder_availability_zone",
        Kind::Str,
        Place::MovedToLabels,
    ),
    opt(
        "app-cred-interface-type",
        "app_cred_interface_type",
        Kind::Choice(&["public", "internal", "admin"]),
        Place::CapiHelm,
    ),
    opt("api-resources", "api_resources", Kind::Str, Place::CapiHelmSince14),
    opt(
        "k8s-control-plane-resource-conditions",
        "k8s_control_plane_resource_conditions",
        Kind::Str,
        Place::CapiHelmSince14,
    ),
    opt(
        "etcd-blockdevice-size",
        "etcd_blockdevice_size",
        Kind::Int,
        Place::Labels,
    ),
    opt(
        "etcd-blockdevice-type",
        "etcd_blockdevice_type",
        Kind::Choice(&["volume", "local"]),
        Place::Labels,
    ),
    opt(
        "etcd-blockdevice-volume-type",
        "etcd_blockdevice_volume_type",
        Kind::Str,
        Place::Labels,
    ),
    opt(
        "etcd-blockdevice-volume-az",
        "etcd_blockdevice_volume_az",
        Kind::Str,
        Place::Labels,
    ),
    opt("monitoring-enabled", "monitoring_enabled", Kind::Bool, Place::Labels),
    opt(
        "kube-dashboard-enabled",
        "kube_dashboard_enabled",
        Kind::Bool,
        Place::Labels,
    ),
    opt(
        "auto-healing-enabled",
        "auto_healing_enabled",
        Kind::Bool,
        Place::Labels,
    ),
    opt(
        "auto-scaling-enabled",
        "auto_scaling_enabled",
        Kind::Bool,
        Place::Labels,
    ),
    opt("min-node-count", "min_node_count", Kind::Int, Place::Labels),
    opt("max-node-count", "max_node_count", Kind::Int, Place::Labels),
    opt(
        "keystone-auth-enabled",
        "keystone_auth_enabled",
        Kind::Bool,
        Place::Labels,
    ),
    opt("octavia-provider", "octavia_provider", Kind::Str, Place::Labels),
    opt("octavia-lb-algorithm", "octavia_lb_algorithm", Kind::Str, Place::Labels),
    opt(
        "octavia-lb-healthcheck",
        "octavia_lb_healthcheck",
        Kind::Bool,
        Place::Labels,
    ),
    opt(
        "master-lb-floating-ip-enabled",
        "master_lb_floating_ip_enabled",
        Kind::Bool,
        Place::Labels,
    ),
    opt("fixed-subnet-cidr", "fixed_subnet_cidr", Kind::Str, Place::Labels),
    opt(
        "api-master-lb-allowed-cidrs",
        "api_master_lb_allowed_cidrs",
        Kind::Str,
        Place::Labels,
    ),
    opt("extra-network-names", "extra_network_names", Kind::Str, Place::Labels),
    opt("boot-volume-type", "boot_volume_type", Kind::Str, Place::Labels),
    opt("boot-volume-size", "boot_volume_size", Kind::Int, Place::Labels),
];

/// A driver option that is set: its INI key, where it lives, and its value
/// (validated, INI-safe, `$` escaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverOption {
    pub option: &'static str,
    pub key: &'static str,
    pub place: Place,
    pub value: String,
}

/// Juju's proxy settings for the charm (`juju model-config
/// juju-http-proxy=...`), which Juju hands every hook and action as
/// JUJU_CHARM_HTTP_PROXY, JUJU_CHARM_HTTPS_PROXY and JUJU_CHARM_NO_PROXY
/// (juju/juju environs/config: "The HTTP proxy value to pass to charms in
/// the JUJU_CHARM_HTTP_PROXY environment variable"). pip and both services
/// get them, lower- and upper-case, as the ecosystem's charms pass them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxy {
    pub http: Option<String>,
    pub https: Option<String>,
    pub no_proxy: Option<String>,
}

impl Proxy {
    /// From the hook's environment. A value that cannot be passed through
    /// a unit file and a shell fragment unchanged is refused with the fix.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Proxy, String> {
        let read = |var: &str, key: &str| -> Result<Option<String>, String> {
            let Some(v) = get(var).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            let bad = v.len() > MAX_VALUE
                || v.chars()
                    .any(|c| !('!'..='~').contains(&c) || matches!(c, '"' | '\'' | '\\' | '`' | '$'));
            if bad {
                return Err(format!(
                    "Juju's {key} has a space, quote, backslash, $, backquote or non-ASCII character the charm cannot pass to magnum's services unchanged; fix: juju model-config {key}=<plain URL or list>"
                ));
            }
            Ok(Some(v))
        };
        Ok(Proxy {
            http: read("JUJU_CHARM_HTTP_PROXY", "juju-http-proxy")?,
            https: read("JUJU_CHARM_HTTPS_PROXY", "juju-https-proxy")?,
            no_proxy: read("JUJU_CHARM_NO_PROXY", "juju-no-proxy")?,
        })
    }

    /// The environment variables to set, upper-case then lower-case each.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (upper, lower, v) in [
            ("HTTP_PROXY", "http_proxy", &self.http),
            ("HTTPS_PROXY", "https_proxy", &self.https),
            ("NO_PROXY", "no_proxy", &self.no_proxy),
        ] {
            if let Some(v) = v {
                out.push((upper, v.clone()));
                out.push((lower, v.clone()));
            }
        }
        out
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub kubeconfig_secret: Option<String>,
    /// The OpenStack credentials secret (smoketest, verify's API check).
    pub openstack_credentials_secret: Option<String>,
    pub driver_version: String,
    pub pip_index_url: Option<String>,
    pub disabled_drivers: DisabledDrivers,
    pub service_override: ServiceOverride,
    pub restart_settle_seconds: u64,
    pub restart_grant_timeout: u64,
    /// Every driver option that is set, in CAPI_OPTIONS order.
    pub driver_options: Vec<DriverOption>,
    /// sha256 pins (64 lowercase hex digits) for the driver wheel and helm.
    pub driver_sha256: Option<String>,
    pub helm_sha256: Option<String>,
    /// Juju's proxy settings (not `juju config`: the caller sets them from
    /// the environment, `Proxy::from_env`).
    pub proxy: Proxy,
}

pub const DRIVER_ENTRY_POINT: &str = "k8s_capi_helm_v1";
pub const DEFAULT_DRIVER_VERSION: &str = super::compat::DEFAULT_VERSION;

type Raw = BTreeMap<String, Value>;

/// No magnum option value is anywhere near this long.
pub const MAX_VALUE: usize = 4096;

fn get_str<'a>(raw: &'a Raw, option: &str) -> Result<Option<&'a str>, String> {
    match raw.get(option) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(format!(
            "config {option}={other} is not a string: juju config magnum-capi {option}=<text>"
        )),
    }
}

/// A value that goes into an INI or unit file: printable ASCII only, so no
/// newline, carriage return, NUL or non-ASCII byte can split a line or
/// inject a section (FACTS.md), and no `[`/`]`.
pub fn check_ini_value(option: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE {
        return Err(format!(
            "config {option} is {} bytes, over the {MAX_VALUE}-byte limit for a magnum option; fix: juju config magnum-capi {option}=<shorter value>",
            value.len()
        ));
    }
    if let Some(c) = value.chars().find(|c| !(' '..='~').contains(c)) {
        let what = match c {
            '\n' | '\r' => "a line break".to_string(),
            '\0' => "a NUL byte".to_string(),
            c if c.is_ascii() => format!("control character {:#04x}", c as u32),
            c => format!("non-ASCII character U+{:04X}", c as u32),
        };
        return Err(format!(
            "config {option} contains {what}: only printable ASCII is allowed (INI injection guard); fix: juju config magnum-capi {option}=<plain value>"
        ));
    }
    // oslo.config strips a pair of outer quotes (and reads a lone quote as
    // empty): a value that starts or ends with one would not read back.
    let t = value.trim();
    if t.starts_with(['"', '\'']) || t.ends_with(['"', '\'']) {
        return Err(format!(
            "config {option} starts or ends with a quote, which oslo.config strips; fix: juju config magnum-capi {option}=<value without quotes>"
        ));
    }
    if value.contains('[') || value.contains(']') {
        return Err(format!(
            "config {option} contains '[' or ']', which are not allowed in a magnum option value; fix: juju config magnum-capi {option}=<plain value>"
        ));
    }
    Ok(())
}

/// oslo.config expands `$name`; `$$` is a literal `$` (FACTS.md).
pub fn escape_dollars(value: &str) -> String {
    value.replace('$', "$$")
}

/// A plain PEP 440-ish version: digits first, then digits, dots and
/// lowercase letters (`1.1.0`, `1.2.0rc1`, `1.1.0.post1`), no `..`.
pub fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 32
        && v.as_bytes()[0].is_ascii_digit()
        && !v.ends_with('.')
        && !v.contains("..")
        && v.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'.')
}

fn valid_driver_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// The secret ID of a URI in any of the forms `valid_secret_uri` takes.
pub fn secret_id(uri: &str) -> &str {
    let rest = uri.strip_prefix("secret:").unwrap_or(uri);
    match rest.strip_prefix("//") {
        Some(r) => r.rsplit('/').next().unwrap_or(r),
        None => rest,
    }
}

/// Two URIs name the same secret (Juju normalises every form to its ID).
pub fn same_secret(a: &str, b: &str) -> bool {
    secret_id(a) == secret_id(b)
}

/// A Juju secret URI: `secret:<id>`, `secret://<model-uuid>/<id>`, or a
/// bare ID (`[0-9a-z]{20}`, an xid), which Juju's own parser takes as
/// `secret:<id>` (juju/juju core/secrets ParseURI) and `secret-get` accepts.
pub fn valid_secret_uri(uri: &str) -> bool {
    if uri.len() == 20 && uri.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()) {
        return true;
    }
    let Some(rest) = uri.strip_prefix("secret:") else {
        return false;
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    !rest.is_empty()
        && rest.len() <= 128
        && !rest.starts_with('/')
        && !rest.ends_with('/')
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'-')
        && !rest.contains("//")
}

impl Settings {
    /// Validate `config-get` output. The error is a `blocked` message.
    pub fn parse(raw: &Raw) -> Result<Settings, String> {
        // Every string option is checked for INI safety, whatever it feeds.
        for (option, value) in raw {
            if let Value::String(s) = value {
                if option != "kubeconfig-secret" && option != "openstack-credentials-secret" {
                    check_ini_value(option, s)?;
                }
            }
        }

        let kubeconfig_secret = match get_str(raw, "kubeconfig-secret")?.map(str::trim) {
            None | Some("") => None,
            Some(uri) if valid_secret_uri(uri) => Some(uri.to_string()),
            Some(_) => {
                return Err("config kubeconfig-secret is not a secret URI (secret:<id>); fix: juju secrets, then juju config magnum-capi kubeconfig-secret=secret:<id>".into())
            }
        };

        let openstack_credentials_secret = match get_str(raw, "openstack-credentials-secret")?.map(str::trim) {
            None | Some("") => None,
            Some(uri) if valid_secret_uri(uri) => Some(uri.to_string()),
            Some(_) => return Err("config openstack-credentials-secret is not a secret URI (secret:<id>); fix: juju config magnum-capi openstack-credentials-secret=secret:<id>".into()),
        };

        let driver_version = get_str(raw, "driver-version")?
            .map(str::trim)
            .unwrap_or(DEFAULT_DRIVER_VERSION);
        if !valid_version(driver_version) {
            return Err(format!(
                "config driver-version {driver_version:?} is not a plain version like {DEFAULT_DRIVER_VERSION}; fix: juju config magnum-capi driver-version={DEFAULT_DRIVER_VERSION}"
            ));
        }

        let pip_index_url = match get_str(raw, "pip-index-url")?.map(str::trim) {
            None | Some("") => None,
            Some(u) if (u.starts_with("https://") || u.starts_with("http://")) && !u.contains(' ') && u.len() > 8 => Some(u.to_string()),
            Some(_) => {
                return Err("config pip-index-url is not an http(s) URL; fix: juju config magnum-capi pip-index-url=https://<mirror>/simple (or unset it)".into())
            }
        };

        let disabled_drivers = match get_str(raw, "disabled-drivers")?.map(str::trim) {
            None | Some("auto") => DisabledDrivers::Auto,
            Some(list) => {
                let names: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if let Some(bad) = names.iter().find(|n| !valid_driver_name(n)) {
                    return Err(format!("config disabled-drivers has an invalid driver name {bad:?}; fix: juju config magnum-capi disabled-drivers=auto"));
                }
                if names.iter().any(|n| n == DRIVER_ENTRY_POINT) {
                    return Err(format!("config disabled-drivers disables {DRIVER_ENTRY_POINT}, the driver this charm installs; fix: juju config magnum-capi disabled-drivers=auto"));
                }
                DisabledDrivers::List(names)
            }
        };

        let service_override = match get_str(raw, "service-override")?.map(str::trim) {
            None | Some("packaged") => ServiceOverride::Packaged,
            Some("runbook") => ServiceOverride::Runbook,
            Some("none") => ServiceOverride::None,
            Some(other) => {
                return Err(format!("config service-override={other:?} is not packaged, runbook or none; fix: juju config magnum-capi service-override=packaged"))
            }
        };

        let restart_settle_seconds = match raw.get("restart-settle-seconds") {
            None | Some(Value::Null) => 10,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(s) if s <= 600 => s,
                _ => return Err("config restart-settle-seconds must be 0..600; fix: juju config magnum-capi restart-settle-seconds=10".into()),
            },
            Some(_) => return Err("config restart-settle-seconds is not an integer; fix: juju config magnum-capi restart-settle-seconds=10".into()),
        };

        let restart_grant_timeout = match raw.get("restart-grant-timeout") {
            None | Some(Value::Null) => 300,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(s) if s <= 86400 => s,
                _ => return Err("config restart-grant-timeout must be 0..86400; fix: juju config magnum-capi restart-grant-timeout=300".into()),
            },
            Some(_) => return Err("config restart-grant-timeout is not an integer; fix: juju config magnum-capi restart-grant-timeout=300".into()),
        };

        let mut driver_options = Vec::new();
        for opt in CAPI_OPTIONS.iter() {
            let value = match (raw.get(opt.option), opt.kind) {
                (None | Some(Value::Null), _) => continue,
                (Some(Value::String(s)), Kind::Str) if s.trim().is_empty() => continue,
                (Some(Value::String(s)), Kind::Str) => escape_dollars(s.trim()),
                (Some(Value::String(s)), Kind::Choice(_)) if s.trim().is_empty() => continue,
                (Some(Value::String(s)), Kind::Choice(choices)) => {
                    if !choices.contains(&s.trim()) {
                        return Err(format!(
                            "config {} must be one of {}; fix: juju config magnum-capi {}={}",
                            opt.option,
                            choices.join(", "),
                            opt.option,
                            choices[0]
                        ));
                    }
                    s.trim().to_string()
                }
                // 0 is config.yaml's "the driver's default".
                (Some(Value::Number(n)), Kind::Int) if n.as_u64() == Some(0) => continue,
                (Some(Value::Number(n)), Kind::Int) if n.as_u64().is_some() => n.to_string(),
                (Some(Value::Bool(b)), Kind::Bool) => b.to_string(),
                (Some(Value::String(s)), Kind::Bool) => match s.trim().to_ascii_lowercase().as_str() {
                    "" => continue,
                    b @ ("true" | "false") => b.to_string(),
                    _ => {
                        return Err(format!(
                            "config {} must be true, false or empty; fix: juju config magnum-capi {}=true",
                            opt.option, opt.option
                        ))
                    }
                },
                (Some(other), _) => {
                    return Err(format!(
                        "config {}={other} has the wrong type; fix: juju config magnum-capi --reset {}",
                        opt.option, opt.option
                    ))
                }
            };
            driver_options.push(DriverOption {
                option: opt.option,
                key: opt.key,
                place: opt.place,
                value,
            });
        }
        // An OCI chart: the driver's rule (magnum_capi_helm conf.py, every
        // release: "if helm_chart_name starts with oci:// you will want this
        // to set this to the empty string") is helm_chart_repo = '', which
        // helm then runs without --repo (helm.py).
        if driver_options
            .iter()
            .any(|o| o.key == "helm_chart_name" && o.value.starts_with("oci://"))
        {
            if driver_options.iter().any(|o| o.key == "helm_chart_repo") {
                return Err("config helm-chart-repo must be empty with an oci:// helm-chart-name (the chart's address is the name); fix: juju config magnum-capi --reset helm-chart-repo".into());
            }
            driver_options.push(DriverOption {
                option: "helm-chart-name",
                key: "helm_chart_repo",
                place: Place::CapiHelm,
                value: String::new(),
            });
        }

        let pin = |option: &str| -> Result<Option<String>, String> {
            match get_str(raw, option)?.map(str::trim) {
                None | Some("") => Ok(None),
                Some(p) => super::artifact::parse_sha256(p).map(Some).ok_or_else(|| {
                    format!("config {option} is not a sha256 (64 hex digits); fix: juju config magnum-capi {option}=$(sha256sum <file> | cut -d' ' -f1)")
                }),
            }
        };
        let driver_sha256 = pin("driver-sha256")?;
        let helm_sha256 = pin("helm-sha256")?;

        Ok(Settings {
            driver_sha256,
            helm_sha256,
            kubeconfig_secret,
            openstack_credentials_secret,
            driver_version: driver_version.to_string(),
            pip_index_url,
            disabled_drivers,
            service_override,
            restart_settle_seconds,
            restart_grant_timeout,
            driver_options,
            proxy: Proxy::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(v: Value) -> Raw {
        serde_json::from_value(v).unwrap()
    }

    fn keys(s: &Settings) -> Vec<(&'static str, String)> {
        s.driver_options.iter().map(|o| (o.key, o.value.clone())).collect()
    }

    #[test]
    fn defaults() {
        let s = Settings::parse(&raw(json!({}))).unwrap();
        assert_eq!(s.driver_version, "1.4.0");
        assert_eq!(s.kubeconfig_secret, None);
        assert_eq!(s.service_override, ServiceOverride::Packaged);
        assert_eq!(s.disabled_drivers, DisabledDrivers::Auto);
        assert_eq!(s.restart_settle_seconds, 10);
        assert!(s.driver_options.is_empty());
    }

    #[test]
    fn bad_versions_are_refused() {
        for v in [
            "1.1.0; rm -rf /",
            "../x",
            "",
            "v1.1",
            "1..1",
            "1.1.",
            "1.1.0\n",
            "1.1.0 beta",
        ] {
            assert!(
                Settings::parse(&raw(json!({"driver-version": v}))).is_err(),
                "{v:?} accepted"
            );
        }
        assert_eq!(
            Settings::parse(&raw(json!({"driver-version": " 1.2.0 "})))
                .unwrap()
                .driver_version,
            "1.2.0"
        );
        for v in ["1.1.0", "1.4.0", "1.2.0rc1", "1.1.0.post1"] {
            assert!(valid_version(v), "{v}");
        }
    }

    #[test]
    fn ini_injection_is_refused() {
        for v in [
            "x\n[DEFAULT]\ndebug = true",
            "x\r[DEFAULT]\rdebug = true",
            "a\0b",
            "caf\u{e9}",
            "[x]",
            "tab\there",
        ] {
            let e = Settings::parse(&raw(json!({"namespace-prefix": v}))).unwrap_err();
            assert!(e.contains("namespace-prefix"), "{e}");
        }
    }

    #[test]
    fn dollars_are_escaped_for_oslo_config() {
        let s = Settings::parse(&raw(json!({"namespace-prefix": "$capi_helm.x"}))).unwrap();
        assert_eq!(keys(&s), vec![("namespace_prefix", "$$capi_helm.x".to_string())]);
    }

    #[test]
    fn typed_options_are_checked() {
        assert!(Settings::parse(&raw(json!({"minimum-flavor-ram": "lots"}))).is_err());
        assert!(Settings::parse(&raw(json!({"csi-cinder-reclaim-policy": "Keep"}))).is_err());
        assert!(Settings::parse(&raw(json!({"csi-cinder-allow-volume-expansion": "yes"}))).is_err());
        let s = Settings::parse(&raw(
            json!({"minimum-flavor-ram": 0, "csi-cinder-allow-volume-expansion": ""}),
        ))
        .unwrap();
        assert!(s.driver_options.is_empty(), "0 and empty mean the driver default");
        let s = Settings::parse(&raw(
            json!({"minimum-flavor-ram": 4096, "csi-cinder-allow-volume-expansion": "true"}),
        ))
        .unwrap();
        assert_eq!(
            keys(&s),
            vec![
                ("minimum_flavor_ram", "4096".to_string()),
                ("csi_cinder_allow_volume_expansion", "true".to_string())
            ]
        );
    }

    #[test]
    fn one_secret_in_any_form() {
        let id = "cs2ltv7mp25c77s6iqgg";
        for form in [
            "secret:cs2ltv7mp25c77s6iqgg",
            "cs2ltv7mp25c77s6iqgg",
            "secret://5a0f30a7-1b3a-4c4f-8a4e-0d2f7e1f0c9a/cs2ltv7mp25c77s6iqgg",
        ] {
            assert_eq!(secret_id(form), id);
            assert!(same_secret(form, "secret:cs2ltv7mp25c77s6iqgg"));
        }
        assert!(!same_secret(
            "secret:cs2ltv7mp25c77s6iqgg",
            "secret:d1f8kq7mp25c77screds"
        ));
    }

    #[test]
    fn secret_uris() {
        assert!(valid_secret_uri("secret:cs2ltv7mp25c77s6iqgg"));
        assert!(valid_secret_uri(
            "secret://5a0f30a7-1b3a-4c4f-8a4e-0d2f7e1f0c9a/cs2ltv7mp25c77s6iqgg"
        ));
        // A bare ID, as Juju's ParseURI takes one.
        assert!(valid_secret_uri("cs2ltv7mp25c77s6iqgg"));
        for bad in [
            "",
            "cs2ltv7mp25c77s6iqg",
            "CS2LTV7MP25C77S6IQGG",
            "secret:",
            "secret:../x",
            "secret:a b",
            "secret:a;rm",
        ] {
            assert!(!valid_secret_uri(bad), "{bad}");
        }
    }

    #[test]
    fn an_oci_chart_empties_the_repo() {
        let s = Settings::parse(&raw(
            json!({"helm-chart-name": "oci://registry.example/capi/openstack-cluster"}),
        ))
        .unwrap();
        assert!(
            keys(&s).contains(&("helm_chart_repo", String::new())),
            "{:?}",
            s.driver_options
        );
        let e = Settings::parse(&raw(
            json!({"helm-chart-name": "oci://r.example/c", "helm-chart-repo": "https://charts.example"}),
        ))
        .unwrap_err();
        assert!(e.contains("helm-chart-repo must be empty"), "{e}");
    }

    #[test]
    fn juju_proxies_both_cases() {
        let env = |k: &str| match k {
            "JUJU_CHARM_HTTP_PROXY" => Some("http://squid.internal:3128".to_string()),
            "JUJU_CHARM_NO_PROXY" => Some("10.0.0.0/8,.internal".to_string()),
            _ => None,
        };
        let p = Proxy::from_env(env).unwrap();
        let vars = p.vars();
        assert_eq!(
            vars,
            vec![
                ("HTTP_PROXY", "http://squid.internal:3128".to_string()),
                ("http_proxy", "http://squid.internal:3128".to_string()),
                ("NO_PROXY", "10.0.0.0/8,.internal".to_string()),
                ("no_proxy", "10.0.0.0/8,.internal".to_string()),
            ]
        );
        assert_eq!(Proxy::from_env(|_| Some(String::new())).unwrap(), Proxy::default());
        for bad in ["http://a b:1", "http://x'$(reboot)", "http://\"q\"", "http://caf\u{e9}"] {
            let e = Proxy::from_env(|k| (k == "JUJU_CHARM_HTTPS_PROXY").then(|| bad.to_string())).unwrap_err();
            assert!(e.contains("juju-https-proxy"), "{e}");
        }
    }

    #[test]
    fn disabled_drivers_list() {
        let s = Settings::parse(&raw(json!({"disabled-drivers": "a, b"}))).unwrap();
        assert_eq!(s.disabled_drivers, DisabledDrivers::List(vec!["a".into(), "b".into()]));
        let s = Settings::parse(&raw(json!({"disabled-drivers": ""}))).unwrap();
        assert_eq!(s.disabled_drivers, DisabledDrivers::List(vec![]));
        assert!(Settings::parse(&raw(json!({"disabled-drivers": "k8s_capi_helm_v1"}))).is_err());
    }
}
