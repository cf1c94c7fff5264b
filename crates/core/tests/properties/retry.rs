//! `RetryPolicy::next_attempt`: the delay before jitter grows (by `multiplier`) up to the
//! cap and stays there, jitter spreads it by at most ± `jitter` but never over the cap, and
//! the schedule gives up at `max_attempts` and at `max_age_secs`. Time and the jitter
//! sample are arguments.

use proptest::prelude::*;
use sluice_core::{RetryDecision, RetryPolicy};

/// Policies as the config allows them (`Config::validate`: initial ≥ 0, multiplier ≥ 1,
/// at least one attempt); jitter in its documented 0.0 – 1.0.
fn policy() -> impl Strategy<Value = RetryPolicy> {
    (
        0.0..100_000.0f64,
        1.0..10.0f64,
        0.0..1_000_000.0f64,
        0.0..1e9f64,
        1u32..100,
        0.0..=1.0f64,
    )
        .prop_map(
            |(
                initial_delay_secs,
                multiplier,
                max_delay_secs,
                max_age_secs,
                max_attempts,
                jitter,
            )| {
                RetryPolicy {
                    initial_delay_secs,
                    multiplier,
                    max_delay_secs,
                    max_age_secs,
                    max_attempts,
                    jitter,
                }
            },
        )
}

/// The delay in ms, with an age limit far away so that only the schedule speaks.
fn delay_ms(policy: &RetryPolicy, attempt: u32, now: i64, sample: f64) -> Option<i64> {
    let policy = RetryPolicy {
        max_age_secs: 1e15,
        ..policy.clone()
    };
    match policy.next_attempt(attempt, now, now, sample) {
        RetryDecision::RetryAt(at) => Some(at - now),
        RetryDecision::GiveUp => None,
    }
}

/// The delay before jitter the schedule documents: initial × multiplier^(n-1), capped.
fn base_ms(policy: &RetryPolicy, attempt: u32) -> f64 {
    let exponent = attempt.saturating_sub(1).min(64) as i32;
    (policy.initial_delay_secs * policy.multiplier.powi(exponent)).min(policy.max_delay_secs)
        * 1000.0
}

proptest! {
    #![proptest_config(crate::config())]

    /// Without spread (sample 0.5) delays never shrink from one attempt to the next, and
    /// never pass the cap.
    #[test]
    fn delays_grow_to_the_cap_and_stay_under_it(
        policy in policy(),
        now in -1_000_000_000_000i64..4_000_000_000_000,
    ) {
        let mut previous = 0;
        for attempt in 1..policy.max_attempts {
            let delay = delay_ms(&policy, attempt, now, 0.5).expect("under the attempt limit");
            prop_assert!(delay >= previous, "attempt {attempt}: {delay} < {previous}");
            prop_assert!(
                delay as f64 <= policy.max_delay_secs * 1000.0 + 0.5,
                "attempt {attempt}: {delay} ms over the cap"
            );
            previous = delay;
        }
    }

    /// Any sample in [0, 1) spreads the delay by at most ± jitter around the schedule's
    /// delay, never below zero and never over the cap.
    #[test]
    fn jitter_stays_within_its_bounds(
        policy in policy(),
        attempt in 1u32..100,
        sample in 0.0..1.0f64,
        now in -1_000_000_000_000i64..4_000_000_000_000,
    ) {
        prop_assume!(attempt < policy.max_attempts);
        let delay = delay_ms(&policy, attempt, now, sample).expect("under the attempt limit");
        let base = base_ms(&policy, attempt);
        let cap = policy.max_delay_secs * 1000.0;
        let low = (base * (1.0 - policy.jitter)).floor() - 1.0;
        let high = (base * (1.0 + policy.jitter)).min(cap).ceil() + 1.0;
        prop_assert!(delay >= 0);
        // The cap holds whatever the spread.
        prop_assert!(delay as f64 <= cap + 0.5, "delay {delay} over the cap {cap}");
        prop_assert!(
            (delay as f64) >= low && (delay as f64) <= high,
            "delay {delay} outside [{low}, {high}] (base {base})"
        );
        // The same inputs, the same answer: no clock, no hidden randomness.
        prop_assert_eq!(delay_ms(&policy, attempt, now, sample), Some(delay));
    }

    /// A larger sample never gives a shorter delay.
    #[test]
    fn the_delay_grows_with_the_sample(
        policy in policy(),
        attempt in 1u32..100,
        a in 0.0..1.0f64,
        b in 0.0..1.0f64,
    ) {
        prop_assume!(attempt < policy.max_attempts);
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(delay_ms(&policy, attempt, 0, low) <= delay_ms(&policy, attempt, 0, high));
    }

    /// Attempt `max_attempts` (and any later) gives up whatever the time; before that, the
    /// retry is scheduled exactly when it lands no later than queued_at + max_age.
    #[test]
    fn the_give_up_point_is_honoured(
        policy in policy(),
        attempt in 1u32..120,
        queued_at in -1_000_000_000_000i64..4_000_000_000_000,
        waited in 0i64..2_000_000_000_000,
        sample in 0.0..1.0f64,
    ) {
        let now = queued_at + waited;
        let decision = policy.next_attempt(attempt, queued_at, now, sample);
        if attempt >= policy.max_attempts {
            prop_assert_eq!(decision, RetryDecision::GiveUp);
        } else {
            let deadline = queued_at + (policy.max_age_secs * 1000.0) as i64;
            prop_assert_eq!(policy.deadline(queued_at), deadline);
            let delay = delay_ms(&policy, attempt, now, sample).unwrap();
            match decision {
                RetryDecision::RetryAt(at) => {
                    prop_assert_eq!(at, now + delay);
                    prop_assert!(at >= now && at <= deadline, "{at} outside [{now}, {deadline}]");
                }
                RetryDecision::GiveUp => prop_assert!(now + delay > deadline),
            }
        }
    }

    /// At the edge of the age limit, to the millisecond: a retry that lands on the deadline
    /// is scheduled, one that lands a millisecond after it is not.
    #[test]
    fn the_age_limit_holds_to_the_millisecond(
        policy in policy(),
        attempt in 1u32..100,
        queued_at in -1_000_000_000_000i64..4_000_000_000_000,
        jiggle in -3i64..=3,
        sample in 0.0..1.0f64,
    ) {
        prop_assume!(attempt < policy.max_attempts);
        let delay = delay_ms(&policy, attempt, 0, sample).unwrap();
        let deadline = policy.deadline(queued_at);
        let now = deadline - delay + jiggle;
        let decision = policy.next_attempt(attempt, queued_at, now, sample);
        if jiggle <= 0 {
            prop_assert_eq!(decision, RetryDecision::RetryAt(now + delay));
        } else {
            prop_assert_eq!(decision, RetryDecision::GiveUp);
        }
    }

    /// Out-of-range inputs (a sample outside [0, 1), extreme times, jitter over 1, a huge
    /// attempt number) never panic and never schedule into the past.
    #[test]
    fn odd_inputs_never_panic_or_go_back_in_time(
        policy in policy(),
        jitter in -10.0..10.0f64,
        attempt in any::<u32>(),
        queued_at in any::<i64>(),
        now in any::<i64>(),
        sample in prop_oneof![any::<f64>(), -2.0..3.0f64],
    ) {
        let policy = RetryPolicy { jitter, ..policy };
        if let RetryDecision::RetryAt(at) = policy.next_attempt(attempt, queued_at, now, sample) {
            prop_assert!(at >= now);
        }
    }
}
