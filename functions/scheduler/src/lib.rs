//! The scheduler: an SQS batch (fast path: "look at this organization") runs scheduling passes;
//! the scheduled sweep only finds the organizations with work and sends each one such a message
//! (DESIGN §12), so passes of different organizations run in parallel, in separate invocations.

pub mod fingerprint;
pub mod pass;
pub mod retention;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::Value;
use shared::queue::ScheduleRequest;
use shared::AppState;
use std::collections::BTreeMap;
use uuid::Uuid;

pub use pass::{run_pass, run_pass_unless_busy, PassSummary};

/// The Lambda entry point: SQS batches carry `Records`; anything else is the scheduled sweep.
pub async fn handle_event(state: &AppState, event: Value) -> Result<Value, lambda_runtime::Error> {
    if event.get("Records").is_some() {
        let batch: SqsEvent = serde_json::from_value(event)?;
        let response: SqsBatchResponse = handle_sqs(state, batch).await;
        Ok(serde_json::to_value(response)?)
    } else {
        let summary: SweepSummary = sweep(state).await.map_err(lambda_runtime::Error::from)?;
        Ok(serde_json::to_value(summary)?)
    }
}

/// One pass per organization named in the batch; a failed pass reports only its own messages,
/// which SQS redelivers (and, after repeated failures, moves to the dead-letter queue). When
/// another invocation is in a pass over the same organization, this one does not wait for it:
/// one message asks again a second later, for all of the batch's messages about it.
pub async fn handle_sqs(state: &AppState, batch: SqsEvent) -> SqsBatchResponse {
    let mut by_org: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for record in batch.records {
        let id = record.message_id.clone().unwrap_or_default();
        match record
            .body
            .as_deref()
            .map(serde_json::from_str::<ScheduleRequest>)
        {
            Some(Ok(request)) => by_org.entry(request.organization_id).or_default().push(id),
            // Retrying cannot fix a malformed message; the sweep covers whatever it meant.
            _ => tracing::error!(message_id = %id, "dropping a malformed scheduling message"),
        }
    }
    let mut response = SqsBatchResponse::default();
    for (org, message_ids) in by_org {
        let outcome = match run_pass_unless_busy(state, org).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => ask_again_shortly(state, org).await,
            Err(err) => Err(err),
        };
        if let Err(err) = outcome {
            tracing::error!(organization_id = %org, error = ?err, "scheduling pass failed; messages will be retried");
            response
                .batch_item_failures
                .extend(message_ids.into_iter().map(|id| {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    failure
                }));
        }
    }
    response
}

/// The running pass may have read the queue before the change our message announces, so the
/// organization is looked at again once it is done: a second from now, when a pass that finds
/// nothing new costs a few lookups. Without a queue (tests), waits for the lock instead.
async fn ask_again_shortly(state: &AppState, org: Uuid) -> anyhow::Result<()> {
    let Some(queue) = &state.queue else {
        return run_pass(state, org).await.map(drop);
    };
    let request = ScheduleRequest {
        organization_id: org,
        deployment_id: None,
        trigger: "busy".into(),
    };
    shared::queue::send_bounded(queue, &request, 1).await
}

#[derive(Debug, Default, serde::Serialize)]
pub struct SweepSummary {
    /// Organizations with pending work or overdue running work.
    pub organizations: usize,
    /// How many of them were sent to the queue, for the SQS-triggered invocations.
    pub enqueued: usize,
    /// Passes the sweep ran itself, for what it could not send (the queue down, or none set).
    pub inline_passes: usize,
    pub failed_organizations: usize,
    pub started: usize,
    pub preempted: usize,
    pub expired: usize,
    /// Finished deployments deleted by retention.
    pub deleted: u64,
}

/// How many batch sends are in flight at once: a sweep over 100,000 organizations is 10,000
/// batches, a few milliseconds each.
const SENDS_IN_FLIGHT: usize = 8;

/// Sends one "schedule organization X" message per organization with work, ten per batch; runs
/// the passes itself for what it could not send. Also deletes idle rate-limit buckets and, per
/// `RETENTION_DAYS`, old finished deployments.
pub async fn sweep(state: &AppState) -> anyhow::Result<SweepSummary> {
    let orgs = organizations_with_work(state).await?;
    let mut summary = SweepSummary {
        organizations: orgs.len(),
        ..Default::default()
    };
    let unsent = match &state.queue {
        Some(queue) => enqueue(queue, orgs).await,
        None => orgs,
    };
    summary.enqueued = summary.organizations - unsent.len();
    for org in unsent {
        summary.inline_passes += 1;
        match run_pass(state, org).await {
            Ok(pass) => {
                summary.started += pass.started;
                summary.preempted += pass.preempted;
                summary.expired += pass.expired;
            }
            Err(err) => {
                summary.failed_organizations += 1;
                tracing::error!(organization_id = %org, error = ?err, "sweep pass failed");
            }
        }
    }
    // Buckets idle for an hour are full again; dropping them loses nothing.
    sqlx::query!("DELETE FROM rate_limit_buckets WHERE updated_at < now() - interval '1 hour'")
        .execute(&state.db)
        .await?;
    if state.config.retention_days > 0 {
        summary.deleted = retention::delete_finished(
            &state.db,
            state.config.retention_days,
            retention::DELETE_PER_SWEEP,
        )
        .await?;
    }
    Ok(summary)
}

/// Organizations with pending work, or with running work past its `max_runtime_seconds`. Both
/// halves read partial indexes of live work only.
async fn organizations_with_work(state: &AppState) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT organization_id AS "organization_id!" FROM deployments WHERE status = 'pending'
           UNION
           SELECT organization_id FROM deployments
           WHERE status = 'running' AND max_runtime_seconds IS NOT NULL
             AND started_at + make_interval(secs => max_runtime_seconds) <= now()"#
    )
    .fetch_all(&state.db)
    .await
}

/// Sends a message per organization; returns the organizations it could not send. After the
/// first failed batch it sends no more: a queue that is down would only make the sweep wait.
async fn enqueue(queue: &shared::queue::Queue, orgs: Vec<Uuid>) -> Vec<Uuid> {
    let mut chunks = orgs
        .chunks(10)
        .map(<[Uuid]>::to_vec)
        .collect::<Vec<_>>()
        .into_iter();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut unsent = Vec::new();
    let mut queue_down = false;
    loop {
        while !queue_down && in_flight.len() < SENDS_IN_FLIGHT {
            let Some(chunk) = chunks.next() else { break };
            let queue = queue.clone();
            in_flight.spawn(async move {
                let sent = send_chunk(&queue, &chunk).await;
                (chunk, sent)
            });
        }
        let Some(joined) = in_flight.join_next().await else {
            break;
        };
        match joined {
            Ok((_, Ok(refused))) => unsent.extend(refused),
            Ok((chunk, Err(error))) => {
                tracing::warn!(%error, "the sweep could not enqueue; it runs the passes itself");
                queue_down = true;
                unsent.extend(chunk);
            }
            // A send task cannot panic short of a bug; its organizations wait for the next sweep.
            Err(panicked) => tracing::error!(error = %panicked, "a send task failed"),
        }
    }
    unsent.extend(chunks.flatten());
    unsent
}

/// Sends one batch; returns the organizations SQS refused.
async fn send_chunk(queue: &shared::queue::Queue, chunk: &[Uuid]) -> anyhow::Result<Vec<Uuid>> {
    let requests: Vec<ScheduleRequest> = chunk
        .iter()
        .map(|&org| ScheduleRequest {
            organization_id: org,
            deployment_id: None,
            trigger: "sweep".into(),
        })
        .collect();
    let refused = tokio::time::timeout(SEND_TIMEOUT, queue.send_batch(&requests))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {SEND_TIMEOUT:?}"))??;
    Ok(refused.into_iter().map(|r| r.organization_id).collect())
}

/// How long one batch send may take before the sweep gives up on the queue.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
