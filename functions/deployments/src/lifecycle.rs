//! POST /api/v1/deployments/{id}/cancel and /complete. Both free capacity and nudge the
//! scheduler so the queue drains at once, not on the next sweep.

use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json as json_value;
use shared::auth::{Caller, RateLimitedCaller};
use shared::http::extract::{DeploymentId, Json};
use shared::http::{json, Response};
use shared::queue::{nudge, ScheduleRequest};
use shared::rbac::Action;
use shared::status::DeploymentStatus;
use shared::{snapshot, ApiError, AppState};
use uuid::Uuid;

use crate::read::visible;
use crate::view::{self, Deployment};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Succeeded,
    Failed,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CompleteRequest {
    pub outcome: Outcome,
    #[schema(
        max_length = 1000,
        pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$"
    )]
    pub message: Option<String>,
}

/// Cancel a pending or running deployment.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/cancel", tag = "deployments", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Deployment), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 409, description = "already finished", body = shared::error::Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    DeploymentId(id): DeploymentId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    let deployment = visible(&state, &caller, id, Action::Deploy).await?;
    let reason = json_value!({"code": "cancelled", "message": "cancelled by a user"});
    let mut tx = state.db.begin().await?;
    // A pass holds these locks from its snapshot to its commit, so it never evicts anyone for a
    // preemptor that this cancel ends meanwhile: the cancel waits, or the pass sees it cancelled.
    snapshot::load_clusters(&mut tx, deployment.organization_id, true).await?;
    let cancelled_pending = sqlx::query!(
        r#"WITH done AS (
               UPDATE deployments SET status = 'cancelled', finished_at = now(), reason = $2
               WHERE id = $1 AND status = 'pending' RETURNING id)
           INSERT INTO deployment_events (deployment_id, type, detail, actor_kind, actor_id, actor_name)
           SELECT id, 'cancelled', 'cancelled while pending', $3, $4, name
           FROM done, actor_name($3, $4) AS name RETURNING deployment_id"#,
        id,
        reason,
        caller.kind(),
        caller.id()
    )
    .fetch_optional(&mut *tx)
    .await?
    .is_some();
    tx.commit().await?;
    if !cancelled_pending {
        finish_running(
            &state,
            &caller,
            id,
            DeploymentStatus::Cancelled,
            reason,
            "cancelled while running",
        )
        .await?;
    }
    respond_and_nudge(&state, deployment.organization_id, id, "cancelled").await
}

/// Report that a running deployment finished.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/complete", tag = "deployments", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = CompleteRequest,
    responses((status = 200, body = Deployment), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 409, description = "not running", body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn complete(
    State(state): State<AppState>,
    DeploymentId(id): DeploymentId,
    caller: RateLimitedCaller,
    body: Result<Json<CompleteRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let deployment = visible(&state, &caller, id, Action::Deploy).await?;
    let Json(body) = body?;
    if body
        .message
        .as_deref()
        .is_some_and(|m| m.chars().any(|c| c.is_control() && c != '\n' && c != '\t'))
    {
        return Err(ApiError::validation(
            "message",
            "must not contain control characters other than newlines and tabs",
        ));
    }
    let message: String = body
        .message
        .unwrap_or_default()
        .chars()
        .take(1000)
        .collect();
    let (status, reason, detail) = match body.outcome {
        Outcome::Succeeded => (
            DeploymentStatus::Succeeded,
            None,
            if message.is_empty() {
                "succeeded".to_string()
            } else {
                message
            },
        ),
        Outcome::Failed => {
            let text = if message.is_empty() {
                "reported failed".to_string()
            } else {
                message
            };
            (
                DeploymentStatus::Failed,
                Some(json_value!({"code": "failed", "message": text})),
                text,
            )
        }
    };
    finish_running(
        &state,
        &caller,
        id,
        status,
        reason.unwrap_or(serde_json::Value::Null),
        &detail,
    )
    .await?;
    respond_and_nudge(&state, deployment.organization_id, id, status.as_str()).await
}

/// Moves a running deployment to a final status and frees its capacity, in one statement,
/// with an event naming `caller`. The cluster row is locked first: the same order the
/// scheduler takes, so no deadlock.
async fn finish_running(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    status: DeploymentStatus,
    reason: serde_json::Value,
    detail: &str,
) -> Result<(), ApiError> {
    let reason = (!reason.is_null()).then_some(reason);
    for _ in 0..3 {
        let Some(cluster) = sqlx::query_scalar!(
            r#"SELECT cluster_id AS "cluster_id!" FROM deployments WHERE id = $1 AND status = 'running'"#,
            id
        )
        .fetch_optional(&state.db)
        .await?
        else {
            return Err(not_running(state, id).await);
        };
        let mut tx = state.db.begin().await?;
        sqlx::query!("SELECT id FROM clusters WHERE id = $1 FOR UPDATE", cluster)
            .fetch_optional(&mut *tx)
            .await?;
        let done = sqlx::query!(
            r#"WITH done AS (
                   UPDATE deployments SET status = $3, finished_at = now(), reason = $4
                   WHERE id = $1 AND status = 'running' AND cluster_id = $2
                   RETURNING id)
               INSERT INTO deployment_events (deployment_id, type, detail, actor_kind, actor_id, actor_name)
               SELECT done.id, $3, $5, $6, $7, name FROM done, actor_name($6, $7) AS name
               RETURNING deployment_id"#,
            id,
            cluster,
            status as DeploymentStatus,
            reason,
            detail,
            caller.kind(),
            caller.id()
        )
        .fetch_optional(&mut *tx)
        .await?;
        if done.is_some() {
            tx.commit().await?;
            return Ok(());
        }
        // It changed between the read and the lock (finished, or preempted and moved): look again.
    }
    Err(not_running(state, id).await)
}

async fn not_running(state: &AppState, id: Uuid) -> ApiError {
    match sqlx::query_scalar!(
        r#"SELECT status AS "status: DeploymentStatus" FROM deployments WHERE id = $1"#,
        id
    )
    .fetch_optional(&state.db)
    .await
    {
        Ok(Some(status)) => ApiError::Conflict(format!("the deployment is {status}, not running")),
        Ok(None) => ApiError::not_found("deployment"),
        Err(err) => err.into(),
    }
}

async fn respond_and_nudge(
    state: &AppState,
    org: Uuid,
    id: Uuid,
    trigger: &str,
) -> Result<Response, ApiError> {
    let deployment = view::find(&state.reads, id)
        .await?
        .ok_or_else(|| ApiError::not_found("deployment"))?;
    nudge(
        state.queue.as_ref(),
        ScheduleRequest {
            organization_id: org,
            deployment_id: Some(id),
            trigger: trigger.into(),
        },
    )
    .await;
    Ok(json(StatusCode::OK, &deployment))
}
