//! The bytes of the files the charm writes: 99-capi.conf and the systemd
//! drop-ins. Pure; every value was validated by `settings` first, and the
//! result is checked ASCII again before anyone writes it.

use super::paths::{CONF_D, KUBECONFIG, MAGNUM_CONF, SERVICE_PATH};

const HEADER: &str = "# Managed by the magnum-capi charm; manual edits are overwritten on the next hook.\n# Change it with: juju config magnum-capi <option>=<value>\n";

/// `/etc/magnum/magnum.conf.d/99-capi.conf`: `[capi_helm]` (the kubeconfig
/// first), then `[capi_helm_cluster_labels]` when the driver reads it, each
/// with the options set for it, then `[drivers]`.
pub fn capi_conf(capi_helm: &[(&str, String)], labels: &[(&str, String)], disabled_drivers: &[String]) -> String {
    let mut out = String::from(HEADER);
    out.push_str("\n[capi_helm]\n");
    out.push_str(&format!("kubeconfig_file = {KUBECONFIG}\n"));
    let option = |out: &mut String, key: &str, value: &str| {
        if value.is_empty() {
            // oslo.config reads `key =` as the empty string.
            out.push_str(&format!("{key} =\n"));
        } else {
            out.push_str(&format!("{key} = {value}\n"));
        }
    };
    for (key, value) in capi_helm {
        option(&mut out, key, value);
    }
    if !labels.is_empty() {
        out.push_str("\n[capi_helm_cluster_labels]\n");
        for (key, value) in labels {
            option(&mut out, key, value);
        }
    }
    if !disabled_drivers.is_empty() {
        out.push_str("\n[drivers]\n");
        out.push_str(&format!("disabled_drivers = {}\n", disabled_drivers.join(",")));
    }
    out
}

/// The runbook's drop-in: clear the packaged `ExecStart`, then run magnum's
/// own binary with magnum.conf and conf.d, so conf.d wins (FACTS.md). The
/// services' environment rides along: PATH with helm's directory, Juju's
/// proxies (values validated: no quote, backslash or space; `%` is a
/// systemd specifier and is doubled).
pub fn runbook_dropin(binary: &str, env: &ServiceEnv) -> String {
    let mut out = format!(
        "{HEADER}# service-override=runbook: read {CONF_D} after {MAGNUM_CONF}.\n[Service]\nExecStart=\nExecStart={binary} --config-file={MAGNUM_CONF} --config-dir={CONF_D}\n"
    );
    // systemd's default PATH has /usr/local/bin, where the charm puts
    // helm: set PATH only for a helm elsewhere (a drop-in unchanged since
    // an older charm restarts nothing on upgrade).
    if !env.extra_path.is_empty() {
        let mut path: Vec<&str> = SERVICE_PATH.to_vec();
        path.extend(env.extra_path.iter().map(String::as_str));
        out.push_str(&format!("Environment=\"PATH={}\"\n", path.join(":")));
    }
    for (name, value) in &env.vars {
        out.push_str(&format!("Environment=\"{name}={}\"\n", value.replace('%', "%%")));
    }
    out
}

/// What the services' environment needs beyond the packaging's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceEnv {
    /// Directories after systemd's default PATH (helm's, when elsewhere).
    pub extra_path: Vec<String>,
    /// Juju's proxies, upper- and lower-case.
    pub vars: Vec<(&'static str, String)>,
}

/// The charm's block in `/etc/default/magnum-*` starts and ends with these
/// lines; everything outside it is the operator's.
pub const BLOCK_BEGIN: &str = "# BEGIN magnum-capi";
pub const BLOCK_END: &str = "# END magnum-capi";

/// The file without the charm's block (a block left open by a crash runs
/// to the end of the file).
pub fn strip_block(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        match line.trim_end() {
            BLOCK_BEGIN => inside = true,
            BLOCK_END if inside => inside = false,
            _ if !inside => out.push_str(line),
            _ => {}
        }
    }
    out
}

/// `/etc/default/<service>` with the charm's block: the packaged init
/// script (openstack-pkg-tools' template, Debian and Ubuntu) resets PATH to
/// /sbin:/usr/sbin:/bin:/usr/bin, then sources this file, then execs the
/// service; a systemd `Environment=PATH` would not survive it.
///
/// `conf_dir` (service-override=packaged): the block also appends
/// `--config-dir` to the arguments the template composed before sourcing
/// this file (read in Debian bookworm's and trixie's magnum-api and
/// magnum-conductor init scripts): `DAEMON_ARGS`, which already hold
/// `--config-file=/etc/magnum/magnum.conf`, or, when the template runs the
/// app under uwsgi (`UWSGI_INI_APP` set), `PYARGV`, which it passes as
/// `--pyargv` to the app's own argument parser (`DAEMON_ARGS` are uwsgi's
/// there). Given after `--config-file` (or after oslo.config's default
/// files), the directory is read last and wins on a duplicate key.
pub fn env_default(existing: &str, service: &str, env: &ServiceEnv, conf_dir: bool) -> String {
    let mut out = strip_block(existing);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(BLOCK_BEGIN);
    // The `none` text is as older charms wrote it: unchanged bytes restart
    // nothing on upgrade.
    out.push_str(&if conf_dir {
        format!("\n# Managed by the magnum-capi charm (service-override=packaged): {CONF_D}\n# read after {MAGNUM_CONF}, helm's directory on {service}'s PATH and\n# Juju's proxy settings. Edits inside this block are overwritten; the rest of\n# the file is yours.\n")
    } else {
        format!("\n# Managed by the magnum-capi charm (service-override=none): helm's directory\n# on {service}'s PATH and Juju's proxy settings. Edits inside this block are\n# overwritten; the rest of the file is yours.\n")
    });
    let mut path = String::from("/usr/local/sbin:/usr/local/bin:$PATH");
    for d in &env.extra_path {
        path.push(':');
        path.push_str(d);
    }
    out.push_str(&format!("export PATH=\"{path}\"\n"));
    for (name, value) in &env.vars {
        out.push_str(&format!("export {name}='{value}'\n"));
    }
    if conf_dir {
        out.push_str(&format!(
            "if [ -n \"${{UWSGI_INI_APP:-}}\" ]; then\n    PYARGV=\"${{PYARGV:+$PYARGV }}--config-dir={CONF_D}\"\nelse\n    DAEMON_ARGS=\"${{DAEMON_ARGS:+$DAEMON_ARGS }}--config-dir={CONF_D}\"\nfi\n"
        ));
    }
    out.push_str(BLOCK_END);
    out.push('\n');
    out
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
        let c = capi_conf(
            &[("namespace_prefix", "capi".into())],
            &[],
            &["k8s_fedora_coreos_v1".into()],
        );
        assert!(c.starts_with("# Managed by the magnum-capi charm"));
        assert!(c.contains("[capi_helm]\nkubeconfig_file = /etc/magnum/kubeconfig\nnamespace_prefix = capi\n"));
        assert!(c.contains("[drivers]\ndisabled_drivers = k8s_fedora_coreos_v1\n"));
        assert!(!c.contains("enabled_drivers"));
        assert!(is_clean_ascii(&c));
        assert!(!capi_conf(&[], &[], &[]).contains("[drivers]"));
        assert!(!c.contains("[capi_helm_cluster_labels]"));
        let c = capi_conf(&[], &[("octavia_provider", "ovn".into())], &[]);
        assert!(
            c.ends_with("\n[capi_helm_cluster_labels]\noctavia_provider = ovn\n"),
            "{c}"
        );
    }

    #[test]
    fn dropin_resets_then_sets_execstart() {
        let d = runbook_dropin("/usr/bin/magnum-api", &ServiceEnv::default());
        let exec: Vec<&str> = d.lines().filter(|l| l.starts_with("ExecStart=")).collect();
        assert_eq!(exec, ["ExecStart=", "ExecStart=/usr/bin/magnum-api --config-file=/etc/magnum/magnum.conf --config-dir=/etc/magnum/magnum.conf.d"]);
        assert!(!d.contains("Environment="), "{d}");
        assert!(is_clean_ascii(&d));
    }

    #[test]
    fn dropin_carries_helm_and_the_proxies() {
        let env = ServiceEnv {
            extra_path: vec!["/snap/bin".into()],
            vars: vec![("HTTPS_PROXY", "http://u:p%40ss@squid:3128".into())],
        };
        let d = runbook_dropin("/usr/bin/magnum-conductor", &env);
        assert!(
            d.contains("Environment=\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin\"\n"),
            "{d}"
        );
        assert!(
            d.contains("Environment=\"HTTPS_PROXY=http://u:p%%40ss@squid:3128\"\n"),
            "{d}"
        );
    }

    #[test]
    fn the_default_file_keeps_what_is_not_ours() {
        let env = ServiceEnv {
            extra_path: vec![],
            vars: vec![("HTTP_PROXY", "http://squid:3128".into())],
        };
        let theirs = "# operator\nUSE_SYSLOG=yes\n";
        let once = env_default(theirs, "magnum-conductor", &env, false);
        assert!(once.starts_with(theirs), "{once}");
        assert!(once.contains("\nexport PATH=\"/usr/local/sbin:/usr/local/bin:$PATH\"\nexport HTTP_PROXY='http://squid:3128'\n# END magnum-capi\n"), "{once}");
        // Idempotent, and the block comes off cleanly.
        assert_eq!(env_default(&once, "magnum-conductor", &env, false), once);
        assert_eq!(strip_block(&once), theirs);
        assert_eq!(strip_block(&env_default("", "magnum-api", &env, false)), "");
        // No final newline in theirs; a block a crash left open.
        assert!(env_default("A=1", "magnum-api", &env, false).starts_with("A=1\n# BEGIN magnum-capi\n"));
        assert_eq!(strip_block("A=1\n# BEGIN magnum-capi\nexport PATH=x\n"), "A=1\n");
    }

    /// The packaged block, sourced by sh where openstack-pkg-tools' init
    /// template sources it (after composing DAEMON_ARGS; Debian bookworm's
    /// /etc/init.d/magnum-*): the conductor gets --config-dir after its
    /// --config-file; uwsgi's arguments stay and the app gets it in PYARGV,
    /// after an operator's own.
    #[test]
    fn packaged_block_appends_config_dir_where_the_template_reads_it() {
        let block = env_default("", "magnum-conductor", &ServiceEnv::default(), true);
        assert!(is_clean_ascii(&block), "{block}");
        assert!(
            block.starts_with("# BEGIN magnum-capi\n# Managed by the magnum-capi charm (service-override=packaged)"),
            "{block}"
        );
        let run = |before: &str| {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "{before}\n{block}\nprintf '%s|%s' \"$DAEMON_ARGS\" \"$PYARGV\""
                ))
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(
            run(r#"CONFIG_FILE=/etc/magnum/magnum.conf; DAEMON_ARGS="--config-file=${CONFIG_FILE} ${DAEMON_ARGS}""#),
            "--config-file=/etc/magnum/magnum.conf  --config-dir=/etc/magnum/magnum.conf.d|"
        );
        assert_eq!(
            run("UWSGI_INI_APP=/usr/bin/magnum-api-wsgi; DAEMON_ARGS=\"--http-socket :9511 --ini /etc/magnum/magnum-api-uwsgi.ini\""),
            "--http-socket :9511 --ini /etc/magnum/magnum-api-uwsgi.ini|--config-dir=/etc/magnum/magnum.conf.d"
        );
        assert_eq!(
            run("UWSGI_INI_APP=/usr/bin/magnum-api-wsgi; PYARGV=--debug"),
            "|--debug --config-dir=/etc/magnum/magnum.conf.d"
        );
        // The `none` block has no argument, and its text is as before.
        let none = env_default("", "magnum-api", &ServiceEnv::default(), false);
        assert!(!none.contains("--config-dir"), "{none}");
        assert_eq!(
            none,
            "# BEGIN magnum-capi\n# Managed by the magnum-capi charm (service-override=none): helm's directory\n# on magnum-api's PATH and Juju's proxy settings. Edits inside this block are\n# overwritten; the rest of the file is yours.\nexport PATH=\"/usr/local/sbin:/usr/local/bin:$PATH\"\n# END magnum-capi\n"
        );
    }
}
