//! Leftovers: volumes, unlabelled domains and seed copies nothing accounts for.

use super::index::{BusyIndex, ClassIndex, FastSet, NONE};
use super::slots::{Hosts, Tally};
use super::{Action, DestroyReason, PlanInput};

/// Volumes, unlabelled domains and seed copies that nothing accounts for.
pub(super) fn clean_leftovers(
    input: &PlanInput<'_>,
    hosts: &Hosts<'_>,
    tally: &Tally<'_>,
    classes: &ClassIndex<'_>,
    busy: &BusyIndex<'_>,
    actions: &mut Vec<Action>,
) {
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
            names.extend(tally.names_on(i).iter().copied());
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
        for (copy, &first) in slot.view.seed_copies.iter().zip(hosts.copy_classes(i)) {
            if busy.seed_copy(host, &copy.class, &copy.version) {
                continue;
            }
            let current =
                first != NONE && classes.classes[first as usize].seed.version == copy.version;
            if !copy.complete
                || (!current && !tally.old_seed_used(i, first, &copy.class, &copy.version))
            {
                actions.push(Action::DeleteSeedCopy {
                    host: host.to_string(),
                    class: copy.class.clone(),
                    version: copy.version.clone(),
                });
            }
        }
    }
}
