//! The sandbox's settings page (`/inbox/settings`): sandbox mode, how much captured mail
//! is kept (count and days), where it may be released to, and the injected SMTP answers
//! (chaos) per stage. It writes the account's fields through `PUT /accounts/{id}`, so the
//! API's rules hold: owners and admins only, turning sandbox mode off audited.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::super::{PanelState, PanelUser, act_on_form, api_read};
use sluice_api::dto::Page;
use sluice_api::dto::accounts::AccountView;

/// The SMTP stages a chaos rule can take, as the form and `capture_chaos` name them.
const STAGES: [&str; 4] = ["auth", "mail", "rcpt", "data"];

#[derive(Debug, Deserialize)]
pub(super) struct SettingsQuery {
    account_id: Option<String>,
    saved: Option<String>,
}

/// `/inbox/settings`: the account's sandbox settings (a tenant's own; an admin names one
/// with `account_id`, or picks one from the list first).
pub(super) async fn settings_page(
    State(state): State<PanelState>,
    user: PanelUser,
    Query(query): Query<SettingsQuery>,
) -> Response {
    let named = query
        .account_id
        .as_deref()
        .and_then(|a| a.trim().parse::<i64>().ok());
    let id = match named.or(user.account_id) {
        Some(id) => id,
        None => {
            let accounts: Page<AccountView> =
                match api_read(&state, &user, Method::GET, "/accounts?limit=200", None).await {
                    Ok(page) => page,
                    Err(page) => return page,
                };
            match accounts.items.as_slice() {
                [only] => only.id,
                _ => {
                    return state.page(
                        "inbox_settings.html",
                        Some(&user),
                        json!({ "accounts": accounts.items }),
                    );
                }
            }
        }
    };
    let account: AccountView =
        match api_read(&state, &user, Method::GET, &format!("/accounts/{id}"), None).await {
            Ok(account) => account,
            Err(page) => return page,
        };
    let chaos = serde_json::to_value(&account.capture_chaos).unwrap_or(Value::Null);
    let stages: Vec<Value> = STAGES
        .iter()
        .map(|stage| json!({ "name": stage, "rule": chaos.get(stage) }))
        .collect();
    state.page(
        "inbox_settings.html",
        Some(&user),
        json!({
            "account": account,
            "allowlist": account.capture_release_allowlist.as_deref().map(|l| l.join("\n")),
            "stages": stages,
            "saved": query.saved.is_some(),
            // The API lets owners and admins change them; others see them read-only.
            "editable": user.role >= sluice_core::Role::Owner,
        }),
    )
}

/// Saves the form through `PUT /accounts/{id}`.
pub(super) async fn save_settings(
    State(state): State<PanelState>,
    user: PanelUser,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let id = value(&pairs, "account_id").and_then(|a| a.parse::<i64>().ok());
    let Some(id) = id else {
        return state.error_page(
            Some(&user),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no account was named",
        );
    };
    let then = format!("/inbox/settings?account_id={id}&saved=1");
    let body = settings_body(&pairs);
    act_on_form(
        &state,
        &user,
        Method::PUT,
        &format!("/accounts/{id}"),
        body,
        &then,
    )
    .await
}

/// A form field, trimmed; `None` when absent or blank.
fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A whole number field: blank is `null` (the server's default).
fn number(pairs: &[(String, String)], name: &str) -> Result<Value, String> {
    match value(pairs, name) {
        None => Ok(Value::Null),
        Some(text) => text
            .parse::<i64>()
            .map(|n| json!(n))
            .map_err(|_| format!("{name}: {text:?} is not a whole number")),
    }
}

/// The account fields the form sets, as `PUT /accounts/{id}` takes them: retention
/// (blank: the server's default), the release allowlist (one entry a line; blank:
/// anywhere), chaos (a stage with a code gets a rule; its probability is a percentage) and
/// sandbox mode (the checkbox).
pub(crate) fn settings_body(pairs: &[(String, String)]) -> Result<Value, String> {
    let allowlist: Vec<&str> = value(pairs, "capture_release_allowlist")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut chaos = Map::new();
    for stage in STAGES {
        let Some(code) = value(pairs, &format!("chaos_{stage}_code")) else {
            continue;
        };
        let code: u16 = code
            .parse()
            .map_err(|_| format!("{stage}: the code {code:?} is not a number"))?;
        let percent = value(pairs, &format!("chaos_{stage}_percent")).unwrap_or("100");
        let percent: f64 = percent
            .parse()
            .ok()
            .filter(|p: &f64| (0.0..=100.0).contains(p))
            .ok_or_else(|| format!("{stage}: the probability {percent:?} is not 0 to 100 (%)"))?;
        let mut rule = json!({ "code": code, "probability": percent / 100.0 });
        if let Some(message) = value(pairs, &format!("chaos_{stage}_message")) {
            rule["message"] = json!(message);
        }
        chaos.insert(stage.to_string(), rule);
    }
    Ok(json!({
        "sandbox": value(pairs, "sandbox").is_some(),
        "capture_retention_count": number(pairs, "capture_retention_count")?,
        "capture_retention_days": number(pairs, "capture_retention_days")?,
        "capture_release_allowlist": match allowlist.is_empty() {
            true => Value::Null,
            false => json!(allowlist),
        },
        "capture_chaos": match chaos.is_empty() {
            true => Value::Null,
            false => Value::Object(chaos),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_form_becomes_the_accounts_capture_fields() {
        let body = settings_body(&pairs(&[
            ("sandbox", "on"),
            ("capture_retention_count", " 50 "),
            ("capture_retention_days", ""),
            (
                "capture_release_allowlist",
                "qa@example.com\r\n\r\n example.org \r\n",
            ),
            ("chaos_rcpt_code", "451"),
            ("chaos_rcpt_percent", "10"),
            ("chaos_rcpt_message", ""),
            ("chaos_data_code", ""),
            ("chaos_data_percent", "50"),
        ]))
        .unwrap();
        assert_eq!(
            body,
            json!({
                "sandbox": true,
                "capture_retention_count": 50,
                "capture_retention_days": null,
                "capture_release_allowlist": ["qa@example.com", "example.org"],
                "capture_chaos": { "rcpt": { "code": 451, "probability": 0.1 } },
            })
        );
    }

    #[test]
    fn blank_fields_are_the_defaults_and_bad_ones_are_named() {
        let body = settings_body(&pairs(&[])).unwrap();
        assert_eq!(body["sandbox"], false);
        assert_eq!(body["capture_chaos"], Value::Null);
        assert_eq!(body["capture_release_allowlist"], Value::Null);
        let bad = settings_body(&pairs(&[("capture_retention_days", "a week")]));
        assert!(bad.unwrap_err().contains("capture_retention_days"));
        let bad = settings_body(&pairs(&[
            ("chaos_mail_code", "451"),
            ("chaos_mail_percent", "150"),
        ]));
        assert!(bad.unwrap_err().contains("0 to 100"));
    }
}
