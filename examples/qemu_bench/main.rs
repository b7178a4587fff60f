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
//!
//! Here: the arguments, the runs and the report; [`world`]: the lock, the seed and the clean-up;
//! [`measure`]: the three measurements; [`tools`]: signals, `virsh` and disk figures.

mod measure;
mod tools;
mod world;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::measure::{calls_run, deskpool_run, sweep, virt_clone_run};
use crate::tools::{check_interrupted, free_bytes, gib, run};
use crate::world::World;

pub(crate) const URI: &str = "qemu:///system";
pub(crate) const LOCK: &str = "/tmp/deskpool-qemu-tests.lock";
pub(crate) const EXTENT: u64 = 64 << 20;

#[derive(Clone)]
pub(crate) struct Args {
    pub(crate) runs: usize,
    pub(crate) desktops: u32,
    pub(crate) data_gib: u64,
    pub(crate) size_gib: u64,
    pub(crate) memory_mib: u64,
    pub(crate) vcpus: u32,
    /// Clones and boots at once per host (deskpool's pacing); 0: as many as desktops.
    pub(crate) pacing: u32,
    pub(crate) deskpool: Option<PathBuf>,
    /// `--deskpool-only P1,P2,..`: measure deskpool alone, at each of these pacings per run.
    pub(crate) sweep: Vec<u32>,
}

pub(crate) fn args() -> Args {
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

pub(crate) fn median(v: &[f64]) -> f64 {
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
