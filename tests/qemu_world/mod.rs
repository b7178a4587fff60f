//! One test's world on a real libvirt daemon (`qemu:///system`): its own seed pool, creation
//! pool and classes under a random suffix, removed when dropped; and the outside tools
//! (`virsh`, `qemu-img`, `virt-xml-validate`) the tests check deskpool with.
#![allow(dead_code)]
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::DEADLINE;
use deskpool_api::EngineHandle;
use deskpool_config as config;
use deskpool_core::clock::SystemClock;
use deskpool_core::model::{DesktopMeta, METADATA_URI, PoolState};
use deskpool_core::policy::Fleet;
use deskpool_engine::run::{self, Connections, EngineOptions};
use deskpool_hypervisor::parse_meta;

pub const URI: &str = "qemu:///system";
/// Longer than the test driver's: real domains and a daemon restart take seconds.
pub const QEMU_DEADLINE: Duration = Duration::from_secs(120);

pub fn enabled(test: &str) -> bool {
    if std::env::var("DESKPOOL_QEMU").as_deref() == Ok("1") {
        return true;
    }
    println!("{test}: skipped (set DESKPOOL_QEMU=1, or run `make test-qemu`)");
    false
}

pub fn run(program: &str, args: &[&str]) -> String {
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

pub fn virsh(args: &[&str]) -> String {
    let mut all = vec!["-c", URI];
    all.extend_from_slice(args);
    run("virsh", &all)
}

/// `virsh` whose failure does not matter (clean-up).
pub fn virsh_quiet(args: &[&str]) {
    let _ = Command::new("virsh")
        .args(["-c", URI])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/libvirt-host.sh")
}

/// A unique, short suffix for this test's names.
pub fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{:x}", (nanos ^ (std::process::id() << 12)) & 0xff_ffff)
}

/// One test's world on the real host: a directory libvirt's qemu user can traverse, a seed pool
/// with one small qcow2 per class, a config. Removes every domain, volume and pool of its
/// classes when dropped (also when the test fails).
pub struct World {
    pub dir: tempfile::TempDir,
    pub classes: Vec<String>,
    pub creation_pool: String,
    pub seed_pool: String,
    pub children: Vec<Child>,
    /// Readiness keys of every class (`ready = "running"` unless a test changes it: these
    /// seeds hold no operating system, so no guest agent ever answers).
    pub ready: String,
    _lock: std::fs::File,
}

/// Writes `mib` MiB of the byte `pattern` at the start of the qcow2 image `path` (guest data, so
/// a copy of the image has something to carry).
fn write_pattern(path: &str, pattern: u8, mib: u32) {
    if mib > 0 {
        let write = format!("write -q -P {pattern:#x} 0 {mib}M");
        run("qemu-io", &["-f", "qcow2", "-c", &write, path]);
    }
}

/// The machine-wide lock of the real-host tests and benchmark.
pub const HOST_LOCK: &str = "/tmp/deskpool-qemu-tests.lock";
/// Longer than any other test or benchmark run holds the lock.
const HOST_LOCK_WAIT: Duration = Duration::from_secs(30 * 60);

/// Takes [`HOST_LOCK`], waiting for whoever holds it; fails (rather than hang) after
/// [`HOST_LOCK_WAIT`], naming the processes that hold the file open.
pub fn take_host_lock() -> std::fs::File {
    let lock = std::fs::File::create(HOST_LOCK).unwrap();
    let deadline = Instant::now() + HOST_LOCK_WAIT;
    loop {
        // SAFETY: flock on a file descriptor this test owns.
        let taken = unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&lock),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        } == 0;
        if taken {
            return lock;
        }
        if Instant::now() >= deadline {
            let holders = Command::new("fuser").arg("-v").arg(HOST_LOCK).output();
            let holders = holders
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default();
            panic!("{HOST_LOCK} still held after {HOST_LOCK_WAIT:?} by:\n{holders}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Removes what an earlier test run killed before its clean-up (a nextest timeout, kill -9)
/// left on `qemu:///system`: its desktops, its `dps-`/`dpt-` pools and their directories. Holding
/// [`HOST_LOCK`], nothing else of the tests' is in use.
fn sweep_leftovers() {
    for d in virsh(&["list", "--all", "--name"]).lines().map(str::trim) {
        if d.starts_with("dp-") {
            eprintln!("removing {d}, left by an earlier test run");
            virsh_quiet(&["destroy", d]);
            virsh_quiet(&["undefine", d]);
        }
    }
    for p in virsh(&["pool-list", "--all", "--name"])
        .lines()
        .map(str::trim)
    {
        if p.starts_with("dps-") || p.starts_with("dpt-") {
            eprintln!("removing pool {p}, left by an earlier test run");
            virsh_quiet(&["pool-destroy", p]);
            virsh_quiet(&["pool-undefine", p]);
        }
    }
    if let Ok(entries) = std::fs::read_dir("/var/lib/libvirt") {
        for e in entries.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with("deskpool-test-")
            {
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(e.path().join("pool"))
                    .stderr(Stdio::null())
                    .status();
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

impl World {
    pub fn new(class_names: &[&str]) -> World {
        let lock = take_host_lock();
        sweep_leftovers();
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
            ready: "ready = \"running\"".into(),
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

    pub fn seed_path(&self, class: &str) -> PathBuf {
        self.dir.path().join("seeds").join(format!("{class}.qcow2"))
    }

    pub fn pool_path(&self) -> PathBuf {
        self.dir.path().join("pool")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("deskpool.toml")
    }

    /// Writes the config: one host (this machine), each class with a buffer of `buffers[i]`.
    pub fn write_config(&self, buffers: &[u32], pacing: &str) -> PathBuf {
        self.write_config_with(buffers, pacing, "capacity = { desktops = 20 }", "")
    }

    /// As [`World::write_config`], with the local host's capacity line, and `more_hosts` (TOML
    /// `[[hosts]]` tables) after it.
    pub fn write_config_with(
        &self,
        buffers: &[u32],
        pacing: &str,
        capacity: &str,
        more_hosts: &str,
    ) -> PathBuf {
        let size = "memory_mib = 64\nvcpus = 1\ndisk_gib = 1\n";
        self.write_config_sized(buffers, pacing, capacity, more_hosts, size)
    }

    /// As [`World::write_config_with`], each class's size (and any other class keys) given as
    /// TOML lines in `class_lines`.
    pub fn write_config_sized(
        &self,
        buffers: &[u32],
        pacing: &str,
        capacity: &str,
        more_hosts: &str,
        class_lines: &str,
    ) -> PathBuf {
        let mut toml = format!(
            "[engine]\ntick_secs = 1\nresync_secs = 1\nretry_base_secs = 1\nretry_max_secs = 4\n\
             creation_pool = \"{}\"\ncreation_pool_path = \"{}\"\nstate_dir = \"{}\"\n\n\
             [[hosts]]\nname = \"local\"\nuri = \"{URI}\"\n{capacity}\n\n{more_hosts}\n",
            self.creation_pool,
            self.pool_path().display(),
            self.dir.path().join("state").display(),
        );
        for (c, n) in self.classes.iter().zip(buffers) {
            toml.push_str(&format!(
                "[[classes]]\nname = \"{c}\"\n{class_lines}{}\n\
                 seed = {{ pool = \"{}\", volume = \"{c}.qcow2\", version = \"v1\" }}\n\n\
                 [classes.policy]\ncap = 50\nbuffer = {{ floor = {n}, percent = 0, ceiling = {n} }}\n\
                 scale_down_delay_secs = 0\n{pacing}\n\n",
                self.ready, self.seed_pool
            ));
        }
        let path = self.config_path();
        std::fs::write(&path, toml).unwrap();
        path
    }

    pub fn fleet(&self) -> Fleet {
        config::load_file(&self.config_path())
            .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"))
    }

    pub fn start_engine(&self) -> EngineHandle {
        run::start(
            self.fleet(),
            EngineOptions {
                clock: Arc::new(SystemClock),
                read_only: false,
                paused: false,
                connections: Connections::new(),
                state_dir: None,
                simulated_steps: Default::default(),
                leadership: None,
            },
        )
    }

    pub fn is_ours(&self, domain: &str) -> bool {
        self.classes
            .iter()
            .any(|c| domain.starts_with(&format!("dp-{c}-")))
    }

    /// This test's desktops as `virsh list` names them (`all`: defined ones too).
    pub fn domains(&self, all: bool) -> Vec<String> {
        domains_at(URI, all, |d| self.is_ours(d))
    }

    /// Names of the volumes `virsh vol-list` shows in the creation pool.
    pub fn volumes(&self) -> Vec<String> {
        volumes_at(URI, &self.creation_pool)
    }

    /// deskpool's metadata of `domain`, read from `virsh dumpxml`.
    pub fn meta(&self, domain: &str) -> DesktopMeta {
        meta_at(URI, domain)
    }

    /// Polls `ready` until it holds, for at most [`QEMU_DEADLINE`].
    pub fn poll(&self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + QEMU_DEADLINE;
        while !ready() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn deskpool(&self, args: &[&str]) -> Command {
        self.deskpool_at(&self.config_path(), args)
    }

    /// `deskpool ARGS --config CONFIG` (a test that runs several controllers gives each its own
    /// config).
    pub fn deskpool_at(&self, config: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_deskpool"));
        cmd.args(args)
            .arg("--config")
            .arg(config)
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"));
        cmd
    }

    /// `deskpool serve` in the background, once it says it serves; returns its index.
    pub fn serve(&mut self) -> usize {
        self.serve_at(&self.config_path())
    }

    /// As [`World::serve`], with the config at `config`.
    pub fn serve_at(&mut self, config: &Path) -> usize {
        let mut child = self
            .deskpool_at(config, &["serve"])
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

    pub fn signal(&mut self, child: usize, signal: i32) {
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
    pub fn assert_clean(&self) -> Vec<(String, DesktopMeta)> {
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
        let (disks, want) = self.disks_against(&all);
        assert_eq!(disks, want, "one disk volume per desktop, no orphan");
        desktops
    }

    /// The desktops' disk volumes in the creation pool, and the disks `domains` have: both
    /// sorted, equal when every desktop has its disk and no disk is an orphan.
    pub fn disks_against(&self, domains: &[String]) -> (Vec<String>, Vec<String>) {
        let mut disks = self.volumes_starting("dp-");
        disks.sort();
        let mut want: Vec<String> = domains.iter().map(|d| format!("{d}.qcow2")).collect();
        want.sort();
        (disks, want)
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

pub fn count_in(desktops: &[(String, DesktopMeta)], class: &str, pool: PoolState) -> usize {
    desktops
        .iter()
        .filter(|(_, m)| m.class == class && m.pool == pool)
        .count()
}

pub fn validate(dir: &Path, name: &str, xml: &str, kind: &str) {
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

/// A tmpfs mounted on `path` for the life of the guard: a creation pool that can be filled up
/// or made read-only. Unmounted lazily on drop, so it also goes when a test fails with desktops
/// still using it.
pub struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    pub fn mount(path: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(path).unwrap();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "deskpool-test",
                path.to_str().unwrap(),
            ],
        );
        SmallDisk {
            path: path.to_path_buf(),
        }
    }

    /// Remounts with `options` (`size=64m`, `ro`, `rw`).
    pub fn remount(&self, options: &str) {
        run(
            "mount",
            &[
                "-o",
                &format!("remount,{options}"),
                self.path.to_str().unwrap(),
            ],
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .stderr(Stdio::null())
            .status();
    }
}

impl World {
    /// Rewrites the config so class `class` uses seed `volume` at `version`.
    pub fn set_seed(&self, class: &str, volume: &str, version: &str) {
        let path = self.config_path();
        let text = std::fs::read_to_string(&path).unwrap();
        let start = text
            .find(&format!("name = \"{class}\"\n"))
            .expect("class in the config");
        let seed_at = start + text[start..].find("seed = {").unwrap();
        let seed_end = seed_at + text[seed_at..].find('\n').unwrap();
        let line = format!(
            "seed = {{ pool = \"{}\", volume = \"{volume}\", version = \"{version}\" }}",
            self.seed_pool
        );
        let new = format!("{}{line}{}", &text[..seed_at], &text[seed_end..]);
        std::fs::write(&path, new).unwrap();
    }

    /// Makes a qcow2 seed `volume` in the seed pool holding `mib` MiB of `pattern` bytes, and
    /// tells libvirt it is there.
    pub fn make_seed(&self, volume: &str, mib: u32, pattern: u8) {
        let path = self.dir.path().join("seeds").join(volume);
        let path = path.to_str().unwrap();
        run("qemu-img", &["create", "-q", "-f", "qcow2", path, "64M"]);
        write_pattern(path, pattern, mib);
        virsh(&["pool-refresh", &self.seed_pool]);
    }

    /// The creation pool's volumes whose names start with `prefix`.
    pub fn volumes_starting(&self, prefix: &str) -> Vec<String> {
        self.volumes()
            .into_iter()
            .filter(|v| v.starts_with(prefix))
            .collect()
    }

    /// The backing file of desktop `domain`'s disk, as `qemu-img info` reads it.
    pub fn backing_of(&self, domain: &str) -> String {
        let disk = self.pool_path().join(format!("{domain}.qcow2"));
        let info = run(
            "qemu-img",
            &["info", "-U", "--output=json", disk.to_str().unwrap()],
        );
        let info: serde_json::Value = serde_json::from_str(&info).unwrap();
        info["full-backing-filename"]
            .as_str()
            .unwrap_or_else(|| panic!("{domain}'s disk has no backing file"))
            .to_string()
    }
}

/// Failed events of `class` during the next `window` (those from before are dropped first): a
/// retry rate, so a measurement over time rather than a condition to wait for.
pub async fn failures_during(engine: &mut EngineHandle, class: &str, window: Duration) -> usize {
    let failed_here = |e: &deskpool_api::Event| {
        e.kind == deskpool_api::EventKind::Failed && e.class.as_deref() == Some(class)
    };
    while engine.events.try_recv().is_ok() {}
    tokio::time::sleep(window).await;
    let mut n = 0;
    while let Ok(e) = engine.events.try_recv() {
        n += usize::from(failed_here(&e));
    }
    n
}

// ---- a second host: an unprivileged user's session daemon -------------------------------------

/// The user whose session libvirtd `scripts/libvirt-host.sh up` runs (the second real host).
pub const SESSION_USER: &str = "deskpool-session";

/// How root reaches that user's session daemon.
pub fn session_uri() -> String {
    format!("qemu+unix:///session?socket=/home/{SESSION_USER}/.cache/libvirt/libvirt-sock")
}

/// `virsh -c uri args`, which must succeed.
pub fn virsh_at(uri: &str, args: &[&str]) -> String {
    let mut all = vec!["-c", uri];
    all.extend_from_slice(args);
    run("virsh", &all)
}

/// `virsh -c uri args` whose failure does not matter (clean-up).
pub fn virsh_quiet_at(uri: &str, args: &[&str]) {
    let _ = Command::new("virsh")
        .args(["-c", uri])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Names of the volumes `virsh vol-list` shows in `pool` on `uri`.
/// The domains on `uri` that `ours` picks, sorted (`all`: defined ones too, not only running).
pub fn domains_at(uri: &str, all: bool, ours: impl Fn(&str) -> bool) -> Vec<String> {
    let mut args = vec!["list", "--name"];
    if all {
        args.push("--all");
    }
    let mut v: Vec<String> = virsh_at(uri, &args)
        .lines()
        .map(str::trim)
        .filter(|n| ours(n))
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// `qemu-img info --backing-chain` of `disk` as JSON, one object per image of the chain.
pub fn backing_chain(disk: &Path) -> Vec<serde_json::Value> {
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
    chain
        .as_array()
        .unwrap_or_else(|| panic!("a backing chain is a JSON array: {info}"))
        .clone()
}

pub fn volumes_at(uri: &str, pool: &str) -> Vec<String> {
    let listing = virsh_at(uri, &["vol-list", "--pool", pool]);
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

/// deskpool's metadata of `domain` on `uri`, read from `virsh dumpxml`.
pub fn meta_at(uri: &str, domain: &str) -> DesktopMeta {
    let xml = virsh_at(uri, &["dumpxml", domain]);
    assert!(
        xml.contains(METADATA_URI),
        "dumpxml of {domain} on {uri} lacks deskpool's metadata namespace:\n{xml}"
    );
    parse_meta(&xml).unwrap_or_else(|| panic!("unreadable metadata in {domain}:\n{xml}"))
}

impl World {
    /// Writes `mib` MiB of the byte `pattern` at the start of `class`'s seed (so a copy of it
    /// has real data to carry), and has libvirt re-read the seed pool.
    pub fn fill_seed(&self, class: &str, pattern: u8, mib: u32) {
        write_pattern(self.seed_path(class).to_str().unwrap(), pattern, mib);
        virsh(&["pool-refresh", &self.seed_pool]);
    }
}

/// This test's part of the session host: a directory in the session user's home (the user owns
/// it, so its daemon can make the creation pool there). When dropped, removes every domain of
/// the world's classes and the creation pool from the session daemon, then the directory. Drop
/// it before the [`World`] (declare it after), so the lock is still held.
pub struct SessionHost {
    pub uri: String,
    pub dir: tempfile::TempDir,
    pub classes: Vec<String>,
    pub creation_pool: String,
}

impl SessionHost {
    pub fn new(world: &World) -> SessionHost {
        let uri = session_uri();
        let answers = Command::new("virsh")
            .args(["-c", &uri, "version"])
            .output()
            .unwrap_or_else(|e| panic!("virsh does not run: {e}"));
        assert!(
            answers.status.success(),
            "the session host {uri} does not answer (run `scripts/libvirt-host.sh up`): {}",
            String::from_utf8_lossy(&answers.stderr)
        );
        let dir = tempfile::Builder::new()
            .prefix("deskpool-test-")
            .tempdir_in(format!("/home/{SESSION_USER}"))
            .unwrap();
        let id = |flag: &str| -> u32 { run("id", &[flag, SESSION_USER]).trim().parse().unwrap() };
        std::os::unix::fs::chown(dir.path(), Some(id("-u")), Some(id("-g"))).unwrap();
        SessionHost {
            uri,
            dir,
            classes: world.classes.clone(),
            creation_pool: world.creation_pool.clone(),
        }
    }

    pub fn pool_path(&self) -> PathBuf {
        self.dir.path().join("pool")
    }

    /// The `[[hosts]]` table of this host for [`World::write_config_with`].
    pub fn host_toml(&self, name: &str, capacity: &str) -> String {
        format!(
            "[[hosts]]\nname = \"{name}\"\nuri = \"{}\"\n{capacity}\ncreation_pool_path = \"{}\"\n",
            self.uri,
            self.pool_path().display()
        )
    }

    pub fn virsh(&self, args: &[&str]) -> String {
        virsh_at(&self.uri, args)
    }

    pub fn is_ours(&self, domain: &str) -> bool {
        self.classes
            .iter()
            .any(|c| domain.starts_with(&format!("dp-{c}-")))
    }

    /// This test's desktops on the session host (`all`: defined ones too).
    pub fn domains(&self, all: bool) -> Vec<String> {
        domains_at(&self.uri, all, |d| self.is_ours(d))
    }

    pub fn volumes(&self) -> Vec<String> {
        volumes_at(&self.uri, &self.creation_pool)
    }

    pub fn meta(&self, domain: &str) -> DesktopMeta {
        meta_at(&self.uri, domain)
    }
}

impl Drop for SessionHost {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("virsh")
            .args(["-c", &self.uri, "list", "--all", "--name"])
            .output()
        {
            for d in String::from_utf8_lossy(&out.stdout).lines() {
                let d = d.trim();
                if self.is_ours(d) {
                    virsh_quiet_at(&self.uri, &["destroy", d]);
                    virsh_quiet_at(&self.uri, &["undefine", d]);
                }
            }
        }
        virsh_quiet_at(&self.uri, &["pool-destroy", &self.creation_pool]);
        virsh_quiet_at(&self.uri, &["pool-undefine", &self.creation_pool]);
    }
}

// ---- for tests/qemu_faults.rs --------------------------------------------------------------

impl World {
    /// `deskpool ctl status --json` of the `serve` running on this world, or `None` while it
    /// does not answer.
    pub fn status(&self) -> Option<serde_json::Value> {
        let out = self.deskpool(&["ctl", "status", "--json"]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Makes `class`'s seed a qcow2 of `mib` MiB, all of it data, out of the page cache (so a
    /// copy of it reads the disk and takes seconds), and has libvirt re-read the seed pool.
    pub fn make_big_seed(&self, class: &str, mib: u32) {
        let path = self.seed_path(class);
        let p = path.to_str().unwrap();
        run(
            "qemu-img",
            &["create", "-q", "-f", "qcow2", p, &format!("{mib}M")],
        );
        // In chunks: qemu-io holds one request's buffer in memory.
        let writes: Vec<String> = (0..mib.div_ceil(64))
            .map(|i| format!("write -q -P 0x6b {}M {}M", i * 64, 64.min(mib - i * 64)))
            .collect();
        let mut args = vec!["-f", "qcow2"];
        for w in &writes {
            args.extend(["-c", w.as_str()]);
        }
        args.push(p);
        run("qemu-io", &args);
        let file = std::fs::File::open(&path).unwrap();
        file.sync_all().unwrap();
        // SAFETY: advice on a file descriptor this test owns.
        unsafe {
            libc::posix_fadvise(
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
                0,
                libc::POSIX_FADV_DONTNEED,
            )
        };
        virsh(&["pool-refresh", &self.seed_pool]);
    }

    /// Whether libvirt still runs a volume job in the creation pool (it then refuses a refresh:
    /// "pool has asynchronous jobs running").
    pub fn creation_pool_busy(&self) -> bool {
        let out = Command::new("virsh")
            .args(["-c", URI, "pool-refresh", &self.creation_pool])
            .output()
            .unwrap();
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("asynchronous jobs running")
    }
}

/// Helpers of the crash-safety test (`tests/qemu_crash.rs`).
pub mod crash;
/// The test seed and its guest agent (`tests/qemu_guest.rs`).
pub mod guest;
/// One wait for a snapshot condition, shared by the real-host tests.
pub mod wait;
