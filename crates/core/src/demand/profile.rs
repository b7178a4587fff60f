//! The learnt time-of-day profiles: counts of the completed days, and robust statistics of them.
//!
//! Each completed day keeps its logins per 15-minute bin and, per bin, how clustered the logins
//! were inside it (the variance of its per-minute counts over their mean: 1 for Poisson
//! arrivals, more for logins that come in clumps). The profiles are **medians** over days, not
//! averages, so one storm or one outage does not come back as phantom demand on the next days.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::BINS;
use super::calendar::Calendar;

/// Completed days kept (four weeks of each weekday).
pub(super) const KEPT_DAYS: usize = 28;
/// Recent days whatever their weekday that make the all-days profile.
const DAILY_DAYS: usize = 7;
/// Same weekdays that make a weekday's profile.
const WEEKS: usize = 4;
/// Minutes in a bin.
pub(super) const BIN_MINUTES: usize = 15;
/// A bin needs this many logins for its clustering to be measured.
const DISPERSION_MIN_LOGINS: u32 = 4;
/// Clustering is read at most this strong (a single clump in a quiet bin reads as extreme).
const DISPERSION_MAX: f64 = 8.0;
/// The spread of a Poisson stream's measured dispersion (15 minutes, median of a week of days):
/// less excess than this over 1 is read as Poisson.
const DISPERSION_NOISE: f64 = 0.3;
/// The windows whose most logins per bin are kept (seconds): a lead time between two of them
/// reads the two (see [`Profiles::peak`]).
pub(super) const PEAK_WINDOWS: [i64; 5] = [30, 60, 120, 300, 600];
const PEAKS: usize = PEAK_WINDOWS.len();

/// One completed local day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct DayRecord {
    pub(super) weekday: usize,
    /// Logins per bin.
    pub(super) counts: Vec<u32>,
    /// Per bin: variance over mean of its per-minute counts, when it had enough logins (1 for a
    /// Poisson stream, more for clumps).
    pub(super) dispersion: Vec<Option<f64>>,
    /// The local day (days since 1970-01-01), for the calendar's one-off days.
    #[serde(default)]
    pub(super) day: i64,
    /// A recognised outage (a mass logout most of whose users came back): not learnt from.
    #[serde(default)]
    pub(super) outage: bool,
    /// Per bin: the most logins in any window of each of [`PEAK_WINDOWS`] ending in the bin.
    #[serde(default)]
    pub(super) peaks: Vec<[u32; PEAKS]>,
    /// Per hour of the day: logins whose outcome was told, and those that found no desktop
    /// ready ([`super::DemandModel::record_outcome`]).
    #[serde(default)]
    pub(super) outcomes: Vec<[u32; 2]>,
}

impl DayRecord {
    /// Logins in `bin` (0 for a bin the record lacks).
    fn count(&self, bin: usize) -> f64 {
        self.counts.get(bin).copied().map_or(0.0, f64::from)
    }

    /// A day from its logins per minute (`BINS * BIN_MINUTES` values) and the seconds of the
    /// day of each login, in order (for the peaks).
    pub(super) fn from_logins(weekday: usize, minutes: &[u32], seconds: &[u32]) -> DayRecord {
        let mut counts = Vec::with_capacity(BINS);
        let mut dispersion = Vec::with_capacity(BINS);
        for bin in minutes.chunks(BIN_MINUTES) {
            let total: u32 = bin.iter().sum();
            counts.push(total);
            dispersion.push((total >= DISPERSION_MIN_LOGINS).then(|| {
                let n = bin.len() as f64;
                let mean = f64::from(total) / n;
                let var = bin
                    .iter()
                    .map(|&c| (f64::from(c) - mean).powi(2))
                    .sum::<f64>()
                    / (n - 1.0);
                var / mean
            }));
        }
        DayRecord {
            weekday,
            counts,
            dispersion,
            day: 0,
            outage: false,
            peaks: window_peaks(seconds),
            outcomes: Vec::new(),
        }
    }

    /// Whether the day is learnt from: not a recognised outage nor a one-off day of `calendar`.
    fn usual(&self, calendar: &Calendar) -> bool {
        !self.outage && !calendar.is_one_off(self.day)
    }
}

/// Per bin, the most logins in any window of each of [`PEAK_WINDOWS`] that ends at a login of
/// the bin (`seconds`: seconds of the day of the logins, in order).
fn window_peaks(seconds: &[u32]) -> Vec<[u32; PEAKS]> {
    let mut peaks = vec![[0u32; PEAKS]; BINS];
    for (w, &window) in PEAK_WINDOWS.iter().enumerate() {
        let mut first = 0;
        for (i, &t) in seconds.iter().enumerate() {
            while i64::from(seconds[first]) <= i64::from(t) - window {
                first += 1;
            }
            let bin = (t as usize / (BIN_MINUTES * 60)).min(BINS - 1);
            let count = (i - first + 1) as u32;
            peaks[bin][w] = peaks[bin][w].max(count);
        }
    }
    peaks
}

/// The median of `values` (the lower of the middle two for an even count: with two days, one
/// of them a storm, the ordinary one). `None` when empty.
pub(super) fn lower_median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 || n == 2 {
        values[(n - 1) / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// The profiles learnt from the kept days (recomputed when a day completes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Profiles {
    /// Expected logins per (weekday Monday = 0, bin): `7 * BINS` values.
    pub(super) week: Vec<f64>,
    /// Kept days of each weekday (the weight of `week` for that weekday).
    pub(super) week_days: [u32; 7],
    /// Expected logins per bin over the recent days whatever their weekday.
    pub(super) daily: Vec<f64>,
    /// Clustering of logins per bin (1: Poisson), the median over the recent days.
    pub(super) dispersion: Vec<f64>,
    /// Per bin and window of [`PEAK_WINDOWS`]: the most logins seen in such a window on the
    /// recent days, each day's clipped to what the others make likely.
    pub(super) peaks: Vec<[f64; PEAKS]>,
    /// Per hour of the day over the recent days: logins with a told outcome, and misses.
    pub(super) outcomes: Vec<[u32; 2]>,
}

impl Profiles {
    /// Robust profiles of `days` (oldest first), leaving out recognised outages and the one-off
    /// days of `calendar`.
    pub(super) fn learn(days: &VecDeque<DayRecord>, calendar: &Calendar) -> Profiles {
        let usual: Vec<&DayRecord> = days.iter().filter(|d| d.usual(calendar)).collect();
        let recent: Vec<&DayRecord> = usual.iter().rev().take(DAILY_DAYS).copied().collect();
        let mut daily = vec![0.0; BINS];
        let mut dispersion = vec![1.0; BINS];
        let mut buf = Vec::with_capacity(KEPT_DAYS);
        for bin in 0..BINS {
            buf.clear();
            buf.extend(recent.iter().map(|d| d.count(bin)));
            daily[bin] = lower_median(&mut buf).unwrap_or(0.0);
            // A bin quiet on most days is not clustered; a clump on one day is an outlier.
            buf.clear();
            buf.extend(
                recent
                    .iter()
                    .map(|d| d.dispersion.get(bin).copied().flatten().unwrap_or(1.0)),
            );
            let measured = lower_median(&mut buf).unwrap_or(1.0);
            dispersion[bin] = (measured - DISPERSION_NOISE).clamp(1.0, DISPERSION_MAX);
        }
        let mut week = vec![0.0; 7 * BINS];
        let mut week_days = [0u32; 7];
        for (weekday, days_of) in week_days.iter_mut().enumerate() {
            let same: Vec<&DayRecord> = usual
                .iter()
                .copied()
                .rev()
                .filter(|d| d.weekday == weekday)
                .take(WEEKS)
                .collect();
            *days_of = same.len() as u32;
            for bin in 0..BINS {
                buf.clear();
                buf.extend(same.iter().map(|d| d.count(bin)));
                let Some(mut v) = lower_median(&mut buf) else {
                    continue;
                };
                // One day of its own is no median: clip it to what the other days make likely.
                if same.len() == 1 && recent.len() >= 3 {
                    v = v.min(2.0 * daily[bin] + 3.0);
                }
                week[weekday * BINS + bin] = v;
            }
        }
        Profiles {
            week,
            week_days,
            daily,
            dispersion,
            peaks: learn_peaks(&recent),
            outcomes: learn_outcomes(&recent),
        }
    }

    /// The most logins in a window of `window` seconds ending in `bin` on the recent days: read
    /// between the two [`PEAK_WINDOWS`] around it (in proportion), 0 with no days.
    pub(super) fn peak(&self, bin: usize, window: i64) -> f64 {
        let Some(p) = self.peaks.get(bin) else {
            return 0.0;
        };
        let upper = PEAK_WINDOWS.iter().position(|&w| w >= window);
        match upper {
            Some(0) => p[0] * window.max(0) as f64 / PEAK_WINDOWS[0] as f64,
            Some(u) => {
                let (w0, w1) = (PEAK_WINDOWS[u - 1] as f64, PEAK_WINDOWS[u] as f64);
                let share = (window as f64 - w0) / (w1 - w0);
                p[u - 1] + share * (p[u] - p[u - 1])
            }
            None => p[PEAKS - 1] * window as f64 / PEAK_WINDOWS[PEAKS - 1] as f64,
        }
    }
}

/// Per bin and window: the largest of the recent days' peaks, each clipped to twice the
/// median of the days plus 3 (one day's storm is not the usual worst moment).
fn learn_peaks(recent: &[&DayRecord]) -> Vec<[f64; PEAKS]> {
    let mut peaks = vec![[0.0; PEAKS]; BINS];
    let mut buf = Vec::with_capacity(recent.len());
    for (bin, peak) in peaks.iter_mut().enumerate() {
        for (w, value) in peak.iter_mut().enumerate() {
            buf.clear();
            buf.extend(
                recent
                    .iter()
                    .map(|d| d.peaks.get(bin).map_or(0.0, |p| f64::from(p[w]))),
            );
            let max = buf.iter().copied().fold(0.0, f64::max);
            let Some(median) = lower_median(&mut buf) else {
                continue;
            };
            *value = if recent.len() >= 3 {
                max.min(2.0 * median + 3.0)
            } else {
                max
            };
        }
    }
    peaks
}

/// Per hour: the outcomes of the recent days summed.
fn learn_outcomes(recent: &[&DayRecord]) -> Vec<[u32; 2]> {
    let mut sums = vec![[0u32; 2]; 24];
    for d in recent {
        for (sum, o) in sums.iter_mut().zip(&d.outcomes) {
            sum[0] += o[0];
            sum[1] += o[1];
        }
    }
    sums
}

impl Profiles {
    /// Expected logins in the bin at (`weekday`, `bin`): the weekday's profile blended with the
    /// all-days one (weight `n / (n + 0.5)` for `n` days of its own, up to 3).
    pub(super) fn raw(&self, weekday: usize, bin: usize) -> f64 {
        let daily = self.daily.get(bin).copied().unwrap_or(0.0);
        let n = self.week_days[weekday].min(3);
        if n == 0 {
            return daily;
        }
        let w = f64::from(n) / (f64::from(n) + 0.5);
        let own = self
            .week
            .get(weekday * BINS + bin)
            .copied()
            .unwrap_or(daily);
        w * own + (1.0 - w) * daily
    }
}
