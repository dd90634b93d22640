//! The charm's YAML and the Makefile's packaging lists agree with what the
//! binary handles.

mod support;

use std::collections::BTreeSet;

use serde_json::json;
use support::Unit;

fn yaml(file: &str) -> serde_yaml::Value {
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn makefile_list(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("{}/Makefile", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name} :=")))
        .unwrap_or_else(|| panic!("Makefile has no {name}"));
    line.split_once(":=")
        .unwrap()
        .1
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn metadata_makes_a_juju_info_subordinate() {
    let m = yaml("metadata.yaml");
    assert_eq!(m["name"], "magnum-capi");
    assert_eq!(m["subordinate"], true);
    assert_eq!(m["requires"]["juju-info"]["interface"], "juju-info");
    assert_eq!(m["requires"]["juju-info"]["scope"], "container");
    for key in ["summary", "description", "maintainers", "tags"] {
        assert!(!m[key].is_null(), "metadata.yaml has no {key}");
    }
    // Only addresses that exist (issue 19, item 12): the project has no
    // public repository or tracker yet, so none is named.
    for key in ["docs", "issues", "source", "website"] {
        assert!(m[key].is_null(), "metadata.yaml names {key}: {:?}", m[key]);
    }
}

#[test]
fn every_config_option_is_typed_defaulted_and_hyphenated() {
    let c = yaml("config.yaml");
    let options = c["options"].as_mapping().unwrap();
    for (name, opt) in options {
        let name = name.as_str().unwrap();
        assert!(!name.contains('_'), "{name}: hyphens only");
        assert!(
            ["string", "int", "boolean", "float", "secret"].contains(&opt["type"].as_str().unwrap_or("")),
            "{name}: type"
        );
        assert!(!opt["default"].is_null(), "{name}: charm-proof wants a default");
        assert!(
            opt["description"].as_str().is_some_and(|d| d.len() > 10),
            "{name}: description"
        );
    }
    assert_eq!(c["options"]["driver-version"]["default"], "1.4.0");
    assert_eq!(c["options"]["kubeconfig-secret"]["default"], "");
    // Juju >= 3.1 checks a secret option's URI at `juju config` time, and
    // the Juju, ops and charmcraft docs ask for the type (issue 19, item 3).
    for name in ["kubeconfig-secret", "openstack-credentials-secret"] {
        assert_eq!(c["options"][name]["type"], "secret", "{name}");
    }
    // Long or read-only actions must not hold the machine lock (Juju's
    // runaction.go NeedsGlobalMachineLock: every action without it does).
    let a = yaml("actions.yaml");
    for name in ["verify", "smoketest"] {
        assert_eq!(a[name]["parallel"], true, "{name}");
    }
}

#[test]
fn every_packaged_hook_is_handled() {
    for hook in makefile_list("HOOKS") {
        let unit = Unit::empty();
        let run = unit.hook(&hook).run();
        assert!(!run.stderr.contains("has no handler"), "{hook}: {}", run.stderr);
    }
}

#[test]
fn the_packaged_actions_are_the_declared_ones_and_route() {
    let declared: BTreeSet<String> = yaml("actions.yaml")
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let packaged: BTreeSet<String> = makefile_list("ACTIONS").into_iter().collect();
    assert_eq!(declared, packaged);
    for action in declared {
        let unit = Unit::new();
        unit.action(&action, json!({})).run();
        let failed = unit.action_failed().unwrap_or_default();
        assert!(!failed.contains("unknown action"), "{action}: {failed}");
    }
}
