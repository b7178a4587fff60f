//! Why a class is where it is, in one line for the console.

use super::PlanInput;
use super::placement::Placement;
use super::recover::Sorted;
use super::seeds::seed_available;
use super::slots::HostSlot;
use crate::policy::ClassSpec;

/// The line for `class`: its buffer against the target, then what holds it back.
#[allow(clippy::too_many_arguments)]
pub(super) fn explain(
    class: &ClassSpec,
    sorted: &Sorted<'_>,
    buffer_target: u32,
    to_create: u32,
    placement: &Placement<'_>,
    slots: &[HostSlot<'_>],
    input: &PlanInput<'_>,
    mut notes: Vec<String>,
) -> String {
    let version = class.seed.version.as_str();
    let placed = placement.placed;
    let creation = sorted.creation;
    let stale = sorted.stale.len() as u32;
    if creation > 0 {
        notes.insert(0, format!("{creation} in creation"));
    }
    if !placement.paced_hosts.is_empty() && placed < to_create {
        notes.push(format!(
            "pacing limit on {}",
            placement.paced_hosts.join(", ")
        ));
    }
    if !placement.seeding_hosts.is_empty() && placed < to_create {
        let copying: Vec<&str> = placement
            .seeding_hosts
            .iter()
            .copied()
            .filter(|h| {
                input.busy.seed_copies.contains(&(
                    h.to_string(),
                    class.name.clone(),
                    version.to_string(),
                ))
            })
            .collect();
        if !copying.is_empty() {
            notes.push(format!("seed copy in progress on {}", copying.join(", ")));
        } else if !seed_available(class, slots) {
            let wherever = match class.seed.host.as_deref() {
                Some(h) => format!("on its host {h}"),
                None => "on any reachable host".to_string(),
            };
            notes.push(format!(
                "seed volume {}/{} not found {wherever}",
                class.seed.pool, class.seed.volume
            ));
        } else {
            notes.push(format!(
                "seed copy ordered for {}",
                placement.seeding_hosts.join(", ")
            ));
        }
    }
    let short_room = placement.short_room;
    if short_room > 0 {
        if placement.full_hosts.is_empty() {
            notes.push(format!("{short_room} cannot be placed: no active host"));
        } else {
            notes.push(format!(
                "host {} at capacity",
                placement.full_hosts.join(", ")
            ));
        }
    }
    if stale > 0 {
        notes.push(format!(
            "{stale} on an old seed, a draining host or undefined, being replaced"
        ));
    }
    let buffer = sorted.fresh.len() as u32 + stale;
    let head = if buffer < buffer_target {
        format!("buffer {buffer} below target {buffer_target}")
    } else if buffer > buffer_target {
        format!("buffer {buffer} above target {buffer_target}")
    } else {
        format!("buffer at target {buffer_target}")
    };
    if notes.is_empty() {
        head
    } else {
        format!("{head}: {}", notes.join(", "))
    }
}
