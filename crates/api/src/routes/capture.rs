//! The capture sandbox's message routes: read marks, the parsed message (the same JSON
//! as the `message.captured` event), its attachments, and deleting captured mail in bulk.
//! Search is `GET /messages?q=` (`messages.rs`).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mail_parser::{MessageParser, MimeHeaders};
use sluice_api_dto::parsed::{ParsedMessage, StoredFacts};
use sluice_store::{CapturedSelection, MessageRecord};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Json, Path};
use super::super::principal::{Principal, Role};
use super::super::{ApiState, now_ms};
use super::ErrorBody;
use crate::dto::messages::{DeleteCaptured, DeletedCaptured, ReadMark};

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(mark_read))
        .routes(routes!(mark_unread))
        .routes(routes!(get_parsed))
        .routes(routes!(get_attachment))
        .routes(routes!(delete_captured))
        .routes(routes!(synthetic_feedback))
        .routes(routes!(set_tags))
}

/// `PUT /messages/{id}/tags`: the tags set by hand.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagsRequest {
    /// Replace the tags the sender set (the send API's `tags`, earlier hand edits); the
    /// ones the message carries (`X-Tags`, `user+tag@` recipients) stay.
    pub tags: Vec<String>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TagsSet {
    pub id: i64,
    /// The message's tags now, as list, search and `/parsed` show them.
    pub tags: Vec<String>,
}

/// `POST /messages/{id}/feedback`: what an email service would report for a recipient.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyntheticFeedback {
    /// `delivered`, `deferred`, `bounced` (hard), `soft_bounced` or `complained`.
    pub kind: String,
    /// One of the message's recipients; default: the first.
    pub recipient: Option<String>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FeedbackApplied {
    pub id: i64,
    /// The event recorded on the message (`feedback_delivered`, `bounced_hard`, ...).
    pub event: String,
    pub recipient: String,
    /// The address is now on the account's suppression list (hard bounce, complaint).
    pub suppressed: bool,
}

/// At most this many ids in one bulk delete.
const MAX_IDS: usize = 1000;

/// Marks a message read (the inbox's unread mark).
#[utoipa::path(post, path = "/messages/{id}/read", tag = "messages", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ReadMark), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn mark_read(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<ReadMark>, ApiError> {
    set_read(&state, &who, id, true).await
}

/// Marks a message unread.
#[utoipa::path(post, path = "/messages/{id}/unread", tag = "messages", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ReadMark), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn mark_unread(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<ReadMark>, ApiError> {
    set_read(&state, &who, id, false).await
}

async fn set_read(
    state: &ApiState,
    who: &Principal,
    id: i64,
    read: bool,
) -> Result<axum::Json<ReadMark>, ApiError> {
    who.visible(state.store.message(id).await?)?;
    if !state.store.set_message_read(id, read, now_ms()).await? {
        return Err(ApiError::not_found());
    }
    Ok(axum::Json(ReadMark { id, read }))
}

/// The message parsed: envelope, headers, addresses, subject, text, HTML, tags and
/// attachments (each with a download URL). The `message.captured` event's `data`.
#[utoipa::path(get, path = "/messages/{id}/parsed", tag = "messages", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ParsedMessage), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn get_parsed(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<ParsedMessage>, ApiError> {
    parsed_message(&state, &who, id).await.map(axum::Json)
}

/// A message the caller may see, parsed (`/parsed`, the checks); the same facts the
/// capture indexer parses with, so the answer equals the `message.captured` event's data.
pub(super) async fn parsed_message(
    state: &ApiState,
    who: &Principal,
    id: i64,
) -> Result<ParsedMessage, ApiError> {
    let message = who.visible(state.store.message(id).await?)?;
    let raw = whole_message(state, &message).await?;
    Ok(ParsedMessage::parse(
        &raw,
        StoredFacts {
            id,
            account_id: message.account_id,
            received_at: message.created_at,
            mail_from: message.mail_from,
            rcpt_to: message.rcpt_to,
            tags: message.tags,
        },
    ))
}

/// One attachment's decoded bytes (`n` counts from 0 as in `/parsed`), always as a
/// download, never rendered.
#[utoipa::path(get, path = "/messages/{id}/attachments/{n}", tag = "messages",
    params(("id" = i64, Path), ("n" = usize, Path)), security(("bearer" = [])),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn get_attachment(
    State(state): State<ApiState>,
    who: Principal,
    Path((id, n)): Path<(i64, usize)>,
) -> Result<Response, ApiError> {
    let message = who.visible(state.store.message(id).await?)?;
    let raw = whole_message(&state, &message).await?;
    let parsed = MessageParser::default()
        .parse(&raw)
        .ok_or_else(ApiError::not_found)?;
    let part = parsed
        .attachment(n as u32)
        .ok_or_else(ApiError::not_found)?;
    let content_type = part
        .content_type()
        .map(|c| match c.subtype() {
            Some(sub) => format!("{}/{}", c.ctype(), sub),
            None => c.ctype().to_string(),
        })
        .filter(|t| {
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/.+-_".contains(&b))
        })
        .unwrap_or_else(|| "application/octet-stream".into());
    let file_name: String = part
        .attachment_name()
        .unwrap_or("attachment")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._- ".contains(*c))
        .collect();
    let mut response = part.contents().to_vec().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\""))
            .unwrap_or(HeaderValue::from_static("attachment")),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    Ok(response)
}

/// Deletes captured mail: the listed ids (ids of other accounts, or not captured, are left
/// alone), or with `"all": true` all of it (members and up).
#[utoipa::path(post, path = "/messages/delete-captured", tag = "messages",
    request_body = DeleteCaptured, security(("bearer" = [])),
    responses((status = 200, body = DeletedCaptured), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn delete_captured(
    State(state): State<ApiState>,
    who: Principal,
    Json(request): Json<DeleteCaptured>,
) -> Result<axum::Json<DeletedCaptured>, ApiError> {
    who.require(Role::Member)?;
    let account_id = who.scope(request.account_id)?;
    let selection = match (request.all, request.ids.is_empty()) {
        (true, true) => CapturedSelection::All,
        (false, false) if request.ids.len() <= MAX_IDS => CapturedSelection::Ids(request.ids),
        (false, false) => {
            return Err(ApiError::validation(format!(
                "ids holds at most {MAX_IDS} ids"
            )));
        }
        _ => {
            return Err(ApiError::validation(
                "give either ids (a non-empty list) or \"all\": true",
            ));
        }
    };
    let deleted = state.store.delete_captured(account_id, &selection).await?;
    state
        .audit(
            &who,
            account_id,
            "delete_captured",
            "message",
            0,
            serde_json::json!({
                "deleted": deleted,
                "all": matches!(selection, CapturedSelection::All),
            }),
        )
        .await?;
    Ok(axum::Json(DeletedCaptured { deleted }))
}

/// Fires feedback for a captured message exactly as an email service's webhook would:
/// the event on the message (posted to the tenant's event webhooks) and, for a hard
/// bounce or a complaint, the recipient on the account's suppression list (members and up).
#[utoipa::path(post, path = "/messages/{id}/feedback", tag = "messages", params(("id" = i64, Path)),
    request_body = SyntheticFeedback, security(("bearer" = [])),
    responses((status = 200, body = FeedbackApplied), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn synthetic_feedback(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
    Json(request): Json<SyntheticFeedback>,
) -> Result<axum::Json<FeedbackApplied>, ApiError> {
    use sluice_core::feedback::{FeedbackEvent, FeedbackKind};
    let message = who.visible(state.store.message(id).await?)?;
    who.require(Role::Member)?;
    let kind = match request.kind.as_str() {
        "delivered" => FeedbackKind::Delivered,
        "deferred" => FeedbackKind::Deferred,
        "bounced" => FeedbackKind::Bounced { hard: true },
        "soft_bounced" => FeedbackKind::Bounced { hard: false },
        "complained" => FeedbackKind::Complained,
        _ => {
            return Err(ApiError::validation(
                "kind is one of delivered, deferred, bounced, soft_bounced, complained",
            ));
        }
    };
    if message.status != sluice_core::MessageStatus::Captured {
        return Err(ApiError::conflict(format!(
            "synthetic feedback is for captured mail; this message is {}",
            message.status
        )));
    }
    let recipient = match request.recipient {
        None => message.rcpt_to.first().cloned().unwrap_or_default(),
        Some(named) => message
            .rcpt_to
            .iter()
            .find(|r| r.eq_ignore_ascii_case(&named))
            .cloned()
            .ok_or_else(|| ApiError::validation("recipient is not a recipient of the message"))?,
    };
    let event = FeedbackEvent {
        kind,
        recipient: recipient.clone(),
        provider_message_id: String::new(),
        detail: format!("{} (synthetic, from the capture sandbox)", request.kind),
    };
    sluice_feedback::apply_event(
        state.store.as_ref(),
        id,
        message.account_id,
        &event,
        "synthetic",
        "capture",
        now_ms(),
    )
    .await?;
    state
        .audit(
            &who,
            Some(message.account_id),
            "synthetic_feedback",
            "message",
            id,
            serde_json::json!({ "kind": request.kind, "recipient": recipient }),
        )
        .await?;
    Ok(axum::Json(FeedbackApplied {
        id,
        event: kind.event_kind().to_string(),
        recipient,
        suppressed: kind.suppression_reason().is_some(),
    }))
}

/// Tags a captured message by hand (members and up): the list replaces the sender's
/// tags; search (`tag:`), the inbox list and `/parsed` show the result.
#[utoipa::path(put, path = "/messages/{id}/tags", tag = "messages", params(("id" = i64, Path)),
    request_body = TagsRequest, security(("bearer" = [])),
    responses((status = 200, body = TagsSet), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_tags(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
    Json(request): Json<TagsRequest>,
) -> Result<axum::Json<TagsSet>, ApiError> {
    let message = who.visible(state.store.message(id).await?)?;
    who.require(Role::Member)?;
    let mut sender_tags: Vec<String> = Vec::new();
    for tag in request.tags.iter().map(|t| t.trim().to_lowercase()) {
        if !sender_tags.contains(&tag) {
            sender_tags.push(tag);
        }
    }
    super::send::check_tags(&sender_tags)?;
    if message.status != sluice_core::MessageStatus::Captured {
        return Err(ApiError::conflict(format!(
            "tags are set by hand on captured mail; this message is {}",
            message.status
        )));
    }
    let head = header_section(&state, &message).await?;
    let x_tags = MessageParser::default()
        .parse_headers(&head)
        .and_then(|m| m.header_raw("X-Tags").map(str::to_string))
        .unwrap_or_default();
    let effective = sluice_api_dto::parsed::tags_of(&sender_tags, &x_tags, &message.rcpt_to);
    if !state
        .store
        .set_captured_tags(id, &sender_tags, &effective)
        .await?
    {
        return Err(ApiError::conflict("the message is no longer captured"));
    }
    state
        .audit(
            &who,
            Some(message.account_id),
            "set_tags",
            "message",
            id,
            serde_json::json!({ "tags": sender_tags }),
        )
        .await?;
    Ok(axum::Json(TagsSet {
        id,
        tags: effective,
    }))
}

/// The message's header section: of a stored body only the first chunks are read (the
/// whole message when the section does not end within 256 KiB).
async fn header_section(state: &ApiState, message: &MessageRecord) -> Result<Vec<u8>, ApiError> {
    if let (sluice_core::MessageBody::Stored(stored), Some(storage), None) = (
        &message.body,
        state.store.body_storage(),
        message.body_purged_at,
    ) && let Ok(Some(split)) =
        sluice_core::split_body::SplitBody::split(storage, stored, b"", 256 * 1024).await
    {
        return Ok(split.head);
    }
    whole_message(state, message).await
}

/// The whole stored message; 410 `body_purged` once retention emptied it.
pub(super) async fn whole_message(
    state: &ApiState,
    message: &MessageRecord,
) -> Result<Vec<u8>, ApiError> {
    if message.body_purged_at.is_some() {
        return Err(ApiError::new(
            StatusCode::GONE,
            "body_purged",
            "the body was removed by retention (retention.body_days)",
        ));
    }
    let storage = state.store.body_storage();
    sluice_core::body::read_whole(storage.as_deref(), &message.body)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "stored message body not readable");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "body_unreadable",
                "the message body could not be read from the body store",
            )
        })
}
