//! deskpool on a real libvirt daemon (`qemu:///system`), checked from outside with the tools
//! administrators use: `virsh`, `qemu-img`, `virt-xml-validate`.
//!
//! Runs only with `DESKPOOL_QEMU=1` (`make test-qemu` sets it after `scripts/libvirt-host.sh
//! up`); otherwise each test prints one line saying it was skipped. Every test makes its own
//! seed pool, creation pool and classes (random suffix) and removes them at the end. The tests
//! take a machine-wide lock: an engine destroys `dp-` desktops of classes it does not know, so
//! two engines must never share a host, and neither may two of these tests.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{DEADLINE, class, host, wait};
use deskpool::config;
use deskpool::engine::clock::SystemClock;
use deskpool::engine::plan::HostStatus;
use deskpool::engine::run::{self, Connections, EngineHandle, EngineOptions};
use deskpool::hypervisor::model::{DesktopMeta, METADATA_URI, PoolState};
use deskpool::hypervisor::parse_meta;
use deskpool::policy::Fleet;

const URI: &str = "qemu:///system";
/// Longer than the test driver's: real domains and a daemon restart take seconds.
const QEMU_DEADLINE: Duration = Duration::from_secs(120);

fn enabled(test: &str) -> bool {
    if std::env::var("DESKPOOL_QEMU").as_deref() == Ok("1") {
        return true;
    }
    println!("{test}: skipped (set DESKPOOL_QEMU=1, or run `make test-qemu`)");
    false
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} does not run: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn virsh(args: &[&str]) -> String {
    let mut all = vec!["-c", URI];
    all.extend_from_slice(args);
    run("virsh", &all)
}

/// `virsh` whose failure does not matter (clean-up).
fn virsh_quiet(args: &[&str]) {
    let _ = Command::new("virsh")
        .args(["-c", URI])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/libvirt-host.sh")
}

/// A unique, short suffix for this test's names.
fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{:x}", (nanos ^ (std::process::id() << 12)) & 0xff_ffff)
}

/// One test's world on the real host: a directory libvirt's qemu user can traverse, a seed pool
/// with one small qcow2 per class, a config. Removes every domain, volume and pool of its
/// classes when dropped (also when the test fails).
struct World {
    dir: tempfile::TempDir,
    classes: Vec<String>,
    creation_pool: String,
    seed_pool: String,
    children: Vec<Child>,
    _lock: std::fs::File,
}

impl World {
    fn new(class_names: &[&str]) -> World {
        let lock = std::fs::File::create("/tmp/deskpool-qemu-tests.lock").unwrap();
        // SAFETY: flock on a file descriptor this test owns.
        assert_eq!(
            unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) },
            0
        );
        let s = suffix();
        // qemu runs as libvirt-qemu: the disks' directories must be traversable by it, which a
        // 0700 directory under /tmp is not.
        let dir = tempfile::Builder::new()
            .prefix("deskpool-test-")
            .tempdir_in("/var/lib/libvirt")
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("seeds")).unwrap();
        let classes: Vec<String> = class_names.iter().map(|c| format!("{c}{s}")).collect();
        let world = World {
            creation_pool: format!("dpt-{s}"),
            seed_pool: format!("dps-{s}"),
            classes,
            children: Vec::new(),
            dir,
            _lock: lock,
        };
        for c in &world.classes {
            let path = world.seed_path(c);
            run(
                "qemu-img",
                &["create", "-q", "-f", "qcow2", path.to_str().unwrap(), "64M"],
            );
        }
        let seeds = world.dir.path().join("seeds");
        virsh(&[
            "pool-create-as",
            &world.seed_pool,
            "dir",
            "--target",
            seeds.to_str().unwrap(),
        ]);
        world
    }

    fn seed_path(&self, class: &str) -> PathBuf {
        self.dir.path().join("seeds").join(format!("{class}.qcow2"))
    }

    fn pool_path(&self) -> PathBuf {
        self.dir.path().join("pool")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("deskpool.toml")
    }

    /// Writes the config: one host (this machine), each class with a buffer of `buffers[i]`.
    fn write_config(&self, buffers: &[u32], pacing: &str) -> PathBuf {
        let mut toml = format!(
            "[engine]\ntick_secs = 1\nresync_secs = 1\nretry_base_secs = 1\nretry_max_secs = 4\n\
             creation_pool = \"{}\"\ncreation_pool_path = \"{}\"\nstate_dir = \"{}\"\n\n\
             [[hosts]]\nname = \"local\"\nuri = \"{URI}\"\ncapacity = {{ desktops = 20 }}\n\n",
            self.creation_pool,
            self.pool_path().display(),
            self.dir.path().join("state").display(),
        );
        for (c, n) in self.classes.iter().zip(buffers) {
            toml.push_str(&format!(
                "[[classes]]\nname = \"{c}\"\nmemory_mib = 64\nvcpus = 1\ndisk_gib = 1\n\
                 seed = {{ pool = \"{}\", volume = \"{c}.qcow2\", version = \"v1\" }}\n\n\
                 [classes.policy]\ncap = 50\nbuffer = {{ floor = {n}, percent = 0, ceiling = {n} }}\n\
                 scale_down_delay_secs = 0\n{pacing}\n\n",
                self.seed_pool
            ));
        }
        let path = self.config_path();
        std::fs::write(&path, toml).unwrap();
        path
    }

    fn fleet(&self) -> Fleet {
        config::load_file(&self.config_path())
            .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"))
    }

    fn start_engine(&self) -> EngineHandle {
        run::start(
            self.fleet(),
            EngineOptions {
                clock: Arc::new(SystemClock),
                read_only: false,
                paused: false,
                connections: Connections::new(),
                state_dir: None,
            },
        )
    }

    fn is_ours(&self, domain: &str) -> bool {
        self.classes
            .iter()
            .any(|c| domain.starts_with(&format!("dp-{c}-")))
    }

    /// This test's desktops as `virsh list` names them (`all`: defined ones too).
    fn domains(&self, all: bool) -> Vec<String> {
        let mut args = vec!["list", "--name"];
        if all {
            args.push("--all");
        }
        let mut v: Vec<String> = virsh(&args)
            .lines()
            .map(str::trim)
            .filter(|n| self.is_ours(n))
            .map(String::from)
            .collect();
        v.sort();
        v
    }

    /// Names of the volumes `virsh vol-list` shows in the creation pool.
    fn volumes(&self) -> Vec<String> {
        let listing = virsh(&["vol-list", "--pool", &self.creation_pool]);
        let mut v: Vec<String> = listing
            .lines()
            .skip_while(|l| !l.starts_with("---"))
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from)
            .collect();
        v.sort();
        v
    }

    /// deskpool's metadata of `domain`, read from `virsh dumpxml`.
    fn meta(&self, domain: &str) -> DesktopMeta {
        let xml = virsh(&["dumpxml", domain]);
        assert!(
            xml.contains(METADATA_URI),
            "dumpxml of {domain} lacks deskpool's metadata namespace:\n{xml}"
        );
        parse_meta(&xml).unwrap_or_else(|| panic!("unreadable metadata in {domain}:\n{xml}"))
    }

    /// Polls `ready` until it holds, for at most [`QEMU_DEADLINE`].
    fn poll(&self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + QEMU_DEADLINE;
        while !ready() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn deskpool(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_deskpool"));
        cmd.args(args)
            .arg("--config")
            .arg(self.config_path())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"));
        cmd
    }

    /// `deskpool serve` in the background, once it says it serves; returns its index.
    fn serve(&mut self) -> usize {
        let mut child = self
            .deskpool(&["serve"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(!line.is_empty(), "deskpool serve printed nothing");
        self.children.push(child);
        self.children.len() - 1
    }

    fn signal(&mut self, child: usize, signal: i32) {
        let c = &mut self.children[child];
        // SAFETY: signalling a child process this test started.
        unsafe { libc::kill(c.id() as i32, signal) };
        let deadline = Instant::now() + DEADLINE;
        while c.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "deskpool did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything on the host belongs to a desktop; every desktop is labelled, settled and
    /// running; returns the desktops with their metadata.
    fn assert_clean(&self) -> Vec<(String, DesktopMeta)> {
        let all = self.domains(true);
        let running = self.domains(false);
        assert_eq!(all, running, "every desktop runs");
        let desktops: Vec<(String, DesktopMeta)> =
            all.iter().map(|d| (d.clone(), self.meta(d))).collect();
        for (d, m) in &desktops {
            assert!(
                matches!(m.pool, PoolState::Buffer | PoolState::Production),
                "{d} is left in pool {:?}",
                m.pool
            );
        }
        let mut disks: Vec<String> = self
            .volumes()
            .into_iter()
            .filter(|v| v.starts_with("dp-"))
            .collect();
        disks.sort();
        let mut want: Vec<String> = all.iter().map(|d| format!("{d}.qcow2")).collect();
        want.sort();
        assert_eq!(disks, want, "one disk volume per desktop, no orphan");
        desktops
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Ok(out) = Command::new("virsh")
            .args(["-c", URI, "list", "--all", "--name"])
            .output()
        {
            for d in String::from_utf8_lossy(&out.stdout).lines() {
                let d = d.trim();
                if self.is_ours(d) {
                    virsh_quiet(&["destroy", d]);
                    virsh_quiet(&["undefine", d]);
                }
            }
        }
        virsh_quiet(&["pool-destroy", &self.creation_pool]);
        virsh_quiet(&["pool-undefine", &self.creation_pool]);
        virsh_quiet(&["pool-destroy", &self.seed_pool]);
    }
}

fn count_in(desktops: &[(String, DesktopMeta)], class: &str, pool: PoolState) -> usize {
    desktops
        .iter()
        .filter(|(_, m)| m.class == class && m.pool == pool)
        .count()
}

fn validate(dir: &Path, name: &str, xml: &str, kind: &str) {
    let file = dir.join(format!("{name}.{kind}.xml"));
    std::fs::write(&file, xml).unwrap();
    let out = Command::new("virt-xml-validate")
        .arg(&file)
        .arg(kind)
        .output()
        .expect("virt-xml-validate runs (package libxml2-utils)");
    assert!(
        out.status.success(),
        "{kind} XML of {name} does not validate: {}{}\n{xml}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
