//! Stale and surplus desktops: how many to create, which old ones make way, and when a surplus
//! has lasted long enough to be removed.

use super::index::FastSet;
use super::recover::{Sorted, destroy};
use super::slots::{Member, Tally};
use super::targets::Targets;
use super::{Action, DestroyReason, PlanInput, PlanMemory, Reason};
use crate::model::ObservedDesktop;
use crate::policy::ClassSpec;

/// Oldest seed version first, then the oldest desktop.
fn oldest_first(a: &ObservedDesktop, b: &ObservedDesktop) -> std::cmp::Ordering {
    (a.meta.seed_version.as_str(), a.meta.created_at)
        .cmp(&(b.meta.seed_version.as_str(), b.meta.created_at))
}

/// The creations wanted within the cap, and the stale desktops removed (to make way under the
/// cap, or because fresh ones cover the target). Returns the desktops to create.
pub(super) fn plan_stale(
    class: &ClassSpec,
    sorted: &Sorted<'_>,
    targets: &Targets,
    input: &PlanInput<'_>,
    tally: &Tally<'_>,
    actions: &mut Vec<Action>,
    notes: &mut Vec<Reason>,
) -> u32 {
    let policy = &class.policy;
    let busy = |d: &ObservedDesktop| input.busy.desktops.contains(&d.name);
    let buffer_target = targets.buffer_target;
    let fresh = sorted.fresh.len() as u32;
    let stale = sorted.stale.len() as u32;
    let supply = fresh + sorted.creation;
    let owed = input
        .busy
        .owed_replacements
        .get(&class.name)
        .copied()
        .unwrap_or(0);
    let wanted = buffer_target.saturating_sub(supply).max(owed);
    let in_class = sorted.production + supply + stale;
    let cap_room = policy.cap.saturating_sub(in_class);
    let mut to_create = wanted;
    let mut make_way = 0;
    if wanted > cap_room {
        make_way = (wanted - cap_room).min(stale);
        to_create = cap_room + make_way;
        if to_create < wanted {
            notes.push(Reason::CapReached { cap: policy.cap });
        }
    }
    // Stale desktops are removed once fresh ones cover the target.
    let fresh_short = buffer_target.saturating_sub(fresh);
    let stale_needed = fresh_short.min(stale);
    if make_way == 0 && stale_needed == stale {
        return to_create;
    }
    let mut stale_sorted = sorted.stale.clone();
    stale_sorted.sort_by(|a, b| oldest_first(a.desktop, b.desktop));
    // The oldest make way under the cap; those beyond the ones still needed go too (each
    // name once).
    let mut stale_to_remove: Vec<Member<'_>> = Vec::new();
    let mut removed: FastSet<&str> = FastSet::default();
    for &m in stale_sorted.iter().take(make_way as usize) {
        stale_to_remove.push(m);
        removed.insert(m.desktop.name.as_str());
    }
    for &m in stale_sorted.iter().skip(stale_needed as usize) {
        if removed.insert(m.desktop.name.as_str()) {
            stale_to_remove.push(m);
        }
    }
    for m in &stale_to_remove {
        let d = m.desktop;
        if !busy(d) {
            let reason = if tally.draining(m.slot) {
                DestroyReason::HostDraining
            } else if !d.persistent {
                DestroyReason::Undefined
            } else {
                DestroyReason::StaleSeed
            };
            actions.push(destroy(d, reason));
        }
    }
    to_create
}

/// A surplus of fresh desktops is removed only after it has lasted the scale-down delay.
pub(super) fn plan_surplus(
    class: &ClassSpec,
    sorted: &Sorted<'_>,
    targets: &Targets,
    input: &PlanInput<'_>,
    memory: &mut PlanMemory,
    actions: &mut Vec<Action>,
    notes: &mut Vec<Reason>,
) {
    let policy = &class.policy;
    let now = input.now;
    let busy = |d: &ObservedDesktop| input.busy.desktops.contains(&d.name);
    let fresh = sorted.fresh.len() as u32;
    let supply = fresh + sorted.creation;
    let surplus = supply.saturating_sub(targets.buffer_target);
    let removable = surplus.min(fresh);
    if removable == 0 {
        return;
    }
    let since = input
        .memory
        .surplus_since
        .get(&class.name)
        .copied()
        .unwrap_or(now);
    memory.surplus_since.insert(class.name.clone(), since);
    let waited = now.duration_since(since).as_secs();
    if waited >= policy.scale_down_delay_secs as i64 {
        let mut candidates: Vec<&ObservedDesktop> =
            sorted.fresh.iter().copied().filter(|d| !busy(d)).collect();
        candidates.sort_by(|a, b| oldest_first(a, b));
        for d in candidates.into_iter().take(removable as usize) {
            actions.push(destroy(d, DestroyReason::Surplus));
        }
    } else {
        notes.push(Reason::SurplusWaiting {
            count: removable,
            removed_in_secs: policy.scale_down_delay_secs as i64 - waited,
        });
    }
}
