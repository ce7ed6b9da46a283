//! The AVS SDK's retry table (lwa-spec §5.6): 0, 1, 2, 4, 10, 30, 60 s, the last entry
//! repeating, each multiplied by a uniform jitter in [0.66, 1.5].
//!
//! Jitter matters on a fleet: a million speakers that lost LWA at the same moment must not come
//! back at the same moment. The table is data so tests can scale it down instead of sleeping, and
//! the random source is injectable ([`RetryPolicy::with_seed`], [`RetryPolicy::delay_with`]) so a
//! test can draw thousands of delays reproducibly and check their spread.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng as _};

/// Lower end of the SDK's multiplicative jitter.
pub const JITTER_LOW: f64 = 0.66;
/// Upper end of the SDK's multiplicative jitter.
pub const JITTER_HIGH: f64 = 1.5;

/// A backoff table with multiplicative jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    table: Vec<Duration>,
    jitter_low: f64,
    jitter_high: f64,
    /// Seed for the jitter of a delegate's refresher (`None`: from the OS). Tests only.
    seed: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::sdk()
    }
}

impl RetryPolicy {
    /// The SDK's table.
    pub fn sdk() -> Self {
        Self::from_millis(&[0, 1_000, 2_000, 4_000, 10_000, 30_000, 60_000])
    }

    /// A table in milliseconds with the SDK's jitter. An empty table means "retry at once".
    pub fn from_millis(table: &[u64]) -> Self {
        Self {
            table: table.iter().map(|ms| Duration::from_millis(*ms)).collect(),
            jitter_low: JITTER_LOW,
            jitter_high: JITTER_HIGH,
            seed: None,
        }
    }

    /// The SDK table divided by `divisor` (tests: 1000 turns seconds into milliseconds).
    pub fn sdk_scaled_down(divisor: u32) -> Self {
        let mut p = Self::sdk();
        let divisor = divisor.max(1);
        p.table = p.table.iter().map(|d| *d / divisor).collect();
        p
    }

    /// The same policy whose [`RetryPolicy::rng`] is seeded: the delays become reproducible.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// A random source for [`RetryPolicy::delay_with`]: seeded when the policy is, else from
    /// the OS.
    pub fn rng(&self) -> StdRng {
        match self.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        }
    }

    /// The un-jittered delay before retry number `attempt` (0 = the first retry).
    pub fn base(&self, attempt: usize) -> Duration {
        self.table
            .get(attempt)
            .or_else(|| self.table.last())
            .copied()
            .unwrap_or(Duration::ZERO)
    }

    /// The smallest and largest delay [`RetryPolicy::delay`] may return for `attempt`.
    pub fn bounds(&self, attempt: usize) -> (Duration, Duration) {
        let base = self.base(attempt);
        (
            base.mul_f64(self.jitter_low),
            base.mul_f64(self.jitter_high),
        )
    }

    /// A jittered delay before retry number `attempt`, from the thread's random source.
    pub fn delay(&self, attempt: usize) -> Duration {
        self.delay_with(attempt, &mut rand::thread_rng())
    }

    /// A jittered delay before retry number `attempt`, drawing the factor from `rng`.
    pub fn delay_with(&self, attempt: usize, rng: &mut impl Rng) -> Duration {
        let factor = rng.gen_range(self.jitter_low..=self.jitter_high);
        self.base(attempt).mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_table_and_jitter_bounds() {
        let p = RetryPolicy::sdk();
        let secs: Vec<u64> = (0..9).map(|i| p.base(i).as_secs()).collect();
        assert_eq!(secs, [0, 1, 2, 4, 10, 30, 60, 60, 60]);
        for attempt in 0..9 {
            let (lo, hi) = p.bounds(attempt);
            for _ in 0..200 {
                let d = p.delay(attempt);
                assert!(d >= lo && d <= hi, "{d:?} outside {lo:?}..{hi:?}");
            }
        }
        assert_eq!(
            p.bounds(3),
            (Duration::from_millis(2640), Duration::from_secs(6))
        );
        assert_eq!(
            RetryPolicy::sdk_scaled_down(1000).base(6),
            Duration::from_millis(60)
        );
    }

    /// The jitter factors of `n` delays for `attempt` (delay ÷ table value).
    fn factors(p: &RetryPolicy, attempt: usize, n: usize, rng: &mut impl Rng) -> Vec<f64> {
        let base = p.base(attempt).as_secs_f64();
        (0..n)
            .map(|_| p.delay_with(attempt, rng).as_secs_f64() / base)
            .collect()
    }

    /// The factors cover [0.66, 1.5] uniformly: each of 12 equal bins holds its share (1/12 of
    /// 12,000 = 1,000, ±25 %), the extremes come within 1 % of the ends, the mean is 1.08. A
    /// fixed factor puts all 12,000 in one bin; the chance that a correct uniform draw misses
    /// a bin by 25 % is below 1e-14 per bin (Chernoff), so the test is stable for any seed.
    #[test]
    fn jitter_spreads_uniformly_over_the_whole_range() {
        for seed in [1u64, 2, 3] {
            let p = RetryPolicy::sdk().with_seed(seed);
            let mut rng = p.rng();
            for attempt in [1usize, 4, 6] {
                let f = factors(&p, attempt, 12_000, &mut rng);
                let (min, max) = f
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
                assert!(min >= JITTER_LOW - 1e-9 && max <= JITTER_HIGH + 1e-9);
                assert!(
                    min < JITTER_LOW + 0.01,
                    "seed {seed} attempt {attempt}: min {min}"
                );
                assert!(
                    max > JITTER_HIGH - 0.01,
                    "seed {seed} attempt {attempt}: max {max}"
                );
                let mean = f.iter().sum::<f64>() / f.len() as f64;
                assert!((mean - 1.08).abs() < 0.01, "mean {mean}");
                let width = (JITTER_HIGH - JITTER_LOW) / 12.0;
                let mut bins = [0usize; 12];
                for x in &f {
                    let i = (((x - JITTER_LOW) / width) as usize).min(11);
                    bins[i] += 1;
                }
                assert!(
                    bins.iter().all(|b| (750..=1250).contains(b)),
                    "seed {seed} attempt {attempt}: bins {bins:?}"
                );
            }
        }
    }

    /// The delays of `attempts`, drawn from a new source of `policy`'s.
    fn draws(policy: &RetryPolicy, attempts: std::ops::Range<usize>) -> Vec<Duration> {
        let mut r = policy.rng();
        attempts.map(|i| policy.delay_with(i, &mut r)).collect()
    }

    #[test]
    fn a_seeded_policy_repeats_its_delays_and_an_unseeded_one_does_not() {
        let p = RetryPolicy::sdk().with_seed(42);
        assert_eq!(draws(&p, 0..20), draws(&p, 0..20));
        let q = RetryPolicy::sdk();
        assert_ne!(
            draws(&q, 1..20),
            draws(&q, 1..20),
            "two OS-seeded sources drew the same 19 delays"
        );
    }
}
