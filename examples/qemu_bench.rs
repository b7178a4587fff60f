//! Issue 5's figure, on a real libvirtd (`qemu:///system`): the time from an empty host to N
//! (20) running buffered desktops from a seed image holding 1 GiB of data, measured three ways
//! in the same process, alternating, each from an empty host:
//!
//! - **deskpool**: the real binary, `deskpool reconcile --until-steady --json --config FILE`
//!   (HOME and XDG directories in the work directory), one class with buffer floor = ceiling =
//!   N, from no creation pool at all; timed from spawn to exit, then checked from outside
//!   (`virsh list`: the N desktops run, nothing else of the class is defined). Pacing is not a
//!   limit: `clones_per_host` = `boots_per_host` = `--pacing` (default N, so one pass starts
//!   every desktop; overlays still take the connection's volume lock one at a time);
//!   `tick_secs = 1` (a pass also follows every finished job), `resync_secs = 30`.
//! - **virt-clone loop**: what an administrator would write with virt-manager's tools — one bash
//!   script that makes the clone directory a storage pool, then per desktop `virt-clone
//!   --original SRC --name X --file DIR/X.qcow2` and `virsh start X`; SRC is a stopped domain on
//!   the seed disk with the class's memory and vCPUs (the same built-in template, without
//!   deskpool's metadata). Timed from spawn to exit, checked the same way.
//! - **sum of calls**: deskpool's own libvirt calls (the library's hypervisor layer, the
//!   functions and order of `crates/engine/src/jobs.rs`) in a plain sequential loop, each call timed:
//!   open the connection, ensure the creation pool, observe the host (`jobs::connect`); copy
//!   the seed into the creation pool (`jobs::copy_seed`, a local volume clone); then per
//!   desktop `create_overlay` + `define_desktop` (`jobs::create`) and `is_running`, `start`,
//!   `is_running`, `set_meta` to the buffer (`jobs::boot`). The figure is the sum of the calls'
//!   times: the least time deskpool's design allows when nothing runs in parallel.
//!
//! Everything is named with a random suffix, lives in a work directory under /var/lib/libvirt
//! (qemu runs as libvirt-qemu and must traverse it), and is removed between measurements and at
//! the end — also after a failure (a panic unwinds through the clean-up) or Ctrl-C/SIGTERM (the
//! children die with the signal or are killed, then the clean-up runs). The whole run holds the
//! exclusive flock on /tmp/deskpool-qemu-tests.lock that the real-host tests take, so neither
//! disturbs the other (and no test engine's desktops are on the host while deskpool runs).
//!
//! The seed is made once per process: a qcow2 of `--size-gib` (2) virtual GiB holding
//! `--data-gib` (1) GiB of random data in 64 MiB extents spread over the disk. It stays hot in
//! the page cache for all three measurements alike (dropping caches is not possible here).
//!
//! Per run it prints the three times, the breakdown of the calls, deskpool's timeline (from its
//! log: pool defined, seed copied, desktops ready, exit) and what each left on disk; then the
//! medians, and the median of the per-run ratios.
//!
//! ```text
//! scripts/libvirt-host.sh up && cargo run --release --example qemu_bench -- [--runs 3]
//!     [--desktops 20] [--data-gib 1] [--size-gib 2] [--memory-mib 256] [--vcpus 1]
//!     [--pacing N] [--deskpool PATH] [--deskpool-only P1,P2,..]
//! ```
//! (`make bench-qemu` does both.) It builds `target/release/deskpool` first (`cargo build
//! --release --bin deskpool`), unless `--deskpool PATH` names a binary. `--deskpool-only
//! 1,4,20` measures deskpool alone at each pacing, rotating, to see what pacing costs.
//! `QEMU_BENCH_LOGS=DIR` keeps deskpool's logs there; `QEMU_BENCH_VERBOSE=1` prints its JSON.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use deskpool_config as config;
use deskpool_core::model::{DesktopMeta, PoolState};
use deskpool_core::policy::{ClassSpec, Fleet};
use deskpool_core::xml::{DomainValues, fill_template};
use deskpool_hypervisor::{DEFAULT_DOMAIN_TEMPLATE, DesktopDefinition, HostConnection};

const URI: &str = "qemu:///system";
const LOCK: &str = "/tmp/deskpool-qemu-tests.lock";
const EXTENT: u64 = 64 << 20;

#[derive(Clone)]
struct Args {
    runs: usize,
    desktops: u32,
    data_gib: u64,
    size_gib: u64,
    memory_mib: u64,
    vcpus: u32,
    /// Clones and boots at once per host (deskpool's pacing); 0: as many as desktops.
    pacing: u32,
    deskpool: Option<PathBuf>,
    /// `--deskpool-only P1,P2,..`: measure deskpool alone, at each of these pacings per run.
    sweep: Vec<u32>,
}

fn args() -> Args {
    let mut a = Args {
        runs: 3,
        desktops: 20,
        data_gib: 1,
        size_gib: 2,
        memory_mib: 256,
        vcpus: 1,
        pacing: 0,
        deskpool: None,
        sweep: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--deskpool" {
            a.deskpool = Some(it.next().expect("--deskpool wants a path").into());
            continue;
        }
        if flag == "--deskpool-only" {
            let list = it
                .next()
                .expect("--deskpool-only wants pacings, e.g. 2,4,20");
            a.sweep = list
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse::<u32>()
                        .expect("a pacing is a number")
                        .max(1)
                })
                .collect();
            continue;
        }
        let value: u64 = it
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{flag} wants a number"));
        match flag.as_str() {
            "--runs" => a.runs = value.max(1) as usize,
            "--desktops" => a.desktops = value.clamp(1, 99) as u32,
            "--data-gib" => a.data_gib = value.max(1),
            "--size-gib" => a.size_gib = value.max(1),
            "--memory-mib" => a.memory_mib = value.max(64),
            "--vcpus" => a.vcpus = value.max(1) as u32,
            "--pacing" => a.pacing = value.max(1) as u32,
            other => panic!("unknown argument {other}"),
        }
    }
    if a.pacing == 0 {
        a.pacing = a.desktops;
    }
    assert!(
        a.size_gib >= a.data_gib,
        "--size-gib must hold --data-gib of data"
    );
    a
}

// ---- signals --------------------------------------------------------------------------------

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT, SIGTERM and SIGHUP only set a flag; the bench stops at its next check and cleans up.
fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs an async-signal-safe handler (one atomic store).
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

fn check_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        panic!("interrupted: cleaning up");
    }
}

// ---- outside tools --------------------------------------------------------------------------

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
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
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn names(listing: &str) -> Vec<String> {
    listing
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Waits for a child, killing it on an interruption; returns whether it succeeded.
fn wait_child(mut child: Child, what: &str) -> (bool, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            // A Ctrl-C reaches the children too: say so rather than report their failure.
            check_interrupted();
            return (status.success(), started.elapsed());
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("interrupted during {what}: cleaning up");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A unique, short suffix (hex) for this run's names.
fn suffix() -> String {
    let mut b = [0u8; 3];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("read /dev/urandom");
    format!("{:02x}{:02x}{:02x}", b[0], b[1], b[2])
}

fn uuid() -> String {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("read /dev/urandom");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn free_bytes(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs fills the struct it is given.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0, "statvfs");
    s.f_bavail as u64 * s.f_frsize as u64
}

/// Bytes allocated on disk by the files directly in `dir` and one level below.
fn disk_used(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in entries.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            total += disk_used(&e.path());
        } else {
            total += m.blocks() * 512;
        }
    }
    total
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

// ---- the bench's world ----------------------------------------------------------------------

/// What one measurement makes, removed by [`World::clear`].
#[derive(Clone)]
struct Made {
    /// Domains whose names start with this.
    domain_prefix: String,
    /// The storage pool (and its directory) the measurement's disks went to.
    pool: String,
    dir: PathBuf,
}

/// The seed pool and source domain (kept for the whole process), the lock, and every
/// measurement's leftovers; all removed when dropped, also on a panic.
struct World {
    a: Args,
    suffix: String,
    dir: tempfile::TempDir,
    class: String,
    seed_pool: String,
    seed_volume: String,
    src_domain: String,
    domain_type: String,
    pending: Vec<Made>,
    _lock: std::fs::File,
}

impl World {
    fn new(a: &Args) -> World {
        let lock = std::fs::File::create(LOCK).expect("create the lock file");
        // SAFETY: flock on a descriptor this process owns.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            println!("  waiting for {LOCK} (real-host tests are running)...");
            assert_eq!(
                unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) },
                0,
                "flock {LOCK}"
            );
        }
        // From here on a signal stops the bench through its clean-up (while waiting for the
        // lock, it just ends the process: nothing was made yet).
        catch_signals();
        // libvirtd may be restarting (a test of the daemon's death just ended): wait for it.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !Command::new("virsh")
            .args(["-c", URI, "version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(
                Instant::now() < deadline,
                "{URI} does not answer: run scripts/libvirt-host.sh up"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // An engine removes `dp-` desktops of classes it does not know: a test's leftovers
        // would be destroyed during (and counted in) the deskpool measurement.
        let foreign: Vec<String> = names(&virsh(&["list", "--all", "--name"]))
            .into_iter()
            .filter(|d| d.starts_with("dp-"))
            .collect();
        assert!(
            foreign.is_empty(),
            "qemu:///system holds deskpool desktops of someone else: {foreign:?}; remove them first"
        );
        let s = suffix();
        let dir = tempfile::Builder::new()
            .prefix(&format!("qbench-{s}-"))
            .tempdir_in("/var/lib/libvirt")
            .expect("work directory under /var/lib/libvirt");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let need = (u64::from(a.desktops) + 4) * (a.data_gib << 30);
        let free = free_bytes(dir.path());
        assert!(
            free > need,
            "{} has {:.1} GiB free; the virt-clone loop needs about {:.1} GiB",
            dir.path().display(),
            gib(free),
            gib(need)
        );
        let conn = HostConnection::open(URI, true).expect("connect to qemu:///system");
        let domain_type = conn.domain_type().to_string();
        drop(conn);
        World {
            a: a.clone(),
            class: format!("qb{s}"),
            seed_pool: format!("qbs-{s}"),
            seed_volume: "seed.qcow2".into(),
            src_domain: format!("qb-{s}-src"),
            suffix: s,
            dir,
            domain_type,
            pending: Vec::new(),
            _lock: lock,
        }
    }

    fn seeds_dir(&self) -> PathBuf {
        self.dir.path().join("seeds")
    }

    fn seed_path(&self) -> PathBuf {
        self.seeds_dir().join(&self.seed_volume)
    }

    /// The seed qcow2 (random data in 64 MiB extents spread evenly over the virtual disk), its
    /// storage pool, and the stopped source domain of the virt-clone loop.
    fn make_seed(&self) -> Duration {
        let t = Instant::now();
        std::fs::create_dir(self.seeds_dir()).unwrap();
        let raw = self.seeds_dir().join("seed.raw");
        let size = self.a.size_gib << 30;
        let extents = (self.a.data_gib << 30) / EXTENT;
        let slots = size / EXTENT;
        {
            let mut f = std::fs::File::create(&raw).unwrap();
            f.set_len(size).unwrap();
            let mut urandom = std::fs::File::open("/dev/urandom").unwrap();
            let mut buf = vec![0u8; EXTENT as usize];
            for i in 0..extents {
                check_interrupted();
                urandom.read_exact(&mut buf).unwrap();
                f.seek(SeekFrom::Start(i * slots / extents * EXTENT))
                    .unwrap();
                f.write_all(&buf).unwrap();
            }
        }
        run(
            "qemu-img",
            &[
                "convert",
                "-q",
                "-f",
                "raw",
                "-O",
                "qcow2",
                raw.to_str().unwrap(),
                self.seed_path().to_str().unwrap(),
            ],
        );
        std::fs::remove_file(&raw).unwrap();
        virsh(&[
            "pool-create-as",
            &self.seed_pool,
            "dir",
            "--target",
            self.seeds_dir().to_str().unwrap(),
        ]);
        let uuid = uuid();
        let seed = self.seed_path();
        let xml = fill_template(
            DEFAULT_DOMAIN_TEMPLATE,
            &DomainValues {
                name: &self.src_domain,
                uuid: &uuid,
                memory_mib: self.a.memory_mib,
                vcpus: self.a.vcpus,
                disk_path: seed.to_str().unwrap(),
                disk_format: "qcow2",
                domain_type: &self.domain_type,
                display_password: "bench0pw",
            },
        );
        let file = self.dir.path().join("src.xml");
        std::fs::write(&file, xml).unwrap();
        virsh(&["define", file.to_str().unwrap()]);
        t.elapsed()
    }

    /// The deskpool configuration of one measurement: one host (this one), one class with a
    /// buffer of exactly N, the creation pool `pool` at `dir`.
    fn write_config(
        &self,
        file: &Path,
        pool: &str,
        dir: &Path,
        state: &Path,
        pacing: u32,
    ) -> Fleet {
        let a = &self.a;
        let n = a.desktops;
        let toml = format!(
            "[engine]\ntick_secs = 1\nresync_secs = 30\ncreation_pool = \"{pool}\"\n\
             creation_pool_path = \"{}\"\nstate_dir = \"{}\"\n\n\
             [[hosts]]\nname = \"local\"\nuri = \"{URI}\"\ncapacity = {{ desktops = {n} }}\n\n\
             [[classes]]\nname = \"{class}\"\nmemory_mib = {}\nvcpus = {}\ndisk_gib = {}\n\
             seed = {{ pool = \"{}\", volume = \"{}\", version = \"v1\" }}\n\n\
             [classes.policy]\ncap = {n}\nbuffer = {{ floor = {n}, percent = 0, ceiling = {n} }}\n\
             scale_down_delay_secs = 0\npacing = {{ clones_per_host = {p}, boots_per_host = {p} }}\n",
            dir.display(),
            state.display(),
            a.memory_mib,
            a.vcpus,
            a.size_gib,
            self.seed_pool,
            self.seed_volume,
            class = self.class,
            p = pacing,
        );
        std::fs::write(file, toml).unwrap();
        config::load_file(file).unwrap_or_else(|e| panic!("bench config invalid:\n{e}"))
    }

    /// Domains whose names start with `prefix`: (all defined, running).
    fn domains(&self, prefix: &str) -> (Vec<String>, Vec<String>) {
        let pick = |all: bool| -> Vec<String> {
            let mut args = vec!["list", "--name"];
            if all {
                args.push("--all");
            }
            let mut v: Vec<String> = names(&virsh(&args))
                .into_iter()
                .filter(|d| d.starts_with(prefix))
                .collect();
            v.sort();
            v
        };
        (pick(true), pick(false))
    }

    /// From outside: exactly N domains named `prefix*` exist and all run.
    fn verify(&self, what: &str, prefix: &str) {
        let (all, running) = self.domains(prefix);
        assert_eq!(
            running.len(),
            self.a.desktops as usize,
            "{what}: virsh list shows {} running desktops, want {}: {running:?}",
            running.len(),
            self.a.desktops
        );
        assert_eq!(all, running, "{what}: every desktop runs");
    }

    /// Removes what a measurement made: its domains (destroyed, undefined), its pool, its
    /// directory.
    fn clear(&mut self, made: &Made) {
        let listing = Command::new("virsh")
            .args(["-c", URI, "list", "--all", "--name"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for d in names(&listing) {
            if d.starts_with(&made.domain_prefix) {
                virsh_quiet(&["destroy", &d]);
                virsh_quiet(&["undefine", &d]);
            }
        }
        virsh_quiet(&["pool-destroy", &made.pool]);
        virsh_quiet(&["pool-undefine", &made.pool]);
        let _ = std::fs::remove_dir_all(&made.dir);
        self.pending.retain(|m| m.pool != made.pool);
    }

    /// Storage pools whose directory lies in the work directory (virt-install's tools define
    /// one for a directory they are given when none covers it).
    fn pools_in_work_dir(&self) -> Vec<String> {
        let Ok(out) = Command::new("virsh")
            .args(["-c", URI, "pool-list", "--all", "--name"])
            .output()
        else {
            return Vec::new();
        };
        let root = self.dir.path().to_str().unwrap().to_string();
        names(&String::from_utf8_lossy(&out.stdout))
            .into_iter()
            .filter(|p| {
                Command::new("virsh")
                    .args(["-c", URI, "pool-dumpxml", p])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("<path>{root}")))
                    .unwrap_or(false)
            })
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for made in self.pending.clone() {
            self.clear(&made);
        }
        // Anything named with the suffix (a measurement interrupted before it was recorded).
        let listing = Command::new("virsh")
            .args(["-c", URI, "list", "--all", "--name"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for d in names(&listing) {
            if d.contains(&self.suffix) {
                virsh_quiet(&["destroy", &d]);
                virsh_quiet(&["undefine", &d]);
            }
        }
        for p in self.pools_in_work_dir() {
            virsh_quiet(&["pool-destroy", &p]);
            virsh_quiet(&["pool-undefine", &p]);
        }
        virsh_quiet(&["pool-destroy", &self.seed_pool]);
        // The directory goes with `dir` (TempDir), then the lock is released.
    }
}

// ---- the three measurements -----------------------------------------------------------------

struct DeskpoolRun {
    secs: f64,
    json: String,
    /// Bytes its creation pool holds on disk at the end.
    disk: u64,
    /// Where its time went, from its log.
    timeline: String,
}

/// Seconds from `start` to the log's milestones: creation pool defined (connected), seed
/// copied, first, middle and last desktop ready in the buffer.
fn timeline(log: &str, start: std::time::SystemTime, exit: f64) -> String {
    let start = jiff::Timestamp::try_from(start).unwrap();
    let at = |line: &str| -> Option<f64> {
        let t: jiff::Timestamp = line.split_whitespace().next()?.parse().ok()?;
        Some(t.duration_since(start).as_secs_f64())
    };
    let first = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .and_then(at)
            .map_or("-".to_string(), |s| format!("{s:.2}"))
    };
    let ready: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("ready in the buffer"))
        .filter_map(at)
        .collect();
    let nth = |i: usize| ready.get(i).map_or("-".to_string(), |s| format!("{s:.2}"));
    format!(
        "pool defined +{}, seed copy +{} to +{}, desktops ready: 1st +{}, {}th +{}, last +{}, exit +{exit:.2} s",
        first("defining creation pool"),
        first("cloning seed volume"),
        first("seed v1 copied"),
        nth(0),
        ready.len().div_ceil(2),
        nth(ready.len().div_ceil(2).saturating_sub(1)),
        nth(ready.len().saturating_sub(1)),
    )
}

fn deskpool_run(w: &mut World, exe: &Path, run_no: usize, pacing: u32) -> DeskpoolRun {
    let tag = format!("r{run_no}p{pacing}");
    let base = w.dir.path().join(format!("deskpool-{tag}"));
    std::fs::create_dir(&base).unwrap();
    let made = Made {
        domain_prefix: format!("dp-{}-", w.class),
        pool: format!("qbd-{}-{tag}", w.suffix),
        dir: base.clone(),
    };
    w.pending.push(made.clone());
    let file = base.join("deskpool.toml");
    w.write_config(
        &file,
        &made.pool,
        &base.join("pool"),
        &base.join("state"),
        pacing,
    );
    let spawned = std::time::SystemTime::now();
    let child = Command::new(exe)
        .args(["reconcile", "--until-steady", "--json", "--timeout", "600"])
        .arg("--config")
        .arg(&file)
        .env("HOME", &base)
        .env("XDG_CONFIG_HOME", base.join("config"))
        .env("XDG_STATE_HOME", base.join("state"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(base.join("stdout")).unwrap())
        .stderr(std::fs::File::create(base.join("stderr")).unwrap())
        .spawn()
        .expect("start deskpool");
    let (ok, took) = wait_child(child, "deskpool reconcile");
    let json = std::fs::read_to_string(base.join("stdout")).unwrap_or_default();
    assert!(
        ok,
        "deskpool reconcile failed: {json}{}",
        std::fs::read_to_string(base.join("stderr")).unwrap_or_default()
    );
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("reconcile --json");
    assert_eq!(
        v["classes"][0]["buffer"].as_u64(),
        Some(u64::from(w.a.desktops)),
        "{json}"
    );
    w.verify("deskpool", &made.domain_prefix);
    let log = base.join("state").join("deskpool.log");
    let timeline = timeline(
        &std::fs::read_to_string(&log).unwrap_or_default(),
        spawned,
        took.as_secs_f64(),
    );
    if let Some(keep) = std::env::var_os("QEMU_BENCH_LOGS") {
        let keep = Path::new(&keep);
        let _ = std::fs::create_dir_all(keep);
        let _ = std::fs::copy(&log, keep.join(format!("deskpool-{}-{tag}.log", w.suffix)));
    }
    let disk = disk_used(&made.dir);
    w.clear(&made);
    DeskpoolRun {
        secs: took.as_secs_f64(),
        json: json.trim().to_string(),
        disk,
        timeline,
    }
}

/// Seconds, and bytes the clones hold on disk.
fn virt_clone_run(w: &mut World, run_no: usize) -> (f64, u64) {
    let tag = format!("r{run_no}");
    let dir = w.dir.path().join(format!("clones-{tag}"));
    let made = Made {
        domain_prefix: format!("qb-{}-{tag}c", w.suffix),
        pool: format!("qbc-{}-{tag}", w.suffix),
        dir: dir.clone(),
    };
    w.pending.push(made.clone());
    let script = format!(
        "set -euo pipefail\n\
         mkdir -p {dir}\n\
         virsh -q -c {URI} pool-create-as {pool} dir --target {dir} >/dev/null\n\
         for i in $(seq -w 1 {n}); do\n\
         \x20 name={prefix}$i\n\
         \x20 virt-clone --connect {URI} --quiet --original {src} --name $name --file {dir}/$name.qcow2\n\
         \x20 virsh -q -c {URI} start $name >/dev/null\n\
         done\n",
        dir = dir.display(),
        pool = made.pool,
        n = w.a.desktops,
        prefix = made.domain_prefix,
        src = w.src_domain,
    );
    let log = w.dir.path().join(format!("virt-clone-{tag}.log"));
    let child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
        ))
        .spawn()
        .expect("start bash");
    let (ok, took) = wait_child(child, "the virt-clone loop");
    assert!(
        ok,
        "the virt-clone loop failed:\n{script}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    w.verify("virt-clone loop", &made.domain_prefix);
    let disk = disk_used(&made.dir);
    w.clear(&made);
    (took.as_secs_f64(), disk)
}

/// Seconds spent in each kind of call of the sequential loop.
#[derive(Default, Clone, Copy)]
struct Calls {
    connect: f64,
    seed: f64,
    overlay: f64,
    define: f64,
    start: f64,
    relabel: f64,
    wall: f64,
    disk: u64,
}

impl Calls {
    fn sum(&self) -> f64 {
        self.connect + self.seed + self.overlay + self.define + self.start + self.relabel
    }
}

fn timed<T>(acc: &mut f64, f: impl FnOnce() -> T) -> T {
    check_interrupted();
    let t = Instant::now();
    let v = f();
    *acc += t.elapsed().as_secs_f64();
    v
}

fn calls_run(w: &mut World, run_no: usize) -> Calls {
    let tag = format!("r{run_no}");
    let base = w.dir.path().join(format!("calls-{tag}"));
    std::fs::create_dir(&base).unwrap();
    let made = Made {
        domain_prefix: format!("dp-{}-{tag}n", w.class),
        pool: format!("qbr-{}-{tag}", w.suffix),
        dir: base.clone(),
    };
    w.pending.push(made.clone());
    let fleet = w.write_config(
        &base.join("deskpool.toml"),
        &made.pool,
        &base.join("pool"),
        &base.join("state"),
        w.a.pacing,
    );
    let class: &ClassSpec = &fleet.classes[0];
    let (pool, pool_path) = (
        fleet.engine.creation_pool.clone(),
        base.join("pool").to_str().unwrap().to_string(),
    );
    let mut c = Calls::default();
    let t = Instant::now();
    // jobs::connect
    let conn = timed(&mut c.connect, || {
        HostConnection::open(URI, false).expect("open")
    });
    timed(&mut c.connect, || {
        conn.ensure_creation_pool(&pool, &pool_path)
            .expect("creation pool")
    });
    timed(&mut c.connect, || {
        conn.observe("local", &pool, &fleet.classes)
            .expect("observe")
    });
    // jobs::copy_seed (same host: a volume clone)
    let seed = timed(&mut c.seed, || {
        conn.copy_seed_local(
            &class.seed.pool,
            &class.seed.volume,
            &pool,
            &class.name,
            &class.seed.version,
            &|_, _| {},
        )
        .expect("seed copy")
    });
    let now = jiff::Timestamp::now().as_second();
    for i in 0..w.a.desktops {
        let name = format!("{}{i:02}", made.domain_prefix);
        let mut meta = DesktopMeta {
            class: class.name.clone(),
            pool: PoolState::Creation,
            seed_version: class.seed.version.clone(),
            user: None,
            created_at: now,
            changed_at: now,
            attempts: 0,
        };
        // jobs::create
        let disk_path = timed(&mut c.overlay, || {
            conn.create_overlay(&pool, &name, &seed, class.disk_gib.saturating_mul(1 << 30))
                .expect("overlay")
        });
        timed(&mut c.define, || {
            conn.define_desktop(&DesktopDefinition {
                name: &name,
                class,
                disk_path: &disk_path,
                disk_format: "qcow2",
                meta: &meta,
                display_password: "test0pw1",
            })
            .expect("define")
        });
        // jobs::boot
        timed(&mut c.start, || {
            if !conn.is_running(&name).expect("is running") {
                conn.start(&name).expect("start");
            }
            assert!(
                conn.is_running(&name).expect("is running"),
                "{name} stopped"
            );
        });
        meta.pool = PoolState::Buffer;
        timed(&mut c.relabel, || {
            conn.set_meta(&name, &meta).expect("set meta")
        });
    }
    c.wall = t.elapsed().as_secs_f64();
    drop(conn);
    w.verify("sequential calls", &made.domain_prefix);
    c.disk = disk_used(&made.dir);
    w.clear(&made);
    c
}

/// deskpool alone at several pacings (rotating order per run): where its time goes.
fn sweep(w: &mut World, exe: &Path) {
    let (runs, pacings) = (w.a.runs, w.a.sweep.clone());
    let mut secs: Vec<Vec<f64>> = vec![Vec::new(); pacings.len()];
    for i in 0..runs {
        for k in 0..pacings.len() {
            let j = (k + i) % pacings.len();
            let d = deskpool_run(w, exe, i + 1, pacings[j]);
            println!(
                "  run {} pacing {:>2}: deskpool {:.2} s   ({})",
                i + 1,
                pacings[j],
                d.secs,
                d.timeline
            );
            secs[j].push(d.secs);
        }
    }
    for (p, s) in pacings.iter().zip(&secs) {
        println!("  median pacing {p:>2}: deskpool {:.2} s", median(s));
    }
}

// ---- main -----------------------------------------------------------------------------------

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// The deskpool binary: `--deskpool PATH`, else target/release/deskpool, built (or found up to
/// date) by cargo first — `cargo run --example` does not build the package's binaries.
fn deskpool_exe(a: &Args) -> PathBuf {
    if let Some(p) = &a.deskpool {
        return p.clone();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--release", "--quiet", "--bin", "deskpool"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "cargo build --release --bin deskpool failed"
    );
    // target/release/examples/qemu_bench -> target/release/deskpool
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("deskpool"))
        .unwrap();
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

fn main() {
    let a = args();
    let exe = deskpool_exe(&a);
    let mut w = World::new(&a);
    let seed_took = w.make_seed();
    let info = run(
        "qemu-img",
        &["info", "--output=json", w.seed_path().to_str().unwrap()],
    );
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let gib_of = |v: &serde_json::Value| v.as_u64().map_or(0.0, gib);
    println!(
        "qemu_bench: {URI} (domain type {}), {} desktops of {} MiB / {} vCPU from a qcow2 seed of \
         {:.2} GiB virtual holding {:.2} GiB of random data (made in {:.1} s); deskpool pacing {p} \
         clones + {p} boots per host, tick 1 s; {} free in {}; {} runs, order rotating",
        w.domain_type,
        a.desktops,
        a.memory_mib,
        a.vcpus,
        gib_of(&info["virtual-size"]),
        gib_of(&info["actual-size"]),
        seed_took.as_secs_f64(),
        format_args!("{:.1} GiB", gib(free_bytes(w.dir.path()))),
        w.dir.path().display(),
        a.runs,
        p = a.pacing,
    );
    if !a.sweep.is_empty() {
        sweep(&mut w, &exe);
        return;
    }
    let (mut dp, mut vc, mut sums, mut speedups, mut design) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..a.runs {
        let run_no = i + 1;
        let mut d = None;
        let mut v = None;
        let mut c = None;
        let mut order = Vec::new();
        for k in 0..3 {
            check_interrupted();
            match (k + i) % 3 {
                0 => {
                    order.push("deskpool");
                    d = Some(deskpool_run(&mut w, &exe, run_no, a.pacing));
                }
                1 => {
                    order.push("virt-clone");
                    v = Some(virt_clone_run(&mut w, run_no));
                }
                _ => {
                    order.push("calls");
                    c = Some(calls_run(&mut w, run_no));
                }
            }
        }
        let (d, (v, v_disk), c) = (d.unwrap(), v.unwrap(), c.unwrap());
        let (speedup, vs_sum) = (v / d.secs, d.secs / c.sum());
        println!(
            "  run {run_no} ({}): deskpool {:.2} s   virt-clone loop {:.2} s   sum of calls {:.2} s \
             (connect {:.2}, seed copy {:.2}, overlays {:.2}, defines {:.2}, starts {:.2}, \
             relabels {:.2}; loop wall {:.2})   virt-clone/deskpool {:.1}x   deskpool/sum {:.2}",
            order.join(", "),
            d.secs,
            v,
            c.sum(),
            c.connect,
            c.seed,
            c.overlay,
            c.define,
            c.start,
            c.relabel,
            c.wall,
            speedup,
            vs_sum,
        );
        println!("    deskpool timeline: {}", d.timeline);
        println!(
            "    on disk at the end: deskpool {:.2} GiB, virt-clone loop {:.2} GiB, calls {:.2} GiB",
            gib(d.disk),
            gib(v_disk),
            gib(c.disk)
        );
        if std::env::var_os("QEMU_BENCH_VERBOSE").is_some() {
            println!("    deskpool said: {}", d.json);
        }
        dp.push(d.secs);
        vc.push(v);
        sums.push(c.sum());
        speedups.push(speedup);
        design.push(vs_sum);
    }
    let (md, mv, ms) = (median(&dp), median(&vc), median(&sums));
    let (mx, mr) = (median(&speedups), median(&design));
    println!(
        "  median: deskpool {md:.2} s   virt-clone loop {mv:.2} s   sum of calls {ms:.2} s   \
         virt-clone/deskpool {mx:.1}x (min {:.1}, max {:.1}; aim >= 5)   deskpool/sum {mr:.2} \
         (min {:.2}, max {:.2}; aim <= 2)",
        speedups.iter().copied().fold(f64::INFINITY, f64::min),
        speedups.iter().copied().fold(0.0, f64::max),
        design.iter().copied().fold(f64::INFINITY, f64::min),
        design.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "RESULT qemu: empty host to {} running buffered desktops on {URI} ({}) from a seed holding \
         {} GiB: deskpool {md:.2} s, virt-clone + virsh start loop {mv:.2} s, deskpool's own calls \
         in sequence {ms:.2} s; median ratios over {} runs: virt-clone loop/deskpool {mx:.1}x, \
         deskpool/sum of its calls {mr:.2}",
        a.desktops, w.domain_type, a.data_gib, a.runs,
    );
    drop(w);
}
