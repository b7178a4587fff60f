//! deskpool on a real libvirt daemon (`qemu:///system`), checked from outside with the tools
//! administrators use: `virsh`, `qemu-img`, `virt-xml-validate`.
//!
//! Runs only with `DESKPOOL_QEMU=1` (`make test-qemu` sets it after `scripts/libvirt-host.sh
//! up`); otherwise each test prints one line saying it was skipped. Every test makes its own
//! seed pool, creation pool and classes (random suffix) and removes them at the end. The tests
//! take a machine-wide lock: an engine destroys `dp-` desktops of classes it does not know, so
//! two engines must never share a host, and neither may two of these tests.

mod common;
mod qemu_world;

use std::process::Command;
use std::time::Instant;

use std::time::Duration;

use common::{class, host, wait};
use deskpool_api::EngineHandle;
use deskpool_api::{Command as EngineCommand, HostStatusView, ReasonView, Reply};
use deskpool_core::model::PoolState;
use qemu_world::wait::until;
use qemu_world::{
    QEMU_DEADLINE, SmallDisk, World, backing_chain, count_in, enabled, failures_during, run,
    script, validate, virsh,
};

async fn assign(engine: &EngineHandle, class: &str, user: &str) -> String {
    let reply = engine
        .send(
            EngineCommand::Assign {
                class: class.to_string(),
                user: user.to_string(),
                wait_secs: 60,
            },
            "test",
        )
        .await
        .unwrap_or_else(|e| panic!("assign {user}: {e}"));
    match reply {
        Reply::Assigned { desktop, .. } => desktop,
        other => panic!("assign {user}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffers_of_two_classes_are_real_running_overlays_of_their_seed_copy() {
    if !enabled("buffers_of_two_classes_are_real_running_overlays_of_their_seed_copy") {
        return;
    }
    const N: usize = 3;
    let world = World::new(&["off", "dev"]);
    world.write_config(&[N as u32, N as u32], "");
    let started = Instant::now();
    let mut engine = world.start_engine();
    let s = match engine.wait_for(QEMU_DEADLINE, |s| s.steady).await {
        Ok(s) => s,
        Err(s) => panic!("not steady:\n{}", deskpool::report::table(&s)),
    };
    println!(
        "{} desktops of 2 classes running after {:?} ({})",
        2 * N,
        started.elapsed(),
        world.fleet().hosts[0].uri
    );
    for c in &world.classes {
        assert_eq!(class(&s, c).plan.buffer as usize, N);
    }
    engine.shutdown().await;

    // KVM where the host offers it (and /dev/kvm is usable by qemu), TCG emulation otherwise.
    let kvm = virsh(&["capabilities"]).contains("<domain type='kvm'");
    let accel = if kvm { "kvm" } else { "qemu" };
    println!("domain type {accel}");
    for d in world.domains(false) {
        assert!(
            virsh(&["dumpxml", &d]).starts_with(&format!("<domain type='{accel}'")),
            "{d} is not a {accel} domain"
        );
    }

    // virsh list: exactly N running desktops per class, each with deskpool's metadata.
    let desktops = world.assert_clean();
    assert_eq!(desktops.len(), 2 * N);
    for c in &world.classes {
        assert_eq!(count_in(&desktops, c, PoolState::Buffer), N, "{c}");
    }

    // virsh vol-list: a complete seed copy per class beside the desktop disks.
    let volumes = world.volumes();
    for c in &world.classes {
        for v in [format!("seed-{c}@v1.img"), format!("seed-{c}@v1.complete")] {
            assert!(volumes.contains(&v), "{v} missing from {volumes:?}");
        }
    }

    // qemu-img: each desktop disk is a qcow2 overlay of its class's seed copy in the creation
    // pool, itself a full copy (no backing file) of the seed.
    let pool = world.pool_path();
    for (d, m) in &desktops {
        let disk = pool.join(format!("{d}.qcow2"));
        let chain = backing_chain(&disk);
        let info = serde_json::to_string(&chain).unwrap();
        assert_eq!(chain.len(), 2, "{d}: overlay + seed copy: {info}");
        let copy = pool.join(format!("seed-{}@v1.img", m.class));
        assert_eq!(chain[0]["format"], "qcow2", "{info}");
        assert_eq!(
            chain[0]["full-backing-filename"].as_str(),
            Some(copy.to_str().unwrap()),
            "{info}"
        );
        assert_eq!(chain[1]["filename"].as_str(), copy.to_str(), "{info}");
        assert!(chain[1].get("backing-filename").is_none(), "{info}");
        // The disk libvirt runs is that overlay.
        let xml = virsh(&["dumpxml", d]);
        assert!(xml.contains(&format!("<source file='{}'", disk.display())));
    }

    // Every domain and volume XML deskpool made passes libvirt's schemas.
    let xml_dir = world.dir.path().join("xml");
    std::fs::create_dir(&xml_dir).unwrap();
    for (d, _) in &desktops {
        validate(&xml_dir, d, &virsh(&["dumpxml", "--inactive", d]), "domain");
    }
    for v in &volumes {
        validate(
            &xml_dir,
            v,
            &virsh(&["vol-dumpxml", "--pool", &world.creation_pool, v]),
            "storagevol",
        );
    }
    validate(
        &xml_dir,
        &world.creation_pool,
        &virsh(&["pool-dumpxml", &world.creation_pool]),
        "storagepool",
    );
}

#[test]
fn kill_9_mid_provisioning_then_restart_leaves_no_orphan_and_keeps_the_assignment() {
    if !enabled("kill_9_mid_provisioning_then_restart_leaves_no_orphan_and_keeps_the_assignment") {
        return;
    }
    let mut world = World::new(&["off", "dev"]);
    let (a, b) = (world.classes[0].clone(), world.classes[1].clone());

    // 1. A small fleet; alice logs in through the broker socket.
    world.write_config(&[1, 1], "");
    let first = world.serve();
    let out = world
        .deskpool(&["ctl", "assign", &a, "alice", "--wait", "120", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let assigned: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let alice = assigned["desktop"].as_str().unwrap().to_string();
    let m = world.meta(&alice);
    assert_eq!(
        (m.pool, m.user.as_deref()),
        (PoolState::Production, Some("alice"))
    );
    world.signal(first, libc::SIGTERM);

    // 2. Bigger buffers, made one at a time; kill -9 once some but not all exist.
    const N: usize = 5;
    world.write_config(
        &[N as u32, N as u32],
        "pacing = { clones_per_host = 1, boots_per_host = 1 }",
    );
    let before = world.domains(true).len();
    let second = world.serve();
    let mut seen = before;
    world.poll("the first new desktop", || {
        seen = world.domains(true).len();
        seen > before
    });
    world.signal(second, libc::SIGKILL);
    let after_kill = world.domains(true).len();
    assert!(
        after_kill < 2 * N + 1,
        "killed too late to be mid-provisioning: {after_kill} desktops already (test too slow?)"
    );
    println!("killed with {after_kill} of {} desktops defined", 2 * N + 1);

    // 3. Restart: the engine reads the host and finishes the job.
    let started = Instant::now();
    let out = world
        .deskpool(&["reconcile", "--until-steady", "--json", "--timeout", "120"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reconcile after kill -9: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("steady again {:?} after the restart", started.elapsed());

    let desktops = world.assert_clean();
    assert_eq!(count_in(&desktops, &a, PoolState::Buffer), N);
    assert_eq!(count_in(&desktops, &b, PoolState::Buffer), N);
    assert_eq!(count_in(&desktops, &a, PoolState::Production), 1);
    assert_eq!(desktops.len(), 2 * N + 1, "no desktop counted twice");
    let m = world.meta(&alice);
    assert_eq!(
        (m.pool, m.user.as_deref()),
        (PoolState::Production, Some("alice")),
        "alice keeps her desktop"
    );
    // Each seed copied once per class.
    let copies = world
        .volumes()
        .into_iter()
        .filter(|v| v.starts_with("seed-") && v.ends_with(".img"))
        .count();
    assert_eq!(copies, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_libvirtd_restart_marks_the_host_down_then_the_engine_reconnects_and_carries_on() {
    if !enabled("a_libvirtd_restart_marks_the_host_down_then_the_engine_reconnects_and_carries_on")
    {
        return;
    }
    const N: usize = 2;
    let world = World::new(&["off", "dev"]);
    world.write_config(&[N as u32, N as u32], "");
    let mut engine = world.start_engine();
    match engine.wait_for(QEMU_DEADLINE, |s| s.steady).await {
        Ok(_) => {}
        Err(s) => panic!("not steady:\n{}", deskpool::report::table(&s)),
    }

    /// Starts libvirtd again however the test ends.
    struct Revive;
    impl Drop for Revive {
        fn drop(&mut self) {
            let _ = Command::new(script()).arg("up").status();
        }
    }
    let _revive = Revive;
    run(script().to_str().unwrap(), &["kill-libvirtd"]);
    let killed = Instant::now();
    let s = wait(&mut engine, "the host marked down", |s| {
        matches!(host(s, "local").status, HostStatusView::Down { .. })
    })
    .await;
    println!("marked down {:?} after the kill", killed.elapsed());
    let HostStatusView::Down { reason } = &host(&s, "local").status else {
        unreachable!()
    };
    assert!(!reason.trim().is_empty(), "a down host says why");
    println!("host down: {reason}");

    let restarted = Instant::now();
    run(script().to_str().unwrap(), &["up"]);
    let s = match engine
        .wait_for(QEMU_DEADLINE, |s| {
            matches!(host(s, "local").status, HostStatusView::Active) && s.steady
        })
        .await
    {
        Ok(s) => s,
        Err(s) => panic!(
            "not active and steady again:\n{}",
            deskpool::report::table(&s)
        ),
    };
    println!(
        "active and steady {:?} after libvirtd came back",
        restarted.elapsed()
    );
    for c in &world.classes {
        assert_eq!(class(&s, c).plan.buffer as usize, N);
    }
    // The desktops survived the daemon (qemu runs on) and still count once each.
    let desktops = world.assert_clean();
    assert_eq!(desktops.len(), 2 * N);

    // And it still acts: one more desktop per class.
    let mut policy = world
        .fleet()
        .class(&world.classes[0])
        .unwrap()
        .policy
        .clone();
    policy.buffer.floor = N as u32 + 1;
    policy.buffer.ceiling = N as u32 + 1;
    engine
        .send(
            deskpool_api::Command::SetPolicy {
                class: world.classes[0].clone(),
                policy: Box::new(policy),
            },
            "test",
        )
        .await
        .unwrap();
    let c0 = world.classes[0].clone();
    match engine
        .wait_for(QEMU_DEADLINE, |s| {
            s.steady && class(s, &c0).plan.buffer as usize == N + 1
        })
        .await
    {
        Ok(_) => {}
        Err(s) => panic!("no new desktop:\n{}", deskpool::report::table(&s)),
    }
    engine.shutdown().await;
    assert_eq!(world.assert_clean().len(), 2 * N + 1);
}

/// A login takes a real buffered desktop; a logout destroys it and a fresh one is made. A new
/// seed version replaces the buffered desktops first, leaves the user's desktop on the old seed
/// until logout, and deletes the old seed copy only when no disk is backed by it any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_release_and_a_seed_version_change_on_real_disks() {
    if !enabled("assign_release_and_a_seed_version_change_on_real_disks") {
        return;
    }
    const N: usize = 2;
    let world = World::new(&["off"]);
    let c = world.classes[0].clone();
    world.write_config(&[N as u32], "");
    let mut engine = world.start_engine();
    until(&mut engine, "a full buffer", |s| s.steady).await;

    let alice = assign(&engine, &c, "alice").await;
    let bob = assign(&engine, &c, "bob").await;
    assert_ne!(alice, bob);
    let s = until(&mut engine, "the buffer refilled", |s| {
        s.steady && class(s, &c).plan.production == 2
    })
    .await;
    assert_eq!(class(&s, &c).plan.buffer as usize, N);
    let m = world.meta(&alice);
    assert_eq!(
        (m.pool, m.user.as_deref()),
        (PoolState::Production, Some("alice"))
    );

    // Logout: alice's desktop is destroyed, its disk deleted, and the buffer stays full.
    engine
        .send(
            EngineCommand::Release {
                desktop: alice.clone(),
            },
            "test",
        )
        .await
        .unwrap();
    until(&mut engine, "alice's desktop gone", |s| {
        s.steady && !s.desktops.iter().any(|d| d.name == alice)
    })
    .await;
    assert!(
        !world.domains(true).contains(&alice),
        "alice's domain is gone"
    );
    assert!(
        !world.volumes().contains(&format!("{alice}.qcow2")),
        "alice's disk is deleted"
    );
    let desktops = world.assert_clean();
    assert_eq!(count_in(&desktops, &c, PoolState::Buffer), N);
    assert_eq!(count_in(&desktops, &c, PoolState::Production), 1);
    engine.shutdown().await;

    // Seed v2, with other content: the admin edits the config and restarts deskpool.
    let v2_volume = format!("{c}-v2.qcow2");
    world.make_seed(&v2_volume, 4, 0x42);
    world.set_seed(&c, &v2_volume, "v2");
    let old_buffer: Vec<String> = desktops
        .iter()
        .filter(|(_, m)| m.pool == PoolState::Buffer)
        .map(|(d, _)| d.clone())
        .collect();
    let mut engine = world.start_engine();
    let s = until(&mut engine, "the buffer on seed v2", |s| {
        s.steady && class(s, &c).seed_version == "v2"
    })
    .await;
    assert_eq!(class(&s, &c).on_old_seed, 1, "bob's desktop is still on v1");
    let desktops = world.assert_clean();
    let copy_v1 = world.pool_path().join(format!("seed-{c}@v1.img"));
    let copy_v2 = world.pool_path().join(format!("seed-{c}@v2.img"));
    for (d, m) in &desktops {
        if m.pool == PoolState::Buffer {
            assert!(!old_buffer.contains(d), "{d} was buffered on v1");
            assert_eq!(m.seed_version, "v2", "{d}");
            assert_eq!(world.backing_of(d), copy_v2.to_str().unwrap(), "{d}");
        }
    }
    let m = world.meta(&bob);
    assert_eq!(
        (m.pool, m.user.as_deref(), m.seed_version.as_str()),
        (PoolState::Production, Some("bob"), "v1"),
        "bob keeps his desktop on the old seed while he works"
    );
    assert_eq!(world.backing_of(&bob), copy_v1.to_str().unwrap());
    assert!(
        world.volumes().contains(&format!("seed-{c}@v1.img")),
        "the v1 copy stays while bob's disk is backed by it"
    );
    // The new copy holds the new seed's data.
    run(
        "qemu-img",
        &[
            "compare",
            "-U",
            world
                .seed_path(&c)
                .with_file_name(&v2_volume)
                .to_str()
                .unwrap(),
            copy_v2.to_str().unwrap(),
        ],
    );

    // Bob logs out: his v1 desktop goes, and with it the v1 seed copy.
    engine
        .send(
            EngineCommand::Release {
                desktop: bob.clone(),
            },
            "test",
        )
        .await
        .unwrap();
    let s = until(&mut engine, "bob's desktop gone", |s| {
        s.steady && class(s, &c).on_old_seed == 0 && !s.desktops.iter().any(|d| d.name == bob)
    })
    .await;
    assert_eq!(class(&s, &c).plan.buffer as usize, N);
    world.poll("the v1 seed copy deleted", || {
        world.volumes_starting(&format!("seed-{c}@v1")).is_empty()
    });
    engine.shutdown().await;
    let desktops = world.assert_clean();
    assert_eq!(desktops.len(), N);
    assert!(desktops.iter().all(|(_, m)| m.seed_version == "v2"));
    assert_eq!(
        world.volumes_starting("seed-"),
        vec![format!("seed-{c}@v2.complete"), format!("seed-{c}@v2.img")]
    );
}

/// Hosts that cannot be reached when deskpool starts (a URI libvirt rejects, a daemon that is
/// not running) are down with their reason in the snapshot; the reachable host fills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_unreachable_at_start_are_down_with_a_reason_and_the_others_carry_on() {
    if !enabled("hosts_unreachable_at_start_are_down_with_a_reason_and_the_others_carry_on") {
        return;
    }
    const N: usize = 3;
    let world = World::new(&["off"]);
    let c = world.classes[0].clone();
    let stopped = world.dir.path().join("no-daemon.sock");
    world.write_config_with(
        &[N as u32],
        "",
        "capacity = { desktops = 20 }",
        &format!(
            "[[hosts]]\nname = \"stopped\"\nuri = \"qemu+unix:///system?socket={}\"\n\
             capacity = {{ desktops = 20 }}\n\n\
             [[hosts]]\nname = \"bad-uri\"\nuri = \"qemu:///no-such-path\"\n\
             capacity = {{ desktops = 20 }}\n\n",
            stopped.display()
        ),
    );
    let mut engine = world.start_engine();
    // Steady: the reachable host carries the class.
    let s = until(&mut engine, "the reachable host full", |s| s.steady).await;
    assert_eq!(class(&s, &c).plan.buffer as usize, N);
    for name in ["stopped", "bad-uri"] {
        let h = host(&s, name);
        let HostStatusView::Down { reason } = &h.status else {
            panic!("{name} is {:?}", h.status)
        };
        println!("{name}: {reason}");
        assert!(!reason.trim().is_empty(), "{name} says why it is down");
        assert!(h.retry_in_secs.is_some(), "{name} is retried");
    }
    let HostStatusView::Down { reason } = &host(&s, "stopped").status else {
        unreachable!()
    };
    assert!(
        reason.contains("no-daemon.sock"),
        "the reason names the socket: {reason}"
    );
    assert!(matches!(host(&s, "local").status, HostStatusView::Active));
    assert!(s.desktops.iter().all(|d| d.host == "local"));
    engine.shutdown().await;
    assert_eq!(world.assert_clean().len(), N);
}

/// A class whose seed volume is missing says so and makes nothing (no job fails over and over,
/// nothing is half-made); once the seed file appears in the pool's directory, it fills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_seed_says_why_makes_nothing_and_fills_once_it_appears() {
    if !enabled("a_missing_seed_says_why_makes_nothing_and_fills_once_it_appears") {
        return;
    }
    const N: usize = 2;
    let world = World::new(&["off"]);
    let c = world.classes[0].clone();
    world.write_config(&[N as u32], "");
    let late = format!("{c}-late.qcow2");
    world.set_seed(&c, &late, "v1");
    let mut engine = world.start_engine();
    let s = until(&mut engine, "the class saying why", |s| {
        seed_missing(&class(s, &c).plan.reasons).is_some()
    })
    .await;
    let why = class(&s, &c).plan.explanation();
    println!("{why}");
    assert_eq!(
        seed_missing(&class(&s, &c).plan.reasons),
        Some(late.as_str()),
        "the reason names the volume: {why}"
    );

    // Nothing is tried while no host has the seed: no failing job, so no hot loop.
    let failures = failures_during(&mut engine, &c, Duration::from_secs(5)).await;
    assert_eq!(failures, 0, "failed attempts while the seed is missing");
    // What "makes nothing" means, true at any instant (a host observation may be in flight, so
    // the job count is not: it is not asserted).
    let s = engine.snapshot.borrow().clone();
    assert_eq!(class(&s, &c).plan.creation, 0, "no desktop in creation");
    assert!(s.desktops.is_empty(), "no desktop: {:?}", s.desktops);
    assert!(
        s.seed_copies.is_empty(),
        "no seed copy: {:?}",
        s.seed_copies
    );
    assert!(seed_missing(&class(&s, &c).plan.reasons).is_some());
    assert!(
        world.volumes_starting("seed-").is_empty() && world.volumes_starting("dp-").is_empty(),
        "nothing half-made: {:?}",
        world.volumes()
    );
    assert!(world.domains(true).is_empty());

    // The admin copies the seed file into the pool's directory (libvirt is not told).
    let staged = world.dir.path().join(&late);
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            staged.to_str().unwrap(),
            "64M",
        ],
    );
    std::fs::rename(&staged, world.dir.path().join("seeds").join(&late)).unwrap();
    until(&mut engine, "the buffer full", |s| s.steady).await;
    engine.shutdown().await;
    assert_eq!(world.assert_clean().len(), N);
}

/// Creation on a full, then a read-only, creation pool: the class says why, retries with
/// backoff, leaves no partial volume; when the disk has room and is writable again, it fills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_or_read_only_creation_pool_backs_off_says_why_and_leaves_nothing_partial() {
    if !enabled("a_full_or_read_only_creation_pool_backs_off_says_why_and_leaves_nothing_partial") {
        return;
    }
    const N: usize = 2;
    let world = World::new(&["off"]);
    let c = world.classes[0].clone();
    // 8 MiB of data in the seed: its copy cannot fit on a 4 MiB disk.
    let seed = format!("{c}-data.qcow2");
    world.make_seed(&seed, 8, 0x33);
    world.write_config(&[N as u32], "");
    world.set_seed(&c, &seed, "v1");
    let disk = SmallDisk::mount(&world.pool_path(), "4m");

    let mut engine = world.start_engine();
    let s = until(&mut engine, "the class saying the pool is full", |s| {
        class(s, &c).plan.explanation().contains("seed copy on")
    })
    .await;
    let why = class(&s, &c).plan.explanation();
    println!("full: {why}");
    assert!(
        why.to_lowercase().contains("space"),
        "the reason says the disk is full: {why}"
    );
    let failures = failures_during(&mut engine, &c, Duration::from_secs(10)).await;
    println!("{failures} failed seed copies in 10 s");
    assert!(
        (1..=5).contains(&failures),
        "{failures} attempts in 10 s: no backoff"
    );
    assert!(
        world.volumes_starting("seed-").is_empty() && seed_files(&world).is_empty(),
        "no partial seed copy: {:?}",
        world.volumes()
    );

    // Read-only (mounted so while nothing in it is open; a busy mount cannot be made
    // read-only), now with room.
    disk.remount("size=64m,ro");
    let s = until(&mut engine, "the class saying the pool is read-only", |s| {
        class(s, &c)
            .plan
            .explanation()
            .to_lowercase()
            .contains("read-only")
    })
    .await;
    println!("read-only: {}", class(&s, &c).plan.explanation());
    let failures = failures_during(&mut engine, &c, Duration::from_secs(10)).await;
    println!("{failures} failed seed copies in 10 s");
    assert!(
        (1..=5).contains(&failures),
        "{failures} attempts in 10 s: no backoff"
    );
    // On the disk itself: libvirt's own list may show the volume it failed to create until the
    // pool's next refresh, because it cannot unlink even a missing file on a read-only mount.
    assert!(
        seed_files(&world).is_empty(),
        "no partial seed copy: {:?}",
        seed_files(&world)
    );
    assert!(world.domains(true).is_empty());

    disk.remount("rw");
    until(&mut engine, "the buffer full once writable", |s| s.steady).await;
    engine.shutdown().await;
    let desktops = world.assert_clean();
    assert_eq!(desktops.len(), N);
    // The copy that finally made it holds the seed's data.
    run(
        "qemu-img",
        &[
            "compare",
            "-U",
            world.dir.path().join("seeds").join(&seed).to_str().unwrap(),
            world
                .pool_path()
                .join(format!("seed-{c}@v1.img"))
                .to_str()
                .unwrap(),
        ],
    );
}

/// Files in the creation pool's directory that are seed copies or their markers.
fn seed_files(world: &World) -> Vec<String> {
    std::fs::read_dir(world.pool_path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("seed-"))
        .collect()
}

/// What an admin may do with virsh: destroy a desktop (it stays defined, shut off), destroy and
/// undefine one, undefine a running one (it runs on, transient). Each is noticed and the buffer
/// ends with only running, defined desktops and one disk each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktops_destroyed_or_undefined_with_virsh_are_detected_and_replaced() {
    if !enabled("desktops_destroyed_or_undefined_with_virsh_are_detected_and_replaced") {
        return;
    }
    const N: usize = 4;
    let world = World::new(&["off"]);
    let c = world.classes[0].clone();
    world.write_config(&[N as u32], "");
    let mut engine = world.start_engine();
    until(&mut engine, "a full buffer", |s| s.steady).await;
    let before = world.domains(true);
    assert_eq!(before.len(), N);
    let (destroyed, gone, transient) = (&before[0], &before[1], &before[2]);
    // Paused, so the engine cannot remove `gone` between the admin's destroy and undefine; it
    // sees all three changes at once when it resumes.
    engine.send(EngineCommand::Pause, "test").await.unwrap();
    virsh(&["destroy", destroyed]);
    virsh(&["destroy", gone]);
    virsh(&["undefine", gone]);
    virsh(&["undefine", transient]);
    engine.send(EngineCommand::Resume, "test").await.unwrap();

    world.poll("the fleet to heal", || {
        let all = world.domains(true);
        let persistent = virsh(&["list", "--all", "--persistent", "--name"]);
        all.len() == N
            && all == world.domains(false)
            && all
                .iter()
                .all(|d| persistent.lines().any(|l| l.trim() == d))
            && ![destroyed, gone, transient].iter().any(|d| all.contains(d))
    });
    let s = until(&mut engine, "steady", |s| s.steady).await;
    assert_eq!(class(&s, &c).plan.buffer as usize, N);
    engine.shutdown().await;
    let desktops = world.assert_clean();
    assert_eq!(count_in(&desktops, &c, PoolState::Buffer), N);
}

/// The seed volume a class's plan reports missing, if it does.
fn seed_missing(reasons: &[ReasonView]) -> Option<&str> {
    reasons.iter().find_map(|r| match r {
        ReasonView::SeedMissing { volume, .. } => Some(volume.as_str()),
        _ => None,
    })
}
