//! Requests through the real routers, as API Gateway would route them, and the people who send them.

use serde_json::{json, Value};
use shared::testing::{body_json, TestRequest};
use shared::AppState;
use uuid::Uuid;

pub use shared::http::Request;
pub use shared::testing::Response;

pub const PASSWORD: &str = "Correct-Horse-9";
pub const CLUSTERS: &str = "/api/v1/clusters";
pub const DEPLOYMENTS: &str = "/api/v1/deployments";
pub const ORGS: &str = "/api/v1/organizations";

/// Sends to whichever function serves the path.
pub async fn send(state: &AppState, request: Request) -> Response {
    let path = request.uri().path();
    let router = if path.starts_with(CLUSTERS) {
        clusters::router(state.clone())
    } else if path.starts_with(DEPLOYMENTS) {
        deployments::router(state.clone())
    } else if path.starts_with(ORGS) {
        organizations::router(state.clone())
    } else {
        auth::router(state.clone())
    };
    shared::testing::send(router, request).await
}

/// A user with a valid access token.
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub token: String,
}

/// Registers `name` and logs in (both through the auth function).
pub async fn user(state: &AppState, name: &str) -> User {
    let body =
        json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD});
    let response = send(
        state,
        TestRequest::post("/api/v1/auth/register")
            .json(body)
            .build(),
    )
    .await;
    assert_eq!(response.status(), 201, "{}", body_json(&response));
    let id = body_json(&response)["id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .expect("a user id");
    let body = json!({"username": name, "password": PASSWORD});
    let response = send(
        state,
        TestRequest::post("/api/v1/auth/login").json(body).build(),
    )
    .await;
    assert_eq!(response.status(), 200, "{}", body_json(&response));
    let token = body_json(&response)["access_token"]
        .as_str()
        .expect("an access token")
        .to_string();
    User {
        id,
        name: name.to_string(),
        token,
    }
}

pub async fn get(state: &AppState, who: &User, path: &str) -> Response {
    send(state, TestRequest::get(path).bearer(&who.token).build()).await
}

pub async fn post(state: &AppState, who: &User, path: &str, body: Value) -> Response {
    send(
        state,
        TestRequest::post(path)
            .bearer(&who.token)
            .json(body)
            .build(),
    )
    .await
}

pub async fn patch(state: &AppState, who: &User, path: &str, body: Value) -> Response {
    send(
        state,
        TestRequest::patch(path)
            .bearer(&who.token)
            .json(body)
            .build(),
    )
    .await
}

pub async fn put(state: &AppState, who: &User, path: &str, body: Value) -> Response {
    send(
        state,
        TestRequest::put(path).bearer(&who.token).json(body).build(),
    )
    .await
}

pub async fn delete(state: &AppState, who: &User, path: &str) -> Response {
    send(state, TestRequest::delete(path).bearer(&who.token).build()).await
}

/// Creates an API token of `org` as its admin `admin`; the returned caller sends the token's
/// secret as its bearer token (its `id` is the token's id, its `name` the token's name).
pub async fn api_token(state: &AppState, admin: &User, org: Uuid, name: &str, role: &str) -> User {
    let path = format!("{ORGS}/{org}/tokens");
    let response = post(state, admin, &path, json!({"name": name, "role": role})).await;
    let body = body_json(&response);
    assert_eq!(response.status(), 201, "{body}");
    User {
        id: body["id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .expect("a token id"),
        name: name.to_string(),
        token: body["token"].as_str().expect("a secret").to_string(),
    }
}
