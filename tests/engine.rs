//! The engine against libvirt's test driver: every host a separate hypervisor (file-backed
//! `test:///` URIs), every check read back from libvirt.

mod common;

use std::sync::Arc;

use common::*;
use deskpool_api::{Command, EventKind, HostStatusView, ReasonView, Reply};
use deskpool_core::clock::{ManualClock, SystemClock};
use deskpool_core::model::PoolState;
use deskpool_engine::run::{self, EngineOptions};

fn two_hosts_two_classes(capacity: u32) -> Bed {
    let toml = format!(
        "{ENGINE_TOML}{}{}{}{}",
        host_toml("h1", capacity, false, ""),
        host_toml("h2", capacity, false, ""),
        class_toml("office", 4, ""),
        class_toml("dev", 2, ""),
    );
    Bed::new(&["h1", "h2"], &["office", "dev"], &toml)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffers_fill_from_empty_on_every_host() {
    // Neither host alone can hold the 6 desktops wanted: both are used.
    let bed = two_hosts_two_classes(4);
    let mut engine = bed.start();
    let s = wait(&mut engine, "steady", |s| s.steady).await;
    assert_eq!(
        (
            class(&s, "office").plan.buffer,
            class(&s, "dev").plan.buffer
        ),
        (4, 2)
    );

    let (o1, o2) = (bed.observe("h1"), bed.observe("h2"));
    let office = count(&o1, "office", PoolState::Buffer) + count(&o2, "office", PoolState::Buffer);
    let dev = count(&o1, "dev", PoolState::Buffer) + count(&o2, "dev", PoolState::Buffer);
    assert_eq!(
        (office, dev),
        (4, 2),
        "libvirt holds what the snapshot says"
    );
    assert_eq!(o1.desktops.len() + o2.desktops.len(), 6);
    assert!(
        o1.desktops.len() <= 4 && o2.desktops.len() <= 4,
        "capacity respected"
    );
    assert_nothing_leaked(&o1);
    assert_nothing_leaked(&o2);
    // A complete seed copy of its class sits on the host of every desktop.
    for o in [&o1, &o2] {
        for d in &o.desktops {
            assert!(
                o.seed_copies
                    .iter()
                    .any(|c| c.class == d.meta.class && c.version == "v1" && c.complete),
                "{} has no seed copy beside it",
                d.name
            );
        }
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_and_release_follow_a_policy_change() {
    let bed = two_hosts_two_classes(10);
    let mut engine = bed.start();
    wait(&mut engine, "steady", |s| s.steady).await;

    let Ok(Reply::Assigned { desktop, host, .. }) = engine
        .send(
            Command::Assign {
                class: "office".into(),
                user: "alice".into(),
                wait_secs: 0,
            },
            "test",
        )
        .await
    else {
        panic!("assign failed")
    };
    let o = bed.observe(&host);
    let d = o
        .desktops
        .iter()
        .find(|d| d.name == desktop)
        .expect("assigned desktop exists");
    assert_eq!(
        (d.meta.pool, d.meta.user.as_deref()),
        (PoolState::Production, Some("alice"))
    );
    let again = engine
        .send(
            Command::Assign {
                class: "office".into(),
                user: "alice".into(),
                wait_secs: 0,
            },
            "test",
        )
        .await;
    assert_eq!(
        again,
        Ok(Reply::Assigned {
            desktop: desktop.clone(),
            host: host.clone(),
            display: None,
            address: None,
            display_password: None,
            waited_ms: 0,
        }),
        "same user, same desktop"
    );

    // The buffer refills behind the login, to the new policy's floor.
    let mut policy = bed.fleet.class("office").unwrap().policy.clone();
    policy.buffer.floor = 6;
    policy.buffer.ceiling = 6;
    engine
        .send(
            Command::SetPolicy {
                class: "office".into(),
                policy: Box::new(policy),
            },
            "test",
        )
        .await
        .unwrap();
    let s = wait(
        &mut engine,
        "office buffer at 6 with alice in production",
        |s| {
            s.steady
                && class(s, "office").plan.buffer == 6
                && class(s, "office").plan.production == 1
        },
    )
    .await;
    assert_eq!(class(&s, "office").plan.buffer_target, 6);

    // Logout: the used desktop is destroyed, never handed to anyone else.
    engine
        .send(
            Command::Release {
                desktop: desktop.clone(),
            },
            "test",
        )
        .await
        .unwrap();
    wait(&mut engine, "the released desktop gone", |s| {
        s.steady
            && class(s, "office").plan.production == 0
            && !s.desktops.iter().any(|d| d.name == desktop)
    })
    .await;
    let o = bed.observe(&host);
    assert!(
        !o.desktops.iter().any(|d| d.name == desktop),
        "released desktop still defined"
    );
    assert!(
        !o.desktop_volumes.iter().any(|v| v.starts_with(&desktop)),
        "released desktop's disk still there"
    );
    let err = engine
        .send(
            Command::Release {
                desktop: desktop.clone(),
            },
            "test",
        )
        .await
        .unwrap_err();
    assert!(err.message.contains("unknown desktop"), "{err}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_period_boundary_raises_the_buffer_ahead_of_time() {
    let period = "ready_secs = 60\n[[classes.policy.periods]]\ndays = [\"mon\"]\nfrom = \"07:00\"\nto = \"18:00\"\nproduction = 5\nbuffer = { floor = 1, percent = 0, ceiling = 1 }\n";
    let toml = format!(
        "{ENGINE_TOML}{}{}",
        host_toml("h1", 20, false, ""),
        class_toml("office", 1, period)
    );
    let bed = Bed::new(&["h1"], &["office"], &toml);
    let clock = Arc::new(ManualClock::new("2026-01-05T06:50:00Z".parse().unwrap()));
    let mut engine = bed.start_with(clock.clone());
    let s = wait(&mut engine, "steady before the period", |s| s.steady).await;
    assert_eq!(
        (
            class(&s, "office").plan.buffer_target,
            class(&s, "office").plan.buffer
        ),
        (1, 1)
    );

    // 60 s before 07:00 the period's 5 expected logins + its floor of 1 must be ready.
    clock.set("2026-01-05T06:59:30Z".parse().unwrap());
    let s = wait(&mut engine, "steady at the period's target", |s| {
        s.steady && class(s, "office").plan.buffer == 6
    })
    .await;
    assert_eq!(class(&s, "office").plan.production_target, 5);
    assert_eq!(count(&bed.observe("h1"), "office", PoolState::Buffer), 6);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_host_is_activated_then_drained_back_to_standby() {
    let marker = "@DIR@/h3.activated";
    let off = "@DIR@/h3.deactivated";
    let toml = format!(
        "{ENGINE_TOML}{}{}{}",
        host_toml("h1", 3, false, ""),
        host_toml(
            "h3",
            10,
            true,
            &format!("activate_command = \"touch {marker}\"\ndeactivate_command = \"touch {off}\"")
        ),
        class_toml("office", 5, ""),
    );
    let bed = Bed::new(&["h1", "h3"], &["office"], &toml);
    let mut engine = bed.start();
    let s = wait(&mut engine, "steady on two hosts", |s| {
        s.steady && host(s, "h3").status == HostStatusView::Active
    })
    .await;
    assert!(bed.file("h3.activated").exists(), "activation command ran");
    // Which host fills first depends on whose seed copy is ready first; what holds: h1 stays
    // within its 3, and the standby host carries the rest.
    let (on_h1, on_h3) = (host(&s, "h1").desktops, host(&s, "h3").desktops);
    assert!(
        on_h1 <= 3 && on_h1 + on_h3 == 5 && on_h3 >= 2,
        "h1 {on_h1}, h3 {on_h3}"
    );
    let o3 = bed.observe("h3");
    assert_eq!(
        count(&o3, "office", PoolState::Buffer),
        on_h3 as usize,
        "libvirt agrees"
    );

    // Demand falls: everything fits on h1 again, so h3 drains and returns to standby.
    let mut policy = bed.fleet.class("office").unwrap().policy.clone();
    policy.buffer.floor = 2;
    policy.buffer.ceiling = 2;
    engine
        .send(
            Command::SetPolicy {
                class: "office".into(),
                policy: Box::new(policy),
            },
            "test",
        )
        .await
        .unwrap();
    let s = wait(&mut engine, "h3 back on standby", |s| {
        s.steady && host(s, "h3").status == HostStatusView::Standby
    })
    .await;
    assert_eq!((host(&s, "h1").desktops, host(&s, "h3").desktops), (2, 0));
    assert!(
        bed.file("h3.deactivated").exists(),
        "deactivation command ran"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_is_marked_down_and_the_others_carry_on() {
    let toml = format!(
        "{ENGINE_TOML}{}[[hosts]]\nname = \"h2\"\nuri = \"test:///no/such/dir/h2.xml\"\ncapacity = {{ desktops = 10 }}\n{}",
        host_toml("h1", 10, false, ""),
        class_toml("office", 3, ""),
    );
    let bed = Bed::new(&["h1"], &["office"], &toml);
    let mut engine = bed.start();
    let s = wait(&mut engine, "steady with h2 down", |s| s.steady).await;
    let HostStatusView::Down { reason } = &host(&s, "h2").status else {
        panic!("h2 should be down: {:?}", host(&s, "h2").status)
    };
    assert!(
        reason.contains("h2.xml"),
        "the reason names what failed: {reason}"
    );
    assert!(
        host(&s, "h2").retry_in_secs.is_some(),
        "a retry is scheduled"
    );
    assert_eq!(count(&bed.observe("h1"), "office", PoolState::Buffer), 3);
    engine.shutdown().await;
}

/// The first engine runs on a runtime of its own; dropping that runtime kills every engine task
/// where it stands (as a killed process would) once the libvirt calls already sent have
/// returned (as libvirtd would finish them for a killed client).
#[test]
fn an_interrupted_run_is_finished_by_the_next_engine_with_nothing_leaked() {
    let toml = format!(
        "{ENGINE_TOML}{}{}",
        host_toml("h1", 40, false, ""),
        class_toml(
            "office",
            20,
            "pacing = { clones_per_host = 4, boots_per_host = 1 }"
        ),
    );
    let bed = Bed::new(&["h1"], &["office"], &toml);
    let first_runtime = tokio::runtime::Runtime::new().unwrap();
    first_runtime.block_on(async {
        let mut first = bed.start();
        // Killed wherever it has got to once it holds h1 (the run may be barely started, half
        // done or done); the half-made states that matter are made below, whatever the timing.
        wait(&mut first, "the first engine at work on h1", |s| {
            s.hosts
                .iter()
                .any(|h| h.name == "h1" && h.status == HostStatusView::Active)
        })
        .await;
        // Not shut down: dropping the runtime below kills it mid-step.
        std::mem::forget(first);
    });
    drop(first_runtime);

    // Leftovers of every kind an interruption can leave, made through libvirt directly.
    let conn = bed
        .connections
        .get("h1")
        .expect("the first engine connected h1");
    let pool = bed.fleet.engine.creation_pool.clone();
    // The seed copy as the engine makes it (returned as it is if the first engine finished it).
    let seed = conn
        .copy_seed_local("seeds", "office.qcow2", &pool, "office", "v1", &|_, _| {})
        .unwrap();
    conn.create_overlay(&pool, "dp-office-orphan", &seed, 1 << 30)
        .unwrap();
    leftovers::define_unlabelled(&conn, &pool, &seed, "dp-office-nolabel");
    leftovers::define_in_creation(&conn, &bed.fleet, &pool, &seed, "dp-office-halfway");
    leftovers::define_in_creation(&conn, &bed.fleet, &pool, &seed, "dp-office-booted");
    conn.start("dp-office-booted").unwrap();
    leftovers::define_retired(&conn, &bed.fleet, &pool, &seed, "dp-office-retired");

    let second_runtime = tokio::runtime::Runtime::new().unwrap();
    second_runtime.block_on(async {
        let mut second = bed.start();
        let s = wait(&mut second, "steady after the restart", |s| s.steady).await;
        assert_eq!(class(&s, "office").plan.buffer, 20);
        let o = bed.observe("h1");
        assert_eq!(
            count(&o, "office", PoolState::Buffer),
            20,
            "no desktop counted twice or lost"
        );
        assert_nothing_leaked(&o);
        assert!(
            o.desktops.iter().any(|d| d.name == "dp-office-booted"),
            "the booted desktop was promoted, not remade"
        );
        assert!(
            o.desktops.iter().any(|d| d.name == "dp-office-halfway"),
            "the half-made desktop was finished, not remade"
        );
        assert!(!o.desktops.iter().any(|d| d.name == "dp-office-retired"));
        second.shutdown().await;
    });
}

/// Leftovers an interrupted engine can leave behind, made with the hypervisor layer.
mod leftovers {
    use deskpool_core::model::{DesktopMeta, PoolState, SeedCopy};
    use deskpool_core::policy::Fleet;
    use deskpool_hypervisor::{DesktopDefinition, HostConnection};

    /// Labelled newer than anything the engine made, so that a surplus is trimmed elsewhere.
    const NEWEST: i64 = 4_000_000_000;

    fn define(
        conn: &HostConnection,
        fleet: &Fleet,
        pool: &str,
        seed: &SeedCopy,
        name: &str,
        state: PoolState,
    ) {
        let class = fleet.class("office").unwrap();
        let path = conn.create_overlay(pool, name, seed, 1 << 30).unwrap();
        let meta = DesktopMeta {
            class: "office".into(),
            pool: state,
            seed_version: "v1".into(),
            user: None,
            created_at: NEWEST,
            changed_at: 1,
            attempts: 0,
            term: 0,
        };
        conn.define_desktop(&DesktopDefinition {
            name,
            class,
            disk_path: &path,
            disk_format: "qcow2",
            meta: &meta,
            display_password: "test0pw1",
        })
        .unwrap();
    }

    pub fn define_in_creation(
        conn: &HostConnection,
        fleet: &Fleet,
        pool: &str,
        seed: &SeedCopy,
        name: &str,
    ) {
        define(conn, fleet, pool, seed, name, PoolState::Creation);
    }

    pub fn define_failed(
        conn: &HostConnection,
        fleet: &Fleet,
        pool: &str,
        seed: &SeedCopy,
        name: &str,
        attempts: u32,
    ) {
        define(conn, fleet, pool, seed, name, PoolState::Creation);
        let mut meta = DesktopMeta {
            class: "office".into(),
            pool: PoolState::Creation,
            seed_version: "v1".into(),
            user: None,
            created_at: NEWEST,
            changed_at: 1,
            attempts,
            term: 0,
        };
        meta.changed_at = 2;
        conn.set_meta(name, &meta).unwrap();
    }

    pub fn define_retired(
        conn: &HostConnection,
        fleet: &Fleet,
        pool: &str,
        seed: &SeedCopy,
        name: &str,
    ) {
        define(conn, fleet, pool, seed, name, PoolState::Retired);
        conn.start(name).unwrap();
    }

    /// A domain named like a desktop but without deskpool's label.
    pub fn define_unlabelled(conn: &HostConnection, pool: &str, seed: &SeedCopy, name: &str) {
        let path = conn.create_overlay(pool, name, seed, 1 << 30).unwrap();
        conn.raw().define_domain_xml(&format!(
            "<domain type='test'><name>{name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices><disk type='file' device='disk'><source file='{path}'/><target dev='vda'/></disk></devices></domain>"
        ))
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_engine_acts_on_nothing_until_resumed() {
    let toml = format!(
        "{ENGINE_TOML}{}{}",
        host_toml("h1", 10, false, ""),
        class_toml("office", 3, "")
    );
    let bed = Bed::new(&["h1"], &["office"], &toml);
    let mut engine = run::start(
        bed.fleet.clone(),
        EngineOptions {
            clock: Arc::new(SystemClock),
            read_only: false,
            paused: true,
            connections: bed.connections.clone(),
            state_dir: None,
            simulated_steps: Default::default(),
            leadership: None,
        },
    );
    let s = wait(&mut engine, "a few passes while paused", |s| {
        s.passes >= 3 && s.paused
    })
    .await;
    assert_eq!(class(&s, "office").plan.buffer_target, 3, "it still plans");
    assert!(
        bed.observe("h1").desktops.is_empty() && bed.observe("h1").seed_copies.is_empty(),
        "it did nothing"
    );
    engine.send(Command::Resume, "test").await.unwrap();
    wait(&mut engine, "steady after resume", |s| {
        s.steady && !s.paused
    })
    .await;
    assert_eq!(count(&bed.observe("h1"), "office", PoolState::Buffer), 3);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_drain_moves_the_buffer_off_the_host_and_keeps_users() {
    let toml = format!(
        "{ENGINE_TOML}{}{}{}",
        host_toml("h1", 10, false, ""),
        host_toml("h2", 10, false, ""),
        class_toml("office", 4, ""),
    );
    let bed = Bed::new(&["h1", "h2"], &["office"], &toml);
    let mut engine = bed.start();
    wait(&mut engine, "steady", |s| s.steady).await;
    // Someone is working on h1 (or h2): that desktop must stay through the drain.
    let Ok(Reply::Assigned {
        desktop,
        host: busy_host,
        ..
    }) = engine
        .send(
            Command::Assign {
                class: "office".into(),
                user: "bob".into(),
                wait_secs: 0,
            },
            "test",
        )
        .await
    else {
        panic!("assign failed")
    };
    engine
        .send(
            Command::DrainHost {
                host: busy_host.clone(),
            },
            "admin",
        )
        .await
        .unwrap();
    let other = if busy_host == "h1" { "h2" } else { "h1" };
    let s = wait(&mut engine, "buffer moved off the drained host", |s| {
        s.steady
            && host(s, &busy_host).desktops == 1
            && host(s, &busy_host).status == HostStatusView::Draining { by_admin: true }
    })
    .await;
    assert_eq!(
        host(&s, &busy_host).status,
        HostStatusView::Draining { by_admin: true }
    );
    let drained = bed.observe(&busy_host);
    assert_eq!(drained.desktops.len(), 1);
    assert_eq!(
        drained.desktops[0].name, desktop,
        "the user's desktop stays"
    );
    assert_eq!(count(&bed.observe(other), "office", PoolState::Buffer), 4);

    engine
        .send(
            Command::UndrainHost {
                host: busy_host.clone(),
            },
            "admin",
        )
        .await
        .unwrap();
    let s = wait(&mut engine, "host back in service", |s| {
        host(s, &busy_host).status == HostStatusView::Active
    })
    .await;
    assert_eq!(class(&s, "office").plan.production, 1);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_that_keeps_failing_is_destroyed_and_reported() {
    let toml = format!(
        "{ENGINE_TOML}{}{}",
        host_toml("h1", 10, false, ""),
        class_toml("office", 2, "")
    );
    let bed = Bed::new(&["h1"], &["office"], &toml);
    let mut engine = bed.start();
    wait(&mut engine, "steady", |s| s.steady).await;
    engine.send(Command::Pause, "test").await.unwrap();
    // A desktop that already failed as often as allowed, left in the creation pool.
    let conn = bed.connections.get("h1").unwrap();
    let seed = bed.observe("h1").seed_copies.into_iter().next().unwrap();
    let pool = bed.fleet.engine.creation_pool.clone();
    leftovers::define_failed(
        &conn,
        &bed.fleet,
        &pool,
        &seed,
        "dp-office-broken",
        bed.fleet.engine.max_attempts,
    );
    engine
        .send(
            Command::Refill {
                class: "office".into(),
            },
            "test",
        )
        .await
        .unwrap();
    engine.send(Command::Resume, "test").await.unwrap();

    // Reported first, then destroyed.
    let mut reported = None;
    loop {
        let event = tokio::time::timeout(DEADLINE, engine.events.recv())
            .await
            .expect("an event")
            .expect("engine alive");
        if event.desktop.as_deref() != Some("dp-office-broken") {
            continue;
        }
        match event.kind {
            EventKind::Failed => reported = Some(event.message),
            EventKind::Destroyed => break,
            _ => {}
        }
    }
    assert!(
        reported
            .expect("failure reported before the destruction")
            .contains("gave up after 3 attempts")
    );
    let o = bed.observe("h1");
    assert!(
        !o.desktops.iter().any(|d| d.name == "dp-office-broken"),
        "{o:#?}"
    );
    assert!(
        !o.desktop_volumes
            .iter()
            .any(|v| v.starts_with("dp-office-broken")),
        "its volume is deleted"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_seed_backs_off_and_the_class_says_why() {
    let toml = format!(
        "{ENGINE_TOML}{}{}",
        host_toml("h1", 10, false, ""),
        class_toml("office", 2, "").replace("volume = \"office.qcow2\"", "volume = \"gone.qcow2\""),
    );
    let bed = Bed::new(&["h1"], &["office"], &toml);
    let mut engine = bed.start();
    let s = wait(&mut engine, "an explanation", |s| {
        s.passes > 3
            && class(s, "office").plan.reasons.iter().any(|r| match r {
                ReasonView::CreationFailing { error, .. } => error.contains("seed"),
                ReasonView::SeedMissing { .. } => true,
                _ => false,
            })
    })
    .await;
    let plan = &class(&s, "office").plan;
    assert_eq!(
        (plan.buffer, plan.buffer_target),
        (0, 2),
        "{:?}",
        plan.reasons
    );
    let o = bed.observe("h1");
    assert!(
        o.desktops.is_empty() && o.desktop_volumes.is_empty() && o.seed_copies.is_empty(),
        "nothing half-made: {o:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_removed_behind_the_engines_back_is_replaced() {
    let toml = format!(
        "{ENGINE_TOML}{}{}",
        host_toml("h1", 10, false, ""),
        class_toml("office", 3, "")
    );
    let bed = Bed::new(&["h1"], &["office"], &toml);
    let mut engine = bed.start();
    wait(&mut engine, "steady", |s| s.steady).await;
    let victim = bed.observe("h1").desktops[0].name.clone();
    // What an admin with virsh would do: destroy and undefine it.
    let conn = bed.connections.get("h1").unwrap();
    let domain = conn.raw().lookup_domain_by_name(&victim).unwrap();
    domain.destroy().unwrap();
    domain.undefine().unwrap();
    wait(&mut engine, "a replacement", |s| {
        s.steady && !s.desktops.iter().any(|d| d.name == victim)
    })
    .await;
    let o = bed.observe("h1");
    assert_eq!(count(&o, "office", PoolState::Buffer), 3);
    engine.shutdown().await;
}

/// `recycle` replaces a released desktop at once (the surplus waits for the scale-down delay);
/// `delete` only refills to the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_recycles_or_deletes_as_the_policy_says() {
    let policy = |on_logout: &str| {
        class_toml(on_logout, 2, &format!("on_logout = \"{on_logout}\""))
            .replace("scale_down_delay_secs = 0", "scale_down_delay_secs = 3600")
    };
    let toml = format!(
        "{ENGINE_TOML}{}{}{}",
        host_toml("h1", 20, false, ""),
        policy("recycle"),
        policy("delete")
    );
    let bed = Bed::new(&["h1"], &["recycle", "delete"], &toml);
    let mut engine = bed.start();
    wait(&mut engine, "steady", |s| s.steady).await;
    for class in ["recycle", "delete"] {
        let Ok(Reply::Assigned { desktop, .. }) = engine
            .send(
                Command::Assign {
                    class: class.into(),
                    user: "carol".into(),
                    wait_secs: 0,
                },
                "test",
            )
            .await
        else {
            panic!("assign failed")
        };
        wait(&mut engine, "buffer refilled behind the login", |s| {
            let c = &self::class(s, class).plan;
            (c.production, c.buffer, c.creation) == (1, 2, 0)
        })
        .await;
        engine
            .send(Command::Release { desktop }, "test")
            .await
            .unwrap();
    }
    let s = wait(&mut engine, "both logouts handled", |s| {
        s.jobs_in_flight == 0
            && class(s, "recycle").plan.production == 0
            && class(s, "delete").plan.production == 0
            && class(s, "recycle").plan.buffer == 3
    })
    .await;
    assert_eq!(
        class(&s, "delete").plan.buffer,
        2,
        "delete: back to the target only"
    );
    assert!(
        class(&s, "recycle")
            .plan
            .reasons
            .iter()
            .any(|r| matches!(r, ReasonView::SurplusWaiting { count: 1, .. })),
        "{:?}",
        class(&s, "recycle").plan.reasons
    );
    let o = bed.observe("h1");
    assert_eq!(
        (
            count(&o, "recycle", PoolState::Buffer),
            count(&o, "delete", PoolState::Buffer)
        ),
        (3, 2)
    );
    engine.shutdown().await;
}

/// With the buffer empty, a login waits for the next desktop to become ready (and the wait is
/// measured); without leave to wait, or past its wait, it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_on_an_empty_buffer_waits_for_the_next_desktop() {
    let toml = format!(
        "{ENGINE_TOML}{}{}",
        host_toml("h1", 10, false, ""),
        class_toml("office", 0, "")
    );
    let bed = Bed::new(&["h1"], &["office"], &toml);
    let mut engine = bed.start();
    wait(&mut engine, "steady with an empty buffer", |s| s.steady).await;

    let refused = engine
        .send(
            Command::Assign {
                class: "office".into(),
                user: "dan".into(),
                wait_secs: 0,
            },
            "test",
        )
        .await;
    assert!(
        refused
            .unwrap_err()
            .message
            .contains("no office desktop is ready")
    );

    // Paused, nothing can be made: the wait runs out.
    engine.send(Command::Pause, "test").await.unwrap();
    let timed_out = engine
        .send(
            Command::Assign {
                class: "office".into(),
                user: "dan".into(),
                wait_secs: 1,
            },
            "test",
        )
        .await;
    assert!(
        timed_out
            .unwrap_err()
            .message
            .contains("no office desktop became ready within 1s")
    );
    engine.send(Command::Resume, "test").await.unwrap();

    // The waiting login is owed a desktop even though the buffer target is 0.
    let Ok(Reply::Assigned {
        desktop, waited_ms, ..
    }) = engine
        .send(
            Command::Assign {
                class: "office".into(),
                user: "erin".into(),
                wait_secs: 30,
            },
            "test",
        )
        .await
    else {
        panic!("the login was not served")
    };
    assert!(waited_ms > 0, "the wait is measured");
    let o = bed.observe("h1");
    let d = o.desktops.iter().find(|d| d.name == desktop).unwrap();
    assert_eq!(
        (d.meta.pool, d.meta.user.as_deref()),
        (PoolState::Production, Some("erin"))
    );
    let s = wait(&mut engine, "the login counted", |s| {
        class(s, "office").logins.served == 1
    })
    .await;
    let logins = &class(&s, "office").logins;
    assert_eq!((logins.instant, logins.refused, logins.waiting), (0, 2, 0));
    assert!(logins.wait_secs_total > 0.0);
    engine.shutdown().await;
}

/// Logins and logouts are counted per class and kept across a restart in STATE/demand.json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demand_history_is_recorded_and_survives_a_restart() {
    let toml = format!(
        "{ENGINE_TOML}{}{}",
        host_toml("h1", 10, false, ""),
        class_toml("office", 2, "")
    );
    let bed = Bed::new(&["h1"], &["office"], &toml);
    let state = bed.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let options = |state: &std::path::Path| EngineOptions {
        clock: Arc::new(SystemClock),
        read_only: false,
        paused: false,
        connections: bed.connections.clone(),
        state_dir: Some(state.to_path_buf()),
        simulated_steps: Default::default(),
        leadership: None,
    };
    let mut engine = run::start(bed.fleet.clone(), options(&state));
    wait(&mut engine, "steady", |s| s.steady).await;
    for user in ["u1", "u2"] {
        let Ok(Reply::Assigned { desktop, .. }) = engine
            .send(
                Command::Assign {
                    class: "office".into(),
                    user: user.into(),
                    wait_secs: 10,
                },
                "test",
            )
            .await
        else {
            panic!("assign failed")
        };
        engine
            .send(Command::Release { desktop }, "test")
            .await
            .unwrap();
    }
    let s = wait(&mut engine, "two logins in the last bucket", |s| {
        class(s, "office").demand.iter().sum::<u32>() == 2
    })
    .await;
    assert_eq!(
        class(&s, "office").demand.len(),
        12,
        "an hour of 5-minute buckets"
    );
    engine.shutdown().await;

    let saved = deskpool_engine::history::DemandHistory::load(&state.join("demand.json")).unwrap();
    let (logins, logouts) = saved
        .buckets("office")
        .fold((0, 0), |(i, o), b| (i + b.logins, o + b.logouts));
    assert_eq!((logins, logouts), (2, 2));

    let mut again = run::start(bed.fleet.clone(), options(&state));
    wait(&mut again, "the history back after a restart", |s| {
        s.passes > 0 && class(s, "office").demand.iter().sum::<u32>() == 2
    })
    .await;
    again.shutdown().await;
}

/// A predictive class keeps ready what its history says will be asked for during a desktop's
/// ready time; a class with no history keeps its floor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_predictive_class_learns_its_morning_from_the_saved_history() {
    let predictive = "ready_secs = 80\npredictive = { service_level = 0.99 }";
    let toml = format!(
        "{ENGINE_TOML}{}{}{}",
        host_toml("h1", 60, false, ""),
        class_toml("busy", 1, predictive).replace("ceiling = 1 }", "ceiling = 40 }"),
        class_toml("quiet", 1, predictive).replace("ceiling = 1 }", "ceiling = 40 }"),
    );
    let bed = Bed::new(&["h1"], &["busy", "quiet"], &toml);
    // A week of mornings: 12 logins every 5 minutes between 08:00 and 09:00 for class busy.
    let mut history = deskpool_engine::history::DemandHistory::default();
    let monday: jiff::Timestamp = "2026-01-05T00:00:00Z".parse().unwrap();
    for day in 0..7 {
        for minute in (0..60).step_by(5) {
            for _ in 0..12 {
                let at =
                    monday + jiff::SignedDuration::from_secs(day * 86_400 + 8 * 3600 + minute * 60);
                history.record_login("busy", at);
            }
        }
    }
    let state = bed.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    history.save(&state.join("demand.json")).unwrap();

    let clock = Arc::new(ManualClock::new("2026-01-12T08:20:00Z".parse().unwrap()));
    let mut engine = run::start(
        bed.fleet.clone(),
        EngineOptions {
            clock,
            read_only: false,
            paused: false,
            connections: bed.connections.clone(),
            state_dir: Some(state),
            simulated_steps: Default::default(),
            leadership: None,
        },
    );
    let s = wait(&mut engine, "steady", |s| s.steady).await;
    // The history says about 3.2 logins in 80 s; with no login yet this morning the model
    // scales that down (to a fifth at most), which still keeps several above the floor.
    let busy = class(&s, "busy").plan.buffer_target;
    assert!((3..=12).contains(&busy), "busy keeps {busy} ready");
    assert_eq!(
        class(&s, "quiet").plan.buffer_target,
        1,
        "no history: the floor"
    );
    engine.shutdown().await;
}

// ---- issue 9: one daemon listed twice; a disk deleted where it is ----------------------------

/// The seed pool `seeds` with `office.qcow2` on `test:///default` (one state per process, kept
/// while a connection to it is open: keep the returned one).
fn default_test_daemon_with_seed() -> deskpool_hypervisor::HostConnection {
    let conn = deskpool_hypervisor::HostConnection::open("test:///default", false).unwrap();
    let pool = conn
        .raw()
        .define_storage_pool_xml(
            "<pool type='dir'><name>seeds</name><target><path>/seeds</path></target></pool>",
            0,
        )
        .unwrap();
    pool.create(0).unwrap();
    virt::storage_vol::StorageVol::create_xml(
        &pool,
        "<volume><name>office.qcow2</name><capacity>1073741824</capacity>\
         <target><format type='qcow2'/></target></volume>",
        0,
    )
    .unwrap();
    conn
}

/// Two entries for one daemon (`test:///default`, whose opens all share one state): the second
/// to connect is refused with a reason naming the first, and the desktops made through the first
/// keep their disks however long the engine runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_daemon_listed_twice_is_refused_once_and_every_disk_stays() {
    let daemon = default_test_daemon_with_seed();
    let entry = |name: &str| {
        format!(
            "[[hosts]]\nname = \"{name}\"\nuri = \"test:///default\"\ncapacity = {{ desktops = 10 }}\n"
        )
    };
    let one = format!(
        "{ENGINE_TOML}{}{}",
        entry("h1"),
        class_toml("office", 3, "")
    );
    let bed = Bed::new(&[], &["office"], &one);
    let mut engine = bed.start();
    let s = wait(&mut engine, "steady on one entry", |s| s.steady).await;
    assert_eq!(s.desktops.len(), 3);
    engine.shutdown().await;

    // `check` refuses one URI listed twice; the engine must refuse it too, for spellings no
    // check can see through (DNS aliases): the second entry is added past the config check.
    let mut fleet = bed.fleet.clone();
    let mut second = fleet.hosts[0].clone();
    second.name = "h2".into();
    fleet.hosts.push(second);
    let mut engine = run::start(
        fleet,
        EngineOptions {
            clock: Arc::new(SystemClock),
            read_only: false,
            paused: false,
            connections: run::Connections::new(),
            state_dir: None,
            simulated_steps: Default::default(),
            leadership: None,
        },
    );
    let refused = |s: &deskpool_api::Snapshot| {
        s.hosts.iter().find_map(|h| match &h.status {
            HostStatusView::Down { reason } if reason.contains("same libvirt daemon as host") => {
                Some((h.name.clone(), reason.clone()))
            }
            _ => None,
        })
    };
    let s = wait(&mut engine, "one entry refused", |s| refused(s).is_some()).await;
    let (name, reason) = refused(&s).unwrap();
    let other = if name == "h1" { "h2" } else { "h1" };
    assert!(
        reason.starts_with(&format!("same libvirt daemon as host {other} (hostname ")),
        "{reason}"
    );
    assert!(reason.contains("creation pool deskpool UUID"), "{reason}");
    assert_eq!(host(&s, other).status, HostStatusView::Active);
    // Many more passes and host reads (resync_secs = 1) later, nothing was deleted.
    let passes = s.passes;
    let s = wait(&mut engine, "more passes and reads", |s| {
        s.passes >= passes + 8 && s.steady
    })
    .await;
    assert!(
        matches!(&host(&s, &name).status, HostStatusView::Down { reason: r } if *r == reason),
        "still refused"
    );
    let mut failures = Vec::new();
    while let Ok(e) = engine.events.try_recv() {
        if e.kind == EventKind::Failed || e.kind == EventKind::Destroyed {
            failures.push(e.message);
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
    engine.shutdown().await;
    let o = daemon
        .observe("h1", &bed.fleet.engine.creation_pool, &bed.fleet.classes)
        .unwrap();
    assert_eq!(o.desktops.len(), 3);
    assert_nothing_leaked(&o);
    let mut disks: Vec<String> = o
        .desktops
        .iter()
        .map(|d| format!("{}.qcow2", d.name))
        .collect();
    disks.sort();
    assert_eq!(o.desktop_volumes, disks, "every desktop keeps its disk");
}

/// After `creation_pool` changes, a recycled desktop's disk is deleted in the pool it was made
/// in (the one its domain names), not looked for in the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_creation_pool_change_a_recycled_desktop_loses_its_disk_in_the_old_pool() {
    let toml = format!(
        "{ENGINE_TOML}{}{}",
        host_toml("h1", 10, false, ""),
        class_toml("office", 2, "")
    );
    let bed = Bed::new(&["h1"], &["office"], &toml);
    let mut engine = bed.start();
    let s = wait(&mut engine, "steady", |s| s.steady).await;
    let victim = s.desktops[0].name.clone();
    engine.shutdown().await;
    let old_pool = bed.fleet.engine.creation_pool.clone();
    assert!(
        bed.observe("h1")
            .desktop_volumes
            .contains(&format!("{victim}.qcow2"))
    );

    let mut fleet = bed.fleet.clone();
    fleet.engine.creation_pool = format!("{old_pool}-new");
    let mut engine = run::start(
        fleet,
        EngineOptions {
            clock: Arc::new(SystemClock),
            read_only: false,
            paused: false,
            connections: bed.connections.clone(),
            state_dir: None,
            simulated_steps: Default::default(),
            leadership: None,
        },
    );
    wait(&mut engine, "the host read again", |s| {
        s.passes > 0 && s.desktops.iter().any(|d| d.name == victim)
    })
    .await;
    engine
        .send(
            Command::Recycle {
                desktop: victim.clone(),
            },
            "test",
        )
        .await
        .unwrap();
    wait(&mut engine, "the desktop gone", |s| {
        s.desktops.iter().all(|d| d.name != victim)
    })
    .await;
    engine.shutdown().await;
    let o = bed.observe("h1");
    assert!(
        !o.desktop_volumes.contains(&format!("{victim}.qcow2")),
        "{victim}'s disk is left in {old_pool}: {:?}",
        o.desktop_volumes
    );
    assert!(o.desktops.iter().all(|d| d.name != victim));
}

/// A leftover-looking disk that a domain (not a desktop) uses is never deleted; the refusal
/// is reported about once per host read, not on every pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_a_foreign_domain_uses_is_refused_for_deletion_at_the_pace_of_host_reads() {
    let toml = format!(
        "{ENGINE_TOML}{}{}",
        host_toml("h1", 10, false, ""),
        class_toml("office", 1, "")
    );
    let bed = Bed::new(&["h1"], &["office"], &toml);
    let mut engine = bed.start();
    wait(&mut engine, "steady", |s| s.steady).await;
    let conn = bed.connections.get("h1").unwrap();
    let pool = conn
        .raw()
        .lookup_storage_pool_by_name(&bed.fleet.engine.creation_pool)
        .unwrap();
    let vol = virt::storage_vol::StorageVol::create_xml(
        &pool,
        "<volume><name>dp-orphan.qcow2</name><capacity>1048576</capacity>\
         <target><format type='qcow2'/></target></volume>",
        0,
    )
    .unwrap();
    let path = vol.path().unwrap();
    conn.raw()
        .define_domain_xml(&format!(
            "<domain type='test'><name>foreign</name><memory unit='KiB'>1024</memory>\
             <os><type>hvm</type></os><devices><disk type='file' device='disk'>\
             <source file='{path}'/><target dev='vda'/></disk></devices></domain>"
        ))
        .unwrap();
    let refused = |e: &deskpool_api::Event| {
        e.kind == EventKind::Failed && e.message.contains("dp-orphan.qcow2")
    };
    // The first refusal, then a window of 3 s (3 host reads at resync_secs = 1).
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let e = tokio::time::timeout_at(deadline, engine.events.recv())
            .await
            .expect("no refusal reported")
            .unwrap();
        if refused(&e) {
            assert!(
                e.message.contains("in use by domain foreign"),
                "{}",
                e.message
            );
            break;
        }
    }
    let window = std::time::Duration::from_secs(3);
    let until = tokio::time::Instant::now() + window;
    let mut again = 0;
    while let Ok(Some(e)) = tokio::time::timeout_at(until, engine.events.recv()).await {
        again += usize::from(refused(&e));
    }
    assert!(again <= 6, "{again} refusals in {window:?}");
    engine.shutdown().await;
    assert!(
        bed.observe("h1")
            .desktop_volumes
            .contains(&"dp-orphan.qcow2".to_string()),
        "the disk the foreign domain uses is still there"
    );
}
