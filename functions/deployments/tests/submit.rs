// The clusters tests and these drive the same handlers; one helper module serves both.
use test_support::clusters_and_deployments as common;

use common::{
    assert_field_error, assert_keys, assert_problem, assert_time, count, create_cluster,
    deployment, deployment_path, expect, get_deployment, solo, submit, team, try_submit, uuid_of,
    with_priority, DEPLOYMENTS,
};
use serde_json::{json, Value};
use shared::testing::{test_state, TestRequest};
use sqlx::PgPool;
use uuid::Uuid;

const DEPLOYMENT_KEYS: [&str; 17] = [
    "id",
    "organization_id",
    "cluster_id",
    "name",
    "image",
    "resources",
    "priority",
    "status",
    "reason",
    "queue_position",
    "depends_on",
    "preemption_count",
    "max_runtime_seconds",
    "created_by",
    "created_at",
    "started_at",
    "finished_at",
];

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn submit_returns_202_pending_with_location_and_the_full_shape(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = create_cluster(&state, &admin, org, "gpu-a", 8.0, 32.0, 2).await;
    let cluster_id = uuid_of(&cluster["id"]);

    let body = json!({
        "cluster_id": cluster_id,
        "name": "  train-llm ",
        "image": " ghcr.io/acme/trainer:1.4 ",
        "resources": {"cpu_cores": 2.5, "ram_gib": 0.125, "gpu_count": 1},
        "priority": 70,
        "max_runtime_seconds": 3600,
    });
    let response = try_submit(&state, &admin, body).await;
    let d = expect(&response, 202);
    assert_keys(&d, &DEPLOYMENT_KEYS);
    let id = uuid_of(&d["id"]);
    assert_eq!(response.headers()["location"], deployment_path(id).as_str());
    assert_eq!(uuid_of(&d["organization_id"]), org);
    assert_eq!(uuid_of(&d["cluster_id"]), cluster_id);
    assert_eq!(d["name"], "train-llm");
    assert_eq!(d["image"], "ghcr.io/acme/trainer:1.4");
    assert_eq!(common::resources(&d["resources"]), (2.5, 0.125, 1));
    assert_eq!(d["priority"], 70);
    assert_eq!(d["status"], "pending");
    assert_eq!(d["queue_position"], 1);
    assert_eq!(d["depends_on"], json!([]));
    assert_eq!(d["preemption_count"], 0);
    assert_eq!(d["max_runtime_seconds"], 3600);
    assert_eq!(uuid_of(&d["created_by"]), admin.id);
    assert_time(&d["created_at"]);
    assert_eq!(d["started_at"], Value::Null);
    assert_eq!(d["finished_at"], Value::Null);
    assert!(
        d["reason"].is_null() || d["reason"]["code"].is_string(),
        "{d}"
    );

    // The Location names the deployment GET returns, and its first event is `submitted`.
    assert_eq!(get_deployment(&state, &admin, id).await, d);
    let events = expect(
        &common::get(&state, &admin, &format!("{}/events", deployment_path(id))).await,
        200,
    );
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    assert_eq!(events[0]["type"], "submitted");
    assert_time(&events[0]["at"]);

    // The cluster counts it as waiting for it.
    assert_eq!(
        common::get_cluster(&state, &admin, cluster_id).await["pending_count"],
        1
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn priority_defaults_to_50_and_accepts_1_to_100(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 4.0, 8.0, 0).await["id"]);

    let d = submit(&state, &admin, deployment(Some(cluster), "d", 1.0, 1.0, 0)).await;
    assert_eq!(d["priority"], 50);
    assert_eq!(d["max_runtime_seconds"], Value::Null);
    for priority in [1, 100] {
        let body = with_priority(deployment(Some(cluster), "d", 1.0, 1.0, 0), priority);
        assert_eq!(submit(&state, &admin, body).await["priority"], priority);
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn invalid_submissions_are_422_naming_the_field_and_nothing_is_queued(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 4.0, 8.0, 2).await["id"]);
    let valid = deployment(Some(cluster), "d", 1.0, 1.0, 0);
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let zero = json!({"cpu_cores": 0, "ram_gib": 0, "gpu_count": 0});
    let cases = [
        (with("priority", json!(0)), "priority"),
        (with("priority", json!(101)), "priority"),
        (with("priority", json!(-5)), "priority"),
        (with("priority", json!("high")), "priority"),
        (with("image", json!("UPPER")), "image"),
        (with("image", json!("a b")), "image"),
        (with("image", json!("x:")), "image"),
        (with("image", json!("")), "image"),
        (with("image", json!("nginx:-bad")), "image"),
        (with("image", json!("x@sha256:short")), "image"),
        (with("name", json!("  ")), "name"),
        (with("resources", zero), "resources"),
        (with("resources", json!({})), "resources"),
        (
            with("resources", json!({"cpu_cores": -1, "ram_gib": 1})),
            "resources.cpu_cores",
        ),
        (
            with("resources", json!({"cpu_cores": 1, "ram_gib": -0.5})),
            "resources.ram_gib",
        ),
        (
            with("resources", json!({"cpu_cores": 1, "gpu_count": -1})),
            "resources.gpu_count",
        ),
        (
            with("resources", json!({"cpu_cores": 1, "gpu_count": 1.5})),
            "resources.gpu_count",
        ),
        (
            with("resources", json!({"cpu_cores": 0.0005})),
            "resources.cpu_cores",
        ),
        (with("depends_on", json!([Uuid::now_v7()])), "depends_on"),
        (with("depends_on", json!(["not-a-uuid"])), "depends_on[0]"),
        (with("max_runtime_seconds", json!(0)), "max_runtime_seconds"),
        (
            with("max_runtime_seconds", json!(-60)),
            "max_runtime_seconds",
        ),
        (with("cluster_id", json!("nope")), "cluster_id"),
    ];
    for (body, field) in cases {
        let response = try_submit(&state, &admin, body.clone()).await;
        assert_field_error(&response, field);
    }
    for raw in ["", "{not json", "[1, 2]"] {
        let response = common::send(
            &state,
            TestRequest::post(DEPLOYMENTS)
                .bearer(&admin.token)
                .raw("application/json", raw)
                .build(),
        )
        .await;
        assert_problem(&response, 422);
    }
    assert_eq!(count(&state, "deployments").await, 0);
    assert_eq!(count(&state, "deployment_events").await, 0);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn depends_on_must_name_a_deployment_of_the_same_organization(db: PgPool) {
    let state = test_state(db);
    let (ada, ada_org) = solo(&state, "ada").await;
    let (bob, bob_org) = solo(&state, "bob").await;
    let ada_cluster = uuid_of(&create_cluster(&state, &ada, ada_org, "c", 4.0, 8.0, 0).await["id"]);
    let bob_cluster = uuid_of(&create_cluster(&state, &bob, bob_org, "c", 4.0, 8.0, 0).await["id"]);
    let bobs = common::submit_id(
        &state,
        &bob,
        deployment(Some(bob_cluster), "b", 1.0, 1.0, 0),
    )
    .await;

    let mut body = deployment(Some(ada_cluster), "a", 1.0, 1.0, 0);
    body["depends_on"] = json!([bobs]);
    assert_field_error(&try_submit(&state, &ada, body).await, "depends_on");
    assert_eq!(count(&state, "deployments").await, 1);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_request_larger_than_its_cluster_is_422_and_never_queued(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "gpu-a", 4.0, 8.0, 1).await["id"]);

    for (cpu, ram, gpu) in [(4.001, 1.0, 0), (1.0, 8.5, 0), (1.0, 1.0, 2)] {
        let response = try_submit(
            &state,
            &admin,
            deployment(Some(cluster), "big", cpu, ram, gpu),
        )
        .await;
        let body = assert_field_error(&response, "resources");
        assert!(
            body["detail"].as_str().unwrap().contains("gpu-a"),
            "names the cluster: {body}"
        );
    }
    assert_eq!(count(&state, "deployments").await, 0);

    // Exactly the whole cluster is fine.
    let d = submit(
        &state,
        &admin,
        deployment(Some(cluster), "all", 4.0, 8.0, 1),
    )
    .await;
    assert_eq!(d["status"], "pending");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn an_auto_placed_request_larger_than_every_cluster_is_422(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;

    // No cluster at all.
    let response = try_submit(&state, &admin, deployment(None, "d", 1.0, 1.0, 0)).await;
    assert_field_error(&response, "resources");

    create_cluster(&state, &admin, org, "gpu", 4.0, 16.0, 1).await;
    let big = uuid_of(&create_cluster(&state, &admin, org, "cpu", 8.0, 32.0, 0).await["id"]);
    // Together they would have room; no single cluster has.
    let response = try_submit(&state, &admin, deployment(None, "d", 6.0, 8.0, 1)).await;
    assert_field_error(&response, "resources");
    assert_eq!(count(&state, "deployments").await, 0);

    // One that fits some cluster is queued without a cluster, and placed by the scheduler.
    let d = submit(&state, &admin, deployment(None, "d", 6.0, 8.0, 0)).await;
    assert_eq!(d["cluster_id"], Value::Null);
    assert_eq!(uuid_of(&d["organization_id"]), org);
    common::pass(&state, org).await;
    let placed = get_deployment(&state, &admin, uuid_of(&d["id"])).await;
    assert_eq!(placed["status"], "running");
    assert_eq!(uuid_of(&placed["cluster_id"]), big);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn viewers_get_403_and_outsiders_404_when_submitting(db: PgPool) {
    let state = test_state(db);
    let t = team(&state, "acme").await;
    let cluster = uuid_of(&create_cluster(&state, &t.admin, t.org, "c", 4.0, 8.0, 0).await["id"]);
    let mallory = common::user(&state, "mallory").await;

    let body = deployment(Some(cluster), "d", 1.0, 1.0, 0);
    assert_problem(&try_submit(&state, &t.viewer, body.clone()).await, 403);
    let dry_run = format!("{DEPLOYMENTS}/dry-run");
    assert_problem(
        &common::post(&state, &t.viewer, &dry_run, body.clone()).await,
        403,
    );

    // Another organization's cluster is indistinguishable from a missing one.
    assert_problem(&try_submit(&state, &mallory, body.clone()).await, 404);
    assert_problem(
        &common::post(&state, &mallory, &dry_run, body.clone()).await,
        404,
    );
    let mut by_org = deployment(None, "d", 1.0, 1.0, 0);
    by_org["organization_id"] = json!(t.org);
    assert_problem(&try_submit(&state, &mallory, by_org).await, 404);
    let missing = deployment(Some(Uuid::now_v7()), "d", 1.0, 1.0, 0);
    assert_problem(&try_submit(&state, &t.admin, missing).await, 404);
    assert_eq!(count(&state, "deployments").await, 0);

    // Without a token: 401.
    let response = common::send(
        &state,
        TestRequest::post(DEPLOYMENTS).json(body.clone()).build(),
    )
    .await;
    assert_problem(&response, 401);

    // The developer may.
    assert_eq!(
        submit(&state, &t.developer, body).await["status"],
        "pending"
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn cluster_and_organization_must_agree(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let (other_org, _) = common::org(&state, &admin, "second").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 4.0, 8.0, 0).await["id"]);

    let mut body = deployment(Some(cluster), "d", 1.0, 1.0, 0);
    body["organization_id"] = json!(other_org);
    assert_field_error(&try_submit(&state, &admin, body).await, "cluster_id");
    // A member of several organizations must say which one when not naming a cluster.
    let response = try_submit(&state, &admin, deployment(None, "d", 1.0, 1.0, 0)).await;
    assert_field_error(&response, "organization_id");
    assert_eq!(count(&state, "deployments").await, 0);
}

async fn submit_with_key(
    state: &shared::AppState,
    who: &common::User,
    key: &str,
    body: Value,
) -> shared::testing::Response {
    common::send(
        state,
        TestRequest::post(DEPLOYMENTS)
            .bearer(&who.token)
            .header("idempotency-key", key)
            .json(body)
            .build(),
    )
    .await
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn the_same_idempotency_key_and_body_returns_the_same_deployment_once(db: PgPool) {
    let state = test_state(db);
    let t = team(&state, "acme").await;
    let cluster = uuid_of(&create_cluster(&state, &t.admin, t.org, "c", 4.0, 8.0, 0).await["id"]);
    let body = with_priority(deployment(Some(cluster), "d", 1.0, 1.0, 0), 60);

    let first = submit_with_key(&state, &t.developer, "retry-123", body.clone()).await;
    let created = expect(&first, 202);
    let again = submit_with_key(&state, &t.developer, "retry-123", body.clone()).await;
    let replayed = expect(&again, 202);
    assert_eq!(replayed["id"], created["id"]);
    assert_eq!(again.headers()["location"], first.headers()["location"]);
    // The same body with its keys in another order is the same request.
    let reordered: Value = serde_json::from_str(&format!(
        r#"{{"priority": 60, "resources": {{"gpu_count": 0, "ram_gib": 1.0, "cpu_cores": 1.0}},
            "image": "ghcr.io/acme/trainer:1.4", "name": "d", "cluster_id": "{cluster}"}}"#
    ))
    .unwrap();
    let third = expect(
        &submit_with_key(&state, &t.developer, "retry-123", reordered).await,
        202,
    );
    assert_eq!(third["id"], created["id"]);
    assert_eq!(count(&state, "deployments").await, 1);
    assert_eq!(count(&state, "deployment_events").await, 1);

    // The same key with a different body is a conflict, and creates nothing.
    let changed = with_priority(deployment(Some(cluster), "d", 1.0, 1.0, 0), 61);
    let response = submit_with_key(&state, &t.developer, "retry-123", changed).await;
    assert_problem(&response, 409);
    assert_eq!(count(&state, "deployments").await, 1);

    // Keys belong to their user: another user's identical key is a new submission.
    let other = expect(
        &submit_with_key(&state, &t.admin, "retry-123", body.clone()).await,
        202,
    );
    assert_ne!(other["id"], created["id"]);
    // And without a key, every submission is new.
    submit(&state, &t.developer, body.clone()).await;
    assert_eq!(count(&state, "deployments").await, 3);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_malformed_idempotency_key_is_422(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 4.0, 8.0, 0).await["id"]);
    let body = deployment(Some(cluster), "d", 1.0, 1.0, 0);
    for key in ["".to_string(), "x".repeat(256), "has space".to_string()] {
        let response = submit_with_key(&state, &admin, &key, body.clone()).await;
        assert_field_error(&response, "Idempotency-Key");
    }
    assert_eq!(count(&state, "deployments").await, 0);
}

async fn dry_run(state: &shared::AppState, who: &common::User, body: Value) -> Value {
    let path = format!("{DEPLOYMENTS}/dry-run");
    expect(&common::post(state, who, &path, body).await, 200)
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn dry_run_says_start_queue_or_reject_and_who_would_be_preempted_without_changing_anything(
    db: PgPool,
) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 4.0, 8.0, 0).await["id"]);
    let low = common::submit_id(
        &state,
        &admin,
        with_priority(deployment(Some(cluster), "low", 3.0, 4.0, 0), 10),
    )
    .await;
    common::pass(&state, org).await;
    assert_eq!(common::status_of(&state, &admin, low).await, "running");
    let deployments_before = count(&state, "deployments").await;
    let events_before = count(&state, "deployment_events").await;
    let cluster_before = common::get_cluster(&state, &admin, cluster).await;

    // Fits in what is free: start, nobody preempted.
    let result = dry_run(
        &state,
        &admin,
        deployment(Some(cluster), "small", 1.0, 4.0, 0),
    )
    .await;
    assert_eq!(result["outcome"], "start", "{result}");
    assert_eq!(uuid_of(&result["cluster_id"]), cluster);
    assert_eq!(result["would_preempt"], json!([]));

    // Needs the room the lower-priority one holds: start by preempting it.
    let urgent = with_priority(deployment(Some(cluster), "urgent", 2.0, 2.0, 0), 90);
    let result = dry_run(&state, &admin, urgent).await;
    assert_eq!(result["outcome"], "start", "{result}");
    assert_eq!(uuid_of(&result["cluster_id"]), cluster);
    assert_eq!(result["would_preempt"], json!([low]));
    // Auto placement finds the same.
    let auto = with_priority(deployment(None, "urgent", 2.0, 2.0, 0), 90);
    let result = dry_run(&state, &admin, auto).await;
    assert_eq!(result["outcome"], "start", "{result}");
    assert_eq!(result["would_preempt"], json!([low]));

    // Equal or lower priority may not preempt: it would wait, and says why.
    for priority in [10, 5] {
        let body = with_priority(deployment(Some(cluster), "patient", 2.0, 2.0, 0), priority);
        let result = dry_run(&state, &admin, body).await;
        assert_eq!(result["outcome"], "queue", "{result}");
        assert_eq!(result["would_preempt"], json!([]));
        assert_eq!(
            result["reason"]["code"], "insufficient_resources",
            "{result}"
        );
        assert_eq!(
            common::resources(&result["reason"]["shortfall"]),
            (1.0, 0.0, 0)
        );
    }

    // Larger than the cluster: reject (a dry run answers 200, a submission would be 422).
    let result = dry_run(
        &state,
        &admin,
        deployment(Some(cluster), "huge", 5.0, 1.0, 0),
    )
    .await;
    assert_eq!(result["outcome"], "reject", "{result}");
    assert_eq!(result["would_preempt"], json!([]));
    assert!(result["reason"]["code"].is_string(), "{result}");

    // Nothing changed.
    assert_eq!(count(&state, "deployments").await, deployments_before);
    assert_eq!(count(&state, "deployment_events").await, events_before);
    let d = get_deployment(&state, &admin, low).await;
    assert_eq!(d["status"], "running");
    assert_eq!(d["preemption_count"], 0);
    assert_eq!(
        common::get_cluster(&state, &admin, cluster).await,
        cluster_before
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn dry_run_validates_like_submit(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 4.0, 8.0, 0).await["id"]);
    let path = format!("{DEPLOYMENTS}/dry-run");
    let body = with_priority(deployment(Some(cluster), "d", 1.0, 1.0, 0), 0);
    assert_field_error(&common::post(&state, &admin, &path, body).await, "priority");
    let mut body = deployment(Some(cluster), "d", 1.0, 1.0, 0);
    body["image"] = json!("UPPER");
    assert_field_error(&common::post(&state, &admin, &path, body).await, "image");
    assert_eq!(count(&state, "deployments").await, 0);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_removed_member_cannot_read_a_deployment_by_replaying_its_idempotency_key(db: PgPool) {
    let state = test_state(db);
    let t = team(&state, "acme").await;
    let cluster = uuid_of(&create_cluster(&state, &t.admin, t.org, "c", 4.0, 8.0, 0).await["id"]);
    let body = deployment(Some(cluster), "secret-training", 1.0, 1.0, 0);
    let created = expect(
        &submit_with_key(&state, &t.developer, "key-1", body.clone()).await,
        202,
    );
    common::pass(&state, t.org).await;

    let member = format!("{}/{}/members/{}", common::ORGS, t.org, t.developer.id);
    let removed = common::delete(&state, &t.admin, &member).await;
    assert_eq!(removed.status(), 204);
    // Like every other route, the organization's deployment is now invisible to them...
    let path = deployment_path(uuid_of(&created["id"]));
    assert_problem(&common::get(&state, &t.developer, &path).await, 404);
    // ...and a retry of the old submission must not show it either.
    let response = submit_with_key(&state, &t.developer, "key-1", body).await;
    assert_problem(&response, 404);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_just_submitted_deployment_already_says_why_it_is_not_running(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 4.0, 8.0, 0).await["id"]);
    let d = submit(&state, &admin, deployment(Some(cluster), "d", 1.0, 1.0, 0)).await;
    assert_eq!(d["status"], "pending");
    assert!(d["reason"]["code"].is_string(), "{d}");
    assert!(d["reason"]["message"].is_string(), "{d}");
}
