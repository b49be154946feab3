//! A test harness that runs the local stack in-process for one test: its own database (from
//! `#[sqlx::test]`), its own LocalStack SQS queue, the real router reading `template.yaml`, the
//! real scheduler loop, and a real TCP port that tests talk to with an HTTP client.

pub mod rie;
pub mod runtime_api;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use shared::queue::Queue;
use sqlx::PgPool;
use std::path::Path;
use std::time::Duration;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub db: PgPool,
    pub queue: Queue,
    pub state: shared::AppState,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let queue = self.queue.clone();
        // Best effort: LocalStack forgets queues on restart anyway.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let client = queue.client().await;
                let _ = client.delete_queue().queue_url(queue.url()).send().await;
            });
        }
    }
}

/// A fresh queue on LocalStack (`AWS_ENDPOINT_URL`, default http://127.0.0.1:4566).
pub async fn fresh_queue() -> Queue {
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    let sdk = shared::aws::config_loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "e2e",
        ))
        .load()
        .await;
    let client = aws_sdk_sqs::Client::new(&sdk);
    let name = format!("e2e-{}", uuid::Uuid::new_v4());
    let url = client
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("LocalStack SQS answers (make test starts it)")
        .queue_url
        .expect("a queue URL");
    Queue::new(client, url)
}

/// Every message waiting on `queue`, received but not deleted (as Lambda's SQS poller hands a
/// batch over), with the time SQS took each. Waits up to `first_wait_seconds` for the first.
pub async fn waiting_messages(
    queue: &Queue,
    first_wait_seconds: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    let client = queue.client().await;
    let mut messages = Vec::new();
    loop {
        let received = client
            .receive_message()
            .queue_url(queue.url())
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            // Long enough for the first message to arrive, short once the queue is empty.
            .wait_time_seconds(if messages.is_empty() {
                first_wait_seconds
            } else {
                1
            })
            .send()
            .await
            .expect("LocalStack receives");
        let batch = received.messages.unwrap_or_default();
        if batch.is_empty() {
            return messages;
        }
        messages.extend(batch);
    }
}

/// One JSON request to `base`: the status and the body (null when it is not JSON).
pub async fn call(
    client: &Client,
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = client.request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{base} {path}: {e}"));
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

impl TestApp {
    /// Starts the stack: the scheduler consumes a fresh queue and sweeps every 2 seconds.
    pub async fn start(db: PgPool) -> TestApp {
        Self::start_with(db, |_| {}).await
    }

    pub async fn start_with(
        db: PgPool,
        configure: impl FnOnce(&mut shared::config::Config),
    ) -> TestApp {
        Self::start_with_queue(db, fresh_queue().await, configure).await
    }

    /// With a queue that does not exist, every send fails: only the sweep can schedule.
    pub async fn start_with_broken_queue(db: PgPool) -> TestApp {
        let working = fresh_queue().await;
        let missing = working.url().rsplit_once('/').unwrap().0.to_string() + "/no-such-queue";
        let broken = Queue::new(working.client().await.clone(), missing);
        Self::start_with_queue(db, broken, |_| {}).await
    }

    /// The server and the queue consumer, with no sweep: whatever gets scheduled got there
    /// through SQS (the fast path).
    pub async fn start_without_sweep(db: PgPool) -> TestApp {
        let mut app = Self::start(db).await;
        app.tasks.pop().expect("the sweep task").abort();
        app
    }

    /// The server and both queue consumers (the scheduler's, and the notifier's on a webhook
    /// queue of its own), with no sweeps: whatever gets scheduled or delivered got there
    /// through SQS. Webhooks may point at this machine.
    pub async fn start_without_sweeps(db: PgPool) -> TestApp {
        let (queue, webhooks) = (fresh_queue().await, fresh_queue().await);
        let mut config = shared::testing::test_config();
        config.webhook_allow_private = true;
        let mut state = shared::AppState::new(db.clone(), config, Some(queue.clone()));
        state.webhook_queue = Some(webhooks.clone());
        let mut app = Self::start_with_state(db, queue, state).await;
        // The sweeps go; the notifier consumes its queue instead.
        app.tasks.pop().expect("the scheduler's sweep").abort();
        app.tasks.pop().expect("the notifier's sweep").abort();
        app.tasks.push(tokio::spawn(
            hypervisor_local::notifier_loop::consume_queue(app.state.clone(), webhooks),
        ));
        app
    }

    pub async fn start_with_queue(
        db: PgPool,
        queue: Queue,
        configure: impl FnOnce(&mut shared::config::Config),
    ) -> TestApp {
        let mut config = shared::testing::test_config();
        configure(&mut config);
        let state = shared::AppState::new(db.clone(), config, Some(queue.clone()));
        Self::start_with_state(db, queue, state).await
    }

    async fn start_with_state(db: PgPool, queue: Queue, state: shared::AppState) -> TestApp {
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let routes =
            hypervisor_local::Routes::from_template_file(&template).expect("template.yaml parses");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let tasks = vec![
            tokio::spawn({
                let state = state.clone();
                let routes = routes.clone();
                async move {
                    let _ = hypervisor_local::server::serve(listener, state, routes).await;
                }
            }),
            tokio::spawn(hypervisor_local::scheduler_loop::consume_queue(
                state.clone(),
                queue.clone(),
            )),
            // The last two: start_without_sweep(s) remove them.
            tokio::spawn(hypervisor_local::notifier_loop::sweep_every(
                state.clone(),
                Duration::from_secs(1),
            )),
            tokio::spawn(hypervisor_local::scheduler_loop::sweep_every(
                state.clone(),
                Duration::from_secs(2),
            )),
        ];
        TestApp {
            base,
            client: Client::new(),
            db,
            queue,
            state,
            tasks,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call(&self.client, &self.base, method, path, token, body).await
    }

    /// Registers and logs in `name`; returns the access token.
    pub async fn user(&self, name: &str) -> String {
        let password = "Correct-Horse-Battery-9";
        let (status, _) = self
            .call(Method::POST, "/api/v1/auth/register", None,
                Some(json!({"username": name, "email": format!("{name}@example.com"), "password": password})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "register {name}");
        let (status, tokens) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": name, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {name}");
        tokens["access_token"].as_str().unwrap().to_string()
    }

    /// Creates an organization owned by `token`; returns (org id, developer invite code).
    pub async fn organization(&self, token: &str, name: &str) -> (String, String) {
        let (status, org) = self
            .call(
                Method::POST,
                "/api/v1/organizations",
                Some(token),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        (
            org["id"].as_str().unwrap().to_string(),
            org["invite_code"].as_str().unwrap().to_string(),
        )
    }

    pub async fn cluster(
        &self,
        token: &str,
        org: &str,
        name: &str,
        cpu: f64,
        ram: f64,
        gpu: i64,
    ) -> String {
        let (status, cluster) = self
            .call(Method::POST, "/api/v1/clusters", Some(token),
                Some(json!({"organization_id": org, "name": name, "cpu_cores": cpu, "ram_gib": ram, "gpu_count": gpu})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{cluster}");
        cluster["id"].as_str().unwrap().to_string()
    }

    /// Polls a deployment until `done` holds, or panics after `timeout`.
    pub async fn wait_for(
        &self,
        token: &str,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (status, d) = self
                .call(
                    Method::GET,
                    &format!("/api/v1/deployments/{id}"),
                    Some(token),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK);
            if done(&d) {
                return d;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("deployment {id} did not reach the expected state: {d}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
