//! Who is calling: a bearer API key or a JWT access token, resolved to a principal with
//! an account scope and a role.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sluice_core::AccountId;
use sluice_core::secret::hash_token;

use super::ApiState;
use super::error::ApiError;

pub use sluice_core::Role;

/// The caller of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `user:<id>` or `api_key:<id>`, for the audit log.
    pub actor: String,
    /// `None`: a system admin, every account.
    pub account_id: Option<AccountId>,
    pub role: Role,
    pub source_ip: Option<String>,
    /// SHA-256 of the API key the caller came with (to find its cached account).
    pub api_key_hash: Option<String>,
    /// The caller's API key is in sandbox mode: what it sends is captured.
    pub sandbox: bool,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin && self.account_id.is_none()
    }

    /// May this caller see a resource owned by `owner` (an account, or `None` for
    /// system-wide)? Admins see all; others only their own account's. One row by id goes
    /// through [`Principal::visible`] (`scoped`), which answers 404 for what this refuses.
    pub fn owns(&self, owner: Option<AccountId>) -> bool {
        self.is_admin() || (owner.is_some() && owner == self.account_id)
    }

    /// Fails with 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// Which account a listing covers: the caller's own (naming another is "not found"), or
    /// for an admin the one named, or every account (`None`).
    pub fn scope(&self, named: Option<AccountId>) -> Result<Option<AccountId>, ApiError> {
        match (self.account_id, named) {
            (Some(own), Some(named)) if named != own => Err(ApiError::not_found()),
            (Some(own), _) => Ok(Some(own)),
            (None, named) => Ok(named),
        }
    }

    /// The account a request acts on: the caller's own, or for an admin the one named.
    pub fn target_account(&self, named: Option<AccountId>) -> Result<AccountId, ApiError> {
        match (self.account_id, named) {
            (Some(own), None) => Ok(own),
            (Some(own), Some(named)) if named == own => Ok(own),
            (Some(_), Some(_)) => Err(ApiError::not_found()),
            (None, Some(named)) => Ok(named),
            (None, None) => Err(ApiError::validation("account_id is required for admins")),
        }
    }
}

/// Marks an in-process request of the panel's inbox stream, polling for new mail every
/// 2 s as its user: `api.rate_limit_per_minute` counts these in a bucket of their own, so
/// open inbox tabs do not spend the user's minute, and many tabs are still limited. Only
/// code in this process can set a request extension; nothing a client sends becomes one.
#[derive(Debug, Clone, Copy)]
pub struct InboxPoll;

/// Claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: i64,
    pub exp: u64,
    pub iat: u64,
}

impl FromRequestParts<ApiState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let principal = authenticate(parts, state).await?;
        let bucket = match parts.extensions.get::<InboxPoll>() {
            Some(_) => format!("{}#inbox-poll", principal.actor),
            None => principal.actor.clone(),
        };
        let verdict = state
            .rate_limit
            .lock()
            .map(|mut limiter| limiter.check(&bucket, super::now_ms()))
            .unwrap_or(Ok(()));
        if let Err(wait_ms) = verdict {
            return Err(ApiError::rate_limited((wait_ms + 999) / 1000));
        }
        Ok(principal)
    }
}

async fn authenticate(parts: &mut Parts, state: &ApiState) -> Result<Principal, ApiError> {
    let source_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    let token = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    if token.starts_with("sk_") {
        let hash = hash_token(token);
        let (key_id, account_id, sandbox) = match state.api_keys.get(&hash) {
            Some((key_id, account, sandbox)) => (key_id, account.id, sandbox),
            None => {
                let key = state
                    .store
                    .api_key_by_hash(&hash)
                    .await?
                    .filter(|k| k.revoked_at.is_none())
                    .ok_or_else(ApiError::unauthorized)?;
                let account = state
                    .store
                    .account(key.account_id)
                    .await?
                    .ok_or_else(ApiError::account_deleted)?;
                if !account.is_active() {
                    return Err(ApiError::account_inactive(account.state()));
                }
                let account_id = account.id;
                state
                    .api_keys
                    .put(hash.clone(), (key.id, account, key.sandbox));
                (key.id, account_id, key.sandbox)
            }
        };
        return Ok(Principal {
            actor: format!("api_key:{key_id}"),
            account_id: Some(account_id),
            role: Role::Owner,
            source_ip,
            api_key_hash: Some(hash),
            sandbox,
        });
    }
    let claims = state
        .tokens
        .verify(token)
        .ok_or_else(ApiError::unauthorized)?;
    let user = state
        .store
        .user(claims.sub)
        .await?
        .filter(|u| u.status == sluice_core::UserStatus::Active)
        .ok_or_else(ApiError::unauthorized)?;
    let role = user.role;
    // A user of an account acts only while the account is active. System admins belong to
    // no account, so no account's state locks them out.
    if let Some(account_id) = user.account_id {
        let status = state.account_status(account_id).await?;
        if !status.is_active() {
            return Err(ApiError::account_inactive(status));
        }
    }
    Ok(Principal {
        actor: format!("user:{}", user.id),
        account_id: user.account_id,
        role,
        source_ip,
        api_key_hash: None,
        sandbox: false,
    })
}
