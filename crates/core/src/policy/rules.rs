//! The rules a policy must follow, on plain values.
//!
//! Every way a policy enters deskpool goes through these functions: the config loader
//! (`config::validate`, which places each problem at its position in the file and then checks
//! the policy it built with [`Policy::problems`] once more), the policy editor and the engine's
//! `set_policy` command (both [`Policy::problems`], which names the field). So a policy one of
//! them accepts is a policy the others accept.

use crate::policy::calendar::events_overlap;
use crate::policy::schedule::overlaps;
use crate::policy::{
    BufferRule, Event, LogoutAction, Pacing, Period, Policy, ShutoffAction, TimeOfDay, Weekdays,
};

/// Largest class cap (and so largest production, floor and ceiling).
pub const MAX_CAP: i64 = 100_000;
pub const WEEK_SECS: i64 = 7 * 86_400;

/// An inclusive range an integer key must lie in.
#[derive(Debug, Clone, Copy)]
pub struct IntRange {
    pub lo: i64,
    pub hi: i64,
}

impl IntRange {
    pub const fn new(lo: i64, hi: i64) -> IntRange {
        IntRange { lo, hi }
    }

    /// "expected an integer from 1 to 512" (or "of at least 1" without an upper bound).
    pub fn expected(self) -> String {
        if self.hi == i64::MAX {
            format!("expected an integer of at least {}", self.lo)
        } else {
            format!("expected an integer from {} to {}", self.lo, self.hi)
        }
    }

    /// What is wrong with `v`, if anything: `-2 is negative; expected an integer from 1 to 512`.
    pub fn problem(self, v: i64) -> Option<String> {
        let what = if v < 0 && self.lo >= 0 {
            "is negative"
        } else if v < self.lo {
            "is too small"
        } else if v > self.hi {
            "is too large"
        } else {
            return None;
        };
        Some(format!("{v} {what}; {}", self.expected()))
    }
}

pub const CAP: IntRange = IntRange::new(1, MAX_CAP);
pub const PRODUCTION: IntRange = IntRange::new(0, MAX_CAP);
pub const BUFFER_FLOOR: IntRange = IntRange::new(0, MAX_CAP);
pub const BUFFER_PERCENT: IntRange = IntRange::new(0, 1000);
pub const BUFFER_CEILING: IntRange = IntRange::new(0, MAX_CAP);
pub const READY_SECS: IntRange = IntRange::new(1, 86_400);
pub const SCALE_DOWN_DELAY_SECS: IntRange = IntRange::new(0, WEEK_SECS);
pub const DISCONNECT_GRACE_SECS: IntRange = IntRange::new(0, 86_400);
pub const PACING: IntRange = IntRange::new(1, 1000);
/// Bounds of `predictive.service_level`.
pub const SERVICE_LEVEL_MIN: f64 = 0.5;
pub const SERVICE_LEVEL_MAX: f64 = 0.9999;

/// What is wrong with a number that must lie in `lo ..= hi`, if anything.
pub fn float_problem(v: f64, lo: f64, hi: f64) -> Option<String> {
    let what = if !v.is_finite() {
        "is not a finite number"
    } else if v < lo {
        "is too small"
    } else if v > hi {
        "is too large"
    } else {
        return None;
    };
    Some(format!("{v} {what}; expected a number from {lo} to {hi}"))
}

/// Defaults of the optional policy keys.
pub const DEFAULT_PRODUCTION: u32 = 0;
pub const DEFAULT_FLOOR: u32 = 0;
pub const DEFAULT_PERCENT: u32 = 0;
pub const DEFAULT_READY_SECS: u64 = 90;
pub const DEFAULT_SCALE_DOWN_DELAY_SECS: u64 = 300;
pub const DEFAULT_DISCONNECT_GRACE_SECS: u64 = 0;
pub const DEFAULT_ON_LOGOUT: LogoutAction = LogoutAction::Recycle;
pub const DEFAULT_ON_SHUTOFF: ShutoffAction = ShutoffAction::Restart;
pub const DEFAULT_PACING: Pacing = Pacing {
    clones_per_host: 4,
    boots_per_host: 4,
};

/// The buffer rule of a policy without a `buffer` key: nothing spare, up to the cap.
pub fn default_buffer(cap: u32) -> BufferRule {
    BufferRule {
        floor: DEFAULT_FLOOR,
        percent: DEFAULT_PERCENT,
        ceiling: cap,
    }
}

/// How `on_logout` is written in the file.
pub fn logout_name(action: LogoutAction) -> &'static str {
    match action {
        LogoutAction::Recycle => "recycle",
        LogoutAction::Delete => "delete",
    }
}

/// How `on_shutoff` is written in the file.
pub fn shutoff_name(action: ShutoffAction) -> &'static str {
    match action {
        ShutoffAction::Restart => "restart",
        ShutoffAction::Recycle => "recycle",
    }
}

pub fn production_problem(production: u32, cap: u32) -> Option<String> {
    (production > cap).then(|| format!("production {production} is above the cap {cap}"))
}

pub fn ceiling_problem(ceiling: u32, cap: u32) -> Option<String> {
    (ceiling > cap).then(|| format!("ceiling {ceiling} is above the cap {cap}"))
}

/// `ceiling_is_cap`: the ceiling was not given, so it is the cap (said in the message).
pub fn floor_problem(floor: u32, ceiling: u32, ceiling_is_cap: bool) -> Option<String> {
    (floor > ceiling).then(|| {
        let why = if ceiling_is_cap {
            " (the cap, as no ceiling is set)"
        } else {
            ""
        };
        format!("floor {floor} is above ceiling {ceiling}{why}")
    })
}

pub const NO_DAYS: &str =
    "no days given; list at least one of mon tue wed thu fri sat sun, weekdays, weekend, all";

pub fn days_problem(days: Weekdays) -> Option<String> {
    (days.0 == 0 || days.0 > Weekdays::ALL.0).then(|| NO_DAYS.to_string())
}

/// A time of day must be whole minutes from 00:00 to 24:00 (what `HH:MM` can say).
pub fn time_problem(time: TimeOfDay) -> Option<String> {
    (time.0 > 86_400 || !time.0.is_multiple_of(60)).then(|| {
        let (h, m, s) = (time.0 / 3600, (time.0 % 3600) / 60, time.0 % 60);
        format!("time {h:02}:{m:02}:{s:02} is not HH:MM (00:00 to 24:00)")
    })
}

/// Every pair `(i, j)`, `i < j`, of periods in force at the same moment. Periods that could not
/// be read (`None`) are left out.
pub fn overlapping_pairs(periods: &[Option<&Period>]) -> Vec<(usize, usize)> {
    pairs_where(periods, overlaps)
}

/// Every pair `(i, j)`, `i < j`, of the entries read (`Some`) for which `clash` holds.
fn pairs_where<T>(entries: &[Option<&T>], clash: impl Fn(&T, &T) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (j, later) in entries.iter().enumerate() {
        for (i, earlier) in entries[..j].iter().enumerate() {
            if let (Some(a), Some(b)) = (earlier, later)
                && clash(a, b)
            {
                out.push((i, j));
            }
        }
    }
    out
}

/// `periods 1 and 3 of class "office" overlap (mon-fri 07:00-18:00 and fri 12:00-20:00)`:
/// `i` and `j` are indices, said counting from 1 (as every message and the editor count).
pub fn overlap_message(i: usize, j: usize, a: &Period, b: &Period, of: &str) -> String {
    format!(
        "periods {} and {}{of} overlap ({} and {})",
        i + 1,
        j + 1,
        describe_period(a),
        describe_period(b)
    )
}

/// `mon-fri 07:00-18:00`, for messages and summaries.
pub fn describe_period(p: &Period) -> String {
    format!("{} {}-{}", describe_days(p.days), p.from, p.to)
}

pub fn describe_days(days: Weekdays) -> String {
    match days.0 {
        0b111_1111 => "every day".to_string(),
        0b001_1111 => "mon-fri".to_string(),
        0b110_0000 => "sat-sun".to_string(),
        _ => days.names().join(","),
    }
}

/// Why a buffer floor raised by an admin (`Command::RaiseFloor`) is refused: above the class
/// cap the buffer could never reach it. The one check the engine, the console's prompt and the
/// broker's clients all get.
pub fn raised_floor_problem(floor: u32, class: &str, cap: u32) -> Option<String> {
    (floor > cap).then(|| {
        format!(
            "floor {floor} is above the cap of class {class} ({cap}): raise it to at most {cap}"
        )
    })
}

/// Longest event name, in characters.
pub const MAX_EVENT_NAME: usize = 64;

/// An event's name must say something and be safe to show on a terminal.
pub fn event_name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        Some("the name is empty; say what the event is (\"training\")".into())
    } else if name.chars().count() > MAX_EVENT_NAME {
        Some(format!(
            "the name is longer than {MAX_EVENT_NAME} characters"
        ))
    } else if name.chars().any(char::is_control) {
        Some(format!("the name {name:?} contains a control character"))
    } else {
        None
    }
}

/// An event's dates run forwards: `2026-01-07..2026-01-05` is refused.
pub fn date_range_problem(first: jiff::civil::Date, last: jiff::civil::Date) -> Option<String> {
    (last < first).then(|| {
        format!("the range {first}..{last} ends before it starts; write the earlier date first")
    })
}

/// An event ends after it starts, on the same day.
pub fn event_times_problem(from: TimeOfDay, to: TimeOfDay) -> Option<String> {
    (to <= from).then(|| {
        format!(
            "to {to} is not after from {from}; an event ends on the day it starts \
             (24:00 is the end of the day)"
        )
    })
}

/// Every pair `(i, j)`, `i < j`, of events in force at the same moment; events that could not
/// be read (`None`) are left out.
pub fn overlapping_events(events: &[Option<&Event>]) -> Vec<(usize, usize)> {
    pairs_where(events, events_overlap)
}

/// `events 1 and 2 of class "office" overlap ("training" 2026-01-05 08:00-09:00 and ...)`,
/// counted from 1 like periods.
pub fn event_overlap_message(i: usize, j: usize, a: &Event, b: &Event, of: &str) -> String {
    format!(
        "events {} and {}{of} overlap ({:?} {} and {:?} {})",
        i + 1,
        j + 1,
        a.name,
        a.describe(),
        b.name,
        b.describe()
    )
}

/// [`Policy::problems`], for callers that hold a reference.
pub fn check_policy(policy: &Policy) -> Vec<(String, String)> {
    policy.problems()
}

impl Policy {
    /// Every rule of the file format this policy breaks, with the field it belongs to: `cap`,
    /// `production`, `buffer.floor`, `buffer.percent`, `buffer.ceiling`, `ready_secs`,
    /// `scale_down_delay_secs`, `disconnect_grace_secs`, `pacing.clones_per_host`, `pacing.boots_per_host`,
    /// `periods[N].days`, `periods[N].from`, `periods[N].to`, `periods[N].production`,
    /// `periods[N].buffer.floor`, ..., `periods` (for periods that overlap), `events[N].name`,
    /// `events[N].date`, `events[N].from`, `events[N].to`, `events[N].production`,
    /// `events[N].buffer.floor`, ..., `events` (for events that overlap) and
    /// `predictive.service_level`. Empty for a valid policy.
    ///
    /// Values the typed fields can hold but a file cannot say (a time past 24:00 or not in whole
    /// minutes, days outside the week) are problems too: a policy that arrives as JSON is held
    /// to what the file can express.
    pub fn problems(&self) -> Vec<(String, String)> {
        problems(self)
    }

    /// `Ok` when the policy breaks no rule, otherwise every problem [`Policy::problems`] finds
    /// (for the engine's refusal of `set_policy`).
    pub fn validate(&self) -> Result<(), PolicyError> {
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        Err(PolicyError { problems })
    }
}

/// The rules a policy breaks, each as `(field, problem)` (see [`Policy::problems`]); shown as
/// one sentence, `field: problem; field: problem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub problems: Vec<(String, String)>,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (field, why)) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{field}: {why}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

fn problems(policy: &Policy) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let cap = policy.cap;
    in_range(&mut out, "cap", CAP, cap.into());
    check_production(&mut out, "production", policy.production, cap);
    check_buffer(&mut out, "buffer", policy.buffer, cap);
    in_range(&mut out, "ready_secs", READY_SECS, policy.ready_secs);
    in_range(
        &mut out,
        "scale_down_delay_secs",
        SCALE_DOWN_DELAY_SECS,
        policy.scale_down_delay_secs,
    );
    in_range(
        &mut out,
        "disconnect_grace_secs",
        DISCONNECT_GRACE_SECS,
        policy.disconnect_grace_secs,
    );
    let pacing = policy.pacing;
    in_range(
        &mut out,
        "pacing.clones_per_host",
        PACING,
        pacing.clones_per_host.into(),
    );
    in_range(
        &mut out,
        "pacing.boots_per_host",
        PACING,
        pacing.boots_per_host.into(),
    );
    for (n, period) in policy.periods.iter().enumerate() {
        let at = format!("periods[{}]", n + 1);
        if let Some(why) = days_problem(period.days) {
            out.push((format!("{at}.days"), why));
        }
        for (key, time) in [("from", period.from), ("to", period.to)] {
            if let Some(why) = time_problem(time) {
                out.push((format!("{at}.{key}"), why));
            }
        }
        check_production(
            &mut out,
            &format!("{at}.production"),
            period.production,
            cap,
        );
        check_buffer(&mut out, &format!("{at}.buffer"), period.buffer, cap);
    }
    for (n, event) in policy.events.iter().enumerate() {
        event_problems(&mut out, &format!("events[{}]", n + 1), event, cap);
    }
    let events: Vec<Option<&Event>> = policy.events.iter().map(Some).collect();
    for (i, j) in overlapping_events(&events) {
        let (a, b) = (&policy.events[i], &policy.events[j]);
        out.push(("events".into(), event_overlap_message(i, j, a, b, "")));
    }
    if let Some(predictive) = policy.predictive
        && let Some(why) = float_problem(
            predictive.service_level,
            SERVICE_LEVEL_MIN,
            SERVICE_LEVEL_MAX,
        )
    {
        out.push(("predictive.service_level".into(), why));
    }
    let periods: Vec<Option<&Period>> = policy.periods.iter().map(Some).collect();
    for (i, j) in overlapping_pairs(&periods) {
        let (a, b) = (&policy.periods[i], &policy.periods[j]);
        out.push(("periods".into(), overlap_message(i, j, a, b, "")));
    }
    out
}

fn event_problems(out: &mut Vec<(String, String)>, at: &str, event: &Event, cap: u32) {
    if let Some(why) = event_name_problem(&event.name) {
        out.push((format!("{at}.name"), why));
    }
    if let Some(why) = date_range_problem(event.first_day, event.last_day) {
        out.push((format!("{at}.date"), why));
    }
    for (key, time) in [("from", event.from), ("to", event.to)] {
        if let Some(why) = time_problem(time) {
            out.push((format!("{at}.{key}"), why));
        }
    }
    if let Some(why) = event_times_problem(event.from, event.to) {
        out.push((format!("{at}.to"), why));
    }
    check_production(out, &format!("{at}.production"), event.production, cap);
    check_buffer(out, &format!("{at}.buffer"), event.buffer, cap);
}

fn in_range(out: &mut Vec<(String, String)>, field: &str, range: IntRange, value: u64) {
    if let Some(why) = range.problem(i64::try_from(value).unwrap_or(i64::MAX)) {
        out.push((field.to_string(), why));
    }
}

fn check_production(out: &mut Vec<(String, String)>, field: &str, production: u32, cap: u32) {
    in_range(out, field, PRODUCTION, production.into());
    if let Some(why) = production_problem(production, cap) {
        out.push((field.to_string(), why));
    }
}

fn check_buffer(out: &mut Vec<(String, String)>, at: &str, rule: BufferRule, cap: u32) {
    in_range(out, &format!("{at}.floor"), BUFFER_FLOOR, rule.floor.into());
    in_range(
        out,
        &format!("{at}.percent"),
        BUFFER_PERCENT,
        rule.percent.into(),
    );
    in_range(
        out,
        &format!("{at}.ceiling"),
        BUFFER_CEILING,
        rule.ceiling.into(),
    );
    if let Some(why) = ceiling_problem(rule.ceiling, cap) {
        out.push((format!("{at}.ceiling"), why));
    }
    if let Some(why) = floor_problem(rule.floor, rule.ceiling, false) {
        out.push((format!("{at}.floor"), why));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(cap: u32, production: u32) -> Policy {
        Policy {
            cap,
            buffer: default_buffer(cap),
            production,
            periods: Vec::new(),
            events: Vec::new(),
            pacing: DEFAULT_PACING,
            on_logout: DEFAULT_ON_LOGOUT,
            on_shutoff: DEFAULT_ON_SHUTOFF,
            ready_secs: DEFAULT_READY_SECS,
            scale_down_delay_secs: DEFAULT_SCALE_DOWN_DELAY_SECS,
            disconnect_grace_secs: DEFAULT_DISCONNECT_GRACE_SECS,
            predictive: None,
        }
    }

    #[test]
    fn validate_carries_every_problem_and_joins_them_in_one_sentence() {
        assert_eq!(policy(10, 5).validate(), Ok(()));
        let mut bad = policy(10, 50);
        bad.pacing.clones_per_host = 0;
        let error = bad.validate().unwrap_err();
        assert_eq!(error.problems, bad.problems());
        let fields: Vec<&str> = error.problems.iter().map(|(f, _)| f.as_str()).collect();
        assert!(fields.contains(&"production"), "{fields:?}");
        assert!(fields.contains(&"pacing.clones_per_host"), "{fields:?}");
        let joined: Vec<String> = error
            .problems
            .iter()
            .map(|(field, why)| format!("{field}: {why}"))
            .collect();
        assert_eq!(error.to_string(), joined.join("; "));
    }
}
