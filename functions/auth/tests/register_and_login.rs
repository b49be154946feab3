use serde_json::json;
use shared::testing::{body_json, test_state, TestRequest};
use sqlx::PgPool;

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn registered_user_can_log_in_and_see_themselves(db: PgPool) {
    let state = test_state(db);
    let response = test_support::api::send(
        &state,
        TestRequest::post("/api/v1/auth/register")
            .json(json!({"username": "ada", "email": "ada@example.com", "password": "Analytical-Engine-1"}))
            .build(),
    )
    .await;
    assert_eq!(response.status(), 201);
    let user = body_json(&response);
    assert_eq!(user["username"], "ada");

    let response = test_support::api::send(
        &state,
        TestRequest::post("/api/v1/auth/login")
            .json(json!({"username": "ada@example.com", "password": "Analytical-Engine-1"}))
            .build(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let tokens = body_json(&response);
    assert_eq!(tokens["token_type"], "bearer");

    let response = test_support::api::send(
        &state,
        TestRequest::get("/api/v1/auth/me")
            .bearer(tokens["access_token"].as_str().unwrap())
            .build(),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(body_json(&response)["id"], user["id"]);
}
