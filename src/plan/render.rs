//! The bytes of the files the charm writes: 99-capi.conf and the systemd
//! drop-ins. Pure; every value was validated by `settings` first, and the
//! result is checked ASCII again before anyone writes it.

use super::paths::{CONF_D, KUBECONFIG, MAGNUM_CONF};

const HEADER: &str = "# Managed by the magnum-capi charm; manual edits are overwritten on the next hook.\n# Change it with: juju config magnum-capi <option>=<value>\n";

/// `/etc/magnum/magnum.conf.d/99-capi.conf`.
pub fn capi_conf(capi_helm: &[(&str, String)], disabled_drivers: &[String]) -> String {
    let mut out = String::from(HEADER);
    out.push_str("\n[capi_helm]\n");
    out.push_str(&format!("kubeconfig_file = {KUBECONFIG}\n"));
    for (key, value) in capi_helm {
        if value.is_empty() {
            // oslo.config reads `key =` as the empty string.
            out.push_str(&format!("{key} =\n"));
        } else {
            out.push_str(&format!("{key} = {value}\n"));
        }
    }
    if !disabled_drivers.is_empty() {
        out.push_str("\n[drivers]\n");
        out.push_str(&format!("disabled_drivers = {}\n", disabled_drivers.join(",")));
    }
    out
}

/// The runbook's drop-in: clear the packaged `ExecStart`, then run magnum's
/// own binary with magnum.conf and conf.d, so conf.d wins (FACTS.md).
pub fn runbook_dropin(binary: &str) -> String {
    format!(
        "{HEADER}# service-override=runbook: read {CONF_D} after {MAGNUM_CONF}.\n[Service]\nExecStart=\nExecStart={binary} --config-file={MAGNUM_CONF} --config-dir={CONF_D}\n"
    )
}

/// Printable ASCII plus newline: what may go into an INI or unit file.
pub fn is_clean_ascii(text: &str) -> bool {
    text.bytes().all(|b| b == b'\n' || (0x20..0x7f).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capi_conf_has_the_kubeconfig_and_only_set_options() {
        let c = capi_conf(&[("namespace_prefix", "capi".into())], &["k8s_fedora_coreos_v1".into()]);
        assert!(c.starts_with("# Managed by the magnum-capi charm"));
        assert!(c.contains("[capi_helm]\nkubeconfig_file = /etc/magnum/kubeconfig\nnamespace_prefix = capi\n"));
        assert!(c.contains("[drivers]\ndisabled_drivers = k8s_fedora_coreos_v1\n"));
        assert!(!c.contains("enabled_drivers"));
        assert!(is_clean_ascii(&c));
        assert!(!capi_conf(&[], &[]).contains("[drivers]"));
    }

    #[test]
    fn dropin_resets_then_sets_execstart() {
        let d = runbook_dropin("/usr/bin/magnum-api");
        let exec: Vec<&str> = d.lines().filter(|l| l.starts_with("ExecStart=")).collect();
        assert_eq!(exec, ["ExecStart=", "ExecStart=/usr/bin/magnum-api --config-file=/etc/magnum/magnum.conf --config-dir=/etc/magnum/magnum.conf.d"]);
        assert!(is_clean_ascii(&d));
    }
}
