//! Every function binary runs as a real Lambda: under AWS's Runtime Interface Emulator
//! (`aws-lambda-rie`, as `sam local` runs it, here a plain process), fed API Gateway v2, SQS and
//! scheduled events, against PostgreSQL and LocalStack.
//! By default it runs the binaries `cargo test` built; `LAMBDA_BOOTSTRAP_DIR=.aws-sam/build`
//! (or `target/lambda`) runs the packaged bootstraps instead.

use e2e_tests::rie::Rie;
use e2e_tests::runtime_api::http_event;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::path::PathBuf;

fn bootstrap(bin: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Ok(dir) = std::env::var("LAMBDA_BOOTSTRAP_DIR") {
        let dir = root.join(dir);
        let logical = format!("{}{}Function", bin[..1].to_uppercase(), &bin[1..]);
        for candidate in [
            dir.join(bin).join("bootstrap"),
            dir.join(logical).join("bootstrap"),
        ] {
            if candidate.exists() {
                return candidate;
            }
        }
        panic!("no bootstrap for {bin} under {}", dir.display());
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    target.join("debug").join(bin)
}

struct Function {
    rie: Rie,
}

impl Function {
    async fn start(bin: &str, env: &[(&str, String)]) -> Function {
        Function {
            rie: Rie::start(&bootstrap(bin), bin, env).await,
        }
    }

    /// Invokes with `event`; panics with the function's error when it reports one.
    async fn invoke(&self, event: Value) -> Value {
        self.rie
            .invoke(&event)
            .await
            .unwrap_or_else(|error| panic!("the function failed: {error}"))
    }

    /// Sends an HTTP event; returns (status, parsed JSON body).
    async fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u64, Value) {
        let response = self
            .invoke(http_event(method, path, token, body.as_ref()))
            .await;
        let status = response["statusCode"].as_u64().expect("statusCode");
        let body = response["body"]
            .as_str()
            .map(|b| serde_json::from_str(b).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        (status, body)
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn every_function_runs_under_the_lambda_runtime_api(db: PgPool) {
    let database = db
        .connect_options()
        .get_database()
        .expect("a test database")
        .to_string();
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let database_url = format!("{}/{database}", base.rsplit_once('/').unwrap().0);
    let queue = e2e_tests::fresh_queue().await;
    let env = vec![
        ("DATABASE_URL", database_url),
        ("JWT_SECRET", shared::testing::TEST_JWT_SECRET.to_string()),
        ("QUEUE_URL", queue.url().to_string()),
        (
            "AWS_ENDPOINT_URL",
            std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into()),
        ),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("WEBHOOK_ALLOW_PRIVATE", "true".to_string()),
    ];

    let auth = Function::start("auth", &env).await;
    let password = "Correct-Horse-Battery-9";
    let (status, _) = auth
        .http(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(
                json!({"username": "lambda", "email": "lambda@example.com", "password": password}),
            ),
        )
        .await;
    assert_eq!(status, 201);
    let (status, tokens) = auth
        .http(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "lambda", "password": password})),
        )
        .await;
    assert_eq!(status, 200);
    let token = tokens["access_token"].as_str().unwrap().to_string();
    let (status, _) = auth
        .http("GET", "/api/v1/auth/me", Some("not-a-token"), None)
        .await;
    assert_eq!(status, 401);

    let orgs = Function::start("organizations", &env).await;
    let (status, org) = orgs
        .http(
            "POST",
            "/api/v1/organizations",
            Some(&token),
            Some(json!({"name": "lambda-org"})),
        )
        .await;
    assert_eq!(status, 201);
    let org_id = org["id"].as_str().unwrap().to_string();
    // A webhook nobody listens at: the notifier below must try it and schedule a retry.
    let (status, hook) = orgs
        .http(
            "POST",
            &format!("/api/v1/organizations/{org_id}/webhooks"),
            Some(&token),
            Some(json!({"url": "http://127.0.0.1:9/nobody-listens", "event_types": ["submitted"]})),
        )
        .await;
    assert_eq!(status, 201, "{hook}");

    let clusters = Function::start("clusters", &env).await;
    let (status, cluster) = clusters
        .http("POST", "/api/v1/clusters", Some(&token),
            Some(json!({"organization_id": org_id, "name": "c1", "cpu_cores": 4, "ram_gib": 8, "gpu_count": 1})))
        .await;
    assert_eq!(status, 201);

    let deployments = Function::start("deployments", &env).await;
    let (status, d) = deployments
        .http("POST", "/api/v1/deployments", Some(&token),
            Some(json!({"cluster_id": cluster["id"], "name": "job", "image": "busybox", "resources": {"cpu_cores": 1}})))
        .await;
    assert_eq!(status, 202, "{d}");
    let id = d["id"].as_str().unwrap().to_string();

    // The submission's message is on the LocalStack queue: hand it to the scheduler as SQS would.
    let scheduler = Function::start("scheduler", &env).await;
    let batch = received_batch(&queue).await;
    assert_eq!(
        batch["Records"].as_array().map(Vec::len),
        Some(1),
        "{batch}"
    );
    let response = scheduler.invoke(batch).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let (status, running) = deployments
        .http(
            "GET",
            &format!("/api/v1/deployments/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(running["status"], "running");

    // The EventBridge rule's event is a sweep, and there is work for it: the running job is now
    // overdue, and a second submission waits (its message stays on the queue, unread).
    sqlx::query(
        "UPDATE deployments SET max_runtime_seconds = 60, started_at = now() - interval '1 hour'
         WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&db)
    .await
    .unwrap();
    let (status, waiting) = deployments
        .http("POST", "/api/v1/deployments", Some(&token),
            Some(json!({"cluster_id": cluster["id"], "name": "next", "image": "busybox", "resources": {"cpu_cores": 4}})))
        .await;
    assert_eq!(status, 202, "{waiting}");
    // What the template's EventBridge rule sends (its `Input`). The sweep runs no pass itself: it
    // enqueues the organization (DESIGN §12); the queue's messages (the sweep's and the second
    // submission's) then go to the scheduler as SQS would deliver them.
    let sweep = scheduler.invoke(json!({"sweep": true})).await;
    assert_eq!(
        (
            sweep["organizations"].as_i64(),
            sweep["enqueued"].as_i64(),
            sweep["inline_passes"].as_i64()
        ),
        (Some(1), Some(1), Some(0)),
        "{sweep}"
    );
    let batch = received_batch(&queue).await;
    let bodies: Vec<&str> = batch["Records"]
        .as_array()
        .map(|r| r.iter().filter_map(|m| m["body"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        bodies.iter().any(|b| b.contains("\"sweep\"")) && bodies.len() >= 2,
        "the sweep's and the second submission's messages are waiting: {batch}"
    );
    let response = scheduler.invoke(batch).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let (_, overdue) = deployments
        .http(
            "GET",
            &format!("/api/v1/deployments/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(overdue["status"], "failed");
    assert_eq!(overdue["reason"]["code"], "max_runtime_exceeded");
    let (_, next) = deployments
        .http(
            "GET",
            &format!("/api/v1/deployments/{}", waiting["id"].as_str().unwrap()),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        next["status"], "running",
        "the scheduler started what the overdue job freed"
    );

    let docs = Function::start("docs", &env).await;
    let (status, spec) = docs.http("GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert!(spec["paths"]["/api/v1/deployments"].is_object());

    // The console: its page, embedded in the binary, under its policy.
    let console = Function::start("console", &env).await;
    let page = console
        .invoke(http_event("GET", "/console/", None, None))
        .await;
    assert_eq!(page["statusCode"], 200, "{page}");
    assert!(
        page["body"]
            .as_str()
            .unwrap_or_default()
            .contains("<div id=\"app\">"),
        "{page}"
    );
    let csp = page["headers"]["content-security-policy"]
        .as_str()
        .unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{page}"
    );

    // The notifier: its scheduled sweep tries the two submissions' deliveries (nobody answers,
    // so both wait for a retry); an SQS batch for the organization then finds nothing due.
    let notifier = Function::start("notifier", &env).await;
    let sweep = notifier.invoke(json!({"sweep": true})).await;
    assert_eq!(sweep, json!({"delivered": 0, "retrying": 2, "failed": 0}));
    let batch = notifier
        .invoke(json!({"Records": [{
            "messageId": "m1", "receiptHandle": "r1", "body": json!({"organization_id": org_id}).to_string(),
            "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:webhooks", "awsRegion": "us-east-1"
        }]}))
        .await;
    assert_eq!(batch, json!({"delivered": 0, "retrying": 0, "failed": 0}));
}

/// Every message waiting on `queue`, received (not deleted) as Lambda's SQS poller does, as the
/// SQS event it would deliver.
async fn received_batch(queue: &shared::queue::Queue) -> Value {
    let records: Vec<Value> = e2e_tests::waiting_messages(queue, 5)
        .await
        .into_iter()
        .map(|m| {
            json!({
                "messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body,
                "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:deployments",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}
