//! Submission races, for real: each request on its own thread, runtime and pool (separate
//! Lambda instances), released together by a barrier.

use test_support::clusters_and_deployments as common;

use common::*;
use shared::testing::{body_json, test_state, TestRequest};
use sqlx::PgPool;

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn concurrent_submits_with_one_idempotency_key_make_one_deployment(db: PgPool) {
    let state = test_state(db.clone());
    let (admin, org) = solo(&state, "ada").await;
    let cluster = uuid_of(&create_cluster(&state, &admin, org, "gpu-a", 8.0, 32.0, 1).await["id"]);
    let body = deployment(Some(cluster), "train", 1.0, 2.0, 0);
    let token = admin.token.clone();
    let answers = test_support::race::race(&db, 4, move |_, state| {
        let (token, body) = (token.clone(), body.clone());
        async move {
            let submit = TestRequest::post(DEPLOYMENTS)
                .bearer(&token)
                .header("idempotency-key", "retry-42")
                .json(body)
                .build();
            let response = send(&state, submit).await;
            (
                response.status().as_u16(),
                body_json(&response)["id"].clone(),
            )
        }
    })
    .await;
    assert!(
        answers.iter().all(|(status, _)| *status == 202),
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|(_, id)| *id == answers[0].1),
        "{answers:?}"
    );
    assert_eq!(count(&state, "deployments").await, 1);
}
