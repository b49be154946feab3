//! Retention: finished deployments older than `RETENTION_DAYS` are deleted by the sweep, with
//! their events, dependency links and webhook deliveries, a bounded number per sweep so one
//! sweep's transaction stays short. Nothing live is touched, and a finished deployment that
//! unfinished work still depends on is kept.

use sqlx::PgPool;
use uuid::Uuid;

/// How many deployments one sweep deletes at most; a backlog clears over several sweeps.
pub const DELETE_PER_SWEEP: i64 = 5_000;

/// Deletes up to `limit` deployments finished more than `days` days ago; returns how many.
pub async fn delete_finished(db: &PgPool, days: i64, limit: i64) -> sqlx::Result<u64> {
    let mut tx = db.begin().await?;
    let doomed: Vec<Uuid> = sqlx::query_scalar!(
        "SELECT d.id FROM deployments d
         WHERE d.finished_at < now() - make_interval(days => $1::int)
           AND NOT EXISTS (SELECT 1 FROM deployment_dependencies dd
                           JOIN deployments w ON w.id = dd.deployment_id
                           WHERE dd.depends_on_id = d.id AND w.finished_at IS NULL)
         ORDER BY d.finished_at
         LIMIT $2
         FOR UPDATE SKIP LOCKED",
        days as i32,
        limit
    )
    .fetch_all(&mut *tx)
    .await?;
    if doomed.is_empty() {
        return Ok(0);
    }
    // The events go first, explicitly, to learn which feed batches they belonged to.
    let xids: Vec<String> = sqlx::query_scalar!(
        r#"WITH gone AS (DELETE FROM deployment_events WHERE deployment_id = ANY ($1) RETURNING xid)
           SELECT DISTINCT xid::text AS "xid!" FROM gone"#,
        &doomed
    )
    .fetch_all(&mut *tx)
    .await?;
    let deleted = sqlx::query!("DELETE FROM deployments WHERE id = ANY ($1)", &doomed)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    // A feed batch left without events would only be walked past by every new follower.
    sqlx::query!(
        "DELETE FROM event_batches b
         WHERE b.xid = ANY ($1::text[]::xid8[])
           AND NOT EXISTS (SELECT 1 FROM deployment_events e WHERE e.xid = b.xid)",
        &xids
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(deleted)
}
