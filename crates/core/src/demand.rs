//! The demand model: what the predictive buffer knows about when users log in.
//!
//! Pure (no clock, no I/O) and serialisable, so the engine can persist it and the simulator can
//! replay a trace through it. Per class it learns the **login arrival rate** and forecasts the
//! logins expected in a window `[now, now + horizon)` ([`DemandModel::forecast`]); the caller
//! passes that (for a horizon of the class's `ready_secs`) to the planner, which sizes a
//! predictive buffer from it ([`crate::plan::predictive_spare`]).
//!
//! # The model
//!
//! Time is read in the model's time zone, cut into days and 15-minute **bins** (96 a day). Each
//! class keeps:
//!
//! - a **weekly profile**: logins per (weekday, bin), exponentially smoothed across weeks
//!   (`α = 0.5`: last week counts for half, the week before for a quarter, ...);
//! - a **daily profile**: logins per bin, smoothed across the recent days whatever their weekday
//!   (`α = 0.3`), so a weekday never seen yet still has a time-of-day shape;
//! - the **recent logins** of the last hour.
//!
//! A day's counts enter both profiles when the first login of a later day is recorded (the days
//! in between, up to a week, enter as days without logins). The rate expected at a moment is
//! the weekday's profile blended with the daily profile (the weekday's weight `n / (n + 0.5)`
//! for `n` weeks of its own history, up to 3; only the daily profile for a weekday with no
//! history). Ahead, each bin counts as the larger of itself and its `[1 2 1] / 4` smoothing with its
//! neighbours (a ramp is expected a little early, never late).
//!
//! The forecast is that profile rate, integrated over the window, then **corrected by the last
//! hour**: scaled by `(logins in the last hour + 3) / (profile's logins for that hour + 3)`,
//! kept within `[0.2, 5]` (a busier or quieter day than usual is followed within the hour: a
//! pattern change is followed within a day), and never below the recent rate (the larger of the
//! last 15 minutes' and the last hour's) over the window. With no history at all the recent
//! rate alone is used. So a day with no history of its own falls back to the all-days profile
//! and the recent rate: it does not collapse to zero.

use std::collections::{BTreeMap, VecDeque};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// Length of a time-of-day bin.
pub const BIN_SECS: i64 = 900;
/// Bins in a day.
pub const BINS: usize = (86_400 / BIN_SECS) as usize;
const DAY_SECS: i64 = 86_400;
/// Smoothing of the weekly profile across weeks.
const WEEK_ALPHA: f64 = 0.5;
/// Smoothing of the daily profile across days.
const DAY_ALPHA: f64 = 0.3;
/// Window of the recent-rate correction.
const RECENT_SECS: i64 = 3_600;
/// Short window of the recent rate (follows a ramp faster).
const SHORT_SECS: i64 = 900;
/// Pseudo-count of the recent correction (a few logins do not swing the forecast).
const PRIOR: f64 = 3.0;
const RATIO_MIN: f64 = 0.2;
const RATIO_MAX: f64 = 5.0;

/// What is learnt for one class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassDemand {
    /// Smoothed logins per (weekday Monday = 0, bin): `7 * BINS` values.
    week: Vec<f64>,
    /// Days of each weekday folded into `week`.
    week_days: [u32; 7],
    /// Smoothed logins per bin across recent days: `BINS` values.
    daily: Vec<f64>,
    /// Days folded into `daily`.
    days: u32,
    /// The local day (days since 1970-01-01) being counted, and its counts per bin.
    today: Option<i64>,
    today_counts: Vec<u32>,
    /// Unix seconds of the logins of the last hour (or so), oldest first.
    recent: VecDeque<i64>,
}

/// Login arrivals per class, and their forecast. See the module documentation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemandModel {
    classes: BTreeMap<String, ClassDemand>,
    /// The zone in which weekdays and times of day are read; not serialised: set it again with
    /// [`DemandModel::set_time_zone`] after loading (UTC until then).
    #[serde(skip, default = "utc")]
    tz: TimeZone,
}

fn utc() -> TimeZone {
    TimeZone::UTC
}

impl Default for DemandModel {
    fn default() -> Self {
        DemandModel::new(TimeZone::UTC)
    }
}

/// A moment in local time: (local day number, weekday Monday = 0, seconds into the day).
fn local(tz: &TimeZone, at: i64) -> (i64, usize, i64) {
    let offset = Timestamp::from_second(at)
        .map(|ts| i64::from(tz.to_offset(ts).seconds()))
        .unwrap_or(0);
    let secs = at + offset;
    let day = secs.div_euclid(DAY_SECS);
    // 1970-01-01 was a Thursday (Monday = 0 makes it 3).
    let weekday = (day + 3).rem_euclid(7) as usize;
    (day, weekday, secs.rem_euclid(DAY_SECS))
}

impl ClassDemand {
    fn new() -> ClassDemand {
        ClassDemand {
            week: vec![0.0; 7 * BINS],
            daily: vec![0.0; BINS],
            today_counts: vec![0; BINS],
            ..ClassDemand::default()
        }
    }

    /// Folds the day being counted into the profiles, with `weekday` its weekday.
    fn close_day(&mut self, weekday: usize) {
        let first_week = self.week_days[weekday] == 0;
        let first_day = self.days == 0;
        for bin in 0..BINS {
            let n = f64::from(self.today_counts[bin]);
            let w = &mut self.week[weekday * BINS + bin];
            *w = if first_week {
                n
            } else {
                WEEK_ALPHA * n + (1.0 - WEEK_ALPHA) * *w
            };
            let d = &mut self.daily[bin];
            *d = if first_day {
                n
            } else {
                DAY_ALPHA * n + (1.0 - DAY_ALPHA) * *d
            };
        }
        self.week_days[weekday] = self.week_days[weekday].saturating_add(1);
        self.days = self.days.saturating_add(1);
        self.today_counts.iter_mut().for_each(|c| *c = 0);
    }

    fn record(&mut self, tz: &TimeZone, at: i64) {
        let (day, _, secs) = local(tz, at);
        match self.today {
            None => self.today = Some(day),
            Some(today) if day > today => {
                // Close the day counted, then the days without logins in between (up to a week).
                let mut d = today;
                while d < day && d < today + 7 {
                    self.close_day((d + 3).rem_euclid(7) as usize);
                    d += 1;
                }
                self.today = Some(day);
            }
            _ => {}
        }
        if self.today == Some(day) {
            self.today_counts[(secs / BIN_SECS) as usize] += 1;
        }
        self.recent.push_back(at);
        let newest = self.recent.back().copied().unwrap_or(at).max(at);
        while self
            .recent
            .front()
            .is_some_and(|&t| t <= newest - RECENT_SECS)
        {
            self.recent.pop_front();
        }
    }

    fn has_history(&self) -> bool {
        self.days > 0
    }

    /// Expected logins per bin of `weekday`, as the profiles blend them (no kernel).
    fn raw(&self, weekday: usize, bin: usize) -> f64 {
        let n = self.week_days[weekday].min(3);
        let daily = self.daily[bin];
        if n == 0 {
            return daily;
        }
        let w = f64::from(n) / (f64::from(n) + 0.5);
        w * self.week[weekday * BINS + bin] + (1.0 - w) * daily
    }

    /// Expected logins in the bin at (`weekday`, `bin`): the larger of the bin's own and the bin
    /// read through the `[1 2 1] / 4` kernel (`smooth`), or the bin's own only.
    fn bin_rate(&self, weekday: usize, bin: usize, smooth: bool) -> f64 {
        let own = self.raw(weekday, bin);
        if !smooth {
            return own;
        }
        let (pw, pb) = if bin == 0 {
            ((weekday + 6) % 7, BINS - 1)
        } else {
            (weekday, bin - 1)
        };
        let (nw, nb) = if bin == BINS - 1 {
            ((weekday + 1) % 7, 0)
        } else {
            (weekday, bin + 1)
        };
        let kernel = (self.raw(pw, pb) + 2.0 * own + self.raw(nw, nb)) / 4.0;
        own.max(kernel)
    }

    /// The profile's expected logins in `[from, to)` (Unix seconds); `smooth`: see [`Self::bin_rate`].
    fn profile(&self, tz: &TimeZone, from: i64, to: i64, smooth: bool) -> f64 {
        let mut total = 0.0;
        let mut t = from;
        while t < to {
            let (_, weekday, secs) = local(tz, t);
            let bin = (secs / BIN_SECS) as usize;
            let bin_end = t - secs % BIN_SECS + BIN_SECS;
            let end = bin_end.min(to);
            total += self.bin_rate(weekday, bin, smooth) * (end - t) as f64 / BIN_SECS as f64;
            t = end;
        }
        total
    }

    /// Logins recorded in `(now - window, now]`.
    fn recent_count(&self, now: i64, window: i64) -> usize {
        let start = self.recent.partition_point(|&t| t <= now - window);
        let end = self.recent.partition_point(|&t| t <= now);
        end - start
    }

    fn forecast(&self, tz: &TimeZone, now: i64, horizon: i64) -> f64 {
        let hour = self.recent_count(now, RECENT_SECS) as f64;
        let short = self.recent_count(now, SHORT_SECS) as f64;
        let recent_rate = (hour / RECENT_SECS as f64).max(short / SHORT_SECS as f64);
        let by_recent = recent_rate * horizon as f64;
        if !self.has_history() {
            return by_recent;
        }
        let ahead = self.profile(tz, now, now + horizon, true);
        let past = self.profile(tz, now - RECENT_SECS, now, false);
        let ratio = ((hour + PRIOR) / (past + PRIOR)).clamp(RATIO_MIN, RATIO_MAX);
        (ahead * ratio).max(by_recent)
    }
}

impl DemandModel {
    /// An empty model reading weekdays and times of day in `tz` (the engine's time zone).
    pub fn new(tz: TimeZone) -> DemandModel {
        DemandModel {
            classes: BTreeMap::new(),
            tz,
        }
    }

    /// Sets the time zone again (it is not serialised).
    pub fn set_time_zone(&mut self, tz: TimeZone) {
        self.tz = tz;
    }

    /// Records one login of `class` at `at`. Logins are expected in time order; one older than
    /// the day being counted only counts as recent.
    pub fn record_login(&mut self, class: &str, at: Timestamp) {
        if !self.classes.contains_key(class) {
            self.classes.insert(class.to_string(), ClassDemand::new());
        }
        if let Some(c) = self.classes.get_mut(class) {
            c.record(&self.tz, at.as_second());
        }
    }

    /// Expected logins of `class` in `[now, now + horizon_secs)`. 0 for a class never seen.
    pub fn forecast(&self, class: &str, now: Timestamp, horizon_secs: u64) -> f64 {
        let horizon = i64::try_from(horizon_secs).unwrap_or(i64::MAX / 4);
        self.classes
            .get(class)
            .map_or(0.0, |c| c.forecast(&self.tz, now.as_second(), horizon))
    }

    /// Whether any completed day of `class` has been learnt (else only the recent rate is used).
    pub fn has_history(&self, class: &str) -> bool {
        self.classes
            .get(class)
            .is_some_and(ClassDemand::has_history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Monday 5 January 2026, 00:00 UTC, plus `day` days and `secs` seconds.
    fn at(day: i64, secs: i64) -> Timestamp {
        let monday: Timestamp = "2026-01-05T00:00:00Z".parse().unwrap();
        Timestamp::from_second(monday.as_second() + day * 86_400 + secs).unwrap()
    }

    /// Records one login every `every` seconds of `[from, to)` on `day`.
    fn logins(m: &mut DemandModel, class: &str, day: i64, from: i64, to: i64, every: i64) {
        let mut t = from;
        while t < to {
            m.record_login(class, at(day, t));
            t += every;
        }
    }

    #[test]
    fn learns_a_steady_rate() {
        let mut m = DemandModel::default();
        for day in 0..14 {
            logins(&mut m, "office", day, 0, 86_400, 60);
        }
        // Day 14, 12:00, logins of the morning recorded: one a minute.
        logins(&mut m, "office", 14, 0, 12 * 3600, 60);
        let f = m.forecast("office", at(14, 12 * 3600), 3600);
        assert!((f - 60.0).abs() < 3.0, "forecast {f}, expected about 60");
        let f = m.forecast("office", at(14, 12 * 3600), 90);
        assert!((f - 1.5).abs() < 0.1, "forecast {f}, expected about 1.5");
    }

    #[test]
    fn learns_the_time_of_day_and_the_weekday() {
        let mut m = DemandModel::default();
        // Two weeks: weekdays 09:00-12:00 one login a minute, nothing on weekends.
        for day in 0..14 {
            if day % 7 < 5 {
                logins(&mut m, "office", day, 9 * 3600, 12 * 3600, 60);
            }
        }
        // Third Monday, 10:00, its morning recorded.
        logins(&mut m, "office", 14, 9 * 3600, 10 * 3600, 60);
        let busy = m.forecast("office", at(14, 10 * 3600), 1800);
        assert!((busy - 30.0).abs() < 4.0, "10:00-10:30: {busy}");
        // The quiet afternoon is forecast quiet.
        let quiet = m.forecast("office", at(14, 15 * 3600), 1800);
        assert!(quiet < 1.0, "15:00-15:30: {quiet}");
        // Saturday morning, with two Saturdays of history without logins.
        let saturday = m.forecast("office", at(19, 10 * 3600), 1800);
        assert!(saturday < busy / 4.0, "Saturday 10:00: {saturday}");
    }

    #[test]
    fn adapts_within_a_day_when_the_rate_doubles() {
        let mut m = DemandModel::default();
        for day in 0..14 {
            logins(&mut m, "office", day, 0, 86_400, 60);
        }
        // Day 14: two logins a minute from midnight. By 06:00 the forecast has followed.
        logins(&mut m, "office", 14, 0, 6 * 3600, 30);
        let f = m.forecast("office", at(14, 6 * 3600), 3600);
        assert!((f - 120.0).abs() < 10.0, "forecast {f}, expected about 120");
        // And it falls back when the rate halves again, within the hour.
        logins(&mut m, "office", 14, 6 * 3600, 7 * 3600, 60);
        let f = m.forecast("office", at(14, 7 * 3600), 3600);
        assert!((f - 60.0).abs() < 8.0, "forecast {f}, expected about 60");
    }

    #[test]
    fn a_weekday_with_no_history_uses_the_other_days() {
        let mut m = DemandModel::default();
        // Monday to Thursday of the first week only: 09:00-17:00, one login a minute.
        for day in 0..4 {
            logins(&mut m, "office", day, 9 * 3600, 17 * 3600, 60);
        }
        // Friday, nothing recorded yet: 09:00-10:00 is expected busy, not empty.
        let f = m.forecast("office", at(4, 9 * 3600), 3600);
        assert!(f > 40.0, "Friday 09:00 forecast {f}");
        // Friday 09:00-10:00 as usual, then 10:00-10:30 is forecast at the usual rate.
        logins(&mut m, "office", 4, 9 * 3600, 10 * 3600, 60);
        let f = m.forecast("office", at(4, 10 * 3600), 1800);
        assert!((f - 30.0).abs() < 4.0, "Friday 10:00 forecast {f}");
    }

    #[test]
    fn with_no_history_the_recent_rate_is_used() {
        let mut m = DemandModel::default();
        assert_eq!(m.forecast("office", at(0, 0), 3600), 0.0);
        // First day ever: ten logins in the last 15 minutes.
        logins(&mut m, "office", 0, 8 * 3600 + 10, 8 * 3600 + 900, 90);
        assert!(!m.has_history("office"));
        let f = m.forecast("office", at(0, 8 * 3600 + 900), 900);
        assert!((f - 10.0).abs() < 0.5, "forecast {f}");
    }

    #[test]
    fn reads_times_in_its_time_zone() {
        let tz = TimeZone::get("Asia/Tokyo").unwrap();
        let mut m = DemandModel::new(tz);
        // 09:00-10:00 in Tokyo is 00:00-01:00 UTC.
        for day in 0..7 {
            logins(&mut m, "office", day, 0, 3600, 60);
        }
        let f = m.forecast("office", at(7, 0), 3600);
        assert!(f > 40.0, "Tokyo 09:00: {f}");
        let f = m.forecast("office", at(7, 12 * 3600), 3600);
        assert!(f < 1.0, "Tokyo 21:00: {f}");
    }

    #[test]
    fn survives_a_serde_round_trip() {
        let mut m = DemandModel::default();
        for day in 0..3 {
            logins(&mut m, "dev", day, 9 * 3600, 11 * 3600, 120);
        }
        let json = serde_json::to_string(&m).unwrap();
        let back: DemandModel = serde_json::from_str(&json).unwrap();
        let now = at(3, 9 * 3600);
        assert_eq!(back.forecast("dev", now, 900), m.forecast("dev", now, 900));
        assert!(back.forecast("dev", now, 900) > 5.0);
    }
}
