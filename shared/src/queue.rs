//! The deployment queue: a nudge to the scheduler that an organization has work to look at.
//! A lost nudge costs latency, never work: the periodic sweep finds every pending deployment.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
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

/// A nudge to the notifier: deliveries are due (for one organization, or anywhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<Uuid>,
}

#[derive(Debug, Clone)]
pub struct Queue {
    /// Built on first use: most invocations (every read) never send, so init does not pay for
    /// loading the AWS config and TLS roots.
    client: Arc<OnceCell<aws_sdk_sqs::Client>>,
    url: String,
    nudges: Arc<Mutex<HashMap<Uuid, Arc<OrgNudges>>>>,
}

/// One organization's nudges from this process. Nudges that overlap in time share one message,
/// the way a database's group commit shares one flush: each caller needs a message sent after
/// its change was committed, and one send that starts after several of them covers them all.
/// A Lambda instance serves one request at a time, so there every nudge still sends its own.
#[derive(Debug, Default)]
struct OrgNudges {
    /// Nudges asked for so far, numbered from 1.
    asked: AtomicU64,
    /// Held through a send, with the number of the last nudge asked for before it started.
    sending: tokio::sync::Mutex<u64>,
}

/// Past this many organizations, the ones no nudge is using are forgotten.
const FORGET_ABOVE: usize = 10_000;

impl Queue {
    pub fn new(client: aws_sdk_sqs::Client, url: String) -> Self {
        Queue {
            client: Arc::new(OnceCell::new_with(Some(client))),
            url,
            nudges: Arc::default(),
        }
    }

    /// A queue whose client is built from the environment on first use (`AWS_ENDPOINT_URL`
    /// points it at LocalStack).
    pub fn from_env(url: String) -> Self {
        Queue {
            client: Arc::new(OnceCell::new()),
            url,
            nudges: Arc::default(),
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

    /// This organization's nudges (see [`nudge`]).
    fn org_nudges(&self, org: Uuid) -> Arc<OrgNudges> {
        let mut nudges = self.nudges.lock().unwrap_or_else(|e| e.into_inner());
        if nudges.len() > FORGET_ABOVE {
            nudges.retain(|_, o| Arc::strong_count(o) > 1);
        }
        nudges.entry(org).or_default().clone()
    }

    /// Sends up to ten requests in one call (SQS's batch limit); returns the ones SQS did not
    /// take. An error means none was taken.
    pub async fn send_batch<T: Serialize + Clone>(&self, requests: &[T]) -> anyhow::Result<Vec<T>> {
        anyhow::ensure!(
            requests.len() <= 10,
            "SQS takes at most 10 messages a batch"
        );
        let mut call = self
            .client()
            .await
            .send_message_batch()
            .queue_url(&self.url);
        for (i, request) in requests.iter().enumerate() {
            call = call.entries(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(serde_json::to_string(request)?)
                    .build()?,
            );
        }
        let out = call.send().await?;
        Ok(out
            .failed()
            .iter()
            .filter_map(|f| f.id().parse::<usize>().ok())
            .filter_map(|i| requests.get(i).cloned())
            .collect())
    }

    pub async fn send(&self, request: &ScheduleRequest) -> anyhow::Result<()> {
        self.send_json(request, 0).await
    }

    /// Sends `body` as JSON, delivered no sooner than `delay_seconds` (0-900, SQS's range).
    pub async fn send_json<T: Serialize>(
        &self,
        body: &T,
        delay_seconds: i32,
    ) -> anyhow::Result<()> {
        let body = serde_json::to_string(body)?;
        self.client()
            .await
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay_seconds.clamp(0, 900))
            .send()
            .await?;
        Ok(())
    }
}

/// How long a nudge may take. A healthy SQS answers in a few milliseconds; an unreachable one
/// would otherwise hold the request for the SDK's connect timeouts and retries (2.6 s measured
/// with LocalStack stopped), when all a lost nudge costs is waiting for the sweep.
pub const NUDGE_TIMEOUT: Duration = Duration::from_millis(300);

/// Sends `body` to `queue`, delivered no sooner than `delay_seconds`, giving up after
/// [`NUDGE_TIMEOUT`]: a healthy SQS answers in milliseconds, and whatever the message asks for is
/// also covered by a sweep.
pub async fn send_bounded<T: Serialize>(
    queue: &Queue,
    body: &T,
    delay_seconds: i32,
) -> anyhow::Result<()> {
    // Boxed: the SDK's send future is deep, and nesting it in every caller's future overflows
    // the compiler's layout depth in the notifier.
    let send = Box::pin(queue.send_json(body, delay_seconds));
    match tokio::time::timeout(NUDGE_TIMEOUT, send).await {
        Ok(sent) => sent,
        Err(_) => Err(anyhow::anyhow!("no answer within {NUDGE_TIMEOUT:?}")),
    }
}

/// Sends a nudge if a queue is configured; returns once a message for the organization was
/// sent after the call began (its own, or one that a concurrent nudge sent for both), or gave
/// up: at most the send in flight and one more, each bounded by [`NUDGE_TIMEOUT`]. Failure is
/// logged, not returned: the sweep is the safety net, and the caller's change is committed.
pub async fn nudge(queue: Option<&Queue>, request: ScheduleRequest) {
    let Some(queue) = queue else { return };
    let org = queue.org_nudges(request.organization_id);
    let mine = org.asked.fetch_add(1, Ordering::SeqCst) + 1;
    let mut started_after = org.sending.lock().await;
    if *started_after >= mine {
        return; // a send that began after we asked has finished while we waited
    }
    *started_after = org.asked.load(Ordering::SeqCst);
    if let Err(err) = send_bounded(queue, &request, 0).await {
        tracing::warn!(error = %err, organization_id = %request.organization_id,
            trigger = %request.trigger, "could not enqueue a scheduling request; the sweep will pick it up");
    }
}

/// Tells the notifier that deliveries are due, bounded like [`nudge`]; a lost one waits for the
/// notifier's sweep.
pub async fn nudge_notifier(queue: Option<&Queue>, request: DeliveryRequest, delay_seconds: i32) {
    let Some(queue) = queue else { return };
    if let Err(err) = send_bounded(queue, &request, delay_seconds).await {
        tracing::warn!(error = %err, "could not enqueue a delivery request; the notifier's sweep will pick it up");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SQS endpoint that accepts connections and never answers: the nudge must give up
    /// after its bound instead of holding the request.
    #[tokio::test]
    async fn a_nudge_to_a_queue_that_never_answers_gives_up_after_its_bound() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", silent.local_addr().unwrap());
        let _hold = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                open.push(stream); // read nothing, answer nothing
            }
        });
        let sdk = crate::aws::config_loader()
            .endpoint_url(&endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load()
            .await;
        let queue = Queue::new(aws_sdk_sqs::Client::new(&sdk), format!("{endpoint}/q"));
        let request = ScheduleRequest {
            organization_id: Uuid::now_v7(),
            deployment_id: None,
            trigger: "test".into(),
        };
        let started = std::time::Instant::now();
        nudge(Some(&queue), request.clone()).await;
        let waited = started.elapsed();
        assert!(waited >= NUDGE_TIMEOUT, "{waited:?}: it did not even try");
        assert!(
            waited < NUDGE_TIMEOUT * 3,
            "{waited:?}: the nudge held the request"
        );
        // Without the bound the same send is still waiting long after it.
        let unbounded = tokio::time::timeout(NUDGE_TIMEOUT * 3, queue.send(&request)).await;
        assert!(unbounded.is_err(), "the silent endpoint answered");
    }
}
