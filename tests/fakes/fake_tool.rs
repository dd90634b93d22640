//! The fake unit's programs: Juju hook tools, systemctl, journalctl, pip3,
//! python3 and helm in one binary chosen by argv[0]. Each call is appended
//! to `$FAKE_UNIT/calls.jsonl`; answers come from `$FAKE_UNIT/world.json`,
//! which the test wrote and which calls that change the world (status-set,
//! systemctl restart, pip3 install) update. Outputs that a test reads back
//! (status, action results) go to files beside it.
//!
//! world.json keys (all optional):
//!   config {}               config-get output
//!   secrets {uri: {content {}} | {error: "not-found"|"denied"}}
//!   leader bool, action_params {}, resources {name: path}
//!   services {name: {active_state, sub_state, result, n_restarts, start}}
//!   unhealthy_if {path, contains, journal, refuse}   a restart while the
//!                            unit file at path contains the text ends in a
//!                            restart loop and logs `journal`; with refuse,
//!                            the start job fails at once (an ExecStartPre
//!                            failed): the unit `failed`, systemctl exits 1
//!                            with systemd 252's job failure message
//!   journal [lines]          journalctl output: a line is a message, or
//!                            {message, invocation} for a service's own line
//!   at_stop {unit: [lines]}  what a running instance logs as a restart
//!                            stops it (a Python service does)
//!   pip {fail: stderr, no_entry_point: bool | version, python: "3.11",
//!        index_versions: [..]}
//!   python {missing: [], error: str}
//!   helm_version str
//!   fail {"tool" or "tool verb": {code, stderr}}

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Map, Value};

mod systemd_bus;

struct Fake {
    dir: PathBuf,
    world: Value,
    root: PathBuf,
}

impl Fake {
    fn load() -> Fake {
        let dir = PathBuf::from(std::env::var_os("FAKE_UNIT").expect("FAKE_UNIT is set by the test fixture"));
        let world = fs::read(dir.join("world.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| json!({}));
        let root = PathBuf::from(std::env::var_os("MAGNUM_CAPI_ROOT").unwrap_or_else(|| "/".into()));
        Fake { dir, world, root }
    }

    fn save(&self) {
        let tmp = self.dir.join("world.json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(&self.world).unwrap()).unwrap();
        fs::rename(tmp, self.dir.join("world.json")).unwrap();
    }

    fn get(&self, key: &str) -> &Value {
        self.world.get(key).unwrap_or(&Value::Null)
    }

    fn append(&self, file: &str, line: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(file))
            .unwrap();
        f.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    fn unit_path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }
}

fn out(text: &str) -> ExitCode {
    match HELD.lock().unwrap().as_mut() {
        Some((o, _)) => o.extend_from_slice(text.as_bytes()),
        None => print!("{text}"),
    }
    ExitCode::SUCCESS
}

fn err(code: u8, text: &str) -> ExitCode {
    match HELD.lock().unwrap().as_mut() {
        Some((_, e)) => e.extend_from_slice(format!("{text}\n").as_bytes()),
        None => eprintln!("{text}"),
    }
    ExitCode::from(code)
}

/// The hook tools (jujuc commands) the fake serves.
const JUJUC: &[&str] = &[
    "config-get",
    "secret-get",
    "status-set",
    "status-get",
    "application-version-set",
    "is-leader",
    "goal-state",
    "relation-ids",
    "relation-list",
    "relation-get",
    "relation-set",
    "action-get",
    "action-set",
    "action-fail",
    "action-log",
    "juju-log",
    "resource-get",
];

/// A hook tool's output, held while it runs under the jujuc lock and
/// written once the lock is released (as jujuc's client prints what the
/// server returned): a tool whose reader is slow never holds up the next.
static HELD: std::sync::Mutex<Option<(Vec<u8>, Vec<u8>)>> = std::sync::Mutex::new(None);

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let tool = Path::new(&argv[0]).file_name().unwrap().to_string_lossy().to_string();
    if !JUJUC.contains(&tool.as_str()) {
        return serve();
    }
    // jujuc runs one hook tool at a time per hook (juju 3.6 jujuc/server.go
    // Jujuc.Main holds j.mu while the command runs): two tools a hook
    // starts together both succeed, one after the other. The world is read
    // and written under the lock; the output is written after it.
    let dir = PathBuf::from(std::env::var_os("FAKE_UNIT").expect("FAKE_UNIT is set by the test fixture"));
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("jujuc.lock"))
        .expect("the jujuc lock");
    let lock = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).expect("flock");
    *HELD.lock().unwrap() = Some((Vec::new(), Vec::new()));
    let code = serve();
    drop(lock);
    if let Some((o, e)) = HELD.lock().unwrap().take() {
        let _ = std::io::stdout().write_all(&o);
        let _ = std::io::stderr().write_all(&e);
    }
    code
}

fn serve() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let tool = Path::new(&argv[0]).file_name().unwrap().to_string_lossy().to_string();
    let args: Vec<String> = argv[1..].to_vec();
    let mut fake = Fake::load();
    if tool != "fake-systemd-bus" {
        // The proxy variables the program was given (pip, apt-get).
        let env: serde_json::Map<String, Value> = [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "NO_PROXY",
            "no_proxy",
        ]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), json!(v))))
        .collect();
        fake.append(
            "calls.jsonl",
            &json!({"tool": tool, "args": args, "env": env}).to_string(),
        );
    }

    let verb = args.iter().find(|a| !a.starts_with('-')).cloned().unwrap_or_default();
    for key in [format!("{tool} {verb}"), tool.clone()] {
        if let Some(f) = fake.get("fail").get(&key) {
            let code = f.get("code").and_then(Value::as_u64).unwrap_or(1) as u8;
            return err(
                code,
                f.get("stderr")
                    .and_then(Value::as_str)
                    .unwrap_or("ERROR injected failure"),
            );
        }
    }

    match tool.as_str() {
        "config-get" => config_get(&fake, &args),
        "secret-get" => secret_get(&fake, &args),
        "status-set" => {
            // ops passes `--application=False` and `--` before the message.
            let args: Vec<String> = args
                .iter()
                .filter(|a| !a.starts_with("--application") && *a != "--")
                .cloned()
                .collect();
            if args.is_empty() || !["maintenance", "blocked", "waiting", "active"].contains(&args[0].as_str()) {
                return err(2, &format!("ERROR invalid status {:?}", args.first()));
            }
            let status = json!({"kind": args[0], "message": args.get(1).cloned().unwrap_or_default()});
            fs::write(fake.dir.join("status.json"), status.to_string()).unwrap();
            // Juju adds no history entry for the status it already has
            // (state/status.go statusHistoryExists), but the call counts.
            let history = fs::read_to_string(fake.dir.join("status-history.jsonl")).unwrap_or_default();
            if history.lines().last() != Some(status.to_string().as_str()) {
                fake.append("status-history.jsonl", &status.to_string());
            }
            ExitCode::SUCCESS
        }
        "application-version-set" => {
            fs::write(fake.dir.join("app-version"), args.first().cloned().unwrap_or_default()).unwrap();
            ExitCode::SUCCESS
        }
        "is-leader" => match peers_file() {
            Some(p) => out(&format!(
                "{}\n",
                read_json(&p)["leader"].as_str() == Some(me().as_str())
            )),
            None => out(&format!("{}\n", fake.get("leader").as_bool().unwrap_or(true))),
        },
        "relation-ids" => relation(&args),
        "goal-state" => goal_state(),
        "relation-list" | "relation-get" | "relation-set" => relation_named(&fake, &tool, &args),
        "action-get" => out(&fake
            .world
            .get("action_params")
            .cloned()
            .unwrap_or(json!({}))
            .to_string()),
        "action-set" => action_set(&fake, &args),
        "action-fail" => {
            let msg = args
                .first()
                .cloned()
                .unwrap_or("action failed without reason given, check action for errors".into());
            fs::write(fake.dir.join("action-failed"), msg).unwrap();
            ExitCode::SUCCESS
        }
        "action-log" => {
            if args.is_empty() {
                return err(2, "ERROR no message specified");
            }
            fake.append("action-log.txt", &args.join(" "));
            ExitCode::SUCCESS
        }
        "juju-log" => {
            fake.append("juju-log.txt", &args.join(" "));
            ExitCode::SUCCESS
        }
        // Juju 3.6 resource-get (tests/fakes/research/juju-3.6-hook-tools.md,
        // item 5): the path with no newline; a resource never uploaded for
        // a local charm is a deliberate not-found; any other failure (the
        // controller cannot reach the store, a size or fingerprint
        // mismatch) is a download error, `{"error": "..."}` in the world.
        "resource-get" => {
            let Some(name) = args.first() else {
                return err(2, "ERROR missing required resource name");
            };
            match fake.get("resources").get(name.as_str()) {
                Some(Value::String(p)) => out(p),
                Some(Value::Object(o)) if o.contains_key("error") => err(
                    1,
                    &format!("ERROR could not download resource: {}", o["error"].as_str().unwrap_or("")),
                ),
                _ => err(1, &format!("ERROR could not download resource: HTTP request failed: Get https://10.0.0.2:17070/model/6a5b8e1c-0f5d-4c1e-9d7a-3b2f1c0e9d8a/units/unit-magnum-capi-0/resources/{name}: resource {name:?} not found")),
            }
        }
        "systemctl" => systemctl(&mut fake, &args),
        "journalctl" => {
            // An append-only journal; cursors are positions in it. `-o cat`
            // prints messages; `-o json` one object a line, as journalctl
            // 252 does (checked on the real unit): MESSAGE, and
            // _SYSTEMD_INVOCATION_ID on a service's own lines (systemd's
            // "Started ..." lines have none), plus __CURSOR.
            let entries: Vec<(String, Option<String>)> = fake
                .get("journal")
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| match l {
                    Value::String(m) => Some((m.clone(), None)),
                    Value::Object(o) => Some((
                        o.get("message")?.as_str()?.to_string(),
                        o.get("invocation").and_then(Value::as_str).map(str::to_string),
                    )),
                    _ => None,
                })
                .collect();
            let from = args
                .iter()
                .find_map(|a| a.strip_prefix("--after-cursor=fake;i="))
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0)
                .min(entries.len());
            let json_out = args.windows(2).any(|w| w[0] == "-o" && w[1] == "json");
            let mut text = String::new();
            for (i, (m, inv)) in entries.iter().enumerate().skip(from) {
                if json_out {
                    let mut e = json!({"__CURSOR": format!("fake;i={}", i + 1), "MESSAGE": m});
                    if let Some(id) = inv {
                        e["_SYSTEMD_INVOCATION_ID"] = json!(id);
                    }
                    text.push_str(&format!("{e}\n"));
                } else {
                    text.push_str(&format!("{m}\n"));
                }
            }
            if args.iter().any(|a| a == "--show-cursor") {
                text = match entries.last() {
                    None => String::new(),
                    Some((last, _)) => format!("{last}\n-- cursor: fake;i={}\n", entries.len()),
                };
            }
            out(&text)
        }
        "pip3" | "pip" => pip(&fake, &args),
        "apt-get" => apt_get(&mut fake, &args, &argv[0]),
        "python3" | "python" if args.get(1).is_some_and(|s| s.starts_with("# magnum-capi verify")) => {
            python_verify(&fake, args.get(2).map(String::as_str).unwrap_or("[]"))
        }
        "python3" | "python" => python(&fake),
        "fake-systemd-bus" => systemd_bus::serve(PathBuf::from(args.first().expect("socket path"))),
        "helm" => out(&format!(
            "{}\n",
            fake.get("helm_version").as_str().unwrap_or("v3.17.2+gcc0c9f4")
        )),
        other => err(127, &format!("fake-tool: no fake for {other}")),
    }
}

/// The peer relation `restart`, shared by the units of a multi-unit test in
/// `$FAKE_PEERS/peers.json`: {"leader", "members": [..], "app": {..},
/// "units": {unit: {..}}, "violations": [..]}. Identity: JUJU_UNIT_NAME.
fn peers_file() -> Option<PathBuf> {
    std::env::var_os("FAKE_PEERS").map(|d| PathBuf::from(d).join("peers.json"))
}

fn me() -> String {
    std::env::var("JUJU_UNIT_NAME").unwrap_or_else(|_| "magnum-capi/0".into())
}

fn read_json(p: &Path) -> Value {
    fs::read(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(json!({}))
}

fn write_json(p: &Path, v: &Value) {
    let tmp = p.with_extension("tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    fs::rename(tmp, p).unwrap();
}

/// A unit enters the scope of its peer relation only after install (Juju
/// 3.6 uniter: relations are joined by the CreatedRelations resolver, which
/// does nothing `if !localState.Installed`; tests/fakes/research/
/// juju-3.6-hook-tools.md): during install the relation is not in the
/// hook's context at all.
fn in_install() -> bool {
    std::env::var("JUJU_HOOK_NAME").as_deref() == Ok("install")
}

fn relation(args: &[String]) -> ExitCode {
    match (args.first().map(String::as_str), peers_file()) {
        (Some("restart"), Some(_)) if !in_install() => out("[\"restart:7\"]\n"),
        _ => out("[]\n"),
    }
}

/// Juju's goal-state for a SUBORDINATE unit (jujuc/goal-state.go;
/// apiserver/facades/agent/uniter oneGoalState, goalStateUnits,
/// goalStateRelations):
/// - `units`: goalStateUnits(app, <this unit's name>) skips every unit
///   whose principal is not that name (`if ok && pn != principalName`):
///   for a subordinate application that is every unit, itself included,
///   so `units` is empty;
/// - `relations`: non-peer relations only (`if len(endPoints) == 1`),
///   keyed by our endpoint: for juju-info, the principal application
///   ("magnum", the relation's status) and every unit of it (principals:
///   none skipped), `dying` for a dying one.
///
/// The magnum units: one per magnum-capi unit in peers.json
/// "application" (magnum-capi/N is on magnum/N), else magnum/0 alone.
fn goal_state() -> ExitCode {
    let principals: Vec<(String, String)> = match peers_file().map(|p| read_json(&p)) {
        Some(peers) if peers["application"].is_array() => peers["application"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .map(|u| {
                let dying = peers["dying"].as_array().is_some_and(|d| d.iter().any(|x| x == u));
                let n = u.rsplit('/').next().unwrap_or("0");
                (
                    format!("magnum/{n}"),
                    if dying { "dying" } else { "active" }.to_string(),
                )
            })
            .collect(),
        _ => vec![("magnum/0".to_string(), "active".to_string())],
    };
    let since = "2026-12-06 07:00:00Z";
    let mut juju_info = serde_json::Map::new();
    juju_info.insert("magnum".into(), json!({"status": "joined", "since": since}));
    for (u, status) in principals {
        juju_info.insert(u, json!({"status": status, "since": since}));
    }
    out(&format!(
        "{}\n",
        json!({"units": {}, "relations": {"juju-info": juju_info}})
    ))
}

fn relation_named(fake: &Fake, tool: &str, args: &[String]) -> ExitCode {
    let Some(path) = peers_file().filter(|_| !in_install()) else {
        // gnuflag's "invalid value %q for flag -%s: %v" around the uniter's
        // errors.NotFoundf("relation") (context.go Relation), exit 2.
        let id = args
            .iter()
            .skip_while(|a| *a != "-r")
            .nth(1)
            .cloned()
            .unwrap_or_default();
        return err(
            2,
            &format!("ERROR invalid value {id:?} for flag -r: relation not found"),
        );
    };
    let pending_path = fake.dir.join("relation-pending.json");
    let peers = read_json(&path);
    let me = me();
    if !peers["members"]
        .as_array()
        .is_some_and(|m| m.iter().any(|u| u == me.as_str()))
    {
        return err(1, &format!("ERROR unit {me} is not in relation restart:7"));
    }
    let app = args.iter().any(|a| a == "--app");
    let rest: Vec<&String> = args
        .iter()
        .filter(|a| !a.starts_with('-') && a.as_str() != "restart:7")
        .collect();
    match tool {
        "relation-list" => {
            let others: Vec<Value> = peers["members"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|u| *u != me.as_str())
                .cloned()
                .collect();
            out(&format!("{}\n", Value::Array(others)))
        }
        "relation-get" => {
            let owner = rest.last().map(|s| s.as_str()).unwrap_or("");
            let mut data = if app {
                peers["app"].clone()
            } else {
                peers["units"].get(owner).cloned().unwrap_or(json!({}))
            };
            if !data.is_object() {
                data = json!({});
            }
            // This hook's own writes, not committed yet, are what it reads
            // back of its own unit (and, as leader, of the app).
            let pending = read_json(&pending_path);
            let mine = if app {
                pending.get("app")
            } else if owner == me {
                pending.get("unit")
            } else {
                None
            };
            for (k, v) in mine.and_then(Value::as_object).into_iter().flatten() {
                if v.is_null() {
                    data.as_object_mut().unwrap().remove(k);
                } else {
                    data[k.as_str()] = v.clone();
                }
            }
            out(&format!("{data}\n"))
        }
        _ => {
            if app && peers["leader"].as_str() != Some(me.as_str()) {
                return err(1, "ERROR cannot write relation settings: this unit is not the leader");
            }
            // Juju 3.6 context.go Flush: relation settings are sent in one
            // CommitHookChanges only when the hook exits 0. Held here, per
            // unit, until the test fixture commits them (exit 0) or drops
            // them (tests/support/mod.rs run_program).
            let mut pending = read_json(&pending_path);
            for kv in rest {
                let Some((k, v)) = kv.split_once('=') else {
                    return err(2, "ERROR expected key=value");
                };
                let target = &mut pending[if app { "app" } else { "unit" }];
                if !target.is_object() {
                    *target = json!({});
                }
                target[k] = if v.is_empty() { Value::Null } else { json!(v) };
            }
            write_json(&pending_path, &pending);
            ExitCode::SUCCESS
        }
    }
}

/// Juju 3.6 config-get (tests/fakes/research/juju-3.6-hook-tools.md, item
/// 11): the charm's defaults (config.yaml in JUJU_CHARM_DIR) overlaid with
/// what was set (world.config; a null is unset). Without a key: every
/// option with a value, sorted (`""` defaults included, ints as numbers,
/// options with neither value nor default left out). With a key: its value,
/// or `null` (json) / nothing (smart) when it has none.
fn config_get(fake: &Fake, args: &[String]) -> ExitCode {
    let mut settings = Map::new();
    if let Some(dir) = std::env::var_os("JUJU_CHARM_DIR") {
        let yaml = fs::read_to_string(Path::new(&dir).join("config.yaml")).unwrap_or_default();
        let doc: Value = serde_yaml::from_str(&yaml).unwrap_or(Value::Null);
        for (name, opt) in doc["options"].as_object().into_iter().flatten() {
            if let Some(d) = opt.get("default").filter(|d| !d.is_null()) {
                settings.insert(name.clone(), d.clone());
            }
        }
    }
    for (k, v) in fake.get("config").as_object().into_iter().flatten() {
        if v.is_null() {
            continue;
        }
        settings.insert(k.clone(), v.clone());
    }
    let json_out =
        args.iter().any(|a| a == "--format=json") || args.windows(2).any(|w| w[0] == "--format" && w[1] == "json");
    let key = args
        .iter()
        .enumerate()
        .find(|(i, a)| !(a.starts_with('-') || *i > 0 && args[i - 1] == "--format"))
        .map(|(_, a)| a.clone());
    let value = match &key {
        Some(k) => settings.get(k).cloned().unwrap_or(Value::Null),
        None => Value::Object(settings),
    };
    match (json_out, &value) {
        (true, v) => out(&format!("{v}\n")),
        (false, Value::Null) => out(""),
        (false, Value::String(s)) if s.is_empty() => out(""),
        (false, Value::String(s)) => out(&format!("{s}\n")),
        (false, v) => out(&serde_yaml::to_string(v).unwrap_or_default()),
    }
}

/// The ID of a secret URI as Juju's ParseURI reads it (core/secrets):
/// `secret:<id>`, `secret://<model-uuid>/<id>` or a bare `<id>`
/// (`[0-9a-z]{20}`); None when it is none of these.
fn secret_id(uri: &str) -> Option<String> {
    let id = match uri.strip_prefix("secret:") {
        Some(rest) => match rest.strip_prefix("//") {
            Some(r) => r.rsplit('/').next()?,
            None => rest,
        },
        None => uri,
    };
    (id.len() == 20 && id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())).then(|| id.to_string())
}

/// Juju 3.6's secret-get for a consumer unit (tests/fakes/research/
/// juju-3.6-hook-tools.md, item 1: secret-get.go, secretsmanager
/// getConsumedRevision): the unit's first read pins the revision it saw;
/// later reads return the pinned revision until `--refresh` (moves the pin
/// to the latest and returns it) or `--peek` (returns the latest, keeps the
/// pin; a first read pins even then). The pin is kept per unit, in
/// secret-pins.json beside world.json, and is written at call time, hook
/// success or not. world.secrets holds each secret's latest content, keyed
/// by any form of its URI.
fn secret_get(fake: &Fake, args: &[String]) -> ExitCode {
    let refresh = args.iter().any(|a| a == "--refresh");
    let peek = args.iter().any(|a| a == "--peek");
    if refresh && peek {
        return err(2, "ERROR specify one of --peek or --refresh but not both");
    }
    let Some(uri) = args.iter().find(|a| !a.starts_with("--")) else {
        return err(2, "ERROR require either a secret URI or label");
    };
    let Some(id) = secret_id(uri) else {
        return err(2, &format!("ERROR secret URI {uri:?} not valid"));
    };
    let secrets = fake.get("secrets").as_object().cloned().unwrap_or_default();
    let found = secrets
        .iter()
        .find(|(k, _)| secret_id(k).as_deref() == Some(id.as_str()))
        .map(|(_, v)| v.clone());
    let not_found = || err(1, &format!("ERROR secret \"secret:{id}\" not found"));
    let Some(s) = found else { return not_found() };
    match s.get("error").and_then(Value::as_str) {
        Some("not-found") => return not_found(),
        Some("denied") => return err(1, "ERROR permission denied"),
        Some(other) => return err(1, &format!("ERROR {other}")),
        None => {}
    }
    let latest = s.get("content").cloned().unwrap_or(json!({}));
    let pins_path = fake.dir.join("secret-pins.json");
    let mut pins = read_json(&pins_path);
    let shown = match pins.get(&id) {
        Some(pinned) if !refresh && !peek => pinned.clone(),
        Some(_) if peek => latest,
        _ => {
            pins[id.as_str()] = latest.clone();
            write_json(&pins_path, &pins);
            latest
        }
    };
    out(&format!("{shown}\n"))
}

/// Juju's action-set: dotted keys nest, last write wins.
fn action_set(fake: &Fake, args: &[String]) -> ExitCode {
    let path = fake.dir.join("action-results.json");
    let mut results: Value = fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(json!({}));
    // Juju 3.6 action-set.go Init: every argument checked before any is
    // applied; per segment, the name rule then the reserved keys, the
    // message quoting the segment (exit 2).
    let mut pairs = Vec::new();
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            return err(2, &format!("ERROR argument {arg:?} must be of the form key...=value"));
        };
        let valid = |s: &str| {
            let b = s.as_bytes();
            let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !b.is_empty() && ok(&b[0]) && ok(&b[b.len() - 1]) && b.iter().all(|c| ok(c) || *c == b'-')
        };
        for seg in key.split('.') {
            if !valid(seg) {
                return err(2, &format!("ERROR key {seg:?} must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric and hyphens"));
            }
            if ["stdout", "stdout-encoding", "stderr", "stderr-encoding"].contains(&seg) {
                return err(2, &format!("ERROR cannot set reserved action key {seg:?}"));
            }
        }
        pairs.push((key, value));
    }
    for (key, value) in pairs {
        let segments: Vec<&str> = key.split('.').collect();
        let mut node = &mut results;
        for (i, seg) in segments.iter().enumerate() {
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
            let map = node.as_object_mut().unwrap();
            if i == segments.len() - 1 {
                map.insert(seg.to_string(), Value::String(value.to_string()));
                break;
            }
            node = map.entry(seg.to_string()).or_insert_with(|| json!({}));
        }
    }
    fs::write(&path, results.to_string()).unwrap();
    ExitCode::SUCCESS
}

fn systemctl(fake: &mut Fake, args: &[String]) -> ExitCode {
    let verb = args.first().map(String::as_str).unwrap_or("");
    let units: Vec<String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-') && a.ends_with(".service"))
        .map(|u| u.trim_end_matches(".service").to_string())
        .collect();
    let default_state =
        json!({"active_state": "active", "sub_state": "running", "result": "success", "n_restarts": 0, "start": 1000});
    if fake.world.get("services").is_none() {
        fake.world["services"] = json!({});
    }
    match verb {
        "show" => {
            let props: Vec<&str> = args
                .iter()
                .position(|a| a == "-p")
                .and_then(|i| args.get(i + 1))
                .map_or(vec![], |p| p.split(',').collect());
            let mut blocks = Vec::new();
            for u in &units {
                let s = fake.world["services"].get(u).cloned().unwrap_or(json!({"active_state": "inactive", "sub_state": "dead", "result": "success", "n_restarts": 0, "start": 0}));
                let loaded = fake
                    .world
                    .get("loaded")
                    .and_then(|l| l.get(u))
                    .cloned()
                    .unwrap_or_else(|| unit_definition(fake, u));
                let mut block = String::new();
                for p in &props {
                    let v = match *p {
                        "Id" => format!("{u}.service"),
                        "ActiveState" => s["active_state"].as_str().unwrap_or("inactive").to_string(),
                        "SubState" => s["sub_state"].as_str().unwrap_or("dead").to_string(),
                        "Result" => s["result"].as_str().unwrap_or("success").to_string(),
                        "NRestarts" => s["n_restarts"].as_u64().unwrap_or(0).to_string(),
                        "ExecMainStartTimestampMonotonic" => s["start"].as_u64().unwrap_or(0).to_string(),
                        "ExecStart" => {
                            let argv = loaded["exec_start"].as_str().unwrap_or("").to_string();
                            let path = argv.split_whitespace().next().unwrap_or("").to_string();
                            format!("{{ path={path} ; argv[]={argv} ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }}")
                        }
                        "DropInPaths" => loaded["dropins"].as_str().unwrap_or("").to_string(),
                        // systemd: the main process's PID while the unit
                        // runs, 0 otherwise (`systemctl show -p MainPID`).
                        "MainPID" => match s["main_pid"].as_u64() {
                            Some(pid) => pid.to_string(),
                            None if s["active_state"] == "active" => {
                                (40000 + s["start"].as_u64().unwrap_or(0) % 20000).to_string()
                            }
                            None => "0".to_string(),
                        },
                        other => return err(1, &format!("fake systemctl: property {other} is not faked")),
                    };
                    block.push_str(&format!("{p}={v}\n"));
                }
                blocks.push(block);
            }
            out(&blocks.join("\n"))
        }
        "daemon-reload" => {
            // What systemd has loaded changes only here (and at boot).
            let mut loaded = json!({});
            for u in ["magnum-api", "magnum-conductor"] {
                loaded[u] = unit_definition(fake, u);
            }
            fake.world["loaded"] = loaded;
            fake.save();
            ExitCode::SUCCESS
        }
        "reset-failed" => {
            // Like systemd: a stopped unit nobody references is unloaded,
            // and reset-failed on it fails.
            if let Some(u) = units.iter().find(|u| {
                fake.world["services"]
                    .get(u.as_str())
                    .is_none_or(|s| s["active_state"] == "inactive")
            }) {
                return err(
                    1,
                    &format!("Failed to reset failed state of unit {u}.service: Unit {u}.service not loaded."),
                );
            }
            for u in &units {
                if let Some(s) = fake.world["services"].get_mut(u) {
                    if s["active_state"] == "failed" {
                        s["active_state"] = json!("inactive");
                    }
                    s["result"] = json!("success");
                }
            }
            fake.save();
            ExitCode::SUCCESS
        }
        "restart" | "start" | "stop" => {
            if verb == "restart" {
                if let Some(p) = peers_file() {
                    // A restart outside this unit's turn breaks the roll.
                    let mut peers = read_json(&p);
                    // The turn as this unit sees it: the committed app data
                    // and, for the leader, its own writes of this hook (not
                    // committed until the hook exits 0).
                    let pending = read_json(&fake.dir.join("relation-pending.json"));
                    let holder = match pending["app"].get("granted") {
                        Some(Value::String(g)) => g.clone(),
                        Some(Value::Null) => String::new(),
                        _ => peers["app"]["granted"].as_str().unwrap_or("").to_string(),
                    };
                    let me = me();
                    if holder != me {
                        let mut violations = peers["violations"].as_array().cloned().unwrap_or_default();
                        violations.push(json!(format!("{me} restarted while {holder:?} held the turn")));
                        peers["violations"] = Value::Array(violations);
                    }
                    let mut log = peers["restarts"].as_array().cloned().unwrap_or_default();
                    log.push(json!(me));
                    peers["restarts"] = Value::Array(log);
                    write_json(&p, &peers);
                }
            }
            let unhealthy = fake.get("unhealthy_if").clone();
            let refuse = unhealthy.get("refuse").and_then(Value::as_bool).unwrap_or(false);
            let broken = unhealthy.get("path").and_then(Value::as_str).is_some_and(|p| {
                fs::read_to_string(fake.unit_path(p))
                    .is_ok_and(|t| t.contains(unhealthy["contains"].as_str().unwrap_or("\u{0}")))
            });
            // The journal only grows: the old instances' last words (as the
            // restart stops them), then the new instances'.
            let mut journal = fake.world["journal"].as_array().cloned().unwrap_or_default();
            // systemd's invocation links, where the unit has them: the old
            // instance's id tags its lines, a new id is linked (as systemd
            // does at each start).
            let mut new_ids = Vec::new();
            for u in &units {
                let link = fake.unit_path(&format!("/run/systemd/units/invocation:{u}.service"));
                let old = fs::read_link(&link).ok().map(|p| p.to_string_lossy().into_owned());
                let stopped = if verb == "start" {
                    None
                } else {
                    fake.get("at_stop").get(u).and_then(Value::as_array)
                };
                for line in stopped.into_iter().flatten() {
                    journal.push(json!({"message": line, "invocation": old}));
                }
                let new = old.as_ref().map(|_| format!("{:032x}", monotonic_us()));
                if let Some(id) = &new {
                    let tmp = link.with_extension("fake-tmp");
                    let _ = fs::remove_file(&tmp);
                    std::os::unix::fs::symlink(id, &tmp).unwrap();
                    fs::rename(&tmp, &link).unwrap();
                }
                new_ids.push(new);
            }
            for u in &units {
                let s = fake.world["services"].get(u).cloned().unwrap_or(default_state.clone());
                let start = monotonic_us().max(s["start"].as_u64().unwrap_or(0) + 1);
                let new = if verb == "stop" {
                    json!({"active_state": "inactive", "sub_state": "dead", "result": "success", "n_restarts": 0, "start": s["start"]})
                } else if broken && refuse {
                    json!({"active_state": "failed", "sub_state": "failed", "result": "exit-code", "n_restarts": 0, "start": s["start"]})
                } else if broken {
                    json!({"active_state": "activating", "sub_state": "auto-restart", "result": "exit-code", "n_restarts": 3, "start": start})
                } else {
                    json!({"active_state": "active", "sub_state": "running", "result": "success", "n_restarts": 0, "start": start})
                };
                fake.world["services"][u] = new;
            }
            if broken {
                // The new instances' own lines.
                let id = new_ids.iter().flatten().next().cloned();
                for line in unhealthy.get("journal").and_then(Value::as_array).into_iter().flatten() {
                    journal.push(match &id {
                        Some(id) => json!({"message": line, "invocation": id}),
                        None => line.clone(),
                    });
                }
            } else if verb != "stop" {
                journal.extend(units.iter().map(|u| json!(format!("Started {u}.service."))));
            }
            fake.world["journal"] = Value::Array(journal);
            fake.save();
            if broken && refuse && verb != "stop" {
                // systemctl's words (systemd 252, log_job_error_with_service_result)
                // for the first unit whose job failed.
                let u = units.last().map(String::as_str).unwrap_or("magnum-conductor");
                return err(1, &format!("Job for {u}.service failed because the control process exited with error code.\nSee \"systemctl status {u}.service\" and \"journalctl -xeu {u}.service\" for details."));
            }
            ExitCode::SUCCESS
        }
        other => err(1, &format!("fake systemctl: unsupported verb {other:?}")),
    }
}

/// A unit's effective ExecStart and drop-ins from its files, as systemd
/// computes them: the packaged unit, then drop-ins in name order; an empty
/// `ExecStart=` clears the list.
fn unit_definition(fake: &Fake, unit: &str) -> Value {
    let mut texts = Vec::new();
    for dir in ["/lib/systemd/system", "/usr/lib/systemd/system", "/etc/systemd/system"] {
        if let Ok(t) = fs::read_to_string(fake.unit_path(&format!("{dir}/{unit}.service"))) {
            texts.push(t);
            break;
        }
    }
    let dropin_dir = format!("/etc/systemd/system/{unit}.service.d");
    let mut dropins: Vec<String> = fs::read_dir(fake.unit_path(&dropin_dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(".conf"))
        .collect();
    dropins.sort();
    for d in &dropins {
        texts.push(fs::read_to_string(fake.unit_path(&format!("{dropin_dir}/{d}"))).unwrap_or_default());
    }
    let mut exec: Vec<String> = Vec::new();
    for t in texts {
        for line in t.lines() {
            if let Some(v) = line.strip_prefix("ExecStart=") {
                if v.trim().is_empty() {
                    exec.clear()
                } else {
                    exec.push(v.trim().to_string())
                }
            }
        }
    }
    json!({"exec_start": exec.join(" ; "), "dropins": dropins.iter().map(|d| format!("{dropin_dir}/{d}")).collect::<Vec<_>>().join(" ")})
}

/// Now on CLOCK_MONOTONIC in microseconds, as systemd's *Monotonic stamps.
fn monotonic_us() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000
}

/// apt-get as Debian's apt 2.6 answers (run here: `apt-get install -y -q
/// --no-install-recommends python3-pip` on bookworm; an unknown package,
/// or no package lists yet: `E: Unable to locate package <name>`, exit
/// 100). world.apt: {lists: bool (default true), fail: stderr}. Installing
/// python3-pip puts pip3 beside this program on PATH, as the package puts
/// /usr/bin/pip3.
fn apt_get(fake: &mut Fake, args: &[String], argv0: &str) -> ExitCode {
    let verb = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .map(String::as_str)
        .unwrap_or("");
    if verb == "update" {
        fake.world["apt"]["lists"] = json!(true);
        fake.save();
        return out("Reading package lists...\n");
    }
    let apt = fake.get("apt");
    if verb != "install" {
        return err(100, &format!("E: Invalid operation {verb}"));
    }
    if let Some(stderr) = apt.get("fail").and_then(Value::as_str) {
        return err(100, stderr);
    }
    let lists = apt.get("lists").and_then(Value::as_bool).unwrap_or(true);
    for pkg in args
        .iter()
        .skip_while(|a| *a != "install")
        .skip(1)
        .filter(|a| !a.starts_with('-'))
    {
        if !lists || pkg != "python3-pip" {
            return err(100, &format!("E: Unable to locate package {pkg}"));
        }
        // argv[0] is the bare name when run from PATH: find this program's
        // directory there.
        let path = std::env::var("PATH").unwrap_or_default();
        let Some(bin) = std::env::split_paths(&path).find(|d| d.join(argv0).exists() || d.join("apt-get").exists())
        else {
            return err(100, "fake apt-get: not found on PATH");
        };
        let me = std::env::current_exe().unwrap();
        let _ = std::os::unix::fs::symlink(me, bin.join("pip3"));
    }
    out("Setting up python3-pip (23.0.1+dfsg-1) ...\n")
}

fn pip(fake: &Fake, args: &[String]) -> ExitCode {
    if args.first().map(String::as_str) == Some("uninstall") {
        // Remove the distribution wherever pip put it.
        let dists = driver_dists(fake);
        for d in &dists {
            fs::remove_dir_all(d).unwrap();
        }
        let found = !dists.is_empty();
        return if found {
            out("Successfully uninstalled magnum-capi-helm\n")
        } else {
            err(0, "WARNING: Skipping magnum-capi-helm as it is not installed.")
        };
    }
    if args.first().map(String::as_str) != Some("install") {
        return err(1, "fake pip3: only install and uninstall are faked");
    }
    let pip = fake.get("pip");
    if let Some(stderr) = pip.get("fail").and_then(Value::as_str) {
        return err(1, stderr);
    }
    // The requirement: on the command line, or in a -r file (with a hash).
    let mut spec = args.iter().find(|a| a.starts_with("magnum-capi-helm==")).cloned();
    let mut pinned = None;
    if let Some(file) = args.iter().position(|a| a == "-r").and_then(|i| args.get(i + 1)) {
        let text = fs::read_to_string(file).unwrap_or_default();
        // What pip was given, for the tests (the charm removes the file
        // once pip has run).
        fs::write(fake.dir.join("pip-requirements.txt"), &text).unwrap();
        let line = text.lines().next().unwrap_or("");
        spec = line.split_whitespace().next().map(str::to_string);
        pinned = line.split("--hash=sha256:").nth(1).map(|h| h.trim().to_string());
    }
    let Some(spec) = spec else {
        return err(1, "ERROR: You must give at least one requirement to install");
    };
    let version = spec.trim_start_matches("magnum-capi-helm==").to_string();
    let version = version.as_str();
    if args.iter().any(|a| a == "--require-hashes") {
        // The index's wheel hash, as the test world says it is; else, for a
        // released version, the one PyPI publishes for it (project JSON
        // https://pypi.org/pypi/magnum-capi-helm/json, `digests.sha256` of
        // each py3-none-any wheel; tests/fakes/research/).
        let pypi = match version {
            "1.0.0" => "d50c3567ed6517602738f84440a4f54d11869effffcb52a62be88dd1a7b4192c",
            "1.1.0" => "a90b39640c9f79763d23d3e319b49f9eab917e8349f6e1cc686eb64bfb5819a0",
            "1.2.0" => "252363ff1020cfdc19137002f835e373337fa60969f82bacc8a47654de59be4d",
            "1.2.1" => "2c3e9a617574b6cafbfd27a04e907c4a2512fcce9085a1bd60019005ca7df8e6",
            "1.3.0" => "0e1a8b3416afd4c1e173d72cd2840bda34766b3ea3eeea8f373e4919cc120dbf",
            "1.4.0" => "1e0878ea39dbe6ea3d40674c0c443ee5a0494835bdfbcc4f8052bc1178f508b9",
            _ => "0000000000000000000000000000000000000000000000000000000000000000",
        };
        let got = pip.get("index_sha256").and_then(Value::as_str).unwrap_or(pypi);
        if pinned.as_deref() != Some(got) {
            return err(1, &format!("ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have updated the package versions, please update the hashes. Otherwise, examine the package contents carefully; someone may have tampered with them.\n    magnum-capi-helm=={version} from https://files.pythonhosted.org/packages/magnum_capi_helm-{version}-py3-none-any.whl:\n        Expected sha256 {}\n             Got        {got}\n", pinned.unwrap_or_default()));
        }
    }
    // Every --find-links directory is searched (pip's option appends).
    let dirs: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == "--find-links")
        .filter_map(|(i, _)| args.get(i + 1))
        .collect();
    if !dirs.is_empty() {
        // --no-index: the wheel must be in one of the directories.
        let found = dirs.iter().any(|dir| {
            fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("magnum_capi_helm-{version}-"))
            })
        });
        if !found {
            return err(1, &format!("ERROR: Could not find a version that satisfies the requirement magnum-capi-helm=={version} (from versions: none)\nERROR: No matching distribution found for magnum-capi-helm=={version}"));
        }
    }
    // The index's versions, when the test world names them: pip's own
    // message for a version the index lacks (pip 23, `pip install
    // magnum-capi-helm==9.9.9` against PyPI).
    if let Some(have) = pip.get("index_versions").and_then(Value::as_array) {
        let have: Vec<&str> = have.iter().filter_map(Value::as_str).collect();
        if !args.iter().any(|a| a == "--find-links") && !have.contains(&version) {
            return err(1, &format!("ERROR: Could not find a version that satisfies the requirement magnum-capi-helm=={version} (from versions: {})\nERROR: No matching distribution found for magnum-capi-helm=={version}", have.join(", ")));
        }
    }
    let python = pip.get("python").and_then(Value::as_str).unwrap_or("3.11");
    let site = fake.unit_path(&format!("/usr/local/lib/python{python}/dist-packages"));
    // pip replaces an older version in the same site.
    for e in fs::read_dir(&site).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with("magnum_capi_helm-") {
            fs::remove_dir_all(e.path()).unwrap();
        }
    }
    let dist = site.join(format!("magnum_capi_helm-{version}.dist-info"));
    fs::create_dir_all(&dist).unwrap();
    fs::write(
        dist.join("METADATA"),
        format!("Metadata-Version: 2.1\nName: magnum-capi-helm\nVersion: {version}\n"),
    )
    .unwrap();
    // no_entry_point: true (every version) or one version: a wheel that
    // installs but does not register the driver.
    let broken = match pip.get("no_entry_point") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(v)) => v == version,
        _ => false,
    };
    if !broken {
        fs::write(
            dist.join("entry_points.txt"),
            "[magnum.drivers]\nk8s_capi_helm_v1 = magnum_capi_helm.driver:Driver\n",
        )
        .unwrap();
    }
    out(&format!("Successfully installed magnum-capi-helm-{version}\n"))
}

/// The verify script: the driver's entry point, magnum's driver lookup and
/// config loader, answered from the unit's files as magnum would read them
/// (the config args' files, then conf.d in name order; later wins), or
/// from world.verify_python when a test sets it.
fn python_verify(fake: &Fake, args: &str) -> ExitCode {
    if let Some(v) = fake.world.get("verify_python") {
        return out(&format!("{v}\n"));
    }
    let installed = driver_installed(fake);
    let args: Vec<String> = serde_json::from_str(args).unwrap_or_default();
    let mut files: Vec<PathBuf> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--config-file="))
        .map(|p| fake.unit_path(p))
        .collect();
    let dirs: Vec<String> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--config-dir="))
        .map(str::to_string)
        .collect();
    if args.is_empty() {
        files.push(fake.unit_path("/etc/magnum/magnum.conf"));
    }
    let mut conf_d: Vec<PathBuf> = Vec::new();
    for d in if dirs.is_empty() {
        vec!["/etc/magnum/magnum.conf.d".to_string()]
    } else {
        dirs
    } {
        let mut v: Vec<PathBuf> = fs::read_dir(fake.unit_path(&d))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        v.sort();
        conf_d.extend(v);
    }
    // oslo.config: default config dir files are read before the
    // --config-file ones when no --config-dir is given (FACTS.md).
    let order: Vec<PathBuf> = if args.iter().any(|a| a.starts_with("--config-dir=")) {
        files.into_iter().chain(conf_d).collect()
    } else {
        conf_d.into_iter().chain(files).collect()
    };
    let (mut kubeconfig_file, mut disabled) = (String::new(), Vec::<String>::new());
    for f in order {
        let mut section = String::new();
        for line in fs::read_to_string(f).unwrap_or_default().lines() {
            let line = line.trim();
            if let Some(s) = line.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                section = s.to_string();
            } else if let Some((k, v)) = line.split_once('=') {
                match (section.as_str(), k.trim()) {
                    ("capi_helm", "kubeconfig_file") => kubeconfig_file = v.trim().to_string(),
                    ("drivers", "disabled_drivers") => {
                        disabled = v
                            .trim()
                            .split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    }
                    _ => {}
                }
            }
        }
    }
    let driver = installed.then_some("magnum_capi_helm.driver:Driver");
    let error = if installed {
        Value::Null
    } else {
        json!("ClusterTypeNotSupported: Cluster type (vm, ubuntu, kubernetes) not supported")
    };
    out(&format!(
        "{}\n",
        json!({"driver": driver, "get_driver": driver, "claimants": if installed { json!(["k8s_capi_helm_v1"]) } else { json!([]) }, "conf": if installed { json!({"kubeconfig_file": kubeconfig_file, "disabled_drivers": disabled}) } else { Value::Null }, "error": error})
    ))
}

/// The magnum-capi-helm dist-info directories in every dist-packages.
fn driver_dists(fake: &Fake) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for base in ["usr/local/lib", "usr/lib"] {
        for p in fs::read_dir(fake.root.join(base)).into_iter().flatten().flatten() {
            for d in fs::read_dir(p.path().join("dist-packages"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if d.file_name().to_string_lossy().starts_with("magnum_capi_helm-") {
                    out.push(d.path());
                }
            }
        }
    }
    out
}

/// Installed with its entry point (what makes it importable as a driver).
fn driver_installed(fake: &Fake) -> bool {
    driver_dists(fake).iter().any(|d| d.join("entry_points.txt").exists())
}

/// The import check: answers as the charm's script would on this world.
fn python(fake: &Fake) -> ExitCode {
    let py = fake.get("python");
    let missing = py.get("missing").cloned().unwrap_or(json!([]));
    let installed = driver_installed(fake);
    let error = match py.get("error").and_then(Value::as_str) {
        Some(e) => json!(e),
        None if !installed => {
            json!("No 'k8s_capi_helm_v1' driver in entry point group magnum.drivers")
        }
        None => Value::Null,
    };
    let entry_point = if error.is_null() {
        json!("magnum_capi_helm.driver:Driver")
    } else {
        Value::Null
    };
    out(&format!(
        "{}\n",
        json!({"missing": missing, "entry_point": entry_point, "error": error})
    ))
}
