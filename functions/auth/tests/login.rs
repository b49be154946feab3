use test_support::auth as common;

use common::{
    access_token, assert_field_error, assert_problem, login, me, register, send, try_login,
    try_register, PASSWORD,
};
use serde_json::json;
use shared::testing::{body_json, test_state, TestRequest};
use sqlx::PgPool;

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// application/x-www-form-urlencoded encoding of one key or value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

async fn form_login(state: &shared::AppState, body: String) -> shared::testing::Response {
    let request = TestRequest::post("/api/v1/auth/login")
        .raw("application/x-www-form-urlencoded", body)
        .build();
    send(state, request).await
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn login_with_username_returns_a_bearer_token_pair(db: PgPool) {
    let state = test_state(db);
    let user = register(&state, "ada").await;
    let response = try_login(&state, "ada", PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let tokens = body_json(&response);
    let mut keys: Vec<&str> = tokens
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["access_token", "expires_in", "refresh_token", "token_type"]
    );
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], state.config.access_token_ttl_seconds);
    assert_eq!(access_token(&tokens).split('.').count(), 3, "a JWT");
    assert!(common::refresh_token(&tokens).len() >= 32);
    assert_ne!(tokens["access_token"], tokens["refresh_token"]);

    let response = me(&state, access_token(&tokens)).await;
    assert_eq!(response.status(), 200);
    let me = body_json(&response);
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["username"], "ada");
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["organizations"], json!([]));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn login_with_email_or_username_in_any_case_works(db: PgPool) {
    let state = test_state(db);
    let user = register(&state, "Ada").await;
    for login in ["Ada@example.com", "ADA@EXAMPLE.COM", "ada", "  ada  "] {
        let response = try_login(&state, login, PASSWORD).await;
        assert_eq!(response.status(), 200, "{login}: {}", body_json(&response));
        let response = me(&state, access_token(&body_json(&response))).await;
        assert_eq!(body_json(&response)["id"], user["id"]);
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn login_with_the_oauth2_password_form_works(db: PgPool) {
    let state = test_state(db);
    // A password that only survives if the form is decoded properly.
    let password = "p&ss w+rd=100%?";
    let response = try_register(
        &state,
        json!({"username": "ada", "email": "ada@example.com", "password": password}),
    )
    .await;
    assert_eq!(response.status(), 201, "{}", body_json(&response));
    let user = body_json(&response);

    let body = form(&[
        ("grant_type", "password"),
        ("username", "ada"),
        ("password", password),
    ]);
    let response = form_login(&state, body).await;
    assert_eq!(response.status(), 200, "{}", body_json(&response));
    let tokens = body_json(&response);
    assert_eq!(tokens["token_type"], "bearer");
    let response = me(&state, access_token(&tokens)).await;
    assert_eq!(body_json(&response)["id"], user["id"]);

    // Same form, wrong password: refused.
    let body = form(&[
        ("grant_type", "password"),
        ("username", "ada"),
        ("password", "p&ss w+rd=100%"),
    ]);
    assert_problem(&form_login(&state, body).await, 401);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn unknown_user_and_wrong_password_are_indistinguishable(db: PgPool) {
    let state = test_state(db);
    register(&state, "ada").await;
    let wrong_password = try_login(&state, "ada", "Not-The-Password-1").await;
    let unknown_user = try_login(&state, "nobody", PASSWORD).await;
    let unknown_email = try_login(&state, "nobody@example.com", PASSWORD).await;
    let wrong = assert_problem(&wrong_password, 401);
    assert_eq!(assert_problem(&unknown_user, 401), wrong);
    assert_eq!(assert_problem(&unknown_email, 401), wrong);
    assert!(!wrong.to_string().contains("ada"));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn login_without_username_or_password_is_422(db: PgPool) {
    let state = test_state(db);
    register(&state, "ada").await;
    for body in [
        json!({"username": "ada"}),
        json!({"password": PASSWORD}),
        json!({}),
    ] {
        let request = TestRequest::post("/api/v1/auth/login").json(body).build();
        assert_problem(&send(&state, request).await, 422);
    }
    let response = form_login(
        &state,
        form(&[("grant_type", "password"), ("username", "ada")]),
    )
    .await;
    assert_problem(&response, 422);
    let response = send(&state, TestRequest::post("/api/v1/auth/login").build()).await;
    assert_field_error(&response, "body");
    let request = TestRequest::post("/api/v1/auth/login")
        .json(json!({"username": "ada", "password": 12345678}))
        .build();
    assert_field_error(&send(&state, request).await, "password");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn login_with_a_text_plain_body_is_415(db: PgPool) {
    let state = test_state(db);
    register(&state, "ada").await;
    let body = json!({"username": "ada", "password": PASSWORD}).to_string();
    let request = TestRequest::post("/api/v1/auth/login")
        .raw("text/plain", body)
        .build();
    assert_problem(&send(&state, request).await, 415);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn each_login_starts_a_distinct_session(db: PgPool) {
    let state = test_state(db);
    register(&state, "ada").await;
    let first = login(&state, "ada").await;
    let second = login(&state, "ada").await;
    assert_ne!(first["access_token"], second["access_token"]);
    assert_ne!(first["refresh_token"], second["refresh_token"]);
}
