//! Registering webhooks (DESIGN.md §8): admins only, the secret once, no SSRF targets.

use test_support::clusters_and_deployments as common;

use common::*;
use serde_json::{json, Value};
use shared::testing::test_state;
use sqlx::PgPool;
use uuid::Uuid;

fn hooks_path(org: Uuid) -> String {
    format!("{ORGS}/{org}/webhooks")
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn an_admin_registers_lists_and_deletes_a_webhook(db: PgPool) {
    let state = test_state(db);
    let team = team(&state, "t").await;
    let response = post(
        &state,
        &team.admin,
        &hooks_path(team.org),
        json!({"url": "https://hooks.example.com/hv", "event_types": ["started", "failed"],
               "description": "chat"}),
    )
    .await;
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    let created = expect(&response, 201);
    assert_keys(
        &created,
        &[
            "created_at",
            "description",
            "event_types",
            "id",
            "secret",
            "url",
        ],
    );
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(created["event_types"], json!(["failed", "started"]));
    let all = expect(
        &post(
            &state,
            &team.admin,
            &hooks_path(team.org),
            json!({"url": "https://hooks.example.com/all"}),
        )
        .await,
        201,
    );
    assert_eq!(all["event_types"].as_array().unwrap().len(), 8);

    let list = expect(&get(&state, &team.admin, &hooks_path(team.org)).await, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_keys(
        &list[0],
        &[
            "created_at",
            "description",
            "event_types",
            "failing",
            "id",
            "last_delivery_at",
            "url",
        ],
    );
    assert!(!list.to_string().contains(&secret[6..]));
    assert_eq!(list[0]["failing"], false);
    assert_eq!(list[0]["last_delivery_at"], Value::Null);

    let id = uuid_of(&created["id"]);
    assert_eq!(
        delete(
            &state,
            &team.admin,
            &format!("{}/{id}", hooks_path(team.org))
        )
        .await
        .status(),
        204
    );
    assert_problem(
        &delete(
            &state,
            &team.admin,
            &format!("{}/{id}", hooks_path(team.org)),
        )
        .await,
        404,
    );
    assert_problem(
        &get(
            &state,
            &team.admin,
            &format!("{}/{id}/deliveries", hooks_path(team.org)),
        )
        .await,
        404,
    );
    let list = expect(&get(&state, &team.admin, &hooks_path(team.org)).await, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Audited, without the secret.
    let audit = expect(
        &get(&state, &team.admin, &format!("{ORGS}/{}/audit", team.org)).await,
        200,
    );
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..3],
        ["webhook.deleted", "webhook.created", "webhook.created"]
    );
    assert!(!audit.to_string().contains(&secret[6..]));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn webhooks_cannot_point_inside_the_network(db: PgPool) {
    let state = test_state(db);
    assert!(!state.config.webhook_allow_private);
    let team = team(&state, "t").await;
    for url in [
        "http://hooks.example.com/plain-http",
        "https://localhost/x",
        "https://127.0.0.1/x",
        "https://10.0.0.8/x",
        "https://192.168.1.20/x",
        "https://[::1]/x",
        "https://[fd00:ec2::254]/latest",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:169.254.169.254]/",
        "ftp://hooks.example.com/x",
        "hooks.example.com",
    ] {
        let response = post(
            &state,
            &team.admin,
            &hooks_path(team.org),
            json!({"url": url}),
        )
        .await;
        assert_field_error(&response, "url");
    }
    for (body, field) in [
        (
            json!({"url": "https://hooks.example.com/x", "event_types": []}),
            "event_types",
        ),
        (
            json!({"url": "https://hooks.example.com/x", "event_types": ["started", "exploded"]}),
            "event_types[1]",
        ),
        (
            json!({"url": "https://hooks.example.com/x", "description": "x".repeat(501)}),
            "description",
        ),
    ] {
        assert_field_error(
            &post(&state, &team.admin, &hooks_path(team.org), body).await,
            field,
        );
    }
    assert_eq!(count(&state, "webhooks").await, 0);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn only_admins_manage_webhooks(db: PgPool) {
    let state = test_state(db);
    let team = team(&state, "t").await;
    let (outsider, _) = solo(&state, "outsider").await;
    let token = api_token(&state, &team.admin, team.org, "ci", "developer").await;
    let body = json!({"url": "https://hooks.example.com/x"});
    for who in [&team.developer, &team.viewer, &token] {
        assert_problem(
            &post(&state, who, &hooks_path(team.org), body.clone()).await,
            403,
        );
        assert_problem(&get(&state, who, &hooks_path(team.org)).await, 403);
    }
    assert_problem(
        &post(&state, &outsider, &hooks_path(team.org), body).await,
        404,
    );
    assert_problem(&get(&state, &outsider, &hooks_path(team.org)).await, 404);
    assert_eq!(count(&state, "webhooks").await, 0);
}
