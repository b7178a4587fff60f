//! Faults a connection broker or an admin can provoke, on libvirt's test driver: a buffered
//! desktop whose disk was deleted, an assigned desktop shut off, a user's requests racing.
//! (The same on a real libvirtd: tests/qemu_desktops.rs.)

mod common;

use common::*;
use deskpool_api::EngineHandle;
use deskpool_api::{Command, CommandResult, EventKind, Reply};
use deskpool_core::model::PoolState;

fn one_host(floor: u32) -> Bed {
    let toml = format!(
        "{ENGINE_TOML}{}{}",
        host_toml("h1", 20, false, ""),
        class_toml("office", floor, "")
    );
    Bed::new(&["h1"], &["office"], &toml)
}

fn assign(user: &str, wait_secs: u64) -> Command {
    Command::Assign {
        class: "office".into(),
        user: user.into(),
        wait_secs,
    }
}

fn desktop_of(result: &CommandResult) -> String {
    match result {
        Ok(Reply::Assigned { desktop, .. }) => desktop.clone(),
        other => panic!("not assigned: {other:?}"),
    }
}

/// Deletes a desktop's disk volume behind deskpool's back, as `virsh vol-delete` would.
fn delete_disk(bed: &Bed, desktop: &str) {
    let conn = bed.connections.get("h1").unwrap();
    let pool = conn
        .raw()
        .lookup_storage_pool_by_name(&bed.fleet.engine.creation_pool)
        .unwrap();
    let vol = pool
        .lookup_storage_vol_by_name(&format!("{desktop}.qcow2"))
        .unwrap();
    vol.delete(0).unwrap();
}

/// The desktops libvirt shows labelled for `user`.
fn held_by(bed: &Bed, user: &str) -> Vec<String> {
    bed.observe("h1")
        .desktops
        .iter()
        .filter(|d| d.meta.user.as_deref() == Some(user))
        .map(|d| d.name.clone())
        .collect()
}

/// The oldest buffered desktop: the one the next login gets.
fn next_in_line(bed: &Bed) -> String {
    let o = bed.observe("h1");
    o.desktops
        .iter()
        .filter(|d| d.meta.pool == PoolState::Buffer)
        .min_by_key(|d| (d.meta.created_at, d.name.clone()))
        .map(|d| d.name.clone())
        .unwrap()
}

async fn events_until(
    engine: &mut EngineHandle,
    mut done: impl FnMut(&deskpool_api::Event) -> bool,
) -> Vec<deskpool_api::Event> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, engine.events.recv()).await {
            Ok(Some(e)) => {
                let stop = done(&e);
                seen.push(e);
                if stop {
                    return seen;
                }
            }
            _ => panic!("timed out waiting for an event; seen: {seen:#?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buffered_desktop_whose_disk_was_deleted_is_never_handed_out_and_is_replaced() {
    let bed = one_host(3);
    let mut engine = bed.start();
    wait(&mut engine, "steady", |s| s.steady).await;
    let victim = next_in_line(&bed);
    delete_disk(&bed, &victim);

    // At once, before any re-read of the host: the login gets another desktop.
    let first = engine.commander().send(assign("alice", 30), "test").await;
    assert_ne!(
        desktop_of(&first),
        victim,
        "a desktop without its disk was handed out"
    );
    // Later logins never get it either.
    for user in ["bob", "carol", "dan"] {
        let got = engine.commander().send(assign(user, 30), "test").await;
        assert_ne!(
            desktop_of(&got),
            victim,
            "{user} got the desktop without its disk"
        );
    }
    // It is destroyed, with the reason, and the buffer refills.
    let events = events_until(&mut engine, |e| {
        e.kind == EventKind::Destroyed && e.desktop.as_deref() == Some(victim.as_str())
    })
    .await;
    let gone = events.last().unwrap();
    assert!(gone.message.contains("is gone"), "reason: {}", gone.message);
    wait(&mut engine, "the buffer refilled without it", |s| {
        s.steady
            && class(s, "office").plan.buffer == 3
            && !s.desktops.iter().any(|d| d.name == victim)
    })
    .await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_deleted_under_a_buffered_desktop_is_found_by_the_next_read_of_the_host() {
    let bed = one_host(2);
    let mut engine = bed.start();
    wait(&mut engine, "steady", |s| s.steady).await;
    let victim = next_in_line(&bed);
    delete_disk(&bed, &victim);
    // No login: the host's next full read (every second here) finds it.
    wait(&mut engine, "the desktop without a disk replaced", |s| {
        s.steady
            && class(s, "office").plan.buffer == 2
            && !s.desktops.iter().any(|d| d.name == victim)
    })
    .await;
    let o = bed.observe("h1");
    assert!(!o.desktops.iter().any(|d| d.name == victim));
    assert_nothing_leaked(&o);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assigned_desktop_shut_off_is_started_again_for_its_user() {
    let bed = one_host(2);
    let mut engine = bed.start();
    wait(&mut engine, "steady", |s| s.steady).await;
    let mine = desktop_of(&engine.commander().send(assign("alice", 0), "test").await);
    let conn = bed.connections.get("h1").unwrap();

    // Shut off (virsh destroy, or a shutdown inside the guest): her next login starts it again
    // before it answers.
    conn.raw()
        .lookup_domain_by_name(&mine)
        .unwrap()
        .destroy()
        .unwrap();
    let again = engine.commander().send(assign("alice", 0), "test").await;
    assert_eq!(desktop_of(&again), mine, "her own desktop, given back");
    assert!(conn.is_running(&mine).unwrap(), "given back while shut off");

    // Shut off with no login coming: the engine notices and starts it again by itself.
    conn.raw()
        .lookup_domain_by_name(&mine)
        .unwrap()
        .destroy()
        .unwrap();
    let deadline = std::time::Instant::now() + DEADLINE;
    while !conn.is_running(&mine).unwrap() {
        assert!(std::time::Instant::now() < deadline, "never started again");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let o = bed.observe("h1");
    let d = o.desktops.iter().find(|d| d.name == mine).unwrap();
    assert_eq!(
        (d.meta.pool, d.meta.user.as_deref()),
        (PoolState::Production, Some("alice"))
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assigned_desktop_without_its_disk_is_recycled_and_its_user_gets_a_fresh_one() {
    let bed = one_host(2);
    let mut engine = bed.start();
    wait(&mut engine, "steady", |s| s.steady).await;
    let mine = desktop_of(&engine.commander().send(assign("alice", 0), "test").await);
    delete_disk(&bed, &mine);
    let fresh = desktop_of(&engine.commander().send(assign("alice", 30), "test").await);
    assert_ne!(fresh, mine, "her desktop without its disk was given back");
    wait(&mut engine, "the broken one removed", |s| {
        s.steady && !s.desktops.iter().any(|d| d.name == mine)
    })
    .await;
    assert_eq!(
        held_by(&bed, "alice"),
        vec![fresh],
        "one desktop for her, the fresh one"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_of_one_user_get_one_desktop() {
    let bed = one_host(4);
    let mut engine = bed.start();
    wait(&mut engine, "steady", |s| s.steady).await;

    // Eight at once with a full buffer.
    let commander = engine.commander();
    let asks: Vec<_> = (0..8)
        .map(|_| {
            let c = commander.clone();
            tokio::spawn(async move { c.send(assign("alice", 0), "test").await })
        })
        .collect();
    let mut got = Vec::new();
    for a in asks {
        got.push(desktop_of(&a.await.unwrap()));
    }
    got.dedup();
    assert_eq!(got.len(), 1, "alice got several desktops: {got:?}");

    // Three at once that must wait (nothing buffered, the engine paused until all are queued).
    engine
        .commander()
        .send(Command::Pause, "test")
        .await
        .unwrap();
    let mut policy = bed.fleet.class("office").unwrap().policy.clone();
    policy.buffer.floor = 0;
    policy.buffer.ceiling = 0;
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
    // Take the buffer away: other users hold its desktops until none is left.
    let mut n = 0;
    while engine
        .commander()
        .send(assign(&format!("u{n}"), 0), "test")
        .await
        .is_ok()
    {
        n += 1;
        assert!(n < 20, "the buffer never ran out");
    }
    let asks: Vec<_> = (0..3)
        .map(|_| {
            let c = commander.clone();
            tokio::spawn(async move { c.send(assign("bob", 60), "test").await })
        })
        .collect();
    wait(&mut engine, "bob waiting", |s| {
        class(s, "office").logins.waiting == 1
    })
    .await;
    engine
        .commander()
        .send(Command::Resume, "test")
        .await
        .unwrap();
    let mut got = Vec::new();
    for a in asks {
        got.push(desktop_of(&a.await.unwrap()));
    }
    got.dedup();
    assert_eq!(got.len(), 1, "bob got several desktops: {got:?}");

    let o = bed.observe("h1");
    for user in ["alice", "bob"] {
        let held = o
            .desktops
            .iter()
            .filter(|d| {
                d.meta.user.as_deref() == Some(user) && d.meta.pool == PoolState::Production
            })
            .count();
        assert_eq!(held, 1, "{user} holds {held} desktops on the host");
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_is_answered_once_its_label_is_on_the_host() {
    let bed = one_host(3);
    let mut engine = bed.start();
    wait(&mut engine, "steady", |s| s.steady).await;
    let mine = desktop_of(&engine.commander().send(assign("alice", 0), "test").await);
    // Paused, the engine writes the label but destroys nothing: what the host shows right
    // after the answer is the label the answer promised.
    engine
        .commander()
        .send(Command::Pause, "test")
        .await
        .unwrap();
    let commander = engine.commander();
    let twice: Vec<_> = (0..2)
        .map(|_| {
            let c = commander.clone();
            let d = mine.clone();
            tokio::spawn(async move { c.send(Command::Release { desktop: d }, "test").await })
        })
        .collect();
    for r in twice {
        assert_eq!(
            r.await.unwrap(),
            Ok(Reply::Done),
            "both requests answered alike"
        );
    }
    // However the two raced, a release repeated once the first is done is answered alike too.
    assert_eq!(
        engine
            .commander()
            .send(
                Command::Release {
                    desktop: mine.clone()
                },
                "test"
            )
            .await,
        Ok(Reply::Done),
        "a repeated release is answered as the first"
    );
    let o = bed.observe("h1");
    let d = o.desktops.iter().find(|d| d.name == mine).unwrap();
    assert_eq!(
        d.meta.pool,
        PoolState::Retired,
        "answered before the label was written"
    );
    engine
        .commander()
        .send(Command::Resume, "test")
        .await
        .unwrap();
    wait(&mut engine, "the released desktop gone", |s| {
        s.steady && !s.desktops.iter().any(|d| d.name == mine)
    })
    .await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_that_recycles_shut_off_desktops_gives_its_user_a_fresh_one() {
    let toml = format!(
        "{ENGINE_TOML}{}{}",
        host_toml("h1", 20, false, ""),
        class_toml("office", 2, "on_shutoff = \"recycle\"")
    );
    let bed = Bed::new(&["h1"], &["office"], &toml);
    let mut engine = bed.start();
    wait(&mut engine, "steady", |s| s.steady).await;
    let mine = desktop_of(&engine.commander().send(assign("alice", 0), "test").await);
    let conn = bed.connections.get("h1").unwrap();
    conn.raw()
        .lookup_domain_by_name(&mine)
        .unwrap()
        .destroy()
        .unwrap();
    // Whether her login or the engine's next read of the host finds it first, she never gets
    // the shut-off desktop back, and it is removed.
    let fresh = desktop_of(&engine.commander().send(assign("alice", 30), "test").await);
    assert_ne!(fresh, mine, "the shut-off desktop was given back");
    assert!(conn.is_running(&fresh).unwrap());
    wait(&mut engine, "the shut-off desktop removed", |s| {
        s.steady && !s.desktops.iter().any(|d| d.name == mine)
    })
    .await;
    assert_eq!(held_by(&bed, "alice"), vec![fresh]);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_right_after_a_restart_gets_the_desktop_its_user_holds() {
    let bed = one_host(2);
    let mut engine = bed.start();
    wait(&mut engine, "steady", |s| s.steady).await;
    let mine = desktop_of(&engine.commander().send(assign("alice", 0), "test").await);
    engine.shutdown().await;
    // The next engine is asked before it has read the host: it must not make her a second one.
    let next = bed.start();
    let again = desktop_of(&next.commander().send(assign("alice", 30), "test").await);
    assert_eq!(again, mine, "a second desktop for a user who holds one");
    next.shutdown().await;
    assert_eq!(held_by(&bed, "alice"), vec![mine]);
}

/// A boot that outlasts `create_timeout_secs` is given up as stuck, said so, and retried; the
/// desktop never joins the buffer. (Test-driver boots are made slow on purpose here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boot_past_the_creation_timeout_is_given_up_as_stuck() {
    let toml = format!(
        "{}create_timeout_secs = 1\n{}{}",
        ENGINE_TOML,
        host_toml("h1", 20, false, ""),
        class_toml("office", 1, "")
    );
    let bed = Bed::new(&["h1"], &["office"], &toml);
    let mut engine = deskpool_engine::run::start(
        bed.fleet.clone(),
        deskpool_engine::run::EngineOptions {
            clock: std::sync::Arc::new(deskpool_core::clock::SystemClock),
            read_only: false,
            paused: false,
            connections: bed.connections.clone(),
            state_dir: None,
            simulated_steps: deskpool_engine::jobs::StepDelays {
                clone: std::time::Duration::ZERO,
                boot: std::time::Duration::from_secs(30),
            },
            leadership: None,
        },
    );
    let events = events_until(&mut engine, |e| e.kind == EventKind::Failed).await;
    let failed = events.last().unwrap();
    assert!(
        failed
            .message
            .contains("booting did not finish within 1 s; given up as stuck"),
        "{failed:?}"
    );
    let s = engine.snapshot.borrow().clone();
    assert_eq!(
        class(&s, "office").plan.buffer,
        0,
        "nothing joined the buffer"
    );
    assert!(
        bed.observe("h1")
            .desktops
            .iter()
            .all(|d| d.meta.pool != PoolState::Buffer),
        "the host shows no desktop in the buffer"
    );
    engine.shutdown().await;
}
