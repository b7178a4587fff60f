//! The hosts as one pass sees them, and the desktops tallied on them.

use super::index::{ClassIndex, FastMap, FastSet, NONE};
use super::{Action, DestroyReason, HostStatus, HostView, PlanInput};
use crate::model::{ObservedDesktop, PoolState};
use crate::policy::{ClassSpec, HostSpec, Usage};

/// Per host bookkeeping during one pass.
pub(super) struct HostSlot<'a> {
    pub(super) view: &'a HostView,
    pub(super) spec: &'a HostSpec,
    pub(super) usage: Usage,
}

impl HostSlot<'_> {
    pub(super) fn placeable(&self) -> bool {
        self.view.status == HostStatus::Active
    }
    /// Whether seed copies here can be used or read (the host is reachable and in service, or
    /// on its way in or out).
    pub(super) fn reachable(&self) -> bool {
        !matches!(
            self.view.status,
            HostStatus::Down { .. } | HostStatus::Standby
        )
    }
    pub(super) fn load(&self, class: &ClassSpec) -> f64 {
        f64::from(self.usage.desktops) / f64::from(self.total_for(class))
    }
    /// Desktops of `class` the empty host holds (at least 1, as a load's denominator).
    pub(super) fn total_for(&self, class: &ClassSpec) -> u32 {
        self.spec.capacity.total_for(class).max(1)
    }
    /// Whether `seed_sources` holds the class's seed volume.
    pub(super) fn has_seed_source(&self, class: &ClassSpec) -> bool {
        self.view
            .seed_sources
            .iter()
            .any(|(pool, volume)| *pool == class.seed.pool && *volume == class.seed.volume)
    }
}

/// A seed copy of the class's current version is on the host.
const SEED_PRESENT: u8 = 1;
/// ... and it is complete.
const SEED_READY: u8 = 2;

/// The hosts of the input that the fleet configures (in input order), with per (host, class)
/// tables: seed copies of the class's current version, desktops in creation.
pub(super) struct Hosts<'a> {
    pub(super) slots: Vec<HostSlot<'a>>,
    /// Whether no two slots share a host name (then a host is passed over at most once per
    /// class without checking the names listed so far).
    pub(super) unique_names: bool,
    classes: usize,
    /// Per class: the first class of its name (creations are counted by name).
    name_id: Vec<u32>,
    /// `[slot * classes + class]`: SEED_PRESENT | SEED_READY, on reachable hosts (filled by
    /// [`super::leftovers::judge_seed_copies`]).
    seeds: Vec<u8>,
    /// `[slot * classes + name id]`: desktops in creation (pacing).
    creating: Vec<u32>,
}

impl<'a> Hosts<'a> {
    pub(super) fn new(input: &PlanInput<'a>, classes: &ClassIndex<'a>) -> Self {
        let fleet = input.fleet;
        let mut specs: FastMap<&str, &HostSpec> =
            FastMap::with_capacity_and_hasher(fleet.hosts.len(), Default::default());
        for h in &fleet.hosts {
            specs.entry(h.name.as_str()).or_insert(h);
        }
        let slots: Vec<HostSlot<'a>> = input
            .hosts
            .iter()
            .filter_map(|view| {
                specs.get(view.name.as_str()).map(|&spec| HostSlot {
                    view,
                    spec,
                    usage: Usage::default(),
                })
            })
            .collect();
        let mut names = FastSet::with_capacity_and_hasher(slots.len(), Default::default());
        let unique_names = slots.iter().all(|s| names.insert(s.view.name.as_str()));

        let n = classes.len();
        Hosts {
            creating: vec![0; slots.len() * n],
            seeds: vec![0; slots.len() * n],
            slots,
            unique_names,
            classes: n,
            name_id: (0..n).map(|c| classes.name_id(c) as u32).collect(),
        }
    }

    /// A complete copy of class `class`'s current seed version is on reachable slot `slot`.
    pub(super) fn seed_ready(&self, slot: usize, class: usize) -> bool {
        self.seeds[slot * self.classes + class] & SEED_READY != 0
    }

    /// A copy of class `class`'s current seed version, complete or not, is on reachable `slot`.
    pub(super) fn seed_present(&self, slot: usize, class: usize) -> bool {
        self.seeds[slot * self.classes + class] & SEED_PRESENT != 0
    }

    /// Desktops in creation on `slot` of the classes named as class `class` is.
    pub(super) fn creating(&self, slot: usize, class: usize) -> u32 {
        self.creating[slot * self.classes + self.name_id[class] as usize]
    }

    pub(super) fn add_creating(&mut self, slot: usize, class: usize) {
        self.creating[slot * self.classes + self.name_id[class] as usize] += 1;
    }

    /// A copy of class `class`'s current seed version is on `slot`, complete or not.
    pub(super) fn add_seed_copy(&mut self, slot: usize, class: usize, complete: bool) {
        let flags = &mut self.seeds[slot * self.classes + class];
        *flags |= SEED_PRESENT;
        if complete {
            *flags |= SEED_READY;
        }
    }
}

/// One desktop of a class, with the slot of its host and what sorting it reads (kept here, so
/// that sorting a class does not read each desktop again).
#[derive(Clone, Copy)]
pub(super) struct Member<'a> {
    pub(super) desktop: &'a ObservedDesktop,
    pub(super) slot: u32,
    pub(super) pool: PoolState,
    flags: u8,
}

const RUNNING: u8 = 1;
const PERSISTENT: u8 = 2;
const DISK_PROBLEM: u8 = 4;
/// On the current seed version of the first class of its class's name.
const CURRENT_SEED: u8 = 8;

impl<'a> Member<'a> {
    fn new(desktop: &'a ObservedDesktop, slot: u32, current_seed: bool) -> Self {
        let flag = |on: bool, flag: u8| if on { flag } else { 0 };
        Member {
            desktop,
            slot,
            pool: desktop.meta.pool,
            flags: flag(desktop.running, RUNNING)
                | flag(desktop.persistent, PERSISTENT)
                | flag(desktop.disk_problem.is_some(), DISK_PROBLEM)
                | flag(current_seed, CURRENT_SEED),
        }
    }
    pub(super) fn running(&self) -> bool {
        self.flags & RUNNING != 0
    }
    pub(super) fn persistent(&self) -> bool {
        self.flags & PERSISTENT != 0
    }
    pub(super) fn disk_problem(&self) -> bool {
        self.flags & DISK_PROBLEM != 0
    }
    /// Whether the desktop is on the current seed version of `class`, the class at `class`
    /// in the fleet (`first`: the first class of its name, whose version the tally compared).
    pub(super) fn on_seed(&self, class: &ClassSpec, first: bool) -> bool {
        if first {
            self.flags & CURRENT_SEED != 0
        } else {
            self.desktop.meta.seed_version == class.seed.version
        }
    }
}

/// The desktops of each configured class on hosts the fleet knows, and per host what the
/// clean-up of leftovers asks of them.
pub(super) struct Tally<'a> {
    /// Desktops grouped by the first class of their name, in input order within a class.
    members: Vec<Member<'a>>,
    /// Per name id, where its desktops start in `members` (and one past the end).
    class_start: Vec<usize>,
    /// Per slot: a slot of its host name is down, or draining.
    down: Vec<bool>,
    draining: Vec<bool>,
    /// Per slot: the slot desktops naming its host are counted on (the last slot of the name).
    canonical: Vec<u32>,
    /// The names of the desktops on known hosts, copied one after another in input order as
    /// the tally reads each desktop (the clean-up of volumes reads them host by host later,
    /// from here instead of from every desktop again).
    name_text: String,
    /// Where each desktop's name lies in `name_text`, grouped by canonical slot (from
    /// `name_start`).
    names: Vec<(usize, usize)>,
    name_start: Vec<usize>,
    /// (slot, name id, version) of desktops on a seed version other than the current one of the
    /// first class of their name (a copy of the current version is kept anyway).
    other_seed_used: FastSet<(u32, u32, &'a str)>,
    /// (slot, class, version) of desktops of classes the fleet does not configure.
    unknown_seed_used: FastSet<(u32, &'a str, &'a str)>,
}

impl<'a> Tally<'a> {
    /// The desktops of the classes named as `name_id` is.
    pub(super) fn class_members(&self, name_id: usize) -> &[Member<'a>] {
        &self.members[self.class_start[name_id]..self.class_start[name_id + 1]]
    }
    pub(super) fn down(&self, slot: u32) -> bool {
        self.down[slot as usize]
    }
    pub(super) fn draining(&self, slot: u32) -> bool {
        self.draining[slot as usize]
    }
    /// Names of the desktops on host `slot` (on any class, known or not).
    pub(super) fn names_on(&self, slot: usize) -> impl Iterator<Item = &str> + '_ {
        let c = self.canonical[slot] as usize;
        self.names[self.name_start[c]..self.name_start[c + 1]]
            .iter()
            .map(|&(start, end)| &self.name_text[start..end])
    }
    /// Whether a desktop on `slot` uses seed `version` of class `class`, whose first class of
    /// that name is `first` (NONE: the fleet does not configure it), `version` not being that
    /// class's current one.
    pub(super) fn old_seed_used(
        &self,
        slot: usize,
        first: u32,
        class: &str,
        version: &str,
    ) -> bool {
        let c = self.canonical[slot];
        if first == NONE {
            !self.unknown_seed_used.is_empty()
                && self.unknown_seed_used.contains(&(c, class, version))
        } else {
            !self.other_seed_used.is_empty() && self.other_seed_used.contains(&(c, first, version))
        }
    }
}

/// Usage per host, desktops grouped per class; desktops of unknown classes are destroyed.
pub(super) fn tally<'a>(
    input: &PlanInput<'a>,
    hosts: &mut Hosts<'a>,
    classes: &ClassIndex<'a>,
    actions: &mut Vec<Action>,
) -> Tally<'a> {
    let n = classes.len();
    let slot_count = hosts.slots.len();
    // A host name names its last slot (as a map collected from the slots would).
    let mut slot_of: FastMap<&str, u32> =
        FastMap::with_capacity_and_hasher(slot_count, Default::default());
    for (i, s) in hosts.slots.iter().enumerate() {
        slot_of.insert(s.view.name.as_str(), i as u32);
    }
    let canonical: Vec<u32> = hosts
        .slots
        .iter()
        .map(|s| slot_of[s.view.name.as_str()])
        .collect();
    let mut down = vec![false; slot_count];
    let mut draining = vec![false; slot_count];
    for (s, slot) in hosts.slots.iter().enumerate() {
        let c = canonical[s] as usize;
        down[c] |= matches!(slot.view.status, HostStatus::Down { .. });
        draining[c] |= matches!(slot.view.status, HostStatus::Draining { .. });
    }
    for s in 0..slot_count {
        let c = canonical[s] as usize;
        down[s] = down[c];
        draining[s] = draining[c];
    }

    // Per desktop: (slot, name id or NONE, on the current seed, end of its name in
    // `name_text`); desktops on hosts the fleet does not know are left out (slot NONE).
    let mut placed: Vec<(u32, u32, bool, usize)> = Vec::with_capacity(input.desktops.len());
    let mut name_text = String::new();
    let mut per_class = vec![0usize; n + 1];
    let mut per_slot = vec![0usize; slot_count + 1];
    let mut other_seed_used = FastSet::default();
    let mut unknown_seed_used = FastSet::default();
    let mut last_class: Option<(&str, u32)> = None;
    for d in input.desktops {
        let Some(&s) = slot_of.get(d.host.as_str()) else {
            placed.push((NONE, NONE, false, 0));
            continue;
        };
        per_slot[s as usize] += 1;
        name_text.push_str(&d.name);
        let class_name = d.meta.class.as_str();
        let first = match last_class {
            Some((name, id)) if name == class_name => id,
            _ => {
                let id = classes.get(class_name).unwrap_or(NONE);
                last_class = Some((class_name, id));
                id
            }
        };
        let slot = &mut hosts.slots[s as usize];
        let version = d.meta.seed_version.as_str();
        let mut current_seed = false;
        if first == NONE {
            slot.usage.desktops += 1;
            unknown_seed_used.insert((s, class_name, version));
            if !input.busy.desktops.contains(&d.name) {
                actions.push(Action::Destroy {
                    host: d.host.clone(),
                    desktop: d.name.clone(),
                    reason: DestroyReason::UnknownClass,
                });
            }
        } else {
            let class = &classes.classes[first as usize];
            slot.usage.add(class);
            if d.meta.pool == PoolState::Creation {
                hosts.add_creating(s as usize, first as usize);
            }
            per_class[first as usize] += 1;
            current_seed = version == class.seed.version;
            if !current_seed {
                other_seed_used.insert((s, first, version));
            }
        }
        placed.push((s, first, current_seed, name_text.len()));
    }

    // Group by class and by slot (counting sorts: input order kept within a group).
    let class_start = prefix_sums(&mut per_class);
    let name_start = prefix_sums(&mut per_slot);
    // Every entry is overwritten below; the first desktop only fills the vector until then.
    let mut members = match input.desktops.first() {
        Some(desktop) => vec![Member::new(desktop, NONE, false); class_start[n]],
        None => Vec::new(),
    };
    let mut names = vec![(0, 0); name_start[slot_count]];
    for (d, &(s, first, current_seed, name_end)) in input.desktops.iter().zip(&placed) {
        if s == NONE {
            continue;
        }
        names[per_slot[s as usize]] = (name_end - d.name.len(), name_end);
        per_slot[s as usize] += 1;
        if first != NONE {
            members[per_class[first as usize]] = Member::new(d, s, current_seed);
            per_class[first as usize] += 1;
        }
    }
    Tally {
        members,
        class_start,
        down,
        draining,
        canonical,
        name_text,
        names,
        name_start,
        other_seed_used,
        unknown_seed_used,
    }
}

/// Turns counts into start offsets (with the total last), and leaves `counts` holding the
/// starts as write cursors.
fn prefix_sums(counts: &mut [usize]) -> Vec<usize> {
    let mut total = 0;
    for c in counts.iter_mut() {
        let n = *c;
        *c = total;
        total += n;
    }
    counts.to_vec()
}
