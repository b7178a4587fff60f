//! The days a demand model must not learn as the usual week: the site's holidays and the days
//! of a class's declared events, read from the fleet ([`crate::policy::Fleet::is_one_off_day`]),
//! as local day numbers (days since 1970-01-01 in the model's time zone).

use std::collections::BTreeSet;

use jiff::civil::Date;

use crate::policy::Fleet;

/// One class's one-off days.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Calendar {
    holidays: BTreeSet<i64>,
    /// Inclusive ranges of event days.
    events: Vec<(i64, i64)>,
}

/// Days since 1970-01-01 of a civil date.
pub(super) fn day_number(date: Date) -> i64 {
    let epoch = Date::constant(1970, 1, 1);
    i64::from(epoch.until(date).map_or(0, |span| span.get_days()))
}

impl Calendar {
    /// The one-off days of `class` in `fleet`.
    pub(super) fn of(fleet: &Fleet, class: &str) -> Calendar {
        let holidays = fleet
            .engine
            .holidays
            .iter()
            .copied()
            .map(day_number)
            .collect();
        let events = fleet
            .class(class)
            .map(|c| {
                c.policy
                    .events
                    .iter()
                    .map(|e| (day_number(e.first_day), day_number(e.last_day)))
                    .collect()
            })
            .unwrap_or_default();
        Calendar { holidays, events }
    }

    /// A calendar of the given holidays and event days (local day numbers).
    #[cfg(test)]
    pub(super) fn new(holidays: &[i64], events: &[(i64, i64)]) -> Calendar {
        Calendar {
            holidays: holidays.iter().copied().collect(),
            events: events.to_vec(),
        }
    }

    pub(super) fn is_holiday(&self, day: i64) -> bool {
        self.holidays.contains(&day)
    }

    /// A holiday or a day of a declared event.
    pub(super) fn is_one_off(&self, day: i64) -> bool {
        self.is_holiday(day) || self.events.iter().any(|&(a, b)| a <= day && day <= b)
    }
}
