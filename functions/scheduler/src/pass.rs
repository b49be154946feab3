//! One scheduling pass over one organization, in one transaction: lock its clusters (in id
//! order), stop overdue deployments, load state, run the pure algorithm, apply the plan.
//! The books trigger changes the cluster books in every statement that changes a status, and
//! the CHECK constraints on clusters refuse any over-allocation even if the plan were wrong:
//! then the whole pass rolls back, and nothing of the plan stands.

use serde::Serialize;
use shared::scheduling::{self, Plan};
use shared::{snapshot, AppState};
use sqlx::{PgConnection, Postgres, Transaction};
use std::collections::HashMap;
use std::time::Instant;
use uuid::Uuid;

#[derive(Debug, Default, Clone, Serialize)]
pub struct PassSummary {
    pub started: usize,
    pub preempted: usize,
    pub dependency_failed: usize,
    pub expired: usize,
    pub still_pending: usize,
    pub duration_ms: f64,
}

/// Runs a pass, retrying when PostgreSQL aborts it for a deadlock or serialization conflict.
pub async fn run_pass(state: &AppState, org: Uuid) -> anyhow::Result<PassSummary> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_pass(state, org).await {
            Err(err) if attempt < 4 && is_transient(&err) => {
                tracing::warn!(organization_id = %org, attempt, error = %err, "retrying scheduling pass");
            }
            other => {
                let summary = other?;
                // The pass's events may have webhook deliveries due; so may the API's.
                // Boxed: its future would otherwise nest inside every caller's.
                if let Err(err) = Box::pin(shared::webhook::nudge_if_due(state, org)).await {
                    tracing::warn!(organization_id = %org, error = %err, "could not check for due webhook deliveries");
                }
                return Ok(summary);
            }
        }
    }
}

/// Why a pass applied nothing.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A planned start found its deployment no longer pending. Its preemptions must not stand
    /// without it, so the pass rolls back; the next attempt plans from a fresh snapshot.
    #[error("{planned} starts were planned but only {started} deployments were still pending")]
    StaleStarts { planned: usize, started: u64 },
}

fn is_transient(err: &PassError) -> bool {
    match err {
        PassError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        PassError::Database(_) => false,
        PassError::StaleStarts { .. } => true,
    }
}

async fn try_pass(state: &AppState, org: Uuid) -> Result<PassSummary, PassError> {
    let timer = Instant::now();
    let mut tx = state.db.begin().await?;
    let clusters = snapshot::load_clusters(&mut tx, org, true).await?;
    let expired = expire_overdue(&mut tx, org).await?;
    let now = sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
        .fetch_one(&mut *tx)
        .await?;
    let snapshot = snapshot::load_input(
        &mut tx,
        org,
        clusters,
        now,
        state.config.preemption_min_runtime_seconds,
    )
    .await?;
    let plan = scheduling::plan(&snapshot.input);
    apply(&mut tx, &plan, &snapshot.stored_reasons).await?;
    tx.commit().await?;
    let summary = PassSummary {
        started: plan.starts.len(),
        preempted: plan.preemptions.len(),
        dependency_failed: plan.dependency_failures.len(),
        expired: expired as usize,
        still_pending: plan.waiting.len(),
        duration_ms: timer.elapsed().as_secs_f64() * 1000.0,
    };
    emit_metrics(state.config.in_lambda, org, &summary);
    Ok(summary)
}

/// Applies `plan`; `stored_reasons` (deployment id → reason JSON as stored) lets it skip
/// reasons that have not changed. An error leaves the transaction to be rolled back.
pub async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    plan: &Plan,
    stored_reasons: &HashMap<Uuid, String>,
) -> Result<(), PassError> {
    fail_for_dependencies(tx, plan).await?;
    preempt(tx, plan).await?;
    let started = start(tx, plan).await?;
    // Every start the plan made room for must happen, or none of the plan may stand.
    if started != plan.starts.len() as u64 {
        return Err(PassError::StaleStarts {
            planned: plan.starts.len(),
            started,
        });
    }
    Ok(record_reasons(tx, plan, stored_reasons).await?)
}

/// Running deployments past `max_runtime_seconds` become `failed` (the books trigger frees
/// their capacity).
async fn expire_overdue(conn: &mut PgConnection, org: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"WITH expired AS (
               UPDATE deployments SET status = 'failed', finished_at = now(),
                      reason = jsonb_build_object('code', 'max_runtime_exceeded',
                               'message', 'ran longer than its max_runtime_seconds (' || max_runtime_seconds || ')')
               WHERE organization_id = $1 AND status = 'running' AND max_runtime_seconds IS NOT NULL
                 AND started_at + make_interval(secs => max_runtime_seconds) <= now()
               RETURNING id, max_runtime_seconds),
           events AS (
               INSERT INTO deployment_events (deployment_id, type, detail)
               SELECT id, 'failed', 'stopped: exceeded max_runtime_seconds (' || max_runtime_seconds || ')' FROM expired
               RETURNING 1)
           SELECT count(*) AS "count!" FROM expired"#,
        org
    )
    .fetch_one(conn)
    .await
}

async fn fail_for_dependencies(conn: &mut PgConnection, plan: &Plan) -> Result<(), sqlx::Error> {
    if plan.dependency_failures.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = plan
        .dependency_failures
        .iter()
        .map(|f| f.deployment_id)
        .collect();
    let deps: Vec<Uuid> = plan
        .dependency_failures
        .iter()
        .map(|f| f.dependency_id)
        .collect();
    sqlx::query!(
        r#"WITH f AS (SELECT * FROM UNNEST($1::uuid[], $2::uuid[]) AS f(id, dep)),
           failed AS (
               UPDATE deployments d SET status = 'failed', finished_at = now(),
                      reason = jsonb_build_object('code', 'dependency_failed',
                               'message', 'dependency ' || f.dep || ' failed or was cancelled',
                               'dependency_id', f.dep)
               FROM f WHERE d.id = f.id AND d.status = 'pending'
               RETURNING d.id, f.dep)
           INSERT INTO deployment_events (deployment_id, type, detail, related_deployment_id)
           SELECT id, 'dependency_failed', 'dependency ' || dep || ' did not succeed', dep FROM failed"#,
        &ids,
        &deps
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn preempt(conn: &mut PgConnection, plan: &Plan) -> Result<(), sqlx::Error> {
    if plan.preemptions.is_empty() {
        return Ok(());
    }
    let victims: Vec<Uuid> = plan.preemptions.iter().map(|p| p.victim_id).collect();
    let preemptors: Vec<Uuid> = plan.preemptions.iter().map(|p| p.preemptor_id).collect();
    sqlx::query!(
        r#"WITH v AS (SELECT * FROM UNNEST($1::uuid[], $2::uuid[]) AS v(id, preemptor)),
           victims AS (
               UPDATE deployments d SET status = 'pending', started_at = NULL, queued_at = now(),
                      preemption_count = d.preemption_count + 1,
                      reason = jsonb_build_object('code', 'preempted', 'message', 'preempted by ' || v.preemptor,
                                                  'preempted_by', v.preemptor)
               FROM v WHERE d.id = v.id AND d.status = 'running'
               RETURNING d.id, d.cluster_id, v.preemptor)
           INSERT INTO deployment_events (deployment_id, type, detail, related_deployment_id)
           SELECT id, kind, detail, preemptor FROM victims,
                  LATERAL (VALUES (1, 'preempted', 'preempted by ' || preemptor || ' on cluster ' || cluster_id),
                                  (2, 'requeued', 'back in the queue after preemption')) AS e(n, kind, detail)
           ORDER BY id, n"#,
        &victims,
        &preemptors
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Starts the planned deployments that are still pending; returns how many started.
async fn start(conn: &mut PgConnection, plan: &Plan) -> Result<u64, sqlx::Error> {
    if plan.starts.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = plan.starts.iter().map(|s| s.deployment_id).collect();
    let clusters: Vec<Uuid> = plan.starts.iter().map(|s| s.cluster_id).collect();
    let result = sqlx::query!(
        r#"WITH s AS (SELECT * FROM UNNEST($1::uuid[], $2::uuid[]) AS s(id, cluster_id)),
           started AS (
               UPDATE deployments d SET status = 'running', cluster_id = s.cluster_id, started_at = now(), reason = NULL
               FROM s WHERE d.id = s.id AND d.status = 'pending'
               RETURNING d.id, d.cluster_id)
           INSERT INTO deployment_events (deployment_id, type, detail)
           SELECT id, 'started', 'started on cluster ' || cluster_id FROM started"#,
        &ids,
        &clusters
    )
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// Stores why each waiting deployment waits; the SQL compares again, so a reason that differs
/// from the stored one only in form (say `2` against `2.0`) costs a row sent, not a write.
async fn record_reasons(
    conn: &mut PgConnection,
    plan: &Plan,
    stored_reasons: &HashMap<Uuid, String>,
) -> Result<(), sqlx::Error> {
    let (ids, reasons): (Vec<Uuid>, Vec<serde_json::Value>) =
        changed_reasons(plan, stored_reasons).into_iter().unzip();
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "UPDATE deployments d SET reason = w.reason
         FROM UNNEST($1::uuid[], $2::jsonb[]) AS w(id, reason)
         WHERE d.id = w.id AND d.status = 'pending' AND d.reason IS DISTINCT FROM w.reason",
        &ids,
        &reasons
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The waiting deployments whose reason differs from the stored one, with the new reason.
/// Most reasons are unchanged from one pass to the next, and sending them all cost PostgreSQL
/// ~9 µs a row even when it wrote nothing (BENCHMARKS.md, section 2).
pub fn changed_reasons(
    plan: &Plan,
    stored_reasons: &HashMap<Uuid, String>,
) -> Vec<(Uuid, serde_json::Value)> {
    plan.waiting
        .iter()
        .filter_map(|w| {
            let reason = serde_json::to_value(&w.reason).expect("reasons serialize");
            let stored = stored_reasons
                .get(&w.deployment_id)
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
            (stored.as_ref() != Some(&reason)).then_some((w.deployment_id, reason))
        })
        .collect()
}

/// One line per pass in CloudWatch Embedded Metric Format: CloudWatch turns it into metrics.
fn emit_metrics(in_lambda: bool, org: Uuid, s: &PassSummary) {
    let line = serde_json::json!({
        "_aws": {
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "Hypervisor/Scheduler",
                "Dimensions": [[]],
                "Metrics": [
                    {"Name": "Placed", "Unit": "Count"},
                    {"Name": "Preempted", "Unit": "Count"},
                    {"Name": "StillPending", "Unit": "Count"},
                    {"Name": "PassDuration", "Unit": "Milliseconds"}
                ]
            }]
        },
        "organization_id": org,
        "Placed": s.started,
        "Preempted": s.preempted,
        "StillPending": s.still_pending,
        "PassDuration": s.duration_ms,
        "Expired": s.expired,
        "DependencyFailed": s.dependency_failed,
    });
    if in_lambda {
        println!("{line}");
    } else {
        tracing::debug!(metrics = %line, "scheduling pass");
    }
}
