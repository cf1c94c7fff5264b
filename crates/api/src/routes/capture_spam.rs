//! The spam check of a captured message: the operator's SpamAssassin `spamd`
//! (`capture.spamd`) scores it and names the rules that fired (`core::spamc`).

use axum::extract::State;
use axum::http::StatusCode;
use sluice_core::spamc::{SpamReport, parse_report, report_request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::ApiState;
use super::super::error::{ApiError, Path};
use super::super::principal::Principal;
use super::ErrorBody;
use super::capture::whole_message;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(spam_check))
}

/// spamd answers a REPORT in a few KiB; more is not spamd.
const MAX_ANSWER: u64 = 1024 * 1024;

/// The message's spam score from SpamAssassin: `is_spam`, `score`, `threshold` and the
/// `rules` that fired (name, score, description). 503 `spam_check_unavailable` when no
/// spamd is configured or it does not answer.
#[utoipa::path(get, path = "/messages/{id}/checks/spam", tag = "messages", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 410, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn spam_check(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<SpamReport>, ApiError> {
    let message = who.visible(state.store.message(id).await?)?;
    let Some((address, timeout)) = state.spamd.clone() else {
        return Err(unavailable("no spamd is configured (capture.spamd)"));
    };
    let raw = whole_message(&state, &message).await?;
    let answer = tokio::time::timeout(timeout, ask_spamd(&address, &raw))
        .await
        .map_err(|_| unavailable("spamd did not answer in time"))?
        .map_err(|error| {
            tracing::warn!(%error, "spamd not reachable");
            unavailable("spamd is not reachable")
        })?;
    let report = parse_report(&answer).map_err(|error| {
        tracing::warn!(%error, "spamd's answer not readable");
        unavailable("spamd's answer could not be read")
    })?;
    Ok(axum::Json(report))
}

async fn ask_spamd(address: &str, message: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream.write_all(&report_request(message)).await?;
    stream.shutdown().await?;
    let mut answer = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut answer).await?;
    Ok(answer)
}

fn unavailable(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "spam_check_unavailable",
        message.to_string(),
    )
}
