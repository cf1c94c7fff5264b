//! Messages: search (captured mail by `q` too), one message with its attempts and events,
//! and its raw source. The capture sandbox's own routes are in `capture.rs`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use sluice_core::MessageBody;
use sluice_core::MessageStatus;
use sluice_store::{AttemptRow, EventRow, MessageFilter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Json, Path, Query};
use super::super::principal::{Principal, Role};
use super::super::{ApiState, now_ms};
use super::{ErrorBody, Page, page_size};
use crate::dto::messages::{AttemptView, EventView, MessageDetail, MessageItem, Requeued};

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_messages))
        .routes(routes!(get_message, cancel_message))
        .routes(routes!(get_raw))
        .routes(routes!(retry_message))
        .routes(routes!(release_message))
        .routes(routes!(delivery_logs))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct MessageQuery {
    /// queued, sending, deferred, delivered, failed, captured
    pub status: Option<String>,
    /// Exact envelope sender.
    pub from: Option<String>,
    /// One envelope recipient.
    pub to: Option<String>,
    /// Created at or after (unix ms).
    pub since: Option<i64>,
    /// Created before (unix ms).
    pub until: Option<i64>,
    /// Admins: one account only.
    pub account_id: Option<i64>,
    /// Search captured mail: `from:`, `to:`, `subject:`, `tag:` (substrings),
    /// `has:attachment`, `is:unread` / `is:read`, `before:` / `after:` `YYYY-MM-DD` (UTC),
    /// and words (each the start of a word of the subject, addresses, text or tags).
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

pub const STATUSES: [&str; 9] = [
    "queued",
    "sending",
    "deferred",
    "delivered",
    "failed",
    "captured",
    "cancelled",
    "bounced",
    "held",
];

/// Searches messages, newest first.
#[utoipa::path(get, path = "/messages", tag = "messages", params(MessageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Page<MessageItem>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_messages(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<MessageQuery>,
) -> Result<axum::Json<Page<MessageItem>>, ApiError> {
    let status = match &query.status {
        None => None,
        Some(text) => Some(text.parse::<MessageStatus>().map_err(|_| {
            ApiError::validation(format!("status is one of {}", STATUSES.join(", ")))
        })?),
    };
    let account_id = who.scope(query.account_id)?;
    let limit = page_size(query.limit);
    let search = match query.q.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(terms) => {
            if status.is_some_and(|s| s != MessageStatus::Captured) {
                return Err(ApiError::validation(
                    "q searches captured mail: use it with status=captured or no status",
                ));
            }
            Some(
                sluice_core::capture_query::CaptureQuery::parse(terms)
                    .map_err(|e| ApiError::validation(format!("q: {e}")))?,
            )
        }
    };
    let filter = MessageFilter {
        account_id,
        status,
        from: query.from,
        to: query.to,
        since: query.since,
        until: query.until,
        before_id: super::cursor(query.cursor.as_deref())?,
        limit,
        query: search,
    };
    let messages = state.store.list_messages(&filter).await?;
    let next_cursor = (messages.len() as i64 == limit)
        .then(|| messages.last().map(|m| m.id.to_string()))
        .flatten();
    Ok(axum::Json(Page {
        items: messages.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One message with its delivery attempts and events.
#[utoipa::path(get, path = "/messages/{id}", tag = "messages", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = MessageDetail), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_message(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<MessageDetail>, ApiError> {
    let m = who.visible(state.store.message(id).await?)?;
    let attempts = state.store.attempts(id).await?;
    let events = state.store.events(id).await?;
    Ok(axum::Json(MessageDetail {
        id: m.id,
        account_id: m.account_id,
        source: m.source.to_string(),
        mail_from: m.mail_from,
        rcpt_to: m.rcpt_to,
        pending_rcpt: m.pending_rcpt,
        status: m.status.to_string(),
        attempts: m.attempts,
        next_attempt_at: m.next_attempt_at,
        last_error: m.last_error,
        size: m.size,
        created_at: m.created_at,
        body_purged_at: m.body_purged_at,
        tags: m.tags,
        delivery_attempts: attempts.into_iter().map(attempt_view).collect(),
        events: events
            .into_iter()
            .map(|e: EventRow| EventView {
                // That event's detail is the whole parsed message: `/parsed` answers it.
                detail: match e.kind == "message.captured" {
                    true => format!("GET /api/v1/messages/{id}/parsed"),
                    false => e.detail,
                },
                kind: e.kind,
                created_at: e.created_at,
            })
            .collect(),
    }))
}

/// The message as stored (RFC 5322, with Sluice's Received header); 410 `body_purged`
/// once retention has emptied it.
#[utoipa::path(get, path = "/messages/{id}/raw", tag = "messages", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, content_type = "message/rfc822", body = String), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn get_raw(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::response::Response, ApiError> {
    let m = who.visible(state.store.message(id).await?)?;
    if m.body_purged_at.is_some() {
        return Err(ApiError::new(
            axum::http::StatusCode::GONE,
            "body_purged",
            "the body was removed by retention (retention.body_days); the envelope, attempts and events remain",
        ));
    }
    let body = match m.body {
        MessageBody::Inline(bytes) => axum::body::Body::from(bytes),
        MessageBody::Stored(stored) => stored_body_stream(&state, stored).await?,
    };
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], body).into_response())
}

/// A stored message streamed from the body store, a chunk at a time: the head this relay
/// added, then the content.
async fn stored_body_stream(
    state: &ApiState,
    stored: sluice_core::StoredBody,
) -> Result<axum::body::Body, ApiError> {
    use futures_util::StreamExt;
    let unreadable = |error: sluice_core::BodyError| {
        tracing::warn!(%error, "stored message body not readable");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "body_unreadable",
            "the message body could not be read from the body store",
        )
    };
    let storage = state
        .store
        .body_storage()
        .ok_or_else(|| unreadable(sluice_core::BodyError::Unavailable("no body store".into())))?;
    let reader = storage
        .reader(&stored.reference)
        .await
        .map_err(unreadable)?;
    let head = futures_util::stream::once(async move { Ok(stored.head) });
    let content = futures_util::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        match reader.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(reader))),
            Ok(None) => None,
            Err(error) => Some((Err(error), None)),
        }
    });
    Ok(axum::body::Body::from_stream(head.chain(content)))
}

/// Queues a failed or deferred message again, due now (members and up).
#[utoipa::path(post, path = "/messages/{id}/retry", tag = "messages", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 202, body = Requeued), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn retry_message(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<(axum::http::StatusCode, axum::Json<Requeued>), ApiError> {
    let message = who.visible(state.store.message(id).await?)?;
    who.require(Role::Member)?;
    if !state.store.requeue_message(id, now_ms()).await? {
        return Err(ApiError::conflict(format!(
            "only failed or deferred messages can be retried; this one is {}",
            message.status
        )));
    }
    state
        .audit(
            &who,
            Some(message.account_id),
            "retry",
            "message",
            id,
            serde_json::json!({}),
        )
        .await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        axum::Json(Requeued {
            id,
            status: "queued".into(),
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// The provider to deliver it through (one the caller can see).
    pub provider_id: i64,
    /// Deliver to these recipients instead of the original ones (at most 100).
    pub to: Option<Vec<String>>,
}

/// Delivers a copy of a captured message after all: queued to go through the chosen
/// provider (not the routing rules), to its recipients or to `to`; each recipient must be
/// on the account's `capture_release_allowlist` when it has one (422
/// `release_not_allowed`). The original stays in the capture inbox, marked released
/// (members and up). Answers the copy's id.
#[utoipa::path(post, path = "/messages/{id}/release", tag = "messages", params(("id" = i64, Path)),
    request_body = ReleaseRequest, security(("bearer" = [])),
    responses((status = 202, body = Requeued), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn release_message(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
    Json(request): Json<ReleaseRequest>,
) -> Result<(axum::http::StatusCode, axum::Json<Requeued>), ApiError> {
    let message = who.visible(state.store.message(id).await?)?;
    who.require(Role::Member)?;
    let provider = state
        .store
        .provider(request.provider_id)
        .await
        .map_err(ApiError::from)
        .and_then(|row| who.visible(row))
        .map_err(|_| ApiError::validation("provider_id names no provider you can use"))?;
    if provider.account_id.is_some_and(|a| a != message.account_id) {
        return Err(ApiError::validation(
            "provider_id belongs to another account",
        ));
    }
    if message.status != MessageStatus::Captured {
        return Err(ApiError::conflict(format!(
            "only captured messages can be released; this one is {}",
            message.status
        )));
    }
    let rcpt_to = match request.to {
        None => message.rcpt_to.clone(),
        Some(to) if to.is_empty() || to.len() > 100 => {
            return Err(ApiError::validation("to holds 1 to 100 recipients"));
        }
        Some(to) => {
            for rcpt in &to {
                sluice_core::validate_mailbox(rcpt)
                    .map_err(|e| ApiError::validation(format!("to: {rcpt}: {e}")))?;
            }
            to
        }
    };
    let account = state
        .store
        .account(message.account_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if let Some(refused) = sluice_core::capture_release::refused_recipient(
        account.capture_release_allowlist.as_deref(),
        &rcpt_to,
    ) {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "release_not_allowed",
            format!("{refused} is not on the account's capture_release_allowlist"),
        ));
    }
    let copy = release_copy(&state, &message, rcpt_to.clone()).await?;
    let Some(copy_id) = state
        .store
        .release_captured_copy(id, &copy, provider.id, now_ms())
        .await?
    else {
        return Err(ApiError::conflict(
            "only captured messages can be released; this one changed meanwhile",
        ));
    };
    state
        .audit(
            &who,
            Some(message.account_id),
            "release",
            "message",
            id,
            serde_json::json!({ "provider_id": provider.id, "copy": copy_id, "to": rcpt_to }),
        )
        .await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        axum::Json(Requeued {
            id: copy_id,
            status: "queued".into(),
        }),
    ))
}

/// The released copy: the captured message's bytes (a large one written to the body store
/// again, so each message owns its body), its sender, the chosen recipients.
async fn release_copy(
    state: &ApiState,
    message: &sluice_store::MessageRecord,
    rcpt_to: Vec<String>,
) -> Result<sluice_store::NewMessage, ApiError> {
    let unreadable = |error: sluice_core::BodyError| {
        tracing::warn!(%error, "captured body not readable for a release");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "body_unreadable",
            "the message body could not be read from the body store",
        )
    };
    let storage = state.store.body_storage();
    let bytes = sluice_core::body::read_whole(storage.as_deref(), &message.body)
        .await
        .map_err(unreadable)?;
    // 8BITMIME is asked for only when the content needs it.
    let eight_bit = !bytes.is_ascii();
    let body = match &storage {
        Some(storage) if bytes.len() > 256 * 1024 => {
            let stored = sluice_core::body::store_body(storage.as_ref(), Vec::new(), &bytes)
                .await
                .map_err(unreadable)?;
            storage
                .sync(&[stored.reference.as_slice()])
                .await
                .map_err(unreadable)?;
            MessageBody::Stored(stored)
        }
        _ => MessageBody::Inline(bytes),
    };
    let smtputf8 = !rcpt_to
        .iter()
        .chain([&message.mail_from])
        .all(|a| a.is_ascii());
    Ok(sluice_store::NewMessage {
        account_id: message.account_id,
        source: message.source,
        envelope: sluice_core::Envelope {
            mail_from: message.mail_from.clone(),
            rcpt_to,
            smtputf8,
            eight_bit,
        },
        body,
        lease: None,
        tags: Vec::new(),
        max_attempts: None,
        sandbox: false,
        idempotency: None,
    })
}

/// Cancels a message not yet delivered (queued, deferred or held), or deletes a captured one with
/// its attempts and events (members and up).
#[utoipa::path(delete, path = "/messages/{id}", tag = "messages", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel_message(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::http::StatusCode, ApiError> {
    let message = who.visible(state.store.message(id).await?)?;
    who.require(Role::Member)?;
    if message.status == sluice_core::MessageStatus::Captured
        && state.store.delete_captured_message(id).await?
    {
        state
            .audit(
                &who,
                Some(message.account_id),
                "delete",
                "message",
                id,
                serde_json::json!({}),
            )
            .await?;
        return Ok(axum::http::StatusCode::NO_CONTENT);
    }
    if !state.store.cancel_message(id, now_ms()).await? {
        return Err(ApiError::conflict(format!(
            "only queued, deferred or held messages can be cancelled (and captured ones deleted); this one is {}",
            message.status
        )));
    }
    state
        .audit(
            &who,
            Some(message.account_id),
            "cancel",
            "message",
            id,
            serde_json::json!({}),
        )
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DeliveryLogQuery {
    pub message_id: i64,
}

/// The delivery attempts of one message.
#[utoipa::path(get, path = "/delivery-logs", tag = "messages", params(DeliveryLogQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<AttemptView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delivery_logs(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<DeliveryLogQuery>,
) -> Result<axum::Json<Vec<AttemptView>>, ApiError> {
    who.visible(state.store.message(query.message_id).await?)?;
    let attempts = state.store.attempts(query.message_id).await?;
    Ok(axum::Json(attempts.into_iter().map(attempt_view).collect()))
}

fn attempt_view(a: AttemptRow) -> AttemptView {
    AttemptView {
        provider: a.provider,
        provider_id: a.provider_id,
        provider_message_id: a.provider_message_id,
        verdict: a.verdict.as_str().into(),
        code: a.code,
        response: a.response,
        started_at: a.started_at,
        finished_at: a.finished_at,
    }
}
