//! What the dashboard's fill sparkline draws: per class the buffer over the last hour, sampled
//! from the engine's snapshots on its clock (the demo's, when played).

use std::collections::{HashMap, VecDeque};

use jiff::Timestamp;

use deskpool_api::Snapshot;

/// One sample every this many seconds of the engine's clock; an hour of them is kept.
pub const SAMPLE_SECS: i64 = 30;
pub const SAMPLES: usize = 120;
/// The span of one sparkline cell: the engine's logins are counted per 5 minutes.
pub const SPAN_SECS: i64 = 300;

/// A sample: when it began (seconds on the engine's clock), the buffer's lowest level while it
/// lasted, and its level at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    at: i64,
    low: u64,
    last: u64,
}

#[derive(Default)]
pub struct History {
    per_class: HashMap<String, VecDeque<Sample>>,
    last: Option<Timestamp>,
}

impl History {
    pub fn record(&mut self, snapshot: &Snapshot) {
        let Some(at) = snapshot.at else {
            return;
        };
        // The first snapshot, then a new sample per interval; a snapshot within one updates it
        // (a dip is kept as its low).
        let within = self
            .last
            .is_some_and(|last| at.duration_since(last).as_secs() < SAMPLE_SECS);
        if !within {
            self.last = Some(at);
        }
        for c in &snapshot.classes {
            let buffer = u64::from(c.plan.buffer);
            let series = self.per_class.entry(c.plan.name.clone()).or_default();
            match series.back_mut() {
                Some(newest) if within => {
                    newest.low = newest.low.min(buffer);
                    newest.last = buffer;
                }
                _ => {
                    if series.len() == SAMPLES {
                        series.pop_front();
                    }
                    series.push_back(Sample {
                        at: at.as_second(),
                        low: buffer,
                        last: buffer,
                    });
                }
            }
        }
    }

    /// The buffer's lowest level in each of the last `cells` 5-minute spans of the engine's
    /// clock (the login sparkline's spans, so the two line up), oldest first, ending with the
    /// span of the newest sample. A span without a sample holds the level the one before it
    /// ended on; spans before the first sample are left out.
    pub fn buffer_lows(&self, class: &str, cells: usize) -> Vec<u64> {
        let Some(series) = self.per_class.get(class) else {
            return Vec::new();
        };
        let Some(newest) = series.back() else {
            return Vec::new();
        };
        // Per span, oldest first: (low, level at its end), from the samples that began in it.
        let mut spans: Vec<Option<(u64, u64)>> = vec![None; cells];
        let mut before: Option<u64> = None;
        for s in series {
            let back = ((newest.at - s.at) / SPAN_SECS) as usize;
            if back >= cells {
                before = Some(s.last);
                continue;
            }
            let span = &mut spans[cells - 1 - back];
            *span = Some(match *span {
                Some((low, _)) => (low.min(s.low), s.last),
                None => (s.low, s.last),
            });
        }
        let mut held = before;
        let mut lows = Vec::new();
        for span in spans {
            match span {
                Some((low, last)) => {
                    // Until its first sample, the span was at the level held into it.
                    lows.push(held.map_or(low, |h| low.min(h)));
                    held = Some(last);
                }
                None => {
                    if let Some(level) = held {
                        lows.push(level);
                    }
                }
            }
        }
        lows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(samples: &[(i64, u64)]) -> History {
        let mut history = History::default();
        let series = history.per_class.entry("office".into()).or_default();
        for &(at, b) in samples {
            series.push_back(Sample {
                at,
                low: b,
                last: b,
            });
        }
        history
    }

    #[test]
    fn buffer_lows_are_the_lowest_level_of_each_five_minutes_of_the_engines_clock() {
        // Spans counted back from the newest sample (t = 900): t 0, 1-300, 301-600, 601-900.
        // The level 1 from t = 30 lasts until the sample at 330: into the third span too.
        let h = history(&[(0, 8), (30, 1), (330, 9), (660, 10), (900, 7)]);
        assert_eq!(h.buffer_lows("office", 12), [8, 1, 1, 7]);
        assert_eq!(h.buffer_lows("office", 2), [1, 7]);
        assert!(h.buffer_lows("dev", 12).is_empty());
    }

    #[test]
    fn a_span_without_a_sample_holds_the_level_before_it() {
        // Snapshots far apart (a fast demo): the spans between hold the last level.
        let h = history(&[(0, 4), (1200, 2)]);
        assert_eq!(h.buffer_lows("office", 12), [4, 4, 4, 4, 2]);
    }

    #[test]
    fn a_dip_between_two_samples_is_kept() {
        let mut history = History::default();
        let fleet = crate::sample::fleet(1, 1);
        let at: Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
        let mut snapshot = crate::sample::snapshot(&fleet, 4, at);
        let class = snapshot.classes[0].plan.name.clone();
        for (secs, buffer) in [(0, 5), (10, 1), (20, 5)] {
            snapshot.at = Some(at + jiff::SignedDuration::from_secs(secs));
            snapshot.classes[0].plan.buffer = buffer;
            history.record(&snapshot);
        }
        assert_eq!(history.buffer_lows(&class, 12), [1]);
    }
}
