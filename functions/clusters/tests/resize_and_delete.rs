use test_support::clusters_and_deployments as common;

use common::{
    assert_field_error, assert_problem, cancel, cluster_path, count, create_cluster, delete,
    deployment, expect, get, get_cluster, pass, patch, resources, solo, submit_id, uuid_of,
};
use serde_json::json;
use shared::testing::test_state;
use sqlx::PgPool;

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn patch_renames_and_grows_a_cluster(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = create_cluster(&state, &admin, org, "gpu-a", 4.0, 8.0, 1).await;
    let id = uuid_of(&cluster["id"]);
    let path = cluster_path(id);

    let renamed = expect(
        &patch(&state, &admin, &path, json!({"name": "  gpu-b "})).await,
        200,
    );
    assert_eq!(renamed["name"], "gpu-b");
    assert_eq!(resources(&renamed["capacity"]), (4.0, 8.0, 1));

    let grown = expect(
        &patch(
            &state,
            &admin,
            &path,
            json!({"cpu_cores": 16.5, "gpu_count": 4}),
        )
        .await,
        200,
    );
    assert_eq!(grown["name"], "gpu-b");
    assert_eq!(resources(&grown["capacity"]), (16.5, 8.0, 4));
    assert_eq!(resources(&grown["available"]), (16.5, 8.0, 4));
    assert_eq!(grown["id"], cluster["id"]);
    assert_eq!(grown["created_at"], cluster["created_at"]);
    assert_eq!(get_cluster(&state, &admin, id).await, grown);

    // An empty patch changes nothing.
    let same = expect(&patch(&state, &admin, &path, json!({})).await, 200);
    assert_eq!(same, grown);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn patch_validates_like_create(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = create_cluster(&state, &admin, org, "gpu-a", 4.0, 8.0, 1).await;
    create_cluster(&state, &admin, org, "taken", 1.0, 1.0, 0).await;
    let path = cluster_path(uuid_of(&cluster["id"]));

    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"cpu_cores": -1}), "cpu_cores"),
        (json!({"ram_gib": 0.0005}), "ram_gib"),
        (json!({"gpu_count": 0.5}), "gpu_count"),
    ] {
        assert_field_error(&patch(&state, &admin, &path, body).await, field);
    }
    assert_problem(
        &patch(&state, &admin, &path, json!({"name": "taken"})).await,
        409,
    );
    assert_eq!(
        get_cluster(&state, &admin, uuid_of(&cluster["id"])).await,
        cluster
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn shrinking_below_what_is_allocated_is_409_and_changes_nothing(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = create_cluster(&state, &admin, org, "gpu-a", 4.0, 8.0, 2).await;
    let id = uuid_of(&cluster["id"]);
    let path = cluster_path(id);
    let running = submit_id(&state, &admin, deployment(Some(id), "train", 3.0, 6.5, 1)).await;
    assert_eq!(pass(&state, org).await.started, 1);

    let before = get_cluster(&state, &admin, id).await;
    assert_eq!(resources(&before["allocated"]), (3.0, 6.5, 1));
    assert_eq!(resources(&before["available"]), (1.0, 1.5, 1));
    assert_eq!(before["running_count"], 1);

    for body in [
        json!({"cpu_cores": 2.999}),
        json!({"ram_gib": 6}),
        json!({"gpu_count": 0}),
        json!({"name": "renamed", "cpu_cores": 1}),
    ] {
        let response = patch(&state, &admin, &path, body.clone()).await;
        assert_problem(&response, 409);
        assert_eq!(
            get_cluster(&state, &admin, id).await,
            before,
            "after {body}"
        );
    }

    // Shrinking to exactly what is allocated is fine.
    let shrunk = expect(
        &patch(
            &state,
            &admin,
            &path,
            json!({"cpu_cores": 3, "ram_gib": 6.5, "gpu_count": 1}),
        )
        .await,
        200,
    );
    assert_eq!(resources(&shrunk["capacity"]), (3.0, 6.5, 1));
    assert_eq!(resources(&shrunk["available"]), (0.0, 0.0, 0));
    assert_eq!(
        common::status_of(&state, &admin, running).await,
        "running",
        "resizing does not disturb what runs"
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn delete_of_an_idle_cluster_is_204_and_then_it_is_gone(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = create_cluster(&state, &admin, org, "gpu-a", 4.0, 8.0, 1).await;
    let path = cluster_path(uuid_of(&cluster["id"]));

    let response = delete(&state, &admin, &path).await;
    assert_eq!(response.status(), 204);
    assert_problem(&get(&state, &admin, &path).await, 404);
    assert_problem(&delete(&state, &admin, &path).await, 404);
    assert_problem(
        &patch(&state, &admin, &path, json!({"name": "back"})).await,
        404,
    );
    assert_eq!(count(&state, "clusters").await, 0);
    let list = expect(&get(&state, &admin, common::CLUSTERS).await, 200);
    assert_eq!(list, json!([]));

    // The name is free again.
    create_cluster(&state, &admin, org, "gpu-a", 1.0, 1.0, 0).await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn delete_is_409_while_a_deployment_waits_for_or_runs_on_the_cluster(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = create_cluster(&state, &admin, org, "gpu-a", 4.0, 8.0, 1).await;
    let id = uuid_of(&cluster["id"]);
    let path = cluster_path(id);

    let d = submit_id(&state, &admin, deployment(Some(id), "train", 1.0, 1.0, 0)).await;
    let waiting = get_cluster(&state, &admin, id).await;
    assert_eq!(waiting["pending_count"], 1);
    assert_problem(&delete(&state, &admin, &path).await, 409);

    pass(&state, org).await;
    let busy = get_cluster(&state, &admin, id).await;
    assert_eq!(busy["running_count"], 1);
    assert_eq!(busy["pending_count"], 0);
    assert_problem(&delete(&state, &admin, &path).await, 409);
    assert_eq!(get_cluster(&state, &admin, id).await, busy);

    expect(&cancel(&state, &admin, d).await, 200);
    assert_eq!(delete(&state, &admin, &path).await.status(), 204);
    assert_problem(&get(&state, &admin, &path).await, 404);
    // The finished deployment stays readable after its cluster is gone.
    assert_eq!(common::status_of(&state, &admin, d).await, "cancelled");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn shrinking_below_what_a_waiting_deployment_needs_is_409(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = create_cluster(&state, &admin, org, "gpu-a", 8.0, 16.0, 2).await;
    let id = uuid_of(&cluster["id"]);
    submit_id(&state, &admin, deployment(Some(id), "big", 6.0, 4.0, 2)).await;
    let before = get_cluster(&state, &admin, id).await;
    // Nothing runs yet (no pass), so only the waiting request stands in the way.
    assert_problem(
        &patch(&state, &admin, &cluster_path(id), json!({"gpu_count": 1})).await,
        409,
    );
    assert_eq!(get_cluster(&state, &admin, id).await, before);
    // Shrinking what it does not need is fine.
    let shrunk = expect(
        &patch(&state, &admin, &cluster_path(id), json!({"ram_gib": 8})).await,
        200,
    );
    assert_eq!(resources(&shrunk["capacity"]), (8.0, 8.0, 2));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_cluster_stays_while_auto_placed_work_waiting_for_it_fits_nowhere_else(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let big = uuid_of(&create_cluster(&state, &admin, org, "big", 64.0, 256.0, 8).await["id"]);
    let small = uuid_of(&create_cluster(&state, &admin, org, "small", 4.0, 8.0, 0).await["id"]);
    // No cluster named and no pass yet: it waits, and only `big` can ever hold it.
    let d = submit_id(&state, &admin, deployment(None, "train", 32.0, 64.0, 4)).await;
    let before = get_cluster(&state, &admin, big).await;
    assert_problem(&delete(&state, &admin, &cluster_path(big)).await, 409);
    let too_small = json!({"gpu_count": 2});
    assert_problem(
        &patch(&state, &admin, &cluster_path(big), too_small).await,
        409,
    );
    assert_eq!(get_cluster(&state, &admin, big).await, before);

    // What it does not need may change: the other cluster, and `big` down to its size.
    expect(
        &patch(
            &state,
            &admin,
            &cluster_path(small),
            json!({"cpu_cores": 2}),
        )
        .await,
        200,
    );
    expect(
        &patch(&state, &admin, &cluster_path(big), json!({"cpu_cores": 32})).await,
        200,
    );
    // Once another cluster could hold it, `big` may go, and the work runs there.
    let other = uuid_of(&create_cluster(&state, &admin, org, "big-2", 32.0, 64.0, 4).await["id"]);
    assert_eq!(
        delete(&state, &admin, &cluster_path(big)).await.status(),
        204
    );
    pass(&state, org).await;
    let placed = common::get_deployment(&state, &admin, d).await;
    assert_eq!(placed["status"], "running");
    assert_eq!(uuid_of(&placed["cluster_id"]), other);
}
