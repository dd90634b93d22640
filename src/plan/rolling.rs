//! Rolling restarts across the magnum units, as the Canonical `rolling_ops`
//! library does it: a unit that needs a restart asks in its peer unit data;
//! the leader grants one unit at a time in the application data; the unit
//! restarts, checks health, and reports done (or failed: then the roll
//! halts, and no more units are broken by the same change). A grant held
//! past the timeout (the unit died or left) is taken back. Pure.

use std::collections::BTreeMap;

pub const REQUEST: &str = "restart-request";
pub const DONE: &str = "restart-done";
pub const FAILED: &str = "restart-failed";
pub const GRANTED: &str = "granted";
pub const GRANT_NONCE: &str = "grant-nonce";
pub const GRANTED_AT: &str = "granted-at";
pub const HALTED: &str = "halted";
pub const HALTED_CHANGE: &str = "halted-change";

pub type Data = BTreeMap<String, String>;

/// The peer relation as one unit sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub app: Data,
    /// Every member's unit data, this unit's included.
    pub units: BTreeMap<String, Data>,
    pub now: u64,
    pub timeout: u64,
}

fn get<'a>(d: &'a Data, k: &str) -> Option<&'a str> {
    d.get(k).map(String::as_str).filter(|v| !v.is_empty())
}

/// A request nonce is `<change fingerprint>-<epoch>`: the change it is for.
pub fn change_of(nonce: &str) -> &str {
    nonce.split('-').next().unwrap_or(nonce)
}

/// The unit still waits for its restart.
fn pending(d: &Data) -> Option<&str> {
    let req = get(d, REQUEST)?;
    let done = get(d, DONE) == Some(req);
    let failed = get(d, FAILED).is_some_and(|f| f.split(' ').next() == Some(req));
    (!done && !failed).then_some(req)
}

/// What the leader writes into the application data (`""` deletes), and a
/// line for the log.
pub fn leader_step(v: &View) -> (Vec<(&'static str, String)>, Option<String>) {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let mut note = None;
    let clear_grant = |out: &mut Vec<(&'static str, String)>| {
        out.extend([
            (GRANTED, String::new()),
            (GRANT_NONCE, String::new()),
            (GRANTED_AT, String::new()),
        ]);
    };
    if let Some(halted) = get(&v.app, HALTED) {
        // The roll stays halted until every waiting unit asks for another
        // change than the one that failed.
        let bad = get(&v.app, HALTED_CHANGE).unwrap_or("");
        let waiting: Vec<&str> = v.units.values().filter_map(pending).collect();
        if waiting.is_empty() || waiting.iter().any(|n| change_of(n) == bad) {
            return (out, None);
        }
        out.extend([(HALTED, String::new()), (HALTED_CHANGE, String::new())]);
        note = Some(format!("a new change replaces the one that halted the roll ({halted})"));
    }
    if let Some(unit) = get(&v.app, GRANTED) {
        let nonce = get(&v.app, GRANT_NONCE).unwrap_or("");
        let at: u64 = get(&v.app, GRANTED_AT).and_then(|t| t.parse().ok()).unwrap_or(0);
        match v.units.get(unit) {
            None => {
                note = Some(format!("{unit} left while holding the restart turn: taking it back"));
                clear_grant(&mut out);
            }
            Some(d) if get(d, DONE) == Some(nonce) => clear_grant(&mut out),
            Some(d) if get(d, FAILED).is_some_and(|f| f.split(' ').next() == Some(nonce)) => {
                let why = get(d, FAILED).and_then(|f| f.split_once(' ')).map_or("", |(_, m)| m);
                clear_grant(&mut out);
                out.push((HALTED, format!("{unit}: {why}")));
                out.push((HALTED_CHANGE, change_of(nonce).to_string()));
                return (out, Some(format!("{unit}'s restart failed: rolling restart halted")));
            }
            Some(_) if v.now.saturating_sub(at) > v.timeout => {
                note = Some(format!(
                    "{unit} held the restart turn over {} s: taking it back",
                    v.timeout
                ));
                clear_grant(&mut out);
            }
            Some(_) => return (out, note),
        }
    }
    // Grant the next waiting unit, in name order, skipping a unit whose turn
    // was just taken back for the same request.
    let revoked = get(&v.app, GRANTED).filter(|_| out.iter().any(|(k, v)| *k == GRANTED && v.is_empty()));
    let next = v
        .units
        .iter()
        .filter(|(u, _)| Some(u.as_str()) != revoked)
        .find_map(|(u, d)| pending(d).map(|n| (u, n)));
    if let Some((unit, nonce)) = next {
        out.retain(|(k, _)| ![GRANTED, GRANT_NONCE, GRANTED_AT].contains(k));
        out.extend([
            (GRANTED, unit.clone()),
            (GRANT_NONCE, nonce.to_string()),
            (GRANTED_AT, v.now.to_string()),
        ]);
    }
    (out, note)
}

/// May this unit restart for `nonce` now?
pub fn granted(app: &Data, me: &str, nonce: &str) -> bool {
    get(app, HALTED).is_none() && get(app, GRANTED) == Some(me) && get(app, GRANT_NONCE) == Some(nonce)
}

/// The halt message, when the roll halted on this change.
pub fn halted_on<'a>(app: &'a Data, nonce: &str) -> Option<&'a str> {
    get(app, HALTED).filter(|_| get(app, HALTED_CHANGE) == Some(change_of(nonce)))
}

/// This unit's restart request for the change `fingerprint`: `None` keeps
/// the one it made (`current`, same change); `Some(new)` is a new request
/// (`<change>-<epoch>`), written to the relation before waiting.
pub fn request(current: Option<&str>, fingerprint: &str, now: u64) -> Option<String> {
    match current {
        Some(n) if change_of(n) == fingerprint => None,
        _ => Some(format!("{fingerprint}-{now}")),
    }
}

/// Where this unit stands in the roll for its request `nonce`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// The roll halted on this very change: put this unit's new files back,
    /// keep the config it runs, report this status.
    Halted(crate::juju::Status),
    /// Restart now.
    Go,
    /// Wait for the turn (the new files are written): report this status.
    Queued(crate::juju::Status),
}

/// May this unit restart now, must it wait, or did the roll halt on its
/// change?
pub fn turn(app: &Data, me: &str, nonce: &str) -> Turn {
    if let Some(halt) = halted_on(app, nonce) {
        return Turn::Halted(crate::juju::Status::blocked(format!(
            "rolling restart halted: {halt}; this unit keeps the config it runs: fix the change (juju config magnum-capi ...)"
        )));
    }
    if granted(app, me, nonce) {
        return Turn::Go;
    }
    let holder = get(app, GRANTED).unwrap_or("the leader");
    Turn::Queued(crate::juju::Status::waiting(format!(
        "restart queued: magnum units restart one at a time ({holder} goes first); new config written, takes effect at this unit's turn"
    )))
}

/// Apply the leader's writes to a view (as Juju would after relation-set).
pub fn apply_writes(app: &mut Data, writes: &[(&'static str, String)]) {
    for (k, v) in writes {
        if v.is_empty() {
            app.remove(*k);
        } else {
            app.insert((*k).to_string(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_request_is_made_once_per_change() {
        assert_eq!(request(None, "abc", 7).as_deref(), Some("abc-7"));
        assert_eq!(request(Some("abc-5"), "abc", 7), None);
        assert_eq!(request(Some("old-5"), "abc", 7).as_deref(), Some("abc-7"));
    }

    #[test]
    fn the_turn_is_halted_granted_or_queued() {
        let mut app = Data::new();
        assert_eq!(
            turn(&app, "magnum-capi/1", "abc-7"),
            Turn::Queued(crate::juju::Status::waiting(
                "restart queued: magnum units restart one at a time (the leader goes first); new config written, takes effect at this unit's turn"
            ))
        );
        app.insert(GRANTED.into(), "magnum-capi/1".into());
        app.insert(GRANT_NONCE.into(), "abc-7".into());
        assert_eq!(turn(&app, "magnum-capi/1", "abc-7"), Turn::Go);
        assert!(
            matches!(turn(&app, "magnum-capi/2", "abc-9"), Turn::Queued(s) if s.message.contains("(magnum-capi/1 goes first)"))
        );
        app.insert(HALTED.into(), "magnum-capi/0 failed".into());
        app.insert(HALTED_CHANGE.into(), "abc".into());
        assert!(
            matches!(turn(&app, "magnum-capi/1", "abc-7"), Turn::Halted(s) if s.message.starts_with("rolling restart halted: magnum-capi/0 failed;"))
        );
        // Halted on another change: this one waits.
        assert!(matches!(turn(&app, "magnum-capi/1", "def-8"), Turn::Queued(_)));
    }

    use super::*;

    fn view(units: &[(&str, &[(&str, &str)])], app: &[(&str, &str)], now: u64) -> View {
        let d = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        View {
            app: d(app),
            units: units.iter().map(|(u, kv)| (u.to_string(), d(kv))).collect(),
            now,
            timeout: 300,
        }
    }

    #[test]
    fn one_unit_at_a_time_in_order() {
        let v = view(&[("m/0", &[(REQUEST, "f1-1")]), ("m/1", &[(REQUEST, "f1-2")])], &[], 10);
        let (w, _) = leader_step(&v);
        assert!(w.contains(&(GRANTED, "m/0".into())));
        let mut app = v.app.clone();
        apply_writes(&mut app, &w);
        // m/0 still restarting: nothing changes.
        let v2 = View {
            app: app.clone(),
            ..v.clone()
        };
        assert!(leader_step(&v2).0.is_empty());
        // m/0 done: m/1 goes.
        let mut v3 = v2.clone();
        v3.units.get_mut("m/0").unwrap().insert(DONE.into(), "f1-1".into());
        let (w3, _) = leader_step(&v3);
        assert!(w3.contains(&(GRANTED, "m/1".into())));
    }

    #[test]
    fn a_failure_halts_the_roll_until_a_new_change() {
        let v = view(
            &[
                ("m/0", &[(REQUEST, "bad-1"), (FAILED, "bad-1 magnum-api failed")]),
                ("m/1", &[(REQUEST, "bad-2")]),
            ],
            &[(GRANTED, "m/0"), (GRANT_NONCE, "bad-1"), (GRANTED_AT, "5")],
            10,
        );
        let (w, _) = leader_step(&v);
        let mut app = v.app.clone();
        apply_writes(&mut app, &w);
        assert_eq!(app.get(HALTED).map(String::as_str), Some("m/0: magnum-api failed"));
        assert!(!app.contains_key(GRANTED));
        let halted = View {
            app: app.clone(),
            ..v.clone()
        };
        assert!(leader_step(&halted).0.is_empty(), "stays halted for the same change");
        assert_eq!(halted_on(&app, "bad-2"), Some("m/0: magnum-api failed"));
        let mut fixed = halted.clone();
        fixed
            .units
            .get_mut("m/1")
            .unwrap()
            .insert(REQUEST.into(), "good-3".into());
        fixed
            .units
            .get_mut("m/0")
            .unwrap()
            .insert(REQUEST.into(), "good-4".into());
        let (w, _) = leader_step(&fixed);
        let mut app = fixed.app.clone();
        apply_writes(&mut app, &w);
        assert!(!app.contains_key(HALTED));
        assert_eq!(app.get(GRANTED).map(String::as_str), Some("m/0"));
    }

    #[test]
    fn a_dead_or_departed_holder_loses_the_turn() {
        let v = view(
            &[("m/0", &[(REQUEST, "f-1")]), ("m/1", &[(REQUEST, "f-2")])],
            &[(GRANTED, "m/0"), (GRANT_NONCE, "f-1"), (GRANTED_AT, "0")],
            1000,
        );
        let (w, note) = leader_step(&v);
        assert!(note.unwrap().contains("taking it back"));
        assert!(w.contains(&(GRANTED, "m/1".into())));
        let gone = view(
            &[("m/1", &[(REQUEST, "f-2")])],
            &[(GRANTED, "m/0"), (GRANT_NONCE, "f-1"), (GRANTED_AT, "999")],
            1000,
        );
        assert!(leader_step(&gone).0.contains(&(GRANTED, "m/1".into())));
    }
}
