//! DESIGN.md §6: every response says `nosniff`; every one that carries a secret (login,
//! refresh, token, invite and organization creation) says `no-store`. Over real HTTP.

use e2e_tests::TestApp;
use reqwest::{header, Client, Method};
use serde_json::{json, Value};
use sqlx::PgPool;

async fn call(
    client: &Client,
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (reqwest::header::HeaderMap, u16, Value) {
    let mut request = client.request(method, format!("{}{path}", app.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the server answers");
    let headers = response.headers().clone();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (headers, status, body)
}

fn value(headers: &reqwest::header::HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn secrets_are_never_cached_and_nothing_is_sniffed(db: PgPool) {
    let app = TestApp::start(db).await;
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let password = "Correct-Horse-Battery-9";
    let (h, status, _) = call(
        &client,
        &app,
        Method::POST,
        "/api/v1/auth/register",
        None,
        Some(json!({"username": "ada", "email": "ada@example.com", "password": password})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(value(&h, header::X_CONTENT_TYPE_OPTIONS), "nosniff");

    let (h, status, pair) = call(
        &client,
        &app,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"username": "ada", "password": password})),
    )
    .await;
    assert_eq!(status, 200);
    let mut secret_bearing = vec![("login", h)];
    let access = pair["access_token"].as_str().unwrap().to_string();
    let (h, status, _) = call(
        &client,
        &app,
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": pair["refresh_token"]})),
    )
    .await;
    assert_eq!(status, 200);
    secret_bearing.push(("refresh", h));
    let (h, status, org) = call(
        &client,
        &app,
        Method::POST,
        "/api/v1/organizations",
        Some(&access),
        Some(json!({"name": "lab"})),
    )
    .await;
    assert_eq!(status, 201);
    secret_bearing.push(("organization (its invite code)", h));
    let org = org["id"].as_str().unwrap().to_string();
    let (h, status, _) = call(
        &client,
        &app,
        Method::POST,
        &format!("/api/v1/organizations/{org}/invites"),
        Some(&access),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201);
    secret_bearing.push(("invite", h));
    let (h, status, _) = call(
        &client,
        &app,
        Method::POST,
        &format!("/api/v1/organizations/{org}/tokens"),
        Some(&access),
        Some(json!({"name": "ci", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, 201);
    secret_bearing.push(("API token", h));
    for (what, headers) in &secret_bearing {
        assert_eq!(value(headers, header::CACHE_CONTROL), "no-store", "{what}");
        assert_eq!(
            value(headers, header::X_CONTENT_TYPE_OPTIONS),
            "nosniff",
            "{what}"
        );
    }

    // Errors, unknown routes, wrong methods and the docs are not sniffed either.
    for (method, path) in [
        (Method::GET, "/api/v1/auth/me"),
        (Method::GET, "/api/v1/nothing-here"),
        (Method::PUT, "/api/v1/clusters"),
        (Method::GET, "/openapi.json"),
        (Method::GET, "/docs/"),
    ] {
        let (h, _, _) = call(&client, &app, method.clone(), path, None, None).await;
        assert_eq!(
            value(&h, header::X_CONTENT_TYPE_OPTIONS),
            "nosniff",
            "{method} {path}"
        );
    }
}
