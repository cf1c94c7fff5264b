//! The providers pages: the list, a form per type to create one (SMTP with its port
//! presets, each email service with its settings), a form to edit one (secrets left
//! empty keep their stored value), and Test SMTP (probe, or one real test message).

use axum::Form;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::pages::number;
use super::{PanelState, PanelUser, act_on_form, api_read};
use sluice_api::dto::providers::{ProviderView, TestResult};

pub fn routes() -> axum::Router<PanelState> {
    axum::Router::new()
        .route("/providers", get(providers).post(create_provider))
        .route("/providers/{id}/test", post(test_provider))
        .route(
            "/providers/{id}/edit",
            get(edit_provider).post(save_provider),
        )
        .route("/providers/service", post(create_provider))
}

/// The email services' forms: each type's settings as the API takes them, the optional
/// ones (base URLs, webhook keys, timeouts) labelled so and left out when empty.
/// (setting name, label, secret?)
type ServiceField = (&'static str, &'static str, bool);

const TIMEOUT: ServiceField = ("timeout_secs", "Timeout in seconds (optional, 30)", false);

const SERVICE_FORMS: &[(&str, &str, &[ServiceField])] = &[
    (
        "sendgrid",
        "SendGrid",
        &[
            ("api_key", "API key", true),
            (
                "base_url",
                "Base URL (optional, https://api.sendgrid.com)",
                false,
            ),
            (
                "webhook_verification_key",
                "Event Webhook verification key (optional, base64)",
                false,
            ),
            TIMEOUT,
        ],
    ),
    (
        "mailgun",
        "Mailgun",
        &[
            ("domain", "Sending domain", false),
            ("api_key", "API key", true),
            ("region", "Region (us or eu)", false),
            ("base_url", "Base URL (optional, by region)", false),
            (
                "webhook_signing_key",
                "HTTP webhook signing key (optional)",
                true,
            ),
            TIMEOUT,
        ],
    ),
    (
        "ses",
        "Amazon SES v2",
        &[
            ("region", "Region (e.g. eu-west-1)", false),
            ("access_key_id", "Access key id", false),
            ("secret_access_key", "Secret access key", true),
            ("endpoint", "Endpoint (optional, by region)", false),
            ("configuration_set", "Configuration set (optional)", false),
            TIMEOUT,
        ],
    ),
    (
        "msgraph",
        "Microsoft Graph",
        &[
            ("tenant_id", "Tenant id", false),
            ("client_id", "Client id", false),
            ("client_secret", "Client secret", true),
            ("sender", "Sender mailbox", false),
            (
                "authority_url",
                "Authority URL (optional, https://login.microsoftonline.com)",
                false,
            ),
            (
                "graph_url",
                "Graph URL (optional, https://graph.microsoft.com)",
                false,
            ),
            TIMEOUT,
        ],
    ),
    // Keeps every message it is given in Sluice (Messages: view, release, delete);
    // delivers nothing. No settings.
    ("capture", "Capture (keep mail here, deliver nothing)", &[]),
];

/// A service's form: its fields, each with the value it has now (`config`), secrets never.
fn service_form(kind: &str, title: &str, fields: &[ServiceField], config: &Value) -> Value {
    let fields: Vec<Value> = fields
        .iter()
        .map(|(name, label, secret)| {
            let value = match (&config[*name], secret) {
                (_, true) | (Value::Null, _) => String::new(),
                (Value::String(s), _) => s.clone(),
                (other, _) => other.to_string(),
            };
            json!({ "name": name, "label": label, "secret": secret, "value": value })
        })
        .collect();
    json!({ "type": kind, "title": title, "fields": fields })
}

async fn providers(State(state): State<PanelState>, user: PanelUser) -> Response {
    let services: Vec<Value> = SERVICE_FORMS
        .iter()
        .map(|(kind, title, fields)| service_form(kind, title, fields, &Value::Null))
        .collect();
    match api_read::<Vec<ProviderView>>(&state, &user, Method::GET, "/providers", None).await {
        Ok(list) => state.page(
            "providers.html",
            Some(&user),
            json!({ "providers": list, "services": services }),
        ),
        Err(page) => page,
    }
}

type FormPairs = [(String, String)];

/// A field of a form, trimmed; empty is absent.
fn form_value(form: &FormPairs, name: &str) -> Option<String> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The settings of a provider from its form: the SMTP form or an email service's.
/// Secrets left empty are left out (on an update, the stored ones are kept).
fn form_settings(form: &FormPairs) -> Result<(String, Value), String> {
    let value = |name: &str| form_value(form, name);
    let kind = value("provider_type").unwrap_or_else(|| "smtp".into());
    let mut config = serde_json::Map::new();
    if kind == "smtp" {
        config.insert("host".into(), json!(value("host").unwrap_or_default()));
        config.insert(
            "security".into(),
            json!(value("security").unwrap_or_else(|| "starttls".into())),
        );
        config.insert(
            "skip_tls_verify".into(),
            json!(value("skip_tls_verify").is_some()),
        );
        if let Some(port) = number::<u16>(&value("port"), "port")? {
            config.insert("port".into(), json!(port));
        }
        if let Some(timeout) = number::<u64>(&value("timeout_secs"), "timeout")? {
            config.insert("timeout_secs".into(), json!(timeout));
        }
        for key in ["username", "password", "from_name"] {
            if let Some(v) = value(key) {
                config.insert(key.into(), json!(v));
            }
        }
        return Ok((kind, Value::Object(config)));
    }
    if kind == "log" {
        // No settings; its edit form saves name, priority and enabled.
        return Ok((kind, Value::Object(config)));
    }
    let Some((_, _, fields)) = SERVICE_FORMS.iter().find(|(k, _, _)| *k == kind) else {
        return Err("choose a provider type".into());
    };
    for (name, label, _) in fields.iter() {
        if *name == "timeout_secs" {
            if let Some(secs) = number::<u64>(&value(name), label)? {
                config.insert(name.to_string(), json!(secs));
            }
        } else if let Some(v) = value(name) {
            config.insert(name.to_string(), json!(v));
        }
    }
    Ok((kind, Value::Object(config)))
}

/// What a provider's create and edit forms share: its name, settings and priority (and
/// the type the settings are of).
fn provider_body(form: &FormPairs) -> Result<(String, Value), String> {
    let (kind, config) = form_settings(form)?;
    let mut body =
        json!({ "name": form_value(form, "name").unwrap_or_default(), "config": config });
    if let Some(priority) = number::<i64>(&form_value(form, "priority"), "priority")? {
        body["priority"] = json!(priority);
    }
    Ok((kind, body))
}

/// The API's body to create a provider from its form.
fn new_provider_body(form: &FormPairs) -> Result<Value, String> {
    let (kind, mut body) = provider_body(form)?;
    body["provider_type"] = json!(kind);
    if let Some(account) = number::<i64>(&form_value(form, "account_id"), "account")? {
        body["account_id"] = json!(account);
    }
    Ok(body)
}

/// The API's body to update a provider from its edit form (type and account stay).
fn update_provider_body(form: &FormPairs) -> Result<Value, String> {
    let (_, mut body) = provider_body(form)?;
    body["enabled"] = json!(form_value(form, "enabled").is_some());
    Ok(body)
}

/// Both create forms: SMTP posts to `/providers`, the services' to `/providers/service`.
async fn create_provider(
    State(state): State<PanelState>,
    user: PanelUser,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let body = new_provider_body(&form);
    act_on_form(
        &state,
        &user,
        Method::POST,
        "/providers",
        body,
        "/providers",
    )
    .await
}

async fn edit_provider(
    State(state): State<PanelState>,
    user: PanelUser,
    Path(id): Path<i64>,
) -> Response {
    let path = format!("/providers/{id}");
    let provider: ProviderView = match api_read(&state, &user, Method::GET, &path, None).await {
        Ok(provider) => provider,
        Err(page) => return page,
    };
    let service = SERVICE_FORMS
        .iter()
        .find(|(k, _, _)| *k == provider.provider_type)
        .map(|(kind, title, fields)| service_form(kind, title, fields, &provider.config));
    state.page(
        "provider_edit.html",
        Some(&user),
        json!({ "p": provider, "service": service }),
    )
}

async fn save_provider(
    State(state): State<PanelState>,
    user: PanelUser,
    Path(id): Path<i64>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let path = format!("/providers/{id}");
    let body = update_provider_body(&form);
    act_on_form(&state, &user, Method::PUT, &path, body, "/providers").await
}

#[derive(Deserialize)]
struct TestForm {
    from: Option<String>,
    to: Option<String>,
}

/// Test SMTP: without a recipient, a probe; with one, a real test message too.
async fn test_provider(
    State(state): State<PanelState>,
    user: PanelUser,
    Path(id): Path<i64>,
    Form(form): Form<TestForm>,
) -> Response {
    let path = format!("/providers/{id}/test");
    let to = form.to.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let from = form.from.as_deref().map(str::trim).unwrap_or_default();
    let body = to.map(|to| json!({ "from": from, "to": to }));
    match api_read::<TestResult>(&state, &user, Method::POST, &path, body).await {
        Ok(result) => state.page(
            "provider_test.html",
            Some(&user),
            json!({ "id": id, "result": result, "test_message": true, "to": to }),
        ),
        Err(page) => page,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form_pairs as pairs;

    #[test]
    fn service_forms_become_provider_settings() {
        let form = pairs(&[
            ("provider_type", "mailgun"),
            ("name", "mg"),
            ("domain", "mg.example.com"),
            ("api_key", "key-1"),
            ("region", ""),
            ("webhook_signing_key", "sign-1"),
            ("timeout_secs", "12"),
            ("priority", "3"),
            ("account_id", ""),
        ]);
        assert_eq!(
            new_provider_body(&form).unwrap(),
            json!({ "name": "mg", "provider_type": "mailgun", "priority": 3,
                    "config": { "domain": "mg.example.com", "api_key": "key-1",
                                "webhook_signing_key": "sign-1", "timeout_secs": 12 } })
        );
        let slow = pairs(&[("provider_type", "ses"), ("timeout_secs", "soon")]);
        assert!(
            new_provider_body(&slow)
                .unwrap_err()
                .contains("must be a number")
        );
        assert!(new_provider_body(&pairs(&[("provider_type", "pigeon")])).is_err());
        let capture = pairs(&[
            ("provider_type", "capture"),
            ("name", "keep"),
            ("priority", ""),
        ]);
        assert_eq!(
            new_provider_body(&capture).unwrap(),
            json!({ "name": "keep", "provider_type": "capture", "config": {} }),
            "capture is a provider type the panel can choose"
        );
    }

    #[test]
    fn smtp_form_fields_become_provider_settings() {
        let form = [
            ("name", " relay "),
            ("host", "mx.example.com"),
            ("port", ""),
            ("security", "starttls"),
            ("username", "u"),
            ("password", ""),
            ("timeout_secs", "10"),
            ("skip_tls_verify", "on"),
            ("from_name", " Example Billing "),
            ("account_id", "3"),
        ];
        let body = new_provider_body(&pairs(&form)).unwrap();
        assert_eq!(body["name"], "relay");
        assert_eq!(body["provider_type"], "smtp");
        assert_eq!(
            body["config"]["port"],
            Value::Null,
            "empty port: the preset's"
        );
        assert_eq!(body["config"]["timeout_secs"], 10);
        assert_eq!(body["config"]["skip_tls_verify"], true);
        assert_eq!(body["config"]["username"], "u");
        assert_eq!(body["config"]["from_name"], "Example Billing");
        assert_eq!(body["config"]["password"], Value::Null);
        assert_eq!(body["account_id"], 3);
        let mut bad = pairs(&form);
        bad[2].1 = "x".into();
        assert_eq!(
            new_provider_body(&bad).unwrap_err(),
            "port must be a number"
        );
    }

    #[test]
    fn an_edit_form_keeps_empty_secrets_and_sends_enabled_and_priority() {
        let form = pairs(&[
            ("provider_type", "sendgrid"),
            ("name", "sg"),
            ("api_key", ""),
            ("timeout_secs", "9"),
            ("priority", "4"),
        ]);
        assert_eq!(
            update_provider_body(&form).unwrap(),
            json!({ "name": "sg", "enabled": false, "priority": 4,
                    "config": { "timeout_secs": 9 } }),
            "no api_key: the API keeps the stored one; unchecked: disabled"
        );
        let smtp = pairs(&[("name", "r"), ("host", "h"), ("enabled", "on")]);
        let body = update_provider_body(&smtp).unwrap();
        assert_eq!(body["enabled"], true);
        assert_eq!(body["config"]["password"], Value::Null);
    }

    #[test]
    fn a_services_edit_form_shows_its_settings_but_never_a_secret() {
        let (kind, title, fields) = SERVICE_FORMS[0];
        let form = service_form(
            kind,
            title,
            fields,
            &json!({ "api_key": "********", "timeout_secs": 12, "base_url": "https://x.test" }),
        );
        let value_of = |name: &str| {
            form["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == name)
                .map(|f| f["value"].clone())
        };
        assert_eq!(value_of("api_key"), Some(json!("")));
        assert_eq!(value_of("timeout_secs"), Some(json!("12")));
        assert_eq!(value_of("base_url"), Some(json!("https://x.test")));
    }
}
