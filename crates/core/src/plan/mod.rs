//! The planner: a pure function from (fleet, observed desktops and hosts, work in flight, now)
//! to per class targets and the actions that close the gap. No I/O, no clock, no randomness: the
//! engine, the tests and the simulator all call it the same way.
//!
//! Per class, each pass:
//! 1. production target = the expected production of the period in force now or `ready_secs`
//!    ahead (whichever asks more), never below the desktops actually assigned;
//! 2. buffer target = desktops expected to log in but not yet assigned + the buffer rule's spare
//!    (a percentage of current production between a floor and a ceiling), within the class cap.
//!    A *predictive* class ([`crate::policy::Predictive`]) replaces the percentage with
//!    [`predictive_spare`] of its forecast (`PlanInput::forecasts`), bounded by the larger floor
//!    and the larger ceiling of the rules in force now and `ready_secs` ahead;
//! 3. desktops that cannot serve a new login (old seed version, on a draining host) are
//!    *stale*: fresh ones are made first, and the stale ones are removed once they are covered;
//! 4. a surplus of fresh desktops is removed only after it has lasted `scale_down_delay_secs`
//!    (hysteresis: a target that wobbles never creates and destroys in turn);
//! 5. new desktops go to the least loaded active host that has room, a pacing slot and a
//!    complete seed copy (a copy is ordered first where one is missing).
//!
//! Standby hosts are brought into service when the desktops wanted do not fit on the hosts in
//! service, and drained back to standby once they have been unneeded for `standby_idle_secs`.

mod hosts;
mod index;
mod leftovers;
mod placement;
mod reasons;
mod recover;
mod seeds;
mod slots;
mod stale;
mod targets;

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;
use serde::Serialize;

use crate::model::{ObservedDesktop, SeedCopy};
use crate::policy::{ClassSpec, Fleet};

pub use reasons::{Reason, render};
pub use recover::restarts_on_shutoff;
pub use targets::{poisson_quantile, predictive_spare};

/// What the engine currently knows about a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostStatus {
    /// In service: desktops are placed here.
    Active,
    /// Not in service (a standby host nobody needs, not connected).
    Standby,
    /// Being brought into service (activation command, connection).
    Activating,
    /// No new desktops; buffered ones move away; production ones stay until released.
    /// `by_admin` drains stay until the admin undrains; others return the host to standby.
    Draining { by_admin: bool },
    /// Could not be reached; retried with backoff.
    Down { reason: String },
}

impl HostStatus {
    pub fn label(&self) -> &'static str {
        match self {
            HostStatus::Active => "active",
            HostStatus::Standby => "standby",
            HostStatus::Activating => "activating",
            HostStatus::Draining { .. } => "draining",
            HostStatus::Down { .. } => "down",
        }
    }
}

/// One host as the planner sees it.
#[derive(Debug, Clone)]
pub struct HostView {
    pub name: String,
    pub status: HostStatus,
    /// Seed copies in the host's creation pool.
    pub seed_copies: Vec<SeedCopy>,
    /// Seed source volumes the host holds, as (pool, volume).
    pub seed_sources: Vec<(String, String)>,
    /// Desktop volumes in the creation pool (`dp-*`), for orphan clean-up.
    pub desktop_volumes: Vec<String>,
    /// `dp-*` domains without deskpool metadata (interrupted before their label was written).
    pub unlabelled_desktops: Vec<String>,
}

/// Work the engine has under way or is holding back, so the planner does not order it twice.
#[derive(Debug, Clone, Default)]
pub struct Busy {
    /// Desktops with a job running or a retry pending.
    pub desktops: HashSet<String>,
    /// Volumes being written (a new desktop's disk before its domain exists).
    pub volumes: HashSet<(String, String)>,
    /// Seed copies under way or waiting for a retry: (host, class, version).
    pub seed_copies: HashSet<(String, String, String)>,
    /// Classes whose creations are failing, with until when and why.
    pub class_backoff: HashMap<String, (Timestamp, String)>,
    /// Admin floor raises: class → (floor, expiry).
    pub floor_raises: HashMap<String, (u32, Timestamp)>,
    /// Fresh desktops owed to classes whose policy recycles on logout: each released desktop
    /// is replaced at once, even when the buffer is at its target (a surplus is trimmed later,
    /// after the scale-down delay).
    pub owed_replacements: HashMap<String, u32>,
}

/// What the planner remembers between passes (it is handed back in, never kept inside).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanMemory {
    /// Since when each class has had more fresh desktops than its target.
    pub surplus_since: BTreeMap<String, Timestamp>,
    /// Since when each in-service standby host has been unneeded.
    pub unneeded_since: BTreeMap<String, Timestamp>,
}

/// Everything the planner reads.
pub struct PlanInput<'a> {
    pub fleet: &'a Fleet,
    pub hosts: &'a [HostView],
    pub desktops: &'a [ObservedDesktop],
    pub busy: &'a Busy,
    pub memory: &'a PlanMemory,
    pub now: Timestamp,
    /// Per class with a predictive policy: the logins expected during the next `ready_secs`
    /// (from [`super::demand::DemandModel::forecast`], computed by the caller). A predictive
    /// class missing here counts as expecting none (its spare is then the floor, at least 1).
    pub forecasts: &'a HashMap<String, f64>,
    /// Per class, the measured time a desktop takes from its clone to the buffer
    /// ([`crate::timings::StepTimings::time_to_ready_secs`]); the look-ahead is the longer of
    /// it and the policy's `ready_secs`. A class missing here looks ahead by `ready_secs`.
    pub measured_ready: &'a HashMap<String, u64>,
}

/// Why a desktop is destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DestroyReason {
    /// More buffered desktops than the target, for longer than the scale-down delay.
    Surplus,
    /// Its seed version is no longer current (replaced by a fresh one first).
    StaleSeed,
    /// Its host is draining (replaced elsewhere first).
    HostDraining,
    /// Released by its user, or retired earlier and not yet gone.
    Retired,
    /// Failed too many times to become ready.
    Failed,
    /// Found shut off while it should be ready.
    NotRunning,
    /// Left unlabelled by an interrupted creation.
    Unlabelled,
    /// Undefined on its host behind deskpool's back (it runs on as a transient domain, gone at
    /// its next shutdown): replaced by a fresh one first.
    Undefined,
    /// Its class is no longer configured.
    UnknownClass,
    /// Its own disk volume, or an image backing it, is gone: it can never be used again.
    DiskMissing,
    /// Assigned, found shut off, and its class recycles such desktops (or restarting it failed
    /// too often): its user gets a fresh one at the next login.
    ShutOff,
}

/// A step the engine should take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Copy a class's seed into `host`'s creation pool, from `source_host` (same host: a volume
    /// clone; another host: download/upload streams). `from_copy` reads the source host's seed
    /// copy instead of its seed library.
    CopySeed {
        host: String,
        class: String,
        version: String,
        source_host: String,
        from_copy: bool,
    },
    /// Make a new desktop: overlay volume, domain, boot, buffer.
    Create {
        host: String,
        class: String,
        version: String,
    },
    /// Boot a desktop left defined but not running (an interrupted creation).
    Boot {
        host: String,
        desktop: String,
    },
    /// Start an assigned desktop found shut off again, for its user (its class restarts such
    /// desktops).
    Restart {
        host: String,
        desktop: String,
    },
    /// Move a running desktop from creation to the buffer (an interrupted creation).
    Promote {
        host: String,
        desktop: String,
    },
    Destroy {
        host: String,
        desktop: String,
        reason: DestroyReason,
    },
    /// Delete a desktop volume that no domain uses.
    DeleteVolume {
        host: String,
        volume: String,
    },
    /// Delete a seed copy nothing is backed by any more (or an incomplete one).
    DeleteSeedCopy {
        host: String,
        class: String,
        version: String,
    },
    ActivateHost {
        host: String,
    },
    DrainHost {
        host: String,
    },
    /// A draining host with demand for it again goes back into service.
    UndrainHost {
        host: String,
    },
    ReturnToStandby {
        host: String,
    },
}

/// Targets and levels of one class after a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassPlan {
    pub name: String,
    pub production: u32,
    pub buffer: u32,
    pub creation: u32,
    pub production_target: u32,
    pub buffer_target: u32,
    /// Production + buffer wanted.
    pub total_target: u32,
    /// Index of the period in force (looked ahead), if any.
    pub period: Option<usize>,
    /// Buffered desktops on an older seed version.
    pub stale: u32,
    /// What holds the buffer where it is, or moves it ([`ClassPlan::explanation`] says it in
    /// one line).
    pub reasons: Vec<Reason>,
    /// An admin's raised buffer floor in force, and when it ends.
    pub raised_floor: Option<RaisedFloor>,
}

/// A buffer floor an admin raised for a while (`Command::RaiseFloor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaisedFloor {
    pub floor: u32,
    pub until: Timestamp,
}

impl ClassPlan {
    /// Why the class is where it is, in one line ("buffer 3 below target 12: 4 in creation,
    /// host h2 at capacity").
    pub fn explanation(&self) -> String {
        reasons::render(self.buffer, self.buffer_target, &self.reasons)
    }
    /// Whether the class holds exactly what its targets ask, with nothing in flight.
    pub fn is_steady(&self) -> bool {
        self.creation == 0 && self.stale == 0 && self.buffer == self.buffer_target
    }
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub classes: Vec<ClassPlan>,
    pub actions: Vec<Action>,
    pub memory: PlanMemory,
}

pub fn plan(input: &PlanInput<'_>) -> Plan {
    let fleet = input.fleet;
    let mut actions = Vec::new();
    let mut memory = PlanMemory::default();
    let classes = index::ClassIndex::new(fleet);
    let busy = index::BusyIndex::new(input);
    let mut hosts = slots::Hosts::new(input, &classes);
    let tally = slots::tally(input, &mut hosts, &classes, &mut actions);
    let unused_copies = leftovers::judge_seed_copies(&mut hosts, &classes, &tally, &busy);

    let mut class_plans = Vec::with_capacity(fleet.classes.len());
    // Desktops per class that could not be placed for lack of room (drives standby activation).
    let mut unplaced_for_room: Vec<(&ClassSpec, u32)> = Vec::new();
    let mut total_wanted: Vec<(&ClassSpec, u32)> = Vec::new();
    for (ci, class) in fleet.classes.iter().enumerate() {
        let name_id = classes.name_id(ci);
        let sorted = recover::sort_desktops(
            tally.class_members(name_id),
            class,
            name_id == ci,
            input,
            &tally,
            &mut actions,
        );
        let targets = targets::class_targets(input, class, sorted.production);
        let mut notes = Vec::new();
        let to_create = stale::plan_stale(
            class,
            &sorted,
            &targets,
            input,
            &tally,
            &mut actions,
            &mut notes,
        );
        stale::plan_surplus(
            class,
            &sorted,
            &targets,
            input,
            &mut memory,
            &mut actions,
            &mut notes,
        );
        let placement = placement::place(
            ci,
            class,
            to_create,
            &mut hosts,
            input,
            &mut actions,
            &mut notes,
        );
        seeds::order_seed_copies(
            ci,
            class,
            &hosts,
            &busy,
            &mut actions,
            to_create > placement.placed,
        );
        if placement.short_room > 0 {
            unplaced_for_room.push((class, placement.short_room));
        }
        let mut reasons = reasons::class_reasons(
            ci, class, &sorted, to_create, &placement, &hosts, &busy, notes,
        );
        let raised_floor = input
            .busy
            .floor_raises
            .get(&class.name)
            .filter(|(_, until)| *until > input.now)
            .map(|&(floor, until)| RaisedFloor { floor, until });
        // Last among the reasons: a raised floor explains a buffer above its usual target.
        if let Some(raised) = &raised_floor {
            reasons.push(Reason::FloorRaised {
                floor: raised.floor,
                ends_in_secs: raised.until.duration_since(input.now).as_secs(),
            });
        }
        let production = sorted.production;
        total_wanted.push((class, production + targets.buffer_target));
        class_plans.push(ClassPlan {
            name: class.name.clone(),
            production,
            buffer: (sorted.fresh.len() + sorted.stale.len()) as u32,
            creation: sorted.creation,
            production_target: targets.production_target,
            buffer_target: targets.buffer_target,
            total_target: production + targets.buffer_target,
            period: targets.period,
            stale: sorted.stale.len() as u32,
            reasons,
            raised_floor,
        });
    }

    leftovers::clean_leftovers(input, &hosts, &tally, &busy, unused_copies, &mut actions);
    hosts::plan_hosts(
        input,
        &hosts.slots,
        &unplaced_for_room,
        &total_wanted,
        &mut memory,
        &mut actions,
    );

    Plan {
        classes: class_plans,
        actions,
        memory,
    }
}

#[cfg(test)]
mod placement_tests;
#[cfg(test)]
mod standby_tests;
#[cfg(test)]
mod tests;
