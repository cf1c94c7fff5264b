//! The panel's pages for the API's simple resources (accounts, API keys, SMTP credentials,
//! suppressions, routing rules, webhook endpoints, DKIM keys, live SMTP connections): one
//! table that says, per resource, where the API has it and what its
//! create form asks; one list page, one create handler, one remove handler serve them all.
//!
//! Per-account resources give an admin (who has no account of their own) an account
//! picker, showing the first account until another is picked.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{PanelState, PanelUser, account_query, act, act_on_form, api_json, api_read};
use sluice_api::dto::Page;
use sluice_api::dto::accounts::AccountView;

mod table;

use table::{Field, Kind, resource};

pub fn routes() -> axum::Router<PanelState> {
    axum::Router::new()
        .route("/r/{slug}", get(list).post(create))
        .route("/r/{slug}/{id}/remove", post(remove))
        .route("/r/{slug}/{id}/test", post(test))
        .route("/r/{slug}/{id}/edit", get(edit_form).post(save_edit))
}

/// A create form's fields as the API's JSON body: empty optional fields left out.
pub fn form_body(fields: &[Field], form: &[(String, String)]) -> Result<Value, String> {
    let mut body = Map::new();
    for f in fields {
        let given = form
            .iter()
            .find(|(k, _)| k == f.name)
            .map(|(_, v)| v.trim());
        let value = match (f.kind, given) {
            (Kind::Bool, given) => json!(given.is_some()),
            (_, None | Some("")) if f.required => return Err(format!("{} is required", f.label)),
            (_, None | Some("")) => continue,
            (Kind::Text | Kind::Password, Some(v)) => json!(v),
            (Kind::Number, Some(v)) => json!(
                v.parse::<i64>()
                    .map_err(|_| format!("{} must be a number", f.label))?
            ),
            (Kind::List, Some(v)) => json!(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            ),
            (Kind::Numbers, Some(v)) => json!(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse::<i64>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| format!("{} must be numbers", f.label))?
            ),
            (Kind::Json, Some(v)) => {
                serde_json::from_str(v).map_err(|e| format!("{} is not JSON: {e}", f.label))?
            }
        };
        body.insert(f.name.to_string(), value);
    }
    Ok(Value::Object(body))
}

/// The edit form's fields, filled in from the item the API returned. Passwords and
/// secrets start empty (empty keeps them).
pub fn filled_fields(fields: &[Field], item: &Value) -> Vec<Value> {
    fields
        .iter()
        .map(|f| {
            let current = &item[f.name];
            let value = match (f.kind, current) {
                (Kind::Password, _) | (_, Value::Null) => String::new(),
                (Kind::List | Kind::Numbers, Value::Array(items)) => items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                (Kind::Json, value) => serde_json::to_string_pretty(value).unwrap_or_default(),
                (_, Value::String(s)) => s.clone(),
                (_, other) => other.to_string(),
            };
            json!({
                "name": f.name, "label": f.label, "kind": format!("{:?}", f.kind).to_lowercase(),
                "required": f.required, "value": value, "checked": current.as_bool() == Some(true),
            })
        })
        .collect()
}

/// Rows of a list answer (an array, or a page's `items`), each as (column, text) cells.
/// Untyped on purpose: one table serves every simple resource and shows the fields it has.
fn table_rows(answer: &Value) -> (Vec<String>, Vec<Value>) {
    let items = answer
        .get("items")
        .and_then(Value::as_array)
        .or(answer.as_array())
        .cloned()
        .unwrap_or_default();
    let mut columns: Vec<String> = Vec::new();
    for item in &items {
        for key in item.as_object().into_iter().flat_map(|o| o.keys()) {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    let rows = items
        .iter()
        .map(|item| {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| match &item[c] {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    Value::Number(ms) if c.ends_with("_at") => {
                        ms.as_i64().map(super::utc_datetime).unwrap_or_default()
                    }
                    other => other.to_string(),
                })
                .collect();
            json!({ "id": item["id"], "cells": cells })
        })
        .collect();
    (columns, rows)
}

/// The accounts an admin may pick from (id and name), from the API's account list.
fn account_choices(listed: &Page<AccountView>) -> Vec<Value> {
    listed
        .items
        .iter()
        .map(|a| json!({ "id": a.id, "name": a.name }))
        .collect()
}

#[derive(Deserialize)]
struct ListQuery {
    account_id: Option<String>,
}

async fn list(
    State(state): State<PanelState>,
    user: PanelUser,
    Path(slug): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    let Some(r) = resource(&slug) else {
        return state.error_page(Some(&user), StatusCode::NOT_FOUND, "no such page");
    };
    let mut account_id = query
        .account_id
        .as_deref()
        .map(str::trim)
        .filter(|a| a.parse::<i64>().is_ok())
        .map(str::to_string);
    // An admin has no account of their own: these lists need one, so the page offers
    // a choice of accounts and shows the first until another is picked.
    let accounts = match r.per_account && user.role == sluice_core::Role::Admin {
        true => match api_read(&state, &user, Method::GET, "/accounts", None).await {
            Ok(listed) => Some(account_choices(&listed)),
            // Not a system admin after all: the API scopes the list to their account.
            Err(_) => None,
        },
        false => None,
    };
    if let (Some(accounts), None) = (&accounts, &account_id) {
        account_id = accounts.first().map(|a| a["id"].to_string());
    }
    if accounts.is_some() && account_id.is_none() {
        return state.page(
            "resource.html",
            Some(&user),
            json!({
                "r": { "slug": r.slug, "title": r.title },
                "columns": [], "rows": [], "fields": [], "accounts": accounts,
                "no_accounts": true,
            }),
        );
    }
    let path = format!("{}{}", r.api, account_query(account_id.as_deref()));
    let listed = match api_json(&state, &user, Method::GET, &path, None).await {
        Ok(listed) => listed,
        Err(page) => return page,
    };
    let (columns, rows) = table_rows(&listed);
    let fields: Vec<Value> = r
        .fields
        .iter()
        .map(|f| {
            json!({ "name": f.name, "label": f.label, "kind": format!("{:?}", f.kind).to_lowercase(), "required": f.required })
        })
        .collect();
    state.page(
        "resource.html",
        Some(&user),
        json!({
            "r": { "slug": r.slug, "title": r.title, "remove": r.remove, "test": r.test,
                   "edit": !r.edit.is_empty() },
            "columns": columns, "rows": rows, "fields": fields,
            "account_id": account_id, "accounts": accounts,
        }),
    )
}

async fn create(
    State(state): State<PanelState>,
    user: PanelUser,
    Path(slug): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let Some(r) = resource(&slug).filter(|r| !r.fields.is_empty()) else {
        return state.error_page(Some(&user), StatusCode::NOT_FOUND, "no such page");
    };
    let body = match form_body(r.fields, &form) {
        Ok(body) => body,
        Err(message) => {
            return state.error_page(Some(&user), StatusCode::UNPROCESSABLE_ENTITY, &message);
        }
    };
    let created = match api_json(&state, &user, Method::POST, r.api, Some(body)).await {
        Ok(created) => created,
        Err(page) => return page,
    };
    if r.once.is_empty() {
        let account = form
            .iter()
            .find(|(k, _)| k == "account_id")
            .map(|(_, v)| v.as_str());
        let back = format!("/r/{}{}", r.slug, account_query(account));
        return Redirect::to(&back).into_response();
    }
    // Shown here once: the API will not show it again.
    let created = serde_json::to_string_pretty(&created).unwrap_or_default();
    state.page(
        "created.html",
        Some(&user),
        json!({ "r": { "slug": r.slug, "title": r.title, "once": r.once }, "created": created }),
    )
}

async fn remove(
    State(state): State<PanelState>,
    user: PanelUser,
    Path((slug, id)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
) -> Response {
    let account = account_query(query.account_id.as_deref());
    let Some(r) = resource(&slug).filter(|r| r.remove.is_some()) else {
        return state.error_page(Some(&user), StatusCode::NOT_FOUND, "no such page");
    };
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return state.error_page(Some(&user), StatusCode::NOT_FOUND, "no such item");
    }
    let path = format!("{}/{id}{account}", r.api);
    let back = format!("/r/{}{account}", r.slug);
    act(&state, &user, Method::DELETE, &path, None, &back).await
}

async fn edit_form(
    State(state): State<PanelState>,
    user: PanelUser,
    Path((slug, id)): Path<(String, i64)>,
) -> Response {
    let Some(r) = resource(&slug).filter(|r| !r.edit.is_empty()) else {
        return state.error_page(Some(&user), StatusCode::NOT_FOUND, "no such page");
    };
    let item = match api_json(&state, &user, Method::GET, &format!("{}/{id}", r.api), None).await {
        Ok(item) => item,
        Err(page) => return page,
    };
    state.page(
        "resource_edit.html",
        Some(&user),
        json!({
            "r": { "slug": r.slug, "title": r.title }, "id": id,
            "fields": filled_fields(r.edit, &item),
        }),
    )
}

async fn save_edit(
    State(state): State<PanelState>,
    user: PanelUser,
    Path((slug, id)): Path<(String, i64)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let Some(r) = resource(&slug).filter(|r| !r.edit.is_empty()) else {
        return state.error_page(Some(&user), StatusCode::NOT_FOUND, "no such page");
    };
    let path = format!("{}/{id}", r.api);
    let back = format!("/r/{}", r.slug);
    let body = form_body(r.edit, &form);
    act_on_form(&state, &user, Method::PUT, &path, body, &back).await
}

/// Runs the resource's check and shows each step.
async fn test(
    State(state): State<PanelState>,
    user: PanelUser,
    Path((slug, id)): Path<(String, i64)>,
) -> Response {
    let Some(r) = resource(&slug).filter(|r| r.test) else {
        return state.error_page(Some(&user), StatusCode::NOT_FOUND, "no such page");
    };
    let path = format!("{}/{id}/test", r.api);
    let result = match api_json(&state, &user, Method::POST, &path, None).await {
        Ok(result) => result,
        Err(page) => return page,
    };
    state.page(
        "provider_test.html",
        Some(&user),
        json!({ "what": r.title, "back": format!("/r/{}", r.slug), "id": id, "result": result }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form_pairs as pairs;

    #[test]
    fn form_fields_become_the_api_body() {
        let rules = resource("routing-rules").unwrap();
        let body = form_body(
            rules.fields,
            &pairs(&[
                ("name", "eu"),
                ("priority", "5"),
                ("provider_id", "2"),
                ("fallbacks", "3, 4"),
                ("conditions", "{\"recipient_domains\": [\"example.org\"]}"),
                ("account_id", ""),
            ]),
        )
        .unwrap();
        assert_eq!(
            body,
            json!({ "name": "eu", "priority": 5, "provider_id": 2, "fallbacks": [3, 4],
                    "conditions": { "recipient_domains": ["example.org"] }, "enabled": false })
        );
        let endpoints = resource("webhook-endpoints").unwrap();
        let body = form_body(
            endpoints.fields,
            &pairs(&[("url", "https://h.test/x"), ("events", "delivered, failed")]),
        )
        .unwrap();
        assert_eq!(body["events"], json!(["delivered", "failed"]));
    }

    #[test]
    fn bad_form_fields_are_named() {
        let rules = resource("routing-rules").unwrap();
        let missing = form_body(rules.fields, &pairs(&[("name", "x")])).unwrap_err();
        assert!(missing.starts_with("Priority"), "{missing}");
        let bad = form_body(
            rules.fields,
            &pairs(&[("name", "x"), ("priority", "one"), ("provider_id", "1")]),
        )
        .unwrap_err();
        assert!(bad.contains("must be a number"), "{bad}");
        let json = form_body(
            rules.fields,
            &pairs(&[
                ("name", "x"),
                ("priority", "1"),
                ("provider_id", "1"),
                ("conditions", "{"),
            ]),
        )
        .unwrap_err();
        assert!(json.contains("is not JSON"), "{json}");
    }

    #[test]
    fn edit_forms_are_filled_from_the_item() {
        let rules = resource("routing-rules").unwrap();
        let item = json!({ "id": 3, "name": "eu", "priority": 5, "provider_id": 2,
            "fallbacks": [3, 4], "conditions": { "recipient_domains": ["example.org"] },
            "enabled": true });
        let filled = filled_fields(rules.edit, &item);
        let value = |name: &str| {
            filled
                .iter()
                .find(|f| f["name"] == name)
                .map(|f| f["value"].as_str().unwrap().to_string())
                .unwrap()
        };
        assert_eq!(value("name"), "eu");
        assert_eq!(value("priority"), "5");
        assert_eq!(value("fallbacks"), "3, 4");
        assert!(value("conditions").contains("\"recipient_domains\""));
        assert!(
            filled
                .iter()
                .any(|f| f["name"] == "enabled" && f["checked"] == true)
        );
        // The filled form, sent back unchanged, is the same rule.
        let form: Vec<(String, String)> = filled
            .iter()
            .filter(|f| f["kind"] != "bool" || f["checked"] == true)
            .map(|f| {
                let value = if f["kind"] == "bool" {
                    "on".to_string()
                } else {
                    f["value"].as_str().unwrap().to_string()
                };
                (f["name"].as_str().unwrap().to_string(), value)
            })
            .collect();
        let body = form_body(rules.edit, &form).unwrap();
        for key in [
            "name",
            "priority",
            "provider_id",
            "fallbacks",
            "conditions",
            "enabled",
        ] {
            assert_eq!(body[key], item[key], "{key}");
        }
        // A secret is never filled in.
        let endpoints = resource("webhook-endpoints").unwrap();
        let filled = filled_fields(
            endpoints.edit,
            &json!({ "secret": "s3cret", "url": "https://h.test" }),
        );
        assert!(!serde_json::to_string(&filled).unwrap().contains("s3cret"));
    }

    #[test]
    fn lists_and_pages_become_rows() {
        let (columns, rows) =
            table_rows(&json!({ "items": [{ "id": 1, "name": "a" }, { "id": 2, "extra": [1] }] }));
        assert_eq!(columns, vec!["id", "name", "extra"]);
        assert_eq!(rows[1]["cells"], json!(["2", "", "[1]"]));
        let (columns, rows) =
            table_rows(&json!([{ "id": 1, "created_at": 1_796_299_200_000_i64 }]));
        let at = columns.iter().position(|c| c == "created_at").unwrap();
        assert_eq!(
            rows[0]["cells"][at], "2026-12-03 12:00:00 UTC",
            "times are UTC date-times, not epoch milliseconds"
        );
        let (columns, rows) = table_rows(&json!([{ "id": "c1" }]));
        assert_eq!((columns.len(), rows[0]["id"].clone()), (1, json!("c1")));
    }
}
