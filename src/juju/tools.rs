//! Spawning the hook tools. One method per tool; each returns what the tool
//! said, parsed, or an error naming the tool, its exit code and its stderr.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use super::action::{valid_key, ActionResults};
use super::status::Status;

/// Why `secret-get` gave nothing. The operator's fix differs for each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// No secret with that URI exists (or it was removed).
    NotFound,
    /// The secret exists but this application was not granted it.
    NotGranted,
    /// Anything else: the tool's own words (never the content).
    Other(String),
}

/// The hook tools of the running hook. What it holds: the tools a hook
/// started ahead (`prefetch_config`, `prefetch_secret`), until the hook
/// asks for exactly that call.
#[derive(Debug, Default)]
pub struct HookTools {
    ahead: std::sync::Mutex<Ahead>,
}

/// Output of one tool run.
struct Output {
    ok: bool,
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

fn command(tool: &str, args: &[&str]) -> Command {
    let mut c = Command::new(tool);
    c.args(args).stdin(Stdio::null());
    c
}

fn cannot_run(tool: &str) -> String {
    format!("cannot run hook tool `{tool}`: is this running inside a Juju hook (PATH has the hook tools)?")
}

/// Hook tools started ahead (`prefetch_*`), not yet waited for, with the
/// arguments they were started with.
type Ahead = Vec<(String, Vec<String>, std::process::Child)>;

fn secret_args(uri: &str, refresh: bool) -> Vec<&str> {
    let mut args = vec!["--format=json"];
    if refresh {
        args.push("--refresh");
    }
    args.push(uri);
    args
}

impl HookTools {
    /// Start a tool now, for the hook to read when it asks for exactly this
    /// call: it runs while the charm does other work. If the start fails, the
    /// call runs the usual way when it comes.
    fn prefetch(&self, tool: &str, args: &[&str]) {
        let child = command(tool, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        if let (Ok(child), Ok(mut ahead)) = (child, self.ahead.lock()) {
            ahead.push((tool.into(), args.iter().map(|a| a.to_string()).collect(), child));
        }
    }

    /// Start `config-get --format=json` ahead: only for a hook that will read
    /// the config.
    pub fn prefetch_config(&self) {
        self.prefetch("config-get", &["--format=json"]);
    }

    /// Start `secret-get` of the URI the config named last time ahead, as
    /// `secret_get` would run it: for a hook that will read it.
    pub fn prefetch_secret(&self, uri: &str, refresh: bool) {
        self.prefetch("secret-get", &secret_args(uri, refresh));
    }

    fn spawn(&self, tool: &str, args: &[&str]) -> Result<Output> {
        let ahead = self.ahead.lock().ok().and_then(|mut ahead| {
            let i = ahead.iter().position(|(t, a, _)| t == tool && a == args)?;
            Some(ahead.swap_remove(i).2)
        });
        let out = match ahead {
            Some(child) => child.wait_with_output(),
            None => command(tool, args).output(),
        }
        .with_context(|| cannot_run(tool))?;
        Ok(Output {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<Vec<u8>> {
        let out = self.spawn(tool, args)?;
        if !out.ok {
            bail!(
                "`{tool}` failed (exit {}): {}",
                out.code.map_or("signal".to_string(), |c| c.to_string()),
                if out.stderr.is_empty() {
                    "no output"
                } else {
                    &out.stderr
                }
            );
        }
        Ok(out.stdout)
    }
}

impl HookTools {
    /// `config-get --format=json`: every option that has a value (set, or a
    /// default in config.yaml).
    pub fn config_get(&self) -> Result<BTreeMap<String, Value>> {
        let out = self.run("config-get", &["--format=json"])?;
        serde_json::from_slice(&out).context("config-get printed something that is not a JSON object")
    }

    /// `secret-get --format=json [--refresh] <uri>`: the secret's content.
    /// The outer error is for a tool that cannot run at all; the inner one
    /// tells the operator what to do about the secret.
    pub fn secret_get(
        &self,
        uri: &str,
        refresh: bool,
    ) -> Result<std::result::Result<BTreeMap<String, String>, SecretError>> {
        let out = self.spawn("secret-get", &secret_args(uri, refresh))?;
        if !out.ok {
            return Ok(Err(classify_secret_error(&out.stderr)));
        }
        // Never put the content in an error message; a secret we cannot
        // read is the operator's to fix, not a hook error.
        Ok(serde_json::from_slice(&out.stdout)
            .map_err(|_| SecretError::Other("its content is not key/value text".to_string())))
    }

    /// `status-set <status> <message>` for this unit.
    pub fn status_set(&self, status: &Status) -> Result<()> {
        self.run("status-set", &[status.kind.as_str(), &status.message])
            .map(drop)
    }

    pub fn application_version_set(&self, version: &str) -> Result<()> {
        self.run("application-version-set", &[version]).map(drop)
    }

    /// `action-get --format=json`: the action's parameters, nested as in
    /// actions.yaml, with defaults filled in by Juju.
    #[allow(dead_code)] // for the actions and later issues
    pub fn action_get(&self) -> Result<BTreeMap<String, Value>> {
        let out = self.run("action-get", &["--format=json"])?;
        serde_json::from_slice(&out).context("action-get printed something that is not a JSON object")
    }

    /// `action-set k=v ...`, every key checked against Juju's rule first.
    #[allow(dead_code)] // for the actions and later issues
    pub fn action_set(&self, results: &ActionResults) -> Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let pairs: Vec<String> = results
            .iter()
            .map(|(k, v)| {
                if valid_key(k) {
                    Ok(format!("{k}={v}"))
                } else {
                    Err(anyhow!("action result key {k:?} is not valid for action-set"))
                }
            })
            .collect::<Result<_>>()?;
        let args: Vec<&str> = pairs.iter().map(String::as_str).collect();
        self.run("action-set", &args).map(drop)
    }

    pub fn action_fail(&self, message: &str) -> Result<()> {
        self.run("action-fail", &[message]).map(drop)
    }

    #[allow(dead_code)] // for the actions and later issues
    pub fn action_log(&self, message: &str) -> Result<()> {
        self.run("action-log", &[message]).map(drop)
    }

    /// `resource-get <name>`: the path of the resource file, or `None` when
    /// the resource was never attached (Juju's deliberate not-found for a
    /// local charm: `resource "<name>" not found`) or is empty. Any other
    /// failure (the controller could not download it) is the inner error:
    /// the tool's words, one line (juju 3.6 resource-get.go, opener.go).
    pub fn resource_get(&self, name: &str) -> Result<std::result::Result<Option<PathBuf>, String>> {
        let out = self.spawn("resource-get", &[name])?;
        if !out.ok {
            if out.stderr.contains(&format!("resource {name:?} not found")) {
                return Ok(Ok(None));
            }
            let why = out.stderr.trim().trim_start_matches("ERROR ").replace('\n', " ");
            return Ok(Err(if why.is_empty() {
                format!(
                    "resource-get failed ({})",
                    out.code.map_or("signal".into(), |c| c.to_string())
                )
            } else {
                why
            }));
        }
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let empty = std::fs::metadata(&path).map(|m| m.len() == 0).unwrap_or(true);
        Ok(Ok(if empty { None } else { Some(path) }))
    }

    /// `juju-log -l LEVEL message`: for the rare line the operator should
    /// find in `juju debug-log` even when stderr is not shown.
    #[allow(dead_code)] // for the actions and later issues
    pub fn juju_log(&self, level: &str, message: &str) -> Result<()> {
        self.run("juju-log", &["-l", level, message]).map(drop)
    }

    /// `relation-ids <endpoint> --format=json`.
    pub fn relation_ids(&self, endpoint: &str) -> Result<Vec<String>> {
        let out = self.run("relation-ids", &[endpoint, "--format=json"])?;
        Ok(serde_json::from_slice::<Option<Vec<String>>>(&out)
            .context("relation-ids printed no JSON list")?
            .unwrap_or_default())
    }

    /// `relation-list -r <id> --format=json`: the other units.
    pub fn relation_list(&self, id: &str) -> Result<Vec<String>> {
        let out = self.run("relation-list", &["-r", id, "--format=json"])?;
        Ok(serde_json::from_slice::<Option<Vec<String>>>(&out)
            .context("relation-list printed no JSON list")?
            .unwrap_or_default())
    }

    /// `relation-get -r <id> [--app] --format=json - <unit or app>`.
    pub fn relation_get(&self, id: &str, owner: &str, app: bool) -> Result<BTreeMap<String, String>> {
        let mut args = vec!["-r", id];
        if app {
            args.push("--app");
        }
        args.extend(["--format=json", "-", owner]);
        let out = self.run("relation-get", &args)?;
        Ok(serde_json::from_slice::<Option<BTreeMap<String, String>>>(&out)
            .context("relation-get printed no JSON object")?
            .unwrap_or_default())
    }

    /// `relation-set -r <id> [--app] k=v ...` (an empty value deletes).
    pub fn relation_set(&self, id: &str, app: bool, pairs: &[(&str, &str)]) -> Result<()> {
        let kv: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec!["-r", id];
        if app {
            args.push("--app");
        }
        args.extend(kv.iter().map(String::as_str));
        self.run("relation-set", &args).map(drop)
    }

    /// `is-leader --format=json`.
    #[allow(dead_code)] // for the actions and later issues
    /// `goal-state --format=json`: the units Juju is bringing up or
    /// keeping, not dying ones: of this application (`units`), and the
    /// principal units on the other end of `juju-info`. For a subordinate
    /// `units` is empty (goalStateUnits keeps only units whose principal
    /// is the calling unit), so the principals say how many units of this
    /// application there will be. Usable in install, where the peer
    /// relation is not yet visible.
    pub fn goal_state_units(&self) -> Result<(Vec<String>, Vec<String>)> {
        let out = self.run("goal-state", &["--format=json"])?;
        let v: serde_json::Value = serde_json::from_slice(&out).context("goal-state printed no JSON")?;
        let alive = |map: &serde_json::Value| -> Vec<String> {
            map.as_object()
                .map(|units| {
                    units
                        .iter()
                        .filter(|(name, u)| name.contains('/') && u["status"].as_str() != Some("dying"))
                        .map(|(name, _)| name.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok((alive(&v["units"]), alive(&v["relations"]["juju-info"])))
    }

    pub fn is_leader(&self) -> Result<bool> {
        let out = self.run("is-leader", &["--format=json"])?;
        serde_json::from_slice(&out).context("is-leader printed something that is not true or false")
    }
}

/// Map secret-get's error text to what the operator must do.
fn classify_secret_error(stderr: &str) -> SecretError {
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("not found") {
        SecretError::NotFound
    } else if lower.contains("permission denied") || lower.contains("unauthorized") || lower.contains("not authorized")
    {
        SecretError::NotGranted
    } else {
        SecretError::Other(stderr.lines().last().unwrap_or("").to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_errors_are_classified() {
        assert_eq!(
            classify_secret_error("ERROR secret \"d1\" not found"),
            SecretError::NotFound
        );
        assert_eq!(
            classify_secret_error("ERROR permission denied"),
            SecretError::NotGranted
        );
        assert_eq!(
            classify_secret_error("ERROR connection is shut down"),
            SecretError::Other("ERROR connection is shut down".into())
        );
    }
}
