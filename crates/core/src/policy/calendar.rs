//! Dated events and holidays: the days the weekly periods do not describe.
//!
//! A class's *events* (`[[classes.policy.events]]`) are one-off stretches, such as a training
//! morning, with their own expected production and buffer rule; while one is in force it takes
//! precedence over the weekly periods. The site's *holidays* (`[engine] holidays`) are days on
//! which the weekly periods are matched as if the day were a Sunday (the weekend profile). Both
//! are one-off days: [`Fleet::is_one_off_day`] tells a demand model which days not to learn from.

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

use super::schedule::{ScheduleError, TimeOfDay, covers_on};
use super::{BufferRule, EngineSettings, Fleet, Policy};

/// A dated stretch with its own expected production and buffer rule: from `from` to `to` on
/// every day from `first_day` to `last_day` (both included).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What the event is ("training"), for messages and the console.
    pub name: String,
    pub first_day: Date,
    pub last_day: Date,
    pub from: TimeOfDay,
    /// After `from` on the same day (24:00 is the end of the day); an event never crosses
    /// midnight.
    pub to: TimeOfDay,
    /// Production expected while the event is in force.
    pub production: u32,
    pub buffer: BufferRule,
}

impl Event {
    /// Whether the event takes place on `date` (at any time of it).
    pub fn on_day(&self, date: Date) -> bool {
        self.first_day <= date && date <= self.last_day
    }

    /// Whether the event is in force on `date` at `time`.
    pub fn covers(&self, date: Date, time: TimeOfDay) -> bool {
        self.on_day(date) && self.from <= time && time < self.to
    }

    /// `2026-01-05 08:00-09:00` or `2026-01-05..2026-01-07 08:00-09:00`.
    pub fn describe(&self) -> String {
        format!("{} {}-{}", describe_dates(self), self.from, self.to)
    }
}

/// `2026-01-05`, or `2026-01-05..2026-01-07` for several days: how the file writes `date`.
pub fn describe_dates(event: &Event) -> String {
    if event.first_day == event.last_day {
        event.first_day.to_string()
    } else {
        format!("{}..{}", event.first_day, event.last_day)
    }
}

/// Parses a day written `YYYY-MM-DD` (and nothing else: no time, no offset).
pub fn parse_date(text: &str) -> Result<Date, ScheduleError> {
    let bad = || ScheduleError::BadDate {
        text: text.to_string(),
    };
    let b = text.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<i16>().map_err(|_| bad());
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let month = i8::try_from(month).map_err(|_| bad())?;
    let day = i8::try_from(day).map_err(|_| bad())?;
    Date::new(year, month, day).map_err(|_| bad())
}

/// Parses an event's `date`: one day `2026-01-05`, or the days from one to another, both
/// included, `2026-01-05..2026-01-07`. The order of the two is checked by the policy rules
/// ([`crate::policy::rules::date_range_problem`]), not here.
pub fn parse_dates(text: &str) -> Result<(Date, Date), ScheduleError> {
    match text.split_once("..") {
        Some((first, last)) => Ok((parse_date(first.trim())?, parse_date(last.trim())?)),
        None => {
            let day = parse_date(text.trim())?;
            Ok((day, day))
        }
    }
}

/// Whether two events are ever in force at the same moment.
pub fn events_overlap(a: &Event, b: &Event) -> bool {
    let days_meet = a.first_day <= b.last_day && b.first_day <= a.last_day;
    days_meet && a.from < b.to && b.from < a.to
}

/// What sets a class's production and buffer at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleSource {
    /// The event of that index in [`Policy::events`].
    Event(usize),
    /// The weekly period of that index in [`Policy::periods`].
    Period(usize),
    /// No event nor period: the policy's own `production` and `buffer`.
    Outside,
}

/// The expected production and buffer rule in force at a moment, and where they come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InForce {
    pub production: u32,
    pub buffer: BufferRule,
    pub source: RuleSource,
}

impl InForce {
    /// The index of the weekly period in force, if a period (not an event) sets the rule.
    pub fn period(&self) -> Option<usize> {
        match self.source {
            RuleSource::Period(i) => Some(i),
            RuleSource::Event(_) | RuleSource::Outside => None,
        }
    }
}

impl EngineSettings {
    /// Whether `date` is one of the site's holidays.
    pub fn is_holiday(&self, date: Date) -> bool {
        self.holidays.contains(&date)
    }

    /// The weekday the weekly periods see on `date`: Sunday on a holiday, its own otherwise.
    pub fn profile_day(&self, date: Date) -> Weekday {
        if self.is_holiday(date) {
            Weekday::Sunday
        } else {
            date.weekday()
        }
    }
}

impl Fleet {
    /// Whether `date` (a day in the engine's time zone) is a one-off day for `class`: a site
    /// holiday, or a day on which the class has a declared event. A demand model leaves these
    /// days out of what it learns as the usual week. An unknown class has only the holidays.
    pub fn is_one_off_day(&self, class: &str, date: Date) -> bool {
        self.engine.is_holiday(date)
            || self
                .class(class)
                .is_some_and(|c| c.policy.is_event_day(date))
    }
}

impl Policy {
    /// Whether one of the class's events takes place on `date`.
    pub fn is_event_day(&self, date: Date) -> bool {
        self.events.iter().any(|e| e.on_day(date))
    }

    /// The event in force at `at` (read in `tz`), if any.
    pub fn event_at(&self, at: Timestamp, tz: &TimeZone) -> Option<(usize, &Event)> {
        let local = at.to_zoned(tz.clone());
        let (date, time) = (local.date(), TimeOfDay::from_civil(local.time()));
        self.events
            .iter()
            .enumerate()
            .find(|(_, e)| e.covers(date, time))
    }

    /// The production and buffer rule in force at `at`: an event in force takes precedence over
    /// the weekly periods; the periods are matched in the engine's time zone, a holiday counting
    /// as a Sunday (also for the morning part of a period that started the evening before);
    /// outside both, the policy's own production and buffer.
    pub fn in_force_at(&self, at: Timestamp, engine: &EngineSettings) -> InForce {
        let tz = &engine.timezone;
        if let Some((i, event)) = self.event_at(at, tz) {
            return InForce {
                production: event.production,
                buffer: event.buffer,
                source: RuleSource::Event(i),
            };
        }
        let local = at.to_zoned(tz.clone());
        let date = local.date();
        let time = TimeOfDay::from_civil(local.time());
        let today = engine.profile_day(date);
        let yesterday = date
            .yesterday()
            .map_or(today.previous(), |d| engine.profile_day(d));
        let period = self
            .periods
            .iter()
            .enumerate()
            .find(|(_, p)| covers_on(p, today, yesterday, time));
        match period {
            Some((i, p)) => InForce {
                production: p.production,
                buffer: p.buffer,
                source: RuleSource::Period(i),
            },
            None => InForce {
                production: self.production,
                buffer: self.buffer,
                source: RuleSource::Outside,
            },
        }
    }
}

#[cfg(test)]
#[path = "calendar_tests.rs"]
mod tests;
