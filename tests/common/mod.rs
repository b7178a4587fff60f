//! Shared set-up for the integration tests: test-driver hosts in a temporary directory and a
//! fleet described in TOML through the real config loader.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use deskpool_api::EngineHandle;
use deskpool_api::Snapshot;
use deskpool_config as config;
use deskpool_core::clock::{Clock, SystemClock};
use deskpool_core::model::{HostObservation, PoolState};
use deskpool_core::policy::Fleet;
use deskpool_engine::run::{self, Connections, EngineOptions};
use deskpool_hypervisor::testbed;

/// How long any wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub struct Bed {
    pub dir: tempfile::TempDir,
    pub fleet: Fleet,
    pub connections: Connections,
}

impl Bed {
    /// Writes one test-driver node file per host name (seed pool `seeds` with one volume per
    /// class `<class>.qcow2`) and loads `toml`, where `@DIR@` stands for the directory.
    pub fn new(hosts: &[&str], classes: &[&str], toml: &str) -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let seeds: Vec<(String, String, u64)> = classes
            .iter()
            .map(|c| ("seeds".to_string(), format!("{c}.qcow2"), 10 << 30))
            .collect();
        let seeds: Vec<(&str, &str, u64)> = seeds
            .iter()
            .map(|(p, v, c)| (p.as_str(), v.as_str(), *c))
            .collect();
        for h in hosts {
            testbed::write_demo_node(&dir.path().join(format!("{h}.xml")), &seeds).unwrap();
        }
        let text = toml.replace("@DIR@", &dir.path().display().to_string());
        let path = dir.path().join("deskpool.toml");
        std::fs::write(&path, &text).unwrap();
        let fleet =
            config::load_file(&path).unwrap_or_else(|e| panic!("test config is invalid:\n{e}"));
        Bed {
            dir,
            fleet,
            connections: Connections::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn start(&self) -> EngineHandle {
        self.start_with(Arc::new(SystemClock))
    }

    pub fn start_with(&self, clock: Arc<dyn Clock>) -> EngineHandle {
        run::start(
            self.fleet.clone(),
            EngineOptions {
                clock,
                read_only: false,
                paused: false,
                connections: self.connections.clone(),
                state_dir: None,
                simulated_steps: Default::default(),
                leadership: None,
            },
        )
    }

    /// Reads a host directly through libvirt (not through the engine's cache).
    pub fn observe(&self, host: &str) -> HostObservation {
        let conn = self
            .connections
            .get(host)
            .unwrap_or_else(|| panic!("host {host} is not connected"));
        conn.observe(host, &self.fleet.engine.creation_pool, &self.fleet.classes)
            .unwrap()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Waits for a snapshot satisfying `ready`; fails the test with the last snapshot otherwise.
pub async fn wait(
    engine: &mut EngineHandle,
    what: &str,
    ready: impl FnMut(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    match engine.wait_for(DEADLINE, ready).await {
        Ok(s) => s,
        Err(s) => panic!(
            "timed out waiting for {what}; last snapshot:\n{}",
            deskpool::report::table(&s)
        ),
    }
}

pub fn class<'a>(s: &'a Snapshot, name: &str) -> &'a deskpool_api::ClassStatus {
    s.classes
        .iter()
        .find(|c| c.plan.name == name)
        .unwrap_or_else(|| panic!("no class {name}"))
}

pub fn host<'a>(s: &'a Snapshot, name: &str) -> &'a deskpool_api::HostState {
    s.hosts
        .iter()
        .find(|h| h.name == name)
        .unwrap_or_else(|| panic!("no host {name}"))
}

/// Counts the desktops of `class` in `pool` on a host, as libvirt reports them.
pub fn count(o: &HostObservation, class: &str, pool: PoolState) -> usize {
    o.desktops
        .iter()
        .filter(|d| d.meta.class == class && d.meta.pool == pool)
        .count()
}

/// Every desktop volume belongs to a labelled desktop; no unlabelled domain; every seed copy
/// complete: nothing on the host that nothing accounts for.
pub fn assert_nothing_leaked(o: &HostObservation) {
    assert!(
        o.unlabelled_desktops.is_empty(),
        "unlabelled domains left: {:?}",
        o.unlabelled_desktops
    );
    for v in &o.desktop_volumes {
        let owner = v.strip_suffix(".qcow2").unwrap_or(v);
        assert!(
            o.desktops.iter().any(|d| d.name == owner),
            "volume {v} belongs to no desktop"
        );
    }
    for d in &o.desktops {
        assert_ne!(
            d.meta.pool,
            PoolState::Retired,
            "retired desktop {} left",
            d.name
        );
        assert_ne!(
            d.meta.pool,
            PoolState::Creation,
            "half-made desktop {} left",
            d.name
        );
        assert!(d.running, "desktop {} is not running", d.name);
    }
    assert!(
        o.seed_copies.iter().all(|c| c.complete),
        "incomplete seed copy left: {:?}",
        o.seed_copies
    );
}

/// A host entry for the test config.
pub fn host_toml(name: &str, desktops: u32, standby: bool, extra: &str) -> String {
    format!(
        "[[hosts]]\nname = \"{name}\"\nuri = \"test://@DIR@/{name}.xml\"\ncapacity = {{ desktops = {desktops} }}\nstandby = {standby}\n{extra}\n"
    )
}

/// A class entry for the test config, with a buffer floor (= ceiling) and room to spare.
pub fn class_toml(name: &str, floor: u32, extra_policy: &str) -> String {
    format!(
        "[[classes]]\nname = \"{name}\"\nmemory_mib = 1024\nvcpus = 1\ndisk_gib = 10\nseed = {{ pool = \"seeds\", volume = \"{name}.qcow2\", version = \"v1\" }}\n\n[classes.policy]\ncap = 100\nbuffer = {{ floor = {floor}, percent = 0, ceiling = {floor} }}\nscale_down_delay_secs = 0\n{extra_policy}\n"
    )
}

pub const ENGINE_TOML: &str = "[engine]\ntick_secs = 1\nresync_secs = 1\nretry_base_secs = 1\nretry_max_secs = 2\nstandby_idle_secs = 1\ncreation_pool_path = \"/deskpool-test\"\n";
