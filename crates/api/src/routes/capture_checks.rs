//! Checks on a captured message: the HTML compatibility report
//! (`GET /messages/{id}/checks/html`, table in `html_compat`) and the link check
//! (`GET /messages/{id}/checks/links`): every http(s) link of the HTML (`href`, `src`) and
//! text parts fetched HEAD (GET when HEAD answers 405/501), at most 50 links, 5 at a time,
//! 3 redirects, a short timeout, and ALWAYS through the egress policy (the links are the
//! tenant's, whoever asks): a refused link gets no connection.

use std::time::{Duration, Instant};

use axum::extract::State;
use futures_util::StreamExt;
use sluice_deliver::egress::{Egress, refusal_in};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::ApiState;
use super::super::error::{ApiError, Path};
use super::super::principal::Principal;
use super::ErrorBody;
use super::capture::parsed_message;
use crate::html_compat::{FeatureUse, TABLE, report};
use crate::html_scan::{scan_html, text_urls};

/// At most this many links are checked (the first ones, in document order).
const MAX_LINKS: usize = 50;
/// At most this many requests at once.
const CONCURRENT: usize = 5;
/// Each request's timeout (connect, redirects and headers).
const LINK_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REDIRECTS: usize = 3;
pub const REFUSED: &str = "refused by the egress policy";

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(html_check))
        .routes(routes!(link_check))
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct HtmlCheck {
    pub id: i64,
    /// The support table's version (`crates/api/data/email-client-support.json`).
    pub table_version: String,
    /// The features the HTML uses that the table knows, in the table's order.
    pub features: Vec<FeatureUse>,
    /// Share (0-100) of the table's clients that support every feature used.
    pub score: u8,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LinkCheck {
    pub id: i64,
    pub links: Vec<LinkStatus>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LinkStatus {
    pub url: String,
    /// The final HTTP status; null when no answer came.
    pub status: Option<u16>,
    /// Why there is no status (`refused by the egress policy`, `timed out`, ...).
    pub error: Option<String>,
    /// Time taken, milliseconds.
    pub ms: u64,
}

/// Which elements and CSS features of the message's HTML major mail clients do not (or
/// only partly) support, and a score. A message without HTML scores 100.
#[utoipa::path(get, path = "/messages/{id}/checks/html", tag = "messages", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = HtmlCheck), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn html_check(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<HtmlCheck>, ApiError> {
    let message = parsed_message(&state, &who, id).await?;
    let usage = scan_html(message.html.as_deref().unwrap_or_default());
    let (features, score) = report(&TABLE, &usage);
    Ok(axum::Json(HtmlCheck {
        id,
        table_version: TABLE.version.clone(),
        features,
        score,
    }))
}

/// Every http(s) link of the message fetched under the egress policy, with its status.
#[utoipa::path(get, path = "/messages/{id}/checks/links", tag = "messages", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = LinkCheck), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn link_check(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<LinkCheck>, ApiError> {
    let message = parsed_message(&state, &who, id).await?;
    let urls = message_links(message.html.as_deref(), message.text.as_deref());
    let egress = Egress::Policed(state.egress.clone());
    let redirect_egress = egress.clone();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error("too many redirects");
        }
        match redirect_egress.check_url(attempt.url().as_str()) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    });
    let client = egress
        .http_client(
            reqwest::Client::builder()
                .timeout(LINK_TIMEOUT)
                .redirect(redirects)
                .user_agent("Sluice link check"),
        )
        .build()
        .map_err(|error| {
            tracing::warn!(%error, "link check client not built");
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "link_check_unavailable",
                "the link check's HTTP client could not be built",
            )
        })?;
    let links = futures_util::stream::iter(urls)
        .map(|url| check_link(&client, &egress, url))
        .buffered(CONCURRENT)
        .collect()
        .await;
    Ok(axum::Json(LinkCheck { id, links }))
}

/// The http(s) links of the HTML then the text, each once, at most `MAX_LINKS`.
fn message_links(html: Option<&str>, text: Option<&str>) -> Vec<String> {
    let html = html.map(|html| scan_html(html).urls).unwrap_or_default();
    let text = text.map(text_urls).unwrap_or_default();
    let mut links: Vec<String> = Vec::new();
    for url in html.into_iter().chain(text) {
        let url = url.trim().to_string();
        let lower = url.to_ascii_lowercase();
        let web = lower.starts_with("http://") || lower.starts_with("https://");
        if web && !links.contains(&url) && links.len() < MAX_LINKS {
            links.push(url);
        }
    }
    links
}

async fn check_link(client: &reqwest::Client, egress: &Egress, url: String) -> LinkStatus {
    let started = Instant::now();
    let outcome = fetch(client, egress, &url).await;
    let ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(status) => LinkStatus {
            url,
            status: Some(status),
            error: None,
            ms,
        },
        Err(error) => LinkStatus {
            url,
            status: None,
            error: Some(error),
            ms,
        },
    }
}

async fn fetch(client: &reqwest::Client, egress: &Egress, url: &str) -> Result<u16, String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| "not a valid URL".to_string())?;
    if egress.check_url(parsed.as_str()).is_err() {
        return Err(REFUSED.into());
    }
    let head = client.head(parsed.clone()).send().await.map_err(describe)?;
    let status = head.status().as_u16();
    if status != 405 && status != 501 {
        return Ok(status);
    }
    let get = client.get(parsed).send().await.map_err(describe)?;
    Ok(get.status().as_u16())
}

fn describe(error: reqwest::Error) -> String {
    if refusal_in(&error).is_some() {
        REFUSED.into()
    } else if error.is_timeout() {
        "timed out".into()
    } else if error.is_redirect() {
        "too many redirects".into()
    } else if error.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_web_urls_once_in_order_at_most_50() {
        let html = "<a href=\"https://a.test/1\">x</a><img src=\"cid:logo\">\
                    <a href=\"mailto:x@y.test\">m</a><a href=\" HTTP://B.test/2 \">y</a>";
        let text = "again https://a.test/1 and http://c.test/3.";
        assert_eq!(
            message_links(Some(html), Some(text)),
            vec!["https://a.test/1", "HTTP://B.test/2", "http://c.test/3"]
        );
        let many: String = (0..80).map(|i| format!("http://d.test/{i} ")).collect();
        let links = message_links(None, Some(&many));
        assert_eq!(links.len(), MAX_LINKS);
        assert_eq!(links[49], "http://d.test/49");
        assert!(message_links(None, None).is_empty());
    }
}
