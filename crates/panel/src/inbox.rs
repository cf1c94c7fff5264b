//! The capture inbox: a three-pane view of captured mail (the list; the selected message
//! with HTML / text / headers / raw tabs and a mobile / tablet / desktop width preview; its
//! parts and attachments with image thumbnails) that updates live (`stream.rs`: server-sent
//! events), with keyboard navigation, selection, delete selected / delete all and read
//! marks (`static/inbox.js`).
//!
//! Every page works without scripts: `/inbox?id=N` renders all three panes on the server,
//! the forms post, and a `<noscript>` link reloads. With scripts, selecting a message
//! fetches `/inbox/messages/{id}` (the two right panes as a fragment) and new mail arrives
//! through `/inbox/stream`. Like every panel page it reads and writes only through the API
//! as the logged-in user, so a tenant sees only its own account's mail.

mod raw_source;
mod settings;
mod stream;
mod tools;
mod view;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mail_parser::MessageParser;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::messages::raw_of;
use super::pages::query_string;
use super::{PanelState, PanelUser, act, api_read, utc_datetime};
use sluice_api::dto::Page;
use sluice_api::dto::messages::{DeleteCaptured, MessageDetail, MessageItem};

/// Messages per page of the list (and per poll of the stream).
const PAGE_SIZE: usize = 50;

pub fn routes() -> axum::Router<PanelState> {
    axum::Router::new()
        .route("/inbox", get(inbox))
        .route("/inbox/stream", get(stream::stream))
        .route("/inbox/messages/{id}", get(message_fragment))
        .route("/inbox/messages/{id}/images/{n}", get(attachment_image))
        .route("/inbox/delete", post(delete_selected))
        .route("/inbox/delete-all", post(delete_all))
        .route("/inbox/read", post(mark_read))
        .route("/inbox/messages/{id}/checks", get(tools::checks_fragment))
        .route("/inbox/feedback", post(tools::feedback))
        .route("/inbox/tags", post(tools::set_tags))
        .route(
            "/inbox/settings",
            get(settings::settings_page).post(settings::save_settings),
        )
}

/// One row of the list, as `inbox_row.html` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct Row {
    id: i64,
    href: String,
    from: String,
    to: String,
    subject: String,
    time: String,
    size: String,
    attachments: bool,
    tags: Vec<String>,
    read: bool,
}

/// What the list is of: a search and, for an admin, one account.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct Scope {
    q: Option<String>,
    account_id: Option<String>,
}

impl Scope {
    fn pairs(&self) -> [(&'static str, Option<&str>); 2] {
        [
            ("q", self.q.as_deref()),
            (
                "account_id",
                self.account_id
                    .as_deref()
                    .filter(|a| a.trim().parse::<i64>().is_ok()),
            ),
        ]
    }

    /// The API path of a page of captured mail in this scope.
    pub(crate) fn list_path(&self, cursor: Option<&str>) -> String {
        let limit = PAGE_SIZE.to_string();
        let [q, account] = self.pairs();
        format!(
            "/messages{}",
            query_string(&[
                ("status", Some("captured")),
                q,
                account,
                ("cursor", cursor),
                ("limit", Some(&limit)),
            ])
        )
    }

    /// `/inbox` in this scope, open on message `id`.
    fn message_url(&self, id: i64) -> String {
        self.inbox_url(&[("id", Some(&id.to_string()))])
    }

    /// `/inbox` in this scope, with `extra` pairs.
    fn inbox_url(&self, extra: &[(&str, Option<&str>)]) -> String {
        let mut pairs = extra.to_vec();
        pairs.extend(self.pairs());
        format!("/inbox{}", query_string(&pairs))
    }
}

/// `1.2 KB` for a size in bytes.
fn human_size(bytes: i64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1_048_576 {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MB", bytes as f64 / 1_048_576.0)
    }
}

/// A list row for `item`. Captured mail is listed before the capture indexer has read
/// it (a moment after capture): until then the API has no subject or attachment mark for
/// it, and they are read from the raw message here, so a row that arrives live is whole.
pub(crate) async fn row_of(
    state: &PanelState,
    user: &PanelUser,
    scope: &Scope,
    item: MessageItem,
) -> Row {
    let (mut subject, mut attachments) = (item.subject, item.has_attachments);
    if subject.is_none()
        && let Ok(raw) = raw_of(state, user, item.id).await
        && let Some(message) = MessageParser::default().parse(&raw)
    {
        subject = message.subject().map(str::to_string);
        attachments = view::attachments(&message)
            .iter()
            .any(|a| a.content_id.is_none());
    }
    let id = item.id.to_string();
    Row {
        id: item.id,
        href: scope.inbox_url(&[("id", Some(&id))]),
        from: item.mail_from,
        to: item.rcpt_to.join(", "),
        subject: subject.unwrap_or_default(),
        time: utc_datetime(item.created_at)
            .trim_end_matches(" UTC")
            .get(..16)
            .unwrap_or_default()
            .to_string(),
        size: human_size(item.size),
        attachments,
        tags: item.tags,
        read: item.read,
    }
}

#[derive(Deserialize)]
struct InboxQuery {
    id: Option<i64>,
    cursor: Option<String>,
    preview: Option<String>,
    q: Option<String>,
    account_id: Option<String>,
    /// Run the checks and show them in the page (the Checks tab without scripts).
    checks: Option<String>,
}

impl InboxQuery {
    fn scope(&self) -> Scope {
        Scope {
            q: self.q.clone(),
            account_id: self.account_id.clone(),
        }
    }
}

/// The width the HTML preview is shown at: `mobile` (375 px), `tablet` (768 px) or the
/// pane's width.
fn preview_of(asked: Option<&str>) -> &'static str {
    match asked {
        Some("mobile") => "mobile",
        Some("tablet") => "tablet",
        _ => "desktop",
    }
}

/// The selected message's panes: its detail (404 for another tenant's, as the API answers),
/// then what its raw source shows, and its tags as search sees them.
async fn message_context(
    state: &PanelState,
    user: &PanelUser,
    id: i64,
    preview: &str,
) -> Result<Value, Response> {
    let detail: MessageDetail =
        api_read(state, user, Method::GET, &format!("/messages/{id}"), None).await?;
    let raw = match detail.body_purged_at {
        Some(_) => Vec::new(),
        None => raw_of(state, user, id).await?,
    };
    let v = view::message_view(&raw);
    // The last X-Tags, as the API reads it (mail-parser's `header_raw`).
    let x_tags = v
        .headers
        .iter()
        .rev()
        .find(|h| h.name.eq_ignore_ascii_case("X-Tags"))
        .map(|h| h.value.as_str())
        .unwrap_or_default();
    let tags = sluice_api::dto::parsed::tags_of(&detail.tags, x_tags, &detail.rcpt_to);
    Ok(json!({
        "m": detail,
        "v": v,
        "tags": tags,
        "preview": preview,
    }))
}

async fn inbox(
    State(state): State<PanelState>,
    user: PanelUser,
    Query(query): Query<InboxQuery>,
) -> Response {
    let scope = query.scope();
    let path = scope.list_path(query.cursor.as_deref());
    let page: Page<MessageItem> = match api_read(&state, &user, Method::GET, &path, None).await {
        Ok(page) => page,
        Err(page) => return page,
    };
    let newest = page.items.iter().map(|m| m.id).max().unwrap_or(0);
    let mut rows = Vec::with_capacity(page.items.len());
    for item in page.items {
        rows.push(row_of(&state, &user, &scope, item).await);
    }
    let mut context = json!({
        "rows": rows,
        "newest": newest,
        "selected": query.id,
        "q": scope.q,
        "account_id": scope.account_id,
        "stream": format!("/inbox/stream{}", query_string(&scope.pairs())),
        "older": page.next_cursor.as_deref().map(|c| scope.inbox_url(&[("cursor", Some(c))])),
        "refresh": scope.inbox_url(&[]),
    });
    if let Some(id) = query.id {
        let preview = preview_of(query.preview.as_deref());
        match message_context(&state, &user, id, preview).await {
            Ok(selected) => context["message"] = selected,
            Err(page) => return page,
        }
        if query.checks.is_some() {
            // The message was read just above: the checks cannot be refused as not found.
            if let Ok(checks) = tools::run_checks(&state, &user, id).await {
                context["message"]["checks"] = checks;
            }
        }
    }
    state.page("inbox.html", Some(&user), context)
}

/// The two right panes of one message, for the script to put in place.
async fn message_fragment(
    State(state): State<PanelState>,
    user: PanelUser,
    Path(id): Path<i64>,
    Query(query): Query<InboxQuery>,
) -> Response {
    let preview = preview_of(query.preview.as_deref());
    match message_context(&state, &user, id, preview).await {
        Ok(mut context) => {
            context["me"] = json!({ "csrf": user.csrf });
            // The pane's forms carry the list's scope back.
            let scope = query.scope();
            context["q"] = json!(scope.q);
            context["account_id"] = json!(scope.account_id);
            match state.fragment("inbox_message.html", &context) {
                Some(html) => axum::response::Html(html).into_response(),
                None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
        Err(page) => page,
    }
}

/// An image attachment as an image, for its thumbnail: only the types of
/// [`view::IMAGE_TYPES`] (never SVG), under a sandbox policy like the HTML frame's.
async fn attachment_image(
    State(state): State<PanelState>,
    user: PanelUser,
    Path((id, n)): Path<(i64, usize)>,
) -> Response {
    let raw = match raw_of(&state, &user, id).await {
        Ok(raw) => raw,
        Err(page) => return page,
    };
    let found = MessageParser::default().parse(&raw).and_then(|m| {
        let part = m.attachments().nth(n)?;
        let kind = view::content_type_of(part);
        view::IMAGE_TYPES
            .contains(&kind.as_str())
            .then(|| (kind, part.contents().to_vec()))
    });
    let Some((kind, bytes)) = found else {
        return state.error_page(Some(&user), StatusCode::NOT_FOUND, "no such image");
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    if let Ok(kind) = HeaderValue::from_str(&kind) {
        headers.insert(header::CONTENT_TYPE, kind);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    response
}

/// A posted form's `id` fields (checkboxes) and the scope to go back to.
struct Selection {
    ids: Vec<i64>,
    read: bool,
    scope: Scope,
}

fn selection(pairs: &[(String, String)]) -> Selection {
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    Selection {
        ids: pairs
            .iter()
            .filter(|(k, _)| k == "id")
            .filter_map(|(_, v)| v.trim().parse().ok())
            .collect(),
        read: field("read").as_deref() != Some("0"),
        scope: Scope {
            q: field("q"),
            account_id: field("account_id"),
        },
    }
}

/// Whether `inbox.js` posted the form (`X-Inbox-Script`): it wants 204, not the page.
fn scripted(headers: &HeaderMap) -> bool {
    headers.contains_key("x-inbox-script")
}

/// Runs `calls` one after another; the first failure's error page, else back to the list
/// (or 204 for the script).
async fn each_then_back(
    state: &PanelState,
    user: &PanelUser,
    calls: Vec<(Method, String)>,
    back: String,
    script: bool,
) -> Response {
    for (method, path) in calls {
        let answer = state.api(user, method, &path, None).await;
        // A message already gone (another tab, retention) is not an error here.
        if !answer.ok() && answer.status != StatusCode::NOT_FOUND {
            return state.error_page(Some(user), answer.status, &answer.error_message());
        }
    }
    match script {
        true => StatusCode::NO_CONTENT.into_response(),
        false => Redirect::to(&back).into_response(),
    }
}

/// The API body of a bulk delete of captured mail in `scope`.
fn delete_captured(scope: &Scope, ids: Vec<i64>, all: bool) -> Value {
    let request = DeleteCaptured {
        ids,
        all,
        account_id: scope
            .account_id
            .as_deref()
            .and_then(|a| a.trim().parse().ok()),
    };
    serde_json::to_value(request).unwrap_or(Value::Null)
}

/// Deletes the checked messages (`POST /messages/delete-captured`).
async fn delete_selected(
    State(state): State<PanelState>,
    user: PanelUser,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let chosen = selection(&pairs);
    let back = chosen.scope.inbox_url(&[]);
    if chosen.ids.is_empty() {
        return Redirect::to(&back).into_response();
    }
    let body = delete_captured(&chosen.scope, chosen.ids, false);
    let answer = state
        .api(&user, Method::POST, "/messages/delete-captured", Some(body))
        .await;
    if !answer.ok() {
        return state.error_page(Some(&user), answer.status, &answer.error_message());
    }
    match scripted(&headers) {
        true => StatusCode::NO_CONTENT.into_response(),
        false => Redirect::to(&back).into_response(),
    }
}

/// Marks the checked messages read (`read=1`) or unread (`read=0`).
async fn mark_read(
    State(state): State<PanelState>,
    user: PanelUser,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let chosen = selection(&pairs);
    let mark = if chosen.read { "read" } else { "unread" };
    let calls = chosen
        .ids
        .iter()
        .map(|id| (Method::POST, format!("/messages/{id}/{mark}")))
        .collect();
    let mut back = chosen.scope.inbox_url(&[]);
    if let [one] = chosen.ids.as_slice() {
        back = chosen.scope.message_url(*one);
    }
    each_then_back(&state, &user, calls, back, scripted(&headers)).await
}

/// Deletes all captured mail of the list's scope: the account's (an admin's: the chosen
/// account's, or everyone's) with `"all": true`; with a search, the messages it finds, a
/// page of ids at a time, so mail outside the search stays.
async fn delete_all(
    State(state): State<PanelState>,
    user: PanelUser,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let scope = selection(&pairs).scope;
    let back = scope.inbox_url(&[]);
    let searched = scope.q.as_deref().is_some_and(|q| !q.trim().is_empty());
    if !searched {
        let body = delete_captured(&scope, Vec::new(), true);
        return act(
            &state,
            &user,
            Method::POST,
            "/messages/delete-captured",
            Some(body),
            &back,
        )
        .await;
    }
    // Each round deletes the first page of what the search finds; a round that deletes
    // nothing (mail that is not the user's to delete) ends it.
    for _ in 0..1000 {
        let page: Page<MessageItem> =
            match api_read(&state, &user, Method::GET, &scope.list_path(None), None).await {
                Ok(page) => page,
                Err(page) => return page,
            };
        if page.items.is_empty() {
            break;
        }
        let ids = page.items.iter().map(|m| m.id).collect();
        let deleted: sluice_api::dto::messages::DeletedCaptured = match api_read(
            &state,
            &user,
            Method::POST,
            "/messages/delete-captured",
            Some(delete_captured(&scope, ids, false)),
        )
        .await
        {
            Ok(deleted) => deleted,
            Err(page) => return page,
        };
        if deleted.deleted == 0 {
            break;
        }
    }
    Redirect::to(&back).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form_pairs;

    #[test]
    fn sizes_are_human() {
        for (bytes, shown) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1536, "1.5 KB"),
            (3 << 20, "3.0 MB"),
        ] {
            assert_eq!(human_size(bytes), shown);
        }
    }

    #[test]
    fn the_list_asks_the_api_for_captured_mail_in_its_scope() {
        let scope = Scope {
            q: Some("from:a@x.test is:unread".into()),
            account_id: Some("7".into()),
        };
        assert_eq!(
            scope.list_path(Some("90")),
            "/messages?status=captured&q=from%3Aa%40x.test%20is%3Aunread&account_id=7&cursor=90&limit=50"
        );
        let junk = Scope {
            q: None,
            account_id: Some("7 or 1".into()),
        };
        assert_eq!(junk.list_path(None), "/messages?status=captured&limit=50");
        assert_eq!(
            scope.inbox_url(&[("id", Some("3"))]),
            "/inbox?id=3&q=from%3Aa%40x.test%20is%3Aunread&account_id=7"
        );
    }

    #[test]
    fn a_posted_selection_reads_its_ids_and_scope() {
        let chosen = selection(&form_pairs(&[
            ("csrf", "t"),
            ("id", "4"),
            ("id", "x"),
            ("id", " 9"),
            ("read", "0"),
            ("q", "tag:a"),
            ("account_id", ""),
        ]));
        assert_eq!(chosen.ids, vec![4, 9]);
        assert!(!chosen.read);
        assert_eq!(chosen.scope.q.as_deref(), Some("tag:a"));
        assert_eq!(chosen.scope.account_id, None);
        assert!(selection(&form_pairs(&[("read", "1")])).read);
    }

    #[test]
    fn previews_are_one_of_three_widths() {
        assert_eq!(preview_of(Some("mobile")), "mobile");
        assert_eq!(preview_of(Some("tablet")), "tablet");
        assert_eq!(preview_of(Some("<x>")), "desktop");
        assert_eq!(preview_of(None), "desktop");
    }
}
