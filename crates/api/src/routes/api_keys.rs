//! API keys: 32 random bytes, shown once, stored as SHA-256; listed by prefix only.

use axum::extract::State;
use axum::http::StatusCode;
use rand::RngCore;
use serde::Deserialize;
use sluice_core::secret::new_secret;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Json, Path, Query};
use super::super::principal::{Principal, Role};
use super::super::{ApiState, now_ms};
use super::login_sandbox::{Login, LoginUpdate, change_login_sandbox};
use super::{AccountQuery, ErrorBody, Removal, live_account, remove_account_row};
use crate::dto::api_keys::{ApiKeyView, CreatedKey};

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key, update_key))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Admins name the account; others create keys for their own.
    pub account_id: Option<i64>,
    /// Sandbox mode: what this key sends is captured (default false).
    #[serde(default)]
    pub sandbox: bool,
}

/// Creates an API key (owners and admins).
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", request_body = CreateKey,
    security(("bearer" = [])),
    responses((status = 201, body = CreatedKey), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_key(
    State(state): State<ApiState>,
    who: Principal,
    Json(body): Json<CreateKey>,
) -> Result<(StatusCode, axum::Json<CreatedKey>), ApiError> {
    who.require(Role::Owner)?;
    let account = live_account(&state, &who, body.account_id).await?;
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let key = new_secret("sk", random);
    let id = state
        .store
        .add_api_key(account, &key.prefix, &key.hash, now_ms())
        .await?;
    if body.sandbox {
        state.store.set_api_key_sandbox(account, id, true).await?;
    }
    state
        .audit(
            &who,
            Some(account),
            "create",
            "api_key",
            id,
            serde_json::json!({ "prefix": key.prefix, "sandbox": body.sandbox }),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedKey {
            id,
            prefix: key.prefix,
            api_key: key.value,
        }),
    ))
}

/// Lists an account's keys, by prefix.
#[utoipa::path(get, path = "/api-keys", tag = "api-keys", params(AccountQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<ApiKeyView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn list_keys(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<AccountQuery>,
) -> Result<axum::Json<Vec<ApiKeyView>>, ApiError> {
    let account = live_account(&state, &who, query.account_id).await?;
    let keys = state.store.list_api_keys(account).await?;
    Ok(axum::Json(keys.into_iter().map(Into::into).collect()))
}

/// Revokes a key (owners and admins). Another account's key is "not found".
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys", params(("id" = i64, Path), AccountQuery),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_key(
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
            role: Role::Owner,
            action: "revoke",
            target_type: "api_key",
        },
        state.store.api_key(id),
        |account| state.store.revoke_api_key(account, id, now_ms()),
    )
    .await
}

/// Changes a key's sandbox mode (owners and admins; off: not with an API key; audited
/// `sandbox_on` / `sandbox_off`). Takes effect within `store.account_cache_ms`.
#[utoipa::path(put, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = i64, Path), AccountQuery), request_body = LoginUpdate, security(("bearer" = [])),
    responses((status = 200, body = ApiKeyView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_key(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
    Query(query): Query<AccountQuery>,
    Json(body): Json<LoginUpdate>,
) -> Result<axum::Json<ApiKeyView>, ApiError> {
    let current = state.store.api_key(id).await?;
    let login = Login {
        target_type: "api_key",
        id,
        current: current.as_ref().map(|k| (k.account_id, k.sandbox)),
    };
    change_login_sandbox(
        &state,
        &who,
        query.account_id,
        login,
        body.sandbox,
        |account| state.store.set_api_key_sandbox(account, id, body.sandbox),
    )
    .await?;
    let key = state
        .store
        .api_key(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(key.into()))
}
