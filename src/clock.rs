//! The wall clock, as the charm records times: whole seconds since the
//! epoch (journal marks, rolling-restart nonces and deadlines). 0 if the
//! clock is before 1970.

/// The time since the epoch (zero if the clock is before 1970).
pub fn since_epoch() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

pub fn epoch_secs() -> u64 {
    since_epoch().as_secs()
}

/// The same with the fraction, for arithmetic with systemd's monotonic
/// timestamps (verify: when a service started).
pub fn epoch_secs_f64() -> f64 {
    since_epoch().as_secs_f64()
}
