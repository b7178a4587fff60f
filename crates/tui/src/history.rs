//! What the dashboard's sparklines draw: per class production (demand) and buffer over the last
//! hour, sampled from the engine's snapshots.

use std::collections::{HashMap, VecDeque};

use jiff::Timestamp;

use deskpool_api::Snapshot;

/// One sample every this many seconds; an hour of them is kept.
pub const SAMPLE_SECS: i64 = 30;
pub const SAMPLES: usize = 120;

#[derive(Default)]
pub struct History {
    per_class: HashMap<String, VecDeque<(u64, u64)>>,
    last: Option<Timestamp>,
}

impl History {
    pub fn record(&mut self, snapshot: &Snapshot) {
        let Some(at) = snapshot.at else {
            return;
        };
        // The first snapshot, then one per interval.
        if self
            .last
            .is_some_and(|last| at.duration_since(last).as_secs() < SAMPLE_SECS)
        {
            // Update the newest sample so the sparkline ends on the current levels.
            for c in &snapshot.classes {
                if let Some(last) = self
                    .per_class
                    .get_mut(&c.plan.name)
                    .and_then(|s| s.back_mut())
                {
                    *last = (u64::from(c.plan.production), u64::from(c.plan.buffer));
                }
            }
            return;
        }
        self.last = Some(at);
        for c in &snapshot.classes {
            let series = self.per_class.entry(c.plan.name.clone()).or_default();
            if series.len() == SAMPLES {
                series.pop_front();
            }
            series.push_back((u64::from(c.plan.production), u64::from(c.plan.buffer)));
        }
    }

    /// The last `width` samples of (production, buffer) for a class, oldest first.
    pub fn series(&self, class: &str, width: usize) -> (Vec<u64>, Vec<u64>) {
        let Some(s) = self.per_class.get(class) else {
            return (Vec::new(), Vec::new());
        };
        let skip = s.len().saturating_sub(width);
        s.iter().skip(skip).map(|&(p, b)| (p, b)).unzip()
    }
}
