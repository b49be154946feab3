use test_support::organizations as common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use serde_json::{json, Value};
use shared::testing::{body_json, test_state, TestRequest};
use sqlx::PgPool;

fn invites_path(org: &Value) -> String {
    format!("{ORGS}/{}/invites", id_of(org))
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a time"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

fn assert_close(actual: DateTime<Utc>, expected: DateTime<Utc>) {
    assert!(
        (actual - expected).num_seconds().abs() <= 60,
        "{actual} is not about {expected}"
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn admin_creates_an_invite_with_role_expiry_and_max_uses(db: PgPool) {
    let state = test_state(db);
    let ada = user(&state, "ada").await;
    let org = create_org(&state, &ada, "Analytical").await;
    let response = create_invite(
        &state,
        &ada,
        &org,
        json!({"role": "viewer", "expires_in_hours": 2, "max_uses": 5}),
    )
    .await;
    assert_eq!(response.status(), 201, "{}", body_json(&response));
    let inv = body_json(&response);
    assert_eq!(keys(&inv), ["code", "expires_at", "id", "max_uses", "role"]);
    uuid::Uuid::parse_str(id_of(&inv)).expect("a UUID id");
    assert!(code_of(&inv).len() >= 22, "at least 128 random bits");
    assert_eq!(inv["role"], "viewer");
    assert_eq!(inv["max_uses"], 5);
    assert_close(time(&inv["expires_at"]), Utc::now() + Duration::hours(2));

    // It works as announced.
    let bob = user(&state, "bob").await;
    assert_eq!(join_ok(&state, &bob, code_of(&inv)).await["role"], "viewer");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn invite_defaults_are_developer_for_a_week_without_a_use_limit(db: PgPool) {
    let state = test_state(db);
    let ada = user(&state, "ada").await;
    let org = create_org(&state, &ada, "Analytical").await;
    let inv = invite(&state, &ada, &org, json!({})).await;
    assert_eq!(inv["role"], "developer");
    assert_eq!(inv["max_uses"], Value::Null);
    assert_close(time(&inv["expires_at"]), Utc::now() + Duration::hours(168));
    let other = invite(&state, &ada, &org, json!({})).await;
    assert_ne!(inv["code"], other["code"]);
    assert_ne!(inv["id"], other["id"]);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn only_admins_manage_invites(db: PgPool) {
    let state = test_state(db);
    let (ada, dev, viewer) = (
        user(&state, "ada").await,
        user(&state, "dev").await,
        user(&state, "viewer").await,
    );
    let org = org_with(&state, &ada, &[(&dev, "developer"), (&viewer, "viewer")]).await;
    let inv = invite(&state, &ada, &org, json!({})).await;
    for who in [&dev, &viewer] {
        assert_problem(
            &create_invite(&state, who, &org, json!({"role": "viewer"})).await,
            403,
        );
        assert_problem(&get(&state, who, &invites_path(&org)).await, 403);
        let response = delete(
            &state,
            who,
            &format!("{}/{}", invites_path(&org), id_of(&inv)),
        )
        .await;
        assert_problem(&response, 403);
    }
    // The developer could not escalate themselves through an admin invite either.
    assert_problem(
        &create_invite(&state, &dev, &org, json!({"role": "admin"})).await,
        403,
    );
    // The invite is untouched.
    let eve = user(&state, "eve").await;
    join_ok(&state, &eve, code_of(&inv)).await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn non_members_get_404_for_invites(db: PgPool) {
    let state = test_state(db);
    let (ada, eve) = (user(&state, "ada").await, user(&state, "eve").await);
    let org = create_org(&state, &ada, "Analytical").await;
    create_org(&state, &eve, "Eve's").await;
    let inv = invite(&state, &ada, &org, json!({})).await;
    assert_problem(&create_invite(&state, &eve, &org, json!({})).await, 404);
    assert_problem(&get(&state, &eve, &invites_path(&org)).await, 404);
    let response = delete(
        &state,
        &eve,
        &format!("{}/{}", invites_path(&org), id_of(&inv)),
    )
    .await;
    assert_problem(&response, 404);
    let random = json!({"id": uuid::Uuid::new_v4()});
    assert_problem(&create_invite(&state, &ada, &random, json!({})).await, 404);
    // Still usable.
    let bob = user(&state, "bob").await;
    join_ok(&state, &bob, code_of(&inv)).await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn invalid_invite_settings_are_422(db: PgPool) {
    let state = test_state(db);
    let ada = user(&state, "ada").await;
    let org = create_org(&state, &ada, "Analytical").await;
    for (field, body) in [
        ("expires_in_hours", json!({"expires_in_hours": 0})),
        ("expires_in_hours", json!({"expires_in_hours": -1})),
        (
            "expires_in_hours",
            json!({"expires_in_hours": 24 * 365 + 1}),
        ),
        ("expires_in_hours", json!({"expires_in_hours": "soon"})),
        ("expires_in_hours", json!({"expires_in_hours": 1.5})),
        ("max_uses", json!({"max_uses": 0})),
        ("max_uses", json!({"max_uses": -3})),
        ("max_uses", json!({"max_uses": 100_001})),
        ("role", json!({"role": "owner"})),
        ("role", json!({"role": "Admin"})),
        ("role", json!({"role": 1})),
    ] {
        assert_field_error(&create_invite(&state, &ada, &org, body).await, field);
    }
    let both = assert_problem(
        &create_invite(
            &state,
            &ada,
            &org,
            json!({"expires_in_hours": 0, "max_uses": 0}),
        )
        .await,
        422,
    );
    assert_eq!(both["errors"].as_array().unwrap().len(), 2, "{both}");
    // The limits themselves are accepted.
    invite(
        &state,
        &ada,
        &org,
        json!({"expires_in_hours": 24 * 365, "max_uses": 100_000}),
    )
    .await;
    invite(
        &state,
        &ada,
        &org,
        json!({"expires_in_hours": 1, "max_uses": 1}),
    )
    .await;
    // Only the default invite and those two exist.
    assert_eq!(
        body_json(&get(&state, &ada, &invites_path(&org)).await)
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn invite_list_never_shows_codes(db: PgPool) {
    let state = test_state(db);
    let ada = user(&state, "ada").await;
    let org = create_org(&state, &ada, "Analytical").await;
    let inv = invite(&state, &ada, &org, json!({"role": "viewer", "max_uses": 3})).await;
    let response = get(&state, &ada, &invites_path(&org)).await;
    assert_eq!(response.status(), 200);
    let list = body_json(&response);
    let text = list.to_string();
    assert!(!text.contains(code_of(&inv)));
    assert!(!text.contains(org["invite_code"].as_str().unwrap()));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "the default invite and the new one");
    for item in list {
        assert!(
            item.get("code").is_none() && item.get("code_hash").is_none(),
            "{item}"
        );
        assert!(item["id"].is_string() && item["role"].is_string(), "{item}");
    }
    let listed = list
        .iter()
        .find(|i| i["id"] == inv["id"])
        .expect("the new invite is listed");
    assert_eq!(listed["role"], "viewer");
    assert_eq!(listed["max_uses"], 3);
    assert_eq!(listed["uses"], 0);
    assert_eq!(listed["revoked"], false);
    assert_eq!(listed["expires_at"], inv["expires_at"]);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn revoking_an_invite_stops_its_code(db: PgPool) {
    let state = test_state(db);
    let (ada, bob) = (user(&state, "ada").await, user(&state, "bob").await);
    let org = create_org(&state, &ada, "Analytical").await;
    let inv = invite(&state, &ada, &org, json!({})).await;
    let path = format!("{}/{}", invites_path(&org), id_of(&inv));
    let response = delete(&state, &ada, &path).await;
    assert_eq!(response.status(), 204);
    assert_eq!(body_json(&response), Value::Null);
    assert_problem(&join(&state, &bob, code_of(&inv)).await, 404);
    let list = body_json(&get(&state, &ada, &invites_path(&org)).await);
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == inv["id"])
        .cloned()
        .unwrap();
    assert_eq!(listed["revoked"], true);
    // Revoking again changes nothing and is still fine; other codes keep working.
    assert_eq!(delete(&state, &ada, &path).await.status(), 204);
    join_ok(&state, &bob, org["invite_code"].as_str().unwrap()).await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn revoking_another_organizations_invite_through_my_organization_is_404(db: PgPool) {
    let state = test_state(db);
    let (ada, bob, carol) = (
        user(&state, "ada").await,
        user(&state, "bob").await,
        user(&state, "carol").await,
    );
    let mine = create_org(&state, &ada, "Analytical").await;
    let theirs = create_org(&state, &bob, "Babbage").await;
    let their_invite = invite(&state, &bob, &theirs, json!({})).await;
    let response = delete(
        &state,
        &ada,
        &format!("{}/{}", invites_path(&mine), id_of(&their_invite)),
    )
    .await;
    assert_problem(&response, 404);
    let response = delete(
        &state,
        &ada,
        &format!("{}/{}", invites_path(&mine), uuid::Uuid::new_v4()),
    )
    .await;
    assert_problem(&response, 404);
    let response = delete(&state, &ada, &format!("{}/not-a-uuid", invites_path(&mine))).await;
    assert_problem(&response, 404);
    // Their invite still works.
    let joined = join_ok(&state, &carol, code_of(&their_invite)).await;
    assert_eq!(joined["organization"]["id"], theirs["id"]);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn invites_need_a_token(db: PgPool) {
    let state = test_state(db);
    let ada = user(&state, "ada").await;
    let org = create_org(&state, &ada, "Analytical").await;
    let request = TestRequest::post(&invites_path(&org))
        .json(json!({}))
        .build();
    assert_problem(&send(&state, request).await, 401);
    assert_problem(
        &send(&state, TestRequest::get(&invites_path(&org)).build()).await,
        401,
    );
}
