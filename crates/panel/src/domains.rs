//! The panel's Domains page: the account's sender domains with their verified mark, the
//! TXT record to publish and the last SPF / DKIM / DMARC check; add, verify (DNS now) and
//! remove, each through `/api/v1/domains`.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{PanelState, PanelUser, account_query, act, act_on_form, api_read};
use sluice_api::dto::domains::DomainView;

pub fn routes() -> axum::Router<PanelState> {
    axum::Router::new()
        .route("/domains", get(list).post(add))
        .route("/domains/{id}/verify", post(verify))
        .route("/domains/{id}/remove", post(remove))
}

#[derive(Deserialize)]
struct ListQuery {
    account_id: Option<String>,
}

async fn list(
    State(state): State<PanelState>,
    user: PanelUser,
    Query(query): Query<ListQuery>,
) -> Response {
    let path = format!("/domains{}", account_query(query.account_id.as_deref()));
    let domains: Vec<DomainView> = match api_read(&state, &user, Method::GET, &path, None).await {
        Ok(domains) => domains,
        Err(page) => return page,
    };
    state.page(
        "domains.html",
        Some(&user),
        json!({ "domains": domains, "account_id": query.account_id }),
    )
}

/// The add form as the API's body: the domain; admins may name the account and vouch.
fn add_body(form: &[(String, String)]) -> Result<Value, String> {
    let value = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let domain = value("domain").ok_or("Domain is required")?;
    let mut body = json!({ "domain": domain });
    if let Some(account) = value("account_id") {
        let id: i64 = account
            .parse()
            .map_err(|_| "Account id must be a number".to_string())?;
        body["account_id"] = json!(id);
    }
    if value("verified").is_some() {
        body["verified"] = json!(true);
    }
    Ok(body)
}

async fn add(
    State(state): State<PanelState>,
    user: PanelUser,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    act_on_form(
        &state,
        &user,
        Method::POST,
        "/domains",
        add_body(&form),
        "/domains",
    )
    .await
}

async fn verify(State(state): State<PanelState>, user: PanelUser, Path(id): Path<i64>) -> Response {
    let path = format!("/domains/{id}/verify");
    act(&state, &user, Method::POST, &path, None, "/domains").await
}

async fn remove(State(state): State<PanelState>, user: PanelUser, Path(id): Path<i64>) -> Response {
    let path = format!("/domains/{id}");
    act(&state, &user, Method::DELETE, &path, None, "/domains").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form_pairs as pairs;

    #[test]
    fn the_add_form_becomes_the_api_body() {
        assert_eq!(
            add_body(&pairs(&[("domain", " acme.test "), ("account_id", "")])),
            Ok(json!({ "domain": "acme.test" }))
        );
        assert_eq!(
            add_body(&pairs(&[
                ("domain", "acme.test"),
                ("account_id", "7"),
                ("verified", "on")
            ])),
            Ok(json!({ "domain": "acme.test", "account_id": 7, "verified": true }))
        );
        assert!(add_body(&pairs(&[("domain", "")])).is_err());
        assert!(add_body(&pairs(&[("domain", "a.test"), ("account_id", "x")])).is_err());
    }
}
