//! One scheduling pass over one organization, in one transaction: take the organization's
//! pass lock, lock its clusters (in id order), stop overdue deployments, and, unless nothing the
//! plan depends on changed since the last pass, load state, run the pure algorithm, apply the plan.
//! The books trigger changes the cluster books in every statement that changes a status, and
//! the CHECK constraints on clusters refuse any over-allocation even if the plan were wrong:
//! then the whole pass rolls back, and nothing of the plan stands.

use crate::fingerprint;
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
    /// Nothing the plan depends on had changed since the last pass: it did not plan again.
    pub skipped: bool,
    pub duration_ms: f64,
}

impl PassSummary {
    /// Whether the pass changed any deployment's status.
    fn changed_anything(&self) -> bool {
        self.started + self.preempted + self.dependency_failed + self.expired > 0
    }
}

/// Runs a pass, waiting for one already running over the same organization to finish first.
pub async fn run_pass(state: &AppState, org: Uuid) -> anyhow::Result<PassSummary> {
    Ok(run_with_retries(state, org, Wait::Yes)
        .await?
        .expect("a pass that waits for the lock always runs"))
}

/// Runs a pass unless another one over the same organization is running now (None). That one
/// may have read the queue before the change this pass was asked to look at: the caller must
/// ask again later, not drop the request.
pub async fn run_pass_unless_busy(
    state: &AppState,
    org: Uuid,
) -> anyhow::Result<Option<PassSummary>> {
    run_with_retries(state, org, Wait::No).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Yes,
    No,
}

/// Retries a pass that PostgreSQL aborted for a deadlock or serialization conflict.
async fn run_with_retries(
    state: &AppState,
    org: Uuid,
    wait: Wait,
) -> anyhow::Result<Option<PassSummary>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_pass(state, org, wait).await {
            Err(err) if attempt < 4 && is_transient(&err) => {
                tracing::warn!(organization_id = %org, attempt, error = %err, "retrying scheduling pass");
            }
            other => {
                let summary = other?;
                if summary.as_ref().is_some_and(|s| !s.skipped) {
                    // The pass's events may have webhook deliveries due; so may the API's (a
                    // skipped pass saw no new event). Boxed: its future would otherwise nest
                    // inside every caller's.
                    if let Err(err) = Box::pin(shared::webhook::nudge_if_due(state, org)).await {
                        tracing::warn!(organization_id = %org, error = %err, "could not check for due webhook deliveries");
                    }
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

/// One pass per organization at a time: a transaction-scoped advisory lock on the organization.
/// The cluster row locks taken next still order the pass against the API's own changes.
async fn lock_organization(
    conn: &mut PgConnection,
    org: Uuid,
    wait: Wait,
) -> Result<bool, sqlx::Error> {
    let key = format!("scheduler:{org}");
    match wait {
        Wait::Yes => {
            sqlx::query!(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))::text AS locked",
                key
            )
            .fetch_one(conn)
            .await?;
            Ok(true)
        }
        Wait::No => {
            sqlx::query_scalar!(
                r#"SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS "locked!""#,
                key
            )
            .fetch_one(conn)
            .await
        }
    }
}

async fn try_pass(
    state: &AppState,
    org: Uuid,
    wait: Wait,
) -> Result<Option<PassSummary>, PassError> {
    let timer = Instant::now();
    let min_runtime = state.config.preemption_min_runtime_seconds;
    let mut tx = state.db.begin().await?;
    if !lock_organization(&mut tx, org, wait).await? {
        return Ok(None);
    }
    let clusters = snapshot::load_clusters(&mut tx, org, true).await?;
    let expired = expire_overdue(&mut tx, org).await? as usize;
    let now = sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
        .fetch_one(&mut *tx)
        .await?;
    let fairness = snapshot::load_fairness(&mut tx, org).await?;
    let seen = fingerprint::of(&mut tx, org, &clusters, &fairness, min_runtime).await?;
    if expired == 0 {
        if let Some((Some(planned_from), planned_at)) = fingerprint::last(&mut tx, org).await? {
            let clock_moved = fingerprint::clock_moved_the_plan(
                &mut tx,
                org,
                &fairness,
                min_runtime,
                planned_at,
                now,
            )
            .await?;
            if planned_from == seen && !clock_moved {
                tx.commit().await?;
                return Ok(Some(PassSummary {
                    skipped: true,
                    duration_ms: timer.elapsed().as_secs_f64() * 1000.0,
                    ..PassSummary::default()
                }));
            }
        }
    }
    let snapshot =
        snapshot::load_input_with(&mut tx, org, clusters, fairness, now, min_runtime).await?;
    let plan = scheduling::plan(&snapshot.input);
    apply(&mut tx, &plan, &snapshot.stored_reasons).await?;
    let mut summary = PassSummary {
        started: plan.starts.len(),
        preempted: plan.preemptions.len(),
        dependency_failed: plan.dependency_failures.len(),
        expired,
        still_pending: plan.waiting.len(),
        skipped: false,
        duration_ms: 0.0,
    };
    let unchanged = (!summary.changed_anything()).then_some(seen);
    fingerprint::record(&mut tx, org, unchanged, now).await?;
    tx.commit().await?;
    summary.duration_ms = timer.elapsed().as_secs_f64() * 1000.0;
    emit_metrics(state.config.in_lambda, org, &summary);
    Ok(Some(summary))
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
