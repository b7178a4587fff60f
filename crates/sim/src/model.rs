//! The simulated hosts and desktops: what the planner observes, kept up to date in place (a
//! pass reads it as it is, nothing is rebuilt per pass).
//!
//! A desktop goes Cloning (`clone_secs`) → Booting (`boot_secs`) → Ready (the buffer) →
//! Assigned (production), and is destroyed on logout (in a class with a disconnect grace it is
//! Retired first, until the planner destroys it when it no longer settles); a disconnect under
//! a grace moves it to Disconnected (still its user's, counted as production) until they
//! reconnect or the grace ends. While it is cloning or booting it is in
//! the planner's creation pool and marked busy (a job is running on it), so the planner does
//! not try to recover it.

use std::collections::HashMap;

use deskpool_core::ledger;
use deskpool_core::model::{DesktopMeta, ObservedDesktop, PoolState, SeedCopy};
use deskpool_core::plan::{Busy, HostStatus, HostView};
use deskpool_core::policy::Fleet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Cloning,
    Booting,
    Ready,
    Assigned,
    /// Its user disconnected; kept for them through the class's grace.
    Disconnected,
    /// Its user logged out; destroyed by the planner once it no longer settles
    /// (`deskpool_core::ledger::settling`), or kept for them after a mass logout.
    Retired,
}

/// Per class counts, kept as desktops change.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub ready: u64,
    /// Assigned, connected or not.
    pub production: u64,
    /// Logged out, waiting to be destroyed.
    pub retired: u64,
    pub total: u64,
}

impl Counts {
    /// Desktops ready or in creation.
    pub fn stock(&self) -> u64 {
        self.total - self.production - self.retired
    }
}

pub struct Model {
    /// What the planner observes, one entry per desktop.
    pub observed: Vec<ObservedDesktop>,
    /// Class index and phase of each desktop (same order as `observed`).
    pub phase: Vec<(usize, Phase)>,
    index: HashMap<String, usize>,
    pub hosts: Vec<HostView>,
    pub busy: Busy,
    pub counts: Vec<Counts>,
    class_index: HashMap<String, usize>,
    next_id: u64,
}

impl Model {
    /// Hosts as configured: standby ones in standby, the others active; each holds every
    /// class's seed source, and no seed copy yet (the planner orders them).
    pub fn new(fleet: &Fleet) -> Model {
        let sources: Vec<(String, String)> = fleet
            .classes
            .iter()
            .map(|c| (c.seed.pool.clone(), c.seed.volume.clone()))
            .collect();
        let hosts = fleet
            .hosts
            .iter()
            .map(|h| HostView {
                name: h.name.clone(),
                status: if h.standby {
                    HostStatus::Standby
                } else {
                    HostStatus::Active
                },
                seed_copies: Vec::new(),
                seed_sources: sources.clone(),
                desktop_volumes: Vec::new(),
                unlabelled_desktops: Vec::new(),
            })
            .collect();
        Model {
            observed: Vec::new(),
            phase: Vec::new(),
            index: HashMap::new(),
            hosts,
            busy: Busy::default(),
            counts: vec![Counts::default(); fleet.classes.len()],
            class_index: fleet
                .classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.clone(), i))
                .collect(),
            next_id: 0,
        }
    }

    pub fn class_of(&self, name: &str) -> Option<usize> {
        self.class_index.get(name).copied()
    }

    pub fn host_mut(&mut self, name: &str) -> Option<&mut HostView> {
        self.hosts.iter_mut().find(|h| h.name == name)
    }

    /// Adds a complete seed copy of `class` at `version` on `host`.
    pub fn add_seed_copy(&mut self, host: &str, class: &str, version: &str) {
        if let Some(h) = self.host_mut(host)
            && !h
                .seed_copies
                .iter()
                .any(|s| s.class == class && s.version == version)
        {
            h.seed_copies.push(SeedCopy {
                class: class.to_string(),
                version: version.to_string(),
                volume: format!("seed-{class}@{version}.img"),
                path: format!("/sim/seed-{class}@{version}.img"),
                format: "qcow2".into(),
                complete: true,
            });
        }
    }

    /// A new desktop of `class` on `host`, cloning from `now`. Returns its name.
    pub fn create(
        &mut self,
        class: usize,
        class_name: &str,
        host: &str,
        version: &str,
        now: i64,
    ) -> String {
        self.next_id += 1;
        let name = format!("dp-{class_name}-{}", self.next_id);
        self.index.insert(name.clone(), self.observed.len());
        self.observed.push(ObservedDesktop {
            name: name.clone(),
            host: host.to_string(),
            meta: DesktopMeta {
                class: class_name.to_string(),
                pool: PoolState::Creation,
                seed_version: version.to_string(),
                user: None,
                created_at: now,
                changed_at: now,
                attempts: 0,
                term: 0,
            },
            running: false,
            persistent: true,
            disk_problem: None,
        });
        self.phase.push((class, Phase::Cloning));
        self.busy.desktops.insert(name.clone());
        self.counts[class].total += 1;
        name
    }

    pub fn phase_of(&self, name: &str) -> Option<(usize, Phase)> {
        self.index.get(name).map(|&i| self.phase[i])
    }

    /// deskpool's record of a desktop, as its label would hold it.
    pub fn meta_of(&self, name: &str) -> Option<&DesktopMeta> {
        self.index.get(name).map(|&i| &self.observed[i].meta)
    }

    /// Moves a desktop to `phase` (and the planner's matching pool).
    pub fn set_phase(&mut self, name: &str, phase: Phase, user: Option<&str>, now: i64) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        let (class, old) = self.phase[i];
        let c = &mut self.counts[class];
        match old {
            Phase::Ready => c.ready -= 1,
            Phase::Assigned | Phase::Disconnected => c.production -= 1,
            Phase::Retired => c.retired -= 1,
            _ => {}
        }
        match phase {
            Phase::Ready => c.ready += 1,
            Phase::Assigned | Phase::Disconnected => c.production += 1,
            Phase::Retired => c.retired += 1,
            _ => {}
        }
        self.phase[i].1 = phase;
        let d = &mut self.observed[i];
        d.meta.changed_at = now;
        match phase {
            Phase::Cloning | Phase::Booting => {
                d.meta.pool = PoolState::Creation;
                d.running = phase == Phase::Booting;
            }
            Phase::Ready => {
                d.meta.pool = PoolState::Buffer;
                d.running = true;
            }
            Phase::Assigned => {
                d.meta.pool = PoolState::Production;
                d.meta.user = user.map(str::to_string);
                d.running = true;
            }
            Phase::Disconnected => d.meta.pool = PoolState::Disconnected,
            // Keeps its user's name: a mass logout can still give it back to them.
            Phase::Retired => d.meta.pool = PoolState::Retired,
        }
        if matches!(phase, Phase::Ready | Phase::Assigned) {
            self.busy.desktops.remove(name);
        }
    }

    /// Destroys a desktop; returns its class and phase.
    pub fn remove(&mut self, name: &str) -> Option<(usize, Phase)> {
        let i = self.index.remove(name)?;
        let (class, phase) = self.phase.swap_remove(i);
        self.observed.swap_remove(i);
        if let Some(moved) = self.observed.get(i) {
            self.index.insert(moved.name.clone(), i);
        }
        self.busy.desktops.remove(name);
        let c = &mut self.counts[class];
        c.total -= 1;
        match phase {
            Phase::Ready => c.ready -= 1,
            Phase::Assigned | Phase::Disconnected => c.production -= 1,
            Phase::Retired => c.retired -= 1,
            _ => {}
        }
        Some((class, phase))
    }

    /// The ready desktop a login of `class` gets, by the engine's rule
    /// ([`deskpool_core::ledger::pick`]) among those on an active host.
    pub fn ready_of(&self, class_name: &str, version: &str) -> Option<String> {
        let active = |host: &str| {
            self.hosts
                .iter()
                .any(|h| h.name == host && h.status == HostStatus::Active)
        };
        let candidates = self.observed.iter().filter(|d| {
            ledger::can_hand_out(d, class_name)
                && !self.busy.desktops.contains(&d.name)
                && active(&d.host)
        });
        ledger::pick(candidates, version).map(|d| d.name.clone())
    }

    /// Hosts in service (active, activating or draining).
    pub fn hosts_in_service(&self) -> u64 {
        self.hosts
            .iter()
            .filter(|h| {
                matches!(
                    h.status,
                    HostStatus::Active | HostStatus::Activating | HostStatus::Draining { .. }
                )
            })
            .count() as u64
    }
}
