//! deskpool on two real libvirt hosts of this machine: `qemu:///system` and the session daemon
//! of the unprivileged user `deskpool-session` (both started by `scripts/libvirt-host.sh up`),
//! reached by root over its socket. The class's seed lives only on the first host; desktops that
//! do not fit there go to the second, onto a copy of the seed carried by libvirt streams.
//!
//! Runs only with `DESKPOOL_QEMU=1`, under the same machine-wide lock as tests/qemu.rs (taken by
//! `World::new`). Everything a test makes on either host is removed when it ends.

mod common;
mod qemu_world;

use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

use common::{class, host};
use deskpool_core::model::PoolState;
use deskpool_hypervisor::HostConnection;
use qemu_world::{QEMU_DEADLINE, SessionHost, World, backing_chain, enabled, run, validate, virsh};

/// Bytes of the seed's content: written before the copy, so the copy has data to carry.
const SEED_DATA_MIB: u32 = 8;

/// `qemu-img compare`: the two images show the same guest content.
fn assert_same_content(a: &Path, b: &Path) {
    let out = run(
        "qemu-img",
        &["compare", "-U", a.to_str().unwrap(), b.to_str().unwrap()],
    );
    assert!(
        out.contains("Images are identical"),
        "{a:?} vs {b:?}: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktops_beyond_the_first_host_go_to_the_session_host_on_a_streamed_seed_copy() {
    if !enabled("desktops_beyond_the_first_host_go_to_the_session_host_on_a_streamed_seed_copy") {
        return;
    }
    const LOCAL: usize = 2;
    const SESSION: usize = 3;
    let world = World::new(&["off"]);
    let c = world.classes[0].clone();
    world.fill_seed(&c, 0x5a, SEED_DATA_MIB);
    let session = SessionHost::new(&world);
    world.write_config_with(
        &[(LOCAL + SESSION) as u32],
        "",
        &format!("capacity = {{ desktops = {LOCAL} }}"),
        &session.host_toml("session", &format!("capacity = {{ desktops = {SESSION} }}")),
    );

    let started = Instant::now();
    let mut engine = world.start_engine();
    // The seed copy's progress as the snapshots show it (done, total), on the session host.
    let mut progress: Vec<(u64, u64)> = Vec::new();
    let s = match engine
        .wait_for(QEMU_DEADLINE, |s| {
            for p in &s.seed_copies {
                if p.host == "session" && progress.last() != Some(&(p.done_bytes, p.total_bytes)) {
                    progress.push((p.done_bytes, p.total_bytes));
                }
            }
            s.steady
        })
        .await
    {
        Ok(s) => s,
        Err(s) => panic!("not steady:\n{}", deskpool::report::table(&s)),
    };
    println!(
        "{} desktops on 2 hosts running after {:?}; seed copy progress seen in snapshots: {progress:?}",
        LOCAL + SESSION,
        started.elapsed()
    );
    assert_eq!(class(&s, &c).plan.buffer as usize, LOCAL + SESSION);
    assert_eq!(host(&s, "local").desktops as usize, LOCAL);
    assert_eq!(host(&s, "session").desktops as usize, SESSION);
    for w in progress.windows(2) {
        assert!(w[0].0 <= w[1].0, "progress goes backwards: {progress:?}");
    }
    for (done, total) in &progress {
        assert!(done <= total, "progress beyond its total: {progress:?}");
    }
    engine.shutdown().await;

    // The first host: full, its own seed copy a local clone.
    let local = world.domains(false);
    assert_eq!(local, world.domains(true), "every local desktop runs");
    assert_eq!(local.len(), LOCAL);

    // virsh on the session host: the rest of the buffer runs there, labelled by deskpool.
    let kvm = session
        .virsh(&["capabilities"])
        .contains("<domain type='kvm'");
    let accel = if kvm { "kvm" } else { "qemu" };
    println!("session host domain type {accel}");
    let desktops = session.domains(false);
    assert_eq!(
        desktops,
        session.domains(true),
        "every session desktop runs"
    );
    assert_eq!(desktops.len(), SESSION, "{desktops:?}");
    let displays: Vec<String> = desktops
        .iter()
        .map(|d| session.virsh(&["domdisplay", d]).trim().to_string())
        .collect();
    println!("session desktops' displays: {displays:?}");
    let pool = session.pool_path();
    let copy = pool.join(format!("seed-{c}@v1.img"));
    for d in &desktops {
        let m = session.meta(d);
        assert_eq!(
            (m.class.as_str(), m.pool),
            (c.as_str(), PoolState::Buffer),
            "{d}"
        );
        assert_eq!(m.seed_version, "v1", "{d}");
        let xml = session.virsh(&["dumpxml", d]);
        assert!(
            xml.starts_with(&format!("<domain type='{accel}'")),
            "{d} is not a {accel} domain:\n{xml}"
        );
        let disk = pool.join(format!("{d}.qcow2"));
        assert!(
            xml.contains(&format!("<source file='{}'", disk.display())),
            "{d} does not run its overlay {disk:?}:\n{xml}"
        );

        // qemu-img: the disk is a qcow2 overlay of the seed copy in this host's creation pool,
        // itself a full image (no backing file).
        let chain = backing_chain(&disk);
        assert_eq!(chain.len(), 2, "{d}: overlay + seed copy: {chain:?}");
        assert_eq!(chain[0]["format"], "qcow2", "{chain:?}");
        assert_eq!(
            chain[0]["full-backing-filename"].as_str(),
            copy.to_str(),
            "{chain:?}"
        );
        assert_eq!(chain[1]["filename"].as_str(), copy.to_str(), "{chain:?}");
        assert_eq!(chain[1]["format"], "qcow2", "{chain:?}");
        assert!(chain[1].get("backing-filename").is_none(), "{chain:?}");
    }

    // virsh vol-list: the seed copy, its completion marker, one disk per desktop; nothing else.
    let volumes = session.volumes();
    let mut want: Vec<String> = desktops.iter().map(|d| format!("{d}.qcow2")).collect();
    want.push(format!("seed-{c}@v1.complete"));
    want.push(format!("seed-{c}@v1.img"));
    want.sort();
    assert_eq!(volumes, want);

    // The streamed copy holds the seed's data: same content, same size on disk.
    assert_same_content(&copy, &world.seed_path(&c));
    assert_eq!(
        std::fs::metadata(&copy).unwrap().len(),
        std::fs::metadata(world.seed_path(&c)).unwrap().len(),
        "the copy is the seed file byte for byte in length"
    );

    // Every domain and volume XML deskpool made on the session host passes libvirt's schemas.
    let xml_dir = world.dir.path().join("xml-session");
    std::fs::create_dir(&xml_dir).unwrap();
    for d in &desktops {
        validate(
            &xml_dir,
            d,
            &session.virsh(&["dumpxml", "--inactive", d]),
            "domain",
        );
    }
    for v in &volumes {
        validate(
            &xml_dir,
            v,
            &session.virsh(&["vol-dumpxml", "--pool", &session.creation_pool, v]),
            "storagevol",
        );
    }
    validate(
        &xml_dir,
        &session.creation_pool,
        &session.virsh(&["pool-dumpxml", &session.creation_pool]),
        "storagepool",
    );
}

/// The stream copy on its own (what the engine's seed job calls), to see every progress report:
/// the snapshot drops a copy's progress once the copy is done, so its last report is not
/// reliably visible there.
#[test]
fn a_seed_streamed_to_the_session_host_reports_progress_up_to_its_full_size() {
    if !enabled("a_seed_streamed_to_the_session_host_reports_progress_up_to_its_full_size") {
        return;
    }
    let world = World::new(&["off"]);
    let c = world.classes[0].clone();
    world.fill_seed(&c, 0xa5, SEED_DATA_MIB);
    let session = SessionHost::new(&world);
    let seed = world.seed_path(&c);
    let size = std::fs::metadata(&seed).unwrap().len();

    let src = HostConnection::open(qemu_world::URI, false).unwrap();
    let dst = HostConnection::open(&session.uri, false).unwrap();
    dst.ensure_creation_pool(
        &session.creation_pool,
        session.pool_path().to_str().unwrap(),
    )
    .unwrap();
    let copy_to_session = |progress: &dyn Fn(u64, u64)| {
        HostConnection::copy_seed_between(
            &src,
            &world.seed_pool,
            &format!("{c}.qcow2"),
            &dst,
            &session.creation_pool,
            &c,
            "v1",
            progress,
        )
    };

    // A copy the destination refuses (its pool directory not writable by the session user):
    // an error naming the volume, the download already begun is aborted, nothing is left.
    use std::os::unix::fs::PermissionsExt;
    let perms = |mode| {
        std::fs::set_permissions(session.pool_path(), std::fs::Permissions::from_mode(mode))
            .unwrap()
    };
    perms(0o555);
    let refused = copy_to_session(&|_, _| {});
    perms(0o755);
    let e = refused.expect_err("a copy into a read-only directory fails");
    println!("refused copy: {e}");
    assert!(e.to_string().contains(&format!("seed-{c}@v1.img")), "{e}");
    assert_eq!(session.volumes(), Vec::<String>::new());

    let calls = RefCell::new(Vec::new());
    let record = |done: u64, total: u64| calls.borrow_mut().push((done, total));
    let started = Instant::now();
    let copied = HostConnection::copy_seed_between(
        &src,
        &world.seed_pool,
        &format!("{c}.qcow2"),
        &dst,
        &session.creation_pool,
        &c,
        "v1",
        &record,
    )
    .unwrap_or_else(|e| panic!("stream copy failed: {e}"));
    let calls = calls.into_inner();
    println!(
        "{size} bytes streamed in {:?}, {} progress reports",
        started.elapsed(),
        calls.len()
    );
    assert!(copied.complete);
    assert_eq!(copied.format, "qcow2");
    let copy = session.pool_path().join(format!("seed-{c}@v1.img"));
    assert_eq!(copied.path, copy.to_str().unwrap());
    assert_eq!(calls.first(), Some(&(0, size)), "{calls:?}");
    assert_eq!(calls.last(), Some(&(size, size)), "{calls:?}");
    for w in calls.windows(2) {
        assert!(w[0].0 <= w[1].0, "progress goes backwards: {calls:?}");
    }
    assert!(
        calls.len() >= 3,
        "an {SEED_DATA_MIB} MiB seed goes in several chunks: {calls:?}"
    );
    assert_same_content(&copy, &seed);
    assert_eq!(std::fs::metadata(&copy).unwrap().len(), size);

    // A second call finds the complete copy and reports it done at once.
    let again = RefCell::new(Vec::new());
    let record = |done: u64, total: u64| again.borrow_mut().push((done, total));
    HostConnection::copy_seed_between(
        &src,
        &world.seed_pool,
        &format!("{c}.qcow2"),
        &dst,
        &session.creation_pool,
        &c,
        "v1",
        &record,
    )
    .unwrap();
    assert_eq!(again.into_inner(), vec![(size, size)]);

    // The source host is untouched: no creation pool made there for this.
    assert!(
        !virsh(&["pool-list", "--all", "--name"])
            .lines()
            .any(|p| p.trim() == world.creation_pool)
    );
}
