//! Desktops found in a state to finish, restart or remove, whatever the targets say.

use super::slots::{Member, Tally};
use super::{Action, DestroyReason, PlanInput};
use crate::model::{ObservedDesktop, PoolState};
use crate::policy::{ClassSpec, Fleet, ShutoffAction};

pub(super) fn destroy(d: &ObservedDesktop, reason: DestroyReason) -> Action {
    Action::Destroy {
        host: d.host.clone(),
        desktop: d.name.clone(),
        reason,
    }
}

/// An assigned desktop with no job on it that is shut off: start it again for its user, or
/// recycle it when its class says so, when its disk is gone, or when restarting keeps failing.
/// One that still runs is left to its user, even without its disk (destroying it would end a
/// session that may still be saving elsewhere); the user's next login gets a fresh desktop.
pub(super) fn recover_production(
    d: &ObservedDesktop,
    class: &ClassSpec,
    fleet: &Fleet,
    actions: &mut Vec<Action>,
) {
    if d.running {
        return;
    }
    let restart = restarts_on_shutoff(class)
        && d.disk_problem.is_none()
        && d.meta.attempts < fleet.engine.max_attempts;
    if restart {
        actions.push(Action::Restart {
            host: d.host.clone(),
            desktop: d.name.clone(),
        });
    } else if d.disk_problem.is_some() {
        actions.push(destroy(d, DestroyReason::DiskMissing));
    } else {
        actions.push(destroy(d, DestroyReason::ShutOff));
    }
}

/// Whether an assigned desktop of `class` found shut off is started again for its user.
pub fn restarts_on_shutoff(class: &ClassSpec) -> bool {
    class.policy.on_shutoff == ShutoffAction::Restart
}

/// A desktop found in the creation pool with no job on it: finish it or give up on it.
pub(super) fn recover_creation(
    d: &ObservedDesktop,
    class: &ClassSpec,
    fleet: &Fleet,
    actions: &mut Vec<Action>,
) {
    if d.disk_problem.is_some() {
        actions.push(destroy(d, DestroyReason::DiskMissing));
    } else if d.meta.attempts >= fleet.engine.max_attempts {
        actions.push(destroy(d, DestroyReason::Failed));
    } else if !d.persistent {
        actions.push(destroy(d, DestroyReason::Undefined));
    } else if d.meta.seed_version != class.seed.version {
        actions.push(destroy(d, DestroyReason::StaleSeed));
    } else if d.running {
        actions.push(Action::Promote {
            host: d.host.clone(),
            desktop: d.name.clone(),
        });
    } else {
        actions.push(Action::Boot {
            host: d.host.clone(),
            desktop: d.name.clone(),
        });
    }
}

/// A class's desktops by what they can do this pass.
pub(super) struct Sorted<'a> {
    /// Assigned to a user, connected or not (on reachable hosts or not).
    pub(super) production: u32,
    /// Being made (on reachable hosts).
    pub(super) creation: u32,
    /// Ready for a new login.
    pub(super) fresh: Vec<&'a ObservedDesktop>,
    /// Ready but unable to serve a new login (old seed version, draining host, undefined).
    pub(super) stale: Vec<Member<'a>>,
}

/// Counts and sorts a class's desktops, and orders what broken or interrupted ones need.
pub(super) fn sort_desktops<'a>(
    desktops: &[Member<'a>],
    class: &ClassSpec,
    first_of_name: bool,
    input: &PlanInput<'_>,
    tally: &Tally<'_>,
    actions: &mut Vec<Action>,
) -> Sorted<'a> {
    let fleet = input.fleet;
    let busy = |d: &ObservedDesktop| input.busy.desktops.contains(&d.name);
    let mut sorted = Sorted {
        production: 0,
        creation: 0,
        fresh: Vec::new(),
        stale: Vec::new(),
    };
    for &member in desktops {
        let d = member.desktop;
        if tally.down(member.slot) {
            // Unreachable: its users keep their desktops; nothing else there can be used.
            if member.pool.is_assigned() {
                sorted.production += 1;
            }
            continue;
        }
        match member.pool {
            // A disconnected user's desktop is still theirs: it counts, and is restarted, as
            // production until the engine recycles it at the end of its grace.
            PoolState::Production | PoolState::Disconnected => {
                sorted.production += 1;
                // Only one shut off needs anything (checked first: most are running).
                if !member.running() && !busy(d) {
                    recover_production(d, class, fleet, actions);
                }
            }
            PoolState::Creation => {
                sorted.creation += 1;
                if !busy(d) {
                    recover_creation(d, class, fleet, actions);
                }
            }
            PoolState::Buffer => {
                if member.disk_problem() {
                    if !busy(d) {
                        actions.push(destroy(d, DestroyReason::DiskMissing));
                    }
                    continue;
                }
                if !member.running() && !busy(d) {
                    actions.push(destroy(d, DestroyReason::NotRunning));
                    continue;
                }
                if !member.on_seed(class, first_of_name)
                    || tally.draining(member.slot)
                    || !member.persistent()
                {
                    sorted.stale.push(member);
                } else {
                    sorted.fresh.push(d);
                }
            }
            PoolState::Retired => {
                // A logout's desktop waits out the window in which a mass logout could still
                // keep it for its user (the ledger's rule).
                if !busy(d)
                    && !crate::ledger::settling(&d.meta, &class.policy, input.now.as_second())
                {
                    actions.push(destroy(d, DestroyReason::Retired));
                }
            }
        }
    }
    sorted
}
