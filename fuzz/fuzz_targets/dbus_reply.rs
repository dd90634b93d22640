//! The charm's D-Bus reader never panics on what a bus sends: any bytes,
//! as a stream (authentication line, then messages) and as one message
//! whose body is read as a Get reply and as a ListUnitsByNames reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use magnum_capi::unit::dbus::wire::{Message, Reader};

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    if r.auth_ok().is_ok() {
        while let Ok(m) = r.next_message() {
            let _ = m.variant();
            let _ = m.list_units();
        }
    }
    if let Ok(m) = Message::parse(data.to_vec()) {
        let _ = m.variant();
        let _ = m.list_units();
    }
});
