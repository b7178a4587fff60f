//! The retry delays of the engine's failing steps (and of the simulator's given-up desktops):
//! exponential, within the configured bounds.

/// The configured retry delays: the first, and the ceiling.
#[derive(Debug, Clone, Copy)]
pub struct RetryBounds {
    pub base_secs: u64,
    pub max_secs: u64,
}

impl RetryBounds {
    /// The bounds `[engine]` sets (`retry_base_secs`, `retry_max_secs`).
    pub fn of(engine: &crate::policy::EngineSettings) -> RetryBounds {
        RetryBounds {
            base_secs: engine.retry_base_secs,
            max_secs: engine.retry_max_secs,
        }
    }

    /// The delay after `failures` failures in a row: base, doubled for each more, up to max.
    pub fn delay_secs(self, failures: u32) -> u64 {
        let exp = failures.saturating_sub(1).min(20);
        self.base_secs
            .max(1)
            .saturating_mul(1 << exp)
            .min(self.max_secs.max(1))
    }
}
