//! The product as a user meets it: real HTTP, the router built from template.yaml, PostgreSQL,
//! LocalStack SQS and the scheduler loop.

use e2e_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_submitted_deployment_that_fits_is_running_within_seconds(db: PgPool) {
    let app = TestApp::start(db).await;
    let admin = app.user("alice").await;
    let (org, _) = app.organization(&admin, "ml-team").await;
    let cluster = app.cluster(&admin, &org, "gpu-a", 16.0, 64.0, 2).await;

    let (status, d) = app
        .call(Method::POST, "/api/v1/deployments", Some(&admin),
            Some(json!({"cluster_id": cluster, "name": "train", "image": "ghcr.io/acme/train:1.0",
                        "resources": {"cpu_cores": 4, "ram_gib": 16, "gpu_count": 1}, "priority": 60})))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{d}");
    assert_eq!(d["status"], "pending");
    let id = d["id"].as_str().unwrap();
    // The queue, not the sweep, should place it; the sweep runs every 2 s here.
    let running = app
        .wait_for(&admin, id, Duration::from_secs(10), |d| {
            d["status"] == "running"
        })
        .await;
    assert_eq!(running["cluster_id"], cluster.as_str());

    let (_, c) = app
        .call(
            Method::GET,
            &format!("/api/v1/clusters/{cluster}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        c["allocated"],
        json!({"cpu_cores": 4.0, "ram_gib": 16.0, "gpu_count": 1})
    );
    assert_eq!(c["available"]["gpu_count"], 1);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn completing_work_drains_the_queue_in_priority_order(db: PgPool) {
    let app = TestApp::start(db).await;
    let admin = app.user("bob").await;
    let (org, _) = app.organization(&admin, "research").await;
    let cluster = app.cluster(&admin, &org, "small", 4.0, 8.0, 0).await;
    let submit = |name: &'static str, priority: i64| {
        let (app, admin, cluster) = (&app, &admin, &cluster);
        async move {
            let (status, d) = app
                .call(
                    Method::POST,
                    "/api/v1/deployments",
                    Some(admin),
                    Some(
                        json!({"cluster_id": cluster, "name": name, "image": "busybox",
                                "resources": {"cpu_cores": 4, "ram_gib": 8}, "priority": priority}),
                    ),
                )
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{d}");
            d["id"].as_str().unwrap().to_string()
        }
    };
    let first = submit("first", 50).await;
    app.wait_for(&admin, &first, Duration::from_secs(10), |d| {
        d["status"] == "running"
    })
    .await;
    let low = submit("low", 10).await;
    let high = submit("high", 50).await;
    let waiting = app
        .wait_for(&admin, &high, Duration::from_secs(10), |d| {
            d["reason"]["code"] == "insufficient_resources"
        })
        .await;
    assert_eq!(waiting["reason"]["code"], "insufficient_resources");
    assert_eq!(waiting["queue_position"], 1);

    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/deployments/{first}/complete"),
            Some(&admin),
            Some(json!({"outcome": "succeeded"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.wait_for(&admin, &high, Duration::from_secs(10), |d| {
        d["status"] == "running"
    })
    .await;
    let (_, low_now) = app
        .call(
            Method::GET,
            &format!("/api/v1/deployments/{low}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(low_now["status"], "pending");

    // A duplicate completion changes nothing.
    let (status, problem) = app
        .call(
            Method::POST,
            &format!("/api/v1/deployments/{first}/complete"),
            Some(&admin),
            Some(json!({"outcome": "succeeded"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (_, c) = app
        .call(
            Method::GET,
            &format!("/api/v1/clusters/{cluster}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(c["allocated"]["cpu_cores"], 4.0);
    assert_eq!(c["running_count"], 1);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn unknown_routes_and_methods_are_problems(db: PgPool) {
    let app = TestApp::start(db).await;
    let (status, body) = app
        .call(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["status"], 404);
    let (status, _) = app
        .call(Method::PUT, "/api/v1/auth/login", None, None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn another_organizations_objects_are_not_found(db: PgPool) {
    let app = TestApp::start(db).await;
    let alice = app.user("alice").await;
    let mallory = app.user("mallory").await;
    let (org, _) = app.organization(&alice, "alice-org").await;
    let cluster = app.cluster(&alice, &org, "c1", 8.0, 32.0, 0).await;
    for path in [
        format!("/api/v1/organizations/{org}"),
        format!("/api/v1/clusters/{cluster}"),
        format!("/api/v1/organizations/{org}/members"),
    ] {
        let (status, _) = app.call(Method::GET, &path, Some(&mallory), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = app
        .call(Method::POST, "/api/v1/deployments", Some(&mallory),
            Some(json!({"cluster_id": cluster, "name": "x", "image": "busybox", "resources": {"cpu_cores": 1}})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_submission_whose_queue_message_is_lost_is_still_scheduled_by_the_sweep(db: PgPool) {
    let app = TestApp::start_with_broken_queue(db).await;
    let admin = app.user("carol").await;
    let (org, _) = app.organization(&admin, "lossy").await;
    let cluster = app.cluster(&admin, &org, "c", 2.0, 4.0, 0).await;
    let (status, d) = app
        .call(Method::POST, "/api/v1/deployments", Some(&admin),
            Some(json!({"cluster_id": cluster, "name": "x", "image": "busybox", "resources": {"cpu_cores": 1}})))
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "the request succeeds although the queue send failed: {d}"
    );
    let id = d["id"].as_str().unwrap();
    app.wait_for(&admin, id, Duration::from_secs(15), |d| {
        d["status"] == "running"
    })
    .await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_higher_priority_submission_preempts_over_http_and_the_victim_is_told_why(db: PgPool) {
    let app = TestApp::start(db).await;
    let admin = app.user("dave").await;
    let (org, _) = app.organization(&admin, "prio").await;
    let cluster = app.cluster(&admin, &org, "one-gpu", 8.0, 32.0, 1).await;
    let body = |name: &str, priority: i64| {
        json!({"cluster_id": cluster, "name": name, "image": "busybox", "resources": {"cpu_cores": 1, "gpu_count": 1},
               "priority": priority})
    };
    let (_, low) = app
        .call(
            Method::POST,
            "/api/v1/deployments",
            Some(&admin),
            Some(body("low", 10)),
        )
        .await;
    let low = low["id"].as_str().unwrap().to_string();
    app.wait_for(&admin, &low, Duration::from_secs(10), |d| {
        d["status"] == "running"
    })
    .await;
    let (_, high) = app
        .call(
            Method::POST,
            "/api/v1/deployments",
            Some(&admin),
            Some(body("high", 90)),
        )
        .await;
    let high = high["id"].as_str().unwrap().to_string();
    app.wait_for(&admin, &high, Duration::from_secs(10), |d| {
        d["status"] == "running"
    })
    .await;
    let victim = app
        .wait_for(&admin, &low, Duration::from_secs(10), |d| {
            d["status"] == "pending"
        })
        .await;
    assert_eq!(victim["preemption_count"], 1);
    assert_eq!(victim["reason"]["code"], "preempted");
    let (_, events) = app
        .call(
            Method::GET,
            &format!("/api/v1/deployments/{low}/events"),
            Some(&admin),
            None,
        )
        .await;
    let preempted = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "preempted")
        .expect("a preempted event");
    assert_eq!(preempted["related_deployment_id"], high.as_str());
}
