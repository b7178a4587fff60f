//! Recognising a burst of logins (a change point in the arrival rate), and the tail of clustered
//! arrivals.
//!
//! A burst is a count in a short window that is improbable under the rate expected from the
//! longer past: `P(N ≥ count) < BURST_P` for `N ~ Poisson(expected rate × window)`, with at
//! least `BURST_MIN_LOGINS` logins. The windows are short (30 s to 10 min), so a storm is
//! recognised within its first few logins.

/// The windows tested, shortest first (seconds).
pub(super) const BURST_WINDOWS: [i64; 3] = [30, 120, 600];
/// A count this improbable under the expected rate is a burst.
pub(super) const BURST_P: f64 = 0.001;
/// A burst has at least this many logins (a couple of logins together are not a storm).
pub(super) const BURST_MIN_LOGINS: usize = 5;
/// The expected rate is never read below one login an hour (a quiet class's first logins of
/// the day are not each a storm, but a clump of them is).
pub(super) const FLOOR_RATE: f64 = 1.0 / 3600.0;

/// `P(N ≥ k)` for `N ~ Poisson(mean)`, summed in log space; exact for the small `k` tested.
pub(super) fn poisson_tail(mean: f64, k: usize) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if mean <= 0.0 {
        return 0.0;
    }
    // P(N ≥ k) = 1 − P(N ≤ k − 1); for a tiny tail sum the upper terms instead (no cancellation).
    let ln_mean = mean.ln();
    let mut log_pmf = -mean;
    let mut below = 0.0;
    for i in 0..k {
        if i > 0 {
            log_pmf += ln_mean - (i as f64).ln();
        }
        below += log_pmf.exp();
    }
    if below < 0.5 {
        return (1.0 - below).max(0.0);
    }
    // log_pmf is now ln P(N = k − 1); sum P(N = k), P(N = k + 1), ... until negligible.
    let mut tail = 0.0;
    let mut i = k;
    loop {
        log_pmf += ln_mean - (i as f64).ln();
        let term = log_pmf.exp();
        tail += term;
        if term < tail * 1e-12 || i > k + 10_000 {
            break;
        }
        i += 1;
    }
    tail
}

/// Whether `count` logins in a window where `expected` were expected is a burst.
pub(super) fn is_burst(count: usize, expected: f64) -> bool {
    count >= BURST_MIN_LOGINS && poisson_tail(expected, count) < BURST_P
}

/// The smallest `k` with `P(N ≤ k) ≥ p` for `N` negative binomial with `mean` and variance
/// `dispersion × mean` (`dispersion` > 1), or Poisson for `dispersion` ≤ 1.
pub(super) fn clustered_quantile(mean: f64, dispersion: f64, p: f64) -> u32 {
    if mean.is_nan() || mean <= 0.0 || !mean.is_finite() {
        return 0;
    }
    if dispersion <= 1.0 + 1e-9 {
        return crate::plan::poisson_quantile(mean, p);
    }
    // r successes, success probability q: mean r(1 − q)/q, variance mean / q.
    let q = 1.0 / dispersion;
    let r = mean * q / (1.0 - q);
    let limit = mean + 60.0 * (dispersion * mean).sqrt() + 100.0;
    let mut pmf = q.powf(r);
    let mut cdf = pmf;
    let mut k = 0u32;
    while cdf < p && f64::from(k) < limit {
        k += 1;
        pmf *= (f64::from(k) - 1.0 + r) / f64::from(k) * (1.0 - q);
        cdf += pmf;
    }
    k
}

/// The Poisson mean whose quantile at `p` is at least `quantile` (so a planner sizing its spare
/// as a Poisson quantile holds the clustered one), at least `mean`.
pub(super) fn poisson_equivalent(mean: f64, quantile: u32, p: f64) -> f64 {
    let covers = |m: f64| crate::plan::poisson_quantile(m, p) >= quantile;
    if covers(mean) {
        return mean;
    }
    let (mut lo, mut hi) = (mean, f64::from(quantile) + 1.0);
    while !covers(hi) {
        hi *= 2.0;
    }
    for _ in 0..14 {
        let mid = (lo + hi) / 2.0;
        if covers(mid) { hi = mid } else { lo = mid }
    }
    hi
}
