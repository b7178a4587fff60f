use jiff::civil::date;

use super::*;
use crate::policy::rules::{DEFAULT_PACING, default_buffer};
use crate::policy::{ClassSpec, LogoutAction, Period, SeedSpec, ShutoffAction, Weekdays};

fn rule(floor: u32) -> BufferRule {
    BufferRule {
        floor,
        percent: 0,
        ceiling: 200,
    }
}

fn hm(text: &str) -> TimeOfDay {
    TimeOfDay::parse(text).unwrap()
}

fn period(days: &str, from: &str, to: &str, production: u32) -> Period {
    Period {
        days: Weekdays::parse_day(days).unwrap(),
        from: hm(from),
        to: hm(to),
        production,
        buffer: rule(production / 10),
    }
}

fn event(first: Date, last: Date, from: &str, to: &str, production: u32) -> Event {
    Event {
        name: "training".into(),
        first_day: first,
        last_day: last,
        from: hm(from),
        to: hm(to),
        production,
        buffer: rule(20),
    }
}

fn policy(periods: Vec<Period>, events: Vec<Event>) -> Policy {
    Policy {
        cap: 200,
        buffer: default_buffer(200),
        production: 1,
        periods,
        events,
        pacing: DEFAULT_PACING,
        on_logout: LogoutAction::Recycle,
        on_shutoff: ShutoffAction::Restart,
        ready_secs: 90,
        scale_down_delay_secs: 300,
        disconnect_grace_secs: 0,
        predictive: None,
    }
}

fn engine(tz: &str, holidays: Vec<Date>) -> EngineSettings {
    EngineSettings {
        timezone: TimeZone::get(tz).unwrap(),
        holidays,
        ..EngineSettings::default()
    }
}

/// `2026-01-05T08:30` in `tz`, as a timestamp.
fn at(day: Date, time: &str, tz: &str) -> Timestamp {
    let t = hm(time);
    day.at((t.0 / 3600) as i8, ((t.0 % 3600) / 60) as i8, 0, 0)
        .in_tz(tz)
        .unwrap()
        .timestamp()
}

#[test]
fn an_event_in_force_takes_precedence_over_the_weekly_period_and_ends_at_its_to() {
    // Monday 2026-01-05, training 08:00-09:00 in Paris, inside a weekday period.
    let monday = date(2026, 1, 5);
    let p = policy(
        vec![period("weekdays", "07:00", "18:00", 40)],
        vec![event(monday, monday, "08:00", "09:00", 150)],
    );
    let e = engine("Europe/Paris", vec![]);
    let tz = "Europe/Paris";
    let during = p.in_force_at(at(monday, "08:00", tz), &e);
    assert_eq!(during.source, RuleSource::Event(0));
    assert_eq!((during.production, during.buffer), (150, rule(20)));
    assert_eq!(during.period(), None);
    let before = p.in_force_at(at(monday, "07:59", tz), &e);
    assert_eq!(before.source, RuleSource::Period(0));
    assert_eq!(before.production, 40);
    let after = p.in_force_at(at(monday, "09:00", tz), &e);
    assert_eq!(after.period(), Some(0));
    // The next day the event is over: the period again.
    let tuesday = p.in_force_at(at(date(2026, 1, 6), "08:30", tz), &e);
    assert_eq!(tuesday.source, RuleSource::Period(0));
    // 08:30 in Paris is 07:30 UTC: read in UTC, the event would not be in force at that instant.
    let utc = engine("UTC", vec![]);
    assert_eq!(
        p.in_force_at(at(monday, "08:30", tz), &utc).source,
        RuleSource::Period(0)
    );
}

#[test]
fn an_event_over_a_date_range_is_in_force_on_every_day_of_it_and_outside_any_period() {
    let p = policy(
        vec![],
        vec![event(
            date(2026, 1, 5),
            date(2026, 1, 7),
            "13:00",
            "24:00",
            30,
        )],
    );
    let e = engine("UTC", vec![]);
    for day in [date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)] {
        let r = p.in_force_at(at(day, "23:59", "UTC"), &e);
        assert_eq!(r.source, RuleSource::Event(0), "{day}");
    }
    let outside = p.in_force_at(at(date(2026, 1, 8), "14:00", "UTC"), &e);
    assert_eq!(outside.source, RuleSource::Outside);
    assert_eq!(
        (outside.production, outside.buffer),
        (p.production, p.buffer)
    );
}

#[test]
fn on_a_holiday_the_periods_see_a_sunday() {
    // Friday 2026-01-16 is a holiday.
    let friday = date(2026, 1, 16);
    let p = policy(
        vec![
            period("weekdays", "07:00", "18:00", 40),
            period("sun", "10:00", "16:00", 5),
            // Night shifts starting Monday to Thursday evening, and on Sunday evening.
            Period {
                days: Weekdays(0b100_1111),
                ..period("mon", "22:00", "06:00", 8)
            },
        ],
        vec![],
    );
    let e = engine("UTC", vec![friday]);
    let plain = engine("UTC", vec![]);
    assert_eq!(
        p.in_force_at(at(friday, "12:00", "UTC"), &plain).source,
        RuleSource::Period(0)
    );
    // The weekday period does not apply on the holiday; the Sunday one does.
    assert_eq!(
        p.in_force_at(at(friday, "12:00", "UTC"), &e).source,
        RuleSource::Period(1)
    );
    assert_eq!(
        p.in_force_at(at(friday, "08:00", "UTC"), &e).source,
        RuleSource::Outside
    );
    // Thursday's night shift still runs into the holiday's morning...
    assert_eq!(
        p.in_force_at(at(friday, "03:00", "UTC"), &e).source,
        RuleSource::Period(2)
    );
    // ...the holiday starts a night shift as a Sunday does, which runs into Saturday morning
    // (a plain Friday starts none).
    let saturday = date(2026, 1, 17);
    assert_eq!(
        p.in_force_at(at(saturday, "03:00", "UTC"), &e).source,
        RuleSource::Period(2)
    );
    assert_eq!(
        p.in_force_at(at(saturday, "03:00", "UTC"), &plain).source,
        RuleSource::Outside
    );
}

#[test]
fn an_event_on_a_holiday_still_takes_precedence() {
    let friday = date(2026, 1, 16);
    let p = policy(
        vec![period("sun", "00:00", "24:00", 5)],
        vec![event(friday, friday, "09:00", "10:00", 60)],
    );
    let e = engine("UTC", vec![friday]);
    assert_eq!(
        p.in_force_at(at(friday, "09:30", "UTC"), &e).source,
        RuleSource::Event(0)
    );
    assert_eq!(
        p.in_force_at(at(friday, "10:30", "UTC"), &e).source,
        RuleSource::Period(0)
    );
}

#[test]
fn holidays_and_event_days_are_one_off_days_of_a_class() {
    let class = ClassSpec {
        name: "office".into(),
        seed: SeedSpec {
            pool: "seeds".into(),
            volume: "office.qcow2".into(),
            version: "v1".into(),
            host: None,
        },
        memory_mib: 1024,
        vcpus: 1,
        disk_gib: 10,
        template: None,
        boot: None,
        ready: Default::default(),
        policy: policy(
            vec![],
            vec![event(
                date(2026, 1, 5),
                date(2026, 1, 6),
                "08:00",
                "09:00",
                9,
            )],
        ),
    };
    let fleet = Fleet {
        ha: None,
        engine: engine("UTC", vec![date(2026, 1, 16)]),
        console: Default::default(),
        broker: Default::default(),
        hosts: vec![],
        classes: vec![class],
    };
    assert!(fleet.is_one_off_day("office", date(2026, 1, 5)));
    assert!(fleet.is_one_off_day("office", date(2026, 1, 6)));
    assert!(!fleet.is_one_off_day("office", date(2026, 1, 7)));
    assert!(fleet.is_one_off_day("office", date(2026, 1, 16)));
    assert!(fleet.is_one_off_day("no-such-class", date(2026, 1, 16)));
    assert!(!fleet.is_one_off_day("no-such-class", date(2026, 1, 5)));
}

#[test]
fn the_policy_check_refuses_bad_events_by_field() {
    let monday = date(2026, 1, 5);
    let fields = |p: &Policy| -> Vec<String> { p.problems().into_iter().map(|(f, _)| f).collect() };
    assert!(
        policy(vec![], vec![event(monday, monday, "08:00", "09:00", 150)])
            .problems()
            .is_empty()
    );

    let reversed = policy(
        vec![],
        vec![event(date(2026, 1, 7), monday, "08:00", "09:00", 1)],
    );
    assert_eq!(fields(&reversed), ["events[1].date"]);
    assert_eq!(
        reversed.problems()[0].1,
        "the range 2026-01-07..2026-01-05 ends before it starts; write the earlier date first"
    );
    let backwards = policy(vec![], vec![event(monday, monday, "09:00", "09:00", 1)]);
    assert_eq!(fields(&backwards), ["events[1].to"]);
    let too_many = policy(vec![], vec![event(monday, monday, "08:00", "09:00", 201)]);
    assert_eq!(fields(&too_many), ["events[1].production"]);
    let mut unnamed = event(monday, monday, "08:00", "09:00", 1);
    unnamed.name = " ".into();
    assert_eq!(fields(&policy(vec![], vec![unnamed])), ["events[1].name"]);
    let mut odd_time = event(monday, monday, "08:00", "09:00", 1);
    odd_time.to = TimeOfDay(9 * 3600 + 30);
    assert_eq!(fields(&policy(vec![], vec![odd_time])), ["events[1].to"]);

    let overlapping = policy(
        vec![],
        vec![
            event(monday, date(2026, 1, 6), "08:00", "09:00", 1),
            event(date(2026, 1, 6), date(2026, 1, 6), "08:59", "10:00", 1),
        ],
    );
    assert_eq!(fields(&overlapping), ["events"]);
    assert_eq!(
        overlapping.problems()[0].1,
        "events 1 and 2 overlap (\"training\" 2026-01-05..2026-01-06 08:00-09:00 and \
         \"training\" 2026-01-06 08:59-10:00)"
    );
    // Back to back, or the same hours on other days, is fine.
    let apart = policy(
        vec![],
        vec![
            event(monday, monday, "08:00", "09:00", 1),
            event(monday, monday, "09:00", "10:00", 1),
            event(date(2026, 1, 6), date(2026, 1, 6), "08:00", "09:00", 1),
        ],
    );
    assert!(apart.problems().is_empty(), "{:?}", apart.problems());
}

#[test]
fn dates_read_as_one_day_or_an_inclusive_range_and_nothing_else() {
    assert_eq!(
        parse_dates("2026-01-05"),
        Ok((date(2026, 1, 5), date(2026, 1, 5)))
    );
    assert_eq!(
        parse_dates("2026-01-05..2026-01-07"),
        Ok((date(2026, 1, 5), date(2026, 1, 7)))
    );
    // The order is the policy rules' business: parsed as written.
    assert_eq!(
        parse_dates("2026-01-07..2026-01-05"),
        Ok((date(2026, 1, 7), date(2026, 1, 5)))
    );
    for bad in [
        "2026-02-30",
        "2026-1-5",
        "2026-01-05T08:00",
        "05/01/2026",
        "",
        "+026-01-05",
    ] {
        assert_eq!(
            parse_date(bad),
            Err(ScheduleError::BadDate { text: bad.into() }),
            "{bad:?}"
        );
    }
    assert_eq!(
        parse_dates("2026-01-05..2026-13-01")
            .unwrap_err()
            .to_string(),
        "date \"2026-13-01\" is not a day of the calendar written YYYY-MM-DD (\"2026-01-05\")"
    );
}
