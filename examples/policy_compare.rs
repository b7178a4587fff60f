//! Compares three buffer policies on one login trace, in one run, with the simulator:
//!
//! 1. a **fixed spare count** per class (VMware Horizon style), tuned per class to the smallest
//!    count in `0..=cap` that reaches 99% instant logins; a class's declared periods keep their
//!    expected production, with that count as their spare;
//! 2. a **percentage of production** with a **peak/off-peak schedule** (Citrix style): peak =
//!    weekdays 07:00-19:00, floor 1 at all times; tuned per class the same way (the smallest
//!    peak percentage reaching 99% with the off-peak one equal to it, then the smallest
//!    off-peak percentage that keeps 99%); this schedule replaces a class's declared periods;
//! 3. the **predictive** buffer at a 99% service level (floor 1), as configured.
//!
//! With `--match-predictive` the rule-based policies are tuned to the instant share the
//! predictive run reached per class instead of 99% (the like-for-like comparison). A search that
//! reaches the top of its range without the target says so, and its column shows that top.
//!
//! Everything else comes from the configuration (default `examples/sim-office-week.toml`).
//! Classes do not interact in the simulator (the hosts are large enough), so each tuning step
//! runs all classes at once with each class's own candidate value.
//!
//! ```sh
//! cargo run --release --example policy_compare -- \
//!     [--config examples/sim-office-week.toml] [--trace ../shared/traces/office-week.csv] \
//!     [--match-predictive]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use deskpool_config as config;
use deskpool_core::policy::{BufferRule, Fleet, Period, TimeOfDay, Weekdays};
use deskpool_sim::{self as sim, Report, SimOptions};

const TARGET: f64 = 0.99;

/// Command line: the config, the trace, and whether the rule-based policies are tuned to the
/// predictive run's share per class instead of [`TARGET`].
fn args() -> (PathBuf, PathBuf, bool) {
    let mut config = PathBuf::from("examples/sim-office-week.toml");
    // The sample traces live in shared/, beside the repository.
    let mut trace =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/traces/office-week.csv");
    let mut match_predictive = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" => config = it.next().expect("--config FILE").into(),
            "--trace" => trace = it.next().expect("--trace FILE").into(),
            "--match-predictive" => match_predictive = true,
            other => panic!(
                "unknown argument {other}; expected --config FILE --trace CSV [--match-predictive]"
            ),
        }
    }
    (config, trace, match_predictive)
}

/// Every class with a fixed spare count `counts[i]`; its declared periods keep their expected
/// production (what the administrator knows is given to every policy) with that count as
/// their spare.
fn fixed(base: &Fleet, counts: &[u32]) -> Fleet {
    let mut f = base.clone();
    for (c, &k) in f.classes.iter_mut().zip(counts) {
        let count = BufferRule {
            floor: k,
            percent: 0,
            ceiling: k,
        };
        c.policy.predictive = None;
        c.policy.buffer = count;
        for period in &mut c.policy.periods {
            period.buffer = count;
        }
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

/// The outcome of one class's search.
#[derive(Clone, Copy)]
enum Tuned {
    /// The smallest value reaching the target.
    Reached(u32),
    /// Even the top of the range misses the target: the top, and the share it reached.
    Exhausted { top: u32, share: f64 },
}

impl Tuned {
    /// The value to run with (the top of the range when exhausted).
    fn value(self) -> u32 {
        match self {
            Tuned::Reached(v) | Tuned::Exhausted { top: v, .. } => v,
        }
    }
}

impl Tuner<'_> {
    fn run(&mut self, fleet: &Fleet) -> Report {
        self.runs += 1;
        sim::simulate(fleet, self.events, &self.opts)
    }

    /// Per class, the smallest value in `lo[i]..=hi[i]` whose run reaches `target[i]` (binary
    /// search, all classes at once; assumes more is never worse), or that the range is
    /// exhausted (the top misses too). `make` builds the fleet.
    fn smallest(
        &mut self,
        mut lo: Vec<u32>,
        mut hi: Vec<u32>,
        target: &[f64],
        make: &dyn Fn(&[u32]) -> Fleet,
    ) -> Vec<Tuned> {
        // Whether a run at hi[i] has been seen to reach the target.
        let mut confirmed = vec![false; lo.len()];
        while lo.iter().zip(&hi).any(|(l, h)| l < h) {
            let mid: Vec<u32> = lo.iter().zip(&hi).map(|(l, h)| (l + h) / 2).collect();
            let r = self.run(&make(&mid));
            for i in 0..mid.len() {
                if lo[i] >= hi[i] {
                    continue;
                }
                if r.classes[i].instant_share >= target[i] {
                    hi[i] = mid[i];
                    confirmed[i] = true;
                } else {
                    lo[i] = mid[i] + 1;
                }
            }
        }
        let r = (!confirmed.iter().all(|&c| c)).then(|| self.run(&make(&lo)));
        (0..lo.len())
            .map(|i| match &r {
                Some(r) if !confirmed[i] && r.classes[i].instant_share < target[i] => {
                    Tuned::Exhausted {
                        top: lo[i],
                        share: r.classes[i].instant_share,
                    }
                }
                _ => Tuned::Reached(lo[i]),
            })
            .collect()
    }
}

/// Says which classes' searches hit the top of their range without reaching their target.
fn report_exhausted(what: &str, base: &Fleet, tuned: &[Tuned], target: &[f64]) -> bool {
    let mut any = false;
    for ((c, t), goal) in base.classes.iter().zip(tuned).zip(target) {
        if let Tuned::Exhausted { top, share } = t {
            any = true;
            println!(
                "{}: {what} search exhausted: even {top} (the top of its range) reaches only \
                 {:.2}% instant, not {:.2}%; its column shows that top, not a tuned value",
                c.name,
                share * 100.0,
                goal * 100.0
            );
        }
    }
    any
}

fn main() {
    let (config_path, trace_path, match_predictive) = args();
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

    let predictive_r = t.run(&base);
    let target: Vec<f64> = if match_predictive {
        predictive_r
            .classes
            .iter()
            .map(|c| c.instant_share)
            .collect()
    } else {
        vec![TARGET; n]
    };
    let caps: Vec<u32> = base.classes.iter().map(|c| c.policy.cap).collect();
    let counts = t.smallest(vec![0; n], caps, &target, &|k| fixed(&base, k));
    let peak = t.smallest(vec![0; n], vec![300; n], &target, &|p| percent(&base, p, p));
    let peak_v: Vec<u32> = peak.iter().map(|p| p.value()).collect();
    let off: Vec<u32> = t
        .smallest(vec![0; n], peak_v.clone(), &target, &|o| {
            percent(&base, &peak_v, o)
        })
        .iter()
        .map(|o| o.value())
        .collect();
    let counts_v: Vec<u32> = counts.iter().map(|c| c.value()).collect();

    let fixed_r = t.run(&fixed(&base, &counts_v));
    let percent_r = t.run(&percent(&base, &peak_v, &off));
    let elapsed = started.elapsed();

    println!(
        "trace {} ({} events, {} logins), config {}",
        trace_path.display(),
        events.len(),
        fixed_r.total.logins,
        config_path.display()
    );
    println!(
        "{} simulations of the trace in {:.1} s ({:.2} s each)\n",
        t.runs,
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() / f64::from(t.runs)
    );
    for (i, c) in base.classes.iter().enumerate() {
        println!(
            "{:<7} fixed count {:>3}; percentage {:>3}% peak (weekdays 07-19), {:>3}% off-peak, floor 1; predictive {}% (floor {}, ceiling {})",
            c.name,
            counts_v[i],
            peak_v[i],
            off[i],
            c.policy.predictive.map_or(0.0, |p| p.service_level * 100.0),
            c.policy.buffer.floor,
            c.policy.buffer.ceiling
        );
    }
    println!();
    if match_predictive {
        println!(
            "rule-based policies tuned to the predictive run's instant share of each class \
             (--match-predictive); fixed counts searched over 0..=cap, percentages over 0..=300"
        );
    } else {
        println!(
            "rule-based policies tuned to {:.0}% instant per class; fixed counts searched over \
             0..=cap, percentages over 0..=300",
            TARGET * 100.0
        );
    }
    let fixed_exhausted = report_exhausted("fixed count", &base, &counts, &target);
    let percent_exhausted = report_exhausted("peak percentage", &base, &peak, &target);
    println!();
    let mark = |exhausted: bool| {
        if exhausted {
            " (range exhausted!)"
        } else {
            " (tuned)"
        }
    };
    println!(
        "{:<7} | {:>29} | {:>29} | {:>29}",
        "",
        format!("fixed count{}", mark(fixed_exhausted)),
        format!("percentage{}", mark(percent_exhausted)),
        "predictive (as configured)"
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
        "\nidle desktop-hours vs the {} fixed count: percentage {:+.1}%, predictive {:+.1}% \
         (reduction {:.1}% / {:.1}%)",
        if fixed_exhausted {
            "best (but short of the target: not a like-for-like comparison)"
        } else {
            "tuned"
        },
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
