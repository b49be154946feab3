//! Accounts and sessions through the real auth function.

pub use crate::api::{send, Request, Response, PASSWORD};
pub use crate::problem::*;
use serde_json::{json, Value};
use shared::config::Config;
use shared::testing::{body_json, test_config, TestRequest};
use shared::AppState;

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
