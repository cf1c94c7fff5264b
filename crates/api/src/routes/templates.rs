//! Templates: per account, and system-wide (admins); an account's template overrides the
//! system's of the same name, which overrides the built-in one.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_store::NewTemplate;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Json, Path, Query};
use super::super::principal::{Principal, Role};
use super::super::{ApiState, now_ms};
use super::{ErrorBody, template_failed};
use crate::dto::templates::TemplateView;
use sluice_compose::render::{Rendered, builtin, render};

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_template, list_templates))
        .routes(routes!(get_template, replace_template, delete_template))
        .routes(routes!(render_template))
        .routes(routes!(preview_template))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub subject: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub html: String,
    /// Variables; sample values are used when absent.
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

/// Renders a template that is not saved yet (the editor's live preview), with `data` or
/// sample data. Nothing is stored.
#[utoipa::path(post, path = "/templates/preview", tag = "templates", request_body = PreviewRequest,
    security(("bearer" = [])),
    responses((status = 200, body = Rendered), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn preview_template(
    _who: Principal,
    Json(body): Json<PreviewRequest>,
) -> Result<axum::Json<Rendered>, ApiError> {
    let data = body.data.unwrap_or_else(sample_data);
    let rendered = render(&body.subject, &body.text, &body.html, &data).map_err(template_failed)?;
    Ok(axum::Json(rendered))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    /// 1 to 64 of `a-z 0-9 _ -`.
    pub name: String,
    pub subject: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub html: String,
    /// Admins: the account; absent makes a system-wide template.
    pub account_id: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TemplateQuery {
    /// Admins: one account's templates (and the system's) only.
    pub account_id: Option<i64>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderRequest {
    /// Variables; sample values are used when absent.
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    /// Admins: render as this account sees it.
    pub account_id: Option<i64>,
}

fn sample_data() -> Value {
    json!({
        "name": "Ada", "to": "ada@example.com", "token": "123456",
        "link": "https://example.com/verify?token=123456", "expiresAt": "2030-01-01T00:00:00Z",
        "title": "Sample", "message": "A sample message.", "details": "none",
    })
}

fn checked(body: &TemplateBody, account_id: Option<i64>) -> Result<NewTemplate, ApiError> {
    let valid_name = (1..=64).contains(&body.name.len())
        && body
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid_name {
        return Err(ApiError::validation("name: 1 to 64 of a-z 0-9 _ -"));
    }
    if body.text.trim().is_empty() && body.html.trim().is_empty() {
        return Err(ApiError::validation("text or html is required"));
    }
    // Refuse templates that do not compile or render (the error names the part and line).
    render(&body.subject, &body.text, &body.html, &sample_data()).map_err(template_failed)?;
    Ok(NewTemplate {
        account_id,
        name: body.name.clone(),
        subject: body.subject.clone(),
        text_body: body.text.clone(),
        html_body: body.html.clone(),
    })
}

/// Creates a template (owners for their account, admins for any or system-wide).
#[utoipa::path(post, path = "/templates", tag = "templates", request_body = TemplateBody,
    security(("bearer" = [])),
    responses((status = 201, body = TemplateView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_template(
    State(state): State<ApiState>,
    who: Principal,
    Json(body): Json<TemplateBody>,
) -> Result<(StatusCode, axum::Json<TemplateView>), ApiError> {
    who.require(Role::Owner)?;
    let account_id = super::owner_for_new(&state, &who, body.account_id).await?;
    let template = checked(&body, account_id)?;
    let row = state.store.create_template(&template, now_ms()).await?;
    state
        .audit(
            &who,
            account_id,
            "create",
            "template",
            row.id,
            json!({ "name": row.name }),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

/// Lists the account's templates and the system-wide ones (admins: all).
#[utoipa::path(get, path = "/templates", tag = "templates", params(TemplateQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<TemplateView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_templates(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<TemplateQuery>,
) -> Result<axum::Json<Vec<TemplateView>>, ApiError> {
    let account = who.scope(query.account_id)?;
    let rows = state.store.list_templates(account).await?;
    Ok(axum::Json(rows.into_iter().map(Into::into).collect()))
}

/// One template.
#[utoipa::path(get, path = "/templates/{id}", tag = "templates", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = TemplateView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_template(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<TemplateView>, ApiError> {
    Ok(axum::Json(
        who.visible(state.store.template(id).await?)?.into(),
    ))
}

/// Replaces a template.
#[utoipa::path(put, path = "/templates/{id}", tag = "templates", params(("id" = i64, Path)),
    request_body = TemplateBody, security(("bearer" = [])),
    responses((status = 200, body = TemplateView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn replace_template(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
    Json(body): Json<TemplateBody>,
) -> Result<axum::Json<TemplateView>, ApiError> {
    let existing = who.visible(state.store.template(id).await?)?;
    who.require(Role::Owner)?;
    let template = checked(&body, existing.account_id)?;
    let row = state
        .store
        .replace_template(id, &template, now_ms())
        .await?
        .ok_or_else(ApiError::not_found)?;
    state
        .audit(
            &who,
            existing.account_id,
            "update",
            "template",
            id,
            json!({ "name": row.name }),
        )
        .await?;
    Ok(axum::Json(row.into()))
}

/// Deletes a template.
#[utoipa::path(delete, path = "/templates/{id}", tag = "templates", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_template(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let existing = who.visible(state.store.template(id).await?)?;
    who.require(Role::Owner)?;
    if !state.store.delete_template(id).await? {
        return Err(ApiError::not_found());
    }
    state
        .audit(
            &who,
            existing.account_id,
            "delete",
            "template",
            id,
            json!({ "name": existing.name }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Renders the template the account would use under this name (its own, the system's or
/// the built-in one) with `data`, or sample data: a preview.
#[utoipa::path(post, path = "/templates/{name}/render", tag = "templates", params(("name" = String, Path)),
    request_body = RenderRequest, security(("bearer" = [])),
    responses((status = 200, body = Rendered), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn render_template(
    State(state): State<ApiState>,
    who: Principal,
    Path(name): Path<String>,
    Json(body): Json<RenderRequest>,
) -> Result<axum::Json<Rendered>, ApiError> {
    let account = who.scope(body.account_id)?;
    let data = body.data.unwrap_or_else(sample_data);
    let rendered = match state.store.template_by_name(account, &name).await? {
        Some(t) => {
            render(&t.subject, &t.text_body, &t.html_body, &data).map_err(template_failed)?
        }
        None => {
            let (s, t, h) = builtin(&name).ok_or_else(ApiError::not_found)?;
            render(s, t, h, &data).map_err(template_failed)?
        }
    };
    Ok(axum::Json(rendered))
}
