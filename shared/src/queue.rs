//! The deployment queue: a nudge to the scheduler that an organization has work to look at.
//! A lost nudge costs latency, never work: the periodic sweep finds every pending deployment.

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::OnceCell;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRequest {
    pub organization_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<Uuid>,
    /// Why: "submitted", "completed", "cancelled", "resized", ... (for the logs).
    pub trigger: String,
}

#[derive(Debug, Clone)]
pub struct Queue {
    /// Built on first use: most invocations (every read) never send, so init does not pay for
    /// loading the AWS config and TLS roots.
    client: Arc<OnceCell<aws_sdk_sqs::Client>>,
    url: String,
}

impl Queue {
    pub fn new(client: aws_sdk_sqs::Client, url: String) -> Self {
        Queue {
            client: Arc::new(OnceCell::new_with(Some(client))),
            url,
        }
    }

    /// A queue whose client is built from the environment on first use (`AWS_ENDPOINT_URL`
    /// points it at LocalStack).
    pub fn from_env(url: String) -> Self {
        Queue {
            client: Arc::new(OnceCell::new()),
            url,
        }
    }

    pub async fn client(&self) -> &aws_sdk_sqs::Client {
        self.client
            .get_or_init(|| async {
                let sdk = crate::aws::config_loader().load().await;
                aws_sdk_sqs::Client::new(&sdk)
            })
            .await
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn send(&self, request: &ScheduleRequest) -> anyhow::Result<()> {
        let body = serde_json::to_string(request)?;
        self.client()
            .await
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await?;
        Ok(())
    }
}

/// Sends a nudge if a queue is configured. Failure is logged, not returned: the sweep is the
/// safety net, and the caller's change is already committed.
pub async fn nudge(queue: Option<&Queue>, request: ScheduleRequest) {
    let Some(queue) = queue else { return };
    if let Err(err) = queue.send(&request).await {
        tracing::warn!(error = %err, organization_id = %request.organization_id,
            trigger = %request.trigger, "could not enqueue a scheduling request; the sweep will pick it up");
    }
}
