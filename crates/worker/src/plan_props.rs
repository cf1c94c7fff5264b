//! Properties of `plan_after_attempt` (proptest): a transient failure is retried exactly
//! when the schedule says so, never earlier than the schedule or than a provider's
//! Retry-After (whatever number it sent) and never after the message's age limit, with
//! only the transient recipients pending.

use proptest::prelude::*;
use sluice_core::{
    DeliveryReport, MessageStatus, RecipientResult, RetryDecision, RetryPolicy, Verdict,
};

use super::plan_after_attempt;

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        Just(Verdict::Delivered),
        Just(Verdict::Transient),
        Just(Verdict::Permanent)
    ]
}

fn report() -> impl Strategy<Value = DeliveryReport> {
    (
        proptest::collection::vec(verdict(), 1..5),
        proptest::option::of(prop_oneof![
            0u64..100_000,
            Just(u64::MAX),
            Just(i64::MAX as u64),
            Just(i64::MAX as u64 / 1000 + 1),
            any::<u64>(),
        ]),
    )
        .prop_map(|(verdicts, retry_after_secs)| DeliveryReport {
            provider: "p".into(),
            recipients: verdicts
                .into_iter()
                .enumerate()
                .map(|(i, verdict)| RecipientResult {
                    rcpt: format!("r{i}@x.test"),
                    verdict,
                    code: None,
                    response: "text".into(),
                })
                .collect(),
            retry_after_secs,
            ..Default::default()
        })
}

fn policy() -> impl Strategy<Value = RetryPolicy> {
    (
        0.0..1000.0f64,
        1.0..4.0f64,
        0.0..10_000.0f64,
        0.0..1e7f64,
        1u32..20,
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn transient_failures_follow_the_schedule_and_retry_after(
        report in report(),
        policy in policy(),
        attempts_before in 0u32..25,
        created_at in 0i64..4_000_000_000_000,
        waited in 0i64..100_000_000,
        sample in 0.0..1.0f64,
    ) {
        let now = created_at + waited;
        let plan = plan_after_attempt(&report, attempts_before, created_at, now, &policy, sample);
        if report.overall() != Verdict::Transient {
            prop_assert_ne!(plan.status, MessageStatus::Deferred);
            prop_assert!(plan.pending.is_empty());
            return Ok(());
        }
        match policy.next_attempt(attempts_before + 1, created_at, now, sample) {
            RetryDecision::GiveUp => {
                prop_assert_eq!(plan.status, MessageStatus::Failed);
                prop_assert!(plan.pending.is_empty());
            }
            RetryDecision::RetryAt(at) => {
                prop_assert!(attempts_before + 1 < policy.max_attempts);
                prop_assert_eq!(plan.status, MessageStatus::Deferred);
                prop_assert_eq!(plan.pending, report.transient_recipients());
                prop_assert!(plan.next_attempt_at >= at && at >= now);
                // Never past the age limit, whatever the provider asked.
                let deadline = policy.deadline(created_at);
                prop_assert!(plan.next_attempt_at <= deadline);
                if let Some(secs) = report.retry_after_secs {
                    let asked = i128::from(now) + i128::from(secs) * 1000;
                    let expected = asked.clamp(i128::from(at), i128::from(deadline));
                    prop_assert_eq!(i128::from(plan.next_attempt_at), expected);
                } else {
                    prop_assert_eq!(plan.next_attempt_at, at);
                }
            }
        }
    }
}
