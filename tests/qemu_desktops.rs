//! What a user is handed on a real libvirt daemon (`qemu:///system`), checked with `virsh`:
//! never a desktop whose disk was deleted, never one that is shut off, one desktop per user
//! however many requests race, a release that survives a crash once answered, and a display
//! password only the desktop's user is told.
//!
//! Runs only with `DESKPOOL_QEMU=1`, as root (see tests/qemu.rs).

mod common;
mod qemu_world;

use std::sync::Arc;

use deskpool_api::EngineHandle;
use deskpool_api::{Command as EngineCommand, CommandResult, Reply};
use deskpool_core::model::PoolState;
use qemu_world::wait::until;
use qemu_world::{World, enabled, run, virsh};

async fn ask(engine: &EngineHandle, class: &str, user: &str, wait_secs: u64) -> CommandResult {
    engine
        .commander()
        .send(
            EngineCommand::Assign {
                class: class.to_string(),
                user: user.to_string(),
                wait_secs,
            },
            "test",
        )
        .await
}

fn assigned(result: &CommandResult) -> (String, Option<String>, Option<String>) {
    match result {
        Ok(Reply::Assigned {
            desktop,
            display,
            display_password,
            ..
        }) => (desktop.clone(), display.clone(), display_password.clone()),
        other => panic!("not assigned: {other:?}"),
    }
}

fn state_of(domain: &str) -> String {
    virsh(&["domstate", domain]).trim().to_string()
}

/// The file of the desktop's disk, as `virsh domblklist` shows it.
fn disk_of(domain: &str) -> String {
    virsh(&["domblklist", domain, "--details"])
        .lines()
        .find(|l| l.contains(" disk "))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("{domain} has no disk"))
        .to_string()
}

/// The oldest buffered desktop of `class`: the one the next login gets.
fn next_in_line(world: &World, class: &str) -> String {
    world
        .domains(false)
        .into_iter()
        .map(|d| {
            let m = world.meta(&d);
            (d, m)
        })
        .filter(|(_, m)| m.class == class && m.pool == PoolState::Buffer)
        .min_by_key(|(d, m)| (m.created_at, d.clone()))
        .map(|(d, _)| d)
        .expect("a buffered desktop")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_whose_disk_was_deleted_with_virsh_is_never_handed_out() {
    if !enabled("a_desktop_whose_disk_was_deleted_with_virsh_is_never_handed_out") {
        return;
    }
    let world = World::new(&["off"]);
    world.write_config(&[3], "");
    let class = world.classes[0].clone();
    let mut engine = world.start_engine();
    until(&mut engine, "steady", |s| s.steady).await;
    let victim = next_in_line(&world, &class);
    let disk = disk_of(&victim);
    virsh(&["vol-delete", &disk]);
    assert_eq!(
        state_of(&victim),
        "running",
        "qemu keeps running on the deleted file"
    );

    for user in ["alice", "bob", "carol"] {
        let (desktop, ..) = assigned(&ask(&engine, &class, user, 60).await);
        assert_ne!(
            desktop, victim,
            "{user} was handed a desktop whose disk is gone"
        );
        assert_eq!(state_of(&desktop), "running");
        run("qemu-img", &["info", "-U", &disk_of(&desktop)]);
    }
    until(&mut engine, "the desktop without a disk replaced", |s| {
        s.steady && !s.desktops.iter().any(|d| d.name == victim)
    })
    .await;
    engine.shutdown().await;
    assert!(
        !world.domains(true).contains(&victim),
        "{victim} is still defined"
    );
    world.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assigned_desktop_shut_off_with_virsh_is_running_when_given_back() {
    if !enabled("an_assigned_desktop_shut_off_with_virsh_is_running_when_given_back") {
        return;
    }
    let world = World::new(&["off"]);
    world.write_config(&[2], "");
    let class = world.classes[0].clone();
    let mut engine = world.start_engine();
    until(&mut engine, "steady", |s| s.steady).await;
    let (mine, display, _) = assigned(&ask(&engine, &class, "alice", 0).await);
    assert!(display.is_some(), "a running desktop shows its display");

    virsh(&["destroy", &mine]);
    let (again, display, _) = assigned(&ask(&engine, &class, "alice", 0).await);
    assert_eq!(
        again, mine,
        "her own desktop, started again (on_shutoff = restart)"
    );
    assert_eq!(state_of(&mine), "running", "given back while shut off");
    assert!(display.is_some(), "given back with no display");
    let m = world.meta(&mine);
    assert_eq!(
        (m.pool, m.user.as_deref()),
        (PoolState::Production, Some("alice"))
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_assigns_of_one_user_get_one_desktop() {
    if !enabled("parallel_assigns_of_one_user_get_one_desktop") {
        return;
    }
    let world = World::new(&["off"]);
    world.write_config(&[4], "");
    let class = world.classes[0].clone();
    let mut engine = world.start_engine();
    until(&mut engine, "steady", |s| s.steady).await;
    let engine = Arc::new(engine);
    let asks: Vec<_> = (0..8)
        .map(|_| {
            let (e, c) = (engine.clone(), class.clone());
            tokio::spawn(async move { ask(&e, &c, "alice", 30).await })
        })
        .collect();
    let mut got = Vec::new();
    for a in asks {
        got.push(assigned(&a.await.unwrap()).0);
    }
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 1, "alice was handed {got:?}");
    let hers: Vec<String> = world
        .domains(true)
        .into_iter()
        .filter(|d| {
            let m = world.meta(d);
            m.pool == PoolState::Production && m.user.as_deref() == Some("alice")
        })
        .collect();
    assert_eq!(hers, got, "libvirt holds one desktop for her");
    Arc::into_inner(engine).unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_display_password_is_the_desktops_own_and_only_in_its_assign_reply() {
    if !enabled("the_display_password_is_the_desktops_own_and_only_in_its_assign_reply") {
        return;
    }
    let world = World::new(&["off"]);
    world.write_config(&[2], "");
    let class = world.classes[0].clone();
    let mut engine = world.start_engine();
    until(&mut engine, "steady", |s| s.steady).await;
    let mut passwords = Vec::new();
    for user in ["alice", "bob"] {
        let (desktop, display, password) = assigned(&ask(&engine, &class, user, 60).await);
        let password = password.unwrap_or_else(|| panic!("{desktop}: no display password"));
        assert!(display.unwrap().starts_with("vnc://"));
        let secure = virsh(&["dumpxml", "--security-info", &desktop]);
        assert!(
            secure.contains(&format!("passwd='{password}'")),
            "{desktop}: the reply's password is not the one libvirt set"
        );
        assert!(
            !virsh(&["dumpxml", &desktop]).contains(&password),
            "{desktop}: the password shows without --security-info"
        );
        passwords.push(password);
    }
    assert_ne!(passwords[0], passwords[1], "two desktops share a password");
    let s = until(&mut engine, "a pass", |s| s.steady).await;
    let snapshot = serde_json::to_string(&*s).unwrap();
    for p in &passwords {
        assert!(
            !snapshot.contains(p.as_str()),
            "the snapshot carries a password"
        );
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_answered_before_a_kill_is_not_lost() {
    if !enabled("a_release_answered_before_a_kill_is_not_lost") {
        return;
    }
    let mut world = World::new(&["off"]);
    world.write_config(&[3], "");
    let class = world.classes[0].clone();
    let serve = world.serve();
    let ctl = |args: &[&str]| {
        let out = world.deskpool(&["ctl"]).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut held = Vec::new();
    for user in ["alice", "bob", "carol"] {
        let line = ctl(&["assign", &class, user, "--wait", "60"]);
        held.push(line.split_whitespace().next().unwrap().to_string());
    }
    // Each release is answered, and right after the answers the engine is killed.
    for d in &held {
        ctl(&["release", d]);
    }
    world.signal(serve, libc::SIGKILL);
    for d in &held {
        if world.domains(true).contains(d) {
            let m = world.meta(d);
            assert_eq!(
                m.pool,
                PoolState::Retired,
                "{d}: its answered release was lost"
            );
        }
    }
    // The next engine finishes the job: none of them is anyone's any more.
    let serve = world.serve();
    world.poll("the released desktops gone", || {
        let left = world.domains(true);
        held.iter().all(|d| !left.contains(d))
    });
    world.signal(serve, libc::SIGTERM);
}
