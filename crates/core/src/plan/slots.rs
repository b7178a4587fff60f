//! The hosts as one pass sees them, and the desktops tallied on them.

use std::collections::{HashMap, HashSet};

use super::{Action, DestroyReason, HostStatus, HostView, PlanInput};
use crate::model::{ObservedDesktop, PoolState, SeedCopy};
use crate::policy::{ClassSpec, HostSpec, Usage};

/// Per host bookkeeping during one pass.
pub(super) struct HostSlot<'a> {
    pub(super) view: &'a HostView,
    pub(super) spec: &'a HostSpec,
    pub(super) usage: Usage,
    /// Desktops in creation per class (pacing).
    pub(super) creating: HashMap<&'a str, u32>,
}

impl HostSlot<'_> {
    pub(super) fn placeable(&self) -> bool {
        self.view.status == HostStatus::Active
    }
    pub(super) fn seed_ready(&self, class: &str, version: &str) -> Option<&SeedCopy> {
        self.view
            .seed_copies
            .iter()
            .find(|s| s.class == class && s.version == version && s.complete)
    }
    pub(super) fn load(&self, class: &ClassSpec) -> f64 {
        let total = self.spec.capacity.total_for(class).max(1);
        f64::from(self.usage.desktops) / f64::from(total)
    }
}

/// The hosts of the input that the fleet configures, in input order.
pub(super) fn host_slots<'a>(input: &PlanInput<'a>) -> Vec<HostSlot<'a>> {
    input
        .hosts
        .iter()
        .filter_map(|view| {
            input.fleet.host(&view.name).map(|spec| HostSlot {
                view,
                spec,
                usage: Usage::default(),
                creating: HashMap::new(),
            })
        })
        .collect()
}

/// The desktops of each configured class, on hosts the fleet knows.
pub(super) struct Tally<'a> {
    pub(super) by_class: HashMap<&'a str, Vec<&'a ObservedDesktop>>,
    pub(super) draining: HashSet<&'a str>,
    pub(super) down: HashSet<&'a str>,
}

/// Usage per host, desktops grouped per class; desktops of unknown classes are destroyed.
pub(super) fn tally<'a>(
    input: &PlanInput<'a>,
    slots: &mut [HostSlot<'a>],
    classes: &HashMap<&'a str, &'a ClassSpec>,
    actions: &mut Vec<Action>,
) -> Tally<'a> {
    let slot_index: HashMap<&str, usize> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| (s.view.name.as_str(), i))
        .collect();
    let mut by_class: HashMap<&str, Vec<&ObservedDesktop>> = HashMap::new();
    for d in input.desktops {
        let Some(&i) = slot_index.get(d.host.as_str()) else {
            continue;
        };
        match classes.get(d.meta.class.as_str()).copied() {
            Some(class) => {
                slots[i].usage.add(class);
                if d.meta.pool == PoolState::Creation {
                    *slots[i].creating.entry(class.name.as_str()).or_default() += 1;
                }
                by_class.entry(class.name.as_str()).or_default().push(d);
            }
            None => {
                slots[i].usage.desktops += 1;
                if !input.busy.desktops.contains(&d.name) {
                    actions.push(Action::Destroy {
                        host: d.host.clone(),
                        desktop: d.name.clone(),
                        reason: DestroyReason::UnknownClass,
                    });
                }
            }
        }
    }

    let draining: HashSet<&str> = slots
        .iter()
        .filter(|s| matches!(s.view.status, HostStatus::Draining { .. }))
        .map(|s| s.view.name.as_str())
        .collect();
    let down: HashSet<&str> = slots
        .iter()
        .filter(|s| matches!(s.view.status, HostStatus::Down { .. }))
        .map(|s| s.view.name.as_str())
        .collect();
    Tally {
        by_class,
        draining,
        down,
    }
}
