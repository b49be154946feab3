use test_support::clusters_and_deployments as common;

use common::{
    assert_field_error, assert_keys, assert_problem, assert_time, cluster_path, count,
    create_cluster, expect, get_cluster, resources, solo, try_create_cluster, uuid_of, CLUSTERS,
};
use serde_json::json;
use shared::testing::{test_state, TestRequest};
use sqlx::PgPool;
use uuid::Uuid;

const CLUSTER_KEYS: [&str; 9] = [
    "id",
    "organization_id",
    "name",
    "capacity",
    "allocated",
    "available",
    "running_count",
    "pending_count",
    "created_at",
];

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn create_returns_201_with_the_full_cluster_and_its_location(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;

    let body = json!({"organization_id": org, "name": "gpu-a", "cpu_cores": 8, "ram_gib": 32, "gpu_count": 2});
    let response = try_create_cluster(&state, &admin, body).await;
    let cluster = expect(&response, 201);
    assert_keys(&cluster, &CLUSTER_KEYS);
    let id = uuid_of(&cluster["id"]);
    assert_eq!(response.headers()["location"], cluster_path(id).as_str());
    assert_eq!(uuid_of(&cluster["organization_id"]), org);
    assert_eq!(cluster["name"], "gpu-a");
    for key in ["capacity", "allocated", "available"] {
        assert_keys(&cluster[key], &["cpu_cores", "ram_gib", "gpu_count"]);
    }
    assert_eq!(resources(&cluster["capacity"]), (8.0, 32.0, 2));
    assert_eq!(resources(&cluster["allocated"]), (0.0, 0.0, 0));
    assert_eq!(resources(&cluster["available"]), (8.0, 32.0, 2));
    assert_eq!(cluster["running_count"], 0);
    assert_eq!(cluster["pending_count"], 0);
    assert_time(&cluster["created_at"]);

    // The Location names a cluster that GET returns unchanged.
    assert_eq!(get_cluster(&state, &admin, id).await, cluster);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn fractional_cpu_and_ram_round_trip_exactly(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;

    let cluster = create_cluster(&state, &admin, org, "small", 2.5, 0.125, 0).await;
    assert_eq!(resources(&cluster["capacity"]), (2.5, 0.125, 0));
    assert_eq!(resources(&cluster["available"]), (2.5, 0.125, 0));
    let tiny = create_cluster(&state, &admin, org, "tiny", 0.001, 1023.999, 1).await;
    assert_eq!(resources(&tiny["capacity"]), (0.001, 1023.999, 1));

    // Stored as exact integers (millicores, thousandths of a GiB), and read back the same.
    let id = uuid_of(&cluster["id"]);
    let stored: (i64, i64, i64) =
        sqlx::query_as("SELECT cpu_millis, ram_mgib, gpu FROM clusters WHERE id = $1")
            .bind(id)
            .fetch_one(&state.db)
            .await
            .unwrap();
    assert_eq!(stored, (2500, 125, 0));
    let again = get_cluster(&state, &admin, id).await;
    assert_eq!(resources(&again["capacity"]), (2.5, 0.125, 0));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn invalid_clusters_are_422_naming_the_field_and_nothing_is_created(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let valid =
        json!({"organization_id": org, "name": "c", "cpu_cores": 4, "ram_gib": 8, "gpu_count": 1});
    let with = |key: &str, value: serde_json::Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let cases = [
        (with("cpu_cores", json!(-1)), "cpu_cores"),
        (with("ram_gib", json!(-0.5)), "ram_gib"),
        (with("gpu_count", json!(-1)), "gpu_count"),
        (with("cpu_cores", json!(0.0001)), "cpu_cores"),
        (with("ram_gib", json!(1.2345)), "ram_gib"),
        (with("gpu_count", json!(1.5)), "gpu_count"),
        (with("name", json!("")), "name"),
        (with("name", json!("   ")), "name"),
        (with("name", json!("x".repeat(101))), "name"),
        (with("cpu_cores", json!("four")), "cpu_cores"),
    ];
    for (body, field) in cases {
        let response = try_create_cluster(&state, &admin, body.clone()).await;
        assert_field_error(&response, field);
    }

    let mut missing_org = valid.clone();
    missing_org
        .as_object_mut()
        .unwrap()
        .remove("organization_id");
    let response = try_create_cluster(&state, &admin, missing_org).await;
    assert_problem(&response, 422);

    let mut missing_name = valid.clone();
    missing_name.as_object_mut().unwrap().remove("name");
    assert_problem(&try_create_cluster(&state, &admin, missing_name).await, 422);

    let response = try_create_cluster(&state, &admin, with("organization_id", json!("nope"))).await;
    assert_problem(&response, 422);

    for raw in ["{not json", "", "[]", r#"{"name": "c"} trailing"#] {
        let response = common::send(
            &state,
            TestRequest::post(CLUSTERS)
                .bearer(&admin.token)
                .raw("application/json", raw)
                .build(),
        )
        .await;
        assert_problem(&response, 422);
    }

    assert_eq!(count(&state, "clusters").await, 0);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn create_without_a_token_is_401(db: PgPool) {
    let state = test_state(db);
    let body = json!({"organization_id": Uuid::now_v7(), "name": "c", "cpu_cores": 1, "ram_gib": 1, "gpu_count": 0});
    let response = common::send(&state, TestRequest::post(CLUSTERS).json(body).build()).await;
    assert_problem(&response, 401);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn duplicate_name_in_the_same_org_is_409_but_fine_in_another_org(db: PgPool) {
    let state = test_state(db);
    let (ada, ada_org) = solo(&state, "ada").await;
    let (bob, bob_org) = solo(&state, "bob").await;

    create_cluster(&state, &ada, ada_org, "gpu-a", 4.0, 8.0, 1).await;
    for name in ["gpu-a", "  gpu-a  "] {
        let body = json!({"organization_id": ada_org, "name": name, "cpu_cores": 1, "ram_gib": 1, "gpu_count": 0});
        assert_problem(&try_create_cluster(&state, &ada, body).await, 409);
    }
    assert_eq!(count(&state, "clusters").await, 1);

    let other = create_cluster(&state, &bob, bob_org, "gpu-a", 1.0, 1.0, 0).await;
    assert_eq!(other["name"], "gpu-a");
    assert_eq!(uuid_of(&other["organization_id"]), bob_org);
    assert_eq!(count(&state, "clusters").await, 2);
}
