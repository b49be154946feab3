use test_support::organizations as common;

use common::*;
use serde_json::{json, Value};
use shared::testing::{body_json, test_state};
use shared::AppState;
use sqlx::PgPool;

async fn invites_of(state: &AppState, admin: &User, org: &Value) -> Vec<Value> {
    let response = get(state, admin, &format!("{ORGS}/{}/invites", id_of(org))).await;
    assert_eq!(response.status(), 200, "{}", body_json(&response));
    body_json(&response).as_array().unwrap().clone()
}

async fn uses_of(state: &AppState, admin: &User, org: &Value, invite: &Value) -> i64 {
    let all = invites_of(state, admin, org).await;
    let found = all
        .iter()
        .find(|i| i["id"] == invite["id"])
        .expect("the invite is listed");
    found["uses"].as_i64().unwrap()
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn joining_with_a_code_makes_me_a_developer(db: PgPool) {
    let state = test_state(db);
    let (ada, bob) = (user(&state, "ada").await, user(&state, "bob").await);
    let org = create_org(&state, &ada, "Analytical").await;
    let response = join(&state, &bob, org["invite_code"].as_str().unwrap()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        body_json(&response),
        json!({"organization": {"id": org["id"], "name": "Analytical"}, "role": "developer"})
    );
    let list = body_json(&get(&state, &bob, ORGS).await);
    assert_eq!(list[0]["id"], org["id"]);
    assert_eq!(list[0]["role"], "developer");
    // Surrounding whitespace from a copy-paste does not matter.
    let carol = user(&state, "carol").await;
    join_ok(
        &state,
        &carol,
        &format!("  {}\n", org["invite_code"].as_str().unwrap()),
    )
    .await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn joining_grants_the_role_of_the_invite(db: PgPool) {
    let state = test_state(db);
    let (ada, bob) = (user(&state, "ada").await, user(&state, "bob").await);
    let org = create_org(&state, &ada, "Analytical").await;
    let viewer_invite = invite(&state, &ada, &org, json!({"role": "viewer"})).await;
    let joined = join_ok(&state, &bob, code_of(&viewer_invite)).await;
    assert_eq!(joined["role"], "viewer");
    let body = body_json(&get(&state, &bob, &format!("{ORGS}/{}", id_of(&org))).await);
    assert_eq!(body["role"], "viewer");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn joining_when_already_a_member_is_409_and_spends_no_use(db: PgPool) {
    let state = test_state(db);
    let (ada, bob, carol) = (
        user(&state, "ada").await,
        user(&state, "bob").await,
        user(&state, "carol").await,
    );
    let org = create_org(&state, &ada, "Analytical").await;
    let single = invite(&state, &ada, &org, json!({"role": "viewer", "max_uses": 1})).await;

    // The admin tries their own single-use code: a conflict, and it does not demote them.
    assert_problem(&join(&state, &ada, code_of(&single)).await, 409);
    assert_eq!(uses_of(&state, &ada, &org, &single).await, 0);
    let body = body_json(&get(&state, &ada, &format!("{ORGS}/{}", id_of(&org))).await);
    assert_eq!(body["role"], "admin");

    // The use is still there for somebody new.
    join_ok(&state, &bob, code_of(&single)).await;
    assert_eq!(uses_of(&state, &ada, &org, &single).await, 1);

    // A member re-using the default code: 409, and the count does not move.
    join_ok(&state, &carol, org["invite_code"].as_str().unwrap()).await;
    let default_before = invites_of(&state, &ada, &org).await;
    assert_problem(
        &join(&state, &carol, org["invite_code"].as_str().unwrap()).await,
        409,
    );
    assert_eq!(invites_of(&state, &ada, &org).await, default_before);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn unknown_codes_are_404(db: PgPool) {
    let state = test_state(db);
    let (ada, bob) = (user(&state, "ada").await, user(&state, "bob").await);
    let org = create_org(&state, &ada, "Analytical").await;
    let real = org["invite_code"].as_str().unwrap();
    for code in ["nope", "", &real[..real.len() - 1], &real.to_uppercase()] {
        assert_problem(&join(&state, &bob, code).await, 404);
    }
    assert_eq!(body_json(&get(&state, &bob, ORGS).await), json!([]));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn joining_without_a_code_is_422(db: PgPool) {
    let state = test_state(db);
    let bob = user(&state, "bob").await;
    assert_problem(
        &post(&state, &bob, &format!("{ORGS}/join"), json!({})).await,
        422,
    );
    assert_problem(
        &post(
            &state,
            &bob,
            &format!("{ORGS}/join"),
            json!({"invite_code": 42}),
        )
        .await,
        422,
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn revoked_codes_are_404(db: PgPool) {
    let state = test_state(db);
    let (ada, bob) = (user(&state, "ada").await, user(&state, "bob").await);
    let org = create_org(&state, &ada, "Analytical").await;
    let inv = invite(&state, &ada, &org, json!({})).await;
    let response = delete(
        &state,
        &ada,
        &format!("{ORGS}/{}/invites/{}", id_of(&org), id_of(&inv)),
    )
    .await;
    assert_eq!(response.status(), 204);
    assert_problem(&join(&state, &bob, code_of(&inv)).await, 404);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn expired_codes_are_404(db: PgPool) {
    let state = test_state(db.clone());
    let (ada, bob) = (user(&state, "ada").await, user(&state, "bob").await);
    let org = create_org(&state, &ada, "Analytical").await;
    let inv = invite(&state, &ada, &org, json!({"expires_in_hours": 1})).await;
    let id = uuid::Uuid::parse_str(id_of(&inv)).unwrap();
    sqlx::query("UPDATE invite_codes SET expires_at = now() - interval '1 hour' WHERE id = $1")
        .bind(id)
        .execute(&db)
        .await
        .unwrap();
    let expired = assert_problem(&join(&state, &bob, code_of(&inv)).await, 404);
    // Same answer as for a code that never existed.
    assert_eq!(
        expired,
        assert_problem(&join(&state, &bob, "nope").await, 404)
    );
    assert_eq!(uses_of(&state, &ada, &org, &inv).await, 0);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn used_up_codes_are_404(db: PgPool) {
    let state = test_state(db);
    let (ada, bob, carol) = (
        user(&state, "ada").await,
        user(&state, "bob").await,
        user(&state, "carol").await,
    );
    let org = create_org(&state, &ada, "Analytical").await;
    let inv = invite(&state, &ada, &org, json!({"max_uses": 1})).await;
    join_ok(&state, &bob, code_of(&inv)).await;
    assert_problem(&join(&state, &carol, code_of(&inv)).await, 404);
    assert_eq!(body_json(&get(&state, &carol, ORGS).await), json!([]));
    assert_eq!(uses_of(&state, &ada, &org, &inv).await, 1);

    let twice = invite(&state, &ada, &org, json!({"max_uses": 2})).await;
    join_ok(&state, &carol, code_of(&twice)).await;
    let dave = user(&state, "dave").await;
    join_ok(&state, &dave, code_of(&twice)).await;
    let erin = user(&state, "erin").await;
    assert_problem(&join(&state, &erin, code_of(&twice)).await, 404);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_member_who_left_can_join_again(db: PgPool) {
    let state = test_state(db);
    let (ada, bob) = (user(&state, "ada").await, user(&state, "bob").await);
    let org = create_org(&state, &ada, "Analytical").await;
    join_ok(&state, &bob, org["invite_code"].as_str().unwrap()).await;
    assert_eq!(
        delete(&state, &bob, &member_path(&org, &bob))
            .await
            .status(),
        204
    );
    join_ok(&state, &bob, org["invite_code"].as_str().unwrap()).await;
}
