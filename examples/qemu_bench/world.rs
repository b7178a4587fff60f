//! The bench's world: the lock, the work directory, the seed pool and source domain kept for
//! the whole process, and every measurement's leftovers, removed when dropped (also on a panic).

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deskpool_config as config;
use deskpool_core::policy::Fleet;
use deskpool_core::xml::{DomainValues, builtin_template, fill_template};
use deskpool_hypervisor::HostConnection;

use crate::tools::{
    catch_signals, check_interrupted, free_bytes, gib, names, run, suffix, uuid, virsh, virsh_quiet,
};
use crate::{Args, EXTENT, LOCK, URI};

/// What one measurement makes, removed by [`World::clear`].
#[derive(Clone)]
pub(crate) struct Made {
    /// Domains whose names start with this.
    pub(crate) domain_prefix: String,
    /// The storage pool (and its directory) the measurement's disks went to.
    pub(crate) pool: String,
    pub(crate) dir: PathBuf,
}

/// The seed pool and source domain (kept for the whole process), the lock, and every
/// measurement's leftovers; all removed when dropped, also on a panic.
pub(crate) struct World {
    pub(crate) a: Args,
    pub(crate) suffix: String,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) class: String,
    pub(crate) seed_pool: String,
    pub(crate) seed_volume: String,
    pub(crate) src_domain: String,
    pub(crate) domain_type: String,
    pub(crate) pending: Vec<Made>,
    pub(crate) _lock: std::fs::File,
}

impl World {
    pub(crate) fn new(a: &Args) -> World {
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

    pub(crate) fn seeds_dir(&self) -> PathBuf {
        self.dir.path().join("seeds")
    }

    pub(crate) fn seed_path(&self) -> PathBuf {
        self.seeds_dir().join(&self.seed_volume)
    }

    /// The seed qcow2 (random data in 64 MiB extents spread evenly over the virtual disk), its
    /// storage pool, and the stopped source domain of the virt-clone loop.
    pub(crate) fn make_seed(&self) -> Duration {
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
        // The template deskpool's class (ready = "running") gets.
        let xml = fill_template(
            &builtin_template(false),
            &DomainValues {
                name: &self.src_domain,
                uuid: &uuid,
                memory_mib: self.a.memory_mib,
                vcpus: self.a.vcpus,
                disk_path: seed.to_str().unwrap(),
                disk_format: "qcow2",
                domain_type: &self.domain_type,
                display_password: "bench0pw",
                boot: None,
            },
        );
        let file = self.dir.path().join("src.xml");
        std::fs::write(&file, xml).unwrap();
        virsh(&["define", file.to_str().unwrap()]);
        t.elapsed()
    }

    /// The deskpool configuration of one measurement: one host (this one), one class with a
    /// buffer of exactly N, the creation pool `pool` at `dir`.
    pub(crate) fn write_config(
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
             ready = \"running\"\n\
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
    pub(crate) fn domains(&self, prefix: &str) -> (Vec<String>, Vec<String>) {
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
    pub(crate) fn verify(&self, what: &str, prefix: &str) {
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
    pub(crate) fn clear(&mut self, made: &Made) {
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
    pub(crate) fn pools_in_work_dir(&self) -> Vec<String> {
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
