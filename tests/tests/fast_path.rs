//! The fast path, on its own: the server and the SQS consumer run, the sweep does not. Every
//! change that can let waiting work start (submit, complete, cancel, resize) must get it
//! started through the queue, within about a second.

use e2e_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::Duration;

/// With the sweep off, only a queue message can start anything; this leaves room for a slow CI.
const FAST: Duration = Duration::from_secs(3);

struct Setup {
    app: TestApp,
    admin: String,
    cluster: String,
}

async fn setup(db: PgPool, cpu: f64) -> Setup {
    let app = TestApp::start_without_sweep(db).await;
    let admin = app.user("ada").await;
    let (org, _) = app.organization(&admin, "fast").await;
    let cluster = app.cluster(&admin, &org, "c", cpu, 64.0, 0).await;
    Setup {
        app,
        admin,
        cluster,
    }
}

impl Setup {
    async fn submit(&self, name: &str, cpu: f64) -> String {
        let (status, d) = self
            .app
            .call(
                Method::POST,
                "/api/v1/deployments",
                Some(&self.admin),
                Some(
                    json!({"cluster_id": self.cluster, "name": name, "image": "ghcr.io/acme/job:1",
                            "resources": {"cpu_cores": cpu, "ram_gib": 1}}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{d}");
        d["id"].as_str().unwrap().to_string()
    }

    async fn wait(&self, id: &str, status: &str) -> Value {
        self.app
            .wait_for(&self.admin, id, FAST, |d| d["status"] == status)
            .await
    }

    async fn post(&self, path: &str, body: Value) -> StatusCode {
        self.app
            .call(Method::POST, path, Some(&self.admin), Some(body))
            .await
            .0
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_submission_starts_through_the_queue_alone(db: PgPool) {
    let s = setup(db, 4.0).await;
    let id = s.submit("first", 2.0).await;
    s.wait(&id, "running").await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn completing_and_cancelling_start_the_waiting_work_through_the_queue(db: PgPool) {
    let s = setup(db, 4.0).await;
    let first = s.submit("first", 4.0).await;
    s.wait(&first, "running").await;
    let second = s.submit("second", 4.0).await;
    let third = s.submit("third", 4.0).await;
    // Nothing changes while the cluster is full, and no sweep comes by.
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.wait(&second, "pending").await;

    let path = format!("/api/v1/deployments/{first}/complete");
    assert_eq!(s.post(&path, json!({"outcome": "succeeded"})).await, 200);
    s.wait(&second, "running").await;

    let path = format!("/api/v1/deployments/{second}/cancel");
    assert_eq!(s.post(&path, json!({})).await, 200);
    s.wait(&third, "running").await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn growing_a_cluster_starts_the_waiting_work_through_the_queue(db: PgPool) {
    let s = setup(db, 4.0).await;
    let first = s.submit("first", 4.0).await;
    s.wait(&first, "running").await;
    let second = s.submit("second", 2.0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.wait(&second, "pending").await;
    let (status, _) = s
        .app
        .call(
            Method::PATCH,
            &format!("/api/v1/clusters/{}", s.cluster),
            Some(&s.admin),
            Some(json!({"cpu_cores": 6})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    s.wait(&second, "running").await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn webhooks_are_delivered_through_the_notifiers_queue(db: PgPool) {
    // No sweep of either kind: the pass nudges the notifier through its LocalStack queue, and
    // that alone must bring both events to the receiver.
    let app = TestApp::start_without_sweeps(db).await;
    let admin = app.user("ada").await;
    let (org, _) = app.organization(&admin, "hooks").await;
    let cluster = app.cluster(&admin, &org, "c", 8.0, 64.0, 0).await;
    let (url, got) = test_support::webhook_receiver::receiver(vec![200], "").await;
    let (status, hook) = app
        .call(
            Method::POST,
            &format!("/api/v1/organizations/{org}/webhooks"),
            Some(&admin),
            Some(json!({"url": url})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let body = json!({"cluster_id": cluster, "name": "hooked", "image": "busybox:1.36",
                      "resources": {"cpu_cores": 1, "ram_gib": 1}});
    let (status, d) = app
        .call(
            Method::POST,
            "/api/v1/deployments",
            Some(&admin),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{d}");

    let deadline = tokio::time::Instant::now() + FAST;
    let types = loop {
        let types: Vec<String> = got
            .lock()
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["type"].to_string())
            .collect();
        if types.len() >= 2 || tokio::time::Instant::now() > deadline {
            break types;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(types, [r#""submitted""#, r#""started""#]);
    let ids: Vec<String> = got.lock().unwrap().iter().map(|r| r.id.clone()).collect();
    assert_ne!(ids[0], ids[1], "each event has its own webhook-id");
}

/// When SQS took each message waiting on `queue`, in milliseconds.
async fn messages_sent(queue: &shared::queue::Queue) -> Vec<u64> {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    e2e_tests::waiting_messages(queue, 1)
        .await
        .iter()
        .map(|m| {
            let at = &m.attributes().unwrap()[&MessageSystemAttributeName::SentTimestamp];
            at.parse().unwrap()
        })
        .collect()
}

fn now_millis() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.unwrap().as_millis() as u64
}

/// Nudges for one organization that overlap share a message (a submission storm sends a few,
/// not one each), yet each returns only once a message sent after it began is on the queue:
/// the scheduler that reads it reads the change the nudge announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_nudges_for_one_organization_share_a_message_sent_after_each() {
    use shared::queue::{nudge, ScheduleRequest};
    let queue = e2e_tests::fresh_queue().await;
    let org = uuid::Uuid::now_v7();
    let nudges = 20;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(nudges));
    let tasks: Vec<_> = (0..nudges)
        .map(|_| {
            let (queue, barrier) = (queue.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let began = now_millis();
                let request = ScheduleRequest {
                    organization_id: org,
                    deployment_id: None,
                    trigger: "test".into(),
                };
                nudge(Some(&queue), request).await;
                (began, now_millis())
            })
        })
        .collect();
    let mut spans = Vec::new();
    for task in tasks {
        spans.push(task.await.unwrap());
    }
    let sent = messages_sent(&queue).await;
    assert!(!sent.is_empty(), "no nudge was sent");
    assert!(
        sent.len() <= nudges / 2,
        "{} messages for {nudges} overlapping nudges: they were not shared",
        sent.len()
    );
    for (began, returned) in spans {
        assert!(
            sent.iter().any(|&at| began <= at && at <= returned),
            "a nudge that ran from {began} to {returned} ms returned with no message sent in \
             between (sent at {sent:?})"
        );
    }

    // One after another, nothing overlaps: each sends its own.
    for _ in 0..3 {
        let request = ScheduleRequest {
            organization_id: org,
            deployment_id: None,
            trigger: "test".into(),
        };
        nudge(Some(&queue), request).await;
    }
    assert_eq!(messages_sent(&queue).await.len(), 3);
}
