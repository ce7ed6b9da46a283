//! Where the refresher is in a token's life, as one value.
//!
//! The refresher used to spread this over an `Option<Instant>` for the next try, an attempt
//! counter, a "forced" generation and a "halted" generation (both with `u64::MAX` meaning none),
//! and re-derived its position on every turn of a deep loop. Here the position is one enum and
//! every move is a small pure function, tested below without sleeping, a network or a runtime.
//!
//! ```text
//! Unpaired ──install (verified)──────────────► Fresh{refresh_at}
//! Unpaired ──install (unverified) / load──────► Due{0}
//! Fresh ──refresh_at reached / auth_failure───► Due{0}
//! Due{n} ──request answered: ok───────────────► Fresh{expiry − head start}
//! Due{n} ──retryable failure (5xx, timeout)───► Backoff{n + 1, now + jittered table[n]}
//! Backoff{n, until} ──until reached───────────► Due{n}
//! Due{n} ──invalid_grant──────────────────────► Unpaired (store cleared)
//! Due{n} ──other fatal error──────────────────► Halted
//! any ──clear─────────────────────────────────► Unpaired;   any ──install──► as from Unpaired
//! ```
//!
//! Token expiry is not a phase: a token can run out in `Due` or `Backoff` (an outage longer than
//! its life), and the refresher withdraws it then whatever the phase.

use std::time::Duration;

use tokio::time::Instant;

/// The refresher's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No account: nothing to refresh until one is installed.
    Unpaired,
    /// The access token is good; the next refresh is at `refresh_at`.
    Fresh {
        /// Expiry minus the head start.
        refresh_at: Instant,
    },
    /// A refresh is due now; the request is sent (one at a time) and its answer awaited.
    /// `attempt` failed tries precede it.
    Due {
        /// Failed tries in a row before this one (picks the retry table entry on failure).
        attempt: usize,
    },
    /// The last try failed with a retryable error; the next is at `until`.
    Backoff {
        /// Failed tries in a row.
        attempt: usize,
        /// When to try again (the jittered table entry after the failure).
        until: Instant,
    },
    /// LWA refused the account for good (other than `invalid_grant`): nothing is sent until a
    /// new account is installed or the account is cleared.
    Halted,
}

impl Phase {
    /// The phase after a successful refresh (or a verified install): fresh until
    /// `head_start` before `expires_at` (at once when the token is shorter than the head start).
    pub(crate) fn fresh(expires_at: Instant, head_start: Duration, now: Instant) -> Self {
        Phase::Fresh {
            refresh_at: expires_at.checked_sub(head_start).unwrap_or(now),
        }
    }

    /// When this phase moves on by itself, if it does.
    pub(crate) fn deadline(self) -> Option<Instant> {
        match self {
            Phase::Fresh { refresh_at } => Some(refresh_at),
            Phase::Backoff { until, .. } => Some(until),
            Phase::Unpaired | Phase::Due { .. } | Phase::Halted => None,
        }
    }

    /// The phase once `now` has passed its deadline (unchanged before it).
    pub(crate) fn on_time(self, now: Instant) -> Self {
        match self {
            Phase::Fresh { refresh_at } if now >= refresh_at => Phase::Due { attempt: 0 },
            Phase::Backoff { attempt, until } if now >= until => Phase::Due { attempt },
            other => other,
        }
    }

    /// AVS refused the current token: refresh now if nothing is under way. A retry already
    /// scheduled keeps its place in the table (hammering a failing LWA helps nobody), and a
    /// request in flight will bring the new token anyway: single flight.
    pub(crate) fn on_auth_failure(self) -> Self {
        match self {
            Phase::Fresh { .. } => Phase::Due { attempt: 0 },
            other => other,
        }
    }

    /// The phase after a retryable failure of the try `attempt`, to retry after `delay`.
    pub(crate) fn after_retryable(attempt: usize, delay: Duration, now: Instant) -> Self {
        Phase::Backoff {
            attempt: attempt.saturating_add(1),
            until: now + delay,
        }
    }

    /// The try a request should be sent for now, if any.
    pub(crate) fn due(self) -> Option<usize> {
        match self {
            Phase::Due { attempt } => Some(attempt),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn fresh_refreshes_at_the_head_start_or_at_once() {
        let now = Instant::now();
        let p = Phase::fresh(now + 3600 * S, 600 * S, now);
        assert_eq!(p.deadline(), Some(now + 3000 * S));
        assert_eq!(p.on_time(now + 2999 * S), p);
        assert_eq!(p.on_time(now + 3000 * S), Phase::Due { attempt: 0 });
        // A head start longer than the token's whole life (never before `now`).
        let p = Phase::fresh(now + S, 600 * S, now);
        assert!(p.deadline().is_some_and(|d| d <= now + S));
    }

    #[test]
    fn backoff_counts_attempts_and_returns_to_due_at_its_time() {
        let now = Instant::now();
        let p = Phase::after_retryable(0, 2 * S, now);
        assert_eq!(
            p,
            Phase::Backoff {
                attempt: 1,
                until: now + 2 * S
            }
        );
        assert_eq!(p.due(), None);
        assert_eq!(p.on_time(now + S), p);
        let due = p.on_time(now + 2 * S);
        assert_eq!(due, Phase::Due { attempt: 1 });
        assert_eq!(due.due(), Some(1));
        assert_eq!(
            due.deadline(),
            None,
            "a due phase waits for its reply, not a clock"
        );
        assert_eq!(
            Phase::after_retryable(usize::MAX, S, now),
            Phase::Backoff {
                attempt: usize::MAX,
                until: now + S
            }
        );
    }

    #[test]
    fn an_auth_failure_forces_a_refresh_only_from_fresh() {
        let now = Instant::now();
        let fresh = Phase::fresh(now + 3600 * S, 600 * S, now);
        assert_eq!(fresh.on_auth_failure(), Phase::Due { attempt: 0 });
        for p in [
            Phase::Unpaired,
            Phase::Due { attempt: 3 },
            Phase::Backoff {
                attempt: 2,
                until: now + S,
            },
            Phase::Halted,
        ] {
            assert_eq!(p.on_auth_failure(), p, "{p:?}");
        }
    }

    #[test]
    fn unpaired_and_halted_never_wake_by_themselves() {
        let later = Instant::now() + 1_000_000 * S;
        for p in [Phase::Unpaired, Phase::Halted] {
            assert_eq!(p.deadline(), None);
            assert_eq!(p.on_time(later), p);
            assert_eq!(p.due(), None);
        }
    }
}
