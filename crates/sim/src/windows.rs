//! The hard moments of a run, each reported on its own: the declared events of each class, the
//! login bursts and the reconnects after a mass logout found in the trace, and the hours in
//! which logins waited.
//!
//! What is found in the trace is found after the fact, from the whole trace (the planner knew
//! only the past):
//!
//! - a **mass logout** of a class: at least [`MASS_END_MIN`] sessions, and at least
//!   [`MASS_END_SHARE`] of those open, end (logout or disconnect) within a minute of the first
//!   of them. Its window runs [`RECONNECT_WINDOW_SECS`] from that first end, and counts the
//!   *reconnects*: the first login of each of those users in it;
//! - a **burst** of a class: a run of clock minutes each with at least [`BURST_MIN`] logins
//!   and at least [`BURST_RATIO`] times the class's logins per minute over the hour before it
//!   (the reconnects of a mass logout are left out: they have their own window).

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::run::LoginOutcome;
use crate::trace::{EventKind, TraceEvent};
use deskpool_core::policy::Fleet;

/// Fewest sessions ending within a minute that make a mass logout.
pub const MASS_END_MIN: usize = 10;
/// Least share of a class's open sessions ending within a minute that make a mass logout.
pub const MASS_END_SHARE: f64 = 0.25;
/// How long after a mass logout its users' logins count as reconnects.
pub const RECONNECT_WINDOW_SECS: i64 = 900;
/// Fewest logins in a minute of a burst.
pub const BURST_MIN: usize = 10;
/// How many times the last hour's logins per minute a burst's minute has at least.
pub const BURST_RATIO: f64 = 5.0;

/// What one login got, as the run recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoginRecord {
    pub class: usize,
    pub user: String,
    /// Unix seconds of the login.
    pub at: i64,
    pub outcome: LoginOutcome,
    /// Seconds waited, for a login served after a wait.
    pub wait_secs: i64,
}

/// What the logins of a stretch of time got.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoginCounts {
    pub logins: u64,
    pub instant: u64,
    pub waited: u64,
    pub refused: u64,
    /// Longest wait of those who waited, in seconds (0 when none waited).
    pub wait_max_secs: f64,
}

impl LoginCounts {
    fn add(&mut self, l: &LoginRecord) {
        self.logins += 1;
        match l.outcome {
            LoginOutcome::Instant => self.instant += 1,
            LoginOutcome::Refused => self.refused += 1,
            LoginOutcome::Waited => {
                self.waited += 1;
                self.wait_max_secs = self.wait_max_secs.max(l.wait_secs as f64);
            }
        }
    }
}

/// What kind of moment a window is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowKind {
    /// A declared event of the class's policy (one window per day it runs).
    Event,
    /// A burst of logins found in the trace.
    Burst,
    /// The reconnects after a mass logout found in the trace.
    Reconnect,
}

/// The logins of one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowReport {
    pub kind: WindowKind,
    pub class: String,
    /// The event's name; for a reconnect, how many sessions the mass logout ended.
    pub name: String,
    pub from: String,
    pub to: String,
    #[serde(flatten)]
    pub counts: LoginCounts,
}

/// The logins of one clock hour in which at least one login waited or was refused.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourReport {
    /// The hour's start, RFC 3339 UTC.
    pub hour: String,
    #[serde(flatten)]
    pub counts: LoginCounts,
    /// The classes whose logins waited or were refused, with how many did.
    pub classes: Vec<(String, u64)>,
}

/// A stretch of one class's logins to report.
struct Window {
    kind: WindowKind,
    class: usize,
    name: String,
    from: i64,
    to: i64,
    /// Only these users' first logins in the window count (a reconnect window).
    users: Option<HashSet<String>>,
}

/// Every window of the run, in time order: declared events, bursts, reconnects.
pub(crate) fn windows(
    fleet: &Fleet,
    trace: &[TraceEvent],
    logins: &[LoginRecord],
) -> Vec<WindowReport> {
    let (Some(first), Some(last)) = (trace.first(), trace.last()) else {
        return Vec::new();
    };
    let mut found = declared(fleet, first.at, last.at);
    let reconnects = mass_logouts(fleet, trace);
    let reconnect_logins = reconnect_logins(&reconnects, trace);
    found.extend(bursts(fleet, trace, &reconnect_logins));
    found.extend(reconnects);
    found.sort_by_key(|w| (w.from, w.class));
    found.iter().map(|w| measure(fleet, w, logins)).collect()
}

fn fmt(t: i64) -> String {
    Timestamp::from_second(t).map_or_else(|_| t.to_string(), |ts| ts.to_string())
}

/// Each day of each declared event that the trace spans, in the engine's time zone.
fn declared(fleet: &Fleet, start: i64, end: i64) -> Vec<Window> {
    let tz = &fleet.engine.timezone;
    let day_of = |t: i64| {
        Timestamp::from_second(t)
            .ok()
            .map(|ts| ts.to_zoned(tz.clone()).date())
    };
    let (Some(first_day), Some(last_day)) = (day_of(start), day_of(end)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (ci, class) in fleet.classes.iter().enumerate() {
        for event in &class.policy.events {
            let mut day = event.first_day.max(first_day);
            while day <= event.last_day.min(last_day) {
                let at = |secs: u32| local_instant(tz, day, secs);
                if let (Some(from), Some(to)) = (at(event.from.0), at(event.to.0)) {
                    out.push(Window {
                        kind: WindowKind::Event,
                        class: ci,
                        name: event.name.clone(),
                        from,
                        to,
                        users: None,
                    });
                }
                let Some(next) = day.tomorrow().ok() else {
                    break;
                };
                day = next;
            }
        }
    }
    out
}

/// `secs` after local midnight of `day` (24:00 is the next midnight), as Unix seconds.
fn local_instant(tz: &TimeZone, day: jiff::civil::Date, secs: u32) -> Option<i64> {
    let midnight = day.to_zoned(tz.clone()).ok()?.timestamp().as_second();
    let next = day.tomorrow().ok()?.to_zoned(tz.clone()).ok()?;
    // A day of a time-zone change is not 24 h long: 24:00 is the next midnight.
    Some(if secs >= 86_400 {
        next.timestamp().as_second()
    } else {
        midnight + i64::from(secs)
    })
}

/// The mass logouts of each class, as reconnect windows naming their users.
fn mass_logouts(fleet: &Fleet, trace: &[TraceEvent]) -> Vec<Window> {
    let mut out = Vec::new();
    for ci in 0..fleet.classes.len() {
        // (time, user, sessions open just before) of each session end of the class.
        let mut open = 0usize;
        let mut ends: Vec<(i64, &str, usize)> = Vec::new();
        for e in trace.iter().filter(|e| e.class == ci) {
            match e.kind {
                EventKind::Login => open += 1,
                EventKind::Logout | EventKind::Disconnect => {
                    ends.push((e.at, e.user.as_str(), open));
                    open = open.saturating_sub(1);
                }
            }
        }
        let mut i = 0;
        while i < ends.len() {
            let (start, _, open_before) = ends[i];
            let within = ends[i..]
                .iter()
                .take_while(|(t, _, _)| *t < start + 60)
                .count();
            let share = within as f64 / open_before.max(1) as f64;
            if within >= MASS_END_MIN && share >= MASS_END_SHARE {
                let users: HashSet<String> = ends[i..i + within]
                    .iter()
                    .map(|(_, u, _)| u.to_string())
                    .collect();
                out.push(Window {
                    kind: WindowKind::Reconnect,
                    class: ci,
                    name: format!("after {within} of {open_before} sessions ended"),
                    from: start,
                    to: start + RECONNECT_WINDOW_SECS,
                    users: Some(users),
                });
                i += within;
            } else {
                i += 1;
            }
        }
    }
    out
}

/// (class, user, time) of every login that is a reconnect of a mass logout.
fn reconnect_logins(reconnects: &[Window], trace: &[TraceEvent]) -> HashSet<(usize, String, i64)> {
    let mut out = HashSet::new();
    for w in reconnects {
        let Some(users) = &w.users else { continue };
        let mut seen: HashSet<&str> = HashSet::new();
        for e in trace_in(trace, w.from, w.to) {
            if e.class == w.class
                && e.kind == EventKind::Login
                && users.contains(&e.user)
                && seen.insert(e.user.as_str())
            {
                out.insert((e.class, e.user.clone(), e.at));
            }
        }
    }
    out
}

/// The trace's events from `from` (included) to `to` (excluded).
fn trace_in(trace: &[TraceEvent], from: i64, to: i64) -> &[TraceEvent] {
    let a = trace.partition_point(|e| e.at < from);
    let b = trace.partition_point(|e| e.at < to);
    &trace[a..b]
}

/// Runs of burst minutes per class, reconnects left out.
fn bursts(
    fleet: &Fleet,
    trace: &[TraceEvent],
    reconnects: &HashSet<(usize, String, i64)>,
) -> Vec<Window> {
    let mut out = Vec::new();
    for ci in 0..fleet.classes.len() {
        let mut per_minute: HashMap<i64, usize> = HashMap::new();
        for e in trace
            .iter()
            .filter(|e| e.class == ci && e.kind == EventKind::Login)
        {
            if !reconnects.contains(&(ci, e.user.clone(), e.at)) {
                *per_minute.entry(e.at.div_euclid(60)).or_default() += 1;
            }
        }
        let mut minutes: Vec<i64> = per_minute.keys().copied().collect();
        minutes.sort_unstable();
        let count = |m: i64| per_minute.get(&m).copied().unwrap_or(0);
        let mut run: Option<(i64, i64)> = None;
        for &m in &minutes {
            let hour_before: usize = (m - 60..m).map(count).sum();
            let burst =
                count(m) >= BURST_MIN && count(m) as f64 >= BURST_RATIO * hour_before as f64 / 60.0;
            if !burst {
                continue;
            }
            run = match run {
                Some((a, b)) if b + 1 == m => Some((a, m)),
                Some((a, b)) => {
                    out.push(burst_window(ci, a, b));
                    Some((m, m))
                }
                None => Some((m, m)),
            };
        }
        if let Some((a, b)) = run {
            out.push(burst_window(ci, a, b));
        }
    }
    out
}

fn burst_window(class: usize, first_minute: i64, last_minute: i64) -> Window {
    Window {
        kind: WindowKind::Burst,
        class,
        name: "burst".into(),
        from: first_minute * 60,
        to: (last_minute + 1) * 60,
        users: None,
    }
}

/// The logins of `w`'s class in it (for a reconnect window, its users' first logins).
fn measure(fleet: &Fleet, w: &Window, logins: &[LoginRecord]) -> WindowReport {
    let mut r = WindowReport {
        kind: w.kind,
        class: fleet.classes[w.class].name.clone(),
        name: w.name.clone(),
        from: fmt(w.from),
        to: fmt(w.to),
        counts: LoginCounts::default(),
    };
    let mut seen: HashSet<&str> = HashSet::new();
    for l in logins {
        if l.class != w.class || l.at < w.from || l.at >= w.to {
            continue;
        }
        if let Some(users) = &w.users
            && (!users.contains(&l.user) || !seen.insert(l.user.as_str()))
        {
            continue;
        }
        r.counts.add(l);
    }
    r
}

/// The clock hours (UTC) in which a login waited or was refused, in order.
pub(crate) fn hours(fleet: &Fleet, logins: &[LoginRecord]) -> Vec<HourReport> {
    let mut by_hour: HashMap<i64, Vec<&LoginRecord>> = HashMap::new();
    for l in logins {
        by_hour.entry(l.at.div_euclid(3600)).or_default().push(l);
    }
    let mut keys: Vec<i64> = by_hour.keys().copied().collect();
    keys.sort_unstable();
    let mut out = Vec::new();
    for h in keys {
        let ls = &by_hour[&h];
        let mut row = HourReport {
            hour: fmt(h * 3600),
            counts: LoginCounts::default(),
            classes: Vec::new(),
        };
        let mut per_class = vec![0u64; fleet.classes.len()];
        for l in ls {
            row.counts.add(l);
            if l.outcome != LoginOutcome::Instant {
                per_class[l.class] += 1;
            }
        }
        if row.counts.waited + row.counts.refused == 0 {
            continue;
        }
        row.classes = fleet
            .classes
            .iter()
            .zip(per_class)
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| (c.name.clone(), n))
            .collect();
        out.push(row);
    }
    out
}
