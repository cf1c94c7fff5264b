//! Envelopes, message status and the verdicts deliveries end in.

use serde::{Deserialize, Serialize};

pub type AccountId = i64;
pub type MessageId = i64;

/// How a message reached Sluice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Smtp,
    Api,
    Webhook,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Smtp, Source::Api, Source::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Smtp => "smtp",
            Source::Api => "api",
            Source::Webhook => "webhook",
        }
    }
}

crate::text_kind!(Source, "message source");

/// What an authenticated sender may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPolicy {
    pub account_id: AccountId,
    /// Lower-case domains the account may use in MAIL FROM.
    pub allowed_domains: Vec<String>,
    /// Messages the account may send per calendar month (UTC).
    pub monthly_limit: i64,
    /// The login (API key or SMTP credential) is in sandbox mode: what it sends is
    /// captured whatever the routing says (the account's own mode is read at delivery).
    pub sandbox: bool,
    /// Injected SMTP answers (a sandboxed sender of an account with `capture_chaos`).
    pub chaos: Option<std::sync::Arc<crate::chaos::ChaosRules>>,
}

/// The calendar month (UTC) of a unix-ms time, as `YYYY-MM`: the key of monthly usage.
pub fn month_of(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}")
}

impl AccountPolicy {
    /// Whether `from` (a mailbox, or empty for the null reverse-path) may be used.
    /// The null reverse-path is refused: an application relay has no reason to send bounces.
    pub fn allows_sender(&self, from: &str) -> bool {
        match crate::address::domain_of(from) {
            Some(domain) => self
                .allowed_domains
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(&domain)),
            None => false,
        }
    }
}

/// The SMTP envelope of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The client declared SMTPUTF8 or 8BITMIME: pass that on upstream.
    pub smtputf8: bool,
    pub eight_bit: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// Committed, waiting for its first attempt.
    Queued,
    /// Claimed by a worker under a lease.
    Sending,
    /// A transient failure; waiting for its next attempt.
    Deferred,
    Delivered,
    Failed,
    /// Kept by the capture provider, not sent.
    Captured,
    /// Withdrawn before delivery (by a caller, or because its account was deleted).
    Cancelled,
    /// Kept back while its account is suspended; queued again when it is reactivated.
    /// Workers never claim it.
    Held,
    /// Delivered to the service, which then reported a hard bounce or a drop (single
    /// recipient messages; with several recipients the events tell each one's fate).
    Bounced,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 9] = [
        MessageStatus::Queued,
        MessageStatus::Sending,
        MessageStatus::Deferred,
        MessageStatus::Delivered,
        MessageStatus::Failed,
        MessageStatus::Captured,
        MessageStatus::Cancelled,
        MessageStatus::Bounced,
        MessageStatus::Held,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Deferred => "deferred",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Failed => "failed",
            MessageStatus::Captured => "captured",
            MessageStatus::Cancelled => "cancelled",
            MessageStatus::Bounced => "bounced",
            MessageStatus::Held => "held",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => MessageStatus::Queued,
            "sending" => MessageStatus::Sending,
            "deferred" => MessageStatus::Deferred,
            "delivered" => MessageStatus::Delivered,
            "failed" => MessageStatus::Failed,
            "captured" => MessageStatus::Captured,
            "cancelled" => MessageStatus::Cancelled,
            "bounced" => MessageStatus::Bounced,
            "held" => MessageStatus::Held,
            _ => return None,
        })
    }
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MessageStatus {
    type Err = crate::user::UnknownKind;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        MessageStatus::parse(text)
            .ok_or_else(|| crate::user::UnknownKind::new("message status", text))
    }
}

/// What an ingress should tell its client about a message it handed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// Committed; the workers will deliver it.
    Queued(MessageId),
    /// Sync mode: the upstream took it.
    Delivered(MessageId),
    /// Sync mode: the upstream answered transiently (or not at all).
    Transient {
        id: MessageId,
        code: Option<u16>,
        text: String,
    },
    /// Sync mode: the upstream refused it.
    Permanent {
        id: MessageId,
        code: Option<u16>,
        text: String,
    },
    /// Not stored: the account has used its monthly limit.
    QuotaExceeded,
    /// Not stored: these recipients are on the account's suppression list.
    Suppressed(Vec<String>),
    /// Not stored: staging allows only some recipients, and this is not one of them.
    RecipientNotAllowed(String),
    /// Not stored: the account is suspended (a temporary refusal: SMTP 451 4.7.1,
    /// HTTP 403 `account_suspended`).
    AccountSuspended,
    /// Not stored: the account is deleted (a permanent refusal: SMTP 550 5.7.1, HTTP 401
    /// `account_deleted`).
    AccountDeleted,
    /// Not stored: the database could not take it. Nothing was promised.
    Unavailable,
    /// Not stored: the disk is below its reserve, full, or failed the write or its sync.
    /// Nothing was promised.
    InsufficientStorage,
    /// Not stored: the submission's idempotency key was already taken (by a request that
    /// committed first); this is what the store remembers of it.
    IdempotencyKeyTaken(crate::idempotency::IdempotencyRecord),
}

/// A message an ingress hands in.
#[derive(Debug, Clone)]
pub struct Submission {
    pub source: Source,
    pub envelope: Envelope,
    pub body: crate::MessageBody,
    pub tags: Vec<String>,
    pub max_attempts: Option<u32>,
    /// Deliver while the client waits, whatever `delivery.mode` says.
    pub sync: bool,
    /// The ingress already checked every recipient against the suppression list (SMTP
    /// does, per RCPT), so the accept path need not read it again.
    pub recipients_checked: bool,
    /// The HTTP send API's `Idempotency-Key` and the request's hash: the key is written
    /// with the message, in its transaction; a key already taken stores nothing.
    pub idempotency: Option<crate::idempotency::IdempotencyKey>,
}

/// Message events a tenant's webhook endpoint may subscribe to (`*`: all of them).
/// Every event recorded on a message is one of these, but `queued`, which is not posted.
pub const PUBLISHED_EVENT_KINDS: [&str; 22] = [
    "delivered",
    "deferred",
    "failed",
    "partially_delivered",
    "recipient_failed",
    "captured",
    // The captured message parsed (its `data` is `GET /messages/{id}/parsed`'s answer),
    // once the capture indexer has read it.
    "message.captured",
    "cancelled",
    "held",
    "hold_released",
    "account_deleted",
    "retry_requested",
    "failover",
    "provider_auth_failed",
    "provider_misconfigured",
    "bounced_hard",
    "bounced_soft",
    "complained",
    "dropped",
    "feedback_delivered",
    "feedback_deferred",
    "*",
];

/// How one delivery attempt (or one recipient of it) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Delivered,
    /// Try again later: 4xx, timeouts, connection errors.
    Transient,
    /// Do not try again: 5xx.
    Permanent,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::Delivered, Verdict::Transient, Verdict::Permanent];

    /// As stored in `delivery_attempts.verdict` and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::Transient => "transient",
            Verdict::Permanent => "permanent",
        }
    }
}

crate::text_kind!(Verdict, "verdict");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientResult {
    pub rcpt: String,
    pub verdict: Verdict,
    pub code: Option<u16>,
    /// Sanitised excerpt of the upstream's answer.
    pub response: String,
}

/// Everything a deliverer reports about one attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    pub provider: String,
    /// One entry per recipient that was attempted.
    pub recipients: Vec<RecipientResult>,
    /// The provider kept the message instead of sending it.
    pub captured: bool,
    /// The provider's own id for the message (SendGrid X-Message-Id, SES MessageId, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    /// The provider asked us to wait this long before trying again (Retry-After).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// Events worth recording beyond the verdicts: `provider_auth_failed`, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<(String, String)>,
}

impl DeliveryReport {
    /// The same result for every recipient (a connection error, a DATA reply).
    pub fn uniform(
        provider: &str,
        rcpts: &[String],
        verdict: Verdict,
        code: Option<u16>,
        response: &str,
    ) -> Self {
        DeliveryReport {
            provider: provider.to_string(),
            recipients: rcpts
                .iter()
                .map(|rcpt| RecipientResult {
                    rcpt: rcpt.clone(),
                    verdict,
                    code,
                    response: response.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    /// The verdict of the attempt as a whole: delivered when every recipient was,
    /// transient when any recipient may still succeed, else permanent.
    pub fn overall(&self) -> Verdict {
        if self
            .recipients
            .iter()
            .all(|r| r.verdict == Verdict::Delivered)
        {
            Verdict::Delivered
        } else if self
            .recipients
            .iter()
            .any(|r| r.verdict == Verdict::Transient)
        {
            Verdict::Transient
        } else if self
            .recipients
            .iter()
            .any(|r| r.verdict == Verdict::Delivered)
        {
            // Some delivered, the rest refused for good: nothing left to retry.
            Verdict::Delivered
        } else {
            Verdict::Permanent
        }
    }

    /// Recipients that should be tried again.
    pub fn transient_recipients(&self) -> Vec<String> {
        self.recipients
            .iter()
            .filter(|r| r.verdict == Verdict::Transient)
            .map(|r| r.rcpt.clone())
            .collect()
    }

    /// The first non-delivered result, for summaries.
    pub fn first_failure(&self) -> Option<&RecipientResult> {
        self.recipients
            .iter()
            .find(|r| r.verdict != Verdict::Delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(verdicts: &[Verdict]) -> DeliveryReport {
        DeliveryReport {
            provider: "smtp".into(),
            recipients: verdicts
                .iter()
                .enumerate()
                .map(|(i, v)| RecipientResult {
                    rcpt: format!("r{i}@x.test"),
                    verdict: *v,
                    code: None,
                    response: String::new(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn overall_verdict_table() {
        use Verdict::*;
        let table: &[(&[Verdict], Verdict)] = &[
            (&[Delivered, Delivered], Delivered),
            (&[Delivered, Transient], Transient),
            (&[Delivered, Permanent], Delivered),
            (&[Permanent, Transient], Transient),
            (&[Permanent, Permanent], Permanent),
        ];
        for (input, want) in table {
            assert_eq!(report(input).overall(), *want, "{input:?}");
        }
        assert_eq!(
            report(&[Delivered, Transient, Permanent]).transient_recipients(),
            vec!["r1@x.test".to_string()]
        );
    }

    #[test]
    fn months() {
        assert_eq!(month_of(0), "1970-01");
        assert_eq!(month_of(1_795_305_600_000), "2026-11"); // 2026-11-22
        assert_eq!(month_of(1_798_761_599_999), "2026-12"); // 2026-12-31T23:59:59.999
        assert_eq!(month_of(1_798_761_600_000), "2027-01");
        assert_eq!(month_of(951_782_400_000), "2000-02"); // 2000-02-29
    }

    #[test]
    fn sender_policy() {
        let policy = AccountPolicy {
            account_id: 1,
            allowed_domains: vec!["example.com".into()],
            monthly_limit: 10,
            sandbox: false,
            chaos: None,
        };
        assert!(policy.allows_sender("a@Example.com"));
        assert!(!policy.allows_sender("a@evil.com"));
        assert!(!policy.allows_sender("a@sub.example.com"));
        assert!(!policy.allows_sender(""));
    }
}
