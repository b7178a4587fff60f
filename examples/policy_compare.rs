//! Compares three buffer policies on one login trace, in one run, with the simulator:
//!
//! 1. a **fixed spare count** per class (VMware Horizon style), tuned per class to the smallest
//!    count that reaches 99% instant logins;
//! 2. a **percentage of production** with a **peak/off-peak schedule** (Citrix style): peak =
//!    weekdays 07:00-19:00, floor 1 at all times; tuned per class the same way (the smallest
//!    peak percentage reaching 99% with the off-peak one equal to it, then the smallest
//!    off-peak percentage that keeps 99%);
//! 3. the **predictive** buffer at a 99% service level (floor 1), as configured.
//!
//! Everything else comes from the configuration (default `examples/sim-office-week.toml`).
//! Classes do not interact in the simulator (the hosts are large enough), so each tuning step
//! runs all classes at once with each class's own candidate value.
//!
//! ```sh
//! cargo run --release --example policy_compare -- \
//!     [--config examples/sim-office-week.toml] [--trace ../shared/traces/office-week.csv]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use deskpool_config as config;
use deskpool_core::policy::{BufferRule, Fleet, Period, TimeOfDay, Weekdays};
use deskpool_sim::{self as sim, Report, SimOptions};

const TARGET: f64 = 0.99;

fn args() -> (PathBuf, PathBuf) {
    let mut config = PathBuf::from("examples/sim-office-week.toml");
    // The sample traces live in shared/, beside the repository.
    let mut trace =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/traces/office-week.csv");
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" => config = it.next().expect("--config FILE").into(),
            "--trace" => trace = it.next().expect("--trace FILE").into(),
            other => panic!("unknown argument {other}; expected --config FILE --trace CSV"),
        }
    }
    (config, trace)
}

/// Every class with a fixed spare count `counts[i]`.
fn fixed(base: &Fleet, counts: &[u32]) -> Fleet {
    let mut f = base.clone();
    for (c, &k) in f.classes.iter_mut().zip(counts) {
        c.policy.predictive = None;
        c.policy.periods.clear();
        c.policy.buffer = BufferRule {
            floor: k,
            percent: 0,
            ceiling: k,
        };
    }
    f
}

/// Every class with `peak[i]`% of production on weekdays 07:00-19:00 and `off[i]`% otherwise,
/// at least 1.
fn percent(base: &Fleet, peak: &[u32], off: &[u32]) -> Fleet {
    let mut f = base.clone();
    for ((c, &p), &o) in f.classes.iter_mut().zip(peak).zip(off) {
        let cap = c.policy.cap;
        c.policy.predictive = None;
        c.policy.buffer = BufferRule {
            floor: 1,
            percent: o,
            ceiling: cap,
        };
        c.policy.periods = vec![Period {
            days: Weekdays(0b001_1111),
            from: TimeOfDay::parse("07:00").unwrap(),
            to: TimeOfDay::parse("19:00").unwrap(),
            production: c.policy.production,
            buffer: BufferRule {
                floor: 1,
                percent: p,
                ceiling: cap,
            },
        }];
    }
    f
}

struct Tuner<'a> {
    events: &'a [sim::TraceEvent],
    opts: SimOptions,
    runs: u32,
}

impl Tuner<'_> {
    fn run(&mut self, fleet: &Fleet) -> Report {
        self.runs += 1;
        sim::simulate(fleet, self.events, &self.opts)
    }

    /// Per class, the smallest value in `lo[i]..=hi[i]` whose run reaches the target (binary
    /// search, all classes at once; assumes more is never worse). `make` builds the fleet.
    fn smallest(
        &mut self,
        mut lo: Vec<u32>,
        mut hi: Vec<u32>,
        make: &dyn Fn(&[u32]) -> Fleet,
    ) -> Vec<u32> {
        while lo.iter().zip(&hi).any(|(l, h)| l < h) {
            let mid: Vec<u32> = lo.iter().zip(&hi).map(|(l, h)| (l + h) / 2).collect();
            let r = self.run(&make(&mid));
            for i in 0..mid.len() {
                if lo[i] >= hi[i] {
                    continue;
                }
                if r.classes[i].instant_share >= TARGET {
                    hi[i] = mid[i];
                } else {
                    lo[i] = mid[i] + 1;
                }
            }
        }
        lo
    }
}

fn main() {
    let (config_path, trace_path) = args();
    let base = match config::load_file(&config_path) {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    };
    let text = std::fs::read_to_string(&trace_path).expect("trace");
    let events = sim::trace::parse(&text, &base).unwrap_or_else(|e| panic!("{e}"));
    let n = base.classes.len();
    let started = Instant::now();
    let mut t = Tuner {
        events: &events,
        opts: SimOptions::default(),
        runs: 0,
    };

    let counts = t.smallest(vec![0; n], vec![80; n], &|k| fixed(&base, k));
    let peak = t.smallest(vec![0; n], vec![300; n], &|p| percent(&base, p, p));
    let off = t.smallest(vec![0; n], peak.clone(), &|o| percent(&base, &peak, o));

    let fixed_r = t.run(&fixed(&base, &counts));
    let percent_r = t.run(&percent(&base, &peak, &off));
    let predictive_r = t.run(&base);
    let elapsed = started.elapsed();

    println!(
        "trace {} ({} events, {} logins), config {}",
        trace_path.display(),
        events.len(),
        fixed_r.total.logins,
        config_path.display()
    );
    println!(
        "{} simulations of the week in {:.1} s ({:.2} s each)\n",
        t.runs,
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() / f64::from(t.runs)
    );
    for (i, c) in base.classes.iter().enumerate() {
        println!(
            "{:<7} fixed count {:>2}; percentage {:>3}% peak (weekdays 07-19), {:>3}% off-peak, floor 1; predictive {}% (floor {}, ceiling {})",
            c.name,
            counts[i],
            peak[i],
            off[i],
            c.policy.predictive.map_or(0.0, |p| p.service_level * 100.0),
            c.policy.buffer.floor,
            c.policy.buffer.ceiling
        );
    }
    println!();
    println!(
        "{:<7} | {:>29} | {:>29} | {:>29}",
        "", "fixed count (tuned)", "percentage + schedule (tuned)", "predictive 99%"
    );
    println!(
        "{:<7} | {:>8} {:>6} {:>6} {:>6} | {:>8} {:>6} {:>6} {:>6} | {:>8} {:>6} {:>6} {:>6}",
        "class",
        "instant",
        "p99 s",
        "p99w s",
        "idle h",
        "instant",
        "p99 s",
        "p99w s",
        "idle h",
        "instant",
        "p99 s",
        "p99w s",
        "idle h"
    );
    let rows = |i: Option<usize>| {
        let pick = |r: &Report| match i {
            Some(i) => r.classes[i].clone(),
            None => r.total.clone(),
        };
        let (a, b, c) = (pick(&fixed_r), pick(&percent_r), pick(&predictive_r));
        let cell = |r: &sim::ClassReport| {
            format!(
                "{:>7.2}% {:>6.0} {:>6.0} {:>6.1}",
                r.instant_share * 100.0,
                r.wait_p99_all_secs,
                r.wait_p99_secs,
                r.idle_desktop_hours
            )
        };
        println!("{:<7} | {} | {} | {}", a.name, cell(&a), cell(&b), cell(&c));
    };
    for i in 0..n {
        rows(Some(i));
    }
    rows(None);
    let reduction =
        |r: &Report| 100.0 * (1.0 - r.total.idle_desktop_hours / fixed_r.total.idle_desktop_hours);
    println!(
        "\nidle desktop-hours vs the tuned fixed count: percentage {:+.1}%, predictive {:+.1}% \
         (reduction {:.1}% / {:.1}%)",
        -reduction(&percent_r),
        -reduction(&predictive_r),
        reduction(&percent_r),
        reduction(&predictive_r)
    );
    println!(
        "host-hours: fixed {:.1}, percentage {:.1}, predictive {:.1}; peak desktops: {} / {} / {}",
        fixed_r.host_hours,
        percent_r.host_hours,
        predictive_r.host_hours,
        fixed_r.total.peak_desktops,
        percent_r.total.peak_desktops,
        predictive_r.total.peak_desktops
    );
    println!(
        "instant: share of logins served from the buffer at once; p99 s: p99 wait of all logins; \
         p99w s: p99 wait of those who waited; idle h: idle desktop-hours (booted, unassigned)"
    );
}
