//! GET /api/v1/deployments, /api/v1/deployments/{id} and /api/v1/deployments/{id}/events.

use axum::extract::State;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::auth::{Caller, RateLimitedCaller};
use shared::http::extract::{DeploymentId, Query};
use shared::http::{json, Response};
use shared::rbac::{decide, readable, Action};
use shared::status::DeploymentStatus;
use shared::validate::bounded;
use shared::{ApiError, AppState};
use uuid::Uuid;

use crate::view::{self, Actor, Deployment, ListFilter};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub organization_id: Option<Uuid>,
    pub cluster_id: Option<Uuid>,
    /// pending, running, succeeded, failed or cancelled.
    pub status: Option<String>,
    /// Only deployments with exactly this name (names are not unique: a client resolving one
    /// gets every match).
    pub name: Option<String>,
    /// 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeploymentPage {
    pub items: Vec<Deployment>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Event {
    pub at: DateTime<Utc>,
    /// submitted, started, preempted, requeued, cancelled, succeeded, failed or dependency_failed.
    #[serde(rename = "type")]
    pub event_type: String,
    pub detail: String,
    pub related_deployment_id: Option<Uuid>,
    /// Who did it (submitted, cancelled, completed); null for the scheduler's own decisions.
    pub actor: Option<Actor>,
}

fn encode_cursor(d: &Deployment) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", d.created_at.timestamp_micros(), d.id))
}

fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (micros, id) = text.split_once('|')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        Uuid::parse_str(id).ok()?,
    ))
}

/// Deployments of the caller's organizations, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/deployments", tag = "deployments", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, body = DeploymentPage), (status = 401, body = shared::error::Problem),
              (status = 404, body = shared::error::Problem), (status = 422, body = shared::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: RateLimitedCaller,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = bounded("limit", q.limit, DEFAULT_LIMIT, 1, MAX_LIMIT)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(DeploymentStatus::parse(s).ok_or_else(|| {
            let names: Vec<&str> = DeploymentStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::validation("status", format!("must be one of {}", names.join(", ")))
        })?),
    };
    let before = match &q.cursor {
        Some(c) => Some(
            decode_cursor(c)
                .ok_or_else(|| ApiError::validation("cursor", "is not a cursor this API gave"))?,
        ),
        None => None,
    };
    let filter = ListFilter {
        scope: readable(&state.db, &caller, q.organization_id).await?,
        cluster_id: q.cluster_id,
        status,
        name: q.name,
        before,
        limit: limit + 1,
    };
    let mut items = view::list_visible(&state.db, &filter).await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(encode_cursor)
    } else {
        None
    };
    Ok(json(StatusCode::OK, &DeploymentPage { items, next_cursor }))
}

/// Loads a deployment the caller may act on; another organization's is 404.
pub async fn visible(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    action: Action,
) -> Result<Deployment, ApiError> {
    let (deployment, membership) = view::find_for(&state.reads, id, caller.user_id())
        .await?
        .ok_or_else(|| ApiError::not_found("deployment"))?;
    decide(
        caller,
        deployment.organization_id,
        membership,
        action,
        "deployment",
    )?;
    Ok(deployment)
}

/// One deployment, with why it waits and where it stands in the queue.
#[utoipa::path(get, path = "/api/v1/deployments/{id}", tag = "deployments", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Deployment), (status = 401, body = shared::error::Problem),
              (status = 404, body = shared::error::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    DeploymentId(id): DeploymentId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::OK,
        &visible(&state, &caller, id, Action::Read).await?,
    ))
}

/// The deployment's history, oldest first.
#[utoipa::path(get, path = "/api/v1/deployments/{id}/events", tag = "deployments", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = [Event]), (status = 401, body = shared::error::Problem),
              (status = 404, body = shared::error::Problem)))]
pub async fn events(
    State(state): State<AppState>,
    DeploymentId(id): DeploymentId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    visible(&state, &caller, id, Action::Read).await?;
    let events: Vec<Event> = sqlx::query!(
        "SELECT at, type, detail, related_deployment_id, actor_kind, actor_id, actor_name
         FROM deployment_events WHERE deployment_id = $1 ORDER BY id",
        id
    )
    .fetch_all(&state.db)
    .await?
    .into_iter()
    .map(|r| Event {
        at: r.at,
        event_type: r.r#type,
        detail: r.detail,
        related_deployment_id: r.related_deployment_id,
        actor: Actor::from_columns(r.actor_kind, r.actor_id, r.actor_name),
    })
    .collect();
    Ok(json(StatusCode::OK, &events))
}
