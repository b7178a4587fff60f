//! Days of the week and times of day, for policy periods.

use jiff::civil::{Time, Weekday};

use super::Period;

/// A set of weekdays (bit 0 = Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Weekdays(pub u8);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A day name or a time of day that does not read. The message is the sentence users see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "unknown day {name:?}; expected one of mon tue wed thu fri sat sun, weekdays, weekend, all"
    )]
    UnknownDay { name: String },
    #[error("time {text:?} is not HH:MM (00:00 to 24:00)")]
    BadTime { text: String },
    #[error("date {text:?} is not a day of the calendar written YYYY-MM-DD (\"2026-01-05\")")]
    BadDate { text: String },
}

impl Weekdays {
    pub const ALL: Weekdays = Weekdays(0b111_1111);

    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.to_monday_zero_offset()) != 0
    }
    pub fn insert(&mut self, day: Weekday) {
        self.0 |= 1 << day.to_monday_zero_offset();
    }
    pub fn intersects(self, other: Weekdays) -> bool {
        self.0 & other.0 != 0
    }
    /// The day after each day in the set.
    pub fn next_days(self) -> Weekdays {
        Weekdays(((self.0 << 1) | (self.0 >> 6)) & 0b111_1111)
    }

    /// Parses `mon`, `tue`, ..., `sun`, plus `weekdays`, `weekend` and `all`.
    pub fn parse_day(name: &str) -> Result<Weekdays, ScheduleError> {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "all" | "daily" => return Ok(Weekdays::ALL),
            "weekdays" => return Ok(Weekdays(0b001_1111)),
            "weekend" => return Ok(Weekdays(0b110_0000)),
            _ => {}
        }
        DAY_NAMES
            .iter()
            .position(|d| *d == lower)
            .map(|i| Weekdays(1 << i))
            .ok_or_else(|| ScheduleError::UnknownDay {
                name: name.to_string(),
            })
    }

    pub fn names(self) -> Vec<&'static str> {
        (0..7)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| DAY_NAMES[i])
            .collect()
    }
}

/// Seconds since midnight, 0..86400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct TimeOfDay(pub u32);

impl TimeOfDay {
    /// Parses `HH:MM` (00:00 to 24:00).
    pub fn parse(text: &str) -> Result<TimeOfDay, ScheduleError> {
        let bad = || ScheduleError::BadTime {
            text: text.to_string(),
        };
        let (h, m) = text.split_once(':').ok_or_else(bad)?;
        // Exactly two ASCII digits each: `u32::from_str` alone would take "+1" or "+5".
        let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(h) || !two_digits(m) {
            return Err(bad());
        }
        let h: u32 = h.parse().map_err(|_| bad())?;
        let m: u32 = m.parse().map_err(|_| bad())?;
        if m >= 60 || h > 24 || (h == 24 && m != 0) {
            return Err(bad());
        }
        Ok(TimeOfDay(h * 3600 + m * 60))
    }

    pub fn from_civil(t: Time) -> TimeOfDay {
        TimeOfDay(t.hour() as u32 * 3600 + t.minute() as u32 * 60 + t.second() as u32)
    }
}

impl std::fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 3600, (self.0 % 3600) / 60)
    }
}

/// Whether `period` is in force on `day` at `time`. A period that crosses midnight covers the
/// evening of its start days and the morning of the days after.
pub(super) fn covers(period: &Period, day: Weekday, time: TimeOfDay) -> bool {
    covers_on(period, day, day.previous(), time)
}

/// [`covers`] with the weekday the periods see today and the one they saw yesterday given
/// apart: a holiday is seen as a Sunday, so the day before it is not always `today.previous()`.
pub(super) fn covers_on(
    period: &Period,
    today: Weekday,
    yesterday: Weekday,
    time: TimeOfDay,
) -> bool {
    let (from, to) = (period.from, period.to);
    if from < to {
        period.days.contains(today) && from <= time && time < to
    } else {
        let started_today = period.days.contains(today) && time >= from;
        let started_yesterday = period.days.contains(yesterday) && time < to;
        started_today || started_yesterday
    }
}

/// Whether two periods are ever in force at the same moment.
pub fn overlaps(a: &Period, b: &Period) -> bool {
    // Unroll each period into minute ranges over one week (Monday 00:00 = 0) and compare.
    fn ranges(p: &Period) -> Vec<(u32, u32)> {
        let week = 7 * 86400;
        let mut out = Vec::new();
        for day in 0..7u32 {
            if p.days.0 & (1 << day) == 0 {
                continue;
            }
            let start = day * 86400 + p.from.0;
            let len = if p.from < p.to {
                p.to.0 - p.from.0
            } else {
                86400 - p.from.0 + p.to.0
            };
            let end = start + len;
            if end <= week {
                out.push((start, end));
            } else {
                out.push((start, week));
                out.push((0, end - week));
            }
        }
        out
    }
    let (ra, rb) = (ranges(a), ranges(b));
    ra.iter()
        .any(|(s1, e1)| rb.iter().any(|(s2, e2)| s1 < e2 && s2 < e1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_days_and_times_say_what_was_expected() {
        assert_eq!(
            Weekdays::parse_day("funday"),
            Err(ScheduleError::UnknownDay {
                name: "funday".into()
            })
        );
        assert_eq!(
            Weekdays::parse_day("Funday").unwrap_err().to_string(),
            "unknown day \"Funday\"; expected one of mon tue wed thu fri sat sun, weekdays, \
             weekend, all"
        );
        assert_eq!(Weekdays::parse_day("SAT"), Ok(Weekdays(0b010_0000)));
        assert_eq!(
            TimeOfDay::parse("7:00").unwrap_err().to_string(),
            "time \"7:00\" is not HH:MM (00:00 to 24:00)"
        );
        assert_eq!(
            TimeOfDay::parse("24:01"),
            Err(ScheduleError::BadTime {
                text: "24:01".into()
            })
        );
    }
}
