//! The three measurements (deskpool, the virt-clone loop, the sum of deskpool's calls), and
//! deskpool alone at several pacings.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use deskpool_core::model::{DesktopMeta, PoolState};
use deskpool_core::policy::ClassSpec;
use deskpool_hypervisor::{DesktopDefinition, HostConnection};

use crate::tools::{check_interrupted, disk_used, wait_child};
use crate::world::{Made, World};
use crate::{URI, median};

pub(crate) struct DeskpoolRun {
    pub(crate) secs: f64,
    pub(crate) json: String,
    /// Bytes its creation pool holds on disk at the end.
    pub(crate) disk: u64,
    /// Where its time went, from its log.
    pub(crate) timeline: String,
}

/// Seconds from `start` to the log's milestones: creation pool defined (connected), seed
/// copied, first, middle and last desktop ready in the buffer.
pub(crate) fn timeline(log: &str, start: std::time::SystemTime, exit: f64) -> String {
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

pub(crate) fn deskpool_run(w: &mut World, exe: &Path, run_no: usize, pacing: u32) -> DeskpoolRun {
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
pub(crate) fn virt_clone_run(w: &mut World, run_no: usize) -> (f64, u64) {
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
pub(crate) struct Calls {
    pub(crate) connect: f64,
    pub(crate) seed: f64,
    pub(crate) overlay: f64,
    pub(crate) define: f64,
    pub(crate) start: f64,
    pub(crate) relabel: f64,
    pub(crate) wall: f64,
    pub(crate) disk: u64,
}

impl Calls {
    pub(crate) fn sum(&self) -> f64 {
        self.connect + self.seed + self.overlay + self.define + self.start + self.relabel
    }
}

pub(crate) fn timed<T>(acc: &mut f64, f: impl FnOnce() -> T) -> T {
    check_interrupted();
    let t = Instant::now();
    let v = f();
    *acc += t.elapsed().as_secs_f64();
    v
}

pub(crate) fn calls_run(w: &mut World, run_no: usize) -> Calls {
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
            term: 0,
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
pub(crate) fn sweep(w: &mut World, exe: &Path) {
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
