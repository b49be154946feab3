//! What a pass's plan depends on, condensed to one number. When it equals what the last pass
//! planned from, and no clock-driven input moved since, planning again would decide nothing new:
//! the sweep's minute-by-minute messages then cost a few index lookups, not a pass.
//!
//! Every change to an organization's deployments (submitted, cancelled, completed, started,
//! preempted, failed) writes an event, and events are sealed into the organization's feed with
//! a sequence number at commit: the newest sequence number stands for all of them. Cluster
//! sizes, the fairness settings and quotas write no event, so they are hashed as loaded.

use shared::scheduling::{Cluster, Fairness};
use sqlx::PgConnection;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use uuid::Uuid;

/// The inputs of a pass over `org`, as of now. Reads the feed's newest sequence number, so it
/// must be taken before the pending and running work is loaded: a change committed in between
/// then makes the next pass plan again, never the other way round.
pub async fn of(
    conn: &mut PgConnection,
    org: Uuid,
    clusters: &[Cluster],
    fairness: &Fairness,
    min_runtime_seconds: i64,
) -> sqlx::Result<i64> {
    let newest_event_batch = sqlx::query_scalar!(
        "SELECT max(seq) FROM event_batches WHERE organization_id = $1",
        org
    )
    .fetch_one(conn)
    .await?;
    // DefaultHasher::new() is deterministic within a build; a new build changing it costs one
    // extra pass per organization, nothing more.
    let mut hasher = DefaultHasher::new();
    newest_event_batch.hash(&mut hasher);
    for cluster in clusters {
        (cluster.id, cluster.capacity, cluster.allocated).hash(&mut hasher);
    }
    (
        fairness.aging_points_per_hour,
        fairness.aging_max_boost,
        fairness.fair_share,
    )
        .hash(&mut hasher);
    let mut quotas: Vec<_> = fairness.quotas.iter().collect();
    quotas.sort();
    quotas.hash(&mut hasher);
    min_runtime_seconds.hash(&mut hasher);
    Ok(hasher.finish() as i64)
}

/// What the last pass over `org` planned from, and when; None when it changed something (or
/// there was none).
pub async fn last(
    conn: &mut PgConnection,
    org: Uuid,
) -> sqlx::Result<Option<(Option<i64>, chrono::DateTime<chrono::Utc>)>> {
    let row = sqlx::query!(
        "SELECT fingerprint, planned_at FROM scheduler_passes WHERE organization_id = $1",
        org
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.fingerprint, r.planned_at)))
}

/// Records a pass that planned: `fingerprint` is None when the pass changed something (its own
/// events are sealed only at commit, so the next pass must look again).
pub async fn record(
    conn: &mut PgConnection,
    org: Uuid,
    fingerprint: Option<i64>,
    planned_at: chrono::DateTime<chrono::Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO scheduler_passes (organization_id, fingerprint, planned_at) VALUES ($1, $2, $3)
         ON CONFLICT (organization_id) DO UPDATE SET fingerprint = $2, planned_at = $3",
        org,
        fingerprint,
        planned_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether time alone may have changed the plan since `planned_at`: aging raises waiting work's
/// rank as it waits, and a running deployment's minimum-runtime protection runs out.
pub async fn clock_moved_the_plan(
    conn: &mut PgConnection,
    org: Uuid,
    fairness: &Fairness,
    min_runtime_seconds: i64,
    planned_at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> sqlx::Result<bool> {
    if fairness.aging_points_per_hour > 0 && fairness.aging_max_boost > 0 {
        return Ok(true);
    }
    if min_runtime_seconds <= 0 {
        return Ok(false);
    }
    // Protection that ran out between the last plan and now.
    let protection = chrono::Duration::seconds(min_runtime_seconds);
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM deployments
                          WHERE organization_id = $1 AND status = 'running'
                            AND started_at > $2 AND started_at <= $3) AS "expired!""#,
        org,
        planned_at - protection,
        now - protection
    )
    .fetch_one(conn)
    .await
}
