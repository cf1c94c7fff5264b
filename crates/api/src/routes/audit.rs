//! The audit log: who changed what, when, from where.

use axum::extract::State;
use serde::Deserialize;
use sluice_store::AuditFilter;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::ApiState;
use super::super::error::{ApiError, Query};
use super::super::principal::{Principal, Role};
use super::{ErrorBody, Page, page_size};
use crate::dto::audit::AuditView;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Admins: one account only.
    pub account_id: Option<i64>,
    /// `user:<id>`, `api_key:<id>` or `cli`.
    pub actor: Option<String>,
    /// `create`, `update`, `delete`, `revoke`, ...
    pub action: Option<String>,
    /// `provider`, `template`, `settings`, ...
    pub target_type: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// Audit entries, newest first: admins all (or one account's), owners their account's.
#[utoipa::path(get, path = "/audit-logs", tag = "audit", params(AuditQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Page<AuditView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_audit(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<AuditQuery>,
) -> Result<axum::Json<Page<AuditView>>, ApiError> {
    who.require(Role::Owner)?;
    let account_id = who.scope(query.account_id)?;
    let limit = page_size(query.limit);
    let rows = state
        .store
        .list_audit(&AuditFilter {
            account_id,
            actor: query.actor.filter(|a| !a.is_empty()),
            action: query.action.filter(|a| !a.is_empty()),
            target_type: query.target_type.filter(|t| !t.is_empty()),
            before_id: super::cursor(query.cursor.as_deref())?,
            limit,
        })
        .await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|a| a.id.to_string()))
        .flatten();
    Ok(axum::Json(Page {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}
