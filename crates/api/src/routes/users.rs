//! Users of the API and panel: system admins, and account owners, members and viewers.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use sluice_store::{NewUser, User, UserUpdate};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Json, Path, Query};
use super::super::principal::{Principal, Role};
use super::super::{ApiState, now_ms};
use super::ErrorBody;
use crate::dto::users::UserView;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(get_user, update_user, delete_user))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    /// At least 8 characters; stored as argon2id, never returned.
    pub password: String,
    /// `admin` (system admins only, no account), `owner`, `member` or `viewer`.
    pub role: String,
    /// The user's account; admins must give it for account users.
    pub account_id: Option<i64>,
}

/// Creates a user: admins any, owners users of their own account.
#[utoipa::path(post, path = "/users", tag = "users", request_body = CreateUser,
    security(("bearer" = [])),
    responses((status = 201, body = UserView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_user(
    State(state): State<ApiState>,
    who: Principal,
    Json(body): Json<CreateUser>,
) -> Result<(StatusCode, axum::Json<UserView>), ApiError> {
    who.require(Role::Owner)?;
    let role = Role::parse(&body.role)
        .ok_or_else(|| ApiError::validation("role is admin, owner, member or viewer"))?;
    let account_id = if role == Role::Admin {
        if !who.is_admin() {
            return Err(ApiError::forbidden());
        }
        if body.account_id.is_some() {
            return Err(ApiError::validation("admins belong to no account"));
        }
        None
    } else {
        let account = who.target_account(body.account_id)?;
        let exists = state
            .store
            .account(account)
            .await?
            .is_some_and(|a| a.status != sluice_core::AccountStatus::Deleted);
        if !exists {
            return Err(ApiError::not_found());
        }
        Some(account)
    };
    sluice_core::validate_mailbox(&body.email)
        .map_err(|e| ApiError::validation(format!("email: {e}")))?;
    let hash = super::hash_new_password(&body.password).await?;
    let user = state
        .store
        .create_user(
            NewUser {
                account_id,
                email: body.email.clone(),
                password_hash: hash,
                role: role.as_str().into(),
            },
            now_ms(),
        )
        .await?;
    let changes = serde_json::json!({ "email": user.email, "role": user.role, "account_id": user.account_id });
    state
        .audit(&who, account_id, "create", "user", user.id, changes)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(user.into())))
}

/// One user: admins any, account users those of their account.
#[utoipa::path(get, path = "/users/{id}", tag = "users", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_user(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<UserView>, ApiError> {
    let user = who.visible(state.store.user(id).await?)?;
    Ok(axum::Json(user.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UsersQuery {
    /// Admins: one account's users only.
    pub account_id: Option<i64>,
}

/// Users: admins all (or one account's), others those of their account.
#[utoipa::path(get, path = "/users", tag = "users", params(UsersQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<UserView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_users(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<UsersQuery>,
) -> Result<axum::Json<Vec<UserView>>, ApiError> {
    let account = who.scope(query.account_id)?;
    let users = state.store.list_users(account).await?;
    Ok(axum::Json(users.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// `owner`, `member` or `viewer` (admins stay admins).
    pub role: Option<String>,
    /// `active` or `disabled`; disabling ends the user's sessions.
    pub status: Option<String>,
    /// A new password (at least 8 characters); ends the user's sessions.
    pub password: Option<String>,
}

/// The user if the caller may manage it: admins anyone, owners their account's non-admins.
async fn manageable_user(state: &ApiState, who: &Principal, id: i64) -> Result<User, ApiError> {
    let user = who.visible(state.store.user(id).await?)?;
    who.require(Role::Owner)?;
    Ok(user)
}

/// Changes a user's role, status or password (owners for their account, admins any).
#[utoipa::path(put, path = "/users/{id}", tag = "users", params(("id" = i64, Path)), request_body = UpdateUser,
    security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_user(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
    Json(body): Json<UpdateUser>,
) -> Result<axum::Json<UserView>, ApiError> {
    let user = manageable_user(&state, &who, id).await?;
    if who.actor == format!("user:{id}") && body.status.as_deref() == Some("disabled") {
        return Err(ApiError::conflict("you cannot disable yourself"));
    }
    if let Some(role) = &body.role {
        let parsed = Role::parse(role)
            .ok_or_else(|| ApiError::validation("role is owner, member or viewer"))?;
        if parsed == Role::Admin || user.account_id.is_none() {
            return Err(ApiError::validation(
                "admin is not a role an account user can get or lose",
            ));
        }
    }
    if let Some(status) = &body.status
        && !matches!(status.as_str(), "active" | "disabled")
    {
        return Err(ApiError::validation("status is active or disabled"));
    }
    let password_hash = match &body.password {
        Some(password) => Some(super::hash_new_password(password).await?),
        None => None,
    };
    let update = UserUpdate {
        role: body.role.clone(),
        status: body.status.clone(),
        password_hash,
    };
    let updated = state
        .store
        .update_user(id, &update, now_ms())
        .await?
        .ok_or_else(ApiError::not_found)?;
    if body.password.is_some() || body.status.as_deref() == Some("disabled") {
        state.store.revoke_user_sessions(id, now_ms()).await?;
    }
    let changes = serde_json::json!({
        "role": body.role, "status": body.status, "password_changed": body.password.is_some(),
    });
    state
        .audit(&who, user.account_id, "update", "user", id, changes)
        .await?;
    Ok(axum::Json(updated.into()))
}

/// Disables a user and ends its sessions (owners for their account, admins any).
#[utoipa::path(delete, path = "/users/{id}", tag = "users", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_user(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::http::StatusCode, ApiError> {
    let user = manageable_user(&state, &who, id).await?;
    if who.actor == format!("user:{id}") {
        return Err(ApiError::conflict("you cannot disable yourself"));
    }
    let update = UserUpdate {
        status: Some("disabled".into()),
        ..Default::default()
    };
    state.store.update_user(id, &update, now_ms()).await?;
    state.store.revoke_user_sessions(id, now_ms()).await?;
    state
        .audit(
            &who,
            user.account_id,
            "delete",
            "user",
            id,
            serde_json::json!({ "status": "disabled" }),
        )
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
