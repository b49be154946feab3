//! Fair sharing inside an organization (DESIGN.md §9) over HTTP, through the real functions and
//! the real scheduling pass: settings, the priority ceiling, quotas, fair share, aging, usage.

use test_support::clusters_and_deployments as common;

use common::*;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

fn settings_path(org: Uuid) -> String {
    format!("{ORGS}/{org}/settings")
}

fn quota_path(org: Uuid, who: &User) -> String {
    format!("{ORGS}/{org}/members/{}/quota", who.id)
}

fn one_core(name: &str) -> Value {
    deployment(None, name, 1.0, 1.0, 0)
}

async fn settings(state: &shared::AppState, who: &User, org: Uuid) -> Value {
    expect(&get(state, who, &settings_path(org)).await, 200)
}

async fn actions(state: &shared::AppState, admin: &User, org: Uuid) -> Vec<String> {
    let log = expect(
        &get(state, admin, &format!("{ORGS}/{org}/audit")).await,
        200,
    );
    log["items"]
        .as_array()
        .expect("audit items")
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_string())
        .collect()
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn settings_have_defaults_members_read_and_only_admins_change_them(db: PgPool) {
    let state = shared::testing::test_state(db);
    let t = team(&state, "s").await;
    let defaults = json!({"developer_max_priority": 100, "aging_points_per_hour": 0,
                          "aging_max_boost": 10, "fair_share": false});
    assert_eq!(settings(&state, &t.viewer, t.org).await, defaults);

    let change = json!({"developer_max_priority": 70, "fair_share": true});
    let path = settings_path(t.org);
    assert_problem(
        &patch(&state, &t.developer, &path, change.clone()).await,
        403,
    );
    let changed = expect(&patch(&state, &t.admin, &path, change).await, 200);
    assert_eq!(changed["developer_max_priority"], 70);
    assert_eq!(changed["fair_share"], true);
    assert_eq!(
        changed["aging_max_boost"], 10,
        "a field left out keeps its value"
    );
    assert_eq!(settings(&state, &t.developer, t.org).await, changed);
    assert!(actions(&state, &t.admin, t.org)
        .await
        .contains(&"settings.updated".to_string()));

    // Out of range, or not a whole number: 422 naming the field, and nothing changes.
    for (field, bad) in [
        ("aging_max_boost", json!(100)),
        ("developer_max_priority", json!(0)),
        ("aging_points_per_hour", json!(1.5)),
    ] {
        let response = patch(&state, &t.admin, &path, json!({ field: bad })).await;
        assert_field_error(&response, field);
    }
    let unknown = patch(&state, &t.admin, &path, json!({"priority_cap": 5})).await;
    assert_problem(&unknown, 422);
    assert_eq!(settings(&state, &t.admin, t.org).await, changed);

    let outsider = user(&state, "s-outsider").await;
    assert_problem(&get(&state, &outsider, &path).await, 404);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn the_priority_ceiling_caps_developers_and_tokens_but_not_admins(db: PgPool) {
    let state = shared::testing::test_state(db);
    let t = team(&state, "c").await;
    create_cluster(&state, &t.admin, t.org, "c1", 8.0, 32.0, 0).await;
    let early = submit_id(&state, &t.developer, with_priority(one_core("early"), 90)).await;
    let path = settings_path(t.org);
    expect(
        &patch(
            &state,
            &t.admin,
            &path,
            json!({"developer_max_priority": 60}),
        )
        .await,
        200,
    );

    let refused = try_submit(&state, &t.developer, with_priority(one_core("high"), 61)).await;
    let body = assert_field_error(&refused, "priority");
    assert!(body.to_string().contains("at most 60"), "{body}");
    let token = api_token(&state, &t.admin, t.org, "ci", "developer").await;
    let mut by_token = with_priority(one_core("ci-high"), 80);
    by_token["organization_id"] = json!(t.org);
    assert_field_error(&try_submit(&state, &token, by_token).await, "priority");
    let dry_run = format!("{DEPLOYMENTS}/dry-run");
    let dry = post(
        &state,
        &t.developer,
        &dry_run,
        with_priority(one_core("d"), 61),
    )
    .await;
    assert_field_error(&dry, "priority");

    submit(&state, &t.developer, with_priority(one_core("at-cap"), 60)).await;
    let admin = submit(&state, &t.admin, with_priority(one_core("admin"), 100)).await;
    assert_eq!(admin["priority"], 100);
    // Lowering the ceiling leaves accepted work as it was.
    assert_eq!(
        get_deployment(&state, &t.developer, early).await["priority"],
        90
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn fair_share_interleaves_two_members_when_a_blocked_cluster_frees_four_slots(db: PgPool) {
    let state = shared::testing::test_state(db);
    let t = team(&state, "f").await;
    let bob = user(&state, "f-bob").await;
    let invites = format!("{ORGS}/{}/invites", t.org);
    let invite = expect(
        &post(&state, &t.admin, &invites, json!({"role": "developer"})).await,
        201,
    );
    join(
        &state,
        &bob,
        invite["code"].as_str().expect("an invite code"),
    )
    .await;
    create_cluster(&state, &t.admin, t.org, "c1", 4.0, 16.0, 0).await;
    let blocker = submit_id(&state, &t.admin, deployment(None, "blocker", 4.0, 4.0, 0)).await;
    pass(&state, t.org).await;
    assert_eq!(status_of(&state, &t.admin, blocker).await, "running");
    let path = settings_path(t.org);
    expect(
        &patch(&state, &t.admin, &path, json!({"fair_share": true})).await,
        200,
    );

    // The developer queues four first, then Bob four.
    let mut mine = Vec::new();
    for i in 0..4 {
        mine.push(submit_id(&state, &t.developer, one_core(&format!("dev-{i}"))).await);
    }
    let mut bobs = Vec::new();
    for i in 0..4 {
        bobs.push(submit_id(&state, &bob, one_core(&format!("bob-{i}"))).await);
    }
    expect(&complete(&state, &t.admin, blocker, "succeeded").await, 200);
    pass(&state, t.org).await;
    let mut running = (0, 0);
    for id in &mine {
        running.0 += (status_of(&state, &t.admin, *id).await == "running") as i32;
    }
    for id in &bobs {
        running.1 += (status_of(&state, &t.admin, *id).await == "running") as i32;
    }
    assert_eq!(running, (2, 2), "2 + 2, not the first four submitted");
    // Each got their oldest.
    assert_eq!(status_of(&state, &t.admin, mine[0]).await, "running");
    assert_eq!(status_of(&state, &t.admin, bobs[0]).await, "running");

    let usage = expect(
        &get(&state, &t.viewer, &format!("{ORGS}/{}/usage", t.org)).await,
        200,
    );
    let of = |name: &str| {
        usage
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["submitter"]["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no usage for {name}: {usage}"))
    };
    let dev = of("f-dev");
    assert_eq!(dev["submitter"]["kind"], "user");
    assert_eq!(dev["running"]["cpu_cores"], 2.0);
    assert_eq!(dev["pending_count"], 2);
    assert_eq!(dev["quota"], Value::Null);
    assert_eq!(dev["dominant_share"], 0.5);
    assert_eq!(of("f-bob")["dominant_share"], 0.5);
    assert_eq!(of("f-viewer")["dominant_share"], 0.0);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_two_core_quota_holds_two_of_three_while_another_members_work_starts(db: PgPool) {
    let state = shared::testing::test_state(db);
    let t = team(&state, "q").await;
    create_cluster(&state, &t.admin, t.org, "c1", 8.0, 32.0, 0).await;
    let path = quota_path(t.org, &t.developer);
    assert_problem(
        &put(&state, &t.developer, &path, json!({"cpu_cores": 2})).await,
        403,
    );
    let bad = put(&state, &t.admin, &path, json!({"cpu_cores": -1})).await;
    assert_field_error(&bad, "cpu_cores");
    let quota = expect(
        &put(&state, &t.admin, &path, json!({"cpu_cores": 2})).await,
        200,
    );
    assert_eq!(
        quota,
        json!({"cpu_cores": 2.0, "ram_gib": null, "gpu_count": null})
    );
    assert!(actions(&state, &t.admin, t.org)
        .await
        .contains(&"quota.set".to_string()));

    let mine: Vec<Uuid> = [
        submit_id(&state, &t.developer, one_core("q-1")).await,
        submit_id(&state, &t.developer, one_core("q-2")).await,
        submit_id(&state, &t.developer, one_core("q-3")).await,
    ]
    .into();
    let theirs = submit_id(&state, &t.admin, one_core("admin-1")).await;
    pass(&state, t.org).await;
    assert_eq!(status_of(&state, &t.admin, mine[0]).await, "running");
    assert_eq!(status_of(&state, &t.admin, mine[1]).await, "running");
    assert_eq!(
        status_of(&state, &t.admin, theirs).await,
        "running",
        "not blocked"
    );
    let third = get_deployment(&state, &t.developer, mine[2]).await;
    assert_eq!(third["status"], "pending");
    assert_eq!(third["reason"]["code"], "quota_exceeded", "{third}");
    assert_eq!(resources(&third["reason"]["shortfall"]), (1.0, 0.0, 0));

    // A dry-run says the same.
    let dry_run = format!("{DEPLOYMENTS}/dry-run");
    let dry = expect(
        &post(&state, &t.developer, &dry_run, one_core("q-4")).await,
        200,
    );
    assert_eq!(dry["outcome"], "queue");
    assert_eq!(dry["reason"]["code"], "quota_exceeded", "{dry}");

    let usage = expect(
        &get(&state, &t.admin, &format!("{ORGS}/{}/usage", t.org)).await,
        200,
    );
    let dev = usage
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["submitter"]["id"] == json!(t.developer.id))
        .cloned()
        .unwrap();
    assert_eq!(dev["quota"]["cpu_cores"], 2.0);
    assert_eq!(dev["running"]["cpu_cores"], 2.0);
    assert_eq!(dev["pending_count"], 1);

    // It starts as soon as the developer's own work frees room.
    expect(
        &complete(&state, &t.developer, mine[0], "succeeded").await,
        200,
    );
    pass(&state, t.org).await;
    assert_eq!(status_of(&state, &t.admin, mine[2]).await, "running");

    // Removed, the quota caps nothing (and removing again is harmless).
    assert_eq!(delete(&state, &t.admin, &path).await.status(), 204);
    assert_eq!(delete(&state, &t.admin, &path).await.status(), 204);
    let removed = actions(&state, &t.admin, t.org).await;
    assert_eq!(removed.iter().filter(|a| *a == "quota.removed").count(), 1);
    let outsider = user(&state, "q-outsider").await;
    assert_problem(
        &put(&state, &t.admin, &quota_path(t.org, &outsider), json!({})).await,
        404,
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_token_has_a_quota_of_its_own(db: PgPool) {
    let state = shared::testing::test_state(db);
    let t = team(&state, "tq").await;
    create_cluster(&state, &t.admin, t.org, "c1", 8.0, 32.0, 2).await;
    let token = api_token(&state, &t.admin, t.org, "ci", "developer").await;
    let path = format!("{ORGS}/{}/tokens/{}/quota", t.org, token.id);
    expect(
        &put(&state, &t.admin, &path, json!({"gpu_count": 1})).await,
        200,
    );
    let gpu_job = |name: &str| {
        let mut body = deployment(None, name, 1.0, 1.0, 1);
        body["organization_id"] = json!(t.org);
        body
    };
    let first = submit_id(&state, &token, gpu_job("ci-1")).await;
    let second = submit_id(&state, &token, gpu_job("ci-2")).await;
    pass(&state, t.org).await;
    assert_eq!(status_of(&state, &t.admin, first).await, "running");
    let waiting = get_deployment(&state, &t.admin, second).await;
    assert_eq!(waiting["reason"]["code"], "quota_exceeded", "{waiting}");
    assert_eq!(resources(&waiting["reason"]["shortfall"]), (0.0, 0.0, 1));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn aging_raises_effective_priority_and_moves_old_work_ahead(db: PgPool) {
    let state = shared::testing::test_state(db);
    let t = team(&state, "a").await;
    create_cluster(&state, &t.admin, t.org, "c1", 1.0, 8.0, 0).await;
    let blocker = submit_id(&state, &t.admin, with_priority(one_core("blocker"), 100)).await;
    pass(&state, t.org).await;
    let old = submit_id(&state, &t.developer, with_priority(one_core("old"), 30)).await;
    let new = submit_id(&state, &t.developer, with_priority(one_core("new"), 50)).await;
    assert_eq!(
        get_deployment(&state, &t.developer, old).await["effective_priority"],
        30
    );

    let path = settings_path(t.org);
    let aging = json!({"aging_points_per_hour": 10, "aging_max_boost": 40});
    expect(&patch(&state, &t.admin, &path, aging).await, 200);
    // Waiting three hours is 30 points: 60, now ahead of the 50.
    sqlx::query("UPDATE deployments SET queued_at = now() - interval '3 hours' WHERE id = $1")
        .bind(old)
        .execute(&state.db)
        .await
        .unwrap();
    let aged = get_deployment(&state, &t.developer, old).await;
    assert_eq!(aged["priority"], 30);
    assert_eq!(aged["effective_priority"], 60);
    assert_eq!(aged["queue_position"], 1);
    assert_eq!(
        get_deployment(&state, &t.developer, new).await["queue_position"],
        2
    );
    // A page numbers its pending work the same way (one pass over the queue, not a count each).
    let pending = format!(
        "/api/v1/deployments?organization_id={}&status=pending",
        t.org
    );
    let page = expect(&get(&state, &t.developer, &pending).await, 200);
    let positions: Vec<(&Value, &Value)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (&d["name"], &d["queue_position"]))
        .collect();
    assert_eq!(
        positions,
        [(&json!("new"), &json!(2)), (&json!("old"), &json!(1))]
    );
    // Running work shows its base priority.
    assert_eq!(
        get_deployment(&state, &t.admin, blocker).await["effective_priority"],
        100
    );

    expect(&complete(&state, &t.admin, blocker, "succeeded").await, 200);
    pass(&state, t.org).await;
    assert_eq!(status_of(&state, &t.admin, old).await, "running");
    assert_eq!(status_of(&state, &t.admin, new).await, "pending");
}
