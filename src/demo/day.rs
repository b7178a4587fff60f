//! The synthetic day: deterministic (the same date gives the same day), shaped like an office.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// One login or logout of the demo day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoEvent {
    pub at: Timestamp,
    pub class: &'static str,
    pub user: String,
    pub login: bool,
}

/// Users per class and the shape of their day: (class, users, arrival mean and spread,
/// departure mean and spread), in minutes after midnight.
const CLASSES: &[(&str, u32, u32, u32, u32, u32)] = &[
    ("office", 40, 8 * 60 + 10, 25, 17 * 60 + 15, 40),
    ("dev", 14, 9 * 60, 40, 18 * 60, 50),
    ("cad", 6, 8 * 60 + 30, 30, 17 * 60 + 30, 30),
];

/// A small deterministic generator (xorshift64*), seeded from the date.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Roughly normal (sum of four uniforms), mean 0, spread `sd`.
    fn around(&mut self, sd: f64) -> f64 {
        let s: f64 = (0..4).map(|_| self.unit()).sum::<f64>() - 2.0;
        s * sd * 1.732
    }
}

/// The demo day on `date` (UTC): every user logs in once in the morning, a third log out for
/// lunch and back in, and all log out in the evening. Sorted by time.
pub fn working_day(date: Date) -> Vec<DemoEvent> {
    let mut rng =
        Rng(0x9E37_79B9_7F4A_7C15 ^ (date.year() as u64) << 32 ^ (date.day_of_year() as u64));
    let midnight = date
        .to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let at = |minutes: f64| midnight + SignedDuration::from_secs((minutes * 60.0) as i64);
    let mut events = Vec::new();
    for &(class, users, arrive, arrive_sd, leave, leave_sd) in CLASSES {
        for n in 0..users {
            let user = format!("{class}-demo-{n:02}");
            let login = f64::from(arrive) + rng.around(f64::from(arrive_sd));
            let logout = (f64::from(leave) + rng.around(f64::from(leave_sd))).max(login + 60.0);
            events.push(DemoEvent {
                at: at(login),
                class,
                user: user.clone(),
                login: true,
            });
            if rng.unit() < 0.35 {
                let out = 12.0 * 60.0 + rng.around(20.0);
                let back = out + 30.0 + rng.unit() * 30.0;
                if out > login + 10.0 && back + 10.0 < logout {
                    events.push(DemoEvent {
                        at: at(out),
                        class,
                        user: user.clone(),
                        login: false,
                    });
                    events.push(DemoEvent {
                        at: at(back),
                        class,
                        user: user.clone(),
                        login: true,
                    });
                }
            }
            events.push(DemoEvent {
                at: at(logout),
                class,
                user,
                login: false,
            });
        }
    }
    events.sort_by(|a, b| a.at.cmp(&b.at).then(a.user.cmp(&b.user)));
    events
}

/// Where the demo starts: 06:30 UTC today, or on the next weekday (the demo's periods are
/// weekday periods).
pub fn demo_start(today: Date) -> Timestamp {
    let mut day = today;
    while matches!(
        day.weekday(),
        jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
    ) {
        day = day.tomorrow().unwrap_or(day);
    }
    day.to_datetime(Time::constant(6, 30, 0, 0))
        .to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn monday() -> Date {
        Date::constant(2026, 1, 5)
    }

    #[test]
    fn the_day_is_deterministic_sorted_and_balanced() {
        let day = working_day(monday());
        assert_eq!(day, working_day(monday()));
        assert!(day.windows(2).all(|w| w[0].at <= w[1].at));
        let mut on: HashMap<&str, i32> = HashMap::new();
        for e in &day {
            let n = on.entry(e.user.as_str()).or_default();
            *n += if e.login { 1 } else { -1 };
            assert!(
                (0..=1).contains(n),
                "{} logged in twice or out first",
                e.user
            );
        }
        assert!(
            on.values().all(|&n| n == 0),
            "everybody leaves by the evening"
        );
    }

    #[test]
    fn the_morning_storm_peaks_within_the_demo_caps() {
        let day = working_day(monday());
        let mut now: HashMap<&str, u32> = HashMap::new();
        let mut peak: HashMap<&str, u32> = HashMap::new();
        let mut storm = 0;
        for e in &day {
            let n = now.entry(e.class).or_default();
            if e.login {
                *n += 1;
                let hour = e.at.to_zoned(TimeZone::UTC).hour();
                if (7..10).contains(&hour) {
                    storm += 1;
                }
            } else {
                *n -= 1;
            }
            let p = peak.entry(e.class).or_default();
            *p = (*p).max(*n);
        }
        assert!(
            storm >= 50,
            "most logins come between 07:00 and 10:00 ({storm})"
        );
        // The demo caps: office 60, dev 30, cad 16 (with room for the buffer).
        assert!(
            peak["office"] <= 44 && peak["dev"] <= 20 && peak["cad"] <= 8,
            "{peak:?}"
        );
    }

    #[test]
    fn the_demo_starts_on_a_weekday_morning() {
        let saturday = Date::constant(2026, 1, 10);
        assert_eq!(demo_start(saturday).to_string(), "2026-01-12T06:30:00Z");
        assert_eq!(demo_start(monday()).to_string(), "2026-01-05T06:30:00Z");
    }
}
