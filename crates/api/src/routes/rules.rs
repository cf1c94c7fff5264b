//! Routing rules: per account, by priority, a condition set and the provider it picks
//! (with a failover list and an optional weighted split). Saved and checked here; evaluated
//! by `sluice_core::router` when a worker delivers.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use sluice_core::routing::RuleConditions;
use sluice_store::NewRule;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Json, Path, Query};
use super::super::principal::{Principal, Role};
use super::super::{ApiState, now_ms};
use super::ErrorBody;
use crate::dto::rules::{RuleView, SplitShare};

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_rule, list_rules))
        .routes(routes!(get_rule, replace_rule, delete_rule))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    pub name: String,
    /// Lower is evaluated first.
    pub priority: i64,
    /// Any of: sender (glob), recipient_domains (list), header {name, equals | regex},
    /// tag, source (smtp | api | webhook), min_size, max_size. Empty matches everything.
    #[schema(value_type = Object)]
    pub conditions: Value,
    pub provider_id: i64,
    /// Tried in order when the provider fails transiently.
    #[serde(default)]
    pub fallbacks: Vec<i64>,
    /// Weighted split: the first provider is drawn from these by weight per message;
    /// `provider_id` and `fallbacks` follow as the failover list.
    #[serde(default)]
    pub split: Vec<SplitShare>,
    pub enabled: Option<bool>,
    /// Admins: the account.
    pub account_id: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RuleQuery {
    /// Admins: one account's rules only.
    pub account_id: Option<i64>,
}

/// Checks the body against account `account`: its providers (or system-wide ones).
async fn checked(state: &ApiState, account: i64, body: &RuleBody) -> Result<NewRule, ApiError> {
    if body.name.trim().is_empty() || body.name.len() > 200 {
        return Err(ApiError::validation("name must be 1 to 200 characters"));
    }
    let conditions = RuleConditions::parse(&body.conditions).map_err(ApiError::validation)?;
    if body.fallbacks.len() > 10 || body.split.len() > 10 {
        return Err(ApiError::validation(
            "at most 10 fallbacks and 10 split shares",
        ));
    }
    if !body.split.is_empty() && body.split.iter().all(|s| s.weight == 0) {
        return Err(ApiError::validation("split weights must not all be 0"));
    }
    let split_ids = body.split.iter().map(|s| &s.provider_id);
    for provider in std::iter::once(&body.provider_id)
        .chain(&body.fallbacks)
        .chain(split_ids)
    {
        let usable = state
            .store
            .provider(*provider)
            .await?
            .is_some_and(|p| p.account_id.is_none() || p.account_id == Some(account));
        if !usable {
            return Err(ApiError::validation(format!(
                "provider {provider} does not exist for this account"
            )));
        }
    }
    Ok(NewRule {
        account_id: account,
        name: body.name.clone(),
        priority: body.priority,
        conditions: serde_json::to_value(conditions).unwrap_or_default(),
        provider_id: body.provider_id,
        fallbacks: body.fallbacks.clone(),
        split: body
            .split
            .iter()
            .map(|s| sluice_core::router::WeightedProvider {
                provider_id: s.provider_id,
                weight: s.weight,
            })
            .collect(),
        enabled: body.enabled.unwrap_or(true),
    })
}

/// Creates a routing rule (owners and admins).
#[utoipa::path(post, path = "/routing-rules", tag = "routing-rules", request_body = RuleBody,
    security(("bearer" = [])),
    responses((status = 201, body = RuleView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_rule(
    State(state): State<ApiState>,
    who: Principal,
    Json(body): Json<RuleBody>,
) -> Result<(StatusCode, axum::Json<RuleView>), ApiError> {
    who.require(Role::Owner)?;
    let account = super::live_account(&state, &who, body.account_id).await?;
    let rule = checked(&state, account, &body).await?;
    let row = state.store.create_rule(&rule, now_ms()).await?;
    let changes = audited_fields(&row);
    state
        .audit(
            &who,
            Some(account),
            "create",
            "routing_rule",
            row.id,
            changes,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

/// Lists rules by priority: admins all (or one account's), others their account's.
#[utoipa::path(get, path = "/routing-rules", tag = "routing-rules", params(RuleQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<RuleView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_rules(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<RuleQuery>,
) -> Result<axum::Json<Vec<RuleView>>, ApiError> {
    let account = who.scope(query.account_id)?;
    let rows = state.store.list_rules(account).await?;
    Ok(axum::Json(rows.into_iter().map(Into::into).collect()))
}

/// One rule.
#[utoipa::path(get, path = "/routing-rules/{id}", tag = "routing-rules", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = RuleView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_rule(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<RuleView>, ApiError> {
    Ok(axum::Json(who.visible(state.store.rule(id).await?)?.into()))
}

/// Replaces a rule (owners and admins).
#[utoipa::path(put, path = "/routing-rules/{id}", tag = "routing-rules", params(("id" = i64, Path)),
    request_body = RuleBody, security(("bearer" = [])),
    responses((status = 200, body = RuleView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn replace_rule(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
    Json(body): Json<RuleBody>,
) -> Result<axum::Json<RuleView>, ApiError> {
    let existing = who.visible(state.store.rule(id).await?)?;
    who.require(Role::Owner)?;
    let rule = checked(&state, existing.account_id, &body).await?;
    let row = state
        .store
        .replace_rule(id, &rule, now_ms())
        .await?
        .ok_or_else(ApiError::not_found)?;
    let changes = audited_fields(&row);
    state
        .audit(
            &who,
            Some(row.account_id),
            "update",
            "routing_rule",
            id,
            changes,
        )
        .await?;
    Ok(axum::Json(row.into()))
}

/// Deletes a rule (owners and admins).
#[utoipa::path(delete, path = "/routing-rules/{id}", tag = "routing-rules", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_rule(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let existing = who.visible(state.store.rule(id).await?)?;
    who.require(Role::Owner)?;
    if !state.store.delete_rule(id).await? {
        return Err(ApiError::not_found());
    }
    state
        .audit(
            &who,
            Some(existing.account_id),
            "delete",
            "routing_rule",
            id,
            serde_json::json!({}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the audit log keeps of a created or replaced rule.
fn audited_fields(row: &sluice_store::RuleRow) -> serde_json::Value {
    serde_json::json!({
        "name": row.name, "priority": row.priority, "conditions": row.conditions,
        "provider_id": row.provider_id, "fallbacks": row.fallbacks, "enabled": row.enabled,
    })
}
