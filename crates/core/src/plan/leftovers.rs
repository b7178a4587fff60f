//! Leftovers: volumes, unlabelled domains and seed copies nothing accounts for.

use super::index::{BusyIndex, ClassIndex, FastSet, NONE};
use super::slots::{Hosts, Tally};
use super::{Action, DestroyReason, PlanInput};

/// The seed copies to delete, in slot order, and how many each slot has.
pub(super) struct UnusedCopies {
    deletions: Vec<Action>,
    per_slot: Vec<usize>,
}

/// Reads every seed copy of the reachable hosts once, for two steps: the copies of each
/// class's current version (placement and seed copies read them), and the copies to delete:
/// incomplete ones, and old versions no desktop on the host uses, unless a job is on them.
/// The deletions are ordered with the other leftovers, at the end of the pass.
pub(super) fn judge_seed_copies(
    hosts: &mut Hosts<'_>,
    classes: &ClassIndex<'_>,
    tally: &Tally<'_>,
    busy: &BusyIndex<'_>,
) -> UnusedCopies {
    let mut deletions = Vec::new();
    let mut per_slot = vec![0; hosts.slots.len()];
    for (i, deleted_here) in per_slot.iter_mut().enumerate() {
        let view = hosts.slots[i].view;
        if !hosts.slots[i].reachable() {
            continue;
        }
        let host = view.name.as_str();
        let before = deletions.len();
        // Copies come in runs of one class (its versions): look a name up once per run.
        let mut last: Option<(&str, u32)> = None;
        for copy in &view.seed_copies {
            let first = match last {
                Some((name, id)) if name == copy.class => id,
                _ => {
                    let id = classes.get(&copy.class).unwrap_or(NONE);
                    last = Some((copy.class.as_str(), id));
                    id
                }
            };
            // Whether the copy is of the current version of the first class of its name.
            let mut current = false;
            if first != NONE {
                for c in classes.same_name(first) {
                    if classes.classes[c].seed.version == copy.version {
                        hosts.add_seed_copy(i, c, copy.complete);
                        current |= c == first as usize;
                    }
                }
            }
            if busy.seed_copy(host, &copy.class, &copy.version) {
                continue;
            }
            if !copy.complete
                || (!current && !tally.old_seed_used(i, first, &copy.class, &copy.version))
            {
                deletions.push(Action::DeleteSeedCopy {
                    host: host.to_string(),
                    class: copy.class.clone(),
                    version: copy.version.clone(),
                });
            }
        }
        *deleted_here = deletions.len() - before;
    }
    UnusedCopies {
        deletions,
        per_slot,
    }
}

/// Volumes, unlabelled domains and seed copies that nothing accounts for.
pub(super) fn clean_leftovers(
    input: &PlanInput<'_>,
    hosts: &Hosts<'_>,
    tally: &Tally<'_>,
    busy: &BusyIndex<'_>,
    unused_copies: UnusedCopies,
    actions: &mut Vec<Action>,
) {
    let mut copy_deletions = unused_copies.deletions.into_iter();
    // The names of one host's desktops at a time: a small set, refilled per host.
    let mut names: FastSet<&str> = FastSet::default();
    for (i, slot) in hosts.slots.iter().enumerate() {
        if !slot.reachable() {
            continue;
        }
        let host = slot.view.name.as_str();
        for name in &slot.view.unlabelled_desktops {
            if !input.busy.desktops.contains(name) {
                actions.push(Action::Destroy {
                    host: host.to_string(),
                    desktop: name.clone(),
                    reason: DestroyReason::Unlabelled,
                });
            }
        }
        if !slot.view.desktop_volumes.is_empty() {
            names.clear();
            names.extend(tally.names_on(i));
        }
        for volume in &slot.view.desktop_volumes {
            let owner = volume.strip_suffix(".qcow2").unwrap_or(volume);
            let owned = names.contains(owner)
                || slot.view.unlabelled_desktops.iter().any(|u| u == owner)
                || input.busy.desktops.contains(owner)
                || busy.volume(host, volume);
            if !owned {
                actions.push(Action::DeleteVolume {
                    host: host.to_string(),
                    volume: volume.clone(),
                });
            }
        }
        actions.extend(copy_deletions.by_ref().take(unused_copies.per_slot[i]));
    }
}
