//! The notifier's two triggers, locally: long-polling the LocalStack webhook queue (as the SQS
//! event source does in AWS) and a sweep every few seconds (as its EventBridge rule does).

use shared::queue::Queue;
use shared::AppState;
use std::time::Duration;

/// Hands queue messages to the notifier as its SQS event source does: a batch that fails comes
/// back whole, as in AWS.
pub async fn consume_queue(state: AppState, queue: Queue) {
    crate::sqs_consumer::consume(queue, "webhooks", move |event| {
        let state = state.clone();
        async move {
            let ids: Vec<String> = event.records.iter().filter_map(|r| r.message_id.clone()).collect();
            let outcome = match serde_json::to_value(event) {
                Ok(event) => notifier::handle_event(&state, event).await.map(|_| ()),
                Err(err) => Err(err.into()),
            };
            match outcome {
                Ok(()) => Vec::new(),
                Err(err) => {
                    tracing::error!(error = ?err, "delivering webhooks failed; the messages will come back");
                    ids
                }
            }
        }
    })
    .await
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
