//! Placement: each new desktop goes to the least loaded active host that has room, a pacing
//! slot and a complete seed copy.
//!
//! Hosts are tried in the order of their load for the class, ties broken by host order, and a
//! host that has just received a desktop goes before the hosts whose load it now equals (the
//! order a stable re-sort of the previous order after each creation gives). A host passed over
//! stays passed over for the rest of the class: nothing placed elsewhere gives it room, a
//! pacing slot or a seed copy. So the hosts wait in a heap, and each creation costs a few heap
//! operations instead of a sort of all hosts.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::slots::Hosts;
use super::{Action, PlanInput, Reason};
use crate::policy::ClassSpec;

/// What placing a class's creations came to.
#[derive(Default)]
pub(super) struct Placement<'a> {
    pub(super) placed: u32,
    /// Creations that no host in service has room for, whatever holds back the others (pacing,
    /// a seed copy): only these wake a standby host.
    pub(super) short_room: u32,
    /// Hosts passed over, in the order they were first passed over.
    pub(super) paced_hosts: Vec<&'a str>,
    pub(super) full_hosts: Vec<&'a str>,
    pub(super) seeding_hosts: Vec<&'a str>,
}

/// A host waiting for a creation: lower `load` first, then lower `rank` (its host order at
/// first; each host that receives a desktop gets a rank below every earlier one).
#[derive(Clone, Copy)]
struct Candidate {
    load: f64,
    rank: i64,
    slot: usize,
}

impl Candidate {
    fn key_cmp(&self, other: &Self) -> Ordering {
        self.load
            .total_cmp(&other.load)
            .then(self.rank.cmp(&other.rank))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.key_cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    /// Reversed: `BinaryHeap` pops its greatest, the placement wants the least loaded.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key_cmp(self)
    }
}

/// Places `to_create` new desktops of class `ci`, unless its creations are failing (backoff).
pub(super) fn place<'a>(
    ci: usize,
    class: &'a ClassSpec,
    to_create: u32,
    hosts: &mut Hosts<'a>,
    input: &PlanInput<'_>,
    actions: &mut Vec<Action>,
    notes: &mut Vec<Reason>,
) -> Placement<'a> {
    let now = input.now;
    let version = class.seed.version.as_str();
    let mut out = Placement::default();
    if to_create == 0 {
        return out;
    }
    let backoff = input
        .busy
        .class_backoff
        .get(&class.name)
        .filter(|(until, _)| *until > now);
    if let Some((until, why)) = backoff {
        notes.push(Reason::CreationFailing {
            retry_in_secs: until.duration_since(now).as_secs().max(1),
            error: why.clone(),
        });
        return out;
    }
    let mut waiting: BinaryHeap<Candidate> = hosts
        .slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.placeable())
        .map(|(i, s)| Candidate {
            load: s.load(class),
            rank: i as i64,
            slot: i,
        })
        .collect();
    let mut received = 0i64;
    while out.placed < to_create {
        let Some(candidate) = waiting.pop() else {
            break;
        };
        let i = candidate.slot;
        let slot = &hosts.slots[i];
        let name = slot.view.name.as_str();
        let passed_over = if slot.spec.capacity.room_for(&slot.usage, class) == 0 {
            Some(&mut out.full_hosts)
        } else if hosts.creating(i, ci) >= class.policy.pacing.clones_per_host {
            Some(&mut out.paced_hosts)
        } else if !hosts.seed_ready(i, ci) {
            Some(&mut out.seeding_hosts)
        } else {
            None
        };
        if let Some(list) = passed_over {
            // Two slots of one host name are listed once.
            if hosts.unique_names || !list.contains(&name) {
                list.push(name);
            }
            continue;
        }
        let slot = &mut hosts.slots[i];
        slot.usage.add(class);
        let load = slot.load(class);
        hosts.add_creating(i, ci);
        out.placed += 1;
        actions.push(Action::Create {
            host: name.to_string(),
            class: class.name.clone(),
            version: version.to_string(),
        });
        received += 1;
        waiting.push(Candidate {
            load,
            rank: -received,
            slot: i,
        });
    }
    let unplaced = to_create - out.placed;
    if unplaced > 0 {
        // Only a lack of room calls standby hosts: a creation held back by pacing or by a seed
        // copy under way will find room on a host in service once that clears.
        let room_in_service: u32 = hosts
            .slots
            .iter()
            .filter(|s| s.placeable())
            .map(|s| s.spec.capacity.room_for(&s.usage, class))
            // A host without limits has room u32::MAX: saturate, never wrap.
            .fold(0u32, u32::saturating_add);
        out.short_room = unplaced.saturating_sub(room_in_service);
    }
    out
}
