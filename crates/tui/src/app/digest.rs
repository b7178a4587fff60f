//! What the views need from every desktop of a snapshot, counted once when the snapshot
//! arrives rather than on every frame: each host's usage, and the classes with a desktop on a
//! host that is down. At 10,000 desktops these passes were most of a frame.

use std::collections::{HashMap, HashSet};

use deskpool_api::{HostStatusView, Snapshot};
use deskpool_core::policy::Fleet;

/// What a host's desktops take: count, memory (MiB) and vCPUs, by the classes' sizes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Used {
    pub desktops: u32,
    pub memory_mib: u64,
    pub vcpus: u32,
}

#[derive(Debug, Default)]
pub struct Digest {
    /// By host name, for the hosts the snapshot lists.
    pub usage: HashMap<String, Used>,
    pub classes_on_down_hosts: HashSet<String>,
}

impl Digest {
    pub fn of(fleet: &Fleet, snapshot: &Snapshot) -> Digest {
        let sizes: HashMap<&str, (u64, u32)> = fleet
            .classes
            .iter()
            .map(|c| (c.name.as_str(), (c.memory_mib, c.vcpus)))
            .collect();
        let index: HashMap<&str, usize> = snapshot
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.as_str(), i))
            .collect();
        let down: Vec<bool> = snapshot
            .hosts
            .iter()
            .map(|h| matches!(h.status, HostStatusView::Down { .. }))
            .collect();
        let mut used = vec![Used::default(); snapshot.hosts.len()];
        let mut on_down = HashSet::new();
        // Desktops come in runs of one host or one class: the last lookup of each is kept, so
        // most desktops cost two string comparisons instead of two hashes.
        let mut last_host: Option<(&str, Option<usize>)> = None;
        let mut last_class: Option<(&str, Option<(u64, u32)>)> = None;
        for d in snapshot.desktops.iter() {
            let host = match last_host {
                Some((name, at)) if name == d.host => at,
                _ => {
                    let at = index.get(d.host.as_str()).copied();
                    last_host = Some((d.host.as_str(), at));
                    at
                }
            };
            let class = d.meta.class.as_str();
            let size = match last_class {
                Some((name, size)) if name == class => size,
                _ => {
                    let size = sizes.get(class).copied();
                    last_class = Some((class, size));
                    size
                }
            };
            let Some(at) = host else { continue };
            let u = &mut used[at];
            u.desktops += 1;
            if let Some((memory, vcpus)) = size {
                u.memory_mib += memory;
                u.vcpus += vcpus;
            }
            if down[at] && !on_down.contains(class) {
                on_down.insert(class.to_string());
            }
        }
        Digest {
            usage: snapshot
                .hosts
                .iter()
                .zip(used)
                .map(|(h, u)| (h.name.clone(), u))
                .collect(),
            classes_on_down_hosts: on_down,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    #[test]
    fn usage_and_classes_on_down_hosts_count_every_desktop() {
        let fleet = sample::fleet(3, 2);
        let at: jiff::Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
        let mut snapshot = sample::snapshot(&fleet, 30, at);
        let digest = Digest::of(&fleet, &snapshot);
        let total: u32 = digest.usage.values().map(|u| u.desktops).sum();
        assert_eq!(total as usize, snapshot.desktops.len());
        for h in &snapshot.hosts {
            let expected: u64 = snapshot
                .desktops
                .iter()
                .filter(|d| d.host == h.name)
                .map(|d| fleet.class(&d.meta.class).unwrap().memory_mib)
                .sum();
            assert_eq!(digest.usage[&h.name].memory_mib, expected, "{}", h.name);
        }
        assert!(digest.classes_on_down_hosts.is_empty());

        let down = snapshot.hosts[0].name.clone();
        snapshot.hosts[0].status = HostStatusView::Down {
            reason: "unreachable".into(),
        };
        let expected: HashSet<String> = snapshot
            .desktops
            .iter()
            .filter(|d| d.host == down)
            .map(|d| d.meta.class.clone())
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(
            Digest::of(&fleet, &snapshot).classes_on_down_hosts,
            expected
        );
    }
}
