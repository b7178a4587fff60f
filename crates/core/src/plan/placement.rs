//! Placement: each new desktop goes to the least loaded active host that has room, a pacing
//! slot and a complete seed copy.

use super::slots::HostSlot;
use super::{Action, PlanInput, Reason};
use crate::policy::ClassSpec;

/// What placing a class's creations came to.
#[derive(Default)]
pub(super) struct Placement<'a> {
    pub(super) placed: u32,
    /// Creations that no host has room for, seed copy or not (drives standby activation).
    pub(super) short_room: u32,
    /// Hosts passed over, in the order they were first passed over.
    pub(super) paced_hosts: Vec<&'a str>,
    pub(super) full_hosts: Vec<&'a str>,
    pub(super) seeding_hosts: Vec<&'a str>,
}

fn push_unique<'a>(list: &mut Vec<&'a str>, name: &'a str) {
    if !list.contains(&name) {
        list.push(name);
    }
}

/// Places `to_create` new desktops of `class`, unless its creations are failing (backoff).
pub(super) fn place<'a>(
    class: &'a ClassSpec,
    to_create: u32,
    slots: &mut [HostSlot<'a>],
    input: &PlanInput<'_>,
    actions: &mut Vec<Action>,
    notes: &mut Vec<Reason>,
) -> Placement<'a> {
    let now = input.now;
    let version = class.seed.version.as_str();
    let mut out = Placement::default();
    let backoff = input
        .busy
        .class_backoff
        .get(&class.name)
        .filter(|(until, _)| *until > now);
    if let Some((until, why)) = backoff
        && to_create > 0
    {
        notes.push(Reason::CreationFailing {
            retry_in_secs: until.duration_since(now).as_secs().max(1),
            error: why.clone(),
        });
        return out;
    }
    let mut ordered: Vec<usize> = (0..slots.len()).filter(|&i| slots[i].placeable()).collect();
    for _ in 0..to_create {
        ordered.sort_by(|&a, &b| {
            slots[a]
                .load(class)
                .partial_cmp(&slots[b].load(class))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut chosen = None;
        for &i in &ordered {
            let slot = &slots[i];
            let name = slot.view.name.as_str();
            if slot.spec.capacity.room_for(&slot.usage, class) == 0 {
                push_unique(&mut out.full_hosts, name);
                continue;
            }
            let in_flight = slot.creating.get(class.name.as_str()).copied().unwrap_or(0);
            if in_flight >= class.policy.pacing.clones_per_host {
                push_unique(&mut out.paced_hosts, name);
                continue;
            }
            if slot.seed_ready(&class.name, version).is_none() {
                push_unique(&mut out.seeding_hosts, name);
                continue;
            }
            chosen = Some(i);
            break;
        }
        let Some(i) = chosen else {
            break;
        };
        let slot = &mut slots[i];
        slot.usage.add(class);
        *slot.creating.entry(class.name.as_str()).or_default() += 1;
        out.placed += 1;
        actions.push(Action::Create {
            host: slot.view.name.clone(),
            class: class.name.clone(),
            version: version.to_string(),
        });
    }
    let unplaced = to_create - out.placed;
    if unplaced > 0 {
        // Hosts that have room but no seed copy get one; only room shortage calls standby hosts.
        let room_elsewhere: u32 = slots
            .iter()
            .filter(|s| s.placeable())
            .filter(|s| s.seed_ready(&class.name, version).is_none())
            .map(|s| s.spec.capacity.room_for(&s.usage, class))
            .sum();
        out.short_room = unplaced.saturating_sub(room_elsewhere);
    }
    out
}
