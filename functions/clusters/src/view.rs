//! The cluster as the API shows it, and the queries that read it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::rbac::{Role, Scope};
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
    /// The reading user's membership role in the cluster's organization, when asked for.
    reader_role: Option<Role>,
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

/// The cluster and `reader`'s membership role in its organization, in one statement.
pub async fn find_for(
    db: &PgPool,
    id: Uuid,
    reader: Option<Uuid>,
) -> sqlx::Result<Option<(Cluster, Option<Role>)>> {
    let mut conn = db.acquire().await?;
    let row = rows(&mut conn, Which::One(id), reader).await?.pop();
    Ok(row.map(|r| {
        let role = r.reader_role;
        (Cluster::from(r), role)
    }))
}

/// The cluster as this connection (a transaction, say) sees it.
pub async fn find_in(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Cluster>> {
    let row = rows(conn, Which::One(id), None).await?.pop();
    Ok(row.map(Cluster::from))
}

/// Clusters of the organizations `scope` covers, only those called `name` when it is given.
pub async fn list_visible(
    db: &PgPool,
    scope: Scope,
    name: Option<&str>,
) -> sqlx::Result<Vec<Cluster>> {
    let mut conn = db.acquire().await?;
    let rows = rows(&mut conn, Which::Visible(scope, name), None).await?;
    Ok(rows.into_iter().map(Cluster::from).collect())
}

/// Which clusters a read wants.
enum Which<'a> {
    One(Uuid),
    /// Those of the organizations the scope covers, only those called the name when given.
    Visible(Scope, Option<&'a str>),
}

/// The read model, stated once: the clusters `which` names, as the API shows them, oldest
/// first; with `reader`, each with that user's membership role in its organization. One
/// statement.
async fn rows(
    conn: &mut PgConnection,
    which: Which<'_>,
    reader: Option<Uuid>,
) -> sqlx::Result<Vec<ClusterRow>> {
    let (ids, (member, organization), name) = match which {
        Which::One(id) => (Some(vec![id]), (None, None), None),
        Which::Visible(scope, name) => (None, scope.binds(), name),
    };
    sqlx::query_as!(
        ClusterRow,
        r#"SELECT c.id, c.organization_id, c.name, c.cpu_millis, c.ram_mgib, c.gpu,
                  c.alloc_cpu_millis, c.alloc_ram_mgib, c.alloc_gpu, c.created_at,
                  (SELECT count(*) FROM deployments d WHERE d.cluster_id = c.id AND d.status = 'running') AS "running_count!",
                  (SELECT count(*) FROM deployments d WHERE d.requested_cluster_id = c.id AND d.status = 'pending') AS "pending_count!",
                  (SELECT m.role FROM memberships m WHERE m.organization_id = c.organization_id AND m.user_id = $5)
                      AS "reader_role: Role"
           FROM clusters c
           WHERE c.id = ANY (COALESCE($1::uuid[], ARRAY(
               SELECT s.id FROM clusters s
               WHERE s.organization_id IN (SELECT organization_id FROM memberships WHERE user_id = $2
                                           UNION ALL SELECT $3::uuid)
                 AND ($4::text IS NULL OR s.name = $4))))
           ORDER BY c.created_at, c.id"#,
        ids.as_deref() as Option<&[Uuid]>,
        member,
        organization,
        name,
        reader
    )
    .fetch_all(conn)
    .await
}
