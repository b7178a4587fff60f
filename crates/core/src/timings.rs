//! How long making a desktop takes, measured per host and class: the clone (its disk and
//! domain), the boot, the wait for the guest to be ready, and the whole from the start of the
//! clone to the buffer. The engine and the simulator record the same samples; the planner looks
//! ahead by the measured whole when it is longer than the policy's `ready_secs`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Samples kept per host, class and step: recent enough to follow a host that slows down.
pub const WINDOW: usize = 32;
/// Fewer samples than this say too little to plan by.
pub const MIN_SAMPLES_TO_PLAN: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The desktop's disk made and its domain defined (a clone slot held).
    Clone,
    /// The domain started (a boot slot held).
    Boot,
    /// From the boot to the guest ready (its agent answered; 0 for `ready = "running"`).
    Ready,
    /// From the start of the clone to the buffer: what a look-ahead must cover.
    Whole,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Clone, Step::Boot, Step::Ready, Step::Whole];

    pub fn label(self) -> &'static str {
        match self {
            Step::Clone => "clone",
            Step::Boot => "boot",
            Step::Ready => "ready",
            Step::Whole => "whole",
        }
    }
}

/// The recent samples of every (host, class, step).
#[derive(Debug, Clone, Default)]
pub struct StepTimings {
    samples: BTreeMap<(String, String, Step), VecDeque<f64>>,
}

/// One step of one class on one host, summed up (seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    pub step: Step,
    pub samples: usize,
    pub median_secs: f64,
    pub p90_secs: f64,
}

/// What the snapshot carries per host and class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingView {
    pub host: String,
    pub class: String,
    pub steps: Vec<StepStats>,
}

impl TimingView {
    pub fn step(&self, step: Step) -> Option<&StepStats> {
        self.steps.iter().find(|s| s.step == step)
    }
}

impl StepTimings {
    pub fn record(&mut self, host: &str, class: &str, step: Step, secs: f64) {
        if !secs.is_finite() || secs < 0.0 {
            return;
        }
        let window = self
            .samples
            .entry((host.to_string(), class.to_string(), step))
            .or_default();
        if window.len() == WINDOW {
            window.pop_front();
        }
        window.push_back(secs);
    }

    /// Forgets a class (removed) or a host (removed): its times say nothing about others.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        self.samples.retain(|(h, c, _), _| keep(h, c));
    }

    pub fn views(&self) -> Vec<TimingView> {
        let mut out: Vec<TimingView> = Vec::new();
        for ((host, class, step), window) in &self.samples {
            let stats = stats(*step, window.iter().copied().collect());
            match out.last_mut() {
                Some(v) if v.host == *host && v.class == *class => v.steps.push(stats),
                _ => out.push(TimingView {
                    host: host.clone(),
                    class: class.clone(),
                    steps: vec![stats],
                }),
            }
        }
        out
    }

    /// The 90th percentile of the whole time to ready of `class`'s recent desktops on every
    /// host, once there are enough of them.
    pub fn time_to_ready_secs(&self, class: &str) -> Option<u64> {
        let all: Vec<f64> = self
            .samples
            .iter()
            .filter(|((_, c, step), _)| c == class && *step == Step::Whole)
            .flat_map(|(_, w)| w.iter().copied())
            .collect();
        if all.len() < MIN_SAMPLES_TO_PLAN {
            return None;
        }
        Some(stats(Step::Whole, all).p90_secs.ceil() as u64)
    }
}

impl StepTimings {
    /// [`Self::time_to_ready_secs`] of every class of `fleet` that has one: the planner's
    /// `measured_ready`, the same in the engine and the simulator.
    pub fn measured_ready(&self, fleet: &crate::policy::Fleet) -> HashMap<String, u64> {
        fleet
            .classes
            .iter()
            .filter_map(|c| Some((c.name.clone(), self.time_to_ready_secs(&c.name)?)))
            .collect()
    }
}

/// The look-ahead of a class: its policy's `ready_secs`, or the measured time to ready when a
/// desktop takes longer than that to make.
pub fn lead_secs(ready_secs: u64, measured: Option<u64>) -> u64 {
    measured.map_or(ready_secs, |m| m.max(ready_secs))
}

fn stats(step: Step, mut values: Vec<f64>) -> StepStats {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if values.is_empty() {
            return 0.0;
        }
        // Nearest rank: the smallest sample with at least a share q of them at or below it.
        let rank = (q * values.len() as f64).ceil() as usize;
        values[rank.clamp(1, values.len()) - 1]
    };
    StepStats {
        step,
        samples: values.len(),
        median_secs: at(0.5),
        p90_secs: at(0.9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_samples_give_the_median_and_p90_per_host_and_class() {
        let mut t = StepTimings::default();
        for i in 1..=10 {
            t.record("h1", "office", Step::Boot, f64::from(i));
        }
        t.record("h2", "office", Step::Clone, 0.5);
        let views = t.views();
        assert_eq!(views.len(), 2);
        let boot = views[0].step(Step::Boot).unwrap();
        assert_eq!((views[0].host.as_str(), boot.samples), ("h1", 10));
        assert_eq!((boot.median_secs, boot.p90_secs), (5.0, 9.0));
        assert_eq!(views[1].step(Step::Clone).unwrap().median_secs, 0.5);
        // The window keeps the most recent: a host that slowed down shows it.
        for _ in 0..WINDOW {
            t.record("h1", "office", Step::Boot, 40.0);
        }
        assert_eq!(t.views()[0].step(Step::Boot).unwrap().median_secs, 40.0);
    }

    #[test]
    fn the_look_ahead_is_the_policys_unless_desktops_take_longer_to_make() {
        let mut t = StepTimings::default();
        t.record("h1", "cad", Step::Whole, 200.0);
        t.record("h2", "cad", Step::Whole, 240.0);
        assert_eq!(
            t.time_to_ready_secs("cad"),
            None,
            "two samples say too little"
        );
        t.record("h2", "cad", Step::Whole, 300.5);
        assert_eq!(t.time_to_ready_secs("cad"), Some(301));
        assert_eq!(lead_secs(90, t.time_to_ready_secs("cad")), 301);
        assert_eq!(lead_secs(90, Some(40)), 90);
        assert_eq!(lead_secs(90, t.time_to_ready_secs("office")), 90);
        t.retain(|_, c| c != "cad");
        assert_eq!(t.time_to_ready_secs("cad"), None);
    }
}
