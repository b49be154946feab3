//! Organizations, invites and members through the real organizations function.

pub use crate::api::*;
pub use crate::problem::*;
use serde_json::{json, Value};
use shared::testing::body_json;
use shared::AppState;
use uuid::Uuid;

/// A user inserted straight into the database (no password hashing), with a valid access token.
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
