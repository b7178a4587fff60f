//! `[[classes.policy.events]]` (dated events of a class) and `[engine] holidays`. Each problem
//! is placed at its key; the events built are then held to the policy rules with the rest of
//! the policy.

use jiff::civil::Date;

use super::policy::{buffer, production, time, without_overlaps};
use crate::error::Diag;
use crate::reader::{Field, Section};
use deskpool_core::policy::calendar::{parse_date, parse_dates};
use deskpool_core::policy::rules;
use deskpool_core::policy::{BufferRule, Event, TimeOfDay};

const EVENT_KEYS: &[&str] = &["name", "date", "from", "to", "production", "buffer"];

/// The events of a class. An event's buffer defaults to the class's; it runs all day when
/// `from` and `to` are left out. Events must not overlap.
pub(super) fn events(
    f: &Field,
    d: &mut Diag,
    cap: Option<u32>,
    default_buffer: Option<BufferRule>,
    class: Option<&str>,
) -> Option<Vec<Event>> {
    let sections = f.tables(d)?;
    let parsed: Vec<Option<Event>> = sections
        .iter()
        .map(|s| event(d, s, cap, default_buffer))
        .collect();
    without_overlaps(
        d,
        &sections,
        parsed,
        class,
        rules::overlapping_events,
        rules::event_overlap_message,
    )
}

fn event(
    d: &mut Diag,
    s: &Section,
    cap: Option<u32>,
    default_buffer: Option<BufferRule>,
) -> Option<Event> {
    s.check_keys(d, EVENT_KEYS);
    let name = s.req(d, "name", |f, d| {
        let text = f.str(d)?;
        match rules::event_name_problem(text) {
            Some(why) => {
                f.error(d, why);
                None
            }
            None => Some(text.to_string()),
        }
    });
    let dates = s.req(d, "date", |f, d| dates(f, d));
    let from = s.opt(d, "from", TimeOfDay(0), |f, d| time(f, d));
    let to = s.opt(d, "to", TimeOfDay(86_400), |f, d| time(f, d));
    let mut times_ok = true;
    if let (Some(from), Some(to)) = (from, to)
        && let Some(why) = rules::event_times_problem(from, to)
    {
        match s.field("to").or_else(|| s.field("from")) {
            Some(at) => at.error(d, why),
            None => d.error(s.span(), format!("{}: {why}", s.path())),
        }
        times_ok = false;
    }
    let production = s.req(d, "production", |f, d| production(f, d, cap));
    let buffer = match s.field("buffer") {
        Some(f) => f.table(d).and_then(|b| buffer(d, &b, cap)),
        None => default_buffer,
    };
    let (first_day, last_day) = dates?;
    if !times_ok {
        return None;
    }
    Some(Event {
        name: name?,
        first_day,
        last_day,
        from: from?,
        to: to?,
        production: production?,
        buffer: buffer?,
    })
}

/// `date = "2026-01-05"` or `date = "2026-01-05..2026-01-07"` (both days included).
fn dates(f: &Field, d: &mut Diag) -> Option<(Date, Date)> {
    let text = f.str(d)?;
    let (first, last) = match parse_dates(text) {
        Ok(range) => range,
        Err(why) => {
            f.error(d, why);
            return None;
        }
    };
    if let Some(why) = rules::date_range_problem(first, last) {
        f.error(d, why);
        return None;
    }
    Some((first, last))
}

/// `holidays = ["2026-01-16", ...]`: days written `YYYY-MM-DD`, each once. Sorted.
pub(super) fn holidays(f: &Field, d: &mut Diag) -> Option<Vec<Date>> {
    let entries = f.array(d)?;
    let mut days: Vec<Date> = Vec::new();
    let mut ok = true;
    for entry in &entries {
        let Some(text) = entry.str(d) else {
            ok = false;
            continue;
        };
        match parse_date(text) {
            Ok(day) if days.contains(&day) => {
                entry.error(d, format!("holiday {day} is listed twice"));
                ok = false;
            }
            Ok(day) => days.push(day),
            Err(why) => {
                entry.error(d, why);
                ok = false;
            }
        }
    }
    days.sort();
    ok.then_some(days)
}
