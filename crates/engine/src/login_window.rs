//! The last hour of each class's logins, for the console's incident counters: the ledger counts
//! since the start, so the window is the difference between the counts now and a copy taken
//! about an hour ago. Copies are kept one a minute, 61 of them per class at most.

use std::collections::{HashMap, VecDeque};

use jiff::Timestamp;

use deskpool_api::LoginWindowView;
use deskpool_core::ledger::{LOGIN_WAIT_BUCKETS, LoginStats};

/// The window's length.
pub const WINDOW_SECS: i64 = 3600;
/// How often a copy of the counts is kept.
const SAMPLE_GAP_SECS: i64 = 60;

/// Copies of the counts of each class, oldest first.
#[derive(Default)]
pub struct LoginWindows {
    started: Option<Timestamp>,
    samples: HashMap<String, VecDeque<(Timestamp, LoginStats)>>,
}

impl LoginWindows {
    /// The last hour of `class` whose counts are `now_stats` at `now`; keeps a copy when the
    /// last one is a minute old.
    pub fn window(
        &mut self,
        class: &str,
        now: Timestamp,
        now_stats: &LoginStats,
    ) -> LoginWindowView {
        let started = *self.started.get_or_insert(now);
        let samples = self.samples.entry(class.to_string()).or_default();
        let due = samples
            .back()
            .is_none_or(|(at, _)| now.as_second() - at.as_second() >= SAMPLE_GAP_SECS);
        if due {
            samples.push_back((now, now_stats.clone()));
        }
        // Keep the newest copy that is at least an hour old, and everything after it.
        while samples.len() > 1 && now.as_second() - samples[1].0.as_second() >= WINDOW_SECS {
            samples.pop_front();
        }
        let base = samples
            .front()
            .filter(|(at, _)| now.as_second() - at.as_second() >= WINDOW_SECS);
        let (since, base) = match base {
            Some((at, stats)) => (*at, stats.clone()),
            // Younger than an hour: everything since the start counts.
            None => (started, LoginStats::default()),
        };
        difference(
            now_stats,
            &base,
            (now.as_second() - since.as_second()).max(0) as u64,
        )
    }
}

fn difference(now: &LoginStats, then: &LoginStats, secs: u64) -> LoginWindowView {
    let served = now.served.saturating_sub(then.served);
    let buckets: Vec<u64> = (0..LOGIN_WAIT_BUCKETS.len())
        .map(|i| {
            let at = |s: &LoginStats| s.wait_le.get(i).copied().unwrap_or(0);
            at(now).saturating_sub(at(then))
        })
        .collect();
    LoginWindowView {
        secs,
        served,
        instant: now.instant.saturating_sub(then.instant),
        refused: now.refused.saturating_sub(then.refused),
        p95_wait_secs: p95(served, &buckets),
    }
}

/// The upper bound of the first bucket that holds 95% of `served` (cumulative `buckets`).
fn p95(served: u64, buckets: &[u64]) -> Option<f64> {
    if served == 0 {
        return None;
    }
    let wanted = served * 95;
    buckets
        .iter()
        .zip(LOGIN_WAIT_BUCKETS)
        .find(|(count, _)| **count * 100 >= wanted)
        .map(|(_, le)| le)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn the_window_counts_only_the_last_hour() {
        let mut windows = LoginWindows::default();
        let mut stats = LoginStats::default();
        stats.record_served(Some(Duration::from_secs(40)));
        stats.refused += 2;
        let w = windows.window("office", at(0), &stats);
        assert_eq!((w.served, w.refused, w.secs), (1, 2, 0));
        // An hour and a minute later, with one instant login since: the old ones have left.
        for minute in 1..=61 {
            if minute == 61 {
                stats.record_served(None);
            }
            let w = windows.window("office", at(minute * 60), &stats);
            if minute == 61 {
                assert_eq!((w.served, w.instant, w.refused), (1, 1, 0));
                assert_eq!(w.secs, 3600);
                assert_eq!(w.p95_wait_secs, Some(LOGIN_WAIT_BUCKETS[0]));
            }
        }
    }

    #[test]
    fn p95_is_the_bound_of_the_bucket_that_holds_95_percent() {
        let mut stats = LoginStats::default();
        for _ in 0..19 {
            stats.record_served(None);
        }
        stats.record_served(Some(Duration::from_secs(25)));
        let w = difference(&stats, &LoginStats::default(), 60);
        assert_eq!(w.p95_wait_secs, Some(0.1));
        stats.record_served(Some(Duration::from_secs(25)));
        let w = difference(&stats, &LoginStats::default(), 60);
        assert_eq!(w.p95_wait_secs, Some(30.0));
        stats.record_served(Some(Duration::from_secs(5000)));
        stats.record_served(Some(Duration::from_secs(5000)));
        let w = difference(&stats, &LoginStats::default(), 60);
        assert_eq!(w.p95_wait_secs, None, "beyond the last bound");
        assert_eq!(
            difference(&LoginStats::default(), &LoginStats::default(), 0).p95_wait_secs,
            None
        );
    }
}
