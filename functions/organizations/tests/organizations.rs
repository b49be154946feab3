use test_support::organizations as common;

use common::*;
use serde_json::json;
use shared::testing::{body_json, test_state, TestRequest};
use sqlx::PgPool;

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn creating_an_organization_makes_me_its_admin_with_an_invite_code(db: PgPool) {
    let state = test_state(db);
    let ada = user(&state, "ada").await;
    let response = post(
        &state,
        &ada,
        ORGS,
        json!({"name": "  Analytical Engines  "}),
    )
    .await;
    assert_eq!(response.status(), 201, "{}", body_json(&response));
    let org = body_json(&response);
    assert_eq!(
        keys(&org),
        ["created_at", "id", "invite_code", "name", "role"]
    );
    assert_eq!(org["name"], "Analytical Engines");
    assert_eq!(org["role"], "admin");
    let id = uuid::Uuid::parse_str(id_of(&org)).expect("a UUID id");
    chrono::DateTime::parse_from_rfc3339(org["created_at"].as_str().unwrap()).expect("RFC 3339");
    assert_eq!(
        response.headers()["location"],
        format!("{ORGS}/{id}").as_str()
    );

    // The invite code is real: it lets someone join as a developer.
    let bob = user(&state, "bob").await;
    let joined = join_ok(&state, &bob, org["invite_code"].as_str().unwrap()).await;
    assert_eq!(joined["organization"]["id"], org["id"]);
    assert_eq!(joined["role"], "developer");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn organization_names_must_have_1_to_100_characters(db: PgPool) {
    let state = test_state(db);
    let ada = user(&state, "ada").await;
    for name in [
        String::new(),
        "   ".to_string(),
        "x".repeat(101),
        "a\u{0}b".to_string(),
    ] {
        let response = post(&state, &ada, ORGS, json!({"name": name})).await;
        assert_field_error(&response, "name");
    }
    assert_problem(&post(&state, &ada, ORGS, json!({})).await, 422);
    assert_problem(&post(&state, &ada, ORGS, json!({"name": 5})).await, 422);
    // Nothing was created by any of that.
    assert_eq!(body_json(&get(&state, &ada, ORGS).await), json!([]));
    // 100 characters (not bytes) are fine.
    let longest = "é".repeat(100);
    assert_eq!(
        create_org(&state, &ada, &longest).await["name"],
        longest.as_str()
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn organizations_need_a_valid_token(db: PgPool) {
    let state = test_state(db);
    let ada = user(&state, "ada").await;
    let org = create_org(&state, &ada, "Analytical").await;
    let body = json!({"name": "Anonymous"}).to_string();
    let request = TestRequest::post(ORGS)
        .raw("application/json", body.clone())
        .build();
    assert_problem(&send(&state, request).await, 401);
    let request = TestRequest::post(ORGS)
        .header("authorization", "Bearer not-a-jwt")
        .raw("application/json", body)
        .build();
    assert_problem(&send(&state, request).await, 401);
    for path in [
        ORGS.to_string(),
        format!("{ORGS}/{}", id_of(&org)),
        format!("{ORGS}/{}/members", id_of(&org)),
    ] {
        assert_problem(&send(&state, TestRequest::get(&path).build()).await, 401);
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn list_shows_only_my_organizations_with_my_role(db: PgPool) {
    let state = test_state(db);
    let (ada, bob, carol) = (
        user(&state, "ada").await,
        user(&state, "bob").await,
        user(&state, "carol").await,
    );
    let analytical = create_org(&state, &ada, "Analytical").await;
    let babbage = create_org(&state, &bob, "Babbage").await;
    create_org(&state, &carol, "Carol's").await;
    join_ok(&state, &bob, analytical["invite_code"].as_str().unwrap()).await;

    let response = get(&state, &bob, ORGS).await;
    assert_eq!(response.status(), 200);
    let list = body_json(&response);
    let list = list.as_array().unwrap();
    let mut seen: Vec<(String, String)> = list
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap().to_string(),
                o["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        (id_of(&analytical).to_string(), "developer".to_string()),
        (id_of(&babbage).to_string(), "admin".to_string()),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    assert!(list
        .iter()
        .all(|o| o.get("invite_code").is_none() && o["name"].is_string()));

    let ada_list = body_json(&get(&state, &ada, ORGS).await);
    assert_eq!(ada_list.as_array().unwrap().len(), 1);
    assert_eq!(ada_list[0]["id"], analytical["id"]);
    assert_eq!(ada_list[0]["role"], "admin");

    let dave = user(&state, "dave").await;
    assert_eq!(body_json(&get(&state, &dave, ORGS).await), json!([]));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn members_can_get_the_organization(db: PgPool) {
    let state = test_state(db);
    let (ada, bob) = (user(&state, "ada").await, user(&state, "bob").await);
    let org = org_with(&state, &ada, &[(&bob, "viewer")]).await;
    for (who, role) in [(&ada, "admin"), (&bob, "viewer")] {
        let response = get(&state, who, &format!("{ORGS}/{}", id_of(&org))).await;
        assert_eq!(response.status(), 200, "{}", body_json(&response));
        let body = body_json(&response);
        assert_eq!(body["id"], org["id"]);
        assert_eq!(body["name"], org["name"]);
        assert_eq!(body["role"], role);
        assert!(body.get("invite_code").is_none());
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn getting_an_organization_i_cannot_see_is_404(db: PgPool) {
    let state = test_state(db);
    let (ada, eve) = (user(&state, "ada").await, user(&state, "eve").await);
    let org = create_org(&state, &ada, "Analytical").await;
    let not_mine = assert_problem(
        &get(&state, &eve, &format!("{ORGS}/{}", id_of(&org))).await,
        404,
    );
    let random = assert_problem(
        &get(&state, &eve, &format!("{ORGS}/{}", uuid::Uuid::new_v4())).await,
        404,
    );
    // Indistinguishable: nobody learns which organizations exist.
    assert_eq!(not_mine, random);
    assert_problem(
        &get(&state, &ada, &format!("{ORGS}/{}", uuid::Uuid::new_v4())).await,
        404,
    );
    assert_problem(&get(&state, &ada, &format!("{ORGS}/not-a-uuid")).await, 404);
    assert_problem(
        &get(&state, &ada, &format!("{ORGS}/{}x", id_of(&org))).await,
        404,
    );
    assert_problem(
        &get(&state, &ada, &format!("{ORGS}/{}/nonsense", id_of(&org))).await,
        404,
    );
}
