//! The panel's pages. Each reads or writes through the API (`PanelState::api`) and renders
//! a template; none has rules of its own.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::chart::{HourBars, hourly_svg};
use super::{PanelState, PanelUser, act, api_read, session};
use sluice_api::dto::audit::AuditView;
use sluice_api::dto::dashboard::DashboardView;
use sluice_api::dto::settings::SettingsView;
use sluice_api::dto::templates::TemplateView;
use sluice_api::dto::users::UserView;
use sluice_api::dto::{Page, Rendered};
use sluice_api::now_ms;

pub fn routes() -> axum::Router<PanelState> {
    axum::Router::new()
        .route("/", get(dashboard))
        .route("/templates", get(templates).post(create_template))
        .route("/templates/preview", post(preview_json))
        .route("/templates/{id}", get(edit_template).post(save_template))
        .route("/templates/{id}/preview", post(preview_page))
        .route("/users", get(users).post(create_user))
        .route("/users/{id}/disable", post(disable_user))
        .route("/audit", get(audit))
        .route("/delivery-log", get(delivery_log))
        .route("/settings", get(settings).post(save_settings))
        .route("/settings/reset", post(reset_settings))
        .route("/settings/rotate-session-secret", post(rotate_secret))
}

/// `key=value&...` with values percent-encoded; empty values left out.
pub(crate) fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    let mut out = String::new();
    for (key, value) in pairs {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(key);
        out.push('=');
        for byte in value.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(byte as char)
                }
                _ => out.push_str(&format!("%{byte:02X}")),
            }
        }
    }
    out
}

async fn dashboard(State(state): State<PanelState>, user: PanelUser) -> Response {
    let board: DashboardView = match api_read(&state, &user, Method::GET, "/dashboard", None).await
    {
        Ok(board) => board,
        Err(page) => return page,
    };
    let hours: Vec<HourBars> = board
        .hours
        .iter()
        .map(|h| HourBars {
            label: time::OffsetDateTime::from_unix_timestamp(h.hour / 1000)
                .map(|t| format!("{:02}:00", t.hour()))
                .unwrap_or_default(),
            accepted: h.accepted,
            delivered: h.delivered,
            failed: h.failed,
        })
        .collect();
    let chart = hourly_svg(&hours);
    // Captured mail went nowhere: counted apart from what was delivered.
    let captured: i64 = board.hours.iter().map(|h| h.captured).sum();
    state.page(
        "dashboard.html",
        Some(&user),
        json!({ "board": board, "chart": chart, "captured": captured }),
    )
}

/// The last 5 MB of this node's delivery log, newest line first.
async fn delivery_log(State(state): State<PanelState>, user: PanelUser) -> Response {
    let answer = state.api(&user, Method::GET, "/delivery-log", None).await;
    if !answer.ok() {
        return state.error_page(Some(&user), answer.status, &answer.error_message());
    }
    let text = String::from_utf8_lossy(&answer.bytes);
    let lines: Vec<&str> = text.lines().rev().collect();
    state.page(
        "delivery_log.html",
        Some(&user),
        json!({ "lines": lines, "bytes": answer.bytes.len() }),
    )
}

/// A number field of a form: empty is absent; anything else must be a number.
pub(super) fn number<T: std::str::FromStr>(
    field: &Option<String>,
    name: &str,
) -> Result<Option<T>, String> {
    match field.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} must be a number")),
    }
}

async fn templates(State(state): State<PanelState>, user: PanelUser) -> Response {
    list_page::<TemplateView>(&state, &user, "/templates", "templates").await
}

/// The page `{key}.html` listing what the API answers at `api_path`, as `key`.
async fn list_page<T: serde::de::DeserializeOwned + serde::Serialize>(
    state: &PanelState,
    user: &PanelUser,
    api_path: &str,
    key: &str,
) -> Response {
    match api_read::<Vec<T>>(state, user, Method::GET, api_path, None).await {
        Ok(list) => {
            let mut context = json!({});
            context[key] = json!(list);
            state.page(&format!("{key}.html"), Some(user), context)
        }
        Err(page) => page,
    }
}

#[derive(Deserialize)]
struct TemplateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    html: String,
}

async fn create_template(
    State(state): State<PanelState>,
    user: PanelUser,
    Form(form): Form<TemplateForm>,
) -> Response {
    let body =
        json!({ "name": form.name, "subject": form.subject, "text": form.text, "html": form.html });
    match api_read::<TemplateView>(&state, &user, Method::POST, "/templates", Some(body)).await {
        Ok(created) => Redirect::to(&format!("/templates/{}", created.id)).into_response(),
        Err(page) => page,
    }
}

async fn edit_template(
    State(state): State<PanelState>,
    user: PanelUser,
    Path(id): Path<i64>,
) -> Response {
    let path = format!("/templates/{id}");
    match api_read::<TemplateView>(&state, &user, Method::GET, &path, None).await {
        Ok(template) => state.page("template_edit.html", Some(&user), json!({ "t": template })),
        Err(page) => page,
    }
}

async fn save_template(
    State(state): State<PanelState>,
    user: PanelUser,
    Path(id): Path<i64>,
    Form(form): Form<TemplateForm>,
) -> Response {
    let body =
        json!({ "name": form.name, "subject": form.subject, "text": form.text, "html": form.html });
    let path = format!("/templates/{id}");
    act(&state, &user, Method::PUT, &path, Some(body), &path).await
}

async fn rendered_preview(
    state: &PanelState,
    user: &PanelUser,
    form: &TemplateForm,
) -> crate::ApiAnswer {
    let body = json!({ "subject": form.subject, "text": form.text, "html": form.html });
    state
        .api(user, Method::POST, "/templates/preview", Some(body))
        .await
}

/// The editor's live preview (script): the API's rendering as JSON.
async fn preview_json(
    State(state): State<PanelState>,
    user: PanelUser,
    Form(form): Form<TemplateForm>,
) -> Response {
    let answer = rendered_preview(&state, &user, &form).await;
    (
        answer.status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.bytes,
    )
        .into_response()
}

/// The preview without a script: the editor again, with the form's text and its rendering.
async fn preview_page(
    State(state): State<PanelState>,
    user: PanelUser,
    Path(id): Path<i64>,
    Form(form): Form<TemplateForm>,
) -> Response {
    let answer = rendered_preview(&state, &user, &form).await;
    let (preview, error) = match answer.ok() {
        true => (answer.read::<Rendered>().ok(), None),
        false => (None, Some(answer.error_message())),
    };
    let template = json!({ "id": id, "name": form.name, "subject": form.subject, "text": form.text, "html": form.html });
    state.page(
        "template_edit.html",
        Some(&user),
        json!({ "t": template, "preview": preview, "error": error }),
    )
}

async fn users(State(state): State<PanelState>, user: PanelUser) -> Response {
    list_page::<UserView>(&state, &user, "/users", "users").await
}

#[derive(Deserialize)]
struct UserForm {
    email: String,
    password: String,
    role: String,
    account_id: Option<String>,
}

async fn create_user(
    State(state): State<PanelState>,
    user: PanelUser,
    Form(form): Form<UserForm>,
) -> Response {
    let mut body =
        json!({ "email": form.email.trim(), "password": form.password, "role": form.role });
    match number::<i64>(&form.account_id, "account") {
        Ok(Some(account)) => body["account_id"] = json!(account),
        Ok(None) => {}
        Err(message) => {
            return state.error_page(Some(&user), StatusCode::UNPROCESSABLE_ENTITY, &message);
        }
    }
    act(&state, &user, Method::POST, "/users", Some(body), "/users").await
}

async fn disable_user(
    State(state): State<PanelState>,
    user: PanelUser,
    Path(id): Path<i64>,
) -> Response {
    let body = json!({ "status": "disabled" });
    act(
        &state,
        &user,
        Method::PUT,
        &format!("/users/{id}"),
        Some(body),
        "/users",
    )
    .await
}

#[derive(Deserialize)]
struct AuditSearch {
    account_id: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    target_type: Option<String>,
    cursor: Option<String>,
}

async fn audit(
    State(state): State<PanelState>,
    user: PanelUser,
    Query(search): Query<AuditSearch>,
) -> Response {
    let path = format!(
        "/audit-logs{}",
        query_string(&[
            ("account_id", search.account_id.as_deref()),
            ("actor", search.actor.as_deref()),
            ("action", search.action.as_deref()),
            ("target_type", search.target_type.as_deref()),
            ("cursor", search.cursor.as_deref()),
        ])
    );
    match api_read::<Page<AuditView>>(&state, &user, Method::GET, &path, None).await {
        Ok(page) => state.page(
            "audit.html",
            Some(&user),
            json!({ "page": page, "search": {
                "account_id": search.account_id, "actor": search.actor,
                "action": search.action, "target_type": search.target_type,
            } }),
        ),
        Err(page) => page,
    }
}

async fn settings(State(state): State<PanelState>, user: PanelUser) -> Response {
    // Only admins have run-time settings; others still see the session part.
    let answer = state.api(&user, Method::GET, "/settings", None).await;
    let current: Option<SettingsView> = match answer.ok() {
        true => answer.read().ok(),
        false => None,
    };
    state.page("settings.html", Some(&user), json!({ "s": current }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SettingsForm {
    log_level: String,
    webhook_enabled: String,
    webhook_secret: String,
    webhook_timestamp_window_secs: String,
    webhook_public_web_url: String,
    webhook_sender_domain: String,
    webhook_default_local_part: String,
    webhook_allow_any_local_part: String,
    webhook_allowed_ips: String,
    webhook_rate_limit_per_minute: String,
    api_rate_limit_per_minute: String,
    api_send_rate_limit_per_key_per_hour: String,
    delivery_mode: String,
}

/// A three-way switch: `on`, `off`, or back to the config file.
fn switch(body: &mut Value, name: &str, value: &str) {
    match value {
        "on" => body[name] = json!(true),
        "off" => body[name] = json!(false),
        _ => {
            if let Some(reset) = body["reset"].as_array_mut() {
                reset.push(json!(name));
            }
        }
    }
}

/// The form as the API's update: empty fields stay as they are; "as the config file"
/// resets the webhook switch.
fn settings_body(form: &SettingsForm) -> Result<Value, String> {
    let mut body = json!({ "reset": [] });
    if !form.log_level.trim().is_empty() {
        body["log_level"] = json!(form.log_level.trim());
    }
    switch(&mut body, "webhook_enabled", &form.webhook_enabled);
    switch(
        &mut body,
        "webhook_allow_any_local_part",
        &form.webhook_allow_any_local_part,
    );
    for (name, value) in [
        ("webhook_public_web_url", &form.webhook_public_web_url),
        ("webhook_sender_domain", &form.webhook_sender_domain),
        (
            "webhook_default_local_part",
            &form.webhook_default_local_part,
        ),
    ] {
        if !value.trim().is_empty() {
            body[name] = json!(value.trim());
        }
    }
    if !form.webhook_allowed_ips.trim().is_empty() {
        let ips: Vec<&str> = form
            .webhook_allowed_ips
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "any")
            .collect();
        body["webhook_allowed_ips"] = json!(ips);
    }
    for (name, value, what) in [
        (
            "webhook_rate_limit_per_minute",
            &form.webhook_rate_limit_per_minute,
            "the webhook's rate limit",
        ),
        (
            "api_rate_limit_per_minute",
            &form.api_rate_limit_per_minute,
            "the API's rate limit",
        ),
        (
            "api_send_rate_limit_per_key_per_hour",
            &form.api_send_rate_limit_per_key_per_hour,
            "the send limit per key",
        ),
    ] {
        if let Some(rate) = number::<u32>(&Some(value.clone()), what)? {
            body[name] = json!(rate);
        }
    }
    match form.delivery_mode.parse::<sluice_core::DeliveryMode>() {
        Ok(mode) => body["delivery_mode"] = json!(mode),
        Err(_) => {
            if let Some(reset) = body["reset"].as_array_mut() {
                reset.push(json!("delivery_mode"));
            }
        }
    }
    if !form.webhook_secret.is_empty() {
        body["webhook_secret"] = json!(form.webhook_secret);
    }
    if let Some(window) = number::<u64>(
        &Some(form.webhook_timestamp_window_secs.clone()),
        "the timestamp window",
    )? {
        body["webhook_timestamp_window_secs"] = json!(window);
    }
    Ok(body)
}

async fn save_settings(
    State(state): State<PanelState>,
    user: PanelUser,
    Form(form): Form<SettingsForm>,
) -> Response {
    match settings_body(&form) {
        Ok(body) => {
            act(
                &state,
                &user,
                Method::PUT,
                "/settings",
                Some(body),
                "/settings",
            )
            .await
        }
        Err(message) => state.error_page(Some(&user), StatusCode::UNPROCESSABLE_ENTITY, &message),
    }
}

async fn reset_settings(State(state): State<PanelState>, user: PanelUser) -> Response {
    let mut reset = vec!["log_level", "webhook_secret"];
    reset.extend(sluice_runtime_settings::OVERRIDE_FIELDS);
    let body = json!({ "reset": reset });
    act(
        &state,
        &user,
        Method::PUT,
        "/settings",
        Some(body),
        "/settings",
    )
    .await
}

/// Replaces the session secret: every panel session ends, this one too. Admins only.
async fn rotate_secret(State(state): State<PanelState>, user: PanelUser) -> Response {
    if user.role != sluice_core::Role::Admin {
        return state.error_page(
            Some(&user),
            StatusCode::FORBIDDEN,
            "only admins rotate the session secret",
        );
    }
    let ended = match session::rotate_secret(&state).await {
        Ok(ended) => ended,
        Err(_) => {
            return state.error_page(
                Some(&user),
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable",
            );
        }
    };
    let entry = sluice_store::AuditEntry {
        account_id: None,
        actor: format!("user:{}", user.id),
        action: "rotate".into(),
        target_type: "panel_session_secret".into(),
        target_id: String::new(),
        changes: json!({ "sessions_ended": ended }),
        source_ip: user.client.map(|c| c.ip().to_string()),
    };
    if let Err(error) = state.api_state.store.add_audit(&entry, now_ms()).await {
        tracing::error!(%error, "audit entry for the session secret rotation not stored");
    }
    session::to_login_clearing_session(&state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_encode_and_skip_empty_values() {
        assert_eq!(
            query_string(&[
                ("status", Some("failed")),
                ("from", Some("a b&c@x")),
                ("to", Some("")),
                ("cursor", None)
            ]),
            "?status=failed&from=a%20b%26c%40x"
        );
        assert_eq!(query_string(&[("to", None)]), "");
    }

    #[test]
    fn settings_form_becomes_the_api_update() {
        let form = SettingsForm {
            log_level: " debug ".into(),
            webhook_enabled: "off".into(),
            webhook_allow_any_local_part: "on".into(),
            webhook_timestamp_window_secs: "120".into(),
            webhook_allowed_ips: "10.0.0.0/8, 127.0.0.1/32".into(),
            api_rate_limit_per_minute: "300".into(),
            delivery_mode: "sync".into(),
            ..Default::default()
        };
        assert_eq!(
            settings_body(&form).unwrap(),
            json!({ "reset": [], "log_level": "debug", "webhook_enabled": false,
                    "webhook_allow_any_local_part": true, "webhook_timestamp_window_secs": 120,
                    "webhook_allowed_ips": ["10.0.0.0/8", "127.0.0.1/32"],
                    "api_rate_limit_per_minute": 300, "delivery_mode": "sync" })
        );
        let config = SettingsForm {
            webhook_enabled: "config".into(),
            ..Default::default()
        };
        let body = settings_body(&config).unwrap();
        assert_eq!(
            body["reset"],
            json!([
                "webhook_enabled",
                "webhook_allow_any_local_part",
                "delivery_mode"
            ])
        );
        assert!(body.get("log_level").is_none());
        let any = SettingsForm {
            webhook_allowed_ips: "any".into(),
            ..Default::default()
        };
        assert_eq!(
            settings_body(&any).unwrap()["webhook_allowed_ips"],
            json!([])
        );
    }
}
