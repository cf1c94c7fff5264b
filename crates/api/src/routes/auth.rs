//! Login, token refresh (rotating) and logout.

use axum::extract::State;
use rand::RngCore;
use serde::Deserialize;
use sluice_core::LoginState;
use sluice_core::secret::{hash_token, new_secret};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Json};
use super::super::{ApiState, now_ms};
use super::ErrorBody;
use crate::dto::auth::TokenPair;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

fn invalid_login() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "invalid email or password",
    )
}

async fn issue_pair(state: &ApiState, user_id: i64) -> Result<TokenPair, ApiError> {
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let refresh = new_secret("rt", random);
    let now = now_ms();
    let expires = now + (state.refresh_ttl_secs as i64) * 1000;
    state
        .store
        .create_session(
            user_id,
            sluice_core::SessionKind::Refresh,
            &refresh.hash,
            expires,
            now,
        )
        .await?;
    Ok(TokenPair {
        access_token: state.tokens.issue(user_id, (now / 1000) as u64),
        refresh_token: refresh.value,
        token_type: "Bearer".into(),
        expires_in: state.tokens.access_ttl_secs,
    })
}

/// Checks a login (the API's and the panel's): the user, if the password matches, the user
/// is active and not locked out. Wrong email, wrong password and a locked user fail alike,
/// and take as long; failures count towards the lockout.
pub async fn verify_login(
    state: &ApiState,
    email: &str,
    password: &str,
) -> Result<sluice_store::User, ApiError> {
    let user = state.store.user_by_email(email).await?;
    let now = now_ms();
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| state.dummy_hash.to_string());
    let matches = crate::password::verify(hash, password.to_string()).await;
    let Some(user) = user else {
        return Err(invalid_login());
    };
    let login_state = LoginState {
        failed_logins: user.failed_logins,
        first_failed_at: user.first_failed_at,
        locked_until: user.locked_until,
    };
    if state.throttle.is_locked(&login_state, now) || user.status != sluice_core::UserStatus::Active
    {
        return Err(invalid_login());
    }
    if !matches {
        let next = state.throttle.after_failure(&login_state, now);
        state.store.set_login_state(user.id, &next).await?;
        tracing::warn!(
            user = user.id,
            locked = next.locked_until.is_some(),
            "login failed"
        );
        return Err(invalid_login());
    }
    if login_state != LoginState::default() {
        state
            .store
            .set_login_state(user.id, &LoginState::default())
            .await?;
    }
    // Only someone who knows the password learns that the account is suspended or deleted.
    account_may_act(state, &user).await?;
    tracing::info!(user = user.id, "login");
    Ok(user)
}

/// Refuses a user whose account is suspended (403 `account_suspended`) or deleted (401
/// `account_deleted`); system admins (no account) always pass.
pub(crate) async fn account_may_act(
    state: &ApiState,
    user: &sluice_store::User,
) -> Result<(), ApiError> {
    if let Some(account_id) = user.account_id {
        let status = state.account_status(account_id).await?;
        if !status.is_active() {
            return Err(ApiError::account_inactive(status));
        }
    }
    Ok(())
}

/// Logs a user in. Wrong email, wrong password and a locked user get the same answer.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn login(
    State(state): State<ApiState>,
    Json(request): Json<LoginRequest>,
) -> Result<axum::Json<TokenPair>, ApiError> {
    let user = verify_login(&state, &request.email, &request.password).await?;
    Ok(axum::Json(issue_pair(&state, user.id).await?))
}

/// Trades a refresh token for a new pair; the old refresh token stops working.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn refresh(
    State(state): State<ApiState>,
    Json(request): Json<RefreshRequest>,
) -> Result<axum::Json<TokenPair>, ApiError> {
    let session = state
        .store
        .session_by_hash(&hash_token(&request.refresh_token))
        .await?
        .filter(|s| {
            s.kind == sluice_core::SessionKind::Refresh
                && s.revoked_at.is_none()
                && s.expires_at > now_ms()
        })
        .ok_or_else(ApiError::unauthorized)?;
    // Revoking first, once: a replayed token loses the race and gets 401.
    if !state.store.revoke_session(session.id, now_ms()).await? {
        return Err(ApiError::unauthorized());
    }
    let user = state
        .store
        .user(session.user_id)
        .await?
        .filter(|u| u.status == sluice_core::UserStatus::Active)
        .ok_or_else(ApiError::unauthorized)?;
    account_may_act(&state, &user).await?;
    Ok(axum::Json(issue_pair(&state, session.user_id).await?))
}

/// Revokes a refresh token.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(
    State(state): State<ApiState>,
    Json(request): Json<RefreshRequest>,
) -> Result<axum::http::StatusCode, ApiError> {
    let session = state
        .store
        .session_by_hash(&hash_token(&request.refresh_token))
        .await?
        .filter(|s| s.kind == sluice_core::SessionKind::Refresh)
        .ok_or_else(ApiError::unauthorized)?;
    state.store.revoke_session(session.id, now_ms()).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
