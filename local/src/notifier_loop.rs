//! The notifier's two triggers, locally: long-polling the LocalStack webhook queue (as the SQS
//! event source does in AWS) and a sweep every few seconds (as its EventBridge rule does).

use shared::queue::{DeliveryRequest, Queue};
use shared::AppState;
use std::time::Duration;

/// Delivers what each message says is due, then deletes it; a failed run leaves the message
/// to come back, as in AWS.
pub async fn consume_queue(state: AppState, queue: Queue) {
    loop {
        let received = queue
            .client()
            .await
            .receive_message()
            .queue_url(queue.url())
            .max_number_of_messages(10)
            .wait_time_seconds(5)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(err) => {
                tracing::warn!(error = %err, "receiving from the webhook queue failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for message in messages {
            let org = message
                .body
                .as_deref()
                .and_then(|b| serde_json::from_str::<DeliveryRequest>(b).ok())
                .and_then(|r| r.organization_id);
            if let Err(err) = notifier::deliver_due(&state, org).await {
                tracing::error!(error = ?err, "delivering webhooks failed; the message will come back");
                continue;
            }
            if let Some(handle) = message.receipt_handle {
                let _ = queue
                    .client()
                    .await
                    .delete_message()
                    .queue_url(queue.url())
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
        }
    }
}

/// Delivers everything due every `interval`.
pub async fn sweep_every(state: AppState, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(err) = notifier::deliver_due(&state, None).await {
            tracing::error!(error = ?err, "webhook sweep failed");
        }
    }
}
