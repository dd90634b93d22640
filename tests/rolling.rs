//! HA: three magnum units, one peer relation, hook runs interleaved in many
//! seeded random orders. Never two units restarting at once (the fake
//! systemctl records a restart outside the unit's turn as a violation), all
//! converge to the same config, a bad change stops after the first unit, the
//! leader can change mid-roll, and a unit that leaves holding the turn does
//! not block the others.

mod support;

use std::collections::VecDeque;
use std::path::PathBuf;

use serde_json::{json, Value};
use support::{Unhealthy, Unit, KUBECONFIG};

const CAPI_CONF: &str = "/etc/magnum/magnum.conf.d/99-capi.conf";

struct Cluster {
    units: Vec<Unit>,
    peers: PathBuf,
    _dir: tempfile::TempDir,
    queue: VecDeque<(usize, &'static str)>,
    rng: u64,
    /// Crash this unit once at this fault point (feature `faults`).
    crash_once: Option<(usize, &'static str)>,
}

impl Cluster {
    fn new(n: usize, seed: u64) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let peers = dir.path().join("peers.json");
        let names: Vec<String> = (0..n).map(|i| format!("magnum-capi/{i}")).collect();
        std::fs::write(
            &peers,
            // Deployed together (a bundle): every unit is in goal-state's
            // application, none in the relation's scope before its install.
            json!({"leader": names[0], "application": names, "members": [], "app": {}, "units": {}}).to_string(),
        )
        .unwrap();
        let units = names
            .iter()
            .map(|name| {
                let unit = Unit::member(name, dir.path());
                unit.kubeconfig(KUBECONFIG);
                unit
            })
            .collect();
        Cluster {
            units,
            peers,
            _dir: dir,
            queue: VecDeque::new(),
            rng: seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407),
            crash_once: None,
        }
    }

    fn random(&mut self, n: usize) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % n as u64) as usize
    }

    fn store(&self) -> Value {
        serde_json::from_slice(&std::fs::read(&self.peers).unwrap()).unwrap()
    }

    fn members(&self) -> Vec<usize> {
        let s = self.store();
        (0..self.units.len())
            .filter(|i| {
                s["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m == self.units[*i].name.as_str())
            })
            .collect()
    }

    /// Run a hook; what it changed in the relation reaches the others as
    /// restart-relation-changed, as Juju delivers it.
    fn hook(&mut self, i: usize, hook: &'static str) {
        let before = self.store();
        let run = match self.crash_once {
            Some((j, point)) if j == i => {
                // Crashed or not: the point may come later in the roll.
                let run = self.units[i]
                    .hook(hook)
                    .env(&[("MAGNUM_CAPI_FAULT", point)])
                    .expect_any_exit()
                    .run();
                if run.code != 0 && run.stderr.contains(&format!("fault injected at {point}")) {
                    // Juju drops the hook's relation settings and runs it
                    // again later.
                    self.crash_once = None;
                    assert_eq!(
                        self.store()["units"],
                        before["units"],
                        "a failed hook's relation-set was committed"
                    );
                    self.queue.push_back((i, hook));
                    return;
                }
                run
            }
            _ => self.units[i].hook(hook).run(),
        };
        assert_eq!(run.code, 0, "{} {hook}: {}", self.units[i].name, run.stderr);
        if hook == "install" {
            self.enter_scope(i);
        }
        let after = self.store();
        let me = self.units[i].name.clone();
        if before["units"][&me] != after["units"][&me] || before["app"] != after["app"] {
            for j in self.members() {
                if j != i {
                    self.queue.push_back((j, "restart-relation-changed"));
                }
            }
        }
    }

    /// After its install a unit enters the relation's scope (Juju 3.6: the
    /// CreatedRelations resolver, then relation-created); each side then
    /// gets restart-relation-joined for the other.
    fn enter_scope(&mut self, i: usize) {
        let mut s = self.store();
        let me = self.units[i].name.clone();
        let already: Vec<usize> = self.members();
        s["members"].as_array_mut().unwrap().push(json!(me));
        std::fs::write(&self.peers, s.to_string()).unwrap();
        for j in already {
            self.queue.push_back((j, "restart-relation-joined"));
            self.queue.push_back((i, "restart-relation-joined"));
        }
    }

    /// Deliver queued events in a random order, with update-status now and
    /// then, until nothing is left to do.
    fn settle(&mut self) {
        for _ in 0..400 {
            if self.queue.is_empty() {
                // Quiet: update-status everywhere (grants time out, units retry).
                for i in self.members() {
                    self.hook(i, "update-status");
                }
                if self.queue.is_empty() {
                    return;
                }
                continue;
            }
            let k = self.random(self.queue.len());
            let (i, hook) = self.queue.remove(k).unwrap();
            if self.members().contains(&i) {
                self.hook(i, hook);
            }
            if self.random(5) == 0 {
                let members = self.members();
                let j = members[self.random(members.len())];
                self.hook(j, "update-status");
            }
        }
        panic!("the roll did not settle in 400 steps: {}", self.store());
    }

    fn all(&mut self, hook: &'static str) {
        let mut order: Vec<usize> = if hook == "install" {
            (0..self.units.len()).collect()
        } else {
            self.members()
        };
        for k in (1..order.len()).rev() {
            let j = self.random(k + 1);
            order.swap(k, j);
        }
        for i in order {
            self.hook(i, hook);
        }
    }

    fn config(&mut self, key: &str, value: Value) {
        for u in &self.units {
            u.config(key, value.clone());
        }
    }

    fn restarts(&self) -> Vec<String> {
        self.store()["restarts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    fn assert_no_violation(&self) {
        let s = self.store();
        assert!(
            s["violations"].as_array().is_none_or(|v| v.is_empty()),
            "two units restarted at once: {}",
            s["violations"]
        );
    }
}

/// A bundle deploy onto running magnum units: no install sees a peer (the
/// relation is not in install's context, and lists a unit only once it
/// joined), yet no two units restart at once: goal-state tells each that
/// others are coming, so each waits for the roll (issue 19, item 5).
fn installed(seed: u64) -> Cluster {
    let mut c = Cluster::new(3, seed);
    c.all("install");
    c.settle();
    c.assert_no_violation();
    for u in &c.units {
        assert_eq!(u.status().0, "active", "{}: {:?}", u.name, u.status());
    }
    c
}

#[test]
fn a_config_change_rolls_one_unit_at_a_time_in_any_order() {
    for seed in 1..=12 {
        let mut c = installed(seed);
        let before = c.restarts().len();
        c.config("namespace-prefix", json!("tenant"));
        c.all("config-changed");
        c.settle();
        c.assert_no_violation();
        let restarts = &c.restarts()[before..];
        assert_eq!(restarts.len(), 3, "seed {seed}: each unit restarts once: {restarts:?}");
        for u in &c.units {
            assert!(
                u.text(CAPI_CONF).contains("namespace_prefix = tenant\n"),
                "seed {seed}: {}",
                u.name
            );
            assert_eq!(u.status().0, "active", "seed {seed} {}: {:?}", u.name, u.status());
        }
        // Quiet again: update-status spawns nothing on any unit.
        for u in &c.units {
            u.hook("update-status")
                .note(&format!("seed {seed}"))
                .expect_no_spawn()
                .run();
        }
    }
}

#[test]
fn a_bad_change_stops_after_the_first_unit() {
    a_bad_change_halts(false);
}

/// Issue 23, item 5: a start job systemd refuses at once halts the roll
/// like a crash loop does (it once left the others queued forever).
#[test]
fn a_refused_start_job_halts_the_roll() {
    a_bad_change_halts(true);
}

fn a_bad_change_halts(refuse: bool) {
    for seed in 1..=8 {
        let mut c = installed(seed);
        let good: Vec<String> = c.units.iter().map(|u| u.text(CAPI_CONF)).collect();
        for u in &c.units {
            u.unhealthy_if(Unhealthy {
                path: CAPI_CONF.into(),
                contains: "namespace_prefix = broken".into(),
                journal: vec![
                    "oslo_config.cfg.ConfigFileValueError: Value for option namespace_prefix is not valid".into(),
                ],
                refuse,
            });
        }
        let before = c.restarts().len();
        c.config("namespace-prefix", json!("broken"));
        c.all("config-changed");
        c.settle();
        c.assert_no_violation();
        let restarts = c.restarts()[before..].to_vec();
        // The first unit restarts onto the bad config and back (rollback);
        // nobody else restarts.
        let first = restarts.first().cloned().expect("one unit went first");
        assert!(restarts.iter().all(|u| *u == first), "seed {seed}: {restarts:?}");
        for (u, good) in c.units.iter().zip(&good) {
            let (kind, message) = u.status();
            assert_eq!(kind, "blocked", "seed {seed} {}: {message}", u.name);
            assert!(
                message.contains(&first) || u.name == first,
                "seed {seed} {}: {message} does not name {first}",
                u.name
            );
            assert!(
                message.contains("ConfigFileValueError"),
                "seed {seed} {}: {message}",
                u.name
            );
            assert_eq!(
                &u.text(CAPI_CONF),
                good,
                "seed {seed} {}: keeps the good config",
                u.name
            );
            assert_eq!(u.systemd("magnum-api").active_state, "active");
        }
        // A fixed config rolls through again.
        c.config("namespace-prefix", json!("fixed"));
        c.all("config-changed");
        c.settle();
        c.assert_no_violation();
        for u in &c.units {
            assert_eq!(u.status().0, "active", "seed {seed} {}: {:?}", u.name, u.status());
            assert!(u.text(CAPI_CONF).contains("namespace_prefix = fixed"));
        }
    }
}

#[test]
fn the_leader_can_change_mid_roll() {
    for seed in 1..=6 {
        let mut c = installed(seed);
        c.config("namespace-prefix", json!("tenant"));
        c.all("config-changed");
        // A few steps of the roll, then a new leader.
        for _ in 0..2 {
            if let Some((i, h)) = c.queue.pop_front() {
                c.hook(i, h);
            }
        }
        let mut s = c.store();
        s["leader"] = json!("magnum-capi/2");
        std::fs::write(&c.peers, s.to_string()).unwrap();
        c.hook(2, "leader-elected");
        c.settle();
        c.assert_no_violation();
        for u in &c.units {
            assert!(
                u.text(CAPI_CONF).contains("namespace_prefix = tenant\n"),
                "seed {seed} {}",
                u.name
            );
            assert_eq!(u.status().0, "active", "seed {seed} {}: {:?}", u.name, u.status());
        }
    }
}

#[test]
fn a_unit_that_leaves_holding_the_turn_does_not_block_the_roll() {
    let mut c = installed(3);
    c.config("namespace-prefix", json!("tenant"));
    // Only the non-leaders ask; magnum-capi/1 gets the turn and vanishes.
    c.hook(1, "config-changed");
    c.hook(2, "config-changed");
    c.hook(0, "restart-relation-changed");
    let s = c.store();
    let holder = s["app"]["granted"].as_str().unwrap_or("").to_string();
    assert_eq!(holder, "magnum-capi/1", "{s}");
    let mut s = c.store();
    s["members"] = json!(["magnum-capi/0", "magnum-capi/2"]);
    s["application"] = json!(["magnum-capi/0", "magnum-capi/2"]);
    s["units"].as_object_mut().unwrap().remove("magnum-capi/1");
    std::fs::write(&c.peers, s.to_string()).unwrap();
    c.queue.retain(|(i, _)| *i != 1);
    c.hook(0, "restart-relation-departed");
    c.hook(0, "config-changed");
    c.settle();
    c.assert_no_violation();
    for i in [0, 2] {
        assert!(c.units[i].text(CAPI_CONF).contains("namespace_prefix = tenant\n"));
        assert_eq!(c.units[i].status().0, "active", "{:?}", c.units[i].status());
    }
}

/// Juju commits relation-set only when the hook exits 0 (issue 19, item
/// 6). A unit that restarts, writes `done`, then dies: the others never see
/// that `done`; the retried hook restarts again and the roll goes on, never
/// two units at once.
#[cfg(feature = "faults")]
#[test]
fn a_hook_that_dies_after_saying_done_is_retried_and_the_roll_goes_on() {
    for seed in 1..=6 {
        let mut c = installed(seed);
        let before = c.restarts().len();
        c.crash_once = Some((1, "rolling:done-set"));
        c.config("namespace-prefix", json!("after-a-crash"));
        c.all("config-changed");
        c.settle();
        c.assert_no_violation();
        assert!(c.crash_once.is_none(), "seed {seed}: the crash point was never reached");
        let restarts = c.restarts()[before..].to_vec();
        let of = |n: &str| restarts.iter().filter(|u| *u == n).count();
        assert_eq!(of("magnum-capi/1"), 2, "seed {seed}: {restarts:?}");
        assert_eq!(of("magnum-capi/0"), 1, "seed {seed}: {restarts:?}");
        assert_eq!(of("magnum-capi/2"), 1, "seed {seed}: {restarts:?}");
        for u in &c.units {
            assert_eq!(u.status().0, "active", "seed {seed} {}: {:?}", u.name, u.status());
            assert!(u.text(CAPI_CONF).contains("namespace_prefix = after-a-crash"));
        }
    }
}
