use test_support::organizations as common;

use common::*;
use serde_json::{json, Value};
use shared::testing::{body_json, test_state};
use shared::AppState;
use sqlx::PgPool;

fn members_path(org: &Value) -> String {
    format!("{ORGS}/{}/members", id_of(org))
}

/// The members as (username, role), in the order listed.
async fn roster(state: &AppState, who: &User, org: &Value) -> Vec<(String, String)> {
    let response = get(state, who, &members_path(org)).await;
    assert_eq!(response.status(), 200, "{}", body_json(&response));
    body_json(&response)
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap().to_string(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn members_list_has_user_role_and_join_time(db: PgPool) {
    let state = test_state(db);
    let (ada, bob, carol) = (
        user(&state, "ada").await,
        user(&state, "bob").await,
        user(&state, "carol").await,
    );
    let org = org_with(&state, &ada, &[(&bob, "developer"), (&carol, "viewer")]).await;
    create_org(&state, &user(&state, "eve").await, "Elsewhere").await;

    let response = get(&state, &carol, &members_path(&org)).await;
    assert_eq!(response.status(), 200);
    let list = body_json(&response);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    for member in list {
        assert_eq!(keys(member), ["joined_at", "role", "user_id", "username"]);
        chrono::DateTime::parse_from_rfc3339(member["joined_at"].as_str().unwrap())
            .expect("RFC 3339");
        assert!(member.get("email").is_none() && member.get("password_hash").is_none());
    }
    let ada_entry = list.iter().find(|m| m["username"] == "ada").unwrap();
    assert_eq!(ada_entry["user_id"], ada.id.to_string());
    assert_eq!(ada_entry["role"], "admin");
    let mut got = roster(&state, &ada, &org).await;
    got.sort();
    assert_eq!(
        got,
        pairs(&[("ada", "admin"), ("bob", "developer"), ("carol", "viewer")])
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn admin_demotes_a_developer_to_viewer_who_then_cannot_invite(db: PgPool) {
    let state = test_state(db);
    let (ada, bob) = (user(&state, "ada").await, user(&state, "bob").await);
    let org = org_with(&state, &ada, &[(&bob, "developer")]).await;
    let response = patch(
        &state,
        &ada,
        &member_path(&org, &bob),
        json!({"role": "viewer"}),
    )
    .await;
    assert_eq!(response.status(), 200, "{}", body_json(&response));
    let member = body_json(&response);
    assert_eq!(member["user_id"], bob.id.to_string());
    assert_eq!(member["username"], "bob");
    assert_eq!(member["role"], "viewer");

    assert_problem(&create_invite(&state, &bob, &org, json!({})).await, 403);
    // A viewer still reads.
    assert_eq!(get(&state, &bob, &members_path(&org)).await.status(), 200);
    let body = body_json(&get(&state, &bob, &format!("{ORGS}/{}", id_of(&org))).await);
    assert_eq!(body["role"], "viewer");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn promoted_member_can_administer(db: PgPool) {
    let state = test_state(db);
    let (ada, bob) = (user(&state, "ada").await, user(&state, "bob").await);
    let org = org_with(&state, &ada, &[(&bob, "viewer")]).await;
    assert_problem(&create_invite(&state, &bob, &org, json!({})).await, 403);
    let response = patch(
        &state,
        &ada,
        &member_path(&org, &bob),
        json!({"role": "admin"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        create_invite(&state, &bob, &org, json!({})).await.status(),
        201
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn non_admins_cannot_change_roles(db: PgPool) {
    let state = test_state(db);
    let (ada, bob, carol) = (
        user(&state, "ada").await,
        user(&state, "bob").await,
        user(&state, "carol").await,
    );
    let org = org_with(&state, &ada, &[(&bob, "developer"), (&carol, "viewer")]).await;
    assert_problem(
        &patch(
            &state,
            &bob,
            &member_path(&org, &bob),
            json!({"role": "admin"}),
        )
        .await,
        403,
    );
    assert_problem(
        &patch(
            &state,
            &bob,
            &member_path(&org, &carol),
            json!({"role": "developer"}),
        )
        .await,
        403,
    );
    assert_problem(
        &patch(
            &state,
            &carol,
            &member_path(&org, &carol),
            json!({"role": "admin"}),
        )
        .await,
        403,
    );
    assert_problem(
        &patch(
            &state,
            &bob,
            &member_path(&org, &ada),
            json!({"role": "viewer"}),
        )
        .await,
        403,
    );
    let mut got = roster(&state, &ada, &org).await;
    got.sort();
    assert_eq!(
        got,
        pairs(&[("ada", "admin"), ("bob", "developer"), ("carol", "viewer")])
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn changing_to_an_unknown_role_is_422(db: PgPool) {
    let state = test_state(db);
    let (ada, bob) = (user(&state, "ada").await, user(&state, "bob").await);
    let org = org_with(&state, &ada, &[(&bob, "developer")]).await;
    for body in [json!({"role": "owner"}), json!({}), json!({"role": null})] {
        assert_problem(
            &patch(&state, &ada, &member_path(&org, &bob), body).await,
            422,
        );
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn the_only_admin_cannot_demote_themselves(db: PgPool) {
    let state = test_state(db);
    let (ada, bob) = (user(&state, "ada").await, user(&state, "bob").await);
    let org = org_with(&state, &ada, &[(&bob, "developer")]).await;
    for role in ["developer", "viewer"] {
        assert_problem(
            &patch(
                &state,
                &ada,
                &member_path(&org, &ada),
                json!({"role": role}),
            )
            .await,
            409,
        );
    }
    // Staying admin is not a demotion.
    assert_eq!(
        patch(
            &state,
            &ada,
            &member_path(&org, &ada),
            json!({"role": "admin"})
        )
        .await
        .status(),
        200
    );
    let mut got = roster(&state, &ada, &org).await;
    got.sort();
    assert_eq!(got, pairs(&[("ada", "admin"), ("bob", "developer")]));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn the_only_admin_cannot_leave(db: PgPool) {
    let state = test_state(db);
    let (ada, bob) = (user(&state, "ada").await, user(&state, "bob").await);
    let org = org_with(&state, &ada, &[(&bob, "developer")]).await;
    assert_problem(&delete(&state, &ada, &member_path(&org, &ada)).await, 409);
    // Alone, too.
    let solo = create_org(&state, &bob, "Solo").await;
    assert_problem(&delete(&state, &bob, &member_path(&solo, &bob)).await, 409);
    assert_eq!(
        get(&state, &ada, &format!("{ORGS}/{}", id_of(&org)))
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&state, &bob, &format!("{ORGS}/{}", id_of(&solo)))
            .await
            .status(),
        200
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn with_two_admins_one_can_leave_or_be_demoted(db: PgPool) {
    let state = test_state(db);
    let (ada, bob, carol) = (
        user(&state, "ada").await,
        user(&state, "bob").await,
        user(&state, "carol").await,
    );
    let org = org_with(&state, &ada, &[(&bob, "admin"), (&carol, "admin")]).await;
    // Three admins: demoting one is fine.
    let response = patch(
        &state,
        &bob,
        &member_path(&org, &carol),
        json!({"role": "developer"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    // Two admins: one may leave.
    let response = delete(&state, &ada, &member_path(&org, &ada)).await;
    assert_eq!(response.status(), 204);
    assert_eq!(body_json(&response), Value::Null);
    assert_problem(
        &get(&state, &ada, &format!("{ORGS}/{}", id_of(&org))).await,
        404,
    );
    let mut got = roster(&state, &bob, &org).await;
    got.sort();
    assert_eq!(got, pairs(&[("bob", "admin"), ("carol", "developer")]));
    // Now bob is the last admin.
    assert_problem(&delete(&state, &bob, &member_path(&org, &bob)).await, 409);
    assert_problem(
        &patch(
            &state,
            &bob,
            &member_path(&org, &bob),
            json!({"role": "viewer"}),
        )
        .await,
        409,
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn an_admin_can_remove_another_admin_but_not_the_last_one(db: PgPool) {
    let state = test_state(db);
    let (ada, bob) = (user(&state, "ada").await, user(&state, "bob").await);
    let org = org_with(&state, &ada, &[(&bob, "admin")]).await;
    assert_eq!(
        delete(&state, &ada, &member_path(&org, &bob))
            .await
            .status(),
        204
    );
    assert_problem(&get(&state, &bob, &members_path(&org)).await, 404);
    assert_problem(&delete(&state, &ada, &member_path(&org, &ada)).await, 409);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_developer_cannot_remove_others_but_can_leave(db: PgPool) {
    let state = test_state(db);
    let (ada, bob, carol) = (
        user(&state, "ada").await,
        user(&state, "bob").await,
        user(&state, "carol").await,
    );
    let org = org_with(&state, &ada, &[(&bob, "developer"), (&carol, "viewer")]).await;
    assert_problem(&delete(&state, &bob, &member_path(&org, &carol)).await, 403);
    assert_problem(&delete(&state, &bob, &member_path(&org, &ada)).await, 403);
    assert_problem(&delete(&state, &carol, &member_path(&org, &bob)).await, 403);
    assert_eq!(roster(&state, &ada, &org).await.len(), 3);

    let response = delete(&state, &bob, &member_path(&org, &bob)).await;
    assert_eq!(response.status(), 204);
    assert_problem(
        &get(&state, &bob, &format!("{ORGS}/{}", id_of(&org))).await,
        404,
    );
    assert_eq!(body_json(&get(&state, &bob, ORGS).await), json!([]));
    let mut got = roster(&state, &ada, &org).await;
    got.sort();
    assert_eq!(got, pairs(&[("ada", "admin"), ("carol", "viewer")]));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn an_admin_removes_a_member_who_then_loses_access(db: PgPool) {
    let state = test_state(db);
    let (ada, bob) = (user(&state, "ada").await, user(&state, "bob").await);
    let org = org_with(&state, &ada, &[(&bob, "developer")]).await;
    assert_eq!(
        delete(&state, &ada, &member_path(&org, &bob))
            .await
            .status(),
        204
    );
    assert_problem(&get(&state, &bob, &members_path(&org)).await, 404);
    assert_problem(&delete(&state, &ada, &member_path(&org, &bob)).await, 404);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn removing_or_changing_a_non_member_is_404(db: PgPool) {
    let state = test_state(db);
    let (ada, stranger) = (user(&state, "ada").await, user(&state, "stranger").await);
    let org = create_org(&state, &ada, "Analytical").await;
    let ghost = format!("{}/{}", members_path(&org), uuid::Uuid::new_v4());
    assert_problem(&delete(&state, &ada, &ghost).await, 404);
    assert_problem(
        &patch(&state, &ada, &ghost, json!({"role": "viewer"})).await,
        404,
    );
    assert_problem(
        &delete(&state, &ada, &member_path(&org, &stranger)).await,
        404,
    );
    assert_problem(
        &patch(
            &state,
            &ada,
            &member_path(&org, &stranger),
            json!({"role": "admin"}),
        )
        .await,
        404,
    );
    assert_problem(
        &delete(&state, &ada, &format!("{}/not-a-uuid", members_path(&org))).await,
        404,
    );
    // A stranger "leaving" an organization they are not in.
    assert_problem(
        &delete(&state, &stranger, &member_path(&org, &stranger)).await,
        404,
    );
    // The stranger did not become a member by being promoted.
    assert_eq!(roster(&state, &ada, &org).await, pairs(&[("ada", "admin")]));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn another_organizations_members_are_404(db: PgPool) {
    let state = test_state(db);
    let (ada, bob, eve) = (
        user(&state, "ada").await,
        user(&state, "bob").await,
        user(&state, "eve").await,
    );
    let org = org_with(&state, &ada, &[(&bob, "developer")]).await;
    let evil = create_org(&state, &eve, "Evil").await;

    // Eve, not a member, cannot see or touch the organization's members.
    assert_problem(&get(&state, &eve, &members_path(&org)).await, 404);
    assert_problem(
        &patch(
            &state,
            &eve,
            &member_path(&org, &bob),
            json!({"role": "viewer"}),
        )
        .await,
        404,
    );
    assert_problem(
        &patch(
            &state,
            &eve,
            &member_path(&org, &eve),
            json!({"role": "admin"}),
        )
        .await,
        404,
    );
    assert_problem(&delete(&state, &eve, &member_path(&org, &bob)).await, 404);
    assert_problem(&delete(&state, &eve, &member_path(&org, &ada)).await, 404);
    // Nor can she reach them through her own organization.
    assert_problem(&delete(&state, &eve, &member_path(&evil, &bob)).await, 404);
    assert_problem(
        &patch(
            &state,
            &eve,
            &member_path(&evil, &ada),
            json!({"role": "viewer"}),
        )
        .await,
        404,
    );

    let mut got = roster(&state, &ada, &org).await;
    got.sort();
    assert_eq!(got, pairs(&[("ada", "admin"), ("bob", "developer")]));
    assert_eq!(
        roster(&state, &eve, &evil).await,
        pairs(&[("eve", "admin")])
    );
}
