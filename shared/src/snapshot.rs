//! Loads the scheduler's view of one organization: its clusters, what runs and what waits.
//! The scheduler pass calls it with the clusters locked; dry-run calls it without locks.

use crate::resources::Resources;
use crate::scheduling::{Cluster, DependencyState, Fairness, Input, Pending, Running, UNLIMITED};
use crate::status::DeploymentStatus;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// Loads the organization's clusters; with `lock`, takes their row locks in id order, which
/// serializes scheduler passes and releases per organization without deadlocks.
pub async fn load_clusters(
    conn: &mut PgConnection,
    org: Uuid,
    lock: bool,
) -> sqlx::Result<Vec<Cluster>> {
    let rows = if lock {
        sqlx::query!(
            "SELECT id, cpu_millis, ram_mgib, gpu, alloc_cpu_millis, alloc_ram_mgib, alloc_gpu
             FROM clusters WHERE organization_id = $1 ORDER BY id FOR UPDATE",
            org
        )
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| {
            (
                r.id,
                Resources::new(r.cpu_millis, r.ram_mgib, r.gpu),
                Resources::new(r.alloc_cpu_millis, r.alloc_ram_mgib, r.alloc_gpu),
            )
        })
        .collect::<Vec<_>>()
    } else {
        sqlx::query!(
            "SELECT id, cpu_millis, ram_mgib, gpu, alloc_cpu_millis, alloc_ram_mgib, alloc_gpu
             FROM clusters WHERE organization_id = $1 ORDER BY id",
            org
        )
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| {
            (
                r.id,
                Resources::new(r.cpu_millis, r.ram_mgib, r.gpu),
                Resources::new(r.alloc_cpu_millis, r.alloc_ram_mgib, r.alloc_gpu),
            )
        })
        .collect()
    };
    Ok(rows
        .into_iter()
        .map(|(id, capacity, allocated)| Cluster {
            id,
            capacity,
            allocated,
        })
        .collect())
}

/// What `load_input` read: the algorithm's input, and each pending deployment's stored reason
/// (as JSON text), so a pass rewrites only the reasons that changed.
pub struct Snapshot {
    pub input: Input,
    pub stored_reasons: HashMap<Uuid, String>,
}

/// Everything the pure algorithm needs about `org`, as of `now`.
pub async fn load_input(
    conn: &mut PgConnection,
    org: Uuid,
    clusters: Vec<Cluster>,
    now: DateTime<Utc>,
    min_runtime_seconds: i64,
) -> sqlx::Result<Snapshot> {
    let fairness = load_fairness(&mut *conn, org).await?;
    load_input_with(conn, org, clusters, fairness, now, min_runtime_seconds).await
}

/// [`load_input`] with the organization's fairness settings already loaded.
pub async fn load_input_with(
    conn: &mut PgConnection,
    org: Uuid,
    clusters: Vec<Cluster>,
    fairness: Fairness,
    now: DateTime<Utc>,
    min_runtime_seconds: i64,
) -> sqlx::Result<Snapshot> {
    let running = sqlx::query!(
        r#"SELECT id, cluster_id AS "cluster_id!", requested_cluster_id, priority, cpu_millis, ram_mgib, gpu,
                  started_at AS "started_at!", created_at, submitter_id AS "submitter_id!"
           FROM deployments WHERE organization_id = $1 AND status = 'running'"#,
        org
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| Running {
        id: r.id,
        cluster_id: r.cluster_id,
        requested_cluster_id: r.requested_cluster_id,
        priority: r.priority,
        resources: Resources::new(r.cpu_millis, r.ram_mgib, r.gpu),
        started_at: r.started_at,
        created_at: r.created_at,
        submitter: r.submitter_id,
    })
    .collect();

    // Dependencies of pending deployments that have not succeeded yet (succeeded ones are done).
    let mut open_deps: HashMap<Uuid, Vec<(Uuid, DeploymentStatus)>> = HashMap::new();
    for row in sqlx::query!(
        r#"SELECT dd.deployment_id, dd.depends_on_id, dep.status AS "status: DeploymentStatus"
         FROM deployment_dependencies dd
         JOIN deployments p ON p.id = dd.deployment_id
         JOIN deployments dep ON dep.id = dd.depends_on_id
         WHERE p.organization_id = $1 AND p.status = 'pending' AND dep.status <> 'succeeded'
         ORDER BY dd.deployment_id, dd.depends_on_id"#,
        org
    )
    .fetch_all(&mut *conn)
    .await?
    {
        open_deps
            .entry(row.deployment_id)
            .or_default()
            .push((row.depends_on_id, row.status));
    }

    let rows = sqlx::query!(
        r#"SELECT id, requested_cluster_id, priority, cpu_millis, ram_mgib, gpu, created_at,
                  queued_at, submitter_id AS "submitter_id!", reason::text AS stored_reason
           FROM deployments WHERE organization_id = $1 AND status = 'pending'"#,
        org
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut stored_reasons = HashMap::with_capacity(rows.len());
    let mut pending = Vec::with_capacity(rows.len());
    for r in rows {
        if let Some(reason) = r.stored_reason {
            stored_reasons.insert(r.id, reason);
        }
        pending.push(Pending {
            id: r.id,
            cluster_id: r.requested_cluster_id,
            priority: r.priority,
            resources: Resources::new(r.cpu_millis, r.ram_mgib, r.gpu),
            created_at: r.created_at,
            dependencies: dependency_state(open_deps.remove(&r.id).unwrap_or_default()),
            submitter: r.submitter_id,
            queued_at: r.queued_at,
        });
    }
    Ok(Snapshot {
        input: Input {
            clusters,
            running,
            pending,
            now,
            min_runtime_seconds,
            fairness,
        },
        stored_reasons,
    })
}

/// The organization's aging and fair-share settings and its submitters' quotas.
pub async fn load_fairness(conn: &mut PgConnection, org: Uuid) -> sqlx::Result<Fairness> {
    let settings = sqlx::query!(
        "SELECT aging_points_per_hour, aging_max_boost, fair_share FROM organizations WHERE id = $1",
        org
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(settings) = settings else {
        return Ok(Fairness::default());
    };
    let quotas = sqlx::query!(
        "SELECT submitter_id, cpu_millis, ram_mgib, gpu FROM submitter_quotas WHERE organization_id = $1",
        org
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|q| {
        let cap = |amount: Option<i64>| amount.unwrap_or(UNLIMITED);
        let limit = Resources::new(cap(q.cpu_millis), cap(q.ram_mgib), cap(q.gpu));
        (q.submitter_id, limit)
    })
    .collect();
    Ok(Fairness {
        aging_points_per_hour: settings.aging_points_per_hour,
        aging_max_boost: settings.aging_max_boost,
        fair_share: settings.fair_share,
        quotas,
    })
}

fn dependency_state(open: Vec<(Uuid, DeploymentStatus)>) -> DependencyState {
    if let Some((failed, _)) = open.iter().find(|(_, s)| s.is_unsuccessful_end()) {
        return DependencyState::Failed {
            dependency: *failed,
        };
    }
    if open.is_empty() {
        DependencyState::Satisfied
    } else {
        DependencyState::Waiting {
            unfinished: open.into_iter().map(|(id, _)| id).collect(),
        }
    }
}
