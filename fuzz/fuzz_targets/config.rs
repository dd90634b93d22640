//! Config validation never panics; whatever it accepts renders to a
//! 99-capi.conf of printable ASCII whose values an INI reader reads back
//! exactly as the settings hold them.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use magnum_capi::plan::settings::Settings;
use magnum_capi::plan::{ini, render};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = serde_json::from_slice::<BTreeMap<String, serde_json::Value>>(data) else { return };
    let Ok(settings) = Settings::parse(&raw) else { return };
    let conf = render::capi_conf(&settings.capi_helm, &[]);
    assert!(render::is_clean_ascii(&conf), "{conf:?}");
    let read = ini::values(&conf);
    for (key, value) in &settings.capi_helm {
        let got = read.iter().find(|(s, k, _)| s == "capi_helm" && k == key).map(|(_, _, v)| v);
        assert_eq!(got, Some(value), "{key} does not read back from {conf:?}");
    }
});
