//! Users of the API and panel: system admins, and account owners, members and viewers.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sluice_core::secret::hash_password;
use sluice_store::{NewUser, User};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Json, Path};
use super::super::principal::{Principal, Role};
use super::super::{ApiState, now_ms};
use super::ErrorBody;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_user))
        .routes(routes!(get_user))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    /// Absent for system admins.
    pub account_id: Option<i64>,
    pub email: String,
    pub role: String,
    pub status: String,
    pub created_at: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id,
            account_id: u.account_id,
            email: u.email,
            role: u.role,
            status: u.status,
            created_at: u.created_at,
        }
    }
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
            .is_some_and(|a| a.status != "deleted");
        if !exists {
            return Err(ApiError::not_found());
        }
        Some(account)
    };
    sluice_core::validate_mailbox(&body.email)
        .map_err(|e| ApiError::validation(format!("email: {e}")))?;
    if body.password.len() < 8 {
        return Err(ApiError::validation(
            "password must have at least 8 characters",
        ));
    }
    let password = body.password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| ApiError::validation("password could not be hashed"))?
        .map_err(|_| ApiError::validation("password could not be hashed"))?;
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
    let user = state
        .store
        .user(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let visible =
        who.is_admin() || (user.account_id.is_some() && user.account_id == who.account_id);
    if !visible {
        return Err(ApiError::not_found());
    }
    Ok(axum::Json(user.into()))
}
