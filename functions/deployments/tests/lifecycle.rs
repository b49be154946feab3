// The clusters tests and these drive the same handlers; one helper module serves both.
use test_support::clusters_and_deployments as common;

use common::{
    assert_field_error, assert_problem, cancel, complete, create_cluster, deployment,
    deployment_path, expect, get, get_cluster, get_deployment, pass, post, resources, solo,
    status_of, submit_id, team, uuid_of, User,
};
use serde_json::{json, Value};
use shared::testing::test_state;
use shared::AppState;
use sqlx::PgPool;
use uuid::Uuid;

async fn event_types(state: &AppState, who: &User, id: Uuid) -> Vec<String> {
    let path = format!("{}/events", deployment_path(id));
    let body = expect(&get(state, who, &path).await, 200);
    body.as_array()
        .expect("a list of events")
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn cancelling_a_pending_deployment_cancels_it_once(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 4.0, 8.0, 0).await["id"]);
    let d = submit_id(&state, &admin, deployment(Some(cluster), "d", 1.0, 1.0, 0)).await;

    let cancelled = expect(&cancel(&state, &admin, d).await, 200);
    assert_eq!(uuid_of(&cancelled["id"]), d);
    assert_eq!(cancelled["status"], "cancelled");
    common::assert_time(&cancelled["finished_at"]);
    assert_eq!(cancelled["started_at"], Value::Null);
    assert_eq!(cancelled["queue_position"], Value::Null);
    assert_eq!(get_deployment(&state, &admin, d).await, cancelled);
    assert_eq!(
        event_types(&state, &admin, d).await,
        ["submitted", "cancelled"]
    );

    assert_problem(&cancel(&state, &admin, d).await, 409);
    assert_eq!(
        event_types(&state, &admin, d).await,
        ["submitted", "cancelled"]
    );

    // The scheduler leaves it alone.
    assert_eq!(pass(&state, org).await.started, 0);
    assert_eq!(status_of(&state, &admin, d).await, "cancelled");
    assert_eq!(
        get_cluster(&state, &admin, cluster).await["pending_count"],
        0
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn cancelling_a_running_deployment_frees_its_capacity(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 4.0, 8.0, 1).await["id"]);
    let d = submit_id(
        &state,
        &admin,
        deployment(Some(cluster), "d", 2.5, 3.125, 1),
    )
    .await;
    pass(&state, org).await;
    let busy = get_cluster(&state, &admin, cluster).await;
    assert_eq!(resources(&busy["allocated"]), (2.5, 3.125, 1));

    let cancelled = expect(&cancel(&state, &admin, d).await, 200);
    assert_eq!(cancelled["status"], "cancelled");
    common::assert_time(&cancelled["finished_at"]);
    let idle = get_cluster(&state, &admin, cluster).await;
    assert_eq!(resources(&idle["allocated"]), (0.0, 0.0, 0));
    assert_eq!(resources(&idle["available"]), (4.0, 8.0, 1));
    assert_eq!(idle["running_count"], 0);
    assert_eq!(
        event_types(&state, &admin, d).await,
        ["submitted", "started", "cancelled"]
    );
    assert_problem(&cancel(&state, &admin, d).await, 409);
    assert_problem(&complete(&state, &admin, d, "succeeded").await, 409);
    assert_eq!(
        resources(&get_cluster(&state, &admin, cluster).await["allocated"]),
        (0.0, 0.0, 0)
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn completing_a_running_deployment_records_the_outcome_and_frees_capacity(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 4.0, 8.0, 2).await["id"]);
    let ok = submit_id(&state, &admin, deployment(Some(cluster), "ok", 2.0, 4.0, 1)).await;
    let bad = submit_id(
        &state,
        &admin,
        deployment(Some(cluster), "bad", 2.0, 4.0, 1),
    )
    .await;
    let waiting = submit_id(
        &state,
        &admin,
        deployment(Some(cluster), "next", 4.0, 8.0, 2),
    )
    .await;
    pass(&state, org).await;
    assert_eq!(status_of(&state, &admin, waiting).await, "pending");

    let done = expect(&complete(&state, &admin, ok, "succeeded").await, 200);
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["reason"], Value::Null);
    common::assert_time(&done["finished_at"]);
    common::assert_time(&done["started_at"]);
    let half = get_cluster(&state, &admin, cluster).await;
    assert_eq!(resources(&half["allocated"]), (2.0, 4.0, 1));
    assert_eq!(half["running_count"], 1);

    let path = format!("{}/complete", deployment_path(bad));
    let body = json!({"outcome": "failed", "message": "CUDA out of memory"});
    let failed = expect(&post(&state, &admin, &path, body).await, 200);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["reason"]["code"], "failed");
    assert_eq!(failed["reason"]["message"], "CUDA out of memory");
    common::assert_time(&failed["finished_at"]);
    let idle = get_cluster(&state, &admin, cluster).await;
    assert_eq!(resources(&idle["allocated"]), (0.0, 0.0, 0));
    assert_eq!(idle["running_count"], 0);

    assert_eq!(
        event_types(&state, &admin, ok).await,
        ["submitted", "started", "succeeded"]
    );
    assert_eq!(
        event_types(&state, &admin, bad).await,
        ["submitted", "started", "failed"]
    );

    // The freed room is usable: the next pass starts what waited for it.
    assert_eq!(pass(&state, org).await.started, 1);
    assert_eq!(status_of(&state, &admin, waiting).await, "running");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn only_a_running_deployment_can_be_completed_and_only_once(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 1.0, 1.0, 0).await["id"]);
    let first = submit_id(&state, &admin, deployment(Some(cluster), "a", 1.0, 1.0, 0)).await;
    pass(&state, org).await;
    let pending = submit_id(&state, &admin, deployment(Some(cluster), "b", 1.0, 1.0, 0)).await;

    assert_problem(&complete(&state, &admin, pending, "succeeded").await, 409);
    assert_eq!(status_of(&state, &admin, pending).await, "pending");

    expect(&complete(&state, &admin, first, "succeeded").await, 200);
    assert_problem(&complete(&state, &admin, first, "succeeded").await, 409);
    assert_problem(&complete(&state, &admin, first, "failed").await, 409);
    assert_eq!(status_of(&state, &admin, first).await, "succeeded");
    assert_eq!(
        event_types(&state, &admin, first).await,
        ["submitted", "started", "succeeded"]
    );
    // Capacity was freed once, not twice.
    let c = get_cluster(&state, &admin, cluster).await;
    assert_eq!(resources(&c["allocated"]), (0.0, 0.0, 0));
    assert_eq!(resources(&c["available"]), (1.0, 1.0, 0));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_bad_outcome_is_422_and_changes_nothing(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 4.0, 8.0, 0).await["id"]);
    let d = submit_id(&state, &admin, deployment(Some(cluster), "d", 1.0, 1.0, 0)).await;
    pass(&state, org).await;

    let path = format!("{}/complete", deployment_path(d));
    for outcome in ["done", "SUCCEEDED", "cancelled", "running"] {
        let response = post(&state, &admin, &path, json!({"outcome": outcome})).await;
        assert_field_error(&response, "outcome");
    }
    let response = post(&state, &admin, &path, json!({"outcome": 1})).await;
    assert_field_error(&response, "outcome");
    assert_problem(&post(&state, &admin, &path, json!({})).await, 422);
    assert_eq!(status_of(&state, &admin, d).await, "running");
    assert_eq!(
        resources(&get_cluster(&state, &admin, cluster).await["allocated"]),
        (1.0, 1.0, 0)
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn developers_can_submit_cancel_and_complete(db: PgPool) {
    let state = test_state(db);
    let t = team(&state, "acme").await;
    let cluster = uuid_of(&create_cluster(&state, &t.admin, t.org, "c", 4.0, 8.0, 0).await["id"]);
    let mine = submit_id(
        &state,
        &t.developer,
        deployment(Some(cluster), "mine", 1.0, 1.0, 0),
    )
    .await;
    let admins = submit_id(
        &state,
        &t.admin,
        deployment(Some(cluster), "admins", 1.0, 1.0, 0),
    )
    .await;
    let later = submit_id(
        &state,
        &t.developer,
        deployment(Some(cluster), "later", 1.0, 1.0, 0),
    )
    .await;
    pass(&state, t.org).await;

    let done = expect(
        &complete(&state, &t.developer, mine, "succeeded").await,
        200,
    );
    assert_eq!(done["status"], "succeeded");
    // A developer may act on any deployment of the organization, not only their own.
    let cancelled = expect(&cancel(&state, &t.developer, admins).await, 200);
    assert_eq!(cancelled["status"], "cancelled");
    let failed = expect(&complete(&state, &t.developer, later, "failed").await, 200);
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        resources(&get_cluster(&state, &t.admin, cluster).await["allocated"]),
        (0.0, 0.0, 0)
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_dependent_waits_for_its_dependency_to_succeed_then_runs(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 8.0, 16.0, 0).await["id"]);
    let a = submit_id(
        &state,
        &admin,
        deployment(Some(cluster), "prepare", 1.0, 1.0, 0),
    )
    .await;
    let mut body = deployment(Some(cluster), "train", 1.0, 1.0, 0);
    body["depends_on"] = json!([a, a]);
    let b = common::submit(&state, &admin, body).await;
    assert_eq!(b["depends_on"], json!([a]), "duplicates collapse");
    let b = uuid_of(&b["id"]);

    pass(&state, org).await;
    assert_eq!(status_of(&state, &admin, a).await, "running");
    let waiting = get_deployment(&state, &admin, b).await;
    assert_eq!(waiting["status"], "pending");
    assert_eq!(
        waiting["reason"]["code"], "waiting_for_dependencies",
        "{waiting}"
    );
    assert_eq!(waiting["depends_on"], json!([a]));

    expect(&complete(&state, &admin, a, "succeeded").await, 200);
    assert_eq!(
        status_of(&state, &admin, b).await,
        "pending",
        "only a pass starts it"
    );
    pass(&state, org).await;
    let running = get_deployment(&state, &admin, b).await;
    assert_eq!(running["status"], "running");
    assert_eq!(running["reason"], Value::Null);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_dependent_fails_when_its_dependency_fails(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 8.0, 16.0, 0).await["id"]);
    let a = submit_id(
        &state,
        &admin,
        deployment(Some(cluster), "prepare", 1.0, 1.0, 0),
    )
    .await;
    let mut body = deployment(Some(cluster), "train", 1.0, 1.0, 0);
    body["depends_on"] = json!([a]);
    let b = submit_id(&state, &admin, body).await;
    pass(&state, org).await;

    expect(&complete(&state, &admin, a, "failed").await, 200);
    pass(&state, org).await;
    let failed = get_deployment(&state, &admin, b).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["reason"]["code"], "dependency_failed", "{failed}");
    common::assert_time(&failed["finished_at"]);
    let path = format!("{}/events", deployment_path(b));
    let events = expect(&get(&state, &admin, &path).await, 200);
    let last = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "dependency_failed");
    assert_eq!(uuid_of(&last["related_deployment_id"]), a);
}
