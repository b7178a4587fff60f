use super::*;
use crate::model::{DesktopMeta, PoolState};
use crate::policy::{
    BufferRule, Capacity, EngineSettings, HostSpec, LogoutAction, Pacing, Period, Policy, SeedSpec,
    TimeOfDay, Weekdays,
};
use jiff::SignedDuration;

pub(super) fn rule(floor: u32, percent: u32, ceiling: u32) -> BufferRule {
    BufferRule {
        floor,
        percent,
        ceiling,
    }
}

pub(super) fn class(name: &str, buffer: BufferRule, cap: u32) -> ClassSpec {
    ClassSpec {
        name: name.into(),
        seed: SeedSpec {
            pool: "seeds".into(),
            volume: format!("{name}.qcow2"),
            version: "v2".into(),
            host: None,
        },
        memory_mib: 1024,
        vcpus: 1,
        disk_gib: 10,
        template: None,
        boot: None,
        ready: Default::default(),
        policy: Policy {
            cap,
            buffer,
            production: 0,
            periods: vec![],
            events: vec![],
            pacing: Pacing {
                clones_per_host: 4,
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

pub(super) fn host(name: &str, desktops: u32, standby: bool) -> HostSpec {
    HostSpec {
        name: name.into(),
        uri: format!("test:///{name}.xml"),
        capacity: Capacity {
            desktops: Some(desktops),
            memory_mib: None,
            vcpus: None,
        },
        standby,
        activate_command: None,
        deactivate_command: None,
        creation_pool_path: None,
        domain_type: Default::default(),
    }
}

pub(super) fn fleet(classes: Vec<ClassSpec>, hosts: Vec<HostSpec>) -> Fleet {
    Fleet {
        ha: None,
        engine: EngineSettings::default(),
        console: Default::default(),
        broker: Default::default(),
        hosts,
        classes,
    }
}

pub(super) fn seed(class: &str, version: &str, complete: bool) -> SeedCopy {
    SeedCopy {
        class: class.into(),
        version: version.into(),
        volume: format!("seed-{class}@{version}.img"),
        path: format!("/pool/seed-{class}@{version}.img"),
        format: "qcow2".into(),
        complete,
    }
}

/// A host view with complete seed copies of every class of `fleet`.
pub(super) fn seeded(fleet: &Fleet, name: &str, status: HostStatus) -> HostView {
    HostView {
        name: name.into(),
        status,
        seed_copies: fleet
            .classes
            .iter()
            .map(|c| seed(&c.name, &c.seed.version, true))
            .collect(),
        seed_sources: vec![],
        desktop_volumes: vec![],
        unlabelled_desktops: vec![],
    }
}

pub(super) fn bare(name: &str, status: HostStatus) -> HostView {
    HostView {
        name: name.into(),
        status,
        seed_copies: vec![],
        seed_sources: vec![],
        desktop_volumes: vec![],
        unlabelled_desktops: vec![],
    }
}

pub(super) fn desk(
    name: &str,
    host: &str,
    class: &str,
    pool: PoolState,
    version: &str,
) -> ObservedDesktop {
    ObservedDesktop {
        name: name.into(),
        host: host.into(),
        meta: DesktopMeta {
            class: class.into(),
            pool,
            seed_version: version.into(),
            user: (pool == PoolState::Production).then(|| format!("user-{name}")),
            created_at: 0,
            changed_at: 0,
            attempts: 0,
            term: 0,
        },
        running: pool != PoolState::Creation,
        persistent: true,
        disk_problem: None,
    }
}

pub(super) fn many(
    n: usize,
    host: &str,
    class: &str,
    pool: PoolState,
    version: &str,
) -> Vec<ObservedDesktop> {
    (0..n)
        .map(|i| {
            desk(
                &format!("dp-{class}-{}-{i}", pool.as_str()),
                host,
                class,
                pool,
                version,
            )
        })
        .collect()
}

/// Monday 5 January 2026 at `hh:mm` UTC.
pub(super) fn monday(hh_mm: &str) -> Timestamp {
    format!("2026-01-05T{hh_mm}:00Z").parse().unwrap()
}

pub(super) fn run(
    fleet: &Fleet,
    hosts: &[HostView],
    desktops: &[ObservedDesktop],
    busy: &Busy,
    memory: &PlanMemory,
    now: Timestamp,
) -> Plan {
    plan(&PlanInput {
        fleet,
        hosts,
        desktops,
        busy,
        memory,
        now,
        forecasts: &HashMap::new(),
        measured_ready: &HashMap::new(),
    })
}

pub(super) fn creates(plan: &Plan) -> Vec<(&str, &str)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Create { host, class, .. } => Some((host.as_str(), class.as_str())),
            _ => None,
        })
        .collect()
}

pub(super) fn destroys(plan: &Plan) -> Vec<(&str, DestroyReason)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Destroy {
                desktop, reason, ..
            } => Some((desktop.as_str(), *reason)),
            _ => None,
        })
        .collect()
}

/// Work in flight: class `class`'s creations back off until `until`, because of `why`.
pub(super) fn backing_off(class: &str, until: Timestamp, why: &str) -> Busy {
    Busy {
        class_backoff: [(class.to_string(), (until, why.to_string()))].into(),
        ..Busy::default()
    }
}

pub(super) fn weekday_period(from: &str, to: &str, production: u32, buffer: BufferRule) -> Period {
    Period {
        days: Weekdays(0b001_1111),
        from: TimeOfDay::parse(from).unwrap(),
        to: TimeOfDay::parse(to).unwrap(),
        production,
        buffer,
    }
}

#[test]
fn empty_buffer_is_filled_up_to_its_floor() {
    let f = fleet(
        vec![class("office", rule(3, 0, 10), 50)],
        vec![host("h1", 20, false)],
    );
    let hosts = [seeded(&f, "h1", HostStatus::Active)];
    let p = run(
        &f,
        &hosts,
        &[],
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert_eq!(creates(&p), vec![("h1", "office"); 3]);
    assert_eq!(p.classes[0].buffer_target, 3);
    assert_eq!(p.classes[0].reasons, vec![]);
}

#[test]
fn pacing_limits_creations_in_flight_per_host() {
    let f = fleet(
        vec![class("office", rule(10, 0, 10), 50)],
        vec![host("h1", 20, false), host("h2", 20, false)],
    );
    let hosts = [
        seeded(&f, "h1", HostStatus::Active),
        seeded(&f, "h2", HostStatus::Active),
    ];
    let p = run(
        &f,
        &hosts,
        &[],
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    let made = creates(&p);
    assert_eq!(made.iter().filter(|(h, _)| *h == "h1").count(), 4);
    assert_eq!(made.iter().filter(|(h, _)| *h == "h2").count(), 4);

    // Three already in creation on h1: one more slot there.
    let mut in_creation = many(3, "h1", "office", PoolState::Creation, "v2");
    in_creation.extend(many(4, "h2", "office", PoolState::Creation, "v2"));
    let busy = Busy {
        desktops: in_creation.iter().map(|d| d.name.clone()).collect(),
        ..Busy::default()
    };
    let p = run(
        &f,
        &hosts,
        &in_creation,
        &busy,
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert_eq!(creates(&p), vec![("h1", "office")]);
    assert_paced(&p);
}

/// The first class's reasons name the pacing limit.
pub(super) fn assert_paced(p: &Plan) {
    assert!(
        p.classes[0]
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::PacingLimit { .. })),
        "{:?}",
        p.classes[0].reasons
    );
}

#[test]
fn period_crossing_midnight_applies_on_the_next_morning() {
    let mut c = class("night", rule(0, 0, 0), 100);
    c.policy.periods = vec![Period {
        days: Weekdays(1),
        ..weekday_period("22:00", "06:00", 7, rule(0, 0, 0))
    }];
    c.policy.ready_secs = 60;
    let f = fleet(vec![c], vec![host("h1", 50, false)]);
    let hosts = [seeded(&f, "h1", HostStatus::Active)];
    let at = |s: &str| -> Timestamp { s.parse().unwrap() };
    let target = |now| {
        run(
            &f,
            &hosts,
            &[],
            &Busy::default(),
            &PlanMemory::default(),
            now,
        )
        .classes[0]
            .production_target
    };
    assert_eq!(target(at("2026-01-05T23:00:00Z")), 7, "Monday evening");
    assert_eq!(
        target(at("2026-01-06T05:30:00Z")),
        7,
        "Tuesday morning, started Monday"
    );
    assert_eq!(
        target(at("2026-01-06T07:00:00Z")),
        0,
        "Tuesday after the end"
    );
    assert_eq!(
        target(at("2026-01-06T23:00:00Z")),
        0,
        "Tuesday evening: the period starts only on Mondays"
    );
}

#[test]
fn production_target_looks_ahead_by_the_ready_time() {
    let mut c = class("office", rule(2, 0, 10), 100);
    c.policy.periods = vec![weekday_period("07:00", "18:00", 10, rule(4, 0, 10))];
    let f = fleet(vec![c], vec![host("h1", 50, false)]);
    let hosts = [seeded(&f, "h1", HostStatus::Active)];
    let p = run(
        &f,
        &hosts,
        &[],
        &Busy::default(),
        &PlanMemory::default(),
        monday("06:59"),
    );
    assert_eq!(
        p.classes[0].production_target, 10,
        "06:59 + 90 s is inside the period"
    );
    assert_eq!(
        p.classes[0].buffer_target, 14,
        "10 expected logins + the period's floor of 4"
    );
    assert_eq!(p.classes[0].period, Some(0));
    let p = run(
        &f,
        &hosts,
        &[],
        &Busy::default(),
        &PlanMemory::default(),
        monday("06:50"),
    );
    assert_eq!(p.classes[0].production_target, 0);
    assert_eq!(p.classes[0].buffer_target, 2);
}

#[test]
fn desktops_measured_slower_than_the_ready_time_are_looked_ahead_for_by_their_time() {
    let mut c = class("office", rule(2, 0, 10), 100);
    c.policy.periods = vec![weekday_period("07:00", "18:00", 10, rule(4, 0, 10))];
    let f = fleet(vec![c], vec![host("h1", 50, false)]);
    let hosts = [seeded(&f, "h1", HostStatus::Active)];
    let at = |now: &str, measured: &HashMap<String, u64>| {
        plan(&PlanInput {
            fleet: &f,
            hosts: &hosts,
            desktops: &[],
            busy: &Busy::default(),
            memory: &PlanMemory::default(),
            now: monday(now),
            forecasts: &HashMap::new(),
            measured_ready: measured,
        })
        .classes[0]
            .production_target
    };
    // 06:55 + ready_secs 90 is before the period: nothing asked for yet...
    assert_eq!(at("06:55", &HashMap::new()), 0);
    // ...but desktops measured to take 6 minutes to make are asked for now.
    let slow = HashMap::from([("office".to_string(), 360)]);
    assert_eq!(at("06:55", &slow), 10);
    // Measured faster than ready_secs: the policy's look-ahead stands.
    let fast = HashMap::from([("office".to_string(), 30)]);
    assert_eq!(at("06:59", &fast), 10);
    assert_eq!(at("06:55", &fast), 0);
}

#[test]
fn production_target_never_falls_below_assigned_desktops() {
    let mut c = class("office", rule(0, 0, 0), 100);
    c.policy.periods = vec![weekday_period("07:00", "18:00", 10, rule(0, 0, 0))];
    let f = fleet(vec![c], vec![host("h1", 50, false)]);
    let hosts = [seeded(&f, "h1", HostStatus::Active)];
    let assigned = many(12, "h1", "office", PoolState::Production, "v2");
    let p = run(
        &f,
        &hosts,
        &assigned,
        &Busy::default(),
        &PlanMemory::default(),
        monday("10:00"),
    );
    assert_eq!(p.classes[0].production_target, 12);
    assert_eq!(p.classes[0].buffer_target, 0);
    assert!(creates(&p).is_empty());
}

#[test]
fn overlapping_demand_of_several_classes_shares_one_host() {
    let f = fleet(
        vec![
            class("office", rule(6, 0, 6), 50),
            class("dev", rule(6, 0, 6), 50),
        ],
        vec![host("h1", 10, false)],
    );
    let hosts = [seeded(&f, "h1", HostStatus::Active)];
    let mut desktops = many(4, "h1", "office", PoolState::Buffer, "v2");
    desktops.extend(many(4, "h1", "dev", PoolState::Buffer, "v2"));
    let p = run(
        &f,
        &hosts,
        &desktops,
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    // 8 placed, room for 2 more: office gets them (first in order), dev reports the full host.
    assert_eq!(creates(&p), vec![("h1", "office"), ("h1", "office")]);
    assert!(
        p.classes[1].reasons.contains(&Reason::AtCapacity {
            hosts: vec!["h1".into()]
        }),
        "{:?}",
        p.classes[1].reasons
    );
}

#[test]
fn cap_bounds_the_buffer_target() {
    let f = fleet(
        vec![class("cad", rule(10, 0, 10), 5)],
        vec![host("h1", 50, false)],
    );
    let hosts = [seeded(&f, "h1", HostStatus::Active)];
    let assigned = many(2, "h1", "cad", PoolState::Production, "v2");
    let p = run(
        &f,
        &hosts,
        &assigned,
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert_eq!(p.classes[0].buffer_target, 3);
    assert_eq!(creates(&p).len(), 3);
}

#[test]
fn buffer_rule_is_a_percentage_between_floor_and_ceiling() {
    let r = rule(3, 25, 8);
    assert_eq!(r.spare_for(0), 3, "floor");
    assert_eq!(r.spare_for(20), 5, "25% of 20");
    assert_eq!(r.spare_for(21), 6, "25% of 21, rounded up");
    assert_eq!(r.spare_for(100), 8, "ceiling");
}

#[test]
fn surplus_is_removed_only_after_the_scale_down_delay() {
    let f = fleet(
        vec![class("office", rule(2, 0, 2), 50)],
        vec![host("h1", 50, false)],
    );
    let hosts = [seeded(&f, "h1", HostStatus::Active)];
    let mut desktops = many(5, "h1", "office", PoolState::Buffer, "v2");
    for (i, d) in desktops.iter_mut().enumerate() {
        d.meta.created_at = 100 - i as i64;
    }
    let t0 = monday("12:00");
    let p = run(
        &f,
        &hosts,
        &desktops,
        &Busy::default(),
        &PlanMemory::default(),
        t0,
    );
    assert!(destroys(&p).is_empty(), "no removal before the delay");
    assert_eq!(p.memory.surplus_since.get("office"), Some(&t0));
    assert!(
        p.classes[0].reasons.contains(&Reason::SurplusWaiting {
            count: 3,
            removed_in_secs: 300
        }),
        "{:?}",
        p.classes[0].reasons
    );

    let later = t0 + SignedDuration::from_secs(300);
    let p = run(&f, &hosts, &desktops, &Busy::default(), &p.memory, later);
    let gone = destroys(&p);
    assert_eq!(gone.len(), 3);
    // The oldest go first (created_at 96, 97, 98).
    let names: Vec<&str> = gone.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        vec![
            "dp-office-buffer-4",
            "dp-office-buffer-3",
            "dp-office-buffer-2"
        ]
    );
    assert!(gone.iter().all(|(_, r)| *r == DestroyReason::Surplus));
}

#[test]
fn a_wobbling_target_never_creates_and_destroys_in_turn() {
    // The target alternates between 4 and 5 every minute; the fleet follows with creations only.
    let mut c = class("office", rule(4, 0, 4), 50);
    c.policy.scale_down_delay_secs = 300;
    let f = fleet(vec![c], vec![host("h1", 50, false)]);
    let hosts = [seeded(&f, "h1", HostStatus::Active)];
    let mut desktops = many(4, "h1", "office", PoolState::Buffer, "v2");
    let mut memory = PlanMemory::default();
    let mut made = 0;
    for minute in 0..30 {
        let now = monday("12:00") + SignedDuration::from_secs(60 * minute);
        let floor = if minute % 2 == 0 { 5 } else { 4 };
        let mut f = f.clone();
        f.classes[0].policy.buffer = rule(floor, 0, floor);
        let p = run(&f, &hosts, &desktops, &Busy::default(), &memory, now);
        assert!(
            destroys(&p).is_empty(),
            "minute {minute}: destroyed while the target wobbles"
        );
        for _ in creates(&p) {
            made += 1;
            desktops.push(desk(
                &format!("dp-office-new-{made}"),
                "h1",
                "office",
                PoolState::Buffer,
                "v2",
            ));
        }
        memory = p.memory;
    }
    assert_eq!(made, 1, "one desktop made for the higher target, then kept");
}

#[test]
fn old_seed_desktops_are_replaced_before_they_are_removed() {
    let f = fleet(
        vec![class("office", rule(3, 0, 3), 50)],
        vec![host("h1", 50, false)],
    );
    let hosts = [seeded(&f, "h1", HostStatus::Active)];
    let old = many(3, "h1", "office", PoolState::Buffer, "v1");
    let p = run(
        &f,
        &hosts,
        &old,
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert_eq!(creates(&p).len(), 3, "fresh replacements first");
    assert!(
        destroys(&p).is_empty(),
        "old ones keep serving until replaced"
    );
    assert_eq!(p.classes[0].stale, 3);

    let mut all = old.clone();
    all.extend(many(3, "h1", "office", PoolState::Buffer, "v2"));
    let p = run(
        &f,
        &hosts,
        &all,
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert!(creates(&p).is_empty());
    let gone = destroys(&p);
    assert_eq!(gone.len(), 3);
    assert!(
        gone.iter()
            .all(|(n, r)| n.contains("buffer") && *r == DestroyReason::StaleSeed)
    );
    assert!(gone.iter().all(|(n, _)| old.iter().any(|d| d.name == *n)));
}

#[test]
fn desktops_undefined_behind_our_back_are_replaced_before_they_are_removed() {
    let f = fleet(
        vec![class("office", rule(2, 0, 2), 50)],
        vec![host("h1", 50, false)],
    );
    let hosts = [seeded(&f, "h1", HostStatus::Active)];
    let mut buffer = many(2, "h1", "office", PoolState::Buffer, "v2");
    buffer[0].persistent = false;
    let p = run(
        &f,
        &hosts,
        &buffer,
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert_eq!(creates(&p).len(), 1, "a replacement first");
    assert!(destroys(&p).is_empty(), "{:?}", p.actions);
    assert_eq!(p.classes[0].stale, 1);

    buffer.push(desk(
        "dp-office-fresh",
        "h1",
        "office",
        PoolState::Buffer,
        "v2",
    ));
    let p = run(
        &f,
        &hosts,
        &buffer,
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert!(creates(&p).is_empty());
    assert_eq!(
        destroys(&p),
        vec![(buffer[0].name.as_str(), DestroyReason::Undefined)]
    );

    // One in the creation pool is not finished: it is gone at its next shutdown.
    let mut half = many(1, "h1", "office", PoolState::Creation, "v2");
    half[0].persistent = false;
    half[0].running = true;
    let p = run(
        &f,
        &hosts,
        &half,
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert_eq!(
        destroys(&p),
        vec![(half[0].name.as_str(), DestroyReason::Undefined)]
    );
}

#[test]
fn production_desktops_on_an_old_seed_are_left_to_their_users() {
    let f = fleet(
        vec![class("office", rule(0, 0, 0), 50)],
        vec![host("h1", 50, false)],
    );
    let hosts = [seeded(&f, "h1", HostStatus::Active)];
    let assigned = many(2, "h1", "office", PoolState::Production, "v1");
    let p = run(
        &f,
        &hosts,
        &assigned,
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
}

#[test]
fn a_missing_seed_copy_is_ordered_once_and_creations_wait_for_it() {
    let f = fleet(
        vec![class("office", rule(2, 0, 2), 50)],
        vec![host("h1", 50, false)],
    );
    let mut h1 = bare("h1", HostStatus::Active);
    h1.seed_sources = vec![("seeds".into(), "office.qcow2".into())];
    let p = run(
        &f,
        &[h1.clone()],
        &[],
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert!(creates(&p).is_empty());
    assert_eq!(
        p.actions,
        vec![Action::CopySeed {
            host: "h1".into(),
            class: "office".into(),
            version: "v2".into(),
            source_host: "h1".into(),
            from_copy: false
        }]
    );
    let busy = Busy {
        seed_copies: [("h1".to_string(), "office".to_string(), "v2".to_string())].into(),
        ..Busy::default()
    };
    let p = run(
        &f,
        &[h1],
        &[],
        &busy,
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert!(
        p.classes[0].reasons.contains(&Reason::SeedCopyInProgress {
            hosts: vec!["h1".into()]
        }),
        "{:?}",
        p.classes[0].reasons
    );
}

#[test]
fn a_host_without_the_seed_source_copies_it_from_another_host() {
    let f = fleet(
        vec![class("office", rule(8, 0, 8), 50)],
        vec![host("h1", 4, false), host("h2", 10, false)],
    );
    let h1 = seeded(&f, "h1", HostStatus::Active);
    let h2 = bare("h2", HostStatus::Active);
    let mut h1 = h1;
    h1.seed_sources = vec![("seeds".into(), "office.qcow2".into())];
    let p = run(
        &f,
        &[h1, h2],
        &[],
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert_eq!(creates(&p).len(), 4);
    assert!(p.actions.contains(&Action::CopySeed {
        host: "h2".into(),
        class: "office".into(),
        version: "v2".into(),
        source_host: "h1".into(),
        from_copy: false
    }));
}

#[test]
fn a_standby_host_is_activated_when_the_active_ones_are_full() {
    let f = fleet(
        vec![class("office", rule(6, 0, 6), 50)],
        vec![
            host("h1", 4, false),
            host("h3", 10, true),
            host("h4", 10, true),
        ],
    );
    let hosts = [
        seeded(&f, "h1", HostStatus::Active),
        bare("h3", HostStatus::Standby),
        bare("h4", HostStatus::Standby),
    ];
    let desktops = many(4, "h1", "office", PoolState::Buffer, "v2");
    let p = run(
        &f,
        &hosts,
        &desktops,
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert_eq!(
        p.actions,
        vec![Action::ActivateHost { host: "h3".into() }],
        "one standby host covers 2 more"
    );

    // While it activates, no second host is woken.
    let hosts = [
        seeded(&f, "h1", HostStatus::Active),
        bare("h3", HostStatus::Activating),
        bare("h4", HostStatus::Standby),
    ];
    let p = run(
        &f,
        &hosts,
        &desktops,
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
}

#[test]
fn an_unneeded_standby_host_is_drained_after_the_idle_time_then_returned() {
    let mut f = fleet(
        vec![class("office", rule(2, 0, 2), 50)],
        vec![host("h1", 10, false), host("h3", 10, true)],
    );
    f.engine.standby_idle_secs = 600;
    let hosts = [
        seeded(&f, "h1", HostStatus::Active),
        seeded(&f, "h3", HostStatus::Active),
    ];
    let mut desktops = many(1, "h1", "office", PoolState::Buffer, "v2");
    desktops.push(desk(
        "dp-office-on-h3",
        "h3",
        "office",
        PoolState::Buffer,
        "v2",
    ));
    let t0 = monday("12:00");
    let p = run(
        &f,
        &hosts,
        &desktops,
        &Busy::default(),
        &PlanMemory::default(),
        t0,
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.memory.unneeded_since.get("h3"), Some(&t0));
    let p = run(
        &f,
        &hosts,
        &desktops,
        &Busy::default(),
        &p.memory,
        t0 + SignedDuration::from_secs(600),
    );
    assert_eq!(p.actions, vec![Action::DrainHost { host: "h3".into() }]);

    // Draining: its buffered desktop is replaced on h1 first, then removed.
    let hosts = [
        seeded(&f, "h1", HostStatus::Active),
        seeded(&f, "h3", HostStatus::Draining { by_admin: false }),
    ];
    let p = run(
        &f,
        &hosts,
        &desktops,
        &Busy::default(),
        &PlanMemory::default(),
        t0,
    );
    assert_eq!(creates(&p), vec![("h1", "office")]);
    assert!(destroys(&p).is_empty());
    let mut replaced = desktops.clone();
    replaced.push(desk(
        "dp-office-new",
        "h1",
        "office",
        PoolState::Buffer,
        "v2",
    ));
    let p = run(
        &f,
        &hosts,
        &replaced,
        &Busy::default(),
        &PlanMemory::default(),
        t0,
    );
    assert_eq!(
        destroys(&p),
        vec![("dp-office-on-h3", DestroyReason::HostDraining)]
    );

    // Empty: back to standby.
    let p = run(
        &f,
        &hosts,
        &replaced[..1],
        &Busy::default(),
        &PlanMemory::default(),
        t0,
    );
    assert!(
        p.actions
            .contains(&Action::ReturnToStandby { host: "h3".into() }),
        "{:?}",
        p.actions
    );
}

#[test]
fn an_admin_drain_is_never_ended_by_the_planner() {
    let f = fleet(
        vec![class("office", rule(2, 0, 2), 50)],
        vec![host("h1", 10, false), host("h3", 10, true)],
    );
    let hosts = [
        seeded(&f, "h1", HostStatus::Active),
        seeded(&f, "h3", HostStatus::Draining { by_admin: true }),
    ];
    let desktops = many(2, "h1", "office", PoolState::Buffer, "v2");
    let p = run(
        &f,
        &hosts,
        &desktops,
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
}

#[test]
fn interrupted_creations_are_finished_or_given_up() {
    let f = fleet(
        vec![class("office", rule(4, 0, 4), 50)],
        vec![host("h1", 50, false)],
    );
    let mut hosts = [seeded(&f, "h1", HostStatus::Active)];
    let mut booted = desk(
        "dp-office-booted",
        "h1",
        "office",
        PoolState::Creation,
        "v2",
    );
    booted.running = true;
    let defined = desk(
        "dp-office-defined",
        "h1",
        "office",
        PoolState::Creation,
        "v2",
    );
    let mut failing = desk(
        "dp-office-failing",
        "h1",
        "office",
        PoolState::Creation,
        "v2",
    );
    failing.meta.attempts = 3;
    let retired = desk(
        "dp-office-retired",
        "h1",
        "office",
        PoolState::Retired,
        "v2",
    );
    hosts[0].desktop_volumes = vec![
        "dp-office-booted.qcow2".into(),
        "dp-office-defined.qcow2".into(),
        "dp-office-orphan.qcow2".into(),
    ];
    hosts[0].unlabelled_desktops = vec!["dp-office-nolabel".into()];
    hosts[0].seed_copies.push(seed("office", "v1", true));
    hosts[0].seed_copies.push(seed("dev", "v9", false));
    let desktops = vec![booted, defined, failing, retired];
    let p = run(
        &f,
        &hosts,
        &desktops,
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    for expected in [
        Action::Promote {
            host: "h1".into(),
            desktop: "dp-office-booted".into(),
        },
        Action::Boot {
            host: "h1".into(),
            desktop: "dp-office-defined".into(),
        },
        Action::Destroy {
            host: "h1".into(),
            desktop: "dp-office-failing".into(),
            reason: DestroyReason::Failed,
        },
        Action::Destroy {
            host: "h1".into(),
            desktop: "dp-office-retired".into(),
            reason: DestroyReason::Retired,
        },
        Action::Destroy {
            host: "h1".into(),
            desktop: "dp-office-nolabel".into(),
            reason: DestroyReason::Unlabelled,
        },
        Action::DeleteVolume {
            host: "h1".into(),
            volume: "dp-office-orphan.qcow2".into(),
        },
        Action::DeleteSeedCopy {
            host: "h1".into(),
            class: "office".into(),
            version: "v1".into(),
        },
        Action::DeleteSeedCopy {
            host: "h1".into(),
            class: "dev".into(),
            version: "v9".into(),
        },
    ] {
        assert!(
            p.actions.contains(&expected),
            "missing {expected:?} in {:?}",
            p.actions
        );
    }
}

#[test]
fn an_old_seed_copy_is_kept_while_desktops_are_backed_by_it() {
    let f = fleet(
        vec![class("office", rule(0, 0, 0), 50)],
        vec![host("h1", 50, false)],
    );
    let mut hosts = [seeded(&f, "h1", HostStatus::Active)];
    hosts[0].seed_copies.push(seed("office", "v1", true));
    let assigned = many(1, "h1", "office", PoolState::Production, "v1");
    let p = run(
        &f,
        &hosts,
        &assigned,
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
}

#[test]
fn buffered_desktops_on_a_down_host_are_replaced_elsewhere() {
    let f = fleet(
        vec![class("office", rule(2, 0, 2), 50)],
        vec![host("h1", 50, false), host("h2", 50, false)],
    );
    let hosts = [
        seeded(&f, "h1", HostStatus::Active),
        seeded(
            &f,
            "h2",
            HostStatus::Down {
                reason: "connection refused".into(),
            },
        ),
    ];
    let mut desktops = many(2, "h2", "office", PoolState::Buffer, "v2");
    desktops.extend(many(1, "h2", "office", PoolState::Production, "v2"));
    let p = run(
        &f,
        &hosts,
        &desktops,
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert_eq!(creates(&p), vec![("h1", "office"), ("h1", "office")]);
    assert_eq!(
        p.classes[0].production, 1,
        "users on the down host keep their desktops"
    );
    assert!(
        destroys(&p).is_empty(),
        "nothing is ordered on an unreachable host"
    );
}

#[test]
fn a_failing_class_backs_off_and_says_why() {
    let f = fleet(
        vec![class("office", rule(2, 0, 2), 50)],
        vec![host("h1", 50, false)],
    );
    let hosts = [seeded(&f, "h1", HostStatus::Active)];
    let now = monday("12:00");
    let busy = backing_off(
        "office",
        now + SignedDuration::from_secs(40),
        "seed volume missing",
    );
    let p = run(&f, &hosts, &[], &busy, &PlanMemory::default(), now);
    assert!(creates(&p).is_empty());
    assert_eq!(
        p.classes[0].reasons,
        vec![Reason::CreationFailing {
            retry_in_secs: 40,
            error: "seed volume missing".into()
        }]
    );
}

#[test]
fn an_admin_floor_raise_lasts_until_its_expiry() {
    let f = fleet(
        vec![class("office", rule(1, 0, 2), 50)],
        vec![host("h1", 50, false)],
    );
    let hosts = [seeded(&f, "h1", HostStatus::Active)];
    let now = monday("12:00");
    let busy = Busy {
        floor_raises: [(
            "office".to_string(),
            (6, now + SignedDuration::from_secs(60)),
        )]
        .into(),
        ..Busy::default()
    };
    let p = run(&f, &hosts, &[], &busy, &PlanMemory::default(), now);
    assert_eq!(p.classes[0].buffer_target, 6);
    assert!(p.classes[0].reasons.contains(&Reason::FloorRaised {
        floor: 6,
        ends_in_secs: 60
    }));
    let p = run(
        &f,
        &hosts,
        &[],
        &busy,
        &PlanMemory::default(),
        now + SignedDuration::from_secs(61),
    );
    assert_eq!(p.classes[0].buffer_target, 1);
    assert!(
        !p.classes[0]
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::FloorRaised { .. }))
    );
}

#[test]
fn creations_held_back_by_pacing_on_active_hosts_are_not_said_to_lack_an_active_host() {
    let f = fleet(
        vec![class("office", rule(20, 0, 20), 50)],
        vec![host("h1", 20, false), host("h2", 20, false)],
    );
    let hosts = [
        seeded(&f, "h1", HostStatus::Active),
        seeded(&f, "h2", HostStatus::Active),
    ];
    let p = run(
        &f,
        &hosts,
        &[],
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    let reasons = &p.classes[0].reasons;
    assert!(
        reasons
            .iter()
            .any(|r| matches!(r, Reason::PacingLimit { .. })),
        "{reasons:?}"
    );
    assert!(
        !reasons
            .iter()
            .any(|r| matches!(r, Reason::NoActiveHost { .. })),
        "{reasons:?}"
    );

    // With every host down, the same creations have no active host.
    let down = |name: &str| {
        seeded(
            &f,
            name,
            HostStatus::Down {
                reason: "unreachable".into(),
            },
        )
    };
    let hosts = [down("h1"), down("h2")];
    let p = run(
        &f,
        &hosts,
        &[],
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert!(
        p.classes[0]
            .reasons
            .contains(&Reason::NoActiveHost { count: 20 }),
        "{:?}",
        p.classes[0].reasons
    );
}

#[test]
fn the_renderer_words_the_raised_floor_and_the_paused_engine() {
    let line = render(
        0,
        2,
        &[
            Reason::EnginePaused,
            Reason::FloorRaised {
                floor: 2,
                ends_in_secs: 90,
            },
        ],
    );
    assert_eq!(
        line,
        "buffer 0 below target 2: engine paused: nothing is made or removed, floor raised to 2 for 2 min"
    );
}

#[test]
fn the_explanation_names_what_holds_the_buffer_back() {
    let f = fleet(
        vec![class("office", rule(12, 0, 12), 50)],
        vec![host("h1", 50, false), host("h2", 3, false)],
    );
    let hosts = [
        seeded(&f, "h1", HostStatus::Active),
        seeded(&f, "h2", HostStatus::Active),
    ];
    let mut desktops = many(3, "h1", "office", PoolState::Buffer, "v2");
    desktops.extend(many(4, "h1", "office", PoolState::Creation, "v2"));
    desktops.extend(
        many(3, "h2", "office", PoolState::Production, "v2")
            .into_iter()
            .map(|mut d| {
                d.name.push_str("-h2");
                d
            }),
    );
    let busy = Busy {
        desktops: desktops.iter().map(|d| d.name.clone()).collect(),
        ..Busy::default()
    };
    let p = run(
        &f,
        &hosts,
        &desktops,
        &busy,
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert_eq!(
        p.classes[0].reasons,
        vec![
            Reason::InCreation { count: 4 },
            Reason::PacingLimit {
                hosts: vec!["h1".into()]
            },
            Reason::AtCapacity {
                hosts: vec!["h2".into()]
            },
        ]
    );
    // The one place the reasons become English.
    assert_eq!(
        p.classes[0].explanation(),
        "buffer 3 below target 12: 4 in creation, pacing limit on h1, host h2 at capacity"
    );
}

#[test]
fn a_recycled_desktop_is_replaced_at_once_even_at_target() {
    let f = fleet(
        vec![class("office", rule(2, 0, 2), 50)],
        vec![host("h1", 50, false)],
    );
    let hosts = [seeded(&f, "h1", HostStatus::Active)];
    let buffer = many(2, "h1", "office", PoolState::Buffer, "v2");
    let busy = Busy {
        owed_replacements: [("office".to_string(), 1)].into(),
        ..Busy::default()
    };
    let p = run(
        &f,
        &hosts,
        &buffer,
        &busy,
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert_eq!(creates(&p), vec![("h1", "office")]);
    let p = run(
        &f,
        &hosts,
        &buffer,
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert!(creates(&p).is_empty(), "nothing owed, nothing made");
}

#[test]
fn poisson_quantiles_match_the_tables() {
    assert_eq!(poisson_quantile(0.0, 0.99), 0);
    assert_eq!(poisson_quantile(-1.0, 0.99), 0);
    assert_eq!(poisson_quantile(f64::NAN, 0.99), 0);
    // P(N <= 3) = 0.981, P(N <= 4) = 0.996 for a mean of 1.
    assert_eq!(poisson_quantile(1.0, 0.99), 4);
    assert_eq!(poisson_quantile(1.0, 0.98), 3);
    // Mean 10: P(N <= 17) = 0.9857, P(N <= 18) = 0.9928.
    assert_eq!(poisson_quantile(10.0, 0.99), 18);
    // A large mean does not underflow: about mean + 2.33 sd.
    let q = poisson_quantile(1000.0, 0.99);
    assert!((1070..=1077).contains(&q), "{q}");
    assert_eq!(predictive_spare(0.0, 0.99), 1);
    assert_eq!(predictive_spare(1.0, 0.99), 5);
}

/// A predictive class with `rule` and a 99% service level.
fn predictive_class(name: &str, rule: BufferRule, cap: u32) -> ClassSpec {
    let mut c = class(name, rule, cap);
    c.policy.predictive = Some(crate::policy::Predictive {
        service_level: 0.99,
    });
    c
}

fn run_forecast(f: &Fleet, desktops: &[ObservedDesktop], forecast: Option<f64>) -> Plan {
    let hosts = [seeded(f, "h1", HostStatus::Active)];
    let forecasts: HashMap<String, f64> = forecast
        .map(|x| ("office".to_string(), x))
        .into_iter()
        .collect();
    plan(&PlanInput {
        fleet: f,
        hosts: &hosts,
        desktops,
        busy: &Busy::default(),
        memory: &PlanMemory::default(),
        now: monday("12:00"),
        forecasts: &forecasts,
        measured_ready: &HashMap::new(),
    })
}

#[test]
fn a_predictive_buffer_holds_the_quantile_of_the_forecast_plus_one() {
    let f = fleet(
        vec![predictive_class("office", rule(0, 0, 30), 100)],
        vec![host("h1", 200, false)],
    );
    // One login expected while a desktop is made: 4 (99% quantile) + 1.
    let p = run_forecast(&f, &[], Some(1.0));
    assert_eq!(p.classes[0].buffer_target, 5);
    assert_eq!(creates(&p).len(), 4, "pacing: 4 clones at a time per host");
    let p = run_forecast(&f, &[], Some(10.0));
    assert_eq!(p.classes[0].buffer_target, 19);
    // Nothing expected (or no forecast given): the desktop for the next login only.
    assert_eq!(run_forecast(&f, &[], Some(0.0)).classes[0].buffer_target, 1);
    assert_eq!(run_forecast(&f, &[], None).classes[0].buffer_target, 1);
}

#[test]
fn a_predictive_buffer_keeps_within_the_floor_and_ceiling_and_ignores_the_percentage() {
    let f = fleet(
        vec![predictive_class("office", rule(3, 50, 8), 200)],
        vec![host("h1", 300, false)],
    );
    // 100 in production: the 50% would ask for 50 (capped at 8); the forecast decides instead.
    let production = many(100, "h1", "office", PoolState::Production, "v2");
    assert_eq!(
        run_forecast(&f, &production, Some(1.0)).classes[0].buffer_target,
        5
    );
    assert_eq!(
        run_forecast(&f, &production, Some(0.0)).classes[0].buffer_target,
        3,
        "floor"
    );
    assert_eq!(
        run_forecast(&f, &production, Some(10.0)).classes[0].buffer_target,
        8,
        "ceiling"
    );
    // The same class without the predictive part follows its percentage (50 → ceiling 8).
    let plain = fleet(
        vec![class("office", rule(3, 50, 8), 200)],
        vec![host("h1", 300, false)],
    );
    assert_eq!(
        run_forecast(
            &plain,
            &many(4, "h1", "office", PoolState::Production, "v2"),
            Some(10.0)
        )
        .classes[0]
            .buffer_target,
        3,
        "50% of 4 is 2, under the floor; the forecast is not read"
    );
}

#[test]
fn a_predictive_buffer_uses_the_larger_bounds_of_the_rules_now_and_ahead() {
    let mut c = predictive_class("office", rule(1, 0, 4), 100);
    // A period starting at 12:01 (within ready_secs of 12:00) with a higher floor and ceiling.
    c.policy.periods = vec![weekday_period("12:01", "18:00", 0, rule(6, 0, 12))];
    let f = fleet(vec![c], vec![host("h1", 200, false)]);
    assert_eq!(run_forecast(&f, &[], Some(0.0)).classes[0].buffer_target, 6);
    assert_eq!(
        run_forecast(&f, &[], Some(10.0)).classes[0].buffer_target,
        12
    );
}

#[test]
fn hosts_without_limits_waiting_for_their_seed_copy_call_no_standby_host() {
    // Each host without a capacity limit has room u32::MAX: their sum saturates (it once
    // overflowed, a panic in a debug build and a miscount in a release one).
    let unlimited = |name: &str, standby: bool| HostSpec {
        capacity: Capacity {
            desktops: None,
            memory_mib: None,
            vcpus: None,
        },
        ..host(name, 0, standby)
    };
    let f = fleet(
        vec![class("office", rule(3, 0, 10), 50)],
        vec![
            unlimited("h1", false),
            unlimited("h2", false),
            unlimited("h3", true),
        ],
    );
    let seed = &f.classes[0].seed;
    let with_source = |name: &str, status: HostStatus| HostView {
        seed_sources: vec![(seed.pool.clone(), seed.volume.clone())],
        ..bare(name, status)
    };
    let hosts = [
        with_source("h1", HostStatus::Active),
        with_source("h2", HostStatus::Active),
        with_source("h3", HostStatus::Standby),
    ];
    let p = run(
        &f,
        &hosts,
        &[],
        &Busy::default(),
        &PlanMemory::default(),
        monday("12:00"),
    );
    assert!(
        p.actions
            .iter()
            .any(|a| matches!(a, Action::CopySeed { .. })),
        "a seed copy is ordered: {:?}",
        p.actions
    );
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::ActivateHost { .. })),
        "room on the active hosts calls no standby host: {:?}",
        p.actions
    );
}
