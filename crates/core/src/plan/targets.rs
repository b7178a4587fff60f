//! The spare a buffer keeps: rule based, or predictive from a login forecast.

use jiff::SignedDuration;

use super::PlanInput;
use crate::policy::{BufferRule, ClassSpec, InForce};

/// What a class is asked to hold this pass.
pub(super) struct Targets {
    pub(super) production_target: u32,
    pub(super) buffer_target: u32,
    /// Index of the period in force (looked ahead), if any.
    pub(super) period: Option<usize>,
}

/// Production and buffer targets of `class` with `production` desktops assigned: the period in
/// force now or `ready_secs` ahead (whichever asks more), an admin floor raise, the class cap.
pub(super) fn class_targets(input: &PlanInput<'_>, class: &ClassSpec, production: u32) -> Targets {
    let policy = &class.policy;
    let now = input.now;
    let lead = crate::timings::lead_secs(
        policy.ready_secs,
        input.measured_ready.get(&class.name).copied(),
    );
    let ahead = now + SignedDuration::from_secs(lead as i64);
    let now_period = policy.in_force_at(now, &input.fleet.engine);
    let ahead_period = policy.in_force_at(ahead, &input.fleet.engine);
    let expected_of = |p: InForce| p.production;
    let rule_of = |p: InForce| p.buffer;
    let expected = expected_of(now_period).max(expected_of(ahead_period));
    let spare_rule = pick_larger(rule_of(now_period), rule_of(ahead_period), production);
    let mut spare = match policy.predictive {
        None => spare_rule.spare_for(production),
        Some(predictive) => {
            let (a, b) = (rule_of(now_period), rule_of(ahead_period));
            let expected = input.forecasts.get(&class.name).copied().unwrap_or(0.0);
            predictive_spare(expected, predictive.service_level)
                .max(a.floor.max(b.floor))
                .min(a.ceiling.max(b.ceiling))
        }
    };
    if let Some((floor, until)) = input.busy.floor_raises.get(&class.name)
        && *until > now
    {
        spare = spare.max(*floor);
    }
    let production_target = expected.max(production);
    let room_under_cap = policy.cap.saturating_sub(production);
    Targets {
        production_target,
        buffer_target: (production_target - production + spare).min(room_under_cap),
        period: ahead_period.period().or(now_period.period()),
    }
}

/// The spare of a predictive buffer: with `expected` logins forecast during the time a new
/// desktop takes to become ready, the desktops to keep (ready or in creation) so that a share
/// `service_level` of logins finds one ready.
///
/// Each login takes a ready desktop and the planner orders its replacement at once, so ready +
/// in creation stays at the target S, and a login finds a ready desktop exactly when fewer than
/// S logins came during the last `ready_secs` (those are the desktops still in creation). With
/// Poisson arrivals of mean `expected` (and Poisson arrivals see time averages), the share served
/// at once is P(N ≤ S − 1); the smallest S reaching `service_level` is the Poisson quantile at
/// `service_level` plus one: the desktop for the login at hand, plus the quantile of logins
/// while its replacement is made. At `expected` = 0 this is 1.
pub fn predictive_spare(expected: f64, service_level: f64) -> u32 {
    poisson_quantile(expected, service_level).saturating_add(1)
}

/// The smallest k with P(N ≤ k) ≥ `p` for N ~ Poisson(`mean`). Terms are summed in log space
/// (no underflow for large means); bounded at mean + 40·√mean + 50.
pub fn poisson_quantile(mean: f64, p: f64) -> u32 {
    if mean.is_nan() || mean <= 0.0 || !mean.is_finite() {
        return 0;
    }
    let limit = mean + 40.0 * mean.sqrt() + 50.0;
    let ln_mean = mean.ln();
    let mut log_pmf = -mean;
    let mut cdf = log_pmf.exp();
    let mut k = 0u32;
    while cdf < p && f64::from(k) < limit {
        k += 1;
        log_pmf += ln_mean - f64::from(k).ln();
        cdf += log_pmf.exp();
    }
    k
}

/// The larger (by spare desktops for the current production) of two buffer rules.
pub(super) fn pick_larger(a: BufferRule, b: BufferRule, production: u32) -> BufferRule {
    if b.spare_for(production) > a.spare_for(production) {
        b
    } else {
        a
    }
}
