// The clusters tests and these drive the same handlers; one helper module serves both.
use test_support::clusters_and_deployments as common;

use common::{
    assert_field_error, assert_problem, cancel, create_cluster, deployment, deployment_path,
    expect, get, get_deployment, pass, solo, submit_id, uuid_of, with_priority, User, DEPLOYMENTS,
};
use serde_json::Value;
use shared::testing::test_state;
use shared::AppState;
use sqlx::PgPool;
use uuid::Uuid;

async fn list(state: &AppState, who: &User, query: &str) -> Value {
    expect(
        &get(state, who, &format!("{DEPLOYMENTS}?{query}")).await,
        200,
    )
}

fn ids(page: &Value) -> Vec<Uuid> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {page}"))
        .iter()
        .map(|d| uuid_of(&d["id"]))
        .collect()
}

async fn events(state: &AppState, who: &User, id: Uuid) -> Vec<Value> {
    let path = format!("{}/events", deployment_path(id));
    let body = expect(&get(state, who, &path).await, 200);
    body.as_array().expect("a list of events").clone()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn list_is_newest_first_and_filters_by_organization_cluster_and_status(db: PgPool) {
    let state = test_state(db);
    let (ada, first) = solo(&state, "ada").await;
    let (second, _) = common::org(&state, &ada, "second").await;
    let (bob, bobs) = solo(&state, "bob").await;
    let x = uuid_of(&create_cluster(&state, &ada, first, "x", 4.0, 8.0, 0).await["id"]);
    let y = uuid_of(&create_cluster(&state, &ada, first, "y", 4.0, 8.0, 0).await["id"]);
    let z = uuid_of(&create_cluster(&state, &ada, second, "z", 4.0, 8.0, 0).await["id"]);
    let b = uuid_of(&create_cluster(&state, &bob, bobs, "b", 4.0, 8.0, 0).await["id"]);

    let d1 = submit_id(&state, &ada, deployment(Some(x), "d1", 1.0, 1.0, 0)).await;
    let d2 = submit_id(&state, &ada, deployment(Some(x), "d2", 1.0, 1.0, 0)).await;
    let d3 = submit_id(&state, &ada, deployment(Some(y), "d3", 1.0, 1.0, 0)).await;
    let d4 = submit_id(&state, &ada, deployment(Some(z), "d4", 1.0, 1.0, 0)).await;
    let bobs_one = submit_id(&state, &bob, deployment(Some(b), "b1", 1.0, 1.0, 0)).await;
    pass(&state, first).await;
    expect(&cancel(&state, &ada, d2).await, 200);

    let all = list(&state, &ada, "").await;
    assert_eq!(ids(&all), [d4, d3, d2, d1]);
    assert_eq!(all["next_cursor"], Value::Null);
    // Items have the same shape as GET.
    assert_eq!(all["items"][0], get_deployment(&state, &ada, d4).await);
    assert_eq!(ids(&list(&state, &bob, "").await), [bobs_one]);

    assert_eq!(
        ids(&list(&state, &ada, &format!("organization_id={first}")).await),
        [d3, d2, d1]
    );
    assert_eq!(
        ids(&list(&state, &ada, &format!("organization_id={second}")).await),
        [d4]
    );
    assert_eq!(
        ids(&list(&state, &ada, &format!("cluster_id={x}")).await),
        [d2, d1]
    );
    assert_eq!(ids(&list(&state, &ada, "status=cancelled").await), [d2]);
    assert_eq!(ids(&list(&state, &ada, "status=pending").await), [d4]);
    assert_eq!(
        ids(&list(
            &state,
            &ada,
            &format!("status=running&organization_id={first}")
        )
        .await),
        [d3, d1]
    );
    assert_eq!(
        ids(&list(&state, &ada, &format!("status=running&cluster_id={y}")).await),
        [d3]
    );
    assert_eq!(
        ids(&list(&state, &ada, "status=succeeded").await),
        Vec::<Uuid>::new()
    );
    // Another organization's cluster filters to nothing of theirs.
    assert_eq!(
        ids(&list(&state, &ada, &format!("cluster_id={b}")).await),
        Vec::<Uuid>::new()
    );
    // And naming their organization is 404.
    let response = get(
        &state,
        &ada,
        &format!("{DEPLOYMENTS}?organization_id={bobs}"),
    )
    .await;
    assert_problem(&response, 404);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn limit_and_cursor_page_through_without_overlap_or_gaps(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 4.0, 8.0, 0).await["id"]);
    let mut submitted = Vec::new();
    for i in 0..5 {
        let body = deployment(Some(cluster), &format!("d{i}"), 1.0, 1.0, 0);
        submitted.push(submit_id(&state, &admin, body).await);
    }
    submitted.reverse();

    let mut pages = Vec::new();
    let mut query = "limit=2".to_string();
    loop {
        let page = list(&state, &admin, &query).await;
        pages.push(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(pages.len() < 10, "the cursor never ends");
    }
    assert_eq!(
        pages,
        [
            submitted[0..2].to_vec(),
            submitted[2..4].to_vec(),
            submitted[4..5].to_vec()
        ]
    );

    // A page that ends exactly at the last item has no next cursor (no empty trailing page).
    let first = list(&state, &admin, "limit=5").await;
    assert_eq!(ids(&first), submitted);
    assert_eq!(first["next_cursor"], Value::Null);

    // Filters hold across pages.
    let one = list(&state, &admin, "limit=1&status=pending").await;
    let cursor = one["next_cursor"].as_str().expect("a next cursor");
    let rest = list(&state, &admin, &format!("status=pending&cursor={cursor}")).await;
    assert_eq!(ids(&one), submitted[0..1]);
    assert_eq!(ids(&rest), submitted[1..]);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn bad_list_parameters_are_422(db: PgPool) {
    let state = test_state(db);
    let (admin, _) = solo(&state, "ada").await;
    for (query, field) in [
        ("status=bogus", "status"),
        ("status=RUNNING", "status"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "query"),
        ("cursor=garbage", "cursor"),
        ("cursor=", "cursor"),
        ("organization_id=not-a-uuid", "query"),
        ("cluster_id=42", "query"),
        ("colour=red", "query"),
    ] {
        let response = get(&state, &admin, &format!("{DEPLOYMENTS}?{query}")).await;
        assert_field_error(&response, field);
    }
    // The largest limit is fine.
    list(&state, &admin, "limit=200").await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn pending_deployments_show_why_they_wait_and_their_place_in_the_queue(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 2.0, 8.0, 0).await["id"]);
    let big = submit_id(
        &state,
        &admin,
        with_priority(deployment(Some(cluster), "big", 2.0, 1.0, 0), 100),
    )
    .await;
    pass(&state, org).await;
    let running = get_deployment(&state, &admin, big).await;
    assert_eq!(running["status"], "running");
    assert_eq!(running["reason"], Value::Null);
    assert_eq!(running["queue_position"], Value::Null);
    common::assert_time(&running["started_at"]);

    let mut by_priority = Vec::new();
    for (name, priority) in [("p30", 30), ("p70", 70), ("p50", 50), ("p50-later", 50)] {
        let body = with_priority(deployment(Some(cluster), name, 1.0, 1.0, 0), priority);
        by_priority.push((name, submit_id(&state, &admin, body).await));
    }
    let summary = pass(&state, org).await;
    assert_eq!(summary.started, 0);

    let expected = [("p70", 1), ("p50", 2), ("p50-later", 3), ("p30", 4)];
    for (name, position) in expected {
        let id = by_priority.iter().find(|(n, _)| *n == name).unwrap().1;
        let d = get_deployment(&state, &admin, id).await;
        assert_eq!(d["status"], "pending", "{d}");
        assert_eq!(d["queue_position"], position, "{name}: {d}");
        assert_eq!(d["reason"]["code"], "insufficient_resources", "{d}");
        assert!(
            d["reason"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{d}"
        );
        assert_eq!(
            common::resources(&d["reason"]["shortfall"]),
            (1.0, 0.0, 0),
            "{d}"
        );
    }
    // The list shows the same.
    let page = list(&state, &admin, "status=pending").await;
    for item in page["items"].as_array().unwrap() {
        let d = get_deployment(&state, &admin, uuid_of(&item["id"])).await;
        assert_eq!(item["queue_position"], d["queue_position"]);
        assert_eq!(item["reason"], d["reason"]);
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn events_tell_the_story_of_a_preempted_deployment(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "c", 2.0, 4.0, 0).await["id"]);
    let low = submit_id(
        &state,
        &admin,
        with_priority(deployment(Some(cluster), "low", 2.0, 2.0, 0), 10),
    )
    .await;
    pass(&state, org).await;
    let high = submit_id(
        &state,
        &admin,
        with_priority(deployment(Some(cluster), "high", 2.0, 2.0, 0), 90),
    )
    .await;
    let summary = pass(&state, org).await;
    assert_eq!((summary.started, summary.preempted), (1, 1));

    let story = events(&state, &admin, low).await;
    assert_eq!(
        types(&story),
        ["submitted", "started", "preempted", "requeued"]
    );
    for event in &story[2..] {
        assert_eq!(uuid_of(&event["related_deployment_id"]), high, "{event}");
    }
    assert_eq!(story[0]["related_deployment_id"], Value::Null);
    let times: Vec<&str> = story.iter().map(|e| e["at"].as_str().unwrap()).collect();
    for pair in times.windows(2) {
        let (a, b) = (
            chrono::DateTime::parse_from_rfc3339(pair[0]).unwrap(),
            chrono::DateTime::parse_from_rfc3339(pair[1]).unwrap(),
        );
        assert!(a <= b, "events out of order: {times:?}");
    }
    for event in &story {
        assert!(event["detail"].is_string(), "{event}");
    }

    let victim = get_deployment(&state, &admin, low).await;
    assert_eq!(victim["status"], "pending");
    assert_eq!(victim["preemption_count"], 1);
    assert_eq!(victim["started_at"], Value::Null);
    assert_eq!(victim["reason"]["code"], "preempted", "{victim}");
    assert_eq!(victim["queue_position"], 1);
    assert_eq!(
        types(&events(&state, &admin, high).await),
        ["submitted", "started"]
    );
    assert_eq!(
        get_deployment(&state, &admin, high).await["status"],
        "running"
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn another_organizations_deployment_is_404_everywhere(db: PgPool) {
    let state = test_state(db);
    let (ada, org) = solo(&state, "ada").await;
    let (mallory, _) = solo(&state, "mallory").await;
    let cluster = uuid_of(&create_cluster(&state, &ada, org, "c", 4.0, 8.0, 0).await["id"]);
    let d = submit_id(&state, &ada, deployment(Some(cluster), "d", 1.0, 1.0, 0)).await;
    pass(&state, org).await;
    let before = get_deployment(&state, &ada, d).await;

    let path = deployment_path(d);
    assert_problem(&get(&state, &mallory, &path).await, 404);
    assert_problem(&get(&state, &mallory, &format!("{path}/events")).await, 404);
    assert_problem(&cancel(&state, &mallory, d).await, 404);
    assert_problem(&common::complete(&state, &mallory, d, "failed").await, 404);
    assert_eq!(ids(&list(&state, &mallory, "").await), Vec::<Uuid>::new());
    // Exactly like a deployment that does not exist.
    let missing = Uuid::now_v7();
    assert_problem(&get(&state, &ada, &deployment_path(missing)).await, 404);
    assert_problem(&cancel(&state, &ada, missing).await, 404);
    assert_problem(
        &common::complete(&state, &ada, missing, "failed").await,
        404,
    );
    assert_problem(
        &get(&state, &ada, &format!("{DEPLOYMENTS}/not-a-uuid")).await,
        404,
    );

    assert_eq!(get_deployment(&state, &ada, d).await, before);
    assert_eq!(before["status"], "running");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn viewers_can_read_but_not_cancel_or_complete(db: PgPool) {
    let state = test_state(db);
    let t = common::team(&state, "acme").await;
    let cluster = uuid_of(&create_cluster(&state, &t.admin, t.org, "c", 4.0, 8.0, 0).await["id"]);
    let running = submit_id(
        &state,
        &t.developer,
        deployment(Some(cluster), "r", 1.0, 1.0, 0),
    )
    .await;
    pass(&state, t.org).await;
    let pending = submit_id(
        &state,
        &t.developer,
        deployment(Some(cluster), "p", 1.0, 1.0, 0),
    )
    .await;

    let d = get_deployment(&state, &t.viewer, running).await;
    assert_eq!(d["status"], "running");
    assert_eq!(uuid_of(&d["created_by"]), t.developer.id);
    assert_eq!(ids(&list(&state, &t.viewer, "").await), [pending, running]);
    assert_eq!(
        types(&events(&state, &t.viewer, running).await),
        ["submitted", "started"]
    );

    for id in [running, pending] {
        assert_problem(&cancel(&state, &t.viewer, id).await, 403);
        assert_problem(
            &common::complete(&state, &t.viewer, id, "succeeded").await,
            403,
        );
    }
    assert_eq!(
        common::status_of(&state, &t.admin, running).await,
        "running"
    );
    assert_eq!(
        common::status_of(&state, &t.admin, pending).await,
        "pending"
    );
    let c = common::get_cluster(&state, &t.admin, cluster).await;
    assert_eq!(common::resources(&c["allocated"]), (1.0, 1.0, 0));
    assert_eq!(c["running_count"], 1);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn name_filter_matches_exactly_and_returns_every_deployment_of_that_name(db: PgPool) {
    let state = test_state(db);
    let (ada, org) = solo(&state, "ada").await;
    let (bob, bobs) = solo(&state, "bob").await;
    let c = uuid_of(&create_cluster(&state, &ada, org, "c", 4.0, 8.0, 0).await["id"]);
    let b = uuid_of(&create_cluster(&state, &bob, bobs, "b", 4.0, 8.0, 0).await["id"]);
    let first = submit_id(&state, &ada, deployment(Some(c), "train", 1.0, 1.0, 0)).await;
    submit_id(&state, &ada, deployment(Some(c), "train-2", 1.0, 1.0, 0)).await;
    submit_id(&state, &ada, deployment(Some(c), "Train", 1.0, 1.0, 0)).await;
    let again = submit_id(&state, &ada, deployment(Some(c), "train", 1.0, 1.0, 0)).await;
    // Bob's deployment of the same name is not visible to Ada.
    submit_id(&state, &bob, deployment(Some(b), "train", 1.0, 1.0, 0)).await;

    assert_eq!(ids(&list(&state, &ada, "name=train").await), [again, first]);
    assert_eq!(
        ids(&list(
            &state,
            &ada,
            &format!("name=train&organization_id={org}&status=pending")
        )
        .await),
        [again, first]
    );
    assert_eq!(
        ids(&list(&state, &ada, "name=tra").await),
        Vec::<Uuid>::new()
    );
}
