//! Tenants' event webhooks: where message events are POSTed (url, the event kinds, a
//! signing secret shown once), and the log of every post and its attempts.

use axum::extract::State;
use axum::http::StatusCode;
use rand::RngCore;
use serde::Deserialize;
use sluice_core::message::PUBLISHED_EVENT_KINDS;
use sluice_store::{NewWebhookEndpoint, WebhookEndpointRow};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::destinations;
use super::super::error::{ApiError, Json, Path, Query};
use super::super::principal::{Principal, Role};
use super::super::{ApiState, now_ms};
use super::{AccountQuery, ErrorBody, live_account};
use crate::dto::webhook_endpoints::{DeliveryView, EndpointView};

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_endpoint, list_endpoints))
        .routes(routes!(get_endpoint, replace_endpoint, delete_endpoint))
        .routes(routes!(list_deliveries))
}

fn view(row: WebhookEndpointRow, secret: Option<String>) -> EndpointView {
    EndpointView {
        id: row.id,
        account_id: row.account_id,
        url: row.url,
        events: row.events,
        enabled: row.enabled,
        secret,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointBody {
    /// http(s) URL the events are POSTed to.
    pub url: String,
    /// Event kinds, or `["*"]` for all.
    pub events: Vec<String>,
    /// At least 16 characters; absent: generated on create, kept on replace.
    pub secret: Option<String>,
    pub enabled: Option<bool>,
    /// Admins: the account.
    pub account_id: Option<i64>,
}

/// The body's fields; the URL's host through the egress policy (webhooks' variant).
async fn checked(state: &ApiState, body: &EndpointBody) -> Result<(), ApiError> {
    let url =
        reqwest::Url::parse(&body.url).map_err(|_| ApiError::validation("url is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ApiError::validation("url must be http(s) with a host"));
    }
    if body.events.is_empty() || body.events.len() > PUBLISHED_EVENT_KINDS.len() {
        return Err(ApiError::validation("events must name at least one kind"));
    }
    if let Some(unknown) = body
        .events
        .iter()
        .find(|e| !PUBLISHED_EVENT_KINDS.contains(&e.as_str()))
    {
        return Err(ApiError::validation(format!(
            "events: {unknown:?} is not one of {}",
            PUBLISHED_EVENT_KINDS.join(", ")
        )));
    }
    if body
        .secret
        .as_ref()
        .is_some_and(|s| s.len() < 16 || s.len() > 200)
    {
        return Err(ApiError::validation("secret must be 16 to 200 characters"));
    }
    destinations::check_url(&state.webhook_egress, "url", &body.url).await
}

/// Adds an event webhook endpoint (owners and admins); the answer holds its secret once.
#[utoipa::path(post, path = "/webhook-endpoints", tag = "webhook-endpoints", request_body = EndpointBody,
    security(("bearer" = [])),
    responses((status = 201, body = EndpointView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_endpoint(
    State(state): State<ApiState>,
    who: Principal,
    Json(body): Json<EndpointBody>,
) -> Result<(StatusCode, axum::Json<EndpointView>), ApiError> {
    who.require(Role::Owner)?;
    let account = live_account(&state, &who, body.account_id).await?;
    checked(&state, &body).await?;
    let secret = body.secret.clone().unwrap_or_else(|| {
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        sluice_core::secret::new_secret("whsec", random).value
    });
    let row = state
        .store
        .create_webhook_endpoint(
            &NewWebhookEndpoint {
                account_id: account,
                url: body.url.clone(),
                events: body.events.clone(),
                secret: state.seal_bytes(secret.as_bytes()),
                enabled: body.enabled.unwrap_or(true),
            },
            now_ms(),
        )
        .await?;
    let changes =
        serde_json::json!({ "url": row.url, "events": row.events, "enabled": row.enabled });
    state
        .audit(
            &who,
            Some(account),
            "create",
            "webhook_endpoint",
            row.id,
            changes,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(view(row, Some(secret)))))
}

/// The account's event webhook endpoints.
#[utoipa::path(get, path = "/webhook-endpoints", tag = "webhook-endpoints", params(AccountQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<EndpointView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn list_endpoints(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<AccountQuery>,
) -> Result<axum::Json<Vec<EndpointView>>, ApiError> {
    let account = live_account(&state, &who, query.account_id).await?;
    let rows = state.store.list_webhook_endpoints(Some(account)).await?;
    Ok(axum::Json(
        rows.into_iter().map(|r| view(r, None)).collect(),
    ))
}

/// One endpoint (its secret is not shown).
#[utoipa::path(get, path = "/webhook-endpoints/{id}", tag = "webhook-endpoints", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = EndpointView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_endpoint(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<EndpointView>, ApiError> {
    Ok(axum::Json(view(
        who.visible(state.store.webhook_endpoint(id).await?)?,
        None,
    )))
}

/// Replaces an endpoint's url, events, enabled and (when given) secret.
#[utoipa::path(put, path = "/webhook-endpoints/{id}", tag = "webhook-endpoints", params(("id" = i64, Path)),
    request_body = EndpointBody, security(("bearer" = [])),
    responses((status = 200, body = EndpointView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn replace_endpoint(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
    Json(body): Json<EndpointBody>,
) -> Result<axum::Json<EndpointView>, ApiError> {
    let existing = who.visible(state.store.webhook_endpoint(id).await?)?;
    who.require(Role::Owner)?;
    checked(&state, &body).await?;
    let secret = match &body.secret {
        Some(new) => state.seal_bytes(new.as_bytes()),
        None => existing.secret.clone(),
    };
    let row = state
        .store
        .replace_webhook_endpoint(
            id,
            &NewWebhookEndpoint {
                account_id: existing.account_id,
                url: body.url.clone(),
                events: body.events.clone(),
                secret,
                enabled: body.enabled.unwrap_or(existing.enabled),
            },
            now_ms(),
        )
        .await?
        .ok_or_else(ApiError::not_found)?;
    let changes = serde_json::json!({ "url": row.url, "events": row.events, "enabled": row.enabled,
        "secret_replaced": body.secret.is_some() });
    state
        .audit(
            &who,
            Some(row.account_id),
            "update",
            "webhook_endpoint",
            id,
            changes,
        )
        .await?;
    Ok(axum::Json(view(row, None)))
}

/// Deletes an endpoint and its pending posts.
#[utoipa::path(delete, path = "/webhook-endpoints/{id}", tag = "webhook-endpoints", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_endpoint(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let existing = who.visible(state.store.webhook_endpoint(id).await?)?;
    who.require(Role::Owner)?;
    state.store.delete_webhook_endpoint(id).await?;
    state
        .audit(
            &who,
            Some(existing.account_id),
            "delete",
            "webhook_endpoint",
            id,
            serde_json::json!({ "url": existing.url }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The endpoint's latest posts (up to 100), newest first, with every attempt.
#[utoipa::path(get, path = "/webhook-endpoints/{id}/deliveries", tag = "webhook-endpoints",
    params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = Vec<DeliveryView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_deliveries(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<Vec<DeliveryView>>, ApiError> {
    who.visible(state.store.webhook_endpoint(id).await?)?;
    let rows = state.store.list_webhook_deliveries(id, 100).await?;
    Ok(axum::Json(rows.into_iter().map(Into::into).collect()))
}
