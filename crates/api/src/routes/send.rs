//! `POST /send`: an application hands Sluice a message as JSON; Sluice builds the MIME
//! message, applies the account's policy and answers once it is committed (or, with
//! `?mode=sync`, delivered).

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_core::idempotency::{IdempotencyKey, request_hash};
use sluice_core::text::{is_header_safe, sanitize_reply_text};
use sluice_core::{AcceptOutcome, Envelope, Source, Submission};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Query, secs_until_next_month};
use super::super::idempotency::{self, JsonWithBytes};
use super::super::principal::{Principal, Role};
use super::super::{ApiState, now_ms};
use super::{ErrorBody, invalid, template_failed};
use sluice_compose::render::{builtin, render};
use sluice_compose::{self as compose, Composed, Mailbox, parse_mailbox};

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(send))
        // Attachments travel base64-encoded: room for a full-size message.
        .layer(DefaultBodyLimit::max(48 * 1024 * 1024))
}

/// One address or a list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Recipients {
    One(String),
    Many(Vec<String>),
}

impl Recipients {
    fn items(&self) -> Vec<&str> {
        match self {
            Recipients::One(one) => vec![one.as_str()],
            Recipients::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentIn {
    pub filename: String,
    pub content_type: String,
    /// Base64.
    pub content: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// `a@b` or `Name <a@b>`; defaults to the account's email. Its domain must be allowed.
    pub from: Option<String>,
    pub to: Recipients,
    pub cc: Option<Recipients>,
    /// In the envelope only, never in a header.
    pub bcc: Option<Recipients>,
    pub reply_to: Option<String>,
    /// With a template, replaces the template's subject.
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    /// Alias of `html`, the workflow platform's name for the HTML body.
    #[serde(rename = "body")]
    pub html_alias: Option<String>,
    /// A template name (the account's, the system's or a built-in) instead of text/html;
    /// a `subject` given with it wins over the template's.
    pub template: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    pub attachments: Option<Vec<AttachmentIn>>,
    /// Extra headers; those Sluice writes itself are refused.
    pub headers: Option<BTreeMap<String, String>>,
    pub tags: Option<Vec<String>>,
    /// Retries after the first attempt (the server's limit still applies).
    pub retry_attempts: Option<u32>,
    /// Alias of `retry_attempts`, the workflow platform's name.
    #[serde(rename = "retryAttempts")]
    pub retry_attempts_alias: Option<u32>,
    /// Limits sends per key for this account (`api.send_rate_limit_per_key_per_hour`).
    pub rate_limit_key: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SendQuery {
    /// `sync`: answer with the upstream's verdict.
    pub mode: Option<String>,
}

/// The send's headers.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Read from the request's headers; here for the OpenAPI document.
pub struct SendHeaders {
    /// 1 to 255 visible ASCII characters naming this send, remembered 24 h per account.
    /// The same key with the same request (query and body bytes) again answers the first
    /// answer (status and body) with `Idempotent-Replayed: true` and sends nothing more;
    /// with another request, 422 `idempotency_key_reused`; while the first is still being
    /// answered (sync mode), 409 `idempotency_key_in_use` with `Retry-After: 1`. Only 2xx
    /// answers are remembered. Malformed: 422 `invalid_idempotency_key`.
    #[param(rename = "Idempotency-Key")]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Sent {
    pub id: i64,
    /// `queued` (202) or `delivered` (200, sync mode).
    pub status: String,
}

impl SendRequest {
    /// Folds the workflow platform's names into ours; a field and its alias together is a
    /// 422 naming both.
    fn resolve_aliases(&mut self) -> Result<(), ApiError> {
        if let Some(html) = self.html_alias.take() {
            if self.html.is_some() {
                return Err(ApiError::validation(
                    "give html or body (its alias), not both",
                ));
            }
            self.html = Some(html);
        }
        if let Some(retries) = self.retry_attempts_alias.take() {
            if self.retry_attempts.is_some() {
                return Err(ApiError::validation(
                    "give retry_attempts or retryAttempts (its alias), not both",
                ));
            }
            self.retry_attempts = Some(retries);
        }
        Ok(())
    }
}

fn mailboxes(field: &str, list: Option<&Recipients>) -> Result<Vec<Mailbox>, ApiError> {
    list.map(|r| r.items())
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, text)| parse_mailbox(&format!("{field}[{i}]"), text).map_err(invalid))
        .collect()
}

pub(super) fn check_tags(tags: &[String]) -> Result<(), ApiError> {
    if tags.len() > 20 {
        return Err(ApiError::validation("tags: at most 20"));
    }
    for tag in tags {
        let valid = (1..=64).contains(&tag.len())
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-:".contains(&b));
        if !valid {
            return Err(ApiError::validation(format!("tags: {tag:?} is not a tag")));
        }
    }
    Ok(())
}

/// Sends a message.
#[utoipa::path(post, path = "/send", tag = "send", request_body = SendRequest,
    params(SendQuery, SendHeaders),
    security(("bearer" = [])),
    responses(
        (status = 202, body = Sent, headers(("Idempotent-Replayed" = String,
            description = "`true` on the answer to a repeated request with the same Idempotency-Key"))),
        (status = 200, body = Sent, headers(("Idempotent-Replayed" = String,
            description = "`true` on the answer to a repeated request with the same Idempotency-Key"))),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody),
        (status = 507, body = ErrorBody)))]
async fn send(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<SendQuery>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    JsonWithBytes {
        value: mut body,
        bytes,
    }: JsonWithBytes<SendRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Member)?;
    let idempotency_key = idempotency::key_of(&headers)?;
    body.resolve_aliases()?;
    let sync = match query.mode.as_deref().map(str::parse) {
        None | Some(Ok(sluice_core::DeliveryMode::Async)) => false,
        Some(Ok(sluice_core::DeliveryMode::Sync)) => true,
        Some(Err(_)) => return Err(ApiError::validation("mode is sync or async")),
    };
    let account_id = who
        .account_id
        .ok_or_else(|| ApiError::validation("send as an account: use one of its API keys"))?;
    let account = state
        .active_account(&who, account_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let idempotency = idempotency_key.map(|key| IdempotencyKey {
        key,
        request_hash: request_hash(raw_query.as_deref().unwrap_or(""), &bytes),
    });
    if let Some(key) = &idempotency
        && let Some(record) = state
            .store
            .idempotency_key(account_id, &key.key, now_ms())
            .await?
    {
        return idempotency::replayed(&record, &key.request_hash, now_ms(), state.sync_lease_ms);
    }
    if let Some(key) = &body.rate_limit_key {
        if key.is_empty() || key.len() > 200 {
            return Err(ApiError::validation(
                "rate_limit_key must be 1 to 200 characters",
            ));
        }
        let verdict = state
            .send_limiter
            .lock()
            .map(|mut l| l.check(&format!("{account_id}:{key}"), now_ms()))
            .unwrap_or(Ok(()));
        if let Err(wait_ms) = verdict {
            return Err(ApiError::rate_limited((wait_ms + 999) / 1000));
        }
    }

    let from = match &body.from {
        Some(from) => parse_mailbox("from", from).map_err(invalid)?,
        None => parse_mailbox("from", &account.email).map_err(invalid)?,
    };
    // A sandboxed API key's mail is captured, whatever the account's mode.
    let policy = sluice_core::AccountPolicy {
        sandbox: who.sandbox,
        ..account.policy()
    };
    if !policy.allows_sender(&from.address) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "sender_not_verified",
            format!(
                "from: the domain of {} is not a verified domain of this account; \
                 add and verify it at /api/v1/domains",
                from.address
            ),
        ));
    }
    let to = mailboxes("to", Some(&body.to))?;
    let cc = mailboxes("cc", body.cc.as_ref())?;
    let bcc = mailboxes("bcc", body.bcc.as_ref())?;
    let reply_to = body
        .reply_to
        .as_deref()
        .map(|r| parse_mailbox("reply_to", r))
        .transpose()
        .map_err(invalid)?;
    let mut rcpt_to: Vec<String> = Vec::new();
    for mailbox in to.iter().chain(&cc).chain(&bcc) {
        if !rcpt_to.contains(&mailbox.address) {
            rcpt_to.push(mailbox.address.clone());
        }
    }
    if rcpt_to.is_empty() {
        return Err(ApiError::validation("to: at least one recipient"));
    }
    if rcpt_to.len() > state.max_recipients {
        return Err(ApiError::validation(format!(
            "at most {} recipients",
            state.max_recipients
        )));
    }

    let (subject, text, html) = match &body.template {
        Some(name) => {
            if body.text.is_some() || body.html.is_some() {
                return Err(ApiError::validation(
                    "give a template or text/html, not both",
                ));
            }
            let data = body
                .data
                .clone()
                .unwrap_or(Value::Object(Default::default()));
            let rendered = match state.store.template_by_name(Some(account_id), name).await? {
                Some(t) => render(&t.subject, &t.text_body, &t.html_body, &data)
                    .map_err(template_failed)?,
                None => {
                    let (s, t, h) = builtin(name).ok_or_else(|| {
                        ApiError::validation(format!("template: no template named {name:?}"))
                    })?;
                    render(s, t, h, &data).map_err(template_failed)?
                }
            };
            let text = (!rendered.text.trim().is_empty()).then_some(rendered.text);
            let html = (!rendered.html.trim().is_empty()).then_some(rendered.html);
            // The caller's subject over the template's, as the outbound-email webhook does.
            let subject = match &body.subject {
                Some(subject) if !subject.trim().is_empty() => subject.clone(),
                _ => rendered.subject,
            };
            (subject, text, html)
        }
        None => (
            body.subject.clone().unwrap_or_default(),
            body.text.clone(),
            body.html.clone(),
        ),
    };
    if !is_header_safe(&subject) {
        return Err(ApiError::validation(
            "subject: line breaks and NUL are not allowed",
        ));
    }
    if text.is_none() && html.is_none() {
        return Err(ApiError::validation(
            "text or html (or a template) is required",
        ));
    }
    let headers: Vec<(String, String)> = body
        .headers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    for (name, value) in &headers {
        compose::check_header(name, value).map_err(invalid)?;
    }
    let tags = body.tags.clone().unwrap_or_default();
    check_tags(&tags)?;
    let attachments = body
        .attachments
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, a)| compose::decode_attachment(i, &a.filename, &a.content_type, &a.content))
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;

    let message_id = format!("{}@{}", uuid::Uuid::new_v4().simple(), state.hostname);
    let raw = compose::build(Composed {
        from: &from,
        to: &to,
        cc: &cc,
        reply_to: reply_to.as_ref(),
        subject: &subject,
        text: text.as_deref(),
        html: html.as_deref(),
        attachments,
        headers: &headers,
        message_id: &message_id,
        date_secs: now_ms() / 1000,
    })
    .map_err(invalid)?;
    if raw.len() > state.max_message_size {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
            format!(
                "the message is {} bytes; the limit is {}",
                raw.len(),
                state.max_message_size
            ),
        ));
    }
    let smtputf8 = !rcpt_to.iter().chain([&from.address]).all(|a| a.is_ascii());
    let submission = Submission {
        source: Source::Api,
        envelope: Envelope {
            mail_from: from.address.clone(),
            smtputf8,
            eight_bit: false,
            rcpt_to,
        },
        body: sluice_core::MessageBody::Inline(raw),
        tags,
        max_attempts: body.retry_attempts.map(|n| n.saturating_add(1)),
        sync,
        recipients_checked: false,
        idempotency: idempotency.clone(),
    };
    match state.submitter.submit(&policy, submission).await {
        AcceptOutcome::Queued(id) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(Sent {
                id,
                status: "queued".into(),
            }),
        )
            .into_response()),
        AcceptOutcome::Delivered(id) => Ok((
            StatusCode::OK,
            axum::Json(Sent {
                id,
                status: "delivered".into(),
            }),
        )
            .into_response()),
        // A request with the same key committed between the lookup and this commit.
        AcceptOutcome::IdempotencyKeyTaken(record) => {
            let request_hash = idempotency
                .as_ref()
                .map(|key| key.request_hash.as_str())
                .unwrap_or_default();
            idempotency::replayed(&record, request_hash, now_ms(), state.sync_lease_ms)
        }
        AcceptOutcome::Transient { id, text, .. } => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_deferred",
            format!(
                "message {id}: the upstream deferred it: {}",
                sanitize_reply_text(&text, 200)
            ),
        )),
        AcceptOutcome::Permanent { id, text, .. } => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_rejected",
            format!(
                "message {id}: the upstream refused it: {}",
                sanitize_reply_text(&text, 200)
            ),
        )),
        AcceptOutcome::QuotaExceeded => Err(ApiError {
            retry_after: Some(secs_until_next_month(now_ms())),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "monthly_limit_reached",
                "the account has sent its monthly limit",
            )
        }),
        AcceptOutcome::Suppressed(rcpts) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "recipient_suppressed",
            format!("on the suppression list: {}", rcpts.join(", ")),
        )),
        AcceptOutcome::RecipientNotAllowed(rcpt) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "recipient_not_allowed",
            format!("{rcpt} is not an allowed recipient here (staging)"),
        )),
        AcceptOutcome::AccountSuspended => Err(ApiError::account_suspended()),
        AcceptOutcome::AccountDeleted => Err(ApiError::account_deleted()),
        AcceptOutcome::Unavailable => Err(ApiError::from(sluice_store::StoreError::Unavailable(
            String::new(),
        ))),
        AcceptOutcome::InsufficientStorage => Err(ApiError::insufficient_storage()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workflow_platforms_names_fold_into_ours() {
        let mut request: SendRequest = serde_json::from_value(serde_json::json!({
            "to": "a@b.test", "subject": "s", "body": "<p>x</p>", "retryAttempts": 2
        }))
        .unwrap();
        request.resolve_aliases().unwrap();
        assert_eq!(request.html.as_deref(), Some("<p>x</p>"));
        assert_eq!(request.retry_attempts, Some(2));
        assert!(request.html_alias.is_none() && request.retry_attempts_alias.is_none());
    }
}
