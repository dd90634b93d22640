//! Any string either is refused as a config value or renders into
//! 99-capi.conf so that an INI reader reads back exactly it (with `$`
//! escaped as oslo.config wants), in its own section and key: no line
//! break, section or key can be injected.
#![no_main]

use libfuzzer_sys::fuzz_target;
use magnum_capi::plan::settings::{check_ini_value, escape_dollars};
use magnum_capi::plan::{ini, render};

fuzz_target!(|value: &str| {
    if check_ini_value("namespace-prefix", value).is_err() {
        return;
    }
    let value = value.trim();
    let want = escape_dollars(value);
    let conf = render::capi_conf(&[("namespace_prefix", want.clone())], &[], &["k8s_fedora_coreos_v1".to_string()]);
    assert!(render::is_clean_ascii(&conf));
    let read = ini::values(&conf);
    let keys: Vec<(&str, &str)> = read.iter().map(|(s, k, _)| (s.as_str(), k.as_str())).collect();
    assert_eq!(keys, [("capi_helm", "kubeconfig_file"), ("capi_helm", "namespace_prefix"), ("drivers", "disabled_drivers")], "{conf:?}");
    assert_eq!(read[1].2, want, "{conf:?}");
});
