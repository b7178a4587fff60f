//! Provisions 2,000 desktops across 4 libvirt test-driver hosts with the real engine, from empty
//! to steady, and compares it in the same run with a plain sequential loop of the same libvirt
//! calls on 4 fresh hosts. Engine and loop runs alternate, each on fresh node files, so that the
//! noise of a shared machine falls on both; the figure to quote is the median ratio.
//!
//! Engine run: `run::start` to the first snapshot with `steady` set (every class at its buffer
//! target, nothing in flight, every host settled), then a check through libvirt that the hosts
//! hold exactly the desktops asked, all running and in the buffer.
//!
//! Loop run, timed the same way from nothing: per host, open the connection, ensure the creation
//! pool, copy the seed once; then per desktop, sequentially: create the overlay volume, define
//! the domain (`define_desktop`, labelled "creation"), start it, relabel it "buffer" (`set_meta`)
//! — the engine's own order of calls.
//!
//! ```text
//! cargo run --release --example provision_bench -- [--runs N] [--desktops N] [--hosts N]
//!                                                  [--classes N] [--pacing N]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use deskpool_config as config;
use deskpool_core::clock::SystemClock;
use deskpool_core::model::{DesktopMeta, PoolState};
use deskpool_core::policy::Fleet;
use deskpool_engine::run::{self, Connections, EngineOptions};
use deskpool_hypervisor::{DesktopDefinition, HostConnection, testbed};

const CREATION_POOL: &str = "deskpool";
const CREATION_POOL_PATH: &str = "/deskpool-bench";

#[derive(Clone, Copy)]
struct Args {
    runs: usize,
    desktops: u32,
    hosts: usize,
    classes: u32,
    pacing: u32,
}

fn args() -> Args {
    let mut a = Args {
        runs: 5,
        desktops: 2000,
        hosts: 4,
        classes: 1,
        pacing: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} wants a number"))
        };
        match flag.as_str() {
            "--runs" => a.runs = value().max(1) as usize,
            "--desktops" => a.desktops = value().max(1) as u32,
            "--hosts" => a.hosts = value().max(1) as usize,
            "--classes" => a.classes = value().max(1) as u32,
            "--pacing" => a.pacing = value().max(1) as u32,
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn class_name(c: u32) -> String {
    format!("class{c}")
}

/// Node files for the hosts in a fresh directory, and the fleet's config over them: per class,
/// a buffer floor = ceiling (the floors sum to `desktops`), room to spare on every host.
fn bed(a: Args) -> (tempfile::TempDir, Fleet) {
    let dir = tempfile::tempdir().unwrap();
    let seeds: Vec<(String, String, u64)> = (0..a.classes)
        .map(|c| ("seeds".into(), format!("{}.qcow2", class_name(c)), 10 << 30))
        .collect();
    let seeds: Vec<(&str, &str, u64)> = seeds
        .iter()
        .map(|(p, v, n)| (p.as_str(), v.as_str(), *n))
        .collect();
    let mut toml = format!(
        "[engine]\ntick_secs = 1\nresync_secs = 30\ncreation_pool = \"{CREATION_POOL}\"\n\
         creation_pool_path = \"{CREATION_POOL_PATH}\"\n\n"
    );
    let per_host_room = a.desktops; // every host could hold them all
    for h in 0..a.hosts {
        let path = dir.path().join(format!("h{h}.xml"));
        testbed::write_demo_node(&path, &seeds).unwrap();
        toml.push_str(&format!(
            "[[hosts]]\nname = \"h{h}\"\nuri = \"{}\"\ncapacity = {{ desktops = {per_host_room} }}\n\n",
            testbed::demo_uri(&path).unwrap()
        ));
    }
    for c in 0..a.classes {
        let floor = a.desktops / a.classes + u32::from(c < a.desktops % a.classes);
        toml.push_str(&format!(
            // ready = "running": the loop it is compared with makes the same libvirt calls.
            "[[classes]]\nname = \"{name}\"\nmemory_mib = 1024\nvcpus = 1\ndisk_gib = 10\n\
             ready = \"running\"\n\
             seed = {{ pool = \"seeds\", volume = \"{name}.qcow2\", version = \"v1\" }}\n\n\
             [classes.policy]\ncap = {floor}\nbuffer = {{ floor = {floor}, percent = 0, ceiling = {floor} }}\n\
             scale_down_delay_secs = 0\npacing = {{ clones_per_host = {p}, boots_per_host = {p} }}\n\n",
            name = class_name(c),
            p = a.pacing,
        ));
    }
    let file = dir.path().join("deskpool.toml");
    std::fs::write(&file, &toml).unwrap();
    let fleet = config::load_file(&file).unwrap_or_else(|e| panic!("bench config invalid:\n{e}"));
    (dir, fleet)
}

/// Counts, through libvirt, the running buffer desktops on the hosts; panics on anything else.
fn check_hosts(fleet: &Fleet, conns: &[(String, HostConnection)], want: u32) {
    let mut total = 0;
    for (name, conn) in conns {
        let o = conn
            .observe(name, CREATION_POOL, &fleet.classes)
            .expect("observe");
        for d in &o.desktops {
            assert!(
                d.running && d.meta.pool == PoolState::Buffer,
                "{} not ready: {:?}",
                d.name,
                d.meta
            );
        }
        assert!(o.unlabelled_desktops.is_empty(), "unlabelled domains left");
        assert_eq!(
            o.desktop_volumes.len(),
            o.desktops.len(),
            "volumes and desktops differ on {name}"
        );
        total += o.desktops.len() as u32;
    }
    assert_eq!(total, want, "desktops on the hosts");
}

struct EngineRun {
    secs: f64,
    cpu: f64,
    passes: u64,
    per_host: Vec<u32>,
}

async fn engine_run(a: Args) -> EngineRun {
    let (_dir, fleet) = bed(a);
    let connections = Connections::new();
    let (t, c) = (Instant::now(), cpu_secs());
    let mut engine = run::start(
        fleet.clone(),
        EngineOptions {
            clock: Arc::new(SystemClock),
            read_only: false,
            paused: false,
            connections: connections.clone(),
            state_dir: None,
            simulated_steps: Default::default(),
            leadership: None,
        },
    );
    // A console would read the events; so does the bench (they are not left to overflow).
    let mut events = std::mem::replace(&mut engine.events, tokio::sync::mpsc::channel(1).1);
    let reader = tokio::spawn(async move {
        let mut n = 0u64;
        while events.recv().await.is_some() {
            n += 1;
        }
        n
    });
    let snapshot = match engine
        .wait_for(Duration::from_secs(1800), |s| s.steady)
        .await
    {
        Ok(s) => s,
        Err(s) => panic!(
            "engine not steady in time:\n{}",
            deskpool::report::table(&s)
        ),
    };
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - c);
    let per_host = snapshot.hosts.iter().map(|h| h.desktops).collect();
    let conns: Vec<(String, HostConnection)> = fleet
        .hosts
        .iter()
        .map(|h| (h.name.clone(), connections.get(&h.name).expect("connected")))
        .collect();
    let f = fleet.clone();
    let want = a.desktops;
    tokio::task::spawn_blocking(move || check_hosts(&f, &conns, want))
        .await
        .unwrap();
    engine.shutdown().await;
    let _ = reader.await;
    EngineRun {
        secs,
        cpu,
        passes: snapshot.passes,
        per_host,
    }
}

/// The same libvirt calls in a plain sequential loop, on fresh hosts.
fn raw_loop(a: Args) -> (f64, f64) {
    let (_dir, fleet) = bed(a);
    let (t, c) = (Instant::now(), cpu_secs());
    let mut conns = Vec::new();
    let mut seeds = Vec::new();
    for h in &fleet.hosts {
        let conn = HostConnection::open(&h.uri, false).expect("open");
        conn.ensure_creation_pool(CREATION_POOL, CREATION_POOL_PATH)
            .expect("creation pool");
        let copies: Vec<_> = fleet
            .classes
            .iter()
            .map(|c| {
                conn.copy_seed_local(
                    &c.seed.pool,
                    &c.seed.volume,
                    CREATION_POOL,
                    &c.name,
                    &c.seed.version,
                    &|_, _| {},
                )
                .expect("seed copy")
            })
            .collect();
        seeds.push(copies);
        conns.push((h.name.clone(), conn));
    }
    // Round-robin over hosts, class by class, as many desktops as the engine makes.
    let now = jiff::Timestamp::now().as_second();
    let mut n = 0u64;
    for (ci, class) in fleet.classes.iter().enumerate() {
        for _ in 0..class.policy.buffer.floor {
            let hi = (n as usize) % conns.len();
            let conn = &conns[hi].1;
            let name = format!("dp-{}-{:x}", class.name, 0x1_0000_0000u64 + n);
            n += 1;
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
            let disk_path = conn
                .create_overlay(CREATION_POOL, &name, &seeds[hi][ci], class.disk_gib << 30)
                .expect("overlay");
            conn.define_desktop(&DesktopDefinition {
                name: &name,
                class,
                disk_path: &disk_path,
                disk_format: "qcow2",
                meta: &meta,
                display_password: "test0pw1",
            })
            .expect("define");
            conn.start(&name).expect("start");
            meta.pool = PoolState::Buffer;
            conn.set_meta(&name, &meta).expect("set meta");
        }
    }
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - c);
    check_hosts(&fleet, &conns, a.desktops);
    (secs, cpu)
}

/// CPU seconds (user + system) used so far by the whole process, every thread included.
fn cpu_secs() -> f64 {
    // SAFETY: getrusage writes the struct it is given and nothing else.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

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

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "provision_bench: {} desktops, {} hosts (test driver, file-backed node files), {} class(es), \
         pacing {} clones + {} boots per host and class; tokio multi-thread runtime, {} runs each, alternating",
        a.desktops, a.hosts, a.classes, a.pacing, a.pacing, a.runs
    );
    let (mut engine_secs, mut raw_secs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut cpu_ratios = Vec::new();
    for i in 0..a.runs {
        // Alternate which goes first, so neither always runs on a warmer (or busier) machine.
        let (e, (r, rc)) = if i % 2 == 0 {
            let e = rt.block_on(engine_run(a));
            let r = rt
                .block_on(async move { tokio::task::spawn_blocking(move || raw_loop(a)).await })
                .unwrap();
            (e, r)
        } else {
            let r = rt
                .block_on(async move { tokio::task::spawn_blocking(move || raw_loop(a)).await })
                .unwrap();
            let e = rt.block_on(engine_run(a));
            (e, r)
        };
        println!(
            "  run {}: engine {:>7.3} s (cpu {:.3} s, {} passes, per host {:?})   raw loop {:>7.3} s (cpu {:.3} s)   \
             ratio {:.2} (cpu {:.2})",
            i + 1,
            e.secs,
            e.cpu,
            e.passes,
            e.per_host,
            r,
            rc,
            e.secs / r,
            e.cpu / rc
        );
        cpu_ratios.push(e.cpu / rc);
        engine_secs.push(e.secs);
        raw_secs.push(r);
        ratios.push(e.secs / r);
    }
    let (me, mr, mq) = (median(&engine_secs), median(&raw_secs), median(&ratios));
    println!(
        "  median: engine {me:.3} s ({:.0} desktops/s)   raw loop {mr:.3} s ({:.0} desktops/s)   \
         ratio engine/raw-loop {mq:.2} (min {:.2}, max {:.2}); CPU-time ratio {:.2}",
        f64::from(a.desktops) / me,
        f64::from(a.desktops) / mr,
        ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratios.iter().copied().fold(0.0, f64::max),
        median(&cpu_ratios),
    );
    println!(
        "RESULT provision: {} desktops on {} test-driver hosts, empty to steady: engine {me:.2} s vs a \
         sequential loop of the same libvirt calls {mr:.2} s, median ratio {mq:.2} over {} alternating runs \
         (CPU-time ratio {:.2}; pacing {}/host, release build)",
        a.desktops,
        a.hosts,
        a.runs,
        median(&cpu_ratios),
        a.pacing
    );
}
