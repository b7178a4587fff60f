//! Faults on a real libvirt daemon (`qemu:///system`), checked with `virsh` and `qemu-img`: one
//! daemon listed twice in the config, and a restart of `serve` while libvirtd still copies a
//! seed for the engine that was killed.
//!
//! Runs only with `DESKPOOL_QEMU=1`, under the machine-wide lock of tests/qemu.rs (taken by
//! `World::new`). Everything a test makes is removed when it ends.

mod common;
mod qemu_world;

use std::time::{Duration, Instant};

use deskpool_core::model::PoolState;
use deskpool_hypervisor::HostConnection;
use qemu_world::{QEMU_DEADLINE, URI, World, count_in, enabled, run, virsh};

/// The host lines of `deskpool ctl status --json`, as (name, state, reason).
fn hosts_of(status: &serde_json::Value) -> Vec<(String, String, Option<String>)> {
    status["hosts"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or_default().to_string(),
                h["state"].as_str().unwrap_or_default().to_string(),
                h["reason"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// `deskpool reconcile --until-steady`, which must succeed.
fn reconcile(world: &World) {
    let out = world
        .deskpool(&["reconcile", "--until-steady", "--json", "--timeout", "120"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reconcile: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every one of `desktops` runs, and its disk is in the creation pool (`virsh vol-list`) and
/// readable (`qemu-img info`).
fn assert_disks_there(world: &World, desktops: &[String]) {
    let running = world.domains(false);
    let volumes = world.volumes();
    for d in desktops {
        assert!(running.contains(d), "{d} no longer runs: {running:?}");
        let disk = format!("{d}.qcow2");
        assert!(volumes.contains(&disk), "{disk} is gone: {volumes:?}");
        let path = world.pool_path().join(&disk);
        run("qemu-img", &["info", "-U", path.to_str().unwrap()]);
    }
}

/// Issue 9, finding 1: the same daemon under two spellings of its URI. The entry that connects
/// second is refused with a reason naming the first; no running desktop loses its disk, however
/// long `serve` runs; and the hypervisor layer refuses, asked directly, to delete a disk or a
/// seed copy a domain uses.
#[test]
fn the_same_daemon_under_two_uris_is_refused_and_no_disk_in_use_is_ever_deleted() {
    if !enabled("the_same_daemon_under_two_uris_is_refused_and_no_disk_in_use_is_ever_deleted") {
        return;
    }
    let mut world = World::new(&["twice"]);
    let c = world.classes[0].clone();

    // 1. Three running buffered desktops, made through one entry.
    world.write_config(&[3], "");
    reconcile(&world);
    let desktops: Vec<String> = world.assert_clean().into_iter().map(|(d, _)| d).collect();
    assert_eq!(desktops.len(), 3);

    // 2. The same daemon added again under a spelling `check` cannot see through (its socket
    // named: as with a DNS alias, only the daemon can tell); serve runs on both entries.
    world.write_config_with(
        &[3],
        "",
        "capacity = { desktops = 20 }",
        "[[hosts]]\nname = \"alias\"\nuri = \"qemu+unix:///system?socket=/var/run/libvirt/libvirt-sock\"\ncapacity = { desktops = 20 }\n",
    );
    let serve = world.serve();
    let mut refused = None;
    let mut passes = 0;
    world.poll("one entry refused as the same daemon", || {
        let Some(status) = world.status() else {
            return false;
        };
        passes = status["passes"].as_u64().unwrap_or(0);
        refused = hosts_of(&status).into_iter().find(|(_, state, reason)| {
            state == "down"
                && reason
                    .as_deref()
                    .is_some_and(|r| r.contains("same libvirt daemon as host"))
        });
        refused.is_some()
    });
    let (name, _, reason) = refused.unwrap();
    let reason = reason.unwrap();
    let other = if name == "local" { "alias" } else { "local" };
    println!("{name} refused: {reason}");
    let hostname = run("hostname", &[]);
    assert!(
        reason.starts_with(&format!(
            "same libvirt daemon as host {other} (hostname {}",
            hostname.trim()
        )),
        "{reason}"
    );
    assert!(
        reason.contains(&format!("creation pool {} UUID", world.creation_pool)),
        "{reason}"
    );
    // Then many more passes and host reads (resync_secs = 1), the refused entry retried.
    let mut last = None;
    world.poll("20 more passes", || {
        last = world.status();
        last.as_ref()
            .is_some_and(|s| s["passes"].as_u64().unwrap_or(0) >= passes + 20)
    });
    let hosts = hosts_of(&last.unwrap());
    assert!(
        hosts.contains(&(name.clone(), "down".into(), Some(reason.clone()))),
        "{hosts:?}"
    );
    assert!(
        hosts
            .iter()
            .any(|(n, state, _)| n == other && state == "active"),
        "{hosts:?}"
    );
    assert_disks_there(&world, &desktops);
    world.signal(serve, libc::SIGTERM);
    let after = world.assert_clean();
    assert_eq!(count_in(&after, &c, PoolState::Buffer), 3);

    // 3. Asked directly, whatever the engine believes: a disk a running domain uses is not
    // deleted, nor the seed copy that backs it, nor its marker.
    let conn = HostConnection::open(URI, false).unwrap();
    let err = conn
        .delete_volume(&world.creation_pool, &format!("{}.qcow2", desktops[0]))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("is in use by domain {}", desktops[0])),
        "{err}"
    );
    let err = conn
        .delete_seed_copy(&world.creation_pool, &c, "v1")
        .unwrap_err();
    assert!(err.to_string().contains("is in use by"), "{err}");
    let volumes = world.volumes();
    for v in [format!("seed-{c}@v1.img"), format!("seed-{c}@v1.complete")] {
        assert!(volumes.contains(&v), "{v} is gone: {volumes:?}");
    }
    assert_disks_there(&world, &desktops);
}

/// Issue 9, finding 5: `serve` killed with -9 while libvirtd copies a 3 GiB seed for it, and
/// started again at once. The copy goes on in libvirtd (the creation pool refuses a refresh
/// meanwhile): the host is still active, a login gets a buffered desktop at once, the
/// half-written copy is left alone until its job ends, and the fleet converges clean after.
#[test]
fn a_restart_during_a_seed_copy_keeps_the_host_up_and_serves_logins_at_once() {
    if !enabled("a_restart_during_a_seed_copy_keeps_the_host_up_and_serves_logins_at_once") {
        return;
    }
    let mut world = World::new(&["buf", "big"]);
    let (a, b) = (world.classes[0].clone(), world.classes[1].clone());

    // 1. Two buffered desktops of `a`; class `b` not configured yet.
    world.write_config(&[2], "");
    reconcile(&world);
    assert_eq!(world.assert_clean().len(), 2);
    // 3 GiB: read from disk, a 1 GiB copy ended about 1.3 s after the kill here, too close to
    // the ~0.5 s a restart and a login take; 3 GiB runs for about 5 s.
    world.make_big_seed(&b, 3072);

    // 2. Class `b` added: its seed copy begins; kill -9 while libvirtd writes it.
    world.write_config(&[2, 1], "");
    let first = world.serve();
    let copy = format!("seed-{b}@v1.img");
    world.poll("the seed copy under way", || {
        world.volumes().contains(&copy)
    });
    world.signal(first, libc::SIGKILL);
    let killed = Instant::now();
    assert!(
        world.creation_pool_busy(),
        "the copy ended before serve was killed (test too slow?)"
    );

    // 3. Restarted at once: the host is active and a login is served while the copy runs.
    let restarted = Instant::now();
    let second = world.serve();
    let out = world
        .deskpool(&["ctl", "assign", &a, "alice", "--wait", "10", "--json"])
        .output()
        .unwrap();
    let took = restarted.elapsed();
    assert!(
        out.status.success(),
        "assign after the restart: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let assigned: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let alice = assigned["desktop"].as_str().unwrap().to_string();
    let status = world.status().expect("serve answers");
    let still_copying = world.creation_pool_busy();
    println!("alice got {alice} {took:?} after the restart; copy still running: {still_copying}");
    assert!(
        still_copying,
        "the orphaned copy ended before the login was served (after {took:?})"
    );
    let hosts = hosts_of(&status);
    assert_eq!(
        hosts,
        [("local".to_string(), "active".to_string(), None)],
        "a busy pool is not a down host"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");

    // 4. Once the old copy ends, its leftover is replaced by a complete copy; all converges.
    world.poll("the orphaned copy to end", || !world.creation_pool_busy());
    println!(
        "the orphaned copy ran {:?} after the kill",
        killed.elapsed()
    );
    let deadline = Instant::now() + QEMU_DEADLINE;
    loop {
        let steady = world
            .status()
            .is_some_and(|s| s["steady"].as_bool() == Some(true) && !world.creation_pool_busy());
        if steady && world.volumes().contains(&format!("seed-{b}@v1.complete")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not steady: {:?}",
            world.status()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    world.signal(second, libc::SIGTERM);
    let desktops = world.assert_clean();
    assert_eq!(count_in(&desktops, &a, PoolState::Production), 1);
    assert_eq!(count_in(&desktops, &a, PoolState::Buffer), 2);
    assert_eq!(count_in(&desktops, &b, PoolState::Buffer), 1);
    let m = world.meta(&alice);
    assert_eq!(
        (m.pool, m.user.as_deref()),
        (PoolState::Production, Some("alice"))
    );
    // The copy under the new desktop is whole: qemu-img compares it equal to the seed.
    let out = run(
        "qemu-img",
        &[
            "compare",
            "-U",
            world.seed_path(&b).to_str().unwrap(),
            world.pool_path().join(&copy).to_str().unwrap(),
        ],
    );
    assert!(out.contains("Images are identical"), "{out}");
    // The refused deletes of the busy copy were retried with backoff, not in a storm.
    let log = std::fs::read_to_string(world.dir.path().join("state/deskpool.log")).unwrap();
    let refusals = log
        .lines()
        .filter(|l| l.contains(&copy) && l.contains("still being allocated"))
        .count();
    let downs: Vec<&str> = log.lines().filter(|l| l.contains("HostDown")).collect();
    println!("{refusals} refused deletes of the busy copy logged");
    assert!(refusals <= 10, "{refusals} refusals:\n{log}");
    assert!(downs.is_empty(), "the host went down: {downs:#?}");
    let _ = virsh(&["pool-refresh", &world.creation_pool]);
}
