//! The scheduler's two triggers, locally: long-polling the LocalStack queue (as the SQS event
//! source does in AWS) and a sweep every few seconds (as the EventBridge rule does).

use shared::queue::Queue;
use shared::AppState;
use std::time::Duration;

/// Feeds queue messages to the scheduler in batches of up to 10, as its SQS event source does.
pub async fn consume_queue(state: AppState, queue: Queue) {
    crate::sqs_consumer::consume(queue, "scheduler", move |event| {
        let state = state.clone();
        async move {
            let response = scheduler::handle_sqs(&state, event).await;
            let failed = response.batch_item_failures.into_iter();
            failed.map(|f| f.item_identifier).collect()
        }
    })
    .await
}

/// Runs the sweep every `interval`: it enqueues the organizations with work for the consumers
/// (and runs the passes itself only for what it could not send).
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
