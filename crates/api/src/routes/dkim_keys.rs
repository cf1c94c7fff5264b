//! DKIM keys per account domain: generated (RSA 2048 or Ed25519) or uploaded as PEM; the
//! private key is sealed at rest and never shown again; the DNS record to publish is.
//! Workers sign mail whose From domain has an enabled key before handing it to SMTP providers.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use sluice_deliver::dkim::{self, DkimAlgorithm};
use sluice_store::{NewDkimKey, StoreError};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Json, Path, Query};
use super::super::principal::{Principal, Role};
use super::super::{ApiState, now_ms};
use super::{AccountQuery, ErrorBody, live_account};
use crate::dto::dkim_keys::DkimKeyView;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_dkim_key, list_dkim_keys))
        .routes(routes!(get_dkim_key, delete_dkim_key))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDkimKey {
    /// One of the account's verified sender domains (`/api/v1/domains`).
    pub domain: String,
    /// Letters, digits and hyphens.
    pub selector: String,
    /// rsa-sha256 (default) or ed25519-sha256.
    pub algorithm: Option<String>,
    /// PEM (PKCS#8, or PKCS#1 for RSA) to upload a key; absent: one is generated.
    pub private_key: Option<String>,
    /// Admins: the account.
    pub account_id: Option<i64>,
}

/// Generates or uploads a DKIM key (owners and admins); answers the DNS record to publish.
#[utoipa::path(post, path = "/dkim-keys", tag = "dkim-keys", request_body = CreateDkimKey,
    security(("bearer" = [])),
    responses((status = 201, body = DkimKeyView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_dkim_key(
    State(state): State<ApiState>,
    who: Principal,
    Json(body): Json<CreateDkimKey>,
) -> Result<(StatusCode, axum::Json<DkimKeyView>), ApiError> {
    who.require(Role::Owner)?;
    let account_id = live_account(&state, &who, body.account_id).await?;
    let account = state
        .store
        .account(account_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let domain = body.domain.trim().to_ascii_lowercase();
    if !account.allowed_domains.contains(&domain) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "domain_not_verified",
            "domain is not a verified domain of this account; add and verify it at /api/v1/domains",
        ));
    }
    let selector_ok = !body.selector.is_empty()
        && body.selector.len() <= 63
        && body
            .selector
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !selector_ok {
        return Err(ApiError::validation(
            "selector is 1 to 63 letters, digits or hyphens",
        ));
    }
    let algorithm = DkimAlgorithm::parse(body.algorithm.as_deref().unwrap_or("rsa-sha256"))
        .ok_or_else(|| ApiError::validation("algorithm is rsa-sha256 or ed25519-sha256"))?;
    let pkcs8 = match &body.private_key {
        Some(pem) => dkim::private_key_from_pem(algorithm, pem),
        None => dkim::generate(algorithm),
    }
    .map_err(|e| ApiError::validation(e.to_string()))?;
    let dns_record =
        dkim::dns_record(algorithm, &pkcs8).map_err(|e| ApiError::validation(e.to_string()))?;
    let key = NewDkimKey {
        account_id,
        domain,
        selector: body.selector.clone(),
        algorithm: algorithm.as_str().into(),
        private_key: state.seal_bytes(&pkcs8),
        dns_record,
    };
    let row = match state.store.create_dkim_key(&key, now_ms()).await {
        Ok(row) => row,
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "this domain already has a key with this selector",
            ));
        }
        Err(other) => return Err(other.into()),
    };
    let changes = serde_json::json!({ "domain": row.domain, "selector": row.selector,
        "algorithm": row.algorithm, "uploaded": body.private_key.is_some() });
    state
        .audit(
            &who,
            Some(account_id),
            "create",
            "dkim_key",
            row.id,
            changes,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

/// The account's DKIM keys and their DNS records.
#[utoipa::path(get, path = "/dkim-keys", tag = "dkim-keys", params(AccountQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<DkimKeyView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn list_dkim_keys(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<AccountQuery>,
) -> Result<axum::Json<Vec<DkimKeyView>>, ApiError> {
    let account = live_account(&state, &who, query.account_id).await?;
    let rows = state.store.list_dkim_keys(Some(account)).await?;
    Ok(axum::Json(rows.into_iter().map(Into::into).collect()))
}

/// One DKIM key and its DNS record.
#[utoipa::path(get, path = "/dkim-keys/{id}", tag = "dkim-keys", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = DkimKeyView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_dkim_key(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<DkimKeyView>, ApiError> {
    Ok(axum::Json(
        who.visible(state.store.dkim_key(id).await?)?.into(),
    ))
}

/// Deletes a DKIM key (owners and admins): mail is no longer signed with it.
#[utoipa::path(delete, path = "/dkim-keys/{id}", tag = "dkim-keys", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_dkim_key(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let key = who.visible(state.store.dkim_key(id).await?)?;
    who.require(Role::Owner)?;
    state.store.delete_dkim_key(id).await?;
    state
        .audit(
            &who,
            Some(key.account_id),
            "delete",
            "dkim_key",
            id,
            serde_json::json!({ "domain": key.domain, "selector": key.selector }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
