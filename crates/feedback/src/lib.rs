//! Feedback webhooks from the email services:
//! `POST /webhooks/{sendgrid|mailgun|ses}/{provider_id}`. No bearer token: each request is
//! verified with the service's own signature (401 and nothing changed when it does not
//! verify), accepted once, normalised (`sluice_core::feedback`) and applied: an event on
//! the message, `bounced` for a single-recipient message that hard-bounced, and a
//! suppression for hard bounces and complaints. Mounted by the API's router
//! (`sluice-api`), whose state gives the routes a [`FeedbackContext`].

pub mod verify;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_core::feedback::{
    FeedbackEvent, FeedbackKind, mailgun_events, sendgrid_events, ses_events,
};
use sluice_core::{ProviderConfig, ProviderType};
use sluice_store::ProviderRow;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use std::sync::Arc;

use axum::extract::FromRef;
use sluice_api_error::{ApiError, ErrorBody, Path};
use sluice_core::sealed::MasterKey;
use sluice_store::Store;
use verify::Refused;

/// What feedback verification needs from config.
pub struct FeedbackState {
    pub max_age_secs: i64,
    pub certificates: verify::SnsCertificates,
}

/// What the feedback routes read: the store, the key that opens providers' secrets, and
/// how feedback is verified. Taken from the router's state (`FromRef`).
#[derive(Clone)]
pub struct FeedbackContext {
    pub store: Arc<dyn Store>,
    pub master_key: Arc<MasterKey>,
    pub feedback: Arc<FeedbackState>,
}

/// The three feedback routes, for a router whose state gives a [`FeedbackContext`].
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    FeedbackContext: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(sendgrid_feedback))
        .routes(routes!(mailgun_feedback))
        .routes(routes!(ses_feedback))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeedbackReply {
    pub ok: bool,
    /// Events in the request that Sluice understands.
    pub events: usize,
    /// Of those, events about a message Sluice sent through this provider.
    pub matched: usize,
    /// The request was seen before and not applied again.
    pub duplicate: bool,
}

impl FeedbackReply {
    /// Answered for requests that apply no events (confirmations, other SNS types).
    fn nothing(duplicate: bool) -> axum::Json<FeedbackReply> {
        axum::Json(FeedbackReply {
            ok: true,
            events: 0,
            matched: 0,
            duplicate,
        })
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        tracing::info!(reason = %refused, "feedback refused");
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            refused.to_string(),
        )
    }
}

/// SendGrid Event Webhook, signed (ECDSA) with the provider's `webhook_verification_key`.
#[utoipa::path(post, path = "/webhooks/sendgrid/{provider_id}", tag = "feedback",
    params(("provider_id" = i64, Path)), request_body(content = Vec<Object>, description = "SendGrid events"),
    responses((status = 200, body = FeedbackReply), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn sendgrid_feedback(
    State(state): State<FeedbackContext>,
    Path(provider_id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<FeedbackReply>, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (
        header("x-twilio-email-event-webhook-signature"),
        header("x-twilio-email-event-webhook-timestamp"),
    ) else {
        return Err(Refused::Missing.into());
    };
    let (provider, config) = provider_of(&state, provider_id, ProviderType::Sendgrid).await?;
    let ProviderConfig::Sendgrid(config) = config else {
        return Err(ApiError::not_found());
    };
    let key = config.webhook_verification_key.ok_or(Refused::NoKey)?;
    let now = now_ms() / 1000;
    verify::sendgrid(
        &key,
        signature,
        timestamp,
        &body,
        now,
        state.feedback.max_age_secs,
    )?;
    if !first_time(&state, &format!("sendgrid:{signature}")).await? {
        return Ok(FeedbackReply::nothing(true));
    }
    let payload: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::validation("the body is not a JSON array of events"))?;
    apply(&state, &provider, "sendgrid", sendgrid_events(&payload)).await
}

/// Mailgun webhook, signed (HMAC) with the provider's `webhook_signing_key`.
#[utoipa::path(post, path = "/webhooks/mailgun/{provider_id}", tag = "feedback",
    params(("provider_id" = i64, Path)), request_body(content = Object, description = "Mailgun event"),
    responses((status = 200, body = FeedbackReply), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn mailgun_feedback(
    State(state): State<FeedbackContext>,
    Path(provider_id): Path<i64>,
    body: Bytes,
) -> Result<axum::Json<FeedbackReply>, ApiError> {
    // The signature travels in the body: no JSON, no signature.
    let payload: Value = serde_json::from_slice(&body).map_err(|_| Refused::Missing)?;
    if !payload["signature"].is_object() {
        return Err(Refused::Missing.into());
    }
    let (provider, config) = provider_of(&state, provider_id, ProviderType::Mailgun).await?;
    let ProviderConfig::Mailgun(config) = config else {
        return Err(ApiError::not_found());
    };
    let key = config.webhook_signing_key.ok_or(Refused::NoKey)?;
    let now = now_ms() / 1000;
    let token = verify::mailgun(&key, &payload, now, state.feedback.max_age_secs)?;
    if !first_time(&state, &format!("mailgun:{token}")).await? {
        return Ok(FeedbackReply::nothing(true));
    }
    apply(&state, &provider, "mailgun", mailgun_events(&payload)).await
}

/// Amazon SES events through SNS: the SNS signature is checked against its certificate;
/// subscription confirmations are confirmed.
#[utoipa::path(post, path = "/webhooks/ses/{provider_id}", tag = "feedback",
    params(("provider_id" = i64, Path)), request_body(content = Object, description = "SNS message"),
    responses((status = 200, body = FeedbackReply), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn ses_feedback(
    State(state): State<FeedbackContext>,
    Path(provider_id): Path<i64>,
    body: Bytes,
) -> Result<axum::Json<FeedbackReply>, ApiError> {
    let message: Value = serde_json::from_slice(&body).map_err(|_| Refused::Missing)?;
    if !message["Signature"].is_string() {
        return Err(Refused::Missing.into());
    }
    let (provider, _) = provider_of(&state, provider_id, ProviderType::Ses).await?;
    state.feedback.certificates.verify(&message).await?;
    let id = message["MessageId"].as_str().unwrap_or_default();
    match message["Type"].as_str() {
        Some("SubscriptionConfirmation") => {
            confirm_subscription(&state, &message).await?;
            Ok(FeedbackReply::nothing(false))
        }
        Some("Notification") => {
            if !first_time(&state, &format!("sns:{id}")).await? {
                return Ok(FeedbackReply::nothing(true));
            }
            let inner: Value = message["Message"]
                .as_str()
                .and_then(|m| serde_json::from_str(m).ok())
                .ok_or_else(|| ApiError::validation("the notification's Message is not JSON"))?;
            apply(&state, &provider, "ses", ses_events(&inner)).await
        }
        _ => Ok(FeedbackReply::nothing(false)),
    }
}

async fn confirm_subscription(state: &FeedbackContext, message: &Value) -> Result<(), ApiError> {
    let url = message["SubscribeURL"].as_str().unwrap_or_default();
    if !state.feedback.certificates.url_allowed(url) {
        return Err(Refused::CertificateUrl.into());
    }
    let fetched = state.feedback.certificates.fetch(url).await;
    if let Err(why) = &fetched {
        tracing::warn!(%why, "SNS SubscribeURL not fetched");
    }
    let confirmed = fetched.is_ok();
    tracing::info!(
        topic = message["TopicArn"].as_str().unwrap_or_default(),
        confirmed,
        "SNS subscription confirmation"
    );
    if !confirmed {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "confirmation_failed",
            "the SubscribeURL could not be fetched",
        ));
    }
    Ok(())
}

/// The provider and its settings (secrets opened); 404 unless it is of this type.
async fn provider_of(
    state: &FeedbackContext,
    id: i64,
    provider_type: ProviderType,
) -> Result<(ProviderRow, ProviderConfig), ApiError> {
    let row = state
        .store
        .provider(id)
        .await?
        .filter(|p| p.provider_type == provider_type)
        .ok_or_else(ApiError::not_found)?;
    let config = sluice_core::provider_spec::open_config(
        &state.master_key,
        row.provider_type,
        &row.config,
        &row.secrets,
    )
    .map_err(|problem| {
        tracing::error!(provider_id = row.id, %problem, "provider unusable for feedback");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "provider_unusable",
            "the provider's stored settings are not usable",
        )
    })?;
    Ok((row, config))
}

/// Remembers a request's identity for a day; false if it was seen already.
async fn first_time(state: &FeedbackContext, identity: &str) -> Result<bool, ApiError> {
    let now = now_ms();
    Ok(state
        .store
        .remember_signature(identity, now + 86_400_000, now)
        .await?)
}

async fn apply(
    state: &FeedbackContext,
    provider: &ProviderRow,
    service: &str,
    events: Vec<FeedbackEvent>,
) -> Result<axum::Json<FeedbackReply>, ApiError> {
    let now = now_ms();
    let mut matched = 0;
    for event in &events {
        let found = state
            .store
            .message_by_provider_message_id(provider.id, &event.provider_message_id)
            .await?;
        // A tenant's provider speaks only for that tenant's messages.
        let Some((message_id, account_id)) =
            found.filter(|(_, account)| provider.account_id.is_none_or(|a| a == *account))
        else {
            continue;
        };
        matched += 1;
        apply_event(
            state.store.as_ref(),
            message_id,
            account_id,
            event,
            &format!("{service}:{}", provider.id),
            &provider.name,
            now,
        )
        .await?;
    }
    metrics::counter!("sluice_feedback_events_total", "service" => service.to_string())
        .increment(events.len() as u64);
    Ok(axum::Json(FeedbackReply {
        ok: true,
        events: events.len(),
        matched,
        duplicate: false,
    }))
}

/// Records one feedback event on its message (the event, posted to the tenant's
/// webhooks; a hard bounce of a delivered single-recipient message makes it `bounced`) and
/// the suppression it implies. `source` names where it came from (`sendgrid:7`,
/// `synthetic`); `provider` labels the metrics. The services' webhooks and the capture
/// sandbox's synthetic feedback both come here, so they have the same effects.
pub async fn apply_event(
    store: &dyn Store,
    message_id: sluice_core::MessageId,
    account_id: sluice_core::AccountId,
    event: &FeedbackEvent,
    source: &str,
    provider: &str,
    now: i64,
) -> Result<(), sluice_store::StoreError> {
    let service = source.split(':').next().unwrap_or(source);
    let detail = format!("{service}: {} {}", event.recipient, event.detail)
        .trim_end()
        .to_string();
    let bounced = matches!(
        event.kind,
        FeedbackKind::Bounced { hard: true } | FeedbackKind::Dropped
    );
    store
        .record_feedback(
            message_id,
            account_id,
            event.kind.event_kind(),
            &detail,
            bounced,
            now,
        )
        .await?;
    metrics::counter!(
        "sluice_feedback_total",
        "kind" => event.kind.event_kind(),
        "account" => account_id.to_string(),
        "provider" => provider.to_string()
    )
    .increment(1);
    if bounced {
        metrics::counter!(
            "sluice_messages_total",
            "status" => "bounced",
            "account" => account_id.to_string(),
            "provider" => provider.to_string()
        )
        .increment(1);
    }
    if let Some(reason) = event.kind.suppression_reason() {
        store
            .add_suppression(account_id, &event.recipient, reason, source, None, now)
            .await?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
