//! SMTP credentials: several logins per account, each with its own password (argon2id).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Json, Path, Query};
use super::super::principal::{Principal, Role};
use super::super::{ApiState, now_ms};
use super::login_sandbox::{Login, LoginUpdate, change_login_sandbox};
use super::{AccountQuery, ErrorBody, Removal, live_account, remove_account_row};
use crate::dto::smtp_credentials::CredentialView;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_credential, list_credentials))
        .routes(routes!(revoke_credential, update_credential))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredential {
    /// The SMTP AUTH username: 3 to 100 of `A-Z a-z 0-9 @ . _ + -`.
    pub username: String,
    /// At least 8 characters; never returned.
    pub password: String,
    /// Admins name the account.
    pub account_id: Option<i64>,
    /// Sandbox mode: what this login sends is captured (default false).
    #[serde(default)]
    pub sandbox: bool,
}

fn valid_username(name: &str) -> bool {
    (3..=100).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._+-".contains(c))
}

/// Creates an SMTP login for the account (owners and admins).
#[utoipa::path(post, path = "/smtp-credentials", tag = "smtp-credentials", request_body = CreateCredential,
    security(("bearer" = [])),
    responses((status = 201, body = CredentialView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_credential(
    State(state): State<ApiState>,
    who: Principal,
    Json(body): Json<CreateCredential>,
) -> Result<(StatusCode, axum::Json<CredentialView>), ApiError> {
    who.require(Role::Owner)?;
    let account = live_account(&state, &who, body.account_id).await?;
    if !valid_username(&body.username) {
        return Err(ApiError::validation(
            "username: 3 to 100 of A-Z a-z 0-9 @ . _ + -",
        ));
    }
    let hash = super::hash_new_password(&body.password).await?;
    let id = state
        .store
        .add_smtp_credential(account, &body.username, &hash, now_ms())
        .await?;
    if body.sandbox {
        state
            .store
            .set_smtp_credential_sandbox(account, id, true)
            .await?;
    }
    let credential = state
        .store
        .smtp_credential_by_username(&body.username)
        .await?
        .ok_or_else(ApiError::not_found)?;
    state
        .audit(
            &who,
            Some(account),
            "create",
            "smtp_credential",
            id,
            serde_json::json!({ "username": credential.username, "sandbox": credential.sandbox }),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(credential.into())))
}

/// Lists the account's SMTP logins (never their passwords).
#[utoipa::path(get, path = "/smtp-credentials", tag = "smtp-credentials", params(AccountQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<CredentialView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn list_credentials(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<AccountQuery>,
) -> Result<axum::Json<Vec<CredentialView>>, ApiError> {
    let account = live_account(&state, &who, query.account_id).await?;
    let list = state.store.list_smtp_credentials(account).await?;
    Ok(axum::Json(list.into_iter().map(Into::into).collect()))
}

/// Revokes an SMTP login (owners and admins).
#[utoipa::path(delete, path = "/smtp-credentials/{id}", tag = "smtp-credentials", params(("id" = i64, Path), AccountQuery),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_credential(
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
            target_type: "smtp_credential",
        },
        state.store.smtp_credential(id),
        |account| state.store.revoke_smtp_credential(account, id, now_ms()),
    )
    .await
}

/// Changes an SMTP login's sandbox mode (owners and admins; off: not with an API key;
/// audited `sandbox_on` / `sandbox_off`).
#[utoipa::path(put, path = "/smtp-credentials/{id}", tag = "smtp-credentials",
    params(("id" = i64, Path), AccountQuery), request_body = LoginUpdate, security(("bearer" = [])),
    responses((status = 200, body = CredentialView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_credential(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
    Query(query): Query<AccountQuery>,
    Json(body): Json<LoginUpdate>,
) -> Result<axum::Json<CredentialView>, ApiError> {
    let current = state.store.smtp_credential(id).await?;
    let login = Login {
        target_type: "smtp_credential",
        id,
        current: current.as_ref().map(|c| (c.account_id, c.sandbox)),
    };
    change_login_sandbox(
        &state,
        &who,
        query.account_id,
        login,
        body.sandbox,
        |account| {
            state
                .store
                .set_smtp_credential_sandbox(account, id, body.sandbox)
        },
    )
    .await?;
    let credential = state
        .store
        .smtp_credential(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(credential.into()))
}
