//! The sandbox's tools on one captured message: the Checks tab (HTML compatibility, links,
//! spam score: the API's three checks run side by side), synthetic feedback (what an email
//! service would report: delivered, bounced, complained, deferred) and tags set by hand.
//! Each works without scripts: the checks render in the page with `/inbox?id=N&checks=1`,
//! the forms post and come back to the message.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::super::{ApiAnswer, PanelState, PanelUser, act};

/// What one check answered: its report, or why there is none (no spamd configured, the
/// body removed by retention, ...).
fn outcome(answer: &ApiAnswer) -> Value {
    match answer.ok() {
        true => json!({ "ok": true, "report": answer.json() }),
        false => json!({ "ok": false, "error": answer.error_message() }),
    }
}

/// The three checks of message `id`, run at once (the link check takes as long as its
/// slowest link, within the API's per-link timeout). The API answers each of them 404
/// for a message the user may not see (before fetching any link): that answer is the `Err`.
pub(super) async fn run_checks(
    state: &PanelState,
    user: &PanelUser,
    id: i64,
) -> Result<Value, ApiAnswer> {
    let [html, links, spam] = ["html", "links", "spam"].map(|which| {
        let path = format!("/messages/{id}/checks/{which}");
        async move { state.api(user, Method::GET, &path, None).await }
    });
    let (html, links, spam) = tokio::join!(html, links, spam);
    if html.status == StatusCode::NOT_FOUND {
        return Err(html);
    }
    Ok(json!({ "html": outcome(&html), "links": outcome(&links), "spam": outcome(&spam) }))
}

/// The Checks tab's content, for the script to put in place.
pub(super) async fn checks_fragment(
    State(state): State<PanelState>,
    user: PanelUser,
    Path(id): Path<i64>,
) -> Response {
    // Another tenant's message (or none): 404, as the API answers.
    let checks = match run_checks(&state, &user, id).await {
        Ok(checks) => checks,
        Err(answer) => {
            return state.error_page(Some(&user), answer.status, &answer.error_message());
        }
    };
    match state.fragment("inbox_checks.html", &json!({ "checks": checks })) {
        Some(html) => axum::response::Html(html).into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A posted form's first value of `name`.
fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The message a form is about.
fn message_id(pairs: &[(String, String)]) -> Option<i64> {
    field(pairs, "id").and_then(|id| id.trim().parse().ok())
}

fn no_message(state: &PanelState, user: &PanelUser) -> Response {
    state.error_page(
        Some(user),
        StatusCode::UNPROCESSABLE_ENTITY,
        "no message was named",
    )
}

/// `/inbox` open on message `id`, in the search and account the form came from.
fn back_to_message(pairs: &[(String, String)], id: i64) -> String {
    super::selection(pairs).scope.message_url(id)
}

/// Fires synthetic feedback (`kind`, for `recipient`) through `POST /messages/{id}/feedback`.
pub(super) async fn feedback(
    State(state): State<PanelState>,
    user: PanelUser,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let Some(id) = message_id(&pairs) else {
        return no_message(&state, &user);
    };
    let mut body = json!({ "kind": field(&pairs, "kind").unwrap_or_default() });
    if let Some(recipient) = field(&pairs, "recipient").filter(|r| !r.trim().is_empty()) {
        body["recipient"] = json!(recipient.trim());
    }
    let path = format!("/messages/{id}/feedback");
    // Back to the message (its Events show the result), in the list's scope.
    let back = back_to_message(&pairs, id);
    act(&state, &user, Method::POST, &path, Some(body), &back).await
}

/// The tags a form's `tags` field names: comma or space separated.
pub(crate) fn tags_field(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n', '\r', '\t'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Sets the message's tags by hand through `PUT /messages/{id}/tags`.
pub(super) async fn set_tags(
    State(state): State<PanelState>,
    user: PanelUser,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let Some(id) = message_id(&pairs) else {
        return no_message(&state, &user);
    };
    let tags = tags_field(field(&pairs, "tags").unwrap_or_default());
    let path = format!("/messages/{id}/tags");
    let back = back_to_message(&pairs, id);
    act(
        &state,
        &user,
        Method::PUT,
        &path,
        Some(json!({ "tags": tags })),
        &back,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_goes_back_to_its_message_in_the_lists_scope() {
        let form = |fields: &[(&str, &str)]| -> Vec<(String, String)> {
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let scoped = form(&[("id", "12"), ("q", "tag:a b"), ("account_id", "7")]);
        assert_eq!(
            back_to_message(&scoped, 12),
            "/inbox?id=12&q=tag%3Aa%20b&account_id=7"
        );
        assert_eq!(back_to_message(&form(&[("id", "12")]), 12), "/inbox?id=12");
    }

    #[test]
    fn a_tags_field_splits_on_commas_and_spaces() {
        assert_eq!(tags_field(" a, b  c,,\n"), ["a", "b", "c"]);
        assert!(tags_field(" , ").is_empty());
    }
}
