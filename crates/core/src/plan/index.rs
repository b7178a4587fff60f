//! Lookups built once per pass, so that the steps work on indices and borrowed names instead of
//! searching lists or building owned keys per desktop, per creation or per seed copy.

use super::PlanInput;
use crate::policy::{ClassSpec, Fleet};

/// Maps and sets of the planner's own: a fast non-cryptographic hasher (its keys are names the
/// engine already trusts; none is kept past the pass).
pub(super) type FastMap<K, V> = foldhash::HashMap<K, V>;
pub(super) type FastSet<T> = foldhash::HashSet<T>;

/// Marks an absent index in the `u32` tables.
pub(super) const NONE: u32 = u32::MAX;

/// The fleet's classes by name.
pub(super) struct ClassIndex<'a> {
    pub(super) classes: &'a [ClassSpec],
    /// The first class of each name (as `Fleet::class` finds it).
    first_of_name: FastMap<&'a str, u32>,
    /// Per class: the index of the first class of its name (its desktops, seed copies and
    /// creations are counted under that index).
    name_id: Vec<u32>,
    /// Per class: the next class of the same name. The config loader refuses duplicate names,
    /// but a fleet built in code may have them, and the planner treats them by name as before.
    next_of_name: Vec<u32>,
}

impl<'a> ClassIndex<'a> {
    pub(super) fn new(fleet: &'a Fleet) -> Self {
        let classes = fleet.classes.as_slice();
        let mut first_of_name =
            FastMap::with_capacity_and_hasher(classes.len(), Default::default());
        let mut name_id = Vec::with_capacity(classes.len());
        let mut next_of_name = vec![NONE; classes.len()];
        let mut last_of_name: Vec<u32> = Vec::with_capacity(classes.len());
        for (i, c) in classes.iter().enumerate() {
            let i = i as u32;
            let first = *first_of_name.entry(c.name.as_str()).or_insert(i);
            if first != i {
                next_of_name[last_of_name[first as usize] as usize] = i;
            }
            name_id.push(first);
            last_of_name.push(i);
            last_of_name[first as usize] = i;
        }
        ClassIndex {
            classes,
            first_of_name,
            name_id,
            next_of_name,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.classes.len()
    }

    /// The first class named `name`.
    pub(super) fn get(&self, name: &str) -> Option<u32> {
        self.first_of_name.get(name).copied()
    }

    /// The index desktops of class `class` are counted under.
    pub(super) fn name_id(&self, class: usize) -> usize {
        self.name_id[class] as usize
    }

    /// Every class named as the first class `first` is, in fleet order.
    pub(super) fn same_name(&self, first: u32) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(Some(first), |&c| {
            Some(self.next_of_name[c as usize]).filter(|&next| next != NONE)
        })
        .map(|c| c as usize)
    }
}

/// The work in flight keyed by borrowed names, so lookups build no owned key.
pub(super) struct BusyIndex<'a> {
    /// (host, class, version) of the seed copies under way.
    pub(super) seed_copies: FastSet<(&'a str, &'a str, &'a str)>,
    /// (host, volume) of the volumes being written.
    pub(super) volumes: FastSet<(&'a str, &'a str)>,
}

impl<'a> BusyIndex<'a> {
    pub(super) fn new(input: &PlanInput<'a>) -> Self {
        let busy = input.busy;
        BusyIndex {
            seed_copies: busy
                .seed_copies
                .iter()
                .map(|(h, c, v)| (h.as_str(), c.as_str(), v.as_str()))
                .collect(),
            volumes: busy
                .volumes
                .iter()
                .map(|(h, v)| (h.as_str(), v.as_str()))
                .collect(),
        }
    }

    pub(super) fn seed_copy(&self, host: &str, class: &str, version: &str) -> bool {
        !self.seed_copies.is_empty() && self.seed_copies.contains(&(host, class, version))
    }

    pub(super) fn volume(&self, host: &str, volume: &str) -> bool {
        !self.volumes.is_empty() && self.volumes.contains(&(host, volume))
    }
}
