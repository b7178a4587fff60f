//! A synthetic fleet and snapshot of any size, for the view tests and the render benchmark
//! (the console draws only snapshots, so this is all a frame needs).

use std::sync::Arc;

use jiff::Timestamp;

use deskpool_api::{
    ClassPlanView, ClassStatus, DesktopMetaView, DesktopView, HostState, HostStatusView,
    PoolStateView, ReasonView, Snapshot,
};
use deskpool_core::policy::{Capacity, Fleet, HostSpec};

/// `classes` classes and `hosts` hosts modelled on the embedded demo's first class and host.
pub fn fleet(classes: usize, hosts: usize) -> Fleet {
    let demo = deskpool_config::demo_config(std::path::Path::new("/nonexistent/demo"));
    let mut fleet = demo.clone();
    fleet.classes = (0..classes)
        .map(|i| {
            let mut c = demo.classes[i % demo.classes.len()].clone();
            c.name = if i < demo.classes.len() {
                c.name
            } else {
                format!("{}-{i}", c.name)
            };
            c
        })
        .collect();
    fleet.hosts = (0..hosts)
        .map(|i| HostSpec {
            name: format!("h{}", i + 1),
            uri: format!("qemu+ssh://h{}/system", i + 1),
            capacity: Capacity {
                desktops: Some(400),
                memory_mib: None,
                vcpus: None,
            },
            standby: i + 1 == hosts && hosts > 1,
            activate_command: None,
            deactivate_command: None,
            creation_pool_path: None,
            domain_type: Default::default(),
        })
        .collect();
    fleet
}

/// A snapshot of `fleet` with `desktops` desktops spread over its classes and hosts: most in
/// production, some buffered, a few in creation; the last host down.
pub fn snapshot(fleet: &Fleet, desktops: usize, at: Timestamp) -> Snapshot {
    let hosts = fleet.hosts.len().max(1);
    let classes = fleet.classes.len().max(1);
    let list: Vec<DesktopView> = (0..desktops)
        .map(|i| {
            let class = &fleet.classes[i % classes];
            let pool = match i % 10 {
                0..=6 => PoolStateView::Production,
                7 | 8 => PoolStateView::Buffer,
                _ => PoolStateView::Creation,
            };
            DesktopView {
                name: format!("dp-{}-{i:010}", class.name),
                host: fleet.hosts[i % hosts].name.clone(),
                meta: DesktopMetaView {
                    class: class.name.clone(),
                    pool,
                    seed_version: class.seed.version.clone(),
                    user: (pool == PoolStateView::Production).then(|| format!("user{i}")),
                    created_at: at.as_second() - (i as i64 % 7200),
                    changed_at: at.as_second(),
                    attempts: 0,
                    term: 0,
                },
                running: pool != PoolStateView::Creation,
                persistent: true,
                disk_problem: None,
                display: (pool != PoolStateView::Creation)
                    .then(|| format!("vnc://127.0.0.1:{}", 5900 + i % 1000)),
                address: (pool != PoolStateView::Creation)
                    .then(|| format!("10.0.{}.{}", i / 250 % 250, i % 250 + 2)),
            }
        })
        .collect();
    let status = fleet
        .classes
        .iter()
        .map(|c| {
            let count = |p: PoolStateView| {
                list.iter()
                    .filter(|d| d.meta.class == c.name && d.meta.pool == p)
                    .count() as u32
            };
            let (production, buffer, creation) = (
                count(PoolStateView::Production),
                count(PoolStateView::Buffer),
                count(PoolStateView::Creation),
            );
            let buffer_target = buffer + creation;
            ClassStatus {
                plan: ClassPlanView {
                    name: c.name.clone(),
                    production,
                    buffer,
                    creation,
                    production_target: production,
                    buffer_target,
                    total_target: production + buffer_target,
                    period: None,
                    stale: 0,
                    reasons: vec![ReasonView::InCreation { count: creation }],
                    raised_floor: None,
                },
                seed_version: c.seed.version.clone(),
                on_old_seed: 0,
                cap: c.policy.cap,
                logins: Default::default(),
                demand: (0..12)
                    .map(|b| ((b * 7 + production as usize) % 9) as u32)
                    .collect(),
            }
        })
        .collect();
    let host_states = fleet
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| HostState {
            name: h.name.clone(),
            uri: h.uri.clone(),
            status: if i + 1 == hosts && hosts > 2 {
                HostStatusView::Down {
                    reason: "connection refused".into(),
                }
            } else if h.standby {
                HostStatusView::Standby
            } else {
                HostStatusView::Active
            },
            standby: h.standby,
            desktops: list.iter().filter(|d| d.host == h.name).count() as u32,
            capacity: h.capacity.into(),
            retry_in_secs: None,
        })
        .collect();
    // The first class measured on the first host: a few seconds to clone and boot, its guest
    // ready half a minute later.
    let mut timings = deskpool_core::timings::StepTimings::default();
    if let (Some(class), Some(host)) = (fleet.classes.first(), fleet.hosts.first()) {
        use deskpool_core::timings::Step;
        for i in 0..8 {
            let i = f64::from(i);
            timings.record(&host.name, &class.name, Step::Clone, 0.4 + 0.05 * i);
            timings.record(&host.name, &class.name, Step::Boot, 1.2 + 0.1 * i);
            timings.record(&host.name, &class.name, Step::Ready, 24.0 + i);
            timings.record(&host.name, &class.name, Step::Whole, 26.0 + i);
        }
    }
    Snapshot {
        at: Some(at),
        paused: false,
        read_only: false,
        passes: 42,
        classes: status,
        hosts: host_states,
        desktops: Arc::new(list),
        seed_copies: Vec::new(),
        jobs_in_flight: 3,
        steady: false,
        events_dropped: 0,
        leadership: Default::default(),
        timings: timings.views(),
    }
}
