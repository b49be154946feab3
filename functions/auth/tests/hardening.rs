//! Edge cases found in review: body shapes, header spelling, logout after rotation.

use test_support::auth as common;

use common::*;
use serde_json::json;
use shared::testing::{test_state, TestRequest};
use sqlx::PgPool;

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_json_array_is_not_a_registration(db: PgPool) {
    let state = test_state(db);
    let response = send(
        &state,
        TestRequest::post("/api/v1/auth/register")
            .raw(
                "application/json",
                r#"["ada","ada@example.com","Analytical-Engine-1"]"#,
            )
            .build(),
    )
    .await;
    assert_field_error(&response, "body");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&state.db)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_missing_field_is_named_as_the_field(db: PgPool) {
    let state = test_state(db);
    let response = try_register(
        &state,
        json!({"username": "ada", "password": "Analytical-Engine-1"}),
    )
    .await;
    assert_field_error(&response, "email");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn the_bearer_scheme_is_case_insensitive(db: PgPool) {
    let state = test_state(db);
    register(&state, "ada").await;
    let tokens = login(&state, "ada").await;
    let request = TestRequest::get("/api/v1/auth/me")
        .header(
            "authorization",
            &format!("BEARER {}", access_token(&tokens)),
        )
        .build();
    assert_eq!(send(&state, request).await.status(), 200);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn logging_out_with_a_rotated_token_ends_the_session(db: PgPool) {
    let state = test_state(db);
    register(&state, "ada").await;
    let first = login(&state, "ada").await;
    let rotated = refresh(&state, refresh_token(&first)).await;
    assert_eq!(rotated.status(), 200);
    let newest = shared::testing::body_json(&rotated);
    assert_problem(&logout(&state, refresh_token(&first)).await, 401);
    assert_problem(&refresh(&state, refresh_token(&newest)).await, 401);
}

/// While the database cannot be reached, requests fail fast and cleanly: a 503 problem with
/// Retry-After, never a hang and never a 500.
#[tokio::test]
async fn an_unreachable_database_is_a_503_problem_not_a_hang() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("postgres://postgres@{}/gone", closed.local_addr().unwrap());
    drop(closed); // nothing listens there now: connections are refused
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_lazy(&url)
        .unwrap();
    let state = shared::AppState::new(pool, shared::testing::test_config(), None);
    let token = shared::auth::jwt::issue_access_token(&state.config, uuid::Uuid::now_v7()).unwrap();
    let started = std::time::Instant::now();
    let response = common::me(&state, &token).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let body = common::assert_problem(&response, 503);
    assert_eq!(response.headers()["retry-after"], "2");
    assert!(!body["detail"].as_str().unwrap().contains("gone"), "{body}");
}
