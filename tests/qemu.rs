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

use common::{class, host, wait};
use deskpool::engine::plan::HostStatus;
use deskpool::hypervisor::model::PoolState;
use qemu_world::{QEMU_DEADLINE, World, count_in, enabled, run, script, validate, virsh};

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
        let info = run(
            "qemu-img",
            &[
                "info",
                "-U",
                "--backing-chain",
                "--output=json",
                disk.to_str().unwrap(),
            ],
        );
        let chain: serde_json::Value = serde_json::from_str(&info).unwrap();
        let chain = chain.as_array().expect("a backing chain is a JSON array");
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
        matches!(host(s, "local").status, HostStatus::Down { .. })
    })
    .await;
    println!("marked down {:?} after the kill", killed.elapsed());
    let HostStatus::Down { reason } = &host(&s, "local").status else {
        unreachable!()
    };
    assert!(!reason.trim().is_empty(), "a down host says why");
    println!("host down: {reason}");

    let restarted = Instant::now();
    run(script().to_str().unwrap(), &["up"]);
    let s = match engine
        .wait_for(QEMU_DEADLINE, |s| {
            matches!(host(s, "local").status, HostStatus::Active) && s.steady
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
            deskpool::engine::api::Command::SetPolicy {
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
