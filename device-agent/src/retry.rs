//! The AVS SDK's retry table (lwa-spec §5.6): 0, 1, 2, 4, 10, 30, 60 s, the last entry
//! repeating, each multiplied by a uniform jitter in [0.66, 1.5].
//!
//! Jitter matters on a fleet: a million speakers that lost LWA at the same moment must not come
//! back at the same moment. The table is data so tests can scale it down instead of sleeping.

use std::time::Duration;

use rand::Rng as _;

/// A backoff table with multiplicative jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    table: Vec<Duration>,
    jitter_low: f64,
    jitter_high: f64,
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
            jitter_low: 0.66,
            jitter_high: 1.5,
        }
    }

    /// The SDK table divided by `divisor` (tests: 1000 turns seconds into milliseconds).
    pub fn sdk_scaled_down(divisor: u32) -> Self {
        let mut p = Self::sdk();
        let divisor = divisor.max(1);
        p.table = p.table.iter().map(|d| *d / divisor).collect();
        p
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

    /// A jittered delay before retry number `attempt`.
    pub fn delay(&self, attempt: usize) -> Duration {
        let base = self.base(attempt);
        let factor = rand::thread_rng().gen_range(self.jitter_low..=self.jitter_high);
        base.mul_f64(factor)
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
}
