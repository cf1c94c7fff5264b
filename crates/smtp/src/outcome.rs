//! The SMTP reply for each accept outcome: what a client hears after DATA / BDAT LAST.

use sluice_core::AcceptOutcome;
use sluice_core::text::sanitize_reply_text;

use crate::Reply;

/// The enhanced status code in an upstream's text (`5.1.1`), if it has one of this class.
fn enhanced_code(text: &str, class: char) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|token| {
            let parts: Vec<&str> = token.split('.').collect();
            parts.len() == 3
                && parts[0].len() == 1
                && token.starts_with(class)
                && parts[1..].iter().all(|p| (1..=3).contains(&p.len()))
        })
        .map(str::to_string)
}

/// 250 only for a committed (or, in sync mode, delivered) message.
pub fn reply_for(outcome: &AcceptOutcome) -> Reply {
    match outcome {
        AcceptOutcome::Queued(id) => Reply::new(250, "2.0.0", format!("Ok: queued as {id}")),
        AcceptOutcome::Delivered(id) => Reply::new(250, "2.0.0", format!("Ok: delivered as {id}")),
        AcceptOutcome::Transient { code, text, .. } => {
            if code.is_none() {
                return Reply::new(451, "4.4.1", "Upstream unavailable, try again later");
            }
            // Always 4.4.x: to the client this is a delivery problem past Sluice.
            Reply::new(
                451,
                "4.4.0",
                format!("Upstream deferred: {}", sanitize_reply_text(text, 200)),
            )
        }
        AcceptOutcome::Permanent { text, .. } => {
            let status = enhanced_code(text, '5').unwrap_or_else(|| "5.0.0".into());
            Reply::new(
                550,
                &status,
                format!("Upstream refused: {}", sanitize_reply_text(text, 200)),
            )
        }
        AcceptOutcome::QuotaExceeded => Reply::new(
            452,
            "4.2.2",
            "Monthly sending limit of this account reached",
        ),
        AcceptOutcome::Suppressed(rcpts) => Reply::new(
            550,
            "5.1.1",
            format!(
                "Suppressed recipient: {}",
                sanitize_reply_text(&rcpts.join(", "), 100)
            ),
        ),
        AcceptOutcome::RecipientNotAllowed(rcpt) => Reply::new(
            550,
            "5.7.1",
            format!(
                "Recipient {} is not allowed here (staging)",
                sanitize_reply_text(rcpt, 100)
            ),
        ),
        // Temporary: a suspension can be lifted, and the client keeps the message.
        AcceptOutcome::AccountSuspended => Reply::new(
            451,
            "4.7.1",
            "This account is suspended; message not accepted, try again later",
        ),
        AcceptOutcome::AccountDeleted => {
            Reply::new(550, "5.7.1", "This account is deleted; message refused")
        }
        AcceptOutcome::Unavailable => Reply::new(
            451,
            "4.3.0",
            "Temporary failure storing the message, try again later",
        ),
        AcceptOutcome::InsufficientStorage => {
            Reply::new(452, "4.3.1", "Insufficient system storage, try again later")
        }
        // SMTP submissions carry no idempotency key; were one taken, the message is stored.
        AcceptOutcome::IdempotencyKeyTaken(record) => match record.message_id {
            Some(id) => Reply::new(250, "2.0.0", format!("Ok: already queued as {id}")),
            None => Reply::new(451, "4.3.0", "Temporary failure, try again later"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_for_outcomes() {
        let table = [
            (AcceptOutcome::Queued(7), "250 2.0.0 Ok: queued as 7\r\n"),
            (
                AcceptOutcome::QuotaExceeded,
                "452 4.2.2 Monthly sending limit of this account reached\r\n",
            ),
            (
                AcceptOutcome::Unavailable,
                "451 4.3.0 Temporary failure storing the message, try again later\r\n",
            ),
            (
                AcceptOutcome::InsufficientStorage,
                "452 4.3.1 Insufficient system storage, try again later\r\n",
            ),
            (
                AcceptOutcome::Permanent {
                    id: 1,
                    code: Some(550),
                    text: "permanent error (550): 5.1.1 no such\r\nuser".into(),
                },
                "550 5.1.1 Upstream refused: permanent error (550): 5.1.1 no such user\r\n",
            ),
            (
                AcceptOutcome::Transient {
                    id: 1,
                    code: Some(451),
                    text: "transient error (451): try later".into(),
                },
                "451 4.4.0 Upstream deferred: transient error (451): try later\r\n",
            ),
            (
                AcceptOutcome::Transient {
                    id: 1,
                    code: Some(451),
                    text: "transient error (451): 4.3.0 busy".into(),
                },
                "451 4.4.0 Upstream deferred: transient error (451): 4.3.0 busy\r\n",
            ),
            (
                AcceptOutcome::Transient {
                    id: 1,
                    code: None,
                    text: "Connection refused (os error 111) 10.0.0.1".into(),
                },
                "451 4.4.1 Upstream unavailable, try again later\r\n",
            ),
        ];
        for (outcome, wire) in table {
            assert_eq!(
                String::from_utf8(reply_for(&outcome).to_bytes()).unwrap(),
                wire
            );
        }
    }
}
