//! Where the engine reads the time. Tests and the simulator set it; the engine never reads the
//! system clock directly.

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
    /// Clock seconds per real second: 1, except the demo's faster working day. Real durations
    /// (how long a boot took) are multiplied by it to be compared with the clock's.
    fn speed(&self) -> u32 {
        1
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until it is moved: for tests at a chosen time of day.
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        ManualClock(Mutex::new(at))
    }
    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
    pub fn advance(&self, by: SignedDuration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A clock that runs `speed` times faster than real time from a chosen instant: the demo's
/// working day in minutes.
pub struct ScaledClock {
    start: Timestamp,
    real_start: std::time::Instant,
    speed: u32,
}

impl ScaledClock {
    pub fn new(start: Timestamp, speed: u32) -> Self {
        ScaledClock {
            start,
            real_start: std::time::Instant::now(),
            speed: speed.max(1),
        }
    }
    /// The real instant at which this clock shows `at` (now, when `at` is past).
    pub fn real_instant(&self, at: Timestamp) -> std::time::Instant {
        let ahead = at.duration_since(self.start).as_secs_f64().max(0.0) / f64::from(self.speed);
        self.real_start + std::time::Duration::from_secs_f64(ahead)
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Timestamp {
        let real = self.real_start.elapsed().as_secs_f64() * f64::from(self.speed);
        self.start + SignedDuration::from_secs_f64(real)
    }

    fn speed(&self) -> u32 {
        self.speed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_clock_runs_faster_and_maps_back_to_real_time() {
        let start: Timestamp = "2026-01-05T06:00:00Z".parse().unwrap();
        let clock = ScaledClock::new(start, 600);
        let one_hour_later = start + SignedDuration::from_hours(1);
        let real = clock.real_instant(one_hour_later);
        assert_eq!(
            real.duration_since(clock.real_start),
            std::time::Duration::from_secs(6)
        );
        assert!(clock.now() >= start);
    }
}
