//! Helpers shared by the organizations handler tests. Users are inserted straight into the
//! database and given an access token (this crate cannot call the auth function).
#![allow(dead_code)]

use serde_json::{json, Value};
use shared::http::{Request, Response};
use shared::testing::{body_json, TestRequest};
use shared::AppState;
use uuid::Uuid;

pub const ORGS: &str = "/api/v1/organizations";

pub struct User {
    pub id: Uuid,
    pub name: String,
    pub token: String,
}

pub async fn send(state: &AppState, request: Request) -> Response {
    organizations::handle(state, request).await
}

/// A registered user with a valid access token.
pub async fn user(state: &AppState, name: &str) -> User {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO users (id, username, email, password_hash) VALUES ($1, $2, $3, 'unused')",
    )
    .bind(id)
    .bind(name)
    .bind(format!("{name}@example.com"))
    .execute(&state.db)
    .await
    .expect("insert a user");
    let token = shared::auth::jwt::issue_access_token(&state.config, id).expect("a token");
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

pub async fn delete(state: &AppState, who: &User, path: &str) -> Response {
    send(state, TestRequest::delete(path).bearer(&who.token).build()).await
}

/// Creates an organization with `admin` as its admin; returns the 201 body.
pub async fn create_org(state: &AppState, admin: &User, name: &str) -> Value {
    let response = post(state, admin, ORGS, json!({"name": name})).await;
    assert_eq!(response.status(), 201, "{}", body_json(&response));
    body_json(&response)
}

pub fn id_of(value: &Value) -> &str {
    value["id"].as_str().expect("an id")
}

pub async fn join(state: &AppState, who: &User, code: &str) -> Response {
    post(
        state,
        who,
        &format!("{ORGS}/join"),
        json!({"invite_code": code}),
    )
    .await
}

/// Joins with `code` and asserts success.
pub async fn join_ok(state: &AppState, who: &User, code: &str) -> Value {
    let response = join(state, who, code).await;
    assert_eq!(response.status(), 200, "{}", body_json(&response));
    body_json(&response)
}

pub async fn create_invite(state: &AppState, who: &User, org: &Value, body: Value) -> Response {
    post(state, who, &format!("{ORGS}/{}/invites", id_of(org)), body).await
}

/// Creates an invite as an admin and returns the 201 body.
pub async fn invite(state: &AppState, admin: &User, org: &Value, body: Value) -> Value {
    let response = create_invite(state, admin, org, body).await;
    assert_eq!(response.status(), 201, "{}", body_json(&response));
    body_json(&response)
}

pub fn code_of(invite: &Value) -> &str {
    invite["code"].as_str().expect("an invite code")
}

/// An organization created by `admin` that `members` joined with the given roles.
pub async fn org_with(state: &AppState, admin: &User, members: &[(&User, &str)]) -> Value {
    let org = create_org(state, admin, "Analytical Engines").await;
    for (member, role) in members {
        let inv = invite(state, admin, &org, json!({"role": role})).await;
        join_ok(state, member, code_of(&inv)).await;
    }
    org
}

pub fn member_path(org: &Value, user: &User) -> String {
    format!("{ORGS}/{}/members/{}", id_of(org), user.id)
}

/// Asserts an RFC 9457 problem response with `status`; returns its body.
pub fn assert_problem(response: &Response, status: u16) -> Value {
    let body = body_json(response);
    assert_eq!(response.status(), status, "{body}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    for key in ["type", "title", "detail"] {
        assert!(
            body[key].as_str().is_some_and(|t| !t.is_empty()),
            "{key}: {body}"
        );
    }
    assert_eq!(body["status"], status, "{body}");
    body
}

/// Asserts a 422 whose field-level `errors` include `field`.
pub fn assert_field_error(response: &Response, field: &str) -> Value {
    let body = assert_problem(response, 422);
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors array: {body}"));
    assert!(
        errors.iter().any(|e| e["field"] == field),
        "no error for {field}: {body}"
    );
    body
}

/// The object's keys, sorted.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    keys.sort_unstable();
    keys
}
