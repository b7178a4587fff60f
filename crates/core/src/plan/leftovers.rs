//! Leftovers: volumes, unlabelled domains and seed copies nothing accounts for.

use std::collections::{HashMap, HashSet};

use super::slots::HostSlot;
use super::{Action, DestroyReason, HostStatus, PlanInput};
use crate::policy::ClassSpec;

/// The desktops of one host, as [`clean_leftovers`] looks them up.
#[derive(Default)]
pub(super) struct OnHost<'a> {
    names: HashSet<&'a str>,
    /// (class, seed version) of each desktop.
    seeds: HashSet<(&'a str, &'a str)>,
}

/// Volumes, unlabelled domains and seed copies that nothing accounts for.
pub(super) fn clean_leftovers(
    input: &PlanInput<'_>,
    slots: &[HostSlot<'_>],
    classes: &HashMap<&str, &ClassSpec>,
    actions: &mut Vec<Action>,
) {
    // Per host, the names of its desktops and the (class, seed version) pairs they use, in one
    // pass over the desktops (not one pass per host, and not one per volume).
    let mut on_hosts: HashMap<&str, OnHost<'_>> = HashMap::new();
    for d in input.desktops {
        let on = on_hosts.entry(d.host.as_str()).or_default();
        on.names.insert(d.name.as_str());
        on.seeds
            .insert((d.meta.class.as_str(), d.meta.seed_version.as_str()));
    }
    let nothing = OnHost::default();
    for slot in slots {
        if matches!(
            slot.view.status,
            HostStatus::Down { .. } | HostStatus::Standby
        ) {
            continue;
        }
        let host = slot.view.name.as_str();
        let on_host = on_hosts.get(host).unwrap_or(&nothing);
        for name in &slot.view.unlabelled_desktops {
            if !input.busy.desktops.contains(name) {
                actions.push(Action::Destroy {
                    host: host.to_string(),
                    desktop: name.clone(),
                    reason: DestroyReason::Unlabelled,
                });
            }
        }
        for volume in &slot.view.desktop_volumes {
            let owner = volume.strip_suffix(".qcow2").unwrap_or(volume);
            let owned = on_host.names.contains(owner)
                || slot.view.unlabelled_desktops.iter().any(|u| u == owner)
                || input.busy.desktops.contains(owner)
                || input
                    .busy
                    .volumes
                    .contains(&(host.to_string(), volume.clone()));
            if !owned {
                actions.push(Action::DeleteVolume {
                    host: host.to_string(),
                    volume: volume.clone(),
                });
            }
        }
        for copy in &slot.view.seed_copies {
            let key = (host.to_string(), copy.class.clone(), copy.version.clone());
            if input.busy.seed_copies.contains(&key) {
                continue;
            }
            let current = classes
                .get(copy.class.as_str())
                .is_some_and(|c| c.seed.version == copy.version);
            let backs_something = on_host
                .seeds
                .contains(&(copy.class.as_str(), copy.version.as_str()));
            if !copy.complete || (!current && !backs_something) {
                actions.push(Action::DeleteSeedCopy {
                    host: host.to_string(),
                    class: copy.class.clone(),
                    version: copy.version.clone(),
                });
            }
        }
    }
}
