use test_support::clusters_and_deployments as common;

use common::{
    assert_problem, cluster_path, count, create_cluster, delete, expect, get, get_cluster, patch,
    resources, solo, team, try_create_cluster, uuid_of, CLUSTERS,
};
use serde_json::{json, Value};
use shared::testing::test_state;
use sqlx::PgPool;
use uuid::Uuid;

fn ids(list: &Value) -> Vec<Uuid> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|c| uuid_of(&c["id"]))
        .collect()
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn developers_and_viewers_cannot_create_change_or_delete_clusters(db: PgPool) {
    let state = test_state(db);
    let t = team(&state, "acme").await;
    let cluster = create_cluster(&state, &t.admin, t.org, "gpu-a", 4.0, 8.0, 1).await;
    let path = cluster_path(uuid_of(&cluster["id"]));

    for who in [&t.developer, &t.viewer] {
        let body = json!({"organization_id": t.org, "name": "mine", "cpu_cores": 1, "ram_gib": 1, "gpu_count": 0});
        assert_problem(&try_create_cluster(&state, who, body).await, 403);
        let body = json!({"name": "renamed", "cpu_cores": 64});
        assert_problem(&patch(&state, who, &path, body).await, 403);
        assert_problem(&delete(&state, who, &path).await, 403);

        // They may still read it, and it is unchanged.
        let seen = expect(&get(&state, who, &path).await, 200);
        assert_eq!(seen["name"], "gpu-a");
        assert_eq!(resources(&seen["capacity"]), (4.0, 8.0, 1));
    }
    assert_eq!(count(&state, "clusters").await, 1);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn another_organizations_cluster_is_404_for_every_verb(db: PgPool) {
    let state = test_state(db);
    let (ada, ada_org) = solo(&state, "ada").await;
    let (mallory, _) = solo(&state, "mallory").await;
    let cluster = create_cluster(&state, &ada, ada_org, "gpu-a", 4.0, 8.0, 1).await;
    let path = cluster_path(uuid_of(&cluster["id"]));

    assert_problem(&get(&state, &mallory, &path).await, 404);
    let body = json!({"name": "pwned", "cpu_cores": 1});
    assert_problem(&patch(&state, &mallory, &path, body).await, 404);
    assert_problem(&delete(&state, &mallory, &path).await, 404);
    // The same answer as for a cluster that does not exist at all.
    let missing = cluster_path(Uuid::now_v7());
    assert_problem(&get(&state, &mallory, &missing).await, 404);
    assert_problem(
        &get(&state, &mallory, &format!("{CLUSTERS}/not-a-uuid")).await,
        404,
    );

    // Nor can an outsider register a cluster in that organization.
    let body = json!({"organization_id": ada_org, "name": "mine", "cpu_cores": 1, "ram_gib": 1, "gpu_count": 0});
    assert_problem(&try_create_cluster(&state, &mallory, body).await, 404);

    let unchanged = get_cluster(&state, &ada, uuid_of(&cluster["id"])).await;
    assert_eq!(unchanged, cluster);
    assert_eq!(count(&state, "clusters").await, 1);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn list_shows_only_my_organizations_clusters_and_filters_by_organization(db: PgPool) {
    let state = test_state(db);
    let (ada, first) = solo(&state, "ada").await;
    let (second, _) = common::org(&state, &ada, "second").await;
    let (bob, bobs) = solo(&state, "bob").await;
    let a1 = create_cluster(&state, &ada, first, "a1", 1.0, 1.0, 0).await;
    let a2 = create_cluster(&state, &ada, second, "a2", 2.0, 2.0, 0).await;
    let b1 = create_cluster(&state, &bob, bobs, "b1", 3.0, 3.0, 0).await;

    let all = expect(&get(&state, &ada, CLUSTERS).await, 200);
    assert_eq!(ids(&all), [uuid_of(&a1["id"]), uuid_of(&a2["id"])]);
    let bobs_list = expect(&get(&state, &bob, CLUSTERS).await, 200);
    assert_eq!(ids(&bobs_list), [uuid_of(&b1["id"])]);
    // Each item has the full cluster shape.
    assert_eq!(all[0], a1);

    let filtered = expect(
        &get(
            &state,
            &ada,
            &format!("{CLUSTERS}?organization_id={second}"),
        )
        .await,
        200,
    );
    assert_eq!(ids(&filtered), [uuid_of(&a2["id"])]);

    // An organization I am not in is 404, like one that does not exist.
    let response = get(&state, &ada, &format!("{CLUSTERS}?organization_id={bobs}")).await;
    assert_problem(&response, 404);
    let response = get(
        &state,
        &ada,
        &format!("{CLUSTERS}?organization_id={}", Uuid::now_v7()),
    )
    .await;
    assert_problem(&response, 404);

    for query in [
        "organization_id=not-a-uuid",
        "organization_id=",
        "colour=red",
    ] {
        let response = get(&state, &ada, &format!("{CLUSTERS}?{query}")).await;
        assert_problem(&response, 422);
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_user_without_organizations_sees_an_empty_list(db: PgPool) {
    let state = test_state(db);
    let (ada, org) = solo(&state, "ada").await;
    create_cluster(&state, &ada, org, "a1", 1.0, 1.0, 0).await;
    let loner = common::user(&state, "loner").await;
    let list = expect(&get(&state, &loner, CLUSTERS).await, 200);
    assert_eq!(list, json!([]));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn viewers_and_developers_can_read_clusters(db: PgPool) {
    let state = test_state(db);
    let t = team(&state, "acme").await;
    let cluster = create_cluster(&state, &t.admin, t.org, "gpu-a", 4.0, 8.0, 1).await;
    for who in [&t.developer, &t.viewer] {
        assert_eq!(
            get_cluster(&state, who, uuid_of(&cluster["id"])).await,
            cluster
        );
        let list = expect(&get(&state, who, CLUSTERS).await, 200);
        assert_eq!(list, json!([cluster.clone()]));
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn list_filters_by_exact_name_within_my_organizations(db: PgPool) {
    let state = test_state(db);
    let (ada, first) = solo(&state, "ada").await;
    let (second, _) = common::org(&state, &ada, "second").await;
    let (bob, bobs) = solo(&state, "bob").await;
    let gpu = create_cluster(&state, &ada, first, "gpu", 1.0, 1.0, 0).await;
    create_cluster(&state, &ada, first, "gpu-2", 1.0, 1.0, 0).await;
    let other = create_cluster(&state, &ada, second, "gpu", 1.0, 1.0, 0).await;
    create_cluster(&state, &bob, bobs, "gpu", 1.0, 1.0, 0).await;

    let named = expect(
        &get(&state, &ada, &format!("{CLUSTERS}?name=gpu")).await,
        200,
    );
    assert_eq!(ids(&named), [uuid_of(&gpu["id"]), uuid_of(&other["id"])]);
    let in_second = expect(
        &get(
            &state,
            &ada,
            &format!("{CLUSTERS}?name=gpu&organization_id={second}"),
        )
        .await,
        200,
    );
    assert_eq!(ids(&in_second), [uuid_of(&other["id"])]);
    let none = expect(
        &get(&state, &ada, &format!("{CLUSTERS}?name=gp")).await,
        200,
    );
    assert_eq!(ids(&none), Vec::<Uuid>::new());
}
