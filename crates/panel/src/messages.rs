//! The panel's message pages: the search, one message (envelope, attempts, events, headers,
//! text, the HTML in a sandboxed frame, attachments, the raw source) and its actions
//! (retry, cancel, release a captured message, delete), each through `/api/v1/messages`.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mail_parser::{MessageParser, MimeHeaders};
use serde::Deserialize;
use serde_json::{Value, json};

use super::inline::{inline_cid_images, part_by_content_id};
use super::pages::query_string;
use super::{PanelState, PanelUser, act, api_read};
use sluice_api::dto::Page;
use sluice_api::dto::messages::{MessageDetail, MessageItem};
use sluice_api::dto::providers::ProviderView;

pub fn routes() -> axum::Router<PanelState> {
    axum::Router::new()
        .route("/messages", get(messages))
        .route("/messages/{id}", get(message))
        .route("/messages/{id}/html", get(message_html))
        .route("/messages/{id}/raw", get(message_raw))
        .route("/messages/{id}/attachments/{n}", get(attachment))
        .route("/messages/{id}/retry", post(retry))
        .route("/messages/{id}/cancel", post(cancel))
        .route("/messages/{id}/release", post(release))
        .route("/messages/{id}/delete", post(delete))
}

#[derive(Deserialize)]
struct MessageSearch {
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

async fn messages(
    State(state): State<PanelState>,
    user: PanelUser,
    Query(search): Query<MessageSearch>,
) -> Response {
    let path = format!(
        "/messages{}",
        query_string(&[
            ("status", search.status.as_deref()),
            ("from", search.from.as_deref()),
            ("to", search.to.as_deref()),
            ("cursor", search.cursor.as_deref()),
        ])
    );
    match api_read::<Page<MessageItem>>(&state, &user, Method::GET, &path, None).await {
        Ok(page) => state.page(
            "messages.html",
            Some(&user),
            json!({
                "page": page,
                "search": { "status": search.status, "from": search.from, "to": search.to },
                "statuses": sluice_api::MESSAGE_STATUSES,
            }),
        ),
        Err(page) => page,
    }
}

/// The stored message's bytes, through the API.
pub(crate) async fn raw_of(
    state: &PanelState,
    user: &PanelUser,
    id: i64,
) -> Result<Vec<u8>, Response> {
    let answer = state
        .api(user, Method::GET, &format!("/messages/{id}/raw"), None)
        .await;
    if answer.ok() {
        Ok(answer.bytes.to_vec())
    } else {
        Err(state.error_page(Some(user), answer.status, &answer.error_message()))
    }
}

async fn message(
    State(state): State<PanelState>,
    user: PanelUser,
    Path(id): Path<i64>,
) -> Response {
    let path = format!("/messages/{id}");
    let detail: MessageDetail = match api_read(&state, &user, Method::GET, &path, None).await {
        Ok(detail) => detail,
        Err(page) => return page,
    };
    // Retention may have emptied the body: the envelope, attempts and events remain.
    let raw = match detail.body_purged_at.is_some() {
        true => Vec::new(),
        false => match raw_of(&state, &user, id).await {
            Ok(raw) => raw,
            Err(page) => return page,
        },
    };
    // A captured message can be released through a provider the user can choose.
    let providers: Option<Vec<ProviderView>> = match detail.status == "captured" {
        true => state
            .api(&user, Method::GET, "/providers", None)
            .await
            .read()
            .ok(),
        false => None,
    };
    let parsed = MessageParser::default().parse(&raw);
    let (headers, text, has_html, attachments) = match &parsed {
        Some(m) => {
            let headers: Vec<Value> = m
                .headers_raw()
                .map(|(name, value)| json!({ "name": name, "value": value.trim() }))
                .collect();
            let attachments: Vec<Value> = m
                .attachments()
                .enumerate()
                .map(|(n, a)| {
                    json!({
                        "n": n,
                        "name": a.attachment_name().unwrap_or("attachment"),
                        "content_type": a.content_type().map(|c| match &c.c_subtype {
                            Some(sub) => format!("{}/{}", c.c_type, sub),
                            None => c.c_type.to_string(),
                        }),
                        "size": a.contents().len(),
                    })
                })
                .collect();
            (
                headers,
                m.body_text(0).map(|t| t.into_owned()),
                m.html_part(0).is_some(),
                attachments,
            )
        }
        None => (Vec::new(), None, false, Vec::new()),
    };
    state.page(
        "message.html",
        Some(&user),
        json!({
            "m": detail,
            "headers": headers,
            "text": text,
            "has_html": has_html,
            "attachments": attachments,
            "providers": providers,
            "raw": String::from_utf8_lossy(&raw),
        }),
    )
}

/// The message's HTML part, for the sandboxed frame of the message page: no scripts, no
/// requests anywhere (images only inline: `cid:` parts as data: URLs), no forms, in a
/// unique origin.
async fn message_html(
    State(state): State<PanelState>,
    user: PanelUser,
    Path(id): Path<i64>,
) -> Response {
    let raw = match raw_of(&state, &user, id).await {
        Ok(raw) => raw,
        Err(page) => return page,
    };
    // Inline images (`cid:`) become data: URLs of their parts: the frame loads nothing.
    let html = MessageParser::default()
        .parse(&raw)
        .and_then(|m| {
            let html = m.body_html(0)?;
            Some(inline_cid_images(&html, |cid| part_by_content_id(&m, cid)))
        })
        .unwrap_or_default();
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'",
        ),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    response
}

async fn message_raw(
    State(state): State<PanelState>,
    user: PanelUser,
    Path(id): Path<i64>,
) -> Response {
    match raw_of(&state, &user, id).await {
        Ok(raw) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], raw).into_response(),
        Err(page) => page,
    }
}

/// A file name safe in a `Content-Disposition` header.
fn safe_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '_',
        })
        .take(100)
        .collect();
    if cleaned.trim_matches('.').is_empty() {
        "attachment".into()
    } else {
        cleaned
    }
}

async fn attachment(
    State(state): State<PanelState>,
    user: PanelUser,
    Path((id, n)): Path<(i64, usize)>,
) -> Response {
    let raw = match raw_of(&state, &user, id).await {
        Ok(raw) => raw,
        Err(page) => return page,
    };
    let found = MessageParser::default().parse(&raw).and_then(|m| {
        m.attachments().nth(n).map(|a| {
            (
                safe_file_name(a.attachment_name().unwrap_or("attachment")),
                a.contents().to_vec(),
            )
        })
    });
    match found {
        Some((name, contents)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            contents,
        )
            .into_response(),
        None => state.error_page(Some(&user), StatusCode::NOT_FOUND, "no such attachment"),
    }
}

async fn retry(State(state): State<PanelState>, user: PanelUser, Path(id): Path<i64>) -> Response {
    let path = format!("/messages/{id}/retry");
    act(
        &state,
        &user,
        Method::POST,
        &path,
        None,
        &format!("/messages/{id}"),
    )
    .await
}

async fn cancel(State(state): State<PanelState>, user: PanelUser, Path(id): Path<i64>) -> Response {
    let path = format!("/messages/{id}");
    act(
        &state,
        &user,
        Method::DELETE,
        &path,
        None,
        &format!("/messages/{id}"),
    )
    .await
}

#[derive(Deserialize)]
struct ReleaseForm {
    provider_id: String,
    /// Recipients instead of the original ones, separated by commas or spaces.
    #[serde(default)]
    to: String,
}

/// Releases a copy of a captured message and shows the copy (the original stays captured).
async fn release(
    State(state): State<PanelState>,
    user: PanelUser,
    Path(id): Path<i64>,
    Form(form): Form<ReleaseForm>,
) -> Response {
    let Ok(provider_id) = form.provider_id.trim().parse::<i64>() else {
        return state.error_page(
            Some(&user),
            StatusCode::UNPROCESSABLE_ENTITY,
            "choose a provider",
        );
    };
    let to: Vec<&str> = form
        .to
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|r| !r.is_empty())
        .collect();
    let mut body = json!({ "provider_id": provider_id });
    if !to.is_empty() {
        body["to"] = json!(to);
    }
    let path = format!("/messages/{id}/release");
    let answer = state.api(&user, Method::POST, &path, Some(body)).await;
    match answer.read::<sluice_api::dto::messages::Requeued>() {
        Ok(copy) if answer.ok() => {
            axum::response::Redirect::to(&format!("/messages/{}", copy.id)).into_response()
        }
        _ => state.error_page(Some(&user), answer.status, &answer.error_message()),
    }
}

/// Deletes a captured message (the API's DELETE does that for captured mail).
async fn delete(State(state): State<PanelState>, user: PanelUser, Path(id): Path<i64>) -> Response {
    let path = format!("/messages/{id}");
    act(&state, &user, Method::DELETE, &path, None, "/messages").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_cannot_break_the_header() {
        assert_eq!(safe_file_name("report \"q1\".pdf"), "report__q1_.pdf");
        assert_eq!(safe_file_name("../.."), ".._..");
        assert_eq!(safe_file_name("..."), "attachment");
        assert_eq!(safe_file_name("a\r\nb"), "a__b");
    }
}
