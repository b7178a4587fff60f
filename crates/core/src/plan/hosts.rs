//! Standby hosts: brought into service when the wanted desktops do not fit, drained back when
//! long unneeded.

use super::slots::HostSlot;
use super::{Action, HostStatus, PlanInput, PlanMemory};
use crate::policy::{ClassSpec, HostSpec, Usage};

/// Standby hosts: activate when the wanted desktops do not fit; drain when long unneeded.
pub(super) fn plan_hosts(
    input: &PlanInput<'_>,
    slots: &[HostSlot<'_>],
    unplaced_for_room: &[(&ClassSpec, u32)],
    total_wanted: &[(&ClassSpec, u32)],
    memory: &mut PlanMemory,
    actions: &mut Vec<Action>,
) {
    let engine = &input.fleet.engine;
    let now = input.now;

    // Capacity on its way (activating hosts) covers part of the shortfall first.
    let mut shortfall: Vec<(&ClassSpec, u32)> = unplaced_for_room.to_vec();
    for slot in slots
        .iter()
        .filter(|s| s.view.status == HostStatus::Activating)
    {
        absorb(&mut shortfall, slot);
    }
    // A draining standby host that is wanted again comes back before a new one is woken.
    let mut undrained: Vec<&str> = Vec::new();
    for slot in slots
        .iter()
        .filter(|s| s.view.status == (HostStatus::Draining { by_admin: false }))
    {
        if shortfall.iter().all(|(_, n)| *n == 0) {
            break;
        }
        actions.push(Action::UndrainHost {
            host: slot.view.name.clone(),
        });
        undrained.push(slot.view.name.as_str());
        absorb(&mut shortfall, slot);
    }
    for slot in slots
        .iter()
        .filter(|s| s.view.status == HostStatus::Standby && s.spec.standby)
    {
        if shortfall.iter().all(|(_, n)| *n == 0) {
            break;
        }
        actions.push(Action::ActivateHost {
            host: slot.view.name.clone(),
        });
        absorb(&mut shortfall, slot);
    }

    // In-service standby hosts that the rest could do without.
    let in_service: Vec<&HostSlot> = slots
        .iter()
        .filter(|s| s.view.status == HostStatus::Active)
        .collect();
    let anything_short = unplaced_for_room.iter().any(|(_, n)| *n > 0);
    // Consider the last activated (latest in config order) standby host first.
    // Only the last one in service is considered: hosts are drained one at a time.
    if let Some(candidate) = in_service.iter().rev().find(|s| s.spec.standby) {
        let name = candidate.view.name.as_str();
        let others: Vec<&&HostSlot> = in_service.iter().filter(|s| s.view.name != name).collect();
        let fits = !anything_short && fits_on(total_wanted, others.iter().map(|s| s.spec));
        if fits {
            let since = input
                .memory
                .unneeded_since
                .get(name)
                .copied()
                .unwrap_or(now);
            memory.unneeded_since.insert(name.to_string(), since);
            if now.duration_since(since).as_secs() >= engine.standby_idle_secs as i64 {
                actions.push(Action::DrainHost {
                    host: name.to_string(),
                });
            }
        }
    }
    for slot in slots
        .iter()
        .filter(|s| s.view.status == (HostStatus::Draining { by_admin: false }))
    {
        if slot.usage.desktops == 0
            && slot.spec.standby
            && !undrained.contains(&slot.view.name.as_str())
        {
            actions.push(Action::ReturnToStandby {
                host: slot.view.name.clone(),
            });
        }
    }
}

/// Takes `slot`'s capacity off each class's shortfall.
pub(super) fn absorb(shortfall: &mut [(&ClassSpec, u32)], slot: &HostSlot<'_>) {
    let mut usage = slot.usage;
    for (class, n) in shortfall.iter_mut() {
        let take = slot.spec.capacity.room_for(&usage, class).min(*n);
        usage.add_n(class, take);
        *n -= take;
    }
}

/// Whether the wanted desktops of every class fit on `hosts` (first fit, class by class).
pub(super) fn fits_on<'a>(
    wanted: &[(&ClassSpec, u32)],
    hosts: impl Iterator<Item = &'a HostSpec>,
) -> bool {
    let hosts: Vec<&HostSpec> = hosts.collect();
    let mut usage = vec![Usage::default(); hosts.len()];
    for (class, n) in wanted {
        let mut left = *n;
        for (h, u) in hosts.iter().zip(usage.iter_mut()) {
            let take = h.capacity.room_for(u, class).min(left);
            u.add_n(class, take);
            left -= take;
        }
        if left > 0 {
            return false;
        }
    }
    true
}
