//! What the email services tell us after delivery, normalised. Pure: each service's
//! (already verified) payload in, events out. Signature checks live at the HTTP edge.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackKind {
    Delivered,
    Deferred,
    /// `hard`: the address does not exist or refuses for good.
    Bounced {
        hard: bool,
    },
    Complained,
    /// The service would not send (suppressed there, invalid, policy).
    Dropped,
}

impl FeedbackKind {
    /// The event kind recorded on the message.
    pub fn event_kind(self) -> &'static str {
        match self {
            FeedbackKind::Delivered => "feedback_delivered",
            FeedbackKind::Deferred => "feedback_deferred",
            FeedbackKind::Bounced { hard: true } => "bounced_hard",
            FeedbackKind::Bounced { hard: false } => "bounced_soft",
            FeedbackKind::Complained => "complained",
            FeedbackKind::Dropped => "dropped",
        }
    }

    /// The suppression reason this event adds, if any: hard bounces and complaints.
    pub fn suppression_reason(self) -> Option<crate::SuppressionReason> {
        match self {
            FeedbackKind::Bounced { hard: true } => Some(crate::SuppressionReason::HardBounce),
            FeedbackKind::Complained => Some(crate::SuppressionReason::Complaint),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackEvent {
    pub kind: FeedbackKind,
    pub recipient: String,
    /// The service's id of the message, as Sluice recorded it when it was accepted.
    pub provider_message_id: String,
    /// The service's words, shortened.
    pub detail: String,
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
    .chars()
    .take(300)
    .collect()
}

/// SendGrid Event Webhook: a JSON array of events. `sg_message_id` starts with the
/// X-Message-Id we kept, followed by `.filter...`.
pub fn sendgrid_events(payload: &Value) -> Vec<FeedbackEvent> {
    let Some(events) = payload.as_array() else {
        return Vec::new();
    };
    events
        .iter()
        .filter_map(|event| {
            let kind = match (event["event"].as_str()?, event["type"].as_str()) {
                ("delivered", _) => FeedbackKind::Delivered,
                ("deferred", _) => FeedbackKind::Deferred,
                ("bounce", Some("blocked")) => FeedbackKind::Bounced { hard: false },
                ("bounce", _) => FeedbackKind::Bounced { hard: true },
                ("dropped", _) => FeedbackKind::Dropped,
                ("spamreport", _) => FeedbackKind::Complained,
                _ => return None,
            };
            let id = event["sg_message_id"].as_str()?;
            Some(FeedbackEvent {
                kind,
                recipient: event["email"].as_str()?.to_ascii_lowercase(),
                provider_message_id: id.split('.').next().unwrap_or(id).to_string(),
                detail: text(&event["reason"]),
            })
        })
        .collect()
}

/// Mailgun webhook (`event-data`): one event per request.
pub fn mailgun_events(payload: &Value) -> Vec<FeedbackEvent> {
    let data = &payload["event-data"];
    let kind = match (data["event"].as_str(), data["severity"].as_str()) {
        (Some("delivered"), _) => FeedbackKind::Delivered,
        (Some("failed"), Some("permanent")) => FeedbackKind::Bounced { hard: true },
        (Some("failed"), _) => FeedbackKind::Deferred,
        (Some("complained"), _) => FeedbackKind::Complained,
        (Some("rejected"), _) => FeedbackKind::Dropped,
        _ => return Vec::new(),
    };
    let (Some(recipient), Some(id)) = (
        data["recipient"].as_str(),
        data["message"]["headers"]["message-id"].as_str(),
    ) else {
        return Vec::new();
    };
    let status = &data["delivery-status"];
    let detail = [
        text(&status["code"]),
        text(&status["description"]),
        text(&status["message"]),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(" ");
    vec![FeedbackEvent {
        kind,
        recipient: recipient.to_ascii_lowercase(),
        provider_message_id: id.trim_matches(['<', '>']).to_string(),
        detail,
    }]
}

/// An SES event (the `Message` of an SNS notification, parsed): Bounce, Complaint,
/// Delivery, Reject, DeliveryDelay; as event publishing (`eventType`) or notifications
/// (`notificationType`).
pub fn ses_events(message: &Value) -> Vec<FeedbackEvent> {
    let Some(kind) = message["eventType"]
        .as_str()
        .or(message["notificationType"].as_str())
    else {
        return Vec::new();
    };
    let Some(id) = message["mail"]["messageId"].as_str() else {
        return Vec::new();
    };
    let each =
        |list: &Value, field: &str, kind: FeedbackKind, detail: &dyn Fn(&Value) -> String| {
            list.as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    let address = match &r[field] {
                        Value::String(s) => s.clone(),
                        _ => r.as_str()?.to_string(),
                    };
                    Some(FeedbackEvent {
                        kind,
                        recipient: address.to_ascii_lowercase(),
                        provider_message_id: id.to_string(),
                        detail: detail(r),
                    })
                })
                .collect::<Vec<_>>()
        };
    match kind {
        "Bounce" => {
            let bounce = &message["bounce"];
            let hard = bounce["bounceType"] == "Permanent";
            each(
                &bounce["bouncedRecipients"],
                "emailAddress",
                FeedbackKind::Bounced { hard },
                &|r| text(&r["diagnosticCode"]),
            )
        }
        "Complaint" => each(
            &message["complaint"]["complainedRecipients"],
            "emailAddress",
            FeedbackKind::Complained,
            &|_| text(&message["complaint"]["complaintFeedbackType"]),
        ),
        "Delivery" => each(
            &message["delivery"]["recipients"],
            "",
            FeedbackKind::Delivered,
            &|_| text(&message["delivery"]["smtpResponse"]),
        ),
        "DeliveryDelay" => each(
            &message["deliveryDelay"]["delayedRecipients"],
            "emailAddress",
            FeedbackKind::Deferred,
            &|r| text(&r["diagnosticCode"]),
        ),
        "Reject" => each(
            &message["mail"]["destination"],
            "",
            FeedbackKind::Dropped,
            &|_| text(&message["reject"]["reason"]),
        ),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sendgrid_events_are_normalised() {
        let payload = json!([
            { "email": "A@x.test", "event": "bounce", "type": "bounce", "reason": "550 no such user",
              "sg_message_id": "abc123.filter0001.1.0" },
            { "email": "b@x.test", "event": "bounce", "type": "blocked", "sg_message_id": "abc123.f" },
            { "email": "c@x.test", "event": "spamreport", "sg_message_id": "abc123.f" },
            { "email": "d@x.test", "event": "open", "sg_message_id": "abc123.f" },
            { "email": "e@x.test", "event": "delivered", "sg_message_id": "abc123" },
        ]);
        let events = sendgrid_events(&payload);
        let summary: Vec<_> = events
            .iter()
            .map(|e| (e.kind, e.recipient.as_str(), e.provider_message_id.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (FeedbackKind::Bounced { hard: true }, "a@x.test", "abc123"),
                (FeedbackKind::Bounced { hard: false }, "b@x.test", "abc123"),
                (FeedbackKind::Complained, "c@x.test", "abc123"),
                (FeedbackKind::Delivered, "e@x.test", "abc123"),
            ]
        );
        assert_eq!(events[0].detail, "550 no such user");
    }

    #[test]
    fn mailgun_events_are_normalised() {
        let event = |name: &str, severity: &str| {
            json!({ "event-data": { "event": name, "severity": severity, "recipient": "A@x.test",
                "message": { "headers": { "message-id": "20261122.1@mg.x.test" } },
                "delivery-status": { "code": 550, "description": "mailbox unavailable" } } })
        };
        let table = [
            (
                event("failed", "permanent"),
                Some(FeedbackKind::Bounced { hard: true }),
            ),
            (event("failed", "temporary"), Some(FeedbackKind::Deferred)),
            (event("complained", ""), Some(FeedbackKind::Complained)),
            (event("delivered", ""), Some(FeedbackKind::Delivered)),
            (event("opened", ""), None),
        ];
        for (payload, expected) in table {
            let events = mailgun_events(&payload);
            assert_eq!(events.first().map(|e| e.kind), expected, "{payload}");
            if let Some(e) = events.first() {
                assert_eq!(e.provider_message_id, "20261122.1@mg.x.test");
                assert_eq!(e.recipient, "a@x.test");
                assert_eq!(e.detail, "550 mailbox unavailable");
            }
        }
    }

    #[test]
    fn ses_events_are_normalised() {
        let bounce = json!({ "notificationType": "Bounce", "mail": { "messageId": "m1" },
            "bounce": { "bounceType": "Permanent", "bouncedRecipients": [
                { "emailAddress": "a@x.test", "diagnosticCode": "smtp; 550 5.1.1 user unknown" }] } });
        let soft = json!({ "eventType": "Bounce", "mail": { "messageId": "m1" },
            "bounce": { "bounceType": "Transient", "bouncedRecipients": [{ "emailAddress": "b@x.test" }] } });
        let complaint = json!({ "eventType": "Complaint", "mail": { "messageId": "m1" },
            "complaint": { "complainedRecipients": [{ "emailAddress": "c@x.test" }] } });
        let delivery = json!({ "notificationType": "Delivery", "mail": { "messageId": "m1" },
            "delivery": { "recipients": ["d@x.test", "e@x.test"], "smtpResponse": "250 ok" } });
        let kinds = |v: &Value| {
            ses_events(v)
                .into_iter()
                .map(|e| (e.kind, e.recipient))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(&bounce),
            vec![(FeedbackKind::Bounced { hard: true }, "a@x.test".into())]
        );
        assert_eq!(
            kinds(&soft),
            vec![(FeedbackKind::Bounced { hard: false }, "b@x.test".into())]
        );
        assert_eq!(
            kinds(&complaint),
            vec![(FeedbackKind::Complained, "c@x.test".into())]
        );
        assert_eq!(kinds(&delivery).len(), 2);
        assert_eq!(
            ses_events(&bounce)[0].detail,
            "smtp; 550 5.1.1 user unknown"
        );
    }
}
