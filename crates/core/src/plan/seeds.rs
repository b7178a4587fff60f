//! Seed copies: where one is missing on a host that will run the class, which host it comes
//! from, and whether any source exists at all.

use super::Action;
use super::index::BusyIndex;
use super::slots::Hosts;
use crate::policy::ClassSpec;

/// Whether some reachable host holds the class's seed volume (where it is pinned, if it is) or
/// a finished copy of its current version, so a copy can be made.
pub(super) fn seed_available(ci: usize, class: &ClassSpec, hosts: &Hosts<'_>) -> bool {
    let pinned = class.seed.host.as_deref();
    hosts
        .slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.reachable())
        .any(|(i, s)| {
            (pinned.is_none_or(|p| p == s.view.name) && s.has_seed_source(class))
                || hosts.seed_ready(i, ci)
        })
}

/// Orders a seed copy onto slot `i` when the class will need it there and none is under way.
fn order_seed_copy(
    i: usize,
    ci: usize,
    class: &ClassSpec,
    hosts: &Hosts<'_>,
    busy: &BusyIndex<'_>,
    actions: &mut Vec<Action>,
    needed_now: bool,
) {
    let slot = &hosts.slots[i];
    let version = class.seed.version.as_str();
    let host = slot.view.name.as_str();
    if hosts.seed_ready(i, ci) {
        return;
    }
    if busy.seed_copy(host, &class.name, version) {
        return;
    }
    // Only copy where desktops of the class will go: wanted now, and the host has room for one.
    if !needed_now || slot.spec.capacity.room_for(&slot.usage, class) == 0 {
        return;
    }
    if hosts.seed_present(i, ci) {
        // An incomplete copy with no job on it: it is deleted first (see clean_leftovers).
        return;
    }
    let pinned = class.seed.host.as_deref();
    let others = || {
        hosts
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.view.name != host && s.reachable())
    };
    let (source_host, from_copy) =
        if pinned.is_none_or(|p| p == host) && slot.has_seed_source(class) {
            (host.to_string(), false)
        } else if let Some((_, src)) = others()
            .find(|(_, s)| pinned.is_none_or(|p| p == s.view.name) && s.has_seed_source(class))
        {
            (src.view.name.clone(), false)
        } else if let Some((_, src)) = others().find(|&(j, _)| hosts.seed_ready(j, ci)) {
            (src.view.name.clone(), true)
        } else {
            return;
        };
    actions.push(Action::CopySeed {
        host: host.to_string(),
        class: class.name.clone(),
        version: version.to_string(),
        source_host,
        from_copy,
    });
}

/// Seed copies where they are missing on the active hosts that will run class `ci`.
pub(super) fn order_seed_copies(
    ci: usize,
    class: &ClassSpec,
    hosts: &Hosts<'_>,
    busy: &BusyIndex<'_>,
    actions: &mut Vec<Action>,
    needed_now: bool,
) {
    for (i, slot) in hosts.slots.iter().enumerate() {
        if slot.placeable() {
            order_seed_copy(i, ci, class, hosts, busy, actions, needed_now);
        }
    }
}
