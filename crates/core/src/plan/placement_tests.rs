//! Placement keeps its hosts in a heap; these tests hold it to the plain rule it replaced: before
//! each creation, stable-sort the active hosts by load (from the order of the previous
//! creation) and take the first with room, a pacing slot and a complete seed copy.

use std::collections::HashMap;

use super::index::{BusyIndex, ClassIndex};
use super::placement::place;
use super::slots::{Hosts, tally};
use super::{Action, Busy, HostStatus, HostView, PlanInput, PlanMemory};
use crate::model::{DesktopMeta, ObservedDesktop, PoolState, SeedCopy};
use crate::policy::{
    BufferRule, Capacity, ClassSpec, EngineSettings, Fleet, HostSpec, LogoutAction, Pacing, Policy,
    SeedSpec,
};

/// A small deterministic generator (xorshift), so that every run tries the same fleets.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn class(r: &mut Rng, c: usize) -> ClassSpec {
    ClassSpec {
        name: format!("c{c}"),
        seed: SeedSpec {
            pool: "seeds".into(),
            volume: format!("c{c}.qcow2"),
            version: "v2".into(),
            host: None,
        },
        memory_mib: [1024, 2048, 4096][r.below(3) as usize],
        vcpus: 1 + r.below(3) as u32,
        disk_gib: 10,
        template: None,
        boot: None,
        ready: Default::default(),
        policy: Policy {
            cap: 1000,
            buffer: BufferRule {
                floor: 0,
                percent: 0,
                ceiling: 0,
            },
            production: 0,
            periods: vec![],
            events: vec![],
            pacing: Pacing {
                clones_per_host: 1 + r.below(5) as u32,
                boots_per_host: 4,
            },
            on_logout: LogoutAction::Recycle,
            on_shutoff: Default::default(),
            ready_secs: 90,
            scale_down_delay_secs: 300,
            disconnect_grace_secs: 0,
            predictive: None,
        },
    }
}

/// Hosts of few distinct sizes and loads, so that ties between hosts are common. Each has a
/// desktop limit: the room of a host without any limit is u32::MAX, and placement sums rooms.
fn host(r: &mut Rng, h: usize) -> HostSpec {
    HostSpec {
        name: format!("h{h}"),
        uri: format!("test:///h{h}.xml"),
        capacity: Capacity {
            desktops: Some([4, 8, 12][r.below(3) as usize]),
            memory_mib: r.chance(30).then(|| [16_384, 32_768][r.below(2) as usize]),
            vcpus: r.chance(30).then(|| [8, 16][r.below(2) as usize]),
        },
        standby: false,
        activate_command: None,
        deactivate_command: None,
        creation_pool_path: None,
        domain_type: Default::default(),
    }
}

fn view(r: &mut Rng, name: &str, classes: &[ClassSpec]) -> HostView {
    let status = match r.below(10) {
        0 => HostStatus::Draining { by_admin: false },
        1 => HostStatus::Down {
            reason: "unreachable".into(),
        },
        _ => HostStatus::Active,
    };
    let mut seed_copies = Vec::new();
    for c in classes {
        if r.chance(80) {
            seed_copies.push(SeedCopy {
                class: c.name.clone(),
                version: c.seed.version.clone(),
                volume: format!("seed-{}", c.name),
                path: format!("/pool/seed-{}", c.name),
                format: "qcow2".into(),
                complete: r.chance(85),
            });
        }
    }
    HostView {
        name: name.into(),
        status,
        seed_copies,
        seed_sources: vec![],
        desktop_volumes: vec![],
        unlabelled_desktops: vec![],
    }
}

fn desktop(r: &mut Rng, k: usize, host: &str, class: &str) -> ObservedDesktop {
    let pool = if r.chance(40) {
        PoolState::Creation
    } else {
        PoolState::Buffer
    };
    ObservedDesktop {
        name: format!("dp-{k}"),
        host: host.into(),
        meta: DesktopMeta {
            class: class.into(),
            pool,
            seed_version: "v2".into(),
            user: None,
            created_at: 0,
            changed_at: 0,
            attempts: 0,
            term: 0,
        },
        running: true,
        persistent: true,
        disk_problem: None,
    }
}

/// What placing one class came to: the hosts chosen in turn, and those passed over.
#[derive(Debug, PartialEq)]
struct Outcome<'a> {
    chosen: Vec<String>,
    full: Vec<&'a str>,
    paced: Vec<&'a str>,
    seeding: Vec<&'a str>,
}

fn push_unique<'a>(list: &mut Vec<&'a str>, name: &'a str) {
    if !list.contains(&name) {
        list.push(name);
    }
}

/// The rule placement replaced, step for step.
fn reference_place<'a>(
    ci: usize,
    class: &ClassSpec,
    to_create: u32,
    hosts: &mut Hosts<'a>,
) -> Outcome<'a> {
    let mut out = Outcome {
        chosen: vec![],
        full: vec![],
        paced: vec![],
        seeding: vec![],
    };
    let mut ordered: Vec<usize> = (0..hosts.slots.len())
        .filter(|&i| hosts.slots[i].placeable())
        .collect();
    for _ in 0..to_create {
        ordered.sort_by(|&a, &b| {
            let (a, b) = (hosts.slots[a].load(class), hosts.slots[b].load(class));
            a.partial_cmp(&b).unwrap()
        });
        let mut chosen = None;
        for &i in &ordered {
            let slot = &hosts.slots[i];
            let name: &'a str = slot.view.name.as_str();
            if slot.spec.capacity.room_for(&slot.usage, class) == 0 {
                push_unique(&mut out.full, name);
            } else if hosts.creating(i, ci) >= class.policy.pacing.clones_per_host {
                push_unique(&mut out.paced, name);
            } else if !hosts.seed_ready(i, ci) {
                push_unique(&mut out.seeding, name);
            } else {
                chosen = Some(i);
                break;
            }
        }
        let Some(i) = chosen else {
            break;
        };
        hosts.slots[i].usage.add(class);
        hosts.add_creating(i, ci);
        out.chosen.push(hosts.slots[i].view.name.clone());
    }
    out
}

#[test]
fn placement_chooses_the_hosts_the_stable_resort_per_creation_chose() {
    let mut r = Rng(0x5eed_1234_abcd_9876);
    let (mut creations, mut passed_over) = (0, 0);
    for _ in 0..2000 {
        let classes: Vec<ClassSpec> = (0..1 + r.below(3) as usize)
            .map(|c| class(&mut r, c))
            .collect();
        let host_count = 1 + r.below(10) as usize;
        let hosts: Vec<HostSpec> = (0..host_count).map(|h| host(&mut r, h)).collect();
        let mut names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
        if r.chance(10) {
            // Two views of one host: listed once when passed over.
            names.push(format!("h{}", r.below(host_count as u64)));
        }
        let views: Vec<HostView> = names.iter().map(|n| view(&mut r, n, &classes)).collect();
        let desktops: Vec<ObservedDesktop> = (0..r.below(40) as usize)
            .map(|k| {
                let host = format!("h{}", r.below(host_count as u64));
                let class = format!("c{}", r.below(classes.len() as u64));
                desktop(&mut r, k, &host, &class)
            })
            .collect();
        let to_create: Vec<u32> = classes.iter().map(|_| r.below(30) as u32).collect();
        let fleet = Fleet {
            ha: None,
            engine: EngineSettings::default(),
            console: Default::default(),
            broker: Default::default(),
            hosts,
            classes,
        };
        let busy = Busy::default();
        let memory = PlanMemory::default();
        let forecasts = HashMap::new();
        let input = PlanInput {
            fleet: &fleet,
            hosts: &views,
            desktops: &desktops,
            busy: &busy,
            memory: &memory,
            now: "2026-01-05T10:00:00Z".parse().unwrap(),
            forecasts: &forecasts,
            measured_ready: &HashMap::new(),
        };
        let index = ClassIndex::new(&fleet);
        let jobs = BusyIndex::new(&input);
        let prepared = || {
            let mut hosts = Hosts::new(&input, &index);
            let tallied = tally(&input, &mut hosts, &index, &mut Vec::new());
            super::leftovers::judge_seed_copies(&mut hosts, &index, &tallied, &jobs);
            hosts
        };
        let (mut fast, mut reference) = (prepared(), prepared());
        // Classes are placed one after another on the same hosts, as a pass does.
        for (ci, class) in fleet.classes.iter().enumerate() {
            let mut actions = Vec::new();
            let placed = place(
                ci,
                class,
                to_create[ci],
                &mut fast,
                &input,
                &mut actions,
                &mut Vec::new(),
            );
            let chosen: Vec<String> = actions
                .iter()
                .map(|a| match a {
                    Action::Create { host, .. } => host.clone(),
                    other => panic!("placement ordered {other:?}"),
                })
                .collect();
            assert_eq!(chosen.len() as u32, placed.placed);
            let got = Outcome {
                chosen,
                full: placed.full_hosts,
                paced: placed.paced_hosts,
                seeding: placed.seeding_hosts,
            };
            let want = reference_place(ci, class, to_create[ci], &mut reference);
            assert_eq!(got, want, "class {ci} of {fleet:#?}\nhosts {views:#?}");
            creations += want.chosen.len();
            passed_over += want.full.len() + want.paced.len() + want.seeding.len();
        }
    }
    // The fleets placed desktops and passed hosts over for every reason, many times.
    assert!(
        creations > 5000 && passed_over > 2000,
        "{creations} {passed_over}"
    );
}

#[test]
fn a_host_that_just_received_a_desktop_goes_before_the_hosts_its_load_now_equals() {
    // Room for 4 desktops each; h2 holds one. h0 gets the first (load 1/4, like h2), then h1
    // (0). All three are at 1/4 now, and h1, the latest to receive one, goes first: it gets the
    // third, then h0 (before h2: it received one since).
    let mut r = Rng(7);
    let mut c0 = class(&mut r, 0);
    c0.policy.pacing.clones_per_host = 10;
    let hosts: Vec<HostSpec> = (0..3)
        .map(|h| HostSpec {
            capacity: Capacity {
                desktops: Some(4),
                memory_mib: None,
                vcpus: None,
            },
            ..host(&mut r, h)
        })
        .collect();
    let views: Vec<HostView> = hosts
        .iter()
        .map(|h| HostView {
            status: HostStatus::Active,
            seed_copies: vec![SeedCopy {
                class: "c0".into(),
                version: c0.seed.version.clone(),
                volume: "seed-c0".into(),
                path: "/pool/seed-c0".into(),
                format: "qcow2".into(),
                complete: true,
            }],
            ..view(&mut r, &h.name, &[])
        })
        .collect();
    let mut held = desktop(&mut r, 0, "h2", "c0");
    held.meta.pool = PoolState::Buffer;
    let desktops = vec![held];
    let fleet = Fleet {
        ha: None,
        engine: EngineSettings::default(),
        console: Default::default(),
        broker: Default::default(),
        hosts,
        classes: vec![c0],
    };
    let (busy, memory, forecasts) = (Busy::default(), PlanMemory::default(), HashMap::new());
    let input = PlanInput {
        fleet: &fleet,
        hosts: &views,
        desktops: &desktops,
        busy: &busy,
        memory: &memory,
        now: "2026-01-05T10:00:00Z".parse().unwrap(),
        forecasts: &forecasts,
        measured_ready: &HashMap::new(),
    };
    let index = ClassIndex::new(&fleet);
    let mut hosts = Hosts::new(&input, &index);
    let tallied = tally(&input, &mut hosts, &index, &mut Vec::new());
    super::leftovers::judge_seed_copies(&mut hosts, &index, &tallied, &BusyIndex::new(&input));
    let mut actions = Vec::new();
    let class = &fleet.classes[0];
    place(
        0,
        class,
        4,
        &mut hosts,
        &input,
        &mut actions,
        &mut Vec::new(),
    );
    let chosen: Vec<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Create { host, .. } => Some(host.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(chosen, ["h0", "h1", "h1", "h0"]);
}
