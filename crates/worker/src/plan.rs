//! What a delivery report means for the message: its next status, recipients still
//! pending, when to try again, and the events to record. Pure: time and jitter are inputs.

use sluice_core::{DeliveryReport, MessageId, MessageStatus, RetryDecision, RetryPolicy, Verdict};
use sluice_store::AttemptRecord;

#[derive(Debug, Clone, PartialEq)]
pub struct AttemptPlan {
    pub status: MessageStatus,
    pub pending: Vec<String>,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub events: Vec<(String, String)>,
}

impl AttemptPlan {
    /// The row to store for this attempt.
    pub fn into_record(
        self,
        message_id: MessageId,
        lease_owner: &str,
        report: DeliveryReport,
        calls: Vec<sluice_store::ProviderAttempt>,
        started_at: i64,
        finished_at: i64,
    ) -> AttemptRecord {
        AttemptRecord {
            message_id,
            lease_owner: lease_owner.to_string(),
            report,
            calls,
            started_at,
            finished_at,
            new_status: self.status,
            pending_rcpt: self.pending,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            events: self.events,
        }
    }
}

fn describe(report: &DeliveryReport, verdict: Verdict) -> String {
    report
        .recipients
        .iter()
        .find(|r| r.verdict == verdict)
        .map(describe_one)
        .unwrap_or_default()
}

/// The retry policy for one message: the sender may ask for fewer attempts, never more.
pub fn message_policy(policy: &RetryPolicy, max_attempts: Option<u32>) -> RetryPolicy {
    let mut policy = policy.clone();
    if let Some(limit) = max_attempts {
        policy.max_attempts = policy.max_attempts.min(limit.max(1));
    }
    policy
}

/// After attempt number `attempts_before + 1` of a queued message.
pub fn plan_after_attempt(
    report: &DeliveryReport,
    attempts_before: u32,
    created_at: i64,
    now: i64,
    policy: &RetryPolicy,
    jitter_sample: f64,
) -> AttemptPlan {
    let provider = &report.provider;
    let mut events = report.events.clone();
    // Per-recipient failures are worth an event of their own only when others fared better.
    let mixed = report.overall() != Verdict::Permanent;
    for failed in report
        .recipients
        .iter()
        .filter(|r| mixed && r.verdict == Verdict::Permanent)
    {
        events.push((
            "recipient_failed".to_string(),
            format!("{}: {}", failed.rcpt, describe_one(failed)),
        ));
    }
    let done =
        |status: MessageStatus, events: Vec<(String, String)>, error: Option<String>| AttemptPlan {
            status,
            pending: Vec::new(),
            next_attempt_at: now,
            last_error: error,
            events,
        };
    if report.captured {
        events.push(("captured".into(), format!("provider={provider}")));
        return done(MessageStatus::Captured, events, None);
    }
    match report.overall() {
        Verdict::Delivered => {
            events.push((
                "delivered".into(),
                format!(
                    "provider={provider} {}",
                    describe(report, Verdict::Delivered)
                )
                .trim_end()
                .to_string(),
            ));
            let error = report
                .first_failure()
                .map(|_| describe(report, Verdict::Permanent));
            done(MessageStatus::Delivered, events, error)
        }
        Verdict::Permanent => {
            let error = describe(report, Verdict::Permanent);
            events.push(("failed".into(), error.clone()));
            done(MessageStatus::Failed, events, Some(error))
        }
        Verdict::Transient => {
            let error = describe(report, Verdict::Transient);
            if report
                .recipients
                .iter()
                .any(|r| r.verdict == Verdict::Delivered)
            {
                events.push(("partially_delivered".into(), format!("provider={provider}")));
            }
            match policy.next_attempt(attempts_before + 1, created_at, now, jitter_sample) {
                RetryDecision::RetryAt(at) => {
                    // The provider may ask for a longer wait than the schedule's, but not
                    // past the message's age limit (any number it sends, u64::MAX too).
                    let asked = report.retry_after_secs.map_or(at, |secs| {
                        let ms = i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000);
                        now.saturating_add(ms)
                    });
                    let at = asked.clamp(at, policy.deadline(created_at).max(at));
                    events.push(("deferred".into(), error.clone()));
                    AttemptPlan {
                        status: MessageStatus::Deferred,
                        pending: report.transient_recipients(),
                        next_attempt_at: at,
                        last_error: Some(error),
                        events,
                    }
                }
                RetryDecision::GiveUp => {
                    let error = format!("retry limit reached: {error}");
                    events.push(("failed".into(), error.clone()));
                    done(MessageStatus::Failed, events, Some(error))
                }
            }
        }
    }
}

fn describe_one(r: &sluice_core::RecipientResult) -> String {
    match r.code {
        Some(code) => format!("{code} {}", r.response),
        None => r.response.clone(),
    }
}

/// In sync mode the client hears the verdict. When nothing was delivered and the failure
/// is transient, the client was told 451 and will send again, so Sluice must not retry too.
pub fn plan_after_sync_attempt(
    report: &DeliveryReport,
    created_at: i64,
    now: i64,
    policy: &RetryPolicy,
    jitter_sample: f64,
) -> AttemptPlan {
    let nothing_delivered = !report
        .recipients
        .iter()
        .any(|r| r.verdict == Verdict::Delivered);
    if report.overall() == Verdict::Transient && nothing_delivered {
        let error = describe(report, Verdict::Transient);
        return AttemptPlan {
            status: MessageStatus::Failed,
            pending: Vec::new(),
            next_attempt_at: now,
            last_error: Some(error.clone()),
            events: vec![(
                "failed".into(),
                format!("sync mode, returned to client: {error}"),
            )],
        };
    }
    plan_after_attempt(report, 0, created_at, now, policy, jitter_sample)
}

#[cfg(test)]
#[path = "plan_props.rs"]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::RecipientResult;

    fn report(results: &[(Verdict, u16)]) -> DeliveryReport {
        DeliveryReport {
            provider: "smtp".into(),
            recipients: results
                .iter()
                .enumerate()
                .map(|(i, (verdict, code))| RecipientResult {
                    rcpt: format!("r{i}@x.test"),
                    verdict: *verdict,
                    code: Some(*code),
                    response: "text".into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial_delay_secs: 10.0,
            multiplier: 2.0,
            max_delay_secs: 100.0,
            max_age_secs: 1000.0,
            max_attempts: 3,
            jitter: 0.0,
        }
    }

    fn kinds(plan: &AttemptPlan) -> Vec<&str> {
        plan.events.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn async_plans() {
        use Verdict::*;
        let p = plan_after_attempt(&report(&[(Delivered, 250)]), 0, 0, 5, &policy(), 0.5);
        assert_eq!(
            (p.status, kinds(&p)),
            (MessageStatus::Delivered, vec!["delivered"])
        );

        let p = plan_after_attempt(
            &report(&[(Transient, 451), (Delivered, 250)]),
            0,
            0,
            5,
            &policy(),
            0.5,
        );
        assert_eq!(p.status, MessageStatus::Deferred);
        assert_eq!(p.pending, vec!["r0@x.test"]);
        assert_eq!(p.next_attempt_at, 10_005);
        assert_eq!(kinds(&p), vec!["partially_delivered", "deferred"]);
        assert_eq!(p.last_error.as_deref(), Some("451 text"));

        let p = plan_after_attempt(&report(&[(Transient, 451)]), 2, 0, 5, &policy(), 0.5);
        assert_eq!(
            (p.status, kinds(&p)),
            (MessageStatus::Failed, vec!["failed"])
        );
        assert!(p.last_error.unwrap().starts_with("retry limit reached"));

        let p = plan_after_attempt(
            &report(&[(Permanent, 550), (Delivered, 250)]),
            0,
            0,
            5,
            &policy(),
            0.5,
        );
        assert_eq!(
            (p.status, kinds(&p)),
            (
                MessageStatus::Delivered,
                vec!["recipient_failed", "delivered"]
            )
        );

        let p = plan_after_attempt(&report(&[(Permanent, 550)]), 0, 0, 5, &policy(), 0.5);
        assert_eq!(p.status, MessageStatus::Failed);
        assert!(p.pending.is_empty());

        let mut captured = report(&[(Delivered, 250)]);
        captured.captured = true;
        let p = plan_after_attempt(&captured, 0, 0, 5, &policy(), 0.5);
        assert_eq!(
            (p.status, kinds(&p)),
            (MessageStatus::Captured, vec!["captured"])
        );
    }

    #[test]
    fn a_huge_retry_after_waits_until_the_age_limit_not_less() {
        use Verdict::*;
        // Retry-After: 18446744073709551615 used to wrap to -1 s (retried at once); one
        // over i64::MAX / 1000 overflowed the multiplication (a panic in debug builds).
        for secs in [u64::MAX, i64::MAX as u64 / 1000 + 1, 10_000] {
            let mut asked = report(&[(Transient, 429)]);
            asked.retry_after_secs = Some(secs);
            let p = plan_after_attempt(&asked, 0, 0, 5, &policy(), 0.5);
            assert_eq!(p.status, MessageStatus::Deferred, "{secs}");
            // The age limit (1000 s after creation at 0) bounds the provider's wait.
            assert_eq!(p.next_attempt_at, 1_000_000, "{secs}");
        }
        // A wait inside the age limit is kept.
        let mut asked = report(&[(Transient, 429)]);
        asked.retry_after_secs = Some(300);
        let p = plan_after_attempt(&asked, 0, 0, 5, &policy(), 0.5);
        assert_eq!(p.next_attempt_at, 300_005);
    }

    #[test]
    fn a_message_may_lower_its_attempt_limit() {
        use Verdict::*;
        let one = message_policy(&policy(), Some(1));
        let p = plan_after_attempt(&report(&[(Transient, 451)]), 0, 0, 5, &one, 0.5);
        assert_eq!(p.status, MessageStatus::Failed);
        assert_eq!(message_policy(&policy(), Some(99)).max_attempts, 3);
        assert_eq!(message_policy(&policy(), None).max_attempts, 3);
    }

    #[test]
    fn sync_transient_is_handed_back_to_the_client() {
        use Verdict::*;
        let p = plan_after_sync_attempt(&report(&[(Transient, 451)]), 0, 5, &policy(), 0.5);
        assert_eq!(p.status, MessageStatus::Failed);
        // Partly delivered: the client hears 250, Sluice retries the rest.
        let p = plan_after_sync_attempt(
            &report(&[(Transient, 451), (Delivered, 250)]),
            0,
            5,
            &policy(),
            0.5,
        );
        assert_eq!(p.status, MessageStatus::Deferred);
    }
}
