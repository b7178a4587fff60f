//! Retry tables: for each key (a desktop, a class, a seed copy, a host) that keeps failing,
//! how many failures in a row, until when it waits, and why. Exponential, within the
//! configured bounds. Pure bookkeeping (no libvirt, no async runtime).

use std::collections::HashMap;
use std::hash::Hash;

use jiff::{SignedDuration, Timestamp};

pub use deskpool_core::retry::RetryBounds;

/// One key's retry.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    pub until: Timestamp,
    pub failures: u32,
    pub reason: String,
}

/// The retries under way, by key.
#[derive(Debug, Clone)]
pub struct Backoffs<K> {
    entries: HashMap<K, Backoff>,
}

impl<K> Default for Backoffs<K> {
    fn default() -> Self {
        Backoffs {
            entries: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash + Clone> Backoffs<K> {
    /// `key` has failed `failures` times in a row, the last because of `reason`: it waits the
    /// matching delay from `now`.
    pub fn record(
        &mut self,
        key: K,
        now: Timestamp,
        failures: u32,
        reason: String,
        bounds: RetryBounds,
    ) -> &Backoff {
        let until = now + SignedDuration::from_secs(bounds.delay_secs(failures) as i64);
        let entry = Backoff {
            until,
            failures,
            reason,
        };
        self.entries.insert(key.clone(), entry);
        &self.entries[&key]
    }

    /// `key` failed once more.
    pub fn failed_again(
        &mut self,
        key: K,
        now: Timestamp,
        reason: String,
        bounds: RetryBounds,
    ) -> &Backoff {
        let failures = self.failures(&key) + 1;
        self.record(key, now, failures, reason, bounds)
    }

    /// Failures in a row of `key` (0: none).
    pub fn failures(&self, key: &K) -> u32 {
        self.entries.get(key).map_or(0, |b| b.failures)
    }

    pub fn get(&self, key: &K) -> Option<&Backoff> {
        self.entries.get(key)
    }

    /// `key` succeeded: no retry pending.
    pub fn clear(&mut self, key: &K) {
        self.entries.remove(key);
    }

    pub fn retain(&mut self, keep: impl FnMut(&K, &mut Backoff) -> bool) {
        self.entries.retain(keep);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &Backoff)> {
        self.entries.iter()
    }

    /// Keys still waiting at `now`.
    pub fn waiting_at(&self, now: Timestamp) -> impl Iterator<Item = &K> {
        self.entries
            .iter()
            .filter(move |(_, b)| b.until > now)
            .map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_ceiling_and_clear_on_success() {
        let bounds = RetryBounds {
            base_secs: 5,
            max_secs: 60,
        };
        let delays: Vec<u64> = (1..=6).map(|f| bounds.delay_secs(f)).collect();
        assert_eq!(delays, [5, 10, 20, 40, 60, 60]);
        let now = Timestamp::from_second(1_000).unwrap();
        let mut retries: Backoffs<&str> = Backoffs::default();
        retries.failed_again("d1", now, "boot".into(), bounds);
        let b = retries.failed_again("d1", now, "boot again".into(), bounds);
        assert_eq!((b.failures, b.until.as_second()), (2, 1_010));
        assert_eq!(retries.waiting_at(now).count(), 1);
        assert_eq!(
            retries
                .waiting_at(Timestamp::from_second(1_010).unwrap())
                .count(),
            0
        );
        retries.clear(&"d1");
        assert_eq!(retries.failures(&"d1"), 0);
    }
}
