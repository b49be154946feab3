//! Membership races, for real: each request on its own thread, runtime and pool (separate
//! Lambda instances), released together by a barrier.

use test_support::organizations as common;

use common::*;
use serde_json::json;
use shared::testing::{body_json, test_state, TestRequest};
use sqlx::PgPool;

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn of_four_concurrent_joins_on_a_single_use_invite_exactly_one_succeeds(db: PgPool) {
    let state = test_state(db.clone());
    let ada = user(&state, "ada").await;
    let org = create_org(&state, &ada, "Analytical").await;
    let code = code_of(&invite(&state, &ada, &org, json!({"max_uses": 1})).await).to_string();
    let mut tokens = Vec::new();
    for name in ["bob", "carol", "dan", "eve"] {
        tokens.push(user(&state, name).await.token);
    }
    let statuses = test_support::race::race(&db, 4, move |i, state| {
        let (token, code) = (tokens[i].clone(), code.clone());
        async move {
            let join = TestRequest::post(&format!("{ORGS}/join"))
                .bearer(&token)
                .json(json!({"invite_code": code}))
                .build();
            send(&state, join).await.status().as_u16()
        }
    })
    .await;
    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [200, 404, 404, 404], "{statuses:?}");
    let members = body_json(&get(&state, &ada, &format!("{ORGS}/{}/members", id_of(&org))).await);
    assert_eq!(members.as_array().unwrap().len(), 2, "{members}");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn two_admins_demoting_each_other_at_once_leave_one_admin(db: PgPool) {
    let state = test_state(db.clone());
    for round in 0..8 {
        let ada = user(&state, &format!("ada{round}")).await;
        let bob = user(&state, &format!("bob{round}")).await;
        let org = org_with(&state, &ada, &[(&bob, "admin")]).await;
        // Each demotes the other, or (odd rounds) each leaves: the last-admin rule must hold.
        let requests = [
            (ada.token.clone(), member_path(&org, &bob)),
            (bob.token.clone(), member_path(&org, &ada)),
        ];
        let leave = round % 2 == 1;
        let statuses = test_support::race::race(&db, 2, move |i, state| {
            let (token, path) = requests[i].clone();
            async move {
                let request = if leave {
                    TestRequest::delete(&path).bearer(&token).build()
                } else {
                    TestRequest::patch(&path)
                        .bearer(&token)
                        .json(json!({"role": "developer"}))
                        .build()
                };
                send(&state, request).await.status().as_u16()
            }
        })
        .await;
        let mut sorted = statuses.clone();
        sorted.sort_unstable();
        let ok = if leave { 204 } else { 200 };
        // One wins; the other is then refused as the last admin (409), or, if it was
        // removed first, no longer an admin at all (403/404).
        assert_eq!(sorted[0], ok, "{statuses:?}");
        assert!(matches!(sorted[1], 403 | 404 | 409), "{statuses:?}");
        let admins: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM memberships WHERE organization_id = $1::uuid AND role = 'admin'",
        )
        .bind(id_of(&org))
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(admins, 1, "round {round}: {statuses:?}");
    }
}
