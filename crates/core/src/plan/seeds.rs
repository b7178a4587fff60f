//! Seed copies: where one is missing on a host that will run the class, which host it comes
//! from, and whether any source exists at all.

use super::slots::HostSlot;
use super::{Action, HostStatus, PlanInput};
use crate::policy::ClassSpec;

/// Whether some reachable host holds the class's seed volume (where it is pinned, if it is) or
/// a finished copy of its current version, so a copy can be made.
pub(super) fn seed_available(class: &ClassSpec, slots: &[HostSlot<'_>]) -> bool {
    let source = (class.seed.pool.clone(), class.seed.volume.clone());
    let pinned = class.seed.host.as_deref();
    slots
        .iter()
        .filter(|s| !matches!(s.view.status, HostStatus::Down { .. } | HostStatus::Standby))
        .any(|s| {
            (pinned.is_none_or(|p| p == s.view.name) && s.view.seed_sources.contains(&source))
                || s.seed_ready(&class.name, &class.seed.version).is_some()
        })
}

/// Orders a seed copy onto `slot` when the class will need it there and none is under way.
pub(super) fn order_seed_copy(
    slot: &HostSlot<'_>,
    class: &ClassSpec,
    slots: &[HostSlot<'_>],
    input: &PlanInput<'_>,
    actions: &mut Vec<Action>,
    needed_now: bool,
) {
    let version = class.seed.version.as_str();
    let host = slot.view.name.as_str();
    if slot.seed_ready(&class.name, version).is_some() {
        return;
    }
    let key = (host.to_string(), class.name.clone(), version.to_string());
    if input.busy.seed_copies.contains(&key) {
        return;
    }
    // Only copy where desktops of the class will go: wanted now, and the host has room for one.
    if !needed_now || slot.spec.capacity.room_for(&slot.usage, class) == 0 {
        return;
    }
    if slot
        .view
        .seed_copies
        .iter()
        .any(|s| s.class == class.name && s.version == version)
    {
        // An incomplete copy with no job on it: it is deleted first (see clean_leftovers).
        return;
    }
    let source = (class.seed.pool.clone(), class.seed.volume.clone());
    let has_source = |s: &HostSlot<'_>| s.view.seed_sources.contains(&source);
    let pinned = class.seed.host.as_deref();
    let (source_host, from_copy) = if pinned.is_none_or(|p| p == host) && has_source(slot) {
        (host.to_string(), false)
    } else if let Some(src) = slots.iter().find(|s| {
        s.view.name != host
            && !matches!(s.view.status, HostStatus::Down { .. } | HostStatus::Standby)
            && pinned.is_none_or(|p| p == s.view.name)
            && has_source(s)
    }) {
        (src.view.name.clone(), false)
    } else if let Some(src) = slots.iter().find(|s| {
        s.view.name != host
            && !matches!(s.view.status, HostStatus::Down { .. } | HostStatus::Standby)
            && s.seed_ready(&class.name, version).is_some()
    }) {
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

/// Seed copies where they are missing on the active hosts that will run the class.
pub(super) fn order_seed_copies(
    class: &ClassSpec,
    slots: &[HostSlot<'_>],
    input: &PlanInput<'_>,
    actions: &mut Vec<Action>,
    needed_now: bool,
) {
    for slot in slots.iter().filter(|s| s.placeable()) {
        order_seed_copy(slot, class, slots, input, actions, needed_now);
    }
}
