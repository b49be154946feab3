//! The notifier: POSTs each due webhook delivery, signed as Standard Webhooks says, and
//! records the attempt. Fed by its own SQS queue (a nudge after a scheduling pass wrote
//! events, or a delayed retry) and by a schedule that sweeps every due delivery, so a lost
//! message costs latency, never a delivery.

pub mod send;

use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use shared::queue::{nudge_notifier, DeliveryRequest};
use shared::AppState;
use std::collections::BTreeSet;
use uuid::Uuid;

/// After the n-th failed attempt, the next one waits `RETRY_DELAYS[n - 1]`; after the last,
/// the delivery is recorded as failed (seven attempts in about 8.6 hours).
pub const RETRY_DELAYS_SECONDS: [i64; 6] = [10, 60, 300, 1800, 7200, 21600];
/// Deliveries one invocation makes at most, so it ends well within its timeout.
pub const MAX_PER_INVOCATION: usize = 100;

/// SQS batches carry `Records`; anything else is the scheduled sweep.
pub async fn handle_event(state: &AppState, event: Value) -> Result<Value, lambda_runtime::Error> {
    let summary = if event.get("Records").is_some() {
        let batch: SqsEvent = serde_json::from_value(event)?;
        // A malformed message means "something is due": sweeping everything covers it.
        let orgs: BTreeSet<Option<Uuid>> = batch
            .records
            .iter()
            .map(|r| {
                r.body
                    .as_deref()
                    .and_then(|b| serde_json::from_str::<DeliveryRequest>(b).ok())
                    .and_then(|r| r.organization_id)
            })
            .collect();
        let mut summary = Summary::default();
        for org in orgs {
            summary.add(deliver_due(state, org).await?);
        }
        summary
    } else {
        deliver_due(state, None).await?
    };
    Ok(serde_json::to_value(summary)?)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
}

impl Summary {
    fn add(&mut self, other: Summary) {
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.failed += other.failed;
    }
}

/// Delivers every due delivery (of `org`, or of every organization), one at a time, each in
/// its own transaction that holds the delivery (skipped by concurrent notifiers) and a share
/// lock on its webhook, so deleting the webhook waits for an attempt in flight and none
/// starts after it.
pub async fn deliver_due(state: &AppState, org: Option<Uuid>) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    for _ in 0..MAX_PER_INVOCATION {
        let mut tx = state.db.begin().await?;
        let Some(due) = sqlx::query!(
            r#"SELECT d.id, d.event_id, d.attempts, d.organization_id, w.url, w.secret
               FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
               WHERE d.state = 'pending' AND d.next_attempt_at <= now() AND w.deleted_at IS NULL
                 AND ($1::uuid IS NULL OR d.organization_id = $1)
               ORDER BY d.next_attempt_at, d.id
               LIMIT 1
               FOR UPDATE OF d SKIP LOCKED
               FOR SHARE OF w"#,
            org
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            break;
        };
        let payload = payload(&mut tx, due.event_id).await?;
        let attempt = due.attempts + 1;
        let outcome = send::deliver(
            &due.url,
            &due.secret,
            &shared::webhook::event_id(due.event_id),
            &payload,
            state.config.webhook_allow_private,
        )
        .await;
        let (next_state, next_at) = if outcome.delivered {
            summary.delivered += 1;
            ("delivered", None)
        } else if let Some(delay) = RETRY_DELAYS_SECONDS.get(due.attempts as usize) {
            summary.retrying += 1;
            ("pending", Some(Utc::now() + Duration::seconds(*delay)))
        } else {
            summary.failed += 1;
            ("failed", None)
        };
        sqlx::query!(
            "INSERT INTO webhook_attempts (delivery_id, attempt, status_code, error, response, delivered)
             VALUES ($1, $2, $3, $4, $5, $6)",
            due.id,
            attempt,
            outcome.status_code,
            outcome.error,
            outcome.response,
            outcome.delivered
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE webhook_deliveries SET state = $2, attempts = $3,
                    next_attempt_at = COALESCE($4, next_attempt_at)
             WHERE id = $1",
            due.id,
            next_state,
            attempt,
            next_at
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if let Some(at) = next_at {
            retry_later(state, due.organization_id, at).await;
        }
    }
    Ok(summary)
}

/// A delayed message brings the retry on time (up to SQS's 15-minute delay); later ones, and
/// any lost message, are found by the sweep.
async fn retry_later(state: &AppState, org: Uuid, at: DateTime<Utc>) {
    let delay = (at - Utc::now()).num_seconds();
    if delay <= 900 {
        let request = DeliveryRequest {
            organization_id: Some(org),
        };
        nudge_notifier(state.webhook_queue.as_ref(), request, delay as i32).await;
    }
}

/// The body of a delivery: the event and the deployment it is about.
async fn payload(tx: &mut sqlx::PgConnection, event: i64) -> anyhow::Result<Vec<u8>> {
    let e = sqlx::query!(
        r#"SELECT e.id, e.type, e.at, e.detail, e.related_deployment_id,
                  d.organization_id, d.id AS deployment_id, d.name, d.status, d.priority,
                  COALESCE(d.cluster_id, d.requested_cluster_id) AS cluster_id
           FROM deployment_events e JOIN deployments d ON d.id = e.deployment_id
           WHERE e.id = $1"#,
        event
    )
    .fetch_one(tx)
    .await?;
    let body = json!({
        "id": shared::webhook::event_id(e.id),
        "type": e.r#type,
        "at": e.at,
        "organization_id": e.organization_id,
        "deployment": {
            "id": e.deployment_id,
            "name": e.name,
            "status": e.status,
            "cluster_id": e.cluster_id,
            "priority": e.priority,
        },
        "detail": e.detail,
        "related_deployment_id": e.related_deployment_id,
    });
    Ok(serde_json::to_vec(&body)?)
}
