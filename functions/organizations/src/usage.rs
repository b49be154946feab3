//! GET /api/v1/organizations/{id}/usage: per submitter (member or API token), what their
//! deployments hold running, how many wait, their quota and their dominant share: what fair
//! share and quotas decide by (DESIGN.md §9).

use axum::extract::State;
use http::StatusCode;
use serde::Serialize;
use shared::auth::RateLimitedCaller;
use shared::http::extract::OrganizationId;
use shared::http::{json, Response};
use shared::rbac::{authorize, Action};
use shared::resources::{Resources, ResourcesDto};
use shared::{ApiError, AppState};

use crate::audit_log::Actor;
use crate::quotas::Quota;

#[derive(Serialize, utoipa::ToSchema)]
pub struct SubmitterUsage {
    pub submitter: Actor,
    /// What its running deployments hold.
    pub running: ResourcesDto,
    pub running_count: i64,
    pub pending_count: i64,
    /// Null: no quota.
    pub quota: Option<Quota>,
    /// The largest of its shares of the organization's CPU, RAM and GPUs (0-1).
    pub dominant_share: f64,
}

/// Each submitter's usage: every member and live token, and whoever else has work waiting or
/// running; the largest dominant share first.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/usage", tag = "organizations",
    security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = [SubmitterUsage]), (status = 401, body = shared::error::Problem),
              (status = 404, body = shared::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Read, "organization").await?;
    let total = sqlx::query!(
        r#"SELECT COALESCE(sum(cpu_millis), 0)::bigint AS "cpu!", COALESCE(sum(ram_mgib), 0)::bigint AS "ram!",
                  COALESCE(sum(gpu), 0)::bigint AS "gpu!"
           FROM clusters WHERE organization_id = $1"#,
        org
    )
    .fetch_one(&state.db)
    .await?;
    let total = Resources::new(total.cpu, total.ram, total.gpu);
    let rows = sqlx::query!(
        r#"WITH work AS (
               SELECT submitter_id, CASE WHEN created_by IS NULL THEN 'token' ELSE 'user' END AS kind,
                      COALESCE(sum(cpu_millis) FILTER (WHERE status = 'running'), 0)::bigint AS cpu,
                      COALESCE(sum(ram_mgib) FILTER (WHERE status = 'running'), 0)::bigint AS ram,
                      COALESCE(sum(gpu) FILTER (WHERE status = 'running'), 0)::bigint AS gpu,
                      count(*) FILTER (WHERE status = 'running') AS running,
                      count(*) FILTER (WHERE status = 'pending') AS pending
               FROM deployments WHERE organization_id = $1 AND status IN ('pending', 'running')
               GROUP BY 1, 2),
           submitters AS (
               SELECT 'user' AS kind, user_id AS id FROM memberships WHERE organization_id = $1
               UNION SELECT 'token', id FROM api_tokens
                     WHERE organization_id = $1 AND revoked_at IS NULL AND expires_at > now()
               UNION SELECT kind, submitter_id FROM work)
           SELECT s.kind AS "kind!", s.id AS "id!", COALESCE(actor_name(s.kind, s.id), '') AS "name!",
                  COALESCE(w.cpu, 0) AS "cpu!", COALESCE(w.ram, 0) AS "ram!", COALESCE(w.gpu, 0) AS "gpu!",
                  COALESCE(w.running, 0) AS "running!", COALESCE(w.pending, 0) AS "pending!",
                  q.submitter_id IS NOT NULL AS "has_quota!", q.cpu_millis, q.ram_mgib, q.gpu AS quota_gpu
           FROM submitters s
           LEFT JOIN work w ON w.submitter_id = s.id
           LEFT JOIN submitter_quotas q ON q.organization_id = $1 AND q.submitter_id = s.id
           ORDER BY 3, 2"#,
        org
    )
    .fetch_all(&state.db)
    .await?;
    let mut usage: Vec<SubmitterUsage> = rows
        .into_iter()
        .map(|r| {
            let running = Resources::new(r.cpu, r.ram, r.gpu);
            SubmitterUsage {
                submitter: Actor {
                    kind: r.kind,
                    id: r.id,
                    name: r.name,
                },
                running: running.into(),
                running_count: r.running,
                pending_count: r.pending,
                quota: r
                    .has_quota
                    .then(|| Quota::from_stored(r.cpu_millis, r.ram_mgib, r.quota_gpu)),
                dominant_share: running.dominant_share_of(&total),
            }
        })
        .collect();
    // Stable: equal shares keep the name order of the query.
    usage.sort_by(|a, b| b.dominant_share.total_cmp(&a.dominant_share));
    Ok(json(StatusCode::OK, &usage))
}
