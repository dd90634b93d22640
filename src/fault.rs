//! Fault injection, for tests only (cargo feature `faults`, off in the
//! release charm): the process aborts, as `kill -9` would stop it, at the
//! named point given in `MAGNUM_CAPI_FAULT`. With `MAGNUM_CAPI_FAULT_LOG`
//! set, every point reached is appended to that file, so a test can list
//! the points of a hook and crash at each in turn.

#[cfg(feature = "faults")]
pub fn point(name: &str) {
    if let Some(log) = std::env::var_os("MAGNUM_CAPI_FAULT_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(f, "{name}");
        }
    }
    if std::env::var("MAGNUM_CAPI_FAULT").as_deref() == Ok(name) {
        eprintln!("fault injected at {name}");
        std::process::abort();
    }
}

#[cfg(not(feature = "faults"))]
#[inline(always)]
pub fn point(_name: &str) {}

/// A short, stable label for a file: its directory's name and its own.
pub fn label(path: &std::path::Path) -> String {
    let mut parts: Vec<String> = path
        .iter()
        .rev()
        .take(2)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    parts.reverse();
    parts.join("/")
}
