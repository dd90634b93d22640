//! Logging: stderr always (Juju records a hook's stderr in its log), and the
//! unit's journal when its socket exists under the root. Never a `juju-log`
//! spawn per line.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::unit::Root;

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

pub fn init(root: &Root) {
    let level = if std::env::var_os("MAGNUM_CAPI_DEBUG").is_some() {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_filter(level);
    // tracing-journald always talks to the host socket; only use it when the
    // unit we manage is the host (a test root has no socket).
    let journald = if root.path(JOURNAL_SOCKET).exists() && root.dir() == std::path::Path::new("/") {
        tracing_journald::layer()
            .ok()
            .map(|l| l.with_syslog_identifier("magnum-capi".into()).with_filter(level))
    } else {
        None
    };
    let _ = tracing_subscriber::registry().with(stderr).with(journald).try_init();
}
