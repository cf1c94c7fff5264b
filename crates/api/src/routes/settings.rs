//! Run-time settings (admins): what every node applies within a few seconds without a
//! restart, over the config file. See `crate::runtime`.

use axum::extract::State;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Json};
use super::super::principal::Principal;
use super::super::{ApiState, now_ms};
use super::ErrorBody;
use crate::dto::settings::SettingsView;
use sluice_runtime_settings::{
    OVERRIDE_FIELDS, Overrides, RUNTIME_KEY, StoredRuntime, valid_log_level,
};

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(get_settings, update_settings))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateSettings {
    /// `info`, `warn`, ... or `target=level` directives joined by commas.
    pub log_level: Option<String>,
    /// A new HMAC key for the outbound-email webhook (16 to 256 characters).
    pub webhook_secret: Option<String>,
    #[serde(flatten)]
    pub overrides: Overrides,
    /// Fields to return to the config file's value.
    #[serde(default)]
    pub reset: Vec<String>,
}

fn view(stored: &StoredRuntime) -> SettingsView {
    SettingsView {
        log_level: stored.log_level.clone(),
        webhook_secret_set: stored.webhook_secret_sealed.is_some(),
        overrides: stored.overrides.clone(),
    }
}

async fn stored(state: &ApiState) -> Result<StoredRuntime, ApiError> {
    Ok(match state.store.setting(RUNTIME_KEY).await? {
        Some(text) => serde_json::from_str(&text).unwrap_or_default(),
        None => StoredRuntime::default(),
    })
}

/// The run-time settings (admins).
#[utoipa::path(get, path = "/settings", tag = "settings", security(("bearer" = [])),
    responses((status = 200, body = SettingsView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn get_settings(
    State(state): State<ApiState>,
    who: Principal,
) -> Result<axum::Json<SettingsView>, ApiError> {
    if !who.is_admin() {
        return Err(ApiError::forbidden());
    }
    Ok(axum::Json(view(&stored(&state).await?)))
}

/// Changes run-time settings (admins); every node applies them within a few seconds.
/// Audited, without the secret.
#[utoipa::path(put, path = "/settings", tag = "settings", request_body = UpdateSettings,
    security(("bearer" = [])),
    responses((status = 200, body = SettingsView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_settings(
    State(state): State<ApiState>,
    who: Principal,
    Json(update): Json<UpdateSettings>,
) -> Result<axum::Json<SettingsView>, ApiError> {
    if !who.is_admin() {
        return Err(ApiError::forbidden());
    }
    let known = |f: &str| f == "log_level" || f == "webhook_secret" || OVERRIDE_FIELDS.contains(&f);
    if let Some(unknown) = update.reset.iter().find(|f| !known(f)) {
        return Err(ApiError::validation(format!(
            "reset names {unknown}; fields are log_level, webhook_secret, {}",
            OVERRIDE_FIELDS.join(", ")
        )));
    }
    if let Some(level) = &update.log_level
        && !valid_log_level(level)
    {
        return Err(ApiError::validation(
            "log_level is trace, debug, info, warn, error or off, or target=level directives joined by commas",
        ));
    }
    if let Some(secret) = &update.webhook_secret
        && (secret.len() < 16 || secret.len() > 256)
    {
        return Err(ApiError::validation(
            "webhook_secret has 16 to 256 characters",
        ));
    }
    update.overrides.check().map_err(ApiError::validation)?;
    let mut settings = stored(&state).await?;
    let mut changed: Vec<&str> = settings.overrides.take(&update.overrides);
    if let Some(level) = update.log_level {
        settings.log_level = Some(level);
        changed.push("log_level");
    }
    if let Some(secret) = update.webhook_secret {
        settings.webhook_secret_sealed = Some(state.seal_bytes(secret.as_bytes()));
        changed.push("webhook_secret");
    }
    for field in &update.reset {
        match field.as_str() {
            "log_level" => settings.log_level = None,
            "webhook_secret" => settings.webhook_secret_sealed = None,
            other => {
                settings.overrides.reset(other);
            }
        }
    }
    let text = serde_json::to_string(&settings)
        .map_err(|e| ApiError::validation(format!("settings: {e}")))?;
    state
        .store
        .put_setting(RUNTIME_KEY, &text, now_ms())
        .await?;
    let shown = view(&settings);
    state
        .audit(
            &who,
            None,
            "update",
            "settings",
            RUNTIME_KEY,
            json!({
                "changed": changed, "reset": update.reset,
                "log_level": shown.log_level, "webhook": shown.overrides,
            }),
        )
        .await?;
    Ok(axum::Json(shown))
}
