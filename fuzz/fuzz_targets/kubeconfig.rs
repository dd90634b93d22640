//! Kubeconfig parsing and checking never panics, whatever the bytes, and a
//! kubeconfig that passes validation yields a target to connect to.
#![no_main]

use libfuzzer_sys::fuzz_target;
use magnum_capi::plan::kubeconfig::{target, validate};

fuzz_target!(|data: &[u8]| {
    if validate(data, 1_796_515_200).is_ok() {
        let t = target(data).expect("a valid kubeconfig has a target");
        assert!(t.server.starts_with("https://"));
    }
    let _ = target(data);
});
