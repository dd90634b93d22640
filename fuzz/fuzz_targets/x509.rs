//! The certificate and key reader never panics, whatever the bytes: a
//! kubeconfig's certificate reaches it through verify and every hook that
//! reads the secret (issue 23, item 2: a non-ASCII date once panicked it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use magnum_capi::plan::x509::{date, not_after, parse, public_key, KeyForm};

fuzz_target!(|data: &[u8]| {
    if let Some(cert) = parse(data) {
        assert_eq!(not_after(data), Some(cert.not_after));
        let d = date(cert.not_after);
        assert!(!d.is_empty());
    }
    for form in [KeyForm::Pkcs1, KeyForm::Sec1, KeyForm::Pkcs8] {
        let _ = public_key(form, data);
    }
});
