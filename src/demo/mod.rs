//! The demo: a synthetic working day on the embedded default — a morning login storm, a lunch
//! dip, an evening logout — replayed in accelerated time through the engine's command API (the
//! same assign and release a broker uses), so a new user sees the pools move at once.

pub mod day;
pub mod driver;

pub use day::{DemoEvent, working_day};
pub use driver::drive;

use std::sync::Arc;
use std::time::Duration;

use deskpool_core::clock::{Clock as _, ScaledClock};
use deskpool_engine::jobs::StepDelays;

/// The demo as started: its accelerated clock and how long (in demo time) its simulated hosts
/// take to clone and to boot a desktop.
pub struct Demo {
    pub clock: Arc<ScaledClock>,
    pub clone_secs: u32,
    pub boot_secs: u32,
}

impl Demo {
    /// The step times in real time: demo seconds shortened by the clock's speed.
    pub fn steps(&self) -> StepDelays {
        let real =
            |secs: u32| Duration::from_secs_f64(f64::from(secs) / f64::from(self.clock.speed()));
        StepDelays {
            clone: real(self.clone_secs),
            boot: real(self.boot_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_step_times_run_at_the_clock_speed() {
        let start = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let demo = Demo {
            clock: Arc::new(ScaledClock::new(start, 60)),
            clone_secs: 30,
            boot_secs: 60,
        };
        assert_eq!(
            demo.steps(),
            StepDelays {
                clone: Duration::from_millis(500),
                boot: Duration::from_secs(1),
            }
        );
    }
}
