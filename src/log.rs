//! Logging as Juju reads a hook's output (tests/fakes/research/juju-3.6-
//! hook-tools.md, item 9): stdout is logged at DEBUG, stderr at WARNING.
//! So a hook's routine lines go to stdout, only warnings and errors to
//! stderr, and the few lines an operator needs at INFO (what changed, a
//! restart, a rollback) are collected with `note!` and sent as one
//! `juju-log` call at the end of a hook that changed something: a no-op
//! hook spawns nothing for logging. An action's output is its result
//! (`juju run` shows its stdout and stderr), so an action logs to the
//! journal only. The unit's journal gets everything when its socket exists
//! under the root.

use std::sync::Mutex;

use tracing::level_filters::LevelFilter;
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::unit::Root;

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The operator's lines of this hook, in order, with their level.
static NOTES: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());
/// How the hook ended (its status), the last line of its juju-log.
static ENDING: Mutex<String> = Mutex::new(String::new());

/// Record how the hook ended: logged now, and sent with the notes.
pub fn ending(line: String) {
    tracing::info!("{line}");
    if let Ok(mut e) = ENDING.lock() {
        *e = line;
    }
}

/// Log at INFO (ERROR: `note!(error: ...)`) and keep the line for the one
/// `juju-log` of this hook.
#[macro_export]
macro_rules! note {
    (error: $($t:tt)*) => {{
        let m = format!($($t)*);
        tracing::error!("{m}");
        $crate::log::remember(tracing::Level::ERROR, m);
    }};
    ($($t:tt)*) => {{
        let m = format!($($t)*);
        tracing::info!("{m}");
        $crate::log::remember(tracing::Level::INFO, m);
    }};
}

pub fn remember(level: Level, line: String) {
    if let Ok(mut notes) = NOTES.lock() {
        notes.push((level, line));
    }
}

/// The one `juju-log` of a hook that noted something: its lines joined,
/// then how the hook ended, at ERROR if any line was an error. Nothing
/// when the hook noted nothing.
pub fn juju_log_line(notes: &[(Level, String)], ending: &str) -> Option<(&'static str, String)> {
    if notes.is_empty() {
        return None;
    }
    let level = if notes.iter().any(|(l, _)| *l == Level::ERROR) {
        "ERROR"
    } else {
        "INFO"
    };
    let mut lines: Vec<&str> = notes.iter().map(|(_, m)| m.as_str()).collect();
    if !ending.is_empty() {
        lines.push(ending);
    }
    Some((level, crate::juju::one_line(&lines.join("\n"))))
}

/// Send this hook's notes (see `juju_log_line`). Best effort: a hook does
/// not fail because juju-log did.
pub fn flush() {
    let notes = NOTES.lock().map(|mut n| std::mem::take(&mut *n)).unwrap_or_default();
    let ending = ENDING.lock().map(|e| e.clone()).unwrap_or_default();
    if let Some((level, line)) = juju_log_line(&notes, &ending) {
        if let Err(e) = crate::juju::HookTools::default().juju_log(level, &line) {
            tracing::warn!("{e:#}");
        }
    }
}

pub fn init(root: &Root, action: bool) {
    let debug = std::env::var_os("MAGNUM_CAPI_DEBUG").is_some();
    let level = if debug { LevelFilter::DEBUG } else { LevelFilter::INFO };
    // Hooks: routine lines on stdout (Juju: DEBUG), warnings and errors on
    // stderr (Juju: WARNING). Actions: neither, unless debugging.
    let stdout = (!action).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_filter(tracing_subscriber::filter::filter_fn(|m| *m.level() > Level::WARN))
            .with_filter(level)
    });
    let stderr = (!action || debug).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_filter(if action { level } else { LevelFilter::WARN })
    });
    // tracing-journald always talks to the host socket; only use it when the
    // unit we manage is the host (a test root has no socket).
    let journald = if root.path(JOURNAL_SOCKET).exists() && root.dir() == std::path::Path::new("/") {
        tracing_journald::layer()
            .ok()
            .map(|l| l.with_syslog_identifier("magnum-capi".into()).with_filter(level))
    } else {
        None
    };
    let _ = tracing_subscriber::registry()
        .with(stdout)
        .with(stderr)
        .with(journald)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_for_the_operator_or_none() {
        assert_eq!(juju_log_line(&[], "active: ready"), None);
        let notes = vec![
            (
                Level::INFO,
                "writing /etc/magnum/magnum.conf.d/99-capi.conf".to_string(),
            ),
            (Level::INFO, "restarting magnum-api, magnum-conductor".to_string()),
        ];
        assert_eq!(
            juju_log_line(&notes, "hook config-changed: active: ready"),
            Some((
                "INFO",
                "writing /etc/magnum/magnum.conf.d/99-capi.conf; restarting magnum-api, magnum-conductor; hook config-changed: active: ready".to_string()
            ))
        );
        let mut bad = notes.clone();
        bad.push((Level::ERROR, "restart unhealthy: x; rolling back".into()));
        assert_eq!(juju_log_line(&bad, "").unwrap().0, "ERROR");
    }
}
