//! The demand model: what the predictive buffer knows about when users log in.
//!
//! Pure (no clock, no I/O) and serialisable, so the engine can persist it and the simulator can
//! replay a trace through it. Per class it learns the **login arrival rate** and forecasts the
//! logins expected in a window `[now, now + horizon)` ([`DemandModel::forecast`]); the caller
//! passes that to the planner, which sizes a predictive buffer from it as a Poisson quantile
//! ([`crate::plan::predictive_spare`]). [`DemandModel::planning_mean`] is the forecast raised so
//! that this Poisson quantile holds the learnt clustering of logins, and
//! [`DemandModel::lead_horizon`] the horizon over which creation can still deliver it.
//!
//! # The model
//!
//! Time is read in the model's time zone, cut into days and 15-minute **bins** (96 a day). Each
//! class keeps the logins per minute of the day being counted, the completed days of the last
//! four weeks (logins and clustering per bin), the logins of the last hour, and the users seen.
//!
//! - **Profiles** ([`profile`]): a weekday's expected logins per bin is the median of its last
//!   (up to four) weeks, blended with the median of the last seven days whatever their weekday
//!   (the weekday's weight `n / (n + 0.5)` for `n` weeks of its own, up to 3), so a weekday never
//!   seen yet still has a time-of-day shape and one storm or outage is not learnt as a daily
//!   pattern. Ahead, each bin counts as the larger of itself and its `[1 2 1] / 4` smoothing with
//!   its neighbours (a ramp is expected a little early, never late).
//! - **Correction by the last hour**: the profile's forecast is scaled by `(logins in the last
//!   hour + 3) / (profile's logins for that hour + 3)`, kept within `[0.05, 5]`, and never below
//!   the recent rate (the larger of the last 15 minutes' and the last hour's) over the window.
//!   With no history at all the recent rate alone is used.
//! - **Bursts** ([`burst`]): a count in the last 30 s, 2 min or 10 min improbable under the rate
//!   expected from the hour before it and from the profile (Poisson tail below 0.001, at least 5
//!   logins) is a change point. The burst is expected to go on at its rate through the horizon
//!   and for as long again as it has been seen, up to one more horizon (`count × (horizon +
//!   min(window, horizon)) / window`), so a storm's likely remainder is ordered at once, not one
//!   desktop per login that missed.
//! - **Users**: when logins name their user ([`DemandModel::record_user_login`]), the class's
//!   population is the distinct users seen over the kept days, and no forecast exceeds the users
//!   not logged in now (seen today and not logged out since: [`DemandModel::record_logout`]).
//!   The planner bounds the result by the cap.

mod burst;
mod calendar;
mod profile;
mod reconnect;

use std::collections::{HashMap, HashSet, VecDeque};

use crate::policy::{ClassSpec, Fleet};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use burst::{BURST_WINDOWS, FLOOR_RATE, clustered_quantile, is_burst, poisson_equivalent};
use calendar::Calendar;
use profile::{BIN_MINUTES, DayRecord, KEPT_DAYS, Profiles};
use reconnect::Logouts;

/// The window in which a mass logout is counted (see [`reconnect`]).
pub const MASS_LOGOUT_WINDOW_SECS: i64 = reconnect::MASS_WINDOW_SECS;

/// Length of a time-of-day bin.
pub const BIN_SECS: i64 = 900;
/// Bins in a day.
pub const BINS: usize = (86_400 / BIN_SECS) as usize;
const DAY_SECS: i64 = 86_400;
/// Window of the recent-rate correction.
const RECENT_SECS: i64 = 3_600;
/// Short window of the recent rate (follows a ramp faster).
const SHORT_SECS: i64 = 900;
/// Pseudo-count of the recent correction (a few logins do not swing the forecast).
const PRIOR: f64 = 3.0;
/// A quiet day is followed down to a twentieth of the profile (a weekend or holiday with no
/// history of its own reads the other days' profile: the last hour corrects it).
const RATIO_MIN: f64 = 0.05;
const RATIO_MAX: f64 = 5.0;
/// The longest look-ahead [`DemandModel::lead_horizon`] asks for beyond the lead time.
const MAX_BUILD_AHEAD_SECS: f64 = 3_600.0;
/// The steps in which [`DemandModel::plan_mean_for`] looks for a peak beyond the lead time.
const BUILD_AHEAD_STEP_SECS: i64 = 300;
/// An hour of the day needs this many logins with a told outcome over the recent days before
/// its misses raise its service level.
const OUTCOME_MIN_LOGINS: u32 = 20;
/// The highest service level a missed hour is raised to.
const RAISED_LEVEL_MAX: f64 = 0.9999;

/// What is learnt for one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassDemand {
    /// Completed days, oldest first, at most [`KEPT_DAYS`].
    days: VecDeque<DayRecord>,
    /// Learnt from `days` when a day completes.
    profiles: Profiles,
    /// The local day (days since 1970-01-01) being counted, and its logins per minute.
    today: Option<i64>,
    today_minutes: Vec<u32>,
    /// Unix seconds of the logins of the last hour (or so), oldest first.
    recent: VecDeque<i64>,
    /// User → the local day they last logged in (kept days only); empty when logins are
    /// recorded without their user.
    last_seen: HashMap<String, i64>,
    /// Users of `last_seen` seen on the day being counted.
    #[serde(default)]
    seen_today: usize,
    /// Users logged in now: seen today (or since, when logouts are recorded) and not logged out.
    present: HashSet<String>,
    /// Whether any logout was recorded (then `present` is not reset at midnight).
    logouts_recorded: bool,
    /// The logouts of the last minute, and a mass logout whose users are expected back.
    #[serde(default)]
    logouts: Logouts,
    /// Whether the day being counted is a recognised outage.
    #[serde(default)]
    today_outage: bool,
    /// Seconds of the day of its logins, in order (for the window peaks).
    #[serde(default)]
    today_seconds: Vec<u32>,
    /// Per hour of the day being counted: logins with a told outcome, and misses.
    #[serde(default = "no_outcomes")]
    today_outcomes: Vec<[u32; 2]>,
    /// The class's one-off days ([`DemandModel::follow_calendar`]); not serialised.
    #[serde(skip)]
    calendar: Calendar,
}

fn no_outcomes() -> Vec<[u32; 2]> {
    vec![[0; 2]; 24]
}

/// Login arrivals per class, and their forecast. See the module documentation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemandModel {
    classes: std::collections::BTreeMap<String, ClassDemand>,
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
    (day, weekday_of(day), secs.rem_euclid(DAY_SECS))
}

/// Weekday (Monday = 0) of a local day number: 1970-01-01 was a Thursday.
fn weekday_of(day: i64) -> usize {
    (day + 3).rem_euclid(7) as usize
}

impl Default for ClassDemand {
    fn default() -> ClassDemand {
        ClassDemand {
            days: VecDeque::new(),
            profiles: Profiles::default(),
            today: None,
            today_minutes: vec![0; BINS * BIN_MINUTES],
            recent: VecDeque::new(),
            last_seen: HashMap::new(),
            seen_today: 0,
            present: HashSet::new(),
            logouts_recorded: false,
            logouts: Logouts::default(),
            today_outage: false,
            today_seconds: Vec::new(),
            today_outcomes: no_outcomes(),
            calendar: Calendar::default(),
        }
    }
}

impl ClassDemand {
    /// Completes the local day `day` (its counts are `today_minutes`) and learns again.
    fn close_day(&mut self, day: i64) {
        let mut record =
            DayRecord::from_logins(weekday_of(day), &self.today_minutes, &self.today_seconds);
        record.day = day;
        record.outage = std::mem::take(&mut self.today_outage);
        record.outcomes = std::mem::replace(&mut self.today_outcomes, no_outcomes());
        self.today_seconds.clear();
        self.days.push_back(record);
        while self.days.len() > KEPT_DAYS {
            self.days.pop_front();
        }
        self.today_minutes.iter_mut().for_each(|c| *c = 0);
        let oldest = day - KEPT_DAYS as i64;
        self.last_seen.retain(|_, seen| *seen > oldest);
        self.seen_today = 0;
        if !self.logouts_recorded {
            self.present.clear();
        }
    }

    fn record(&mut self, tz: &TimeZone, at: i64, user: Option<&str>) {
        let (day, _, secs) = local(tz, at);
        match self.today {
            None => self.today = Some(day),
            Some(today) if day > today => {
                // Close the day counted, then the days without logins in between (up to a week).
                let mut d = today;
                while d < day && d < today + 7 {
                    self.close_day(d);
                    d += 1;
                }
                self.profiles = Profiles::learn(&self.days, &self.calendar);
                self.today = Some(day);
            }
            _ => {}
        }
        if self.today == Some(day)
            && let Some(minute) = self.today_minutes.get_mut((secs / 60) as usize)
        {
            *minute += 1;
            self.today_seconds.push(secs as u32);
        }
        if let Some(user) = user {
            let previous = self.last_seen.insert(user.to_string(), day);
            if self.today == Some(day) && previous != Some(day) {
                self.seen_today += 1;
            }
            self.present.insert(user.to_string());
            if self.logouts.login(user, at) {
                self.today_outage = true;
            }
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

    fn record_logout(&mut self, user: &str, at: i64) -> Vec<String> {
        self.logouts_recorded = true;
        self.present.remove(user);
        self.logouts.logout(user, at, self.present.len())
    }

    fn record_reconnect(&mut self, user: &str, at: i64) {
        self.present.insert(user.to_string());
        if self.logouts.login(user, at) {
            self.today_outage = true;
        }
    }

    fn record_outcome(&mut self, tz: &TimeZone, at: i64, instant: bool) {
        let (day, _, secs) = local(tz, at);
        if self.today != Some(day) {
            return;
        }
        if let Some(hour) = self.today_outcomes.get_mut((secs / 3600) as usize) {
            hour[0] += 1;
            hour[1] += u32::from(!instant);
        }
    }

    fn has_history(&self) -> bool {
        !self.days.is_empty()
    }

    /// Expected logins in the bin at (`weekday`, `bin`): the larger of the bin's own and the bin
    /// read through the `[1 2 1] / 4` kernel (`smooth`), or the bin's own only.
    fn bin_rate(&self, weekday: usize, bin: usize, smooth: bool) -> f64 {
        let p = &self.profiles;
        let own = p.raw(weekday, bin);
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
        let kernel = (p.raw(pw, pb) + 2.0 * own + p.raw(nw, nb)) / 4.0;
        own.max(kernel)
    }

    /// The profile's expected logins in `[from, to)` (Unix seconds); `smooth`: see [`Self::bin_rate`].
    fn profile(&self, tz: &TimeZone, from: i64, to: i64, smooth: bool) -> f64 {
        let mut total = 0.0;
        let mut t = from;
        while t < to {
            let (day, weekday, secs) = local(tz, t);
            // A holiday is expected as a Sunday.
            let weekday = if self.calendar.is_holiday(day) {
                6
            } else {
                weekday
            };
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

    /// The forecast of a burst under way, if one is recognised: the largest over the windows
    /// whose count is improbable under the rate expected from the hour before it and from the
    /// profile (see the module documentation).
    fn burst(&self, tz: &TimeZone, now: i64, horizon: i64) -> Option<f64> {
        let mut best: Option<f64> = None;
        for window in BURST_WINDOWS {
            let count = self.recent_count(now, window);
            if count < burst::BURST_MIN_LOGINS {
                continue;
            }
            let before = self.recent_count(now - window, RECENT_SECS - window);
            let past_rate = before as f64 / (RECENT_SECS - window) as f64;
            let profile_rate = if self.has_history() {
                self.profile(tz, now - window, now, true) / window as f64
            } else {
                0.0
            };
            let expected = past_rate.max(profile_rate).max(FLOOR_RATE) * window as f64;
            if is_burst(count, expected) {
                let lasting = horizon + window.min(horizon);
                let ahead = count as f64 * lasting as f64 / window as f64;
                best = Some(best.map_or(ahead, |b: f64| b.max(ahead)));
            }
        }
        best
    }

    /// Users of the class not seen yet today (the most a storm can still bring), when logins
    /// name their users and a day is learnt.
    fn users_not_seen_today(&self) -> Option<f64> {
        if self.last_seen.is_empty() || !self.has_history() {
            return None;
        }
        Some(self.last_seen.len().saturating_sub(self.seen_today) as f64)
    }

    /// Users of the class not logged in now, when logins name their users and a day is learnt.
    fn users_not_present(&self) -> Option<f64> {
        if self.last_seen.is_empty() || !self.has_history() {
            return None;
        }
        Some(self.last_seen.len().saturating_sub(self.present.len()) as f64)
    }

    fn forecast(&self, tz: &TimeZone, now: i64, horizon: i64) -> f64 {
        let hour = self.recent_count(now, RECENT_SECS) as f64;
        let short = self.recent_count(now, SHORT_SECS) as f64;
        let recent_rate = (hour / RECENT_SECS as f64).max(short / SHORT_SECS as f64);
        let mut expected = recent_rate * horizon as f64;
        let mut usual = 0.0;
        if self.has_history() {
            usual = self.profile(tz, now, now + horizon, true);
            let past = self.profile(tz, now - RECENT_SECS, now, false);
            let ratio = ((hour + PRIOR) / (past + PRIOR)).clamp(RATIO_MIN, RATIO_MAX);
            expected = expected.max(usual * ratio);
        }
        if let Some(burst) = self.burst(tz, now, horizon) {
            // A storm brings users who have not come yet today.
            let remainder = self.users_not_seen_today().map_or(burst, |u| burst.min(u));
            expected = expected.max(remainder);
        }
        // After a mass logout, its users are expected back all at once (on top of the usual
        // logins; the recent rate already counts those of them who are back).
        let back = self.logouts.expected_back(now);
        if back > 0.0 {
            expected = expected.max(usual + back);
        }
        match self.users_not_present() {
            Some(users) => expected.min(users),
            None => expected,
        }
    }

    /// How clustered logins are around `[now, now + horizon)`: the largest learnt dispersion of
    /// the bins it touches and their neighbours (1 with no history: Poisson).
    fn dispersion(&self, tz: &TimeZone, now: i64, horizon: i64) -> f64 {
        if !self.has_history() {
            return 1.0;
        }
        let mut worst: f64 = 1.0;
        let mut t = now - BIN_SECS;
        while t <= now + horizon + BIN_SECS {
            let (_, _, secs) = local(tz, t);
            let bin = (secs / BIN_SECS) as usize;
            worst = worst.max(self.profiles.dispersion.get(bin).copied().unwrap_or(1.0));
            t += BIN_SECS;
        }
        worst
    }

    /// The service level to size the spare for around `[now, now + lead)`: `service_level`, or
    /// more for an hour of the day whose logins missed it on the recent days (the allowed share
    /// of misses scaled down by how far it was exceeded).
    fn raised_level(&self, tz: &TimeZone, now: i64, lead: i64, service_level: f64) -> f64 {
        let allowed = 1.0 - service_level;
        let mut level = service_level;
        for t in [now, now + lead] {
            let (_, _, secs) = local(tz, t);
            let Some(&[logins, misses]) = self.profiles.outcomes.get((secs / 3600) as usize) else {
                continue;
            };
            if logins < OUTCOME_MIN_LOGINS || allowed <= 0.0 {
                continue;
            }
            let missed = f64::from(misses) / f64::from(logins);
            if missed > allowed {
                level = level.max((1.0 - allowed * allowed / missed).min(RAISED_LEVEL_MAX));
            }
        }
        level
    }

    /// The most logins seen in a `lead`-second window in the bins `[now, now + lead]` touches,
    /// on the recent usual days (0 with no history).
    fn peak_ahead(&self, tz: &TimeZone, now: i64, lead: i64) -> f64 {
        if !self.has_history() {
            return 0.0;
        }
        let mut peak: f64 = 0.0;
        let mut t = now;
        loop {
            let (_, _, secs) = local(tz, t);
            peak = peak.max(self.profiles.peak((secs / BIN_SECS) as usize, lead));
            if t >= now + lead {
                break;
            }
            t = (t - secs % BIN_SECS + BIN_SECS).min(now + lead);
        }
        peak
    }

    /// The desktops to hold now so that a forecast peak beyond the lead time is met although
    /// creation delivers only `refill` a second: the most, over horizons `lead + k × STEP` up to
    /// an hour beyond the lead time, of the logins forecast by then less what creation can
    /// still build before then. 0 where creation keeps up.
    fn build_ahead(&self, tz: &TimeZone, now: i64, lead: i64, refill: f64) -> f64 {
        if refill.is_nan() || refill <= 0.0 {
            return 0.0;
        }
        // The forecast grows with the horizon: when the whole look-ahead's logins are fewer
        // than creation builds in one step, no step needs anything ahead.
        let furthest = self.forecast(tz, now, lead + MAX_BUILD_AHEAD_SECS as i64);
        if furthest <= refill * BUILD_AHEAD_STEP_SECS as f64 {
            return 0.0;
        }
        let mut needed: f64 = 0.0;
        let mut beyond = BUILD_AHEAD_STEP_SECS;
        while beyond as f64 <= MAX_BUILD_AHEAD_SECS {
            let built = refill * beyond as f64;
            needed = needed.max(self.forecast(tz, now, lead + beyond) - built);
            beyond += BUILD_AHEAD_STEP_SECS;
        }
        needed
    }

    /// See [`DemandModel::planning_mean`]; `lead` is the time a desktop takes to become ready.
    fn planning_mean(
        &self,
        tz: &TimeZone,
        now: i64,
        lead: i64,
        horizon: i64,
        service_level: f64,
    ) -> f64 {
        let mean = self.forecast(tz, now, horizon);
        let level = self.raised_level(tz, now, lead, service_level);
        let dispersion = self.dispersion(tz, now, horizon);
        if dispersion <= 1.0 && level <= service_level {
            // Poisson arrivals at the service level asked: the planner's own quantile.
            return mean;
        }
        let mut quantile = clustered_quantile(mean, dispersion, level);
        if level > service_level {
            // An hour that missed also holds its usual worst moment: the most logins seen in a
            // lead time on the recent days (a desktop for each, the login at hand included).
            let peak = self.peak_ahead(tz, now, lead).ceil() as u32;
            quantile = quantile.max(peak.saturating_sub(1));
        }
        if let Some(users) = self.users_not_present() {
            quantile = quantile.min(users as u32);
        }
        poisson_equivalent(mean, quantile, service_level)
    }
}

impl DemandModel {
    /// An empty model reading weekdays and times of day in `tz` (the engine's time zone).
    pub fn new(tz: TimeZone) -> DemandModel {
        DemandModel {
            classes: std::collections::BTreeMap::new(),
            tz,
        }
    }

    /// An empty model for `fleet`: its time zone and its calendar ([`Self::follow_calendar`]).
    pub fn with_calendar(fleet: &Fleet) -> DemandModel {
        let mut model = DemandModel::new(fleet.engine.timezone.clone());
        model.follow_calendar(fleet);
        model
    }

    /// Sets the time zone again (it is not serialised).
    pub fn set_time_zone(&mut self, tz: TimeZone) {
        self.tz = tz;
    }

    fn class_mut(&mut self, class: &str) -> &mut ClassDemand {
        self.classes.entry(class.to_string()).or_default()
    }

    /// Records one login of `class` at `at`, its user unknown (no population bound is learnt).
    /// Logins are expected in time order; one older than the day being counted only counts as
    /// recent.
    pub fn record_login(&mut self, class: &str, at: Timestamp) {
        let tz = self.tz.clone();
        self.class_mut(class).record(&tz, at.as_second(), None);
    }

    /// Records one login of `user` in `class` at `at`: as [`Self::record_login`], and the class
    /// learns its population of users and who is logged in.
    pub fn record_user_login(&mut self, class: &str, user: &str, at: Timestamp) {
        let tz = self.tz.clone();
        self.class_mut(class)
            .record(&tz, at.as_second(), Some(user));
    }

    /// Records that `user` of `class` logged out at `at`: they can log in again, so they count
    /// among the users a burst can still bring; a mass logout (a large share of the class's
    /// users within a minute) expects its users back at once. Returns the users this logout
    /// shows to be part of a mass logout (see [`reconnect`]): a class with a disconnect grace
    /// keeps their desktops for them, as at a disconnect.
    pub fn record_logout(&mut self, class: &str, user: &str, at: Timestamp) -> Vec<String> {
        self.class_mut(class).record_logout(user, at.as_second())
    }

    /// Records that the desktop of `user`, of the mass logout of `class` under way, is kept
    /// for them: the forecast no longer counts them among the users whose desktops are to be
    /// made at once.
    pub fn kept_for_reconnect(&mut self, class: &str, user: &str) {
        self.class_mut(class).logouts.keep(user);
    }

    /// Records that `user` of `class` got their kept (disconnected) desktop back at `at`: logged
    /// in again, back from a mass logout if they were in one, and no login learnt (nothing was
    /// asked of the buffer).
    pub fn record_reconnect(&mut self, class: &str, user: &str, at: Timestamp) {
        self.class_mut(class).record_reconnect(user, at.as_second());
    }

    /// Whether a logout of `class` at `at` joins a mass logout under way: a class with a
    /// disconnect grace takes it as a disconnect.
    pub fn in_mass_logout(&self, class: &str, at: Timestamp) -> bool {
        self.classes
            .get(class)
            .is_some_and(|c| c.logouts.in_wave(at.as_second()))
    }

    /// Records whether a login of `class` at `at` found a desktop ready (`instant`): an hour of
    /// the day whose logins missed the service level on the recent days is planned at a higher
    /// one.
    pub fn record_outcome(&mut self, class: &str, at: Timestamp, instant: bool) {
        let tz = self.tz.clone();
        self.class_mut(class)
            .record_outcome(&tz, at.as_second(), instant);
    }

    /// Reads the one-off days of every class of `fleet` (holidays and declared events: not
    /// learnt as the usual week; a holiday is expected as a Sunday) and learns again.
    pub fn follow_calendar(&mut self, fleet: &Fleet) {
        for spec in &fleet.classes {
            let class = self.class_mut(&spec.name);
            let calendar = Calendar::of(fleet, &spec.name);
            if class.calendar != calendar {
                class.calendar = calendar;
                class.profiles = Profiles::learn(&class.days, &class.calendar);
            }
        }
    }

    /// Expected logins of `class` in `[now, now + horizon_secs)`. 0 for a class never seen.
    pub fn forecast(&self, class: &str, now: Timestamp, horizon_secs: u64) -> f64 {
        let horizon = i64::try_from(horizon_secs).unwrap_or(i64::MAX / 4);
        self.classes
            .get(class)
            .map_or(0.0, |c| c.forecast(&self.tz, now.as_second(), horizon))
    }

    /// The mean to give a planner that sizes its spare as the Poisson quantile at
    /// `service_level` ([`crate::plan::predictive_spare`]): the forecast over
    /// `[now, now + horizon_secs)`, raised so that this quantile is the quantile of the
    /// clustered (negative binomial) arrivals learnt for that time of day. The forecast itself
    /// where logins come as a Poisson stream.
    pub fn planning_mean(
        &self,
        class: &str,
        now: Timestamp,
        horizon_secs: u64,
        service_level: f64,
    ) -> f64 {
        let Some(c) = self.classes.get(class) else {
            return 0.0;
        };
        let horizon = i64::try_from(horizon_secs).unwrap_or(i64::MAX / 4);
        c.planning_mean(&self.tz, now.as_second(), horizon, horizon, service_level)
    }

    /// The horizon to forecast over so that what is forecast can still be built in time:
    /// `lead_secs` (the time a desktop takes to become ready) plus the time creation needs, at
    /// `refill_per_sec` desktops a second (pacing × active hosts / build time), to build the
    /// excess of the forecast over `lead_secs` beyond the `stock` (desktops ready or in
    /// creation). At most an hour beyond the lead time; the lead time alone when creation
    /// keeps up.
    pub fn lead_horizon(
        &self,
        class: &str,
        now: Timestamp,
        lead_secs: u64,
        refill_per_sec: f64,
        stock: u64,
    ) -> u64 {
        if refill_per_sec.is_nan() || refill_per_sec <= 0.0 {
            return lead_secs;
        }
        let excess = (self.forecast(class, now, lead_secs) - stock as f64).max(0.0);
        let build = (excess / refill_per_sec).min(MAX_BUILD_AHEAD_SECS);
        lead_secs.saturating_add(build.ceil() as u64)
    }

    /// The mean a predictive class's spare is planned from, the one rule of the engine and the
    /// simulator: [`Self::planning_mean`] over [`Self::lead_horizon`], with the refill rate that
    /// of the class's pacing on `active_hosts` (the slower of clones and boots per host, one
    /// build per lead time) and `stock` its desktops ready or in creation. The lead time is the
    /// policy's `ready_secs`, or `measured_ready` (the measured time to ready) when longer.
    pub fn plan_mean_for(
        &self,
        class: &ClassSpec,
        service_level: f64,
        now: Timestamp,
        active_hosts: usize,
        stock: u64,
        measured_ready: Option<u64>,
    ) -> f64 {
        let lead = crate::timings::lead_secs(class.policy.ready_secs, measured_ready);
        let pacing = &class.policy.pacing;
        let per_host = pacing.clones_per_host.min(pacing.boots_per_host);
        let refill = f64::from(per_host) * active_hosts as f64 / lead.max(1) as f64;
        let horizon = self.lead_horizon(&class.name, now, lead, refill, stock);
        let Some(c) = self.classes.get(&class.name) else {
            return 0.0;
        };
        let to_secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX / 4);
        let planned = c.planning_mean(
            &self.tz,
            now.as_second(),
            to_secs(lead),
            to_secs(horizon),
            service_level,
        );
        planned.max(c.build_ahead(&self.tz, now.as_second(), to_secs(lead), refill))
    }

    /// Whether any completed day of `class` has been learnt (else only the recent rate is used).
    pub fn has_history(&self, class: &str) -> bool {
        self.classes
            .get(class)
            .is_some_and(ClassDemand::has_history)
    }
}

#[cfg(test)]
mod tests;
