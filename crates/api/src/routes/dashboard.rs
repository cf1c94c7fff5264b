//! What the panel's dashboard shows, for the caller's account (or, for admins, every
//! account or the one named): queue depth by status, the last 24 hours of accepted /
//! delivered / failed messages per hour, provider results and recent errors.

use axum::extract::State;
use serde::Deserialize;
use sluice_core::Verdict;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Query};
use super::super::principal::Principal;
use super::super::{ApiState, now_ms};
use super::ErrorBody;
use crate::dto::dashboard::{DashboardView, ErrorView, HourView, ProviderHealth, StatusCount};

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(dashboard))
}

const HOUR_MS: i64 = 3_600_000;

#[derive(Debug, Deserialize, IntoParams)]
pub struct DashboardQuery {
    /// Admins: one account only.
    pub account_id: Option<i64>,
}

/// The dashboard's numbers.
#[utoipa::path(get, path = "/dashboard", tag = "dashboard", params(DashboardQuery),
    security(("bearer" = [])),
    responses((status = 200, body = DashboardView), (status = 401, body = ErrorBody)))]
async fn dashboard(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<DashboardQuery>,
) -> Result<axum::Json<DashboardView>, ApiError> {
    let account_id = who.scope(query.account_id)?;
    let now = now_ms();
    let first_hour = (now / HOUR_MS - 23) * HOUR_MS;
    let board = state.store.dashboard(account_id, first_hour).await?;
    Ok(axum::Json(view(board, first_hour)))
}

/// Shapes the store's rows: every one of the 24 hours present, one row per provider.
fn view(board: sluice_store::Dashboard, first_hour: i64) -> DashboardView {
    let mut hours: Vec<HourView> = (0..24)
        .map(|i| HourView {
            hour: first_hour + i * HOUR_MS,
            ..Default::default()
        })
        .collect();
    for count in board.hourly {
        let index = (count.hour - first_hour) / HOUR_MS;
        let Some(hour) = usize::try_from(index).ok().and_then(|i| hours.get_mut(i)) else {
            continue;
        };
        match count.kind.as_str() {
            "queued" => hour.accepted += count.count,
            "delivered" => hour.delivered += count.count,
            "captured" => hour.captured += count.count,
            "failed" | "bounced" => hour.failed += count.count,
            _ => {}
        }
    }
    let mut providers: Vec<ProviderHealth> = Vec::new();
    for row in board.providers {
        let index = match providers.iter().position(|p| p.provider == row.provider) {
            Some(i) => i,
            None => {
                providers.push(ProviderHealth {
                    provider: row.provider.clone(),
                    ..Default::default()
                });
                providers.len() - 1
            }
        };
        let health = &mut providers[index];
        match row.verdict {
            Verdict::Delivered if row.provider == "capture" => health.captured += row.count,
            Verdict::Delivered => health.delivered += row.count,
            Verdict::Transient => health.transient += row.count,
            Verdict::Permanent => health.permanent += row.count,
        }
        health.last_at = health.last_at.max(row.last_at);
    }
    DashboardView {
        queue: board
            .by_status
            .into_iter()
            .map(|(status, count)| StatusCount { status, count })
            .collect(),
        hours,
        providers,
        recent_errors: board
            .recent_errors
            .into_iter()
            .map(|e| ErrorView {
                message_id: e.message_id,
                kind: e.kind,
                detail: e.detail,
                created_at: e.created_at,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_store::{Dashboard, HourCount, ProviderCount};

    #[test]
    fn hours_are_filled_and_providers_merged() {
        let first = 100 * HOUR_MS;
        let board = Dashboard {
            by_status: vec![("queued".into(), 3)],
            hourly: vec![
                HourCount {
                    hour: first,
                    kind: "queued".into(),
                    count: 5,
                },
                HourCount {
                    hour: first + 23 * HOUR_MS,
                    kind: "captured".into(),
                    count: 2,
                },
                HourCount {
                    hour: first + 23 * HOUR_MS,
                    kind: "delivered".into(),
                    count: 3,
                },
                HourCount {
                    hour: first + 23 * HOUR_MS,
                    kind: "bounced".into(),
                    count: 1,
                },
                HourCount {
                    hour: first + 24 * HOUR_MS,
                    kind: "queued".into(),
                    count: 9,
                },
            ],
            providers: vec![
                ProviderCount {
                    provider: "smtp".into(),
                    verdict: Verdict::Delivered,
                    count: 4,
                    last_at: Some(7),
                },
                ProviderCount {
                    provider: "smtp".into(),
                    verdict: Verdict::Transient,
                    count: 1,
                    last_at: Some(9),
                },
                ProviderCount {
                    provider: "capture".into(),
                    verdict: Verdict::Delivered,
                    count: 6,
                    last_at: Some(8),
                },
            ],
            recent_errors: vec![],
        };
        let view = view(board, first);
        assert_eq!(view.hours.len(), 24);
        assert_eq!(view.hours[0].accepted, 5);
        let last = &view.hours[23];
        assert_eq!(
            (last.delivered, last.captured, last.failed),
            (3, 2, 1),
            "captured mail is not counted as delivered"
        );
        assert_eq!(
            view.hours.iter().map(|h| h.accepted).sum::<i64>(),
            5,
            "out of range ignored"
        );
        assert_eq!(view.providers.len(), 2);
        let capture = &view.providers[1];
        assert_eq!((capture.delivered, capture.captured), (0, 6));
        let smtp = &view.providers[0];
        assert_eq!(
            (smtp.delivered, smtp.transient, smtp.last_at),
            (4, 1, Some(9))
        );
    }
}
