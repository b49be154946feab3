//! The deployment as the API shows it, and the queries that read it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::rbac::{Role, Scope};
use shared::resources::{Resources, ResourcesDto};
use shared::status::DeploymentStatus;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Deployment {
    pub id: Uuid,
    pub organization_id: Uuid,
    /// Where it runs or last ran; for a waiting deployment, the cluster it asked for (null = any).
    pub cluster_id: Option<Uuid>,
    /// The cluster the submitter asked for (null = the scheduler chooses).
    pub requested_cluster_id: Option<Uuid>,
    pub name: String,
    pub image: String,
    pub resources: ResourcesDto,
    pub priority: i32,
    /// The priority the queue is ordered by: while pending, `priority` plus the organization's
    /// aging boost for the time waited (DESIGN.md §9); otherwise `priority`. Preemption
    /// compares `priority` only.
    pub effective_priority: i32,
    pub status: DeploymentStatus,
    /// Why it is not running: `{code, message, shortfall?}`; null while running. Waiting:
    /// `queued` (not yet looked at), `insufficient_resources`, `waiting_for_dependencies`,
    /// `preempted`, `exceeds_capacity` (no cluster is that large), `quota_exceeded` (its
    /// submitter's quota is in use). Ended: `dependency_failed`,
    /// `max_runtime_exceeded`, `cancelled`, `failed`.
    #[schema(value_type = Option<Object>)]
    pub reason: Option<serde_json::Value>,
    /// 1-based place among the organization's waiting deployments, by effective priority, then
    /// submission time, then id (fair share may interleave equal priorities); null unless pending.
    pub queue_position: Option<i64>,
    pub depends_on: Vec<Uuid>,
    pub preemption_count: i32,
    pub max_runtime_seconds: Option<i32>,
    /// The id of whoever submitted it: a user's, or an API token's.
    pub created_by: Uuid,
    pub submitted_by: Actor,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A person or an API token, as a deployment or an event names them.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `user` or `token`.
    pub kind: String,
    pub id: Uuid,
    /// The username, or the token's name.
    pub name: String,
}

impl Actor {
    /// From an event's nullable actor columns (all set or all null).
    pub fn from_columns(
        kind: Option<String>,
        id: Option<Uuid>,
        name: Option<String>,
    ) -> Option<Actor> {
        Some(Actor {
            kind: kind?,
            id: id?,
            name: name?,
        })
    }
}

pub struct DeploymentRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub cluster_id: Option<Uuid>,
    pub requested_cluster_id: Option<Uuid>,
    pub name: String,
    pub image: String,
    pub cpu_millis: i64,
    pub ram_mgib: i64,
    pub gpu: i64,
    pub priority: i32,
    pub effective_priority: i32,
    pub status: DeploymentStatus,
    pub reason: Option<serde_json::Value>,
    pub queue_position: Option<i64>,
    pub depends_on: Vec<Uuid>,
    pub preemption_count: i32,
    pub max_runtime_seconds: Option<i32>,
    pub submitter_kind: String,
    pub submitter_id: Uuid,
    pub submitter_name: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The reading user's membership role in the deployment's organization, when asked for.
    pub reader_role: Option<Role>,
}

impl From<DeploymentRow> for Deployment {
    fn from(r: DeploymentRow) -> Self {
        Deployment {
            id: r.id,
            organization_id: r.organization_id,
            cluster_id: r.cluster_id.or(r.requested_cluster_id),
            requested_cluster_id: r.requested_cluster_id,
            name: r.name,
            image: r.image,
            resources: Resources::new(r.cpu_millis, r.ram_mgib, r.gpu).into(),
            priority: r.priority,
            effective_priority: r.effective_priority,
            status: r.status,
            reason: r.reason,
            queue_position: r.queue_position,
            depends_on: r.depends_on,
            preemption_count: r.preemption_count,
            max_runtime_seconds: r.max_runtime_seconds,
            created_by: r.submitter_id,
            submitted_by: Actor {
                kind: r.submitter_kind,
                id: r.submitter_id,
                name: r.submitter_name,
            },
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

pub async fn find(db: &PgPool, id: Uuid) -> sqlx::Result<Option<Deployment>> {
    Ok(by_ids(db, &[id]).await?.pop())
}

/// The deployment and `reader`'s membership role in its organization, in one statement.
pub async fn find_for(
    db: &PgPool,
    id: Uuid,
    reader: Option<Uuid>,
) -> sqlx::Result<Option<(Deployment, Option<Role>)>> {
    Ok(rows(db, &[id], reader).await?.pop().map(|r| {
        let role = r.reader_role;
        (Deployment::from(r), role)
    }))
}

pub struct ListFilter {
    /// The organizations to list from.
    pub scope: Scope,
    pub cluster_id: Option<Uuid>,
    pub status: Option<DeploymentStatus>,
    pub name: Option<String>,
    /// Keyset cursor: rows strictly older than this (created_at, id).
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// Deployments of the organizations the filter's scope covers, newest first.
pub async fn list_visible(db: &PgPool, f: &ListFilter) -> sqlx::Result<Vec<Deployment>> {
    let (member, organization) = f.scope.binds();
    let (before_at, before_id) = f
        .before
        .map_or((None, None), |(at, id)| (Some(at), Some(id)));
    // Newest first within each organization, from its (organization, created_at, id) index
    // starting at the cursor (a row comparison with no NULL, so the index can seek to it) and
    // stopping after a page: a page costs the same however much history lies around it.
    let ids = sqlx::query_scalar!(
        r#"SELECT page.id AS "id!" FROM
             (SELECT organization_id FROM memberships WHERE user_id = $1
              UNION ALL SELECT $2::uuid WHERE $2::uuid IS NOT NULL) AS orgs,
             LATERAL (SELECT d.id, d.created_at FROM deployments d
                      WHERE d.organization_id = orgs.organization_id
                        AND ($3::uuid IS NULL OR d.cluster_id = $3 OR (d.cluster_id IS NULL AND d.requested_cluster_id = $3))
                        AND ($4::text IS NULL OR d.status = $4)
                        AND (d.created_at, d.id) < (COALESCE($5::timestamptz, 'infinity'),
                                                    COALESCE($6::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
                        AND ($8::text IS NULL OR d.name = $8)
                      ORDER BY d.created_at DESC, d.id DESC
                      LIMIT $7) AS page
           ORDER BY page.created_at DESC, page.id DESC
           LIMIT $7"#,
        member,
        organization,
        f.cluster_id,
        f.status as Option<DeploymentStatus>,
        before_at,
        before_id,
        f.limit,
        f.name.as_deref()
    )
    .fetch_all(db)
    .await?;
    by_ids(db, &ids).await
}

async fn by_ids(db: &PgPool, ids: &[Uuid]) -> sqlx::Result<Vec<Deployment>> {
    let rows = rows(db, ids, None).await?;
    Ok(rows.into_iter().map(Deployment::from).collect())
}

/// The read model, stated once: these deployments as the API shows them, newest first; with
/// `reader`, each with that user's membership role in its organization.
///
/// A queue position is counted from the pending index for one deployment: the count walks the
/// queue ahead of it. For a page, every pending one is numbered in one pass over its
/// organization's queue instead (`positions`): a hundred counts deep in a long queue walked it
/// a hundred times.
async fn rows(db: &PgPool, ids: &[Uuid], reader: Option<Uuid>) -> sqlx::Result<Vec<DeploymentRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let page = ids.len() > 1;
    sqlx::query_as!(
        DeploymentRow,
        r#"WITH positions AS MATERIALIZED (
             SELECT ranked.id, ranked.position FROM (
               SELECT q.id, row_number() OVER (
                        PARTITION BY q.organization_id
                        ORDER BY effective_priority(q.priority, q.queued_at, o.aging_points_per_hour, o.aging_max_boost, now()) DESC,
                                 q.created_at, q.id) AS position
               FROM deployments q JOIN organizations o ON o.id = q.organization_id
               WHERE $3 AND q.status = 'pending'
                 AND q.organization_id IN (SELECT p.organization_id FROM deployments p
                                           WHERE p.id = ANY($1) AND p.status = 'pending')
             ) AS ranked
             WHERE ranked.id = ANY($1))
           SELECT d.id, d.organization_id, d.cluster_id, d.requested_cluster_id, d.name, d.image,
                  d.cpu_millis, d.ram_mgib, d.gpu, d.priority,
                  CASE WHEN d.status = 'pending'
                       THEN effective_priority(d.priority, d.queued_at, o.aging_points_per_hour, o.aging_max_boost, now())
                       ELSE d.priority END AS "effective_priority!",
                  d.status AS "status: DeploymentStatus", d.reason,
                  CASE WHEN d.status <> 'pending' THEN NULL
                       WHEN $3 THEN (SELECT p.position FROM positions p WHERE p.id = d.id)
                       WHEN o.aging_points_per_hour = 0 THEN
                    -- Without aging the order is the pending index's: counted from it.
                    (SELECT count(*) + 1 FROM deployments q
                     WHERE q.organization_id = d.organization_id AND q.status = 'pending'
                       AND (q.priority, d.created_at, d.id) > (d.priority, q.created_at, q.id))
                  ELSE
                    (SELECT count(*) + 1 FROM deployments q
                     WHERE q.organization_id = d.organization_id AND q.status = 'pending'
                       AND (effective_priority(q.priority, q.queued_at, o.aging_points_per_hour, o.aging_max_boost, now()),
                            d.created_at, d.id)
                         > (effective_priority(d.priority, d.queued_at, o.aging_points_per_hour, o.aging_max_boost, now()),
                            q.created_at, q.id))
                  END AS queue_position,
                  ARRAY(SELECT depends_on_id FROM deployment_dependencies WHERE deployment_id = d.id
                        ORDER BY depends_on_id) AS "depends_on!",
                  d.preemption_count, d.max_runtime_seconds,
                  CASE WHEN d.created_by IS NULL THEN 'token' ELSE 'user' END AS "submitter_kind!",
                  d.submitter_id AS "submitter_id!",
                  COALESCE(actor_name(CASE WHEN d.created_by IS NULL THEN 'token' ELSE 'user' END, d.submitter_id), '') AS "submitter_name!",
                  d.created_at, d.started_at, d.finished_at,
                  (SELECT m.role FROM memberships m WHERE m.organization_id = d.organization_id AND m.user_id = $2)
                      AS "reader_role: Role"
           FROM deployments d JOIN organizations o ON o.id = d.organization_id
           WHERE d.id = ANY($1)
           ORDER BY d.created_at DESC, d.id DESC"#,
        ids,
        reader,
        page
    )
    .fetch_all(db)
    .await
}
