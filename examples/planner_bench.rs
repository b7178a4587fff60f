//! Times one planner pass (`plan::plan`) over large fleets, against trivial passes over the same
//! data measured in the same run (the machine is shared and noisy: the ratio is the figure to
//! quote, the milliseconds are context). Two points by default: 10,000 desktops, 50 classes,
//! 50 hosts, then 100,000 desktops, 50 classes, 500 hosts; `--desktops`, `--classes` or
//! `--hosts` measure one point of that size instead (the others keep the first point's values).
//!
//! The fleet is built through the real config loader. Every class has a weekday period and an
//! evening period (the pass runs on a Wednesday at 10:00 UTC, inside the first); every host holds
//! a complete seed copy of every class (and one of the previous version: kept where old desktops
//! still use it, deleted elsewhere) and two orphan desktop volumes. Per class, 200 desktops spread
//! over the hosts: production (assigned), buffer (a few on an old seed version, being replaced),
//! creation (jobs in flight), and a few short of the buffer target, so every pass also places
//! creations.
//!
//! ```text
//! cargo run --release --example planner_bench -- [--passes N] [--warmup N] [--desktops N]
//!                                                [--classes N] [--hosts N] [--dump FILE]
//! ```
//!
//! `--dump FILE` writes the first pass's classes and actions as JSON, to compare planner
//! versions; with several points, each point's file is FILE with `.DESKTOPSxCLASSESxHOSTS`
//! appended.

use std::collections::HashMap;

/// The `deskpool` binary's allocator (src/main.rs), so the figure is the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use deskpool_config as config;
use deskpool_core::model::{
    DesktopMeta, ObservedDesktop, PoolState, SeedCopy, desktop_volume_name, seed_copy_volume_name,
};
use deskpool_core::plan::{self, Busy, HostStatus, HostView, PlanInput, PlanMemory};
use deskpool_core::policy::Fleet;
use jiff::Timestamp;

/// One fleet size to measure.
#[derive(Clone, Copy)]
struct Point {
    desktops: usize,
    classes: usize,
    hosts: usize,
}

/// The sizes measured when none is given.
const DEFAULT_POINTS: [Point; 2] = [
    Point {
        desktops: 10_000,
        classes: 50,
        hosts: 50,
    },
    Point {
        desktops: 100_000,
        classes: 50,
        hosts: 500,
    },
];

struct Args {
    passes: usize,
    warmup: usize,
    points: Vec<Point>,
    /// Write the first pass's classes and actions here (JSON), to compare planner versions.
    dump: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        passes: 200,
        warmup: 20,
        points: DEFAULT_POINTS.to_vec(),
        dump: None,
    };
    let mut custom = None::<Point>;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} wants a number"))
        };
        match flag.as_str() {
            "--passes" => a.passes = value().max(1),
            "--warmup" => a.warmup = value(),
            "--desktops" => custom.get_or_insert(DEFAULT_POINTS[0]).desktops = value(),
            "--classes" => custom.get_or_insert(DEFAULT_POINTS[0]).classes = value().max(1),
            "--hosts" => custom.get_or_insert(DEFAULT_POINTS[0]).hosts = value().max(1),
            "--dump" => a.dump = it.next(),
            other => panic!("unknown argument {other}"),
        }
    }
    if let Some(point) = custom {
        a.points = vec![point];
    }
    a
}

/// The fleet's TOML: `hosts` active hosts with room for everything, `classes` classes with
/// periods, pacing and a buffer rule in percent of production between a floor and a ceiling.
fn fleet_toml(hosts: usize, classes: usize, per_class: usize) -> String {
    let mut s = String::from(
        "[engine]\ntick_secs = 5\nresync_secs = 30\ncreation_pool = \"deskpool\"\n\
         creation_pool_path = \"/var/lib/libvirt/deskpool\"\ntimezone = \"UTC\"\n\n",
    );
    for h in 0..hosts {
        s.push_str(&format!(
            "[[hosts]]\nname = \"h{h:02}\"\nuri = \"test:///bench/h{h:02}.xml\"\n\
             capacity = {{ memory_mib = 2097152, vcpus = 1024, desktops = {} }}\n\n",
            per_class * classes / hosts * 2 + 50
        ));
    }
    // Class sizes vary a little, so room and load depend on the class.
    for c in 0..classes {
        let memory = [2048, 4096, 8192][c % 3];
        let vcpus = [2, 4, 8][c % 3];
        let production = per_class * 8 / 10;
        s.push_str(&format!(
            "[[classes]]\nname = \"class{c:02}\"\nmemory_mib = {memory}\nvcpus = {vcpus}\n\
             disk_gib = 20\nseed = {{ pool = \"seeds\", volume = \"class{c:02}.qcow2\", version = \"v2\" }}\n\n\
             [classes.policy]\ncap = {cap}\nproduction = {base}\n\
             buffer = {{ floor = 4, percent = 10, ceiling = 40 }}\nready_secs = 120\n\
             scale_down_delay_secs = 300\npacing = {{ clones_per_host = 4, boots_per_host = 4 }}\n\n\
             [[classes.policy.periods]]\ndays = [\"weekdays\"]\nfrom = \"07:00\"\nto = \"18:00\"\n\
             production = {production}\nbuffer = {{ floor = 8, percent = 30, ceiling = {ceil} }}\n\n\
             [[classes.policy.periods]]\ndays = [\"all\"]\nfrom = \"20:00\"\nto = \"06:00\"\n\
             production = {night}\n\n",
            cap = per_class * 2,
            base = production / 4,
            ceil = per_class / 2,
            night = production / 10,
        ));
    }
    s
}

struct Data {
    fleet: Fleet,
    hosts: Vec<HostView>,
    desktops: Vec<ObservedDesktop>,
    busy: Busy,
    memory: PlanMemory,
    now: Timestamp,
    /// Expected logins per predictive class (none in this fleet: every class uses its rule).
    forecasts: HashMap<String, f64>,
    measured_ready: HashMap<String, u64>,
}

fn build(a: Point) -> Data {
    let per_class = a.desktops / a.classes;
    let text = fleet_toml(a.hosts, a.classes, per_class);
    let fleet = config::parse_str(&text, Path::new("/tmp/planner-bench.toml"))
        .unwrap_or_else(|e| panic!("bench config is invalid:\n{e}"));
    let now: Timestamp = "2026-03-04T10:00:00Z".parse().unwrap(); // a Wednesday
    let t0 = now.as_second() - 86_400;

    let mut desktops = Vec::with_capacity(a.desktops);
    let mut busy = Busy::default();
    let mut n = 0usize;
    for (ci, class) in fleet.classes.iter().enumerate() {
        for k in 0..per_class {
            // 75% production, 2% creation (in flight), the rest buffer; 5% of the buffer on
            // the previous seed version. The period asks for a little more than that.
            let pool = match k * 100 / per_class {
                0..75 => PoolState::Production,
                75..77 => PoolState::Creation,
                _ => PoolState::Buffer,
            };
            let old = pool == PoolState::Buffer && k % 20 == 0;
            let host = &fleet.hosts[(n * 7 + ci) % fleet.hosts.len()].name;
            let name = format!("dp-{}-{:x}", class.name, 0x1_0000_0000u64 + n as u64);
            if pool == PoolState::Creation {
                busy.desktops.insert(name.clone());
            }
            desktops.push(ObservedDesktop {
                name,
                host: host.clone(),
                meta: DesktopMeta {
                    class: class.name.clone(),
                    pool,
                    seed_version: if old { "v1".into() } else { "v2".into() },
                    user: (pool == PoolState::Production).then(|| format!("user{n}")),
                    created_at: t0 + n as i64,
                    changed_at: t0 + n as i64,
                    attempts: 0,
                    term: 0,
                },
                running: pool != PoolState::Creation,
                persistent: true,
                disk_problem: None,
            });
            n += 1;
        }
    }
    // Desktops per host, so that each host's volume names are made together (one host's names
    // lie together in memory, as a host's listing would).
    let mut desktops_by_host: HashMap<&str, Vec<&ObservedDesktop>> = HashMap::new();
    for d in &desktops {
        desktops_by_host.entry(d.host.as_str()).or_default().push(d);
    }
    let hosts = fleet
        .hosts
        .iter()
        .map(|h| {
            let mut seed_copies: Vec<SeedCopy> = Vec::new();
            for c in &fleet.classes {
                for version in ["v1", "v2"] {
                    let volume = seed_copy_volume_name(&c.name, version);
                    seed_copies.push(SeedCopy {
                        class: c.name.clone(),
                        version: version.into(),
                        path: format!("/var/lib/libvirt/deskpool/{volume}"),
                        volume,
                        format: "qcow2".into(),
                        complete: true,
                    });
                }
            }
            HostView {
                name: h.name.clone(),
                status: HostStatus::Active,
                seed_copies,
                seed_sources: fleet
                    .classes
                    .iter()
                    .map(|c| (c.seed.pool.clone(), c.seed.volume.clone()))
                    .collect(),
                // Every desktop's disk, plus two orphans left by interrupted creations.
                desktop_volumes: desktops_by_host
                    .get(h.name.as_str())
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .map(|d| desktop_volume_name(&d.name))
                    .chain((0..2).map(|k| format!("dp-orphan-{}-{k}.qcow2", h.name)))
                    .collect(),
                unlabelled_desktops: Vec::new(),
            }
        })
        .collect();
    Data {
        fleet,
        hosts,
        desktops,
        busy,
        memory: PlanMemory::default(),
        now,
        forecasts: HashMap::new(),
        measured_ready: HashMap::new(),
    }
}

fn input(d: &Data) -> PlanInput<'_> {
    PlanInput {
        fleet: &d.fleet,
        hosts: &d.hosts,
        desktops: &d.desktops,
        busy: &d.busy,
        memory: &d.memory,
        now: d.now,
        forecasts: &d.forecasts,
        measured_ready: &d.measured_ready,
    }
}

/// The baseline: one pass over the same desktops counting them per (class, host, pool).
fn baseline(d: &Data) -> usize {
    let mut counts: HashMap<(&str, &str, PoolState), u32> = HashMap::new();
    for x in &d.desktops {
        *counts
            .entry((x.meta.class.as_str(), x.host.as_str(), x.meta.pool))
            .or_default() += 1;
    }
    counts.len()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let a = args();
    for (i, &point) in a.points.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let dump = a.dump.as_ref().map(|path| match a.points.len() {
            1 => path.clone(),
            _ => format!(
                "{path}.{}x{}x{}",
                point.desktops, point.classes, point.hosts
            ),
        });
        measure(&a, point, dump.as_deref());
    }
}

/// Builds the fleet of `point`, then times the planner and its baselines on it.
fn measure(a: &Args, point: Point, dump: Option<&str>) {
    let data = build(point);
    let first = plan::plan(&input(&data));
    let count = |f: &dyn Fn(&plan::Action) -> bool| first.actions.iter().filter(|x| f(x)).count();
    println!(
        "planner_bench: {} desktops, {} classes, {} hosts ({} seed copies, {} desktop volumes); \
         one pass orders {} creations, {} destroys, {} seed copies, {} volume and {} seed copy deletions",
        data.desktops.len(),
        data.fleet.classes.len(),
        data.hosts.len(),
        data.hosts
            .iter()
            .map(|h| h.seed_copies.len())
            .sum::<usize>(),
        data.hosts
            .iter()
            .map(|h| h.desktop_volumes.len())
            .sum::<usize>(),
        count(&|x| matches!(x, plan::Action::Create { .. })),
        count(&|x| matches!(x, plan::Action::Destroy { .. })),
        count(&|x| matches!(x, plan::Action::CopySeed { .. })),
        count(&|x| matches!(x, plan::Action::DeleteVolume { .. })),
        count(&|x| matches!(x, plan::Action::DeleteSeedCopy { .. })),
    );
    if let Some(path) = dump {
        // Each class with its explanation rendered, so dumps of planner versions compare as text.
        let classes: Vec<serde_json::Value> = first
            .classes
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(deskpool_api::ClassPlanView::from(c)).unwrap();
                v["explanation"] = c.explanation().into();
                v
            })
            .collect();
        let json = serde_json::json!({ "classes": classes, "actions": first.actions });
        std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    }
    if let Some(c) = first.classes.first() {
        println!("  e.g. {}: {}", c.name, c.explanation());
    }

    for _ in 0..a.warmup {
        black_box(plan::plan(black_box(&input(&data))));
        black_box(baseline(black_box(&data)));
        black_box(black_box(&data.desktops).clone());
    }
    // Interleaved, so that noise hits the planner and its baselines alike.
    let (mut planner, mut counting, mut cloning) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.passes {
        let t = Instant::now();
        black_box(plan::plan(black_box(&input(&data))));
        planner.push(ms(t.elapsed()));
        let t = Instant::now();
        black_box(baseline(black_box(&data)));
        counting.push(ms(t.elapsed()));
        let t = Instant::now();
        black_box(black_box(&data.desktops).clone());
        cloning.push(ms(t.elapsed()));
    }
    // Per-pass ratios, so that a noisy moment affects both sides of the same ratio.
    let mut ratio_count: Vec<f64> = planner.iter().zip(&counting).map(|(p, b)| p / b).collect();
    let mut ratio_clone: Vec<f64> = planner.iter().zip(&cloning).map(|(p, b)| p / b).collect();
    for v in [
        &mut planner,
        &mut counting,
        &mut cloning,
        &mut ratio_count,
        &mut ratio_clone,
    ] {
        v.sort_by(f64::total_cmp);
    }
    let row = |name: &str, v: &[f64]| {
        println!(
            "  {name:<34} median {:>8.3} ms   p95 {:>8.3} ms   min {:>8.3} ms",
            percentile(v, 0.5),
            percentile(v, 0.95),
            v[0]
        );
    };
    println!("{} passes after {} warm-up passes:", a.passes, a.warmup);
    row("planner pass", &planner);
    row("baseline: count per class/host/pool", &counting);
    row("baseline: clone the desktop vector", &cloning);
    println!(
        "  median ratio planner / count pass: {:.1}x   planner / clone: {:.1}x",
        percentile(&ratio_count, 0.5),
        percentile(&ratio_clone, 0.5)
    );
    println!(
        "RESULT planner: one pass over {} desktops, {} classes, {} hosts: median {:.2} ms, p95 {:.2} ms \
         ({:.1}x a HashMap count pass over the same desktops, {:.1}x cloning them; {} passes, release build)",
        data.desktops.len(),
        data.fleet.classes.len(),
        data.hosts.len(),
        percentile(&planner, 0.5),
        percentile(&planner, 0.95),
        percentile(&ratio_count, 0.5),
        percentile(&ratio_clone, 0.5),
        a.passes
    );
}
