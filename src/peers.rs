//! The peer relation `restart`, read and written through the hook tools,
//! for rolling restarts (the protocol is pure, in `plan::rolling`). Only
//! touched when a restart is needed or the roll moves: a healthy no-op hook
//! never spawns these tools.

use anyhow::Result;

use crate::juju::HookTools;
use crate::plan::rolling::{self, Data, View};

pub struct Peers {
    pub id: String,
    pub me: String,
    app_name: String,
    pub leader: bool,
    pub view: View,
}

/// This unit's name (`JUJU_UNIT_NAME`).
pub fn me() -> String {
    std::env::var("JUJU_UNIT_NAME").unwrap_or_else(|_| "magnum-capi/0".into())
}

/// The peers, or `None` when this unit is alone (it restarts directly).
pub fn load(tools: &HookTools, timeout: u64) -> Result<Option<Peers>> {
    let Some(id) = tools.relation_ids("restart")?.into_iter().next() else {
        return Ok(None);
    };
    let others = tools.relation_list(&id)?;
    if others.is_empty() {
        return Ok(None);
    }
    let me = me();
    let app_name = me.split('/').next().unwrap_or("magnum-capi").to_string();
    let mut view = View {
        now: crate::clock::epoch_secs(),
        timeout,
        ..View::default()
    };
    for unit in others.iter().chain(std::iter::once(&me)) {
        view.units.insert(unit.clone(), tools.relation_get(&id, unit, false)?);
    }
    view.app = tools.relation_get(&id, &app_name, true)?;
    let leader = tools.is_leader()?;
    Ok(Some(Peers {
        id,
        me,
        app_name,
        leader,
        view,
    }))
}

impl Peers {
    /// The leader moves the roll: grant, take back, halt, resume.
    pub fn lead(&mut self, tools: &HookTools) -> Result<()> {
        if !self.leader {
            return Ok(());
        }
        let (writes, note) = rolling::leader_step(&self.view);
        if let Some(n) = note {
            tracing::info!("rolling restart: {n}");
        }
        if !writes.is_empty() {
            let pairs: Vec<(&str, &str)> = writes.iter().map(|(k, v)| (*k, v.as_str())).collect();
            tools.relation_set(&self.id, true, &pairs)?;
            rolling::apply_writes(&mut self.view.app, &writes);
        }
        Ok(())
    }

    /// Write this unit's data (`""` deletes).
    pub fn set(&mut self, tools: &HookTools, pairs: &[(&str, &str)]) -> Result<()> {
        tools.relation_set(&self.id, false, pairs)?;
        let mine: &mut Data = self.view.units.entry(self.me.clone()).or_default();
        for (k, v) in pairs {
            if v.is_empty() {
                mine.remove(*k);
            } else {
                mine.insert((*k).to_string(), (*v).to_string());
            }
        }
        Ok(())
    }

    /// Is a roll going on (anyone waiting or holding the turn)?
    pub fn rolling(&self) -> bool {
        self.view.app.contains_key(rolling::GRANTED)
            || self.view.units.values().any(|d| {
                d.get(rolling::REQUEST).is_some_and(|r| {
                    d.get(rolling::DONE) != Some(r)
                        && !d.get(rolling::FAILED).is_some_and(|f| f.starts_with(r.as_str()))
                })
            })
    }

    pub fn app_name(&self) -> &str {
        &self.app_name
    }
}
