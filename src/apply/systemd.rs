//! systemd's verbs, through `systemctl` found on PATH: daemon-reload,
//! restart, reset-failed. Each is a fault point (src/fault.rs). Reading
//! the services' state and journal is unit::services.

use anyhow::Result;

/// systemctl with a fault point before and after (src/fault.rs).
fn run(program: &str, args: &[&str]) -> Result<String> {
    crate::fault::point(args[0]);
    let out = crate::unit::services::run(program, args);
    crate::fault::point(&format!("{}:done", args[0]));
    out
}

fn units(services: &[&str]) -> Vec<String> {
    services.iter().map(|s| format!("{s}.service")).collect()
}

pub fn daemon_reload() -> Result<()> {
    run("systemctl", &["daemon-reload"]).map(drop)
}

fn each(verb: &str, services: &[&str]) -> Result<()> {
    if services.is_empty() {
        return Ok(());
    }
    let units = units(services);
    let mut args = vec![verb];
    args.extend(units.iter().map(String::as_str));
    run("systemctl", &args).map(drop)
}

/// A start job systemd ran and that failed (as opposed to systemctl not
/// reaching systemd): the service refused the change. One line: which
/// service and why, in systemd's words (`job_failure`).
#[derive(Debug)]
pub struct JobFailed(pub String);

impl std::fmt::Display for JobFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JobFailed {}

/// Restart. A failed start job is a `JobFailed` error; any other failure
/// (systemd unreachable) is an error of its own.
pub fn restart(services: &[&str]) -> Result<()> {
    each("restart", services).map_err(|e| {
        let full = format!("{e:#}");
        tracing::warn!("{}", full.replace('\n', " "));
        if full.contains("Job for ") {
            anyhow::Error::new(JobFailed(job_failure(&full)))
        } else {
            e
        }
    })
}

/// systemctl's job failure (systemd's `log_job_error_with_service_result`:
/// `Job for X.service failed because Y.` then `See "systemctl status
/// X.service" and "journalctl -xeu X.service" for details.`) as one line:
/// `X: Y`. Anything else: its first line.
pub fn job_failure(text: &str) -> String {
    let line = text
        .lines()
        .find_map(|l| l.find("Job for ").map(|i| &l[i..]))
        .unwrap_or_else(|| text.lines().next().unwrap_or(""));
    let Some(rest) = line.strip_prefix("Job for ") else {
        return line.trim().to_string();
    };
    let (unit, why) = match rest.split_once(" failed because ") {
        Some((u, w)) => (u, w),
        None => match rest.split_once(" failed") {
            Some((u, w)) => (u, w.trim_start_matches(['.', ' '])),
            None => (rest, ""),
        },
    };
    let unit = unit.trim_end_matches(".service");
    let why = why.trim().trim_end_matches('.');
    if why.is_empty() {
        format!("{unit}: start job failed")
    } else {
        format!("{unit}: start job failed: {why}")
    }
}

/// Clear a start-limit `failed` state so a restart is accepted (FACTS.md).
/// Best effort: systemd refuses it for a unit it has unloaded (an inactive
/// service nobody references), which has nothing to clear anyway.
pub fn reset_failed(services: &[&str]) {
    if let Err(e) = each("reset-failed", services) {
        tracing::debug!("{e:#}");
    }
}
