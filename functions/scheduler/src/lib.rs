//! The scheduler: an SQS batch (fast path: "look at this organization") or the scheduled
//! sweep (every organization with work, and max-runtime enforcement) runs scheduling passes.

pub mod pass;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::Value;
use shared::queue::ScheduleRequest;
use shared::AppState;
use std::collections::BTreeMap;
use uuid::Uuid;

pub use pass::{run_pass, PassSummary};

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
/// which SQS redelivers (and, after repeated failures, moves to the dead-letter queue).
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
        if let Err(err) = run_pass(state, org).await {
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

#[derive(Debug, Default, serde::Serialize)]
pub struct SweepSummary {
    pub organizations: usize,
    pub failed_organizations: usize,
    pub started: usize,
    pub preempted: usize,
    pub expired: usize,
}

/// A full pass over every organization with pending or time-limited running work.
pub async fn sweep(state: &AppState) -> anyhow::Result<SweepSummary> {
    let orgs = sqlx::query_scalar!(
        "SELECT DISTINCT organization_id FROM deployments
         WHERE status = 'pending' OR (status = 'running' AND max_runtime_seconds IS NOT NULL)
         ORDER BY organization_id"
    )
    .fetch_all(&state.db)
    .await?;
    let mut summary = SweepSummary {
        organizations: orgs.len(),
        ..Default::default()
    };
    for org in orgs {
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
    Ok(summary)
}
