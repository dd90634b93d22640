//! The services as systemd shows them, read only: their state over D-Bus
//! (unit::dbus, no spawn), falling back to one `systemctl show` when the
//! bus cannot be reached; systemd's invocation links; the journal through
//! `journalctl`; and the watch of a restart through its settle window.
//! The verbs that change them (restart, daemon-reload) are in
//! apply::systemd; what the readings mean is decided in plan::health.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::dbus;
use super::Root;
pub use crate::plan::health::ServiceState;
use crate::plan::health::{self, Verdict};

pub const SHOW_PROPERTIES: &str = "Id,ActiveState,SubState,Result,NRestarts,ExecMainStartTimestampMonotonic";

/// Set once D-Bus failed in this process: later calls go straight to
/// systemctl, and the fallback is logged once.
static DBUS_DOWN: AtomicBool = AtomicBool::new(false);

/// Each service's state, in the order asked.
pub fn show(root: &Root, services: &[&str]) -> Result<Vec<ServiceState>> {
    if !DBUS_DOWN.load(Ordering::Relaxed) {
        match dbus::show(root, services, dbus::Detail::Full) {
            Ok(states) => return Ok(states),
            Err(e) => {
                DBUS_DOWN.store(true, Ordering::Relaxed);
                tracing::info!("systemd over D-Bus unavailable ({e:#}); using systemctl show");
            }
        }
    }
    systemctl_show(services)
}

/// Run `program` from PATH and return its stdout; its stderr in the error.
/// The readers here (systemctl show, journalctl) and apply::systemd's
/// verbs.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{program}`: is it installed and on PATH?"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Parse `systemctl show` output for several units (blank-line separated).
pub fn parse_show(text: &str) -> Vec<ServiceState> {
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut s = ServiceState::default();
        for line in block.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "Id" => s.id = v.to_string(),
                "ActiveState" => s.active_state = v.to_string(),
                "SubState" => s.sub_state = v.to_string(),
                "Result" => s.result = v.to_string(),
                "NRestarts" => s.n_restarts = v.parse().unwrap_or(0),
                "ExecMainStartTimestampMonotonic" => s.exec_main_start_monotonic = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        out.push(s);
    }
    out
}

fn units(services: &[&str]) -> Vec<String> {
    services.iter().map(|s| format!("{s}.service")).collect()
}

fn systemctl_show(services: &[&str]) -> Result<Vec<ServiceState>> {
    let units = units(services);
    let mut args = vec!["show", "-p", SHOW_PROPERTIES];
    args.extend(units.iter().map(String::as_str));
    Ok(parse_show(&run("systemctl", &args)?))
}

/// Any properties, as `name=value` maps per unit (blank-line separated).
pub fn show_properties(services: &[&str], properties: &str) -> Result<Vec<std::collections::BTreeMap<String, String>>> {
    let units = units(services);
    let mut args = vec!["show", "-p", properties];
    args.extend(units.iter().map(String::as_str));
    let text = run("systemctl", &args)?;
    Ok(text
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            block
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect())
}

/// A point in the services' journal: lines after it are the new ones.
/// The cursor of the last line, when the journal has one (exact); else the
/// wall-clock second (lines of that second from before count too). And
/// the invocations running at the mark: what they log after it (a Python
/// service logs as the restart stops it) is the old config's, not the new
/// one's (found on a real unit: a healthy repair was rolled back for the
/// old instance's dying words).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalMark {
    pub cursor: Option<String>,
    pub epoch: u64,
    pub old_invocations: Vec<String>,
    /// When not empty: the invocations started by this restart (seen in
    /// systemd's links while it was watched); only their lines count. An
    /// instance that started between the mark and the restart (a crash
    /// loop's) is in neither list, and logs as the restart stops it.
    pub new_invocations: Vec<String>,
}

/// The invocation ids systemd links for these services now (systemd >=
/// 232: /run/systemd/units/invocation:<unit>), no spawn.
pub fn invocations(root: &Root, services: &[&str]) -> Vec<String> {
    services
        .iter()
        .filter_map(|s| std::fs::read_link(root.path(crate::plan::paths::invocation_link(s))).ok())
        .map(|id| id.to_string_lossy().into_owned())
        .filter(|id| !id.is_empty())
        .collect()
}

fn unit_args(services: &[&str]) -> Vec<String> {
    units(services)
        .into_iter()
        .flat_map(|u| ["-u".to_string(), u])
        .collect()
}

/// Mark the journal now (one journalctl run), before a restart. The
/// running invocations are read from systemd's invocation links
/// (/run/systemd/units/invocation:<unit>, systemd >= 232), no spawn.
pub fn journal_mark(root: &Root, services: &[&str]) -> JournalMark {
    let epoch = crate::clock::epoch_secs();
    let old_invocations = invocations(root, services);
    let mut args = vec![
        "--no-pager".to_string(),
        "-o".into(),
        "cat".into(),
        "-n".into(),
        "1".into(),
        "--show-cursor".into(),
    ];
    args.extend(unit_args(services));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cursor = run("journalctl", &args).ok().and_then(|out| {
        out.lines()
            .rev()
            .find_map(|l| l.strip_prefix("-- cursor: ").map(|c| c.trim().to_string()))
    });
    JournalMark {
        cursor,
        epoch,
        old_invocations,
        ..JournalMark::default()
    }
}

/// The services' journal after a mark, without what the invocations
/// running at the mark logged (when the mark knows them).
pub fn journal_after(services: &[&str], mark: &JournalMark) -> Result<String> {
    let json = !mark.old_invocations.is_empty() || !mark.new_invocations.is_empty();
    let mut args = vec!["--no-pager".to_string(), "-o".into()];
    if json {
        args.extend(["json".into(), "--output-fields=MESSAGE,_SYSTEMD_INVOCATION_ID".into()]);
    } else {
        args.push("cat".into());
    }
    match &mark.cursor {
        Some(c) => args.push(format!("--after-cursor={c}")),
        None => args.extend(["--since".to_string(), format!("@{}", mark.epoch)]),
    }
    args.extend(unit_args(services));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run("journalctl", &args)?;
    Ok(if json {
        messages_not_of(&out, &mark.old_invocations, &mark.new_invocations)
    } else {
        out
    })
}

/// `journalctl -o json` lines to messages, one a line, leaving out the
/// entries of the `old` invocations and, when `new` is not empty, of any
/// invocation not in it (lines without an invocation, systemd's own, are
/// kept). MESSAGE is a string, or an array of bytes when it is not UTF-8
/// (journalctl(1), "json").
fn messages_not_of(json_lines: &str, old: &[String], new: &[String]) -> String {
    let mut text = String::new();
    for line in json_lines.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(id) = entry["_SYSTEMD_INVOCATION_ID"].as_str() {
            if old.iter().any(|o| o == id) || !(new.is_empty() || new.iter().any(|n| n == id)) {
                continue;
            }
        }
        match &entry["MESSAGE"] {
            serde_json::Value::String(m) => text.push_str(m),
            serde_json::Value::Array(bytes) => {
                let bytes: Vec<u8> = bytes.iter().filter_map(|b| b.as_u64()).map(|b| b as u8).collect();
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
            _ => continue,
        }
        text.push('\n');
    }
    text
}

/// The services' journal since a wall-clock time (seconds since the epoch).
pub fn journal_since(services: &[&str], since_epoch: u64) -> Result<String> {
    journal_after(
        services,
        &JournalMark {
            epoch: since_epoch,
            ..JournalMark::default()
        },
    )
}

/// Watch services just restarted (journal marked at `since`) through the
/// settle window: `None` when healthy, else the verdict. systemd's states
/// are sampled until the window ends or one is unhealthy
/// (plan::health::assess), then the journal since the restart is read for
/// the runbook's red flags.
pub fn settle(root: &Root, services: &[&str], settle: Duration, since: &JournalMark) -> Result<Option<Verdict>> {
    let deadline = Instant::now() + settle;
    let mut problem;
    // The instances this restart started, as systemd links them while it
    // is watched: only their journal lines count.
    let mut since = since.clone();
    // systemd flushes NRestarts on a restart it did not make itself, except
    // when the restart job lands while the unit waits in `auto-restart` (a
    // crash loop the restart is meant to end): then the count the loop
    // left stays (seen on a real unit: NRestarts=1 on a healthy repair).
    // Only restarts counted after the first look are this restart's.
    let mut before: Option<Vec<u32>> = None;
    loop {
        for id in invocations(root, services) {
            if !since.old_invocations.contains(&id) && !since.new_invocations.contains(&id) {
                since.new_invocations.push(id);
            }
        }
        let states = show(root, services)?;
        let baseline = before.get_or_insert_with(|| states.iter().map(|s| s.n_restarts).collect());
        problem = health::assess(&states, baseline);
        let settled = Instant::now() >= deadline;
        if problem.is_some() || settled {
            if problem.is_none() {
                problem = health::still_starting(&states);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(500).min(deadline.saturating_duration_since(Instant::now())));
    }
    let journal = journal_after(services, &since).unwrap_or_default();
    Ok(health::verdict(services, problem, &journal))
}

/// A restart systemd refused at once (an ExecStartPre failed, the unit
/// cannot load, the start limit was hit): unhealthy like any other, with
/// the journal's red flag when there is one.
pub fn refused(services: &[&str], since: &JournalMark, why: &anyhow::Error) -> Verdict {
    let journal = journal_after(services, since).unwrap_or_default();
    health::verdict(services, Some(format!("{why:#}")), &journal).expect("a refusal is a problem")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// journalctl -o json as journald 252 writes it (checked on the real
    /// unit): the service's own lines carry _SYSTEMD_INVOCATION_ID,
    /// systemd's do not.
    #[test]
    fn only_the_new_instances_lines_count() {
        let json = concat!(
            r#"{"__CURSOR":"s=1;i=1","MESSAGE":"old: at stop","_SYSTEMD_INVOCATION_ID":"aaaa"}"#,
            "\n",
            r#"{"__CURSOR":"s=1;i=2","MESSAGE":"between: at stop","_SYSTEMD_INVOCATION_ID":"bbbb"}"#,
            "\n",
            r#"{"__CURSOR":"s=1;i=3","MESSAGE":"Started magnum-conductor.service"}"#,
            "\n",
            r#"{"__CURSOR":"s=1;i=4","MESSAGE":"new: red flag","_SYSTEMD_INVOCATION_ID":"cccc"}"#,
            "\n",
            r#"{"__CURSOR":"s=1;i=5","MESSAGE":[104,105],"_SYSTEMD_INVOCATION_ID":"cccc"}"#,
            "\n",
        );
        let old = vec!["aaaa".to_string()];
        assert_eq!(
            messages_not_of(json, &old, &[]),
            "between: at stop\nStarted magnum-conductor.service\nnew: red flag\nhi\n"
        );
        assert_eq!(
            messages_not_of(json, &old, &["cccc".to_string()]),
            "Started magnum-conductor.service\nnew: red flag\nhi\n"
        );
    }

    #[test]
    fn show_output_for_two_units() {
        let t = "Id=magnum-api.service\nActiveState=active\nSubState=running\nResult=success\nNRestarts=0\nExecMainStartTimestampMonotonic=123\n\nId=magnum-conductor.service\nActiveState=activating\nSubState=auto-restart\nResult=exit-code\nNRestarts=3\nExecMainStartTimestampMonotonic=456\n";
        let s = parse_show(t);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].active_state, "active");
        assert_eq!(s[1].n_restarts, 3);
        assert_eq!(s[1].sub_state, "auto-restart");
    }
}
