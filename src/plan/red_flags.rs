//! The runbook's journal red-flag table (section 9), plus tracebacks and
//! config errors: which lines mean the driver or the config is broken, and
//! what the operator does about each.

pub struct RedFlag {
    pub pattern: &'static str,
    pub cause: &'static str,
    pub fix: &'static str,
}

pub const RED_FLAGS: [RedFlag; 7] = [
    RedFlag {
        pattern: "No module named",
        cause: "the driver is not importable",
        fix: "check `pip3 show magnum-capi-helm` on the unit; juju config magnum-capi driver-version=<version> to reinstall",
    },
    RedFlag {
        pattern: "No 'k8s_capi_helm_v1' driver",
        cause: "the k8s_capi_helm_v1 entry point is missing",
        fix: "the installed magnum-capi-helm has no k8s_capi_helm_v1 entry point; pick a released version with juju config magnum-capi driver-version=1.1.0",
    },
    RedFlag {
        pattern: "NoSuchGroupError",
        cause: "a config value refers to an option magnum does not know",
        fix: "remove `$` references from the magnum-capi config values",
    },
    RedFlag {
        pattern: "ConfigFileParseError",
        cause: "a config file does not parse",
        fix: "check /etc/magnum/magnum.conf.d/*.conf for stray bytes (must be ASCII) and permissions (root:magnum 0640)",
    },
    RedFlag {
        pattern: "ConfigFileValueError",
        cause: "a config value has the wrong type",
        fix: "check the magnum-capi config values (juju config magnum-capi)",
    },
    RedFlag {
        pattern: "Failed to parse",
        cause: "a config file does not parse",
        fix: "check /etc/magnum/magnum.conf.d/*.conf for stray bytes (must be ASCII) and permissions (root:magnum 0640)",
    },
    RedFlag {
        pattern: "Traceback (most recent call last)",
        cause: "a service raised an exception",
        fix: "read `journalctl -u magnum-api -u magnum-conductor` on the unit around the restart",
    },
];

/// The first red-flag line in a journal excerpt, with its flag. Tracebacks
/// come last in the table so the line that explains one wins over it.
pub fn first_red_flag(journal: &str) -> Option<(&'static RedFlag, String)> {
    for flag in RED_FLAGS.iter() {
        if let Some(line) = journal.lines().find(|l| l.contains(flag.pattern)) {
            let line = line.trim();
            let shown: String = line.chars().take(200).collect();
            return Some((flag, shown));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_explaining_line_wins_over_the_traceback() {
        let j = "Started magnum-api\nTraceback (most recent call last):\n  File x\nImportError: No module named magnum_capi_helm\n";
        let (flag, line) = first_red_flag(j).unwrap();
        assert_eq!(flag.cause, "the driver is not importable");
        assert_eq!(line, "ImportError: No module named magnum_capi_helm");
    }

    #[test]
    fn a_clean_journal_has_no_flag() {
        assert!(first_red_flag("Started magnum-api.\nmagnum-api listening on 9511\n").is_none());
    }
}
