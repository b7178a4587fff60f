//! Loading `[[classes.policy.events]]` and `[engine] holidays`: the values read, and each
//! mistake at its position.

use std::path::Path;

use jiff::civil::date;

use super::*;
use deskpool_core::policy::{BufferRule, Event, TimeOfDay};

fn parse(text: &str) -> Result<Fleet, ConfigErrors> {
    parse_str(text, Path::new("deskpool.toml"))
}

/// The single error of `text`, checked to be at `line`:`col` and to contain `needle`.
#[track_caller]
fn assert_one_error(text: &str, line: usize, col: usize, needle: &str) -> ConfigError {
    let errors = match parse(text) {
        Ok(_) => panic!("the configuration was accepted:\n{text}"),
        Err(errors) => errors.0,
    };
    assert_eq!(
        errors.len(),
        1,
        "expected one error, got: {}",
        ConfigErrors(errors.clone())
    );
    let e = errors.into_iter().next().unwrap();
    assert_eq!((e.line, e.col), (line, col), "wrong position for: {e}");
    assert!(
        e.message.contains(needle),
        "{e:?} does not mention {needle:?}"
    );
    e
}

/// Line 19 is `[[classes.policy.events]]`, the first event's keys follow it.
const CALENDAR: &str = r#"[engine]
timezone = "Europe/Paris"
holidays = ["2026-01-16", "2026-01-01"]

[[hosts]]
name = "h1"
uri = "qemu:///system"
capacity = { desktops = 40 }

[[classes]]
name = "office"
memory_mib = 2048
vcpus = 2
disk_gib = 20
seed = { pool = "seeds", volume = "office.qcow2", version = "1" }
[classes.policy]
cap = 200
buffer = { floor = 4, percent = 10, ceiling = 12 }
[[classes.policy.events]]
name = "training"
date = "2026-01-05"
from = "08:00"
to = "09:00"
production = 150
buffer = { floor = 30, ceiling = 60 }

[[classes.policy.events]]
name = "release week"
date = "2026-01-12..2026-01-14"
production = 20
"#;

#[test]
fn events_and_holidays_read_with_their_defaults() {
    let fleet = parse(CALENDAR).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fleet.engine.holidays, [date(2026, 1, 1), date(2026, 1, 16)]);
    let policy = &fleet.class("office").unwrap().policy;
    assert_eq!(
        policy.events,
        [
            Event {
                name: "training".into(),
                first_day: date(2026, 1, 5),
                last_day: date(2026, 1, 5),
                from: TimeOfDay(8 * 3600),
                to: TimeOfDay(9 * 3600),
                production: 150,
                buffer: BufferRule {
                    floor: 30,
                    percent: 0,
                    ceiling: 60
                },
            },
            // All day, with the class's buffer.
            Event {
                name: "release week".into(),
                first_day: date(2026, 1, 12),
                last_day: date(2026, 1, 14),
                from: TimeOfDay(0),
                to: TimeOfDay(86_400),
                production: 20,
                buffer: policy.buffer,
            },
        ]
    );
    let summary = summary(&fleet);
    assert!(
        summary.contains("holidays (periods apply as on a Sunday): 2026-01-01, 2026-01-16"),
        "{summary}"
    );
    assert!(
        summary.contains(
            "event 0 \"training\": 2026-01-05 08:00-09:00: production 150, buffer 30 (fixed)"
        ),
        "{summary}"
    );
    assert!(
        summary.contains("no periods: the rule above applies outside the events"),
        "{summary}"
    );
}

#[test]
fn a_date_that_does_not_read_is_refused_at_its_value() {
    let e = assert_one_error(
        &CALENDAR.replace("\"2026-01-05\"", "\"2026-02-30\""),
        21,
        8,
        "date \"2026-02-30\" is not a day of the calendar written YYYY-MM-DD",
    );
    assert!(
        e.message.starts_with("classes[1].policy.events[1].date: "),
        "{e}"
    );
    assert_one_error(
        &CALENDAR.replace("\"2026-01-05\"", "\"5 Jan 2026\""),
        21,
        8,
        "YYYY-MM-DD",
    );
    assert_one_error(
        &CALENDAR.replace("\"2026-01-05\"", "2026-01-05"),
        21,
        8,
        "expected a string, found a date-time",
    );
}

#[test]
fn a_reversed_range_and_an_end_before_the_start_are_refused() {
    assert_one_error(
        &CALENDAR.replace("2026-01-12..2026-01-14", "2026-01-14..2026-01-12"),
        29,
        8,
        "the range 2026-01-14..2026-01-12 ends before it starts",
    );
    assert_one_error(
        &CALENDAR.replace("to = \"09:00\"", "to = \"08:00\""),
        23,
        6,
        "to 08:00 is not after from 08:00",
    );
    assert_one_error(
        &CALENDAR.replace("to = \"09:00\"", "to = \"25:00\""),
        23,
        6,
        "time \"25:00\" is not HH:MM",
    );
}

#[test]
fn overlapping_events_of_a_class_are_refused_at_the_later_one() {
    let text = CALENDAR.replace("2026-01-12..2026-01-14", "2026-01-01..2026-01-05");
    let e = assert_one_error(&text, 27, 1, "overlap");
    assert_eq!(
        e.message,
        "classes[1].policy.events[2]: events 1 and 2 of class \"office\" overlap \
         (\"training\" 2026-01-05 08:00-09:00 and \"release week\" 2026-01-01..2026-01-05 \
         00:00-24:00)"
    );
}

#[test]
fn an_event_above_the_cap_or_with_an_unknown_key_or_no_production_is_refused() {
    assert_one_error(
        &CALENDAR.replace("production = 150", "production = 201"),
        24,
        14,
        "production 201 is above the cap 200",
    );
    assert_one_error(
        &CALENDAR.replace("production = 150", "production = 150\nusers = 150"),
        25,
        1,
        "unknown key \"users\" in classes[1].policy.events[1]; expected one of name, date, \
         from, to, production, buffer",
    );
    assert_one_error(
        &CALENDAR.replace("production = 20\n", ""),
        27,
        1,
        "classes[1].policy.events[2]: missing key \"production\"",
    );
    assert_one_error(
        &CALENDAR.replace("name = \"training\"", "name = \"\""),
        20,
        8,
        "the name is empty",
    );
    assert_one_error(
        &CALENDAR.replace("ceiling = 60", "ceiling = 300"),
        25,
        34,
        "ceiling 300 is above the cap 200",
    );
}

#[test]
fn holidays_must_be_dates_each_listed_once() {
    assert_one_error(
        &CALENDAR.replace("\"2026-01-01\"]", "\"2026-01-16\"]"),
        3,
        27,
        "holiday 2026-01-16 is listed twice",
    );
    assert_one_error(
        &CALENDAR.replace("\"2026-01-01\"]", "\"Jan 1\"]"),
        3,
        27,
        "engine.holidays[2]: date \"Jan 1\" is not a day of the calendar",
    );
    assert_one_error(
        &CALENDAR.replace(
            "holidays = [\"2026-01-16\", \"2026-01-01\"]",
            "holidays = \"2026-01-16\"",
        ),
        3,
        12,
        "expected an array",
    );
    assert_one_error(
        &CALENDAR.replace("holidays", "holiday"),
        3,
        1,
        "unknown key \"holiday\" in engine (did you mean \"holidays\"?)",
    );
}

#[test]
fn the_example_file_declares_holidays_and_a_training_event() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/deskpool.toml");
    let fleet = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fleet.engine.holidays.len(), 3);
    let office = &fleet.class("office").unwrap().policy;
    assert_eq!(office.events.len(), 1);
    assert_eq!(office.events[0].describe(), "2026-01-05 08:00-09:00");
    assert!(fleet.is_one_off_day("office", date(2026, 1, 5)));
    assert!(fleet.is_one_off_day("dev", date(2026, 5, 1)));
    assert!(!fleet.is_one_off_day("dev", date(2026, 1, 5)));
}
