//! Config validation never panics; whatever it accepts renders to a
//! 99-capi.conf of printable ASCII whose values an INI reader reads back
//! exactly as the settings hold them.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use magnum_capi::plan::compat::Layout;
use magnum_capi::plan::settings::Settings;
use magnum_capi::plan::{ini, render};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = serde_json::from_slice::<BTreeMap<String, serde_json::Value>>(data) else { return };
    let Ok(settings) = Settings::parse(&raw) else { return };
    // Each release's layout: every option it reads lands in its section.
    for layout in [Layout::V1_0, Layout::V1_4] {
        let (mut capi, mut labels) = (Vec::new(), Vec::new());
        for o in &settings.driver_options {
            match o.place.section(layout) {
                Some("capi_helm") => capi.push((o.key, o.value.clone())),
                Some(_) => labels.push((o.key, o.value.clone())),
                None => {}
            }
        }
        let conf = render::capi_conf(&capi, &labels, &[]);
        assert!(render::is_clean_ascii(&conf), "{conf:?}");
        let read = ini::values(&conf);
        for o in &settings.driver_options {
            let Some(section) = o.place.section(layout) else { continue };
            let got = read.iter().find(|(s, k, _)| s == section && k == o.key).map(|(_, _, v)| v);
            assert_eq!(got, Some(&o.value), "{} does not read back from {conf:?}", o.key);
        }
    }
});
