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
    // First day ever: a login every 90 s since 07:00 (a steady rate, no burst): ten in the
    // last 15 minutes.
    logins(&mut m, "office", 0, 7 * 3600 + 10, 8 * 3600 + 900, 90);
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

/// A fixed-seed generator of uniform numbers in (0, 1) (xorshift64*).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// Poisson logins at `per_hour` in `[from, to)` of `day`, user `u<i>` of `users` in turn.
fn poisson_logins(
    m: &mut DemandModel,
    rng: &mut Rng,
    day: i64,
    (from, to): (i64, i64),
    per_hour: f64,
    users: usize,
) -> Vec<i64> {
    let mut times = Vec::new();
    let mut t = from as f64;
    loop {
        t += -rng.uniform().ln() * 3600.0 / per_hour;
        if t >= to as f64 {
            return times;
        }
        let secs = t as i64;
        let user = format!("u{}", times.len() % users);
        m.record_user_login("office", &user, at(day, secs));
        times.push(secs);
    }
}

fn flagged(m: &DemandModel, class: &str, now: Timestamp) -> bool {
    m.classes[class].burst(&m.tz, now.as_second(), 80).is_some()
}

#[test]
fn a_storm_is_recognised_within_its_first_logins() {
    let mut m = DemandModel::default();
    let mut rng = Rng(7);
    // A week of quiet days: about 20 logins an hour, 09:00-17:00.
    for day in 0..7 {
        poisson_logins(&mut m, &mut rng, day, (9 * 3600, 17 * 3600), 20.0, 400);
    }
    poisson_logins(&mut m, &mut rng, 7, (9 * 3600, 10 * 3600), 20.0, 400);
    let before = m.forecast("office", at(7, 10 * 3600), 80);
    assert!(before < 2.0, "forecast before the storm {before}");
    // 10:00 sharp: a login every 2 s. By its sixth login the storm is recognised and its
    // likely remainder forecast at once, not one login's worth.
    for i in 0..6 {
        m.record_user_login("office", &format!("storm{i}"), at(7, 10 * 3600 + 2 * i));
    }
    let now = at(7, 10 * 3600 + 10);
    assert!(flagged(&m, "office", now));
    let f = m.forecast("office", now, 80);
    assert!(f >= 20.0, "forecast six logins into the storm {f}");
}

#[test]
fn a_steady_poisson_stream_is_not_a_burst() {
    let mut m = DemandModel::default();
    let mut rng = Rng(42);
    for day in 0..3 {
        poisson_logins(&mut m, &mut rng, day, (0, 86_400), 120.0, 1000);
    }
    // Day 3, two logins a minute all day: checked after each login, no window is a burst.
    let times = {
        let mut checked = DemandModel::clone(&m);
        let times = poisson_logins(&mut checked, &mut rng, 3, (0, 86_400), 120.0, 1000);
        m = checked;
        times
    };
    assert!(times.len() > 2500, "{} logins", times.len());
    let flags = times
        .iter()
        .filter(|&&t| flagged(&m, "office", at(3, t)))
        .count();
    assert_eq!(flags, 0, "{flags} of {} checks flagged", times.len());
}

#[test]
fn a_burst_never_forecasts_more_users_than_are_not_logged_in() {
    let mut m = DemandModel::default();
    // A class of 30 users, each logging in once a day at 09:00-09:30.
    for day in 0..5 {
        for u in 0..30 {
            m.record_user_login("office", &format!("u{u}"), at(day, 9 * 3600 + u * 60));
        }
    }
    // Day 5: 24 of them log in within a minute: a storm, but only 6 users are left.
    for u in 0..24 {
        m.record_user_login("office", &format!("u{u}"), at(5, 12 * 3600 + u * 2));
    }
    let now = at(5, 12 * 3600 + 50);
    assert!(flagged(&m, "office", now));
    let f = m.forecast("office", now, 600);
    assert!(f <= 6.0 + 1e-9, "forecast {f}, 6 users left");
    // Two log out: they can come back.
    m.record_logout("office", "u0", at(5, 12 * 3600 + 49));
    m.record_logout("office", "u1", at(5, 12 * 3600 + 49));
    let f = m.forecast("office", now, 600);
    assert!(f <= 8.0 + 1e-9 && f > 6.0, "forecast {f}, 8 users left");
}

#[test]
fn one_storm_day_does_not_echo_the_next_days() {
    let mut m = DemandModel::default();
    // Two weeks of ordinary weekdays: one login a minute 09:00-12:00.
    for day in 0..14 {
        if day % 7 < 5 {
            logins(&mut m, "office", day, 9 * 3600, 12 * 3600, 60);
        }
    }
    // Third Monday: 300 extra logins at 10:00-10:05 (an outage's reconnect).
    logins(&mut m, "office", 14, 9 * 3600, 12 * 3600, 60);
    logins(&mut m, "office", 14, 10 * 3600, 10 * 3600 + 300, 1);
    // Tuesday and the next Monday, 10:00: the usual 15 logins a quarter, not the storm's.
    for day in [15, 21] {
        logins(&mut m, "office", day, 9 * 3600, 10 * 3600, 60);
        let f = m.forecast("office", at(day, 10 * 3600), 900);
        assert!(f < 15.0 * 1.3 + 3.0, "day {day} 10:00-10:15 forecast {f}");
    }
}

#[test]
fn clustered_logins_raise_the_planning_mean_above_the_forecast() {
    let mut m = DemandModel::default();
    // Every day a shift of 20 logs in within the minute at 07:00, 08:00, ..., 12:00.
    for day in 0..7 {
        for hour in 7..13 {
            logins(&mut m, "office", day, hour * 3600, hour * 3600 + 40, 2);
        }
    }
    let now = at(7, 7 * 3600 - 60);
    let mean = m.forecast("office", now, 120);
    let planned = m.planning_mean("office", now, 120, 0.99);
    assert!(
        planned > 1.5 * mean,
        "forecast {mean}, planning mean {planned}"
    );
    // Poisson logins: the planning mean is the forecast.
    let mut p = DemandModel::default();
    let mut rng = Rng(3);
    for day in 0..8 {
        poisson_logins(&mut p, &mut rng, day, (7 * 3600, 13 * 3600), 60.0, 500);
    }
    let now = at(8, 9 * 3600);
    poisson_logins(&mut p, &mut rng, 8, (7 * 3600, 9 * 3600), 60.0, 500);
    let mean = p.forecast("office", now, 120);
    let planned = p.planning_mean("office", now, 120, 0.99);
    assert!(
        planned <= mean * 1.2,
        "forecast {mean}, planning mean {planned}"
    );
}

#[test]
fn the_horizon_grows_by_the_time_creation_needs() {
    let mut m = DemandModel::default();
    // Two logins a second for the last minute, the first logins ever: a burst.
    logins(&mut m, "office", 0, 9 * 3600, 9 * 3600 + 60, 1);
    let now = at(0, 9 * 3600 + 60);
    let need = m.forecast("office", now, 80);
    assert!(need > 60.0, "forecast {need}");
    // One desktop a second: the horizon is the lead time plus the excess over the stock.
    let h = m.lead_horizon("office", now, 80, 1.0, 10);
    assert_eq!(h, 80 + (need - 10.0).ceil() as u64);
    // Creation keeps up (or nothing to build): the lead time alone.
    assert_eq!(m.lead_horizon("office", now, 80, 1.0, 1000), 80);
    assert_eq!(m.lead_horizon("office", now, 80, 0.0, 0), 80);
}

/// Logs `n` users `u<first>..` of `class` in, one every `every` seconds from `from` on `day`.
fn user_logins(
    m: &mut DemandModel,
    day: i64,
    from: i64,
    users: std::ops::Range<usize>,
    every: i64,
) {
    for (i, u) in users.enumerate() {
        m.record_user_login("office", &format!("u{u}"), at(day, from + i as i64 * every));
    }
}

#[test]
fn a_mass_logout_expects_its_users_back_at_once() {
    let mut m = DemandModel::default();
    // 100 users log in through the morning of the first day.
    user_logins(&mut m, 0, 8 * 3600, 0..100, 60);
    let now = at(0, 15 * 3600);
    let before = m.forecast("office", now, 80);
    assert!(before < 2.0, "forecast before {before}");
    // 15:00: 80 of them log out within 20 s (an outage).
    for u in 0..80 {
        m.record_logout("office", &format!("u{u}"), at(0, 15 * 3600 + u / 4));
    }
    let after = at(0, 15 * 3600 + 21);
    let f = m.forecast("office", after, 80);
    assert!(
        f >= 80.0,
        "forecast after the mass logout {f}, 80 users away"
    );
    // 50 come back; the 30 still away are still expected, until none has come back for
    // RECONNECT_QUIET_SECS (the last at 15:01:49).
    user_logins(&mut m, 0, 15 * 3600 + 60, 0..50, 1);
    let last = 15 * 3600 + 109;
    let quiet = reconnect::RECONNECT_QUIET_SECS;
    let f = m.forecast("office", at(0, last + quiet - 1), 80);
    assert!(f >= 30.0, "forecast with 30 still away {f}");
    let f = m.forecast("office", at(0, last + quiet), 80);
    assert!(f < 20.0, "forecast once the wave is over {f}");
}

#[test]
fn a_mass_logout_names_its_users_once_recognised_then_each_one_joining_it() {
    let mut m = DemandModel::default();
    user_logins(&mut m, 0, 8 * 3600, 0..20, 60);
    let outage = 15 * 3600;
    let mut named = Vec::new();
    for u in 0..20 {
        let t = at(0, outage + u / 4);
        assert_eq!(m.in_mass_logout("office", t), u >= 5, "logout {u}");
        named.push(m.record_logout("office", &format!("u{u}"), t));
    }
    // The fifth logout in the minute (a quarter of the 20) makes the mass logout: it names
    // the five; each later one names itself; the first four named nobody.
    assert!(named[..4].iter().all(Vec::is_empty), "{named:?}");
    assert_eq!(named[4], ["u0", "u1", "u2", "u3", "u4"]);
    assert_eq!(named[5], ["u5"]);
    assert_eq!(named[19], ["u19"]);
    // A minute after it was recognised, a logout no longer joins it.
    assert!(!m.in_mass_logout("office", at(0, outage + 1 + 61)));
}

#[test]
fn users_whose_desktops_are_kept_are_not_ordered_desktops_and_their_reconnect_counts() {
    let mut m = DemandModel::default();
    user_logins(&mut m, 0, 8 * 3600, 0..20, 60);
    let outage = 15 * 3600;
    for u in 0..20 {
        m.record_logout("office", &format!("u{u}"), at(0, outage));
    }
    let after = at(0, outage + 1);
    let all_away = m.forecast("office", after, 80);
    assert!(all_away >= 20.0, "{all_away}");
    // 15 of them have their own desktops kept: only 5 are still to be made.
    for u in 0..15 {
        m.kept_for_reconnect("office", &format!("u{u}"));
    }
    let five = m.forecast("office", after, 80);
    assert!((5.0..10.0).contains(&five), "{five}");
    // Ten of the kept come back to their desktops: half the wave is back, a recognised outage,
    // and the forecast does not count them again.
    for u in 0..10 {
        m.record_reconnect("office", &format!("u{u}"), at(0, outage + 60 + u));
    }
    let later = m.forecast("office", at(0, outage + 80), 80);
    assert!(later <= five, "{later} after the reconnects, {five} before");
    assert!(
        m.classes["office"].today_outage,
        "half of the wave back: an outage"
    );
}

#[test]
fn logouts_spread_over_the_evening_are_not_a_mass_logout() {
    let mut m = DemandModel::default();
    user_logins(&mut m, 0, 8 * 3600, 0..100, 60);
    // 17:00-18:40: one logout a minute, as at the end of a working day.
    for u in 0..100 {
        m.record_logout("office", &format!("u{u}"), at(0, 17 * 3600 + u as i64 * 60));
        let f = m.forecast("office", at(0, 17 * 3600 + u as i64 * 60 + 1), 80);
        assert!(f < 5.0, "forecast after logout {u}: {f}");
    }
    // Four users of a class of five leave together: too few to be an outage.
    let mut small = DemandModel::default();
    for u in 0..5 {
        small.record_user_login("office", &format!("u{u}"), at(0, 9 * 3600 + u));
    }
    for u in 0..4 {
        small.record_logout("office", &format!("u{u}"), at(0, 12 * 3600 + u));
    }
    assert!(small.forecast("office", at(0, 12 * 3600 + 5), 80) < 1.0);
}

/// Day 0: 100 users log in 08:00-09:40; at 15:00 all log out within 25 s and come back within
/// two minutes (an outage) when `outage`; from 17:00 they leave one a minute.
fn day_with_outage(m: &mut DemandModel, outage: bool) {
    user_logins(m, 0, 8 * 3600, 0..100, 60);
    if outage {
        for u in 0..100 {
            m.record_logout("office", &format!("u{u}"), at(0, 15 * 3600 + u as i64 / 4));
        }
        user_logins(m, 0, 15 * 3600 + 40, 0..100, 1);
    }
    // Everyone leaves in the evening, one a minute.
    for u in 0..100 {
        m.record_logout("office", &format!("u{u}"), at(0, 17 * 3600 + u as i64 * 60));
    }
}

#[test]
fn a_recognised_outage_is_not_learnt_as_the_usual_day() {
    let mut with = DemandModel::default();
    day_with_outage(&mut with, true);
    // Day 1: its first login closes day 0.
    with.record_user_login("office", "u0", at(1, 7 * 3600));
    assert!(
        with.classes["office"].days[0].outage,
        "day 0 is a recognised outage"
    );
    let f = with.forecast("office", at(1, 15 * 3600), 900);
    assert!(f < 5.0, "15:00-15:15 the day after the outage: {f}");
    // The same day without the outage is learnt (its morning), and is not an outage.
    let mut without = DemandModel::default();
    day_with_outage(&mut without, false);
    without.record_user_login("office", "u0", at(1, 7 * 3600));
    assert!(!without.classes["office"].days[0].outage);
    let morning = without.forecast("office", at(1, 8 * 3600), 900);
    assert!(morning > 10.0, "08:00-08:15 learnt from day 0: {morning}");
}

/// Local day number of `2026-01-05` plus `day`.
fn day_no(day: i64) -> i64 {
    calendar::day_number(jiff::civil::date(2026, 1, 5)) + day
}

#[test]
fn declared_event_days_are_not_learnt() {
    // A training Monday to Thursday: 300 extra logins at 10:00-10:05 each day, on top of the
    // usual login a minute 09:00-12:00.
    let learnt = |calendar: calendar::Calendar| {
        let mut m = DemandModel::default();
        m.class_mut("office").calendar = calendar;
        for day in 0..4 {
            logins(&mut m, "office", day, 9 * 3600, 12 * 3600, 60);
            logins(&mut m, "office", day, 10 * 3600, 10 * 3600 + 300, 1);
        }
        // Friday as usual until 10:00.
        logins(&mut m, "office", 4, 9 * 3600, 10 * 3600, 60);
        m.forecast("office", at(4, 10 * 3600), 900)
    };
    let declared = learnt(calendar::Calendar::new(&[], &[(day_no(0), day_no(3))]));
    assert!(
        declared < 25.0,
        "Friday 10:00-10:15 after a declared training: {declared}"
    );
    // Undeclared, four storm days in a row are the usual day (this is what the calendar is for).
    let undeclared = learnt(calendar::Calendar::default());
    assert!(
        undeclared > 100.0,
        "Friday 10:00-10:15, training undeclared: {undeclared}"
    );
}

#[test]
fn a_holiday_is_forecast_as_a_sunday() {
    let mut m = DemandModel::default();
    // Two weeks: weekdays 09:00-12:00 one login a minute, weekends quiet.
    for day in 0..14 {
        if day % 7 < 5 {
            logins(&mut m, "office", day, 9 * 3600, 12 * 3600, 60);
        }
    }
    // The third Monday closes the weeks; Wednesday (day 16) is a holiday.
    logins(&mut m, "office", 14, 9 * 3600, 12 * 3600, 60);
    let wednesday = m.forecast("office", at(16, 9 * 3600), 1800);
    assert!(wednesday > 20.0, "an ordinary Wednesday 09:00: {wednesday}");
    m.class_mut("office").calendar = calendar::Calendar::new(&[day_no(16)], &[]);
    let holiday = m.forecast("office", at(16, 9 * 3600), 1800);
    assert!(
        holiday < wednesday / 4.0,
        "a holiday Wednesday 09:00: {holiday}"
    );
}

#[test]
fn an_hour_that_missed_its_service_level_is_planned_higher() {
    // A week of 07:00-08:00 logins, one every 90 s; in `missed`, one in ten found no desktop.
    let run = |miss_every: Option<usize>| {
        let mut m = DemandModel::default();
        for day in 0..7 {
            let mut t = 7 * 3600;
            let mut i = 0;
            while t < 8 * 3600 {
                m.record_login("office", at(day, t));
                let instant = miss_every.is_none_or(|n| i % n != 0);
                m.record_outcome("office", at(day, t), instant);
                t += 90;
                i += 1;
            }
        }
        m.record_login("office", at(7, 6 * 3600));
        m.planning_mean("office", at(7, 7 * 3600 + 600), 80, 0.99)
    };
    let served = run(None);
    let missed = run(Some(10));
    assert!(
        crate::plan::predictive_spare(missed, 0.99) > crate::plan::predictive_spare(served, 0.99),
        "planning mean {missed} after misses, {served} without"
    );
}

#[test]
fn window_peaks_count_the_most_logins_in_each_window() {
    // Logins at 10:00:00, :10, :20 and 10:05:00 (bin 40), one at 10:20:00 (bin 41).
    let seconds = [36_000, 36_010, 36_020, 36_300, 37_200];
    let mut minutes = vec![0u32; BINS * BIN_MINUTES];
    for s in seconds {
        minutes[s as usize / 60] += 1;
    }
    let day = DayRecord::from_logins(0, &minutes, &seconds);
    // Up to 300 s (10:00:00 is not in the 300 s before 10:05:00): the three of 10:00; 600 s:
    // all four of bin 40; bin 41 alone.
    assert_eq!(day.peaks[40], [3, 3, 3, 3, 4]);
    assert_eq!(day.peaks[41], [1, 1, 1, 1, 1]);
    assert_eq!(day.peaks[39], [0; 5]);
    // Read between the windows: 90 s lies half-way from 60 s to 120 s.
    let mut days = VecDeque::new();
    days.push_back(day);
    let p = Profiles::learn(&days, &calendar::Calendar::default());
    assert_eq!(p.peak(40, 60), 3.0);
    assert_eq!(p.peak(40, 450), 3.5);
    assert_eq!(p.peak(40, 15), 1.5);
}

#[test]
fn a_forecast_peak_creation_cannot_build_in_a_lead_time_is_built_before_it() {
    let mut m = DemandModel::default();
    // A week of 200 logins at 10:00-10:10 every day, nothing else.
    for day in 0..7 {
        logins(&mut m, "office", day, 10 * 3600, 10 * 3600 + 600, 3);
    }
    m.record_login("office", at(7, 3600));
    let c = &m.classes["office"];
    // 09:40, 20 minutes before: creation at 4 desktops per 80 s (one host of pacing 4) cannot
    // make them in the last lead time, so those it cannot make by then are wanted now.
    let now = at(7, 9 * 3600 + 40 * 60).as_second();
    let slow = c.build_ahead(&m.tz, now, 80, 0.05);
    assert!(slow > 50.0, "build ahead at 0.05/s: {slow}");
    // An hour before, the peak is beyond the look-ahead.
    let early = at(7, 8 * 3600 + 40 * 60).as_second();
    assert_eq!(c.build_ahead(&m.tz, early, 80, 0.05), 0.0);
    // Creation that keeps up needs nothing ahead.
    assert_eq!(c.build_ahead(&m.tz, now, 80, 10.0), 0.0);
}
