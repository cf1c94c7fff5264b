//! `/inbox/stream`: new captured mail as server-sent events. The panel polls the API (as the
//! logged-in user, so the API's scoping decides what a tenant sees) for captured messages
//! newer than the last id the client has, which works across nodes sharing PostgreSQL.
//!
//! Each event is `event: message`, `id: <message id>`, `data: {"id", "row"}` where `row`
//! is the list row rendered by `inbox_row.html`. A stream ends after [`STREAM_LIFETIME`];
//! the browser's `EventSource` reconnects (after the `retry` the stream announced) with
//! `Last-Event-ID`, and the reconnect checks the session cookie again, so a revoked
//! session loses its stream within that time.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use super::{Scope, row_of};
use crate::{PanelState, PanelUser};
use sluice_api::dto::Page;
use sluice_api::dto::messages::MessageItem;

/// How often the API is asked for new mail. Every poll is an API call of the user's,
/// counted against `api.rate_limit_per_minute` in a bucket of its own (`api_poll`): open
/// inbox tabs do not starve the user's other pages, and many tabs still meet the limit.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// How long one stream runs before the browser reconnects.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(60);
/// How long the browser waits before reconnecting.
const RECONNECT: Duration = Duration::from_secs(1);
/// Pages read per poll at most (a burst beyond this arrives with the next polls).
const MAX_PAGES: usize = 10;

#[derive(Deserialize)]
pub struct StreamQuery {
    after: Option<i64>,
    q: Option<String>,
    account_id: Option<String>,
}

/// What one open stream knows.
struct Poller {
    state: PanelState,
    user: PanelUser,
    scope: Scope,
    /// The newest message id the client has; `None` until the first poll sets it to the
    /// newest there is (a stream opened without `after` sends only mail that comes later).
    last: Option<i64>,
    pending: VecDeque<Event>,
    started: bool,
    ends: Instant,
}

/// The newest id in the stream's scope that the client had: `Last-Event-ID` of a
/// reconnect, else `?after=`.
fn resume_from(headers: &HeaderMap, after: Option<i64>) -> Option<i64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(after)
}

pub async fn stream(
    State(state): State<PanelState>,
    user: PanelUser,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Response {
    let poller = Poller {
        state,
        user,
        scope: Scope {
            q: query.q,
            account_id: query.account_id,
        },
        last: resume_from(&headers, query.after),
        pending: VecDeque::from([Event::default().retry(RECONNECT).comment("inbox")]),
        started: false,
        ends: Instant::now() + STREAM_LIFETIME,
    };
    let events = futures_util::stream::unfold(poller, |mut poller| async move {
        let event = poller.next_event().await?;
        Some((Ok::<_, Infallible>(event), poller))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

impl Poller {
    /// The next event to send, polling until there is one; `None` ends the stream.
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if Instant::now() >= self.ends {
                return None;
            }
            if self.started {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            self.started = true;
            match self.poll().await {
                Ok(()) => {}
                // Over the polls' rate limit (many open tabs): wait for the next poll.
                Err(StatusCode::TOO_MANY_REQUESTS) => {}
                // Anything else (the account suspended, the API failing) ends the stream;
                // the reconnect finds out what is wrong.
                Err(_) => return None,
            }
        }
    }

    /// Reads captured mail newer than `last` and queues an event per message, oldest first.
    async fn poll(&mut self) -> Result<(), StatusCode> {
        let mut newer: Vec<MessageItem> = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let path = self.scope.list_path(cursor.as_deref());
            let answer = self.state.api_poll(&self.user, &path).await;
            if !answer.ok() {
                return Err(answer.status);
            }
            let page: Page<MessageItem> = answer.read().map_err(|_| StatusCode::BAD_GATEWAY)?;
            let Some(last) = self.last else {
                // The first poll of a stream opened without a position: start after the
                // newest message there is.
                self.last = Some(page.items.iter().map(|m| m.id).max().unwrap_or(0));
                return Ok(());
            };
            let whole_page_newer = page.items.iter().all(|m| m.id > last);
            newer.extend(page.items.into_iter().filter(|m| m.id > last));
            match (whole_page_newer, page.next_cursor) {
                (true, Some(next)) => cursor = Some(next),
                _ => break,
            }
        }
        newer.sort_by_key(|m| m.id);
        for item in newer {
            let id = item.id;
            let row = row_of(&self.state, &self.user, &self.scope, item).await;
            let Some(html) = self.state.fragment("inbox_row.html", &json!({ "r": row })) else {
                continue;
            };
            self.pending.push_back(
                Event::default()
                    .event("message")
                    .id(id.to_string())
                    .data(json!({ "id": id, "row": html }).to_string()),
            );
            self.last = Some(self.last.map_or(id, |last| last.max(id)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconnect_resumes_after_its_last_event() {
        let mut headers = HeaderMap::new();
        assert_eq!(resume_from(&headers, Some(4)), Some(4));
        assert_eq!(resume_from(&headers, None), None);
        headers.insert("last-event-id", "17".parse().unwrap());
        assert_eq!(resume_from(&headers, Some(4)), Some(17));
        headers.insert("last-event-id", "junk".parse().unwrap());
        assert_eq!(resume_from(&headers, Some(4)), Some(4));
    }
}
