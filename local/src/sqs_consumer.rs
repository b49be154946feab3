//! Long-polls a LocalStack queue and hands each batch to a function as the SQS event source
//! does in AWS: as the Lambda's `SqsEvent`, deleting afterwards every message the function did
//! not report as failed (those come back after the visibility timeout).

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use shared::queue::Queue;
use std::future::Future;
use std::time::Duration;

/// Runs until the task is dropped. `handle` returns the ids of the messages it failed.
pub async fn consume<F, Fut>(queue: Queue, what: &str, mut handle: F)
where
    F: FnMut(SqsEvent) -> Fut,
    Fut: Future<Output = Vec<String>>,
{
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
                tracing::warn!(error = %err, queue = what, "receiving from the queue failed; retrying");
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
        let failed = handle(event).await;
        for message in messages {
            if message
                .message_id
                .as_ref()
                .is_some_and(|id| failed.contains(id))
            {
                continue;
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
                    tracing::warn!(error = %err, queue = what, "deleting a handled message failed; it will be handled again");
                }
            }
        }
    }
}
