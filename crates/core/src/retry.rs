//! The retry schedule: exponential backoff with jitter, bounded by attempts and age.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Delay after the first failure, in seconds.
    pub initial_delay_secs: f64,
    /// Each further delay is the previous one times this.
    pub multiplier: f64,
    /// No delay is longer than this, in seconds, jitter included.
    pub max_delay_secs: f64,
    /// Give up once a message is older than this, in seconds.
    pub max_age_secs: f64,
    /// Give up after this many attempts in all.
    pub max_attempts: u32,
    /// Spread each delay by up to ± this fraction (0.0 – 1.0).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_delay_secs: 60.0,
            multiplier: 2.0,
            max_delay_secs: 3600.0,
            max_age_secs: 5.0 * 86400.0,
            max_attempts: 30,
            jitter: 0.2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again at this unix time in milliseconds.
    RetryAt(i64),
    GiveUp,
}

impl RetryPolicy {
    /// The unix time in milliseconds after which a message queued at `queued_at_ms` is
    /// not retried (`max_age_secs` after it was queued).
    pub fn deadline(&self, queued_at_ms: i64) -> i64 {
        queued_at_ms.saturating_add((self.max_age_secs * 1000.0) as i64)
    }

    /// What to do after attempt number `attempts_made` (1 for the first) failed transiently.
    /// `jitter_sample` is a uniform sample in `[0, 1)`.
    pub fn next_attempt(
        &self,
        attempts_made: u32,
        queued_at_ms: i64,
        now_ms: i64,
        jitter_sample: f64,
    ) -> RetryDecision {
        if attempts_made >= self.max_attempts {
            return RetryDecision::GiveUp;
        }
        let exponent = attempts_made.saturating_sub(1).min(64) as i32;
        let base = (self.initial_delay_secs * self.multiplier.powi(exponent))
            .min(self.max_delay_secs)
            .max(0.0);
        let spread = self.jitter.clamp(0.0, 1.0) * (2.0 * jitter_sample.clamp(0.0, 1.0) - 1.0);
        // The cap holds after the spread too: at the cap, jitter only shortens.
        let delay = (base * (1.0 + spread)).min(self.max_delay_secs).max(0.0);
        let delay_ms = (delay * 1000.0).round() as i64;
        let at = now_ms.saturating_add(delay_ms.max(0));
        if at > self.deadline(queued_at_ms) {
            RetryDecision::GiveUp
        } else {
            RetryDecision::RetryAt(at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial_delay_secs: 10.0,
            multiplier: 2.0,
            max_delay_secs: 60.0,
            max_age_secs: 1000.0,
            max_attempts: 6,
            jitter: 0.5,
        }
    }

    #[test]
    fn backoff_table_without_jitter() {
        // A sample of 0.5 means no spread.
        let table = [
            (1, 10_000),
            (2, 20_000),
            (3, 40_000),
            (4, 60_000),
            (5, 60_000),
        ];
        for (attempt, delay) in table {
            assert_eq!(
                policy().next_attempt(attempt, 0, 100_000, 0.5),
                RetryDecision::RetryAt(100_000 + delay),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn jitter_bounds() {
        assert_eq!(
            policy().next_attempt(1, 0, 0, 0.0),
            RetryDecision::RetryAt(5_000)
        );
        assert_eq!(
            policy().next_attempt(1, 0, 0, 0.999_999),
            RetryDecision::RetryAt(15_000)
        );
    }

    #[test]
    fn jitter_never_takes_a_delay_over_the_cap() {
        // Attempt 5 is at the 60 s cap: the spread may shorten it, never lengthen it.
        // (It used to land at 90 s, the cap plus half, with jitter 0.5.)
        assert_eq!(
            policy().next_attempt(5, 0, 0, 0.999_999),
            RetryDecision::RetryAt(60_000)
        );
        assert_eq!(
            policy().next_attempt(5, 0, 0, 0.0),
            RetryDecision::RetryAt(30_000)
        );
    }

    #[test]
    fn gives_up_on_attempts_and_age() {
        assert_eq!(policy().next_attempt(6, 0, 0, 0.5), RetryDecision::GiveUp);
        // Next try would land after queued_at + max_age.
        assert_eq!(
            policy().next_attempt(1, 0, 995_000, 0.5),
            RetryDecision::GiveUp
        );
    }
}
