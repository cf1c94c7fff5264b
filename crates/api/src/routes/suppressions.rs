//! The suppression list: addresses an account may not send to. Sending to one is refused
//! at accept (SMTP 550 5.1.1 on that RCPT; HTTP 422 naming it) until the entry expires.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use sluice_core::SuppressionReason;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Json, Path, Query};
use super::super::principal::{Principal, Role};
use super::super::{ApiState, now_ms};
use super::{AccountQuery, ErrorBody, Removal, live_account, remove_account_row};
use crate::dto::suppressions::SuppressionView;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(add_suppression, list_suppressions))
        .routes(routes!(delete_suppression))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSuppression {
    pub address: String,
    /// hard_bounce | complaint | manual (default)
    pub reason: Option<String>,
    /// Unix ms; absent: until deleted.
    pub expires_at: Option<i64>,
    /// Admins: the account.
    pub account_id: Option<i64>,
}

/// Adds (or renews) a suppression (members and up).
#[utoipa::path(post, path = "/suppressions", tag = "suppressions", request_body = AddSuppression,
    security(("bearer" = [])),
    responses((status = 201, body = SuppressionView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_suppression(
    State(state): State<ApiState>,
    who: Principal,
    Json(body): Json<AddSuppression>,
) -> Result<(StatusCode, axum::Json<SuppressionView>), ApiError> {
    who.require(Role::Member)?;
    let account = live_account(&state, &who, body.account_id).await?;
    sluice_core::validate_mailbox(&body.address)
        .map_err(|e| ApiError::validation(format!("address: {e}")))?;
    let reason: SuppressionReason = match &body.reason {
        None => SuppressionReason::Manual,
        Some(text) => text
            .parse()
            .map_err(|_| ApiError::validation("reason is hard_bounce, complaint or manual"))?,
    };
    let row = state
        .store
        .add_suppression(
            account,
            &body.address,
            reason,
            "api",
            body.expires_at,
            now_ms(),
        )
        .await?;
    let changes = serde_json::json!({ "address": row.address, "reason": row.reason, "expires_at": row.expires_at });
    state
        .audit(
            &who,
            Some(account),
            "create",
            "suppression",
            row.id,
            changes,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

/// The account's suppressions.
#[utoipa::path(get, path = "/suppressions", tag = "suppressions", params(AccountQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<SuppressionView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn list_suppressions(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<AccountQuery>,
) -> Result<axum::Json<Vec<SuppressionView>>, ApiError> {
    let account = live_account(&state, &who, query.account_id).await?;
    let rows = state.store.list_suppressions(account).await?;
    Ok(axum::Json(rows.into_iter().map(Into::into).collect()))
}

/// Removes a suppression (members and up): the address may be sent to again.
#[utoipa::path(delete, path = "/suppressions/{id}", tag = "suppressions", params(("id" = i64, Path), AccountQuery),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_suppression(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
    Query(query): Query<AccountQuery>,
) -> Result<StatusCode, ApiError> {
    remove_account_row(
        &state,
        &who,
        query.account_id,
        id,
        Removal {
            role: Role::Member,
            action: "delete",
            target_type: "suppression",
        },
        state.store.suppression(id),
        // Deleting answers 204 whether or not a row went (a concurrent delete may have won).
        |account| {
            let store = &state.store;
            async move { store.delete_suppression(account, id).await.map(|_| true) }
        },
    )
    .await
}
