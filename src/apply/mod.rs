//! The imperative shell's hands: the only code that changes the unit.
//! Atomic file writes (`files`), helm's version once installed (`helm`),
//! pip and the import check that judges the install just made (`pip`),
//! systemd's verbs (`systemd`: daemon-reload, restart, reset-failed).
//! Reading the unit is `unit`; deciding is `plan`.

pub mod files;
pub mod helm;
pub mod pip;
pub mod systemd;
