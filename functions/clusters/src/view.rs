//! The cluster as the API shows it, and the queries that read it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::rbac::Scope;
use shared::resources::{Resources, ResourcesDto};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Cluster {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub capacity: ResourcesDto,
    pub allocated: ResourcesDto,
    pub available: ResourcesDto,
    /// Deployments running on it now.
    pub running_count: i64,
    /// Deployments waiting that asked for this cluster.
    pub pending_count: i64,
    pub created_at: DateTime<Utc>,
}

struct ClusterRow {
    id: Uuid,
    organization_id: Uuid,
    name: String,
    cpu_millis: i64,
    ram_mgib: i64,
    gpu: i64,
    alloc_cpu_millis: i64,
    alloc_ram_mgib: i64,
    alloc_gpu: i64,
    running_count: i64,
    pending_count: i64,
    created_at: DateTime<Utc>,
}

impl From<ClusterRow> for Cluster {
    fn from(r: ClusterRow) -> Self {
        let capacity = Resources::new(r.cpu_millis, r.ram_mgib, r.gpu);
        let allocated = Resources::new(r.alloc_cpu_millis, r.alloc_ram_mgib, r.alloc_gpu);
        Cluster {
            id: r.id,
            organization_id: r.organization_id,
            name: r.name,
            capacity: capacity.into(),
            allocated: allocated.into(),
            available: (capacity - allocated).into(),
            running_count: r.running_count,
            pending_count: r.pending_count,
            created_at: r.created_at,
        }
    }
}

pub async fn find(db: &PgPool, id: Uuid) -> sqlx::Result<Option<Cluster>> {
    let mut conn = db.acquire().await?;
    find_in(&mut conn, id).await
}

/// The cluster as this connection (a transaction, say) sees it.
pub async fn find_in(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Cluster>> {
    Ok(by_ids(conn, &[id]).await?.pop())
}

/// Clusters of the organizations `scope` covers, only those called `name` when it is given.
pub async fn list_visible(
    db: &PgPool,
    scope: Scope,
    name: Option<&str>,
) -> sqlx::Result<Vec<Cluster>> {
    let (member, organization) = scope.binds();
    let mut conn = db.acquire().await?;
    let ids = sqlx::query_scalar!(
        "SELECT c.id FROM clusters c
         WHERE c.organization_id IN (SELECT organization_id FROM memberships WHERE user_id = $1
                                     UNION ALL SELECT $2::uuid)
           AND ($3::text IS NULL OR c.name = $3)",
        member,
        organization,
        name
    )
    .fetch_all(&mut *conn)
    .await?;
    by_ids(&mut conn, &ids).await
}

/// The read model, stated once: these clusters as the API shows them, oldest first.
async fn by_ids(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<Vec<Cluster>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query_as!(
        ClusterRow,
        r#"SELECT c.id, c.organization_id, c.name, c.cpu_millis, c.ram_mgib, c.gpu,
                  c.alloc_cpu_millis, c.alloc_ram_mgib, c.alloc_gpu, c.created_at,
                  (SELECT count(*) FROM deployments d WHERE d.cluster_id = c.id AND d.status = 'running') AS "running_count!",
                  (SELECT count(*) FROM deployments d WHERE d.requested_cluster_id = c.id AND d.status = 'pending') AS "pending_count!"
           FROM clusters c WHERE c.id = ANY($1)
           ORDER BY c.created_at, c.id"#,
        ids
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Cluster::from).collect())
}
