//! Helpers shared by the auth handler tests. Each test binary uses a different subset.
#![allow(dead_code)]

use serde_json::{json, Value};
use shared::config::Config;
use shared::http::{Request, Response};
use shared::testing::{body_json, test_config, TestRequest};
use shared::AppState;

pub const PASSWORD: &str = "Correct-Horse-9";

pub async fn send(state: &AppState, request: Request) -> Response {
    auth::handle(state, request).await
}

pub fn email_of(name: &str) -> String {
    format!("{name}@example.com")
}

pub async fn try_register(state: &AppState, body: Value) -> Response {
    send(
        state,
        TestRequest::post("/api/v1/auth/register")
            .json(body)
            .build(),
    )
    .await
}

/// Registers `name` (email `name@example.com`, password [`PASSWORD`]) and returns the user.
pub async fn register(state: &AppState, name: &str) -> Value {
    let response = try_register(
        state,
        json!({"username": name, "email": email_of(name), "password": PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), 201, "{}", body_json(&response));
    body_json(&response)
}

pub async fn try_login(state: &AppState, username: &str, password: &str) -> Response {
    let body = json!({"username": username, "password": password});
    send(
        state,
        TestRequest::post("/api/v1/auth/login").json(body).build(),
    )
    .await
}

/// Logs `name` in with [`PASSWORD`] and returns the token pair.
pub async fn login(state: &AppState, name: &str) -> Value {
    let response = try_login(state, name, PASSWORD).await;
    assert_eq!(response.status(), 200, "{}", body_json(&response));
    body_json(&response)
}

pub fn access_token(tokens: &Value) -> &str {
    tokens["access_token"].as_str().expect("an access token")
}

pub fn refresh_token(tokens: &Value) -> &str {
    tokens["refresh_token"].as_str().expect("a refresh token")
}

pub async fn me(state: &AppState, token: &str) -> Response {
    send(
        state,
        TestRequest::get("/api/v1/auth/me").bearer(token).build(),
    )
    .await
}

pub async fn refresh(state: &AppState, token: &str) -> Response {
    let body = json!({"refresh_token": token});
    send(
        state,
        TestRequest::post("/api/v1/auth/refresh").json(body).build(),
    )
    .await
}

pub async fn logout(state: &AppState, token: &str) -> Response {
    let body = json!({"refresh_token": token});
    send(
        state,
        TestRequest::post("/api/v1/auth/logout").json(body).build(),
    )
    .await
}

/// The test config with some settings changed.
pub fn config_with(change: impl FnOnce(&mut Config)) -> Config {
    let mut config = test_config();
    change(&mut config);
    config
}

/// Asserts an RFC 9457 problem response with `status`; returns its body.
pub fn assert_problem(response: &Response, status: u16) -> Value {
    let body = body_json(response);
    assert_eq!(response.status(), status, "{body}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(
        body["type"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

/// Asserts a 422 whose field-level `errors` include `field`; returns the body.
pub fn assert_field_error(response: &Response, field: &str) -> Value {
    let body = assert_problem(response, 422);
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors array: {body}"));
    assert!(
        errors.iter().any(|e| e["field"] == field),
        "no error for {field}: {body}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty())),
        "{body}"
    );
    body
}
