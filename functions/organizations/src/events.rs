//! GET /api/v1/organizations/{id}/events: every deployment event of the organization, oldest
//! first after a cursor, in commit order (see the event_batches migration), optionally waiting
//! for the next one.
//!
//! `wait` polls PostgreSQL every half second instead of holding a LISTEN connection: a held
//! request then costs one short indexed query per poll and no connection between polls, which
//! suits Lambda (each instance has a pool of two, and a listener would pin one per waiting
//! request); the price is up to half a second of latency.

use axum::extract::State;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::auth::RateLimitedCaller;
use shared::http::extract::{OrganizationId, Query};
use shared::http::{json, Response};
use shared::rbac::{authorize, Action};
use shared::status::DeploymentStatus;
use shared::validate::bounded;
use shared::{ApiError, AppState};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;
pub const MAX_WAIT_SECONDS: i64 = 20;
const POLL_EVERY: Duration = Duration::from_millis(500);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// `next_cursor` of the previous answer (or an item's `cursor`); omit to start from the
    /// oldest event kept.
    pub after: Option<String>,
    /// 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// 0-20 seconds to hold the request while nothing is newer than `after` (default 0).
    #[param(minimum = 0, maximum = 20)]
    pub wait: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventDeployment {
    pub id: Uuid,
    pub name: String,
    /// The deployment's status now.
    pub status: DeploymentStatus,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FeedEvent {
    /// This event's position: pass it as `after` to read what follows it.
    pub cursor: String,
    pub at: DateTime<Utc>,
    /// submitted, started, preempted, requeued, cancelled, succeeded, failed or dependency_failed.
    #[serde(rename = "type")]
    pub event_type: String,
    pub deployment: EventDeployment,
    pub detail: String,
    pub related_deployment_id: Option<Uuid>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FeedPage {
    pub items: Vec<FeedEvent>,
    /// Never null: after the last item, or the current end of the feed when there were none.
    pub next_cursor: String,
}

/// A position in the feed: after event `event` of commit batch `batch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    batch: i64,
    event: i64,
}

impl Position {
    const START: Position = Position {
        batch: -1,
        event: 0,
    };

    fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("ev1:{}:{}", self.batch, self.event))
    }

    fn decode(cursor: &str) -> Option<Position> {
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
        let mut parts = text.strip_prefix("ev1:")?.split(':');
        let position = Position {
            batch: parts.next()?.parse().ok()?,
            event: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(position)
    }
}

/// The organization's deployment events after a cursor, oldest first, in commit order.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/events", tag = "organizations",
    security(("bearer" = [])), params(("id" = Uuid, Path), FeedQuery),
    responses((status = 200, body = FeedPage), (status = 401, body = shared::error::Problem),
              (status = 404, body = shared::error::Problem), (status = 422, body = shared::error::Problem)))]
pub async fn feed(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    caller: RateLimitedCaller,
    query: Result<Query<FeedQuery>, ApiError>,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Read, "organization").await?;
    let Query(q) = query?;
    let limit = bounded("limit", q.limit, DEFAULT_LIMIT, 1, MAX_LIMIT)?;
    let wait = bounded("wait", q.wait, 0, 0, MAX_WAIT_SECONDS)?;
    let after = match &q.after {
        Some(c) => Position::decode(c)
            .ok_or_else(|| ApiError::validation("after", "is not a cursor this API gave"))?,
        None => Position::START,
    };
    let deadline = Instant::now() + Duration::from_secs(wait as u64);
    // The newest batch the events were last read up to (None: not read yet).
    let mut read_up_to = None;
    loop {
        // The newest batch first, then the events up to it: a batch committing in between is
        // left for the next read instead of being skipped by the end-of-feed cursor.
        let newest = newest_batch(&state, org).await?;
        // While nothing commits, a waiting request costs one small query a poll, not two.
        let items = if read_up_to == Some(newest) {
            Vec::new()
        } else {
            read_up_to = Some(newest);
            read(&state, org, after, newest, limit).await?
        };
        let now = Instant::now();
        if !items.is_empty() || now >= deadline {
            let next_cursor = match items.last() {
                Some(item) => item.cursor.clone(),
                // Past every batch read (whose events may all be gone), or where it was.
                None => match newest {
                    Some(batch) if batch > after.batch => Position {
                        batch,
                        event: i64::MAX,
                    },
                    _ => after,
                }
                .encode(),
            };
            return Ok(json(StatusCode::OK, &FeedPage { items, next_cursor }));
        }
        tokio::time::sleep(POLL_EVERY.min(deadline - now)).await;
    }
}

async fn newest_batch(state: &AppState, org: Uuid) -> Result<Option<i64>, ApiError> {
    Ok(sqlx::query_scalar!(
        "SELECT max(seq) FROM event_batches WHERE organization_id = $1",
        org
    )
    .fetch_one(&state.db)
    .await?)
}

async fn read(
    state: &AppState,
    org: Uuid,
    after: Position,
    newest: Option<i64>,
    limit: i64,
) -> Result<Vec<FeedEvent>, ApiError> {
    let Some(newest) = newest else {
        return Ok(Vec::new());
    };
    let rows = sqlx::query!(
        r#"SELECT b.seq AS "seq!", e.id, e.at, e.type, e.detail, e.related_deployment_id,
                  d.id AS deployment_id, d.name, d.status AS "status: DeploymentStatus"
           FROM event_batches b
           JOIN deployment_events e ON e.xid = b.xid
           JOIN deployments d ON d.id = e.deployment_id AND d.organization_id = b.organization_id
           WHERE b.organization_id = $1 AND b.seq BETWEEN $2 AND $4
             AND (b.seq, e.id) > ($2, $3)
           ORDER BY b.seq, e.id
           LIMIT $5"#,
        org,
        after.batch,
        after.event,
        newest,
        limit
    )
    .fetch_all(&state.db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| FeedEvent {
            cursor: Position {
                batch: r.seq,
                event: r.id,
            }
            .encode(),
            at: r.at,
            event_type: r.r#type,
            deployment: EventDeployment {
                id: r.deployment_id,
                name: r.name,
                status: r.status,
            },
            detail: r.detail,
            related_deployment_id: r.related_deployment_id,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let p = Position {
            batch: 42,
            event: 7,
        };
        assert_eq!(Position::decode(&p.encode()), Some(p));
        for bad in [
            "",
            "nonsense",
            &URL_SAFE_NO_PAD.encode("ev1:1"),
            &URL_SAFE_NO_PAD.encode("ev1:1:2:3"),
        ] {
            assert_eq!(Position::decode(bad), None, "{bad}");
        }
    }
}
