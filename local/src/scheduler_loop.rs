//! The scheduler's two triggers, locally: long-polling the LocalStack queue (as the SQS event
//! source does in AWS) and a sweep every few seconds (as the EventBridge rule does).

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use shared::queue::Queue;
use shared::AppState;
use std::time::Duration;

/// Feeds queue messages to the scheduler in batches of up to 10, deleting those it handled.
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
                tracing::warn!(error = %err, "receiving from the queue failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        event.records = messages
            .iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = m.message_id.clone();
                record.receipt_handle = m.receipt_handle.clone();
                record.body = m.body.clone();
                record
            })
            .collect();
        let response = scheduler::handle_sqs(&state, event).await;
        let failed: Vec<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        for message in messages {
            if message
                .message_id
                .as_ref()
                .is_some_and(|id| failed.contains(id))
            {
                continue; // becomes visible again after the visibility timeout, as in AWS
            }
            if let Some(handle) = message.receipt_handle {
                if let Err(err) = queue
                    .client()
                    .await
                    .delete_message()
                    .queue_url(queue.url())
                    .receipt_handle(handle)
                    .send()
                    .await
                {
                    tracing::warn!(error = %err, "deleting a handled message failed; it will be handled again");
                }
            }
        }
    }
}

/// Runs a full sweep every `interval`.
pub async fn sweep_every(state: AppState, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(err) = scheduler::sweep(&state).await {
            tracing::error!(error = ?err, "sweep failed");
        }
    }
}
