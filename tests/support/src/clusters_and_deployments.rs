//! Teams, clusters and deployments through the real functions. Nothing is scheduled unless a
//! test runs a pass ([`pass`]).

pub use crate::api::*;
pub use crate::problem::*;
use serde_json::{json, Value};
use shared::testing::{body_json, TestRequest};
use shared::AppState;
use uuid::Uuid;

/// An organization with one member of each role.
pub struct Team {
    pub org: Uuid,
    pub admin: User,
    pub developer: User,
    pub viewer: User,
}

/// Asserts `status` and returns the JSON body.
pub fn expect(response: &Response, status: u16) -> Value {
    let body = body_json(response);
    assert_eq!(response.status(), status, "{body}");
    body
}

/// Creates an organization with `admin` as its admin; returns its id and developer invite code.
pub async fn org(state: &AppState, admin: &User, name: &str) -> (Uuid, String) {
    let body = expect(&post(state, admin, ORGS, json!({"name": name})).await, 201);
    let code = body["invite_code"].as_str().expect("an invite code");
    (uuid_of(&body["id"]), code.to_string())
}

/// Joins with an invite code (a developer invite unless it says otherwise).
pub async fn join(state: &AppState, who: &User, code: &str) {
    let path = format!("{ORGS}/join");
    expect(
        &post(state, who, &path, json!({"invite_code": code})).await,
        200,
    );
}

/// Changes a member's role as the organization's admin.
pub async fn set_role(state: &AppState, admin: &User, org: Uuid, who: &User, role: &str) {
    let path = format!("{ORGS}/{org}/members/{}", who.id);
    let body = expect(
        &patch(state, admin, &path, json!({"role": role})).await,
        200,
    );
    assert_eq!(body["role"], role);
}

/// An organization whose admin, developer and viewer are `{prefix}-admin` etc. The developer
/// joins with the default invite; the viewer joins with it too and is then demoted.
pub async fn team(state: &AppState, prefix: &str) -> Team {
    let admin = user(state, &format!("{prefix}-admin")).await;
    let developer = user(state, &format!("{prefix}-dev")).await;
    let viewer = user(state, &format!("{prefix}-viewer")).await;
    let (org, code) = org(state, &admin, &format!("{prefix} org")).await;
    join(state, &developer, &code).await;
    join(state, &viewer, &code).await;
    set_role(state, &admin, org, &viewer, "viewer").await;
    Team {
        org,
        admin,
        developer,
        viewer,
    }
}

/// A user who administers an organization of their own (and nothing else).
pub async fn solo(state: &AppState, name: &str) -> (User, Uuid) {
    let admin = user(state, name).await;
    let (org, _) = org(state, &admin, &format!("{name} org")).await;
    (admin, org)
}

pub fn uuid_of(value: &Value) -> Uuid {
    value
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_else(|| panic!("not a uuid: {value}"))
}

pub fn cluster_path(id: Uuid) -> String {
    format!("{CLUSTERS}/{id}")
}

pub fn deployment_path(id: Uuid) -> String {
    format!("{DEPLOYMENTS}/{id}")
}

pub async fn try_create_cluster(state: &AppState, who: &User, body: Value) -> Response {
    post(state, who, CLUSTERS, body).await
}

/// Registers a cluster (`cpu` cores, `ram` GiB, `gpu` GPUs); returns its 201 body.
pub async fn create_cluster(
    state: &AppState,
    admin: &User,
    org: Uuid,
    name: &str,
    cpu: f64,
    ram: f64,
    gpu: i64,
) -> Value {
    let body = json!({"organization_id": org, "name": name, "cpu_cores": cpu, "ram_gib": ram, "gpu_count": gpu});
    expect(&try_create_cluster(state, admin, body).await, 201)
}

pub async fn get_cluster(state: &AppState, who: &User, id: Uuid) -> Value {
    expect(&get(state, who, &cluster_path(id)).await, 200)
}

/// A submission body for `cluster` (None: let the scheduler choose).
pub fn deployment(cluster: Option<Uuid>, name: &str, cpu: f64, ram: f64, gpu: i64) -> Value {
    let mut body = json!({
        "name": name,
        "image": "ghcr.io/acme/trainer:1.4",
        "resources": {"cpu_cores": cpu, "ram_gib": ram, "gpu_count": gpu},
    });
    if let Some(c) = cluster {
        body["cluster_id"] = json!(c);
    }
    body
}

/// The same submission with a priority.
pub fn with_priority(mut body: Value, priority: i64) -> Value {
    body["priority"] = json!(priority);
    body
}

pub async fn try_submit(state: &AppState, who: &User, body: Value) -> Response {
    post(state, who, DEPLOYMENTS, body).await
}

/// Submits and asserts 202; returns the deployment.
pub async fn submit(state: &AppState, who: &User, body: Value) -> Value {
    expect(&try_submit(state, who, body).await, 202)
}

/// Submits and returns the new deployment's id.
pub async fn submit_id(state: &AppState, who: &User, body: Value) -> Uuid {
    uuid_of(&submit(state, who, body).await["id"])
}

pub async fn get_deployment(state: &AppState, who: &User, id: Uuid) -> Value {
    expect(&get(state, who, &deployment_path(id)).await, 200)
}

pub async fn status_of(state: &AppState, who: &User, id: Uuid) -> String {
    get_deployment(state, who, id).await["status"]
        .as_str()
        .expect("a status")
        .to_string()
}

pub async fn cancel(state: &AppState, who: &User, id: Uuid) -> Response {
    let path = format!("{}/cancel", deployment_path(id));
    send(state, TestRequest::post(&path).bearer(&who.token).build()).await
}

pub async fn complete(state: &AppState, who: &User, id: Uuid, outcome: &str) -> Response {
    let path = format!("{}/complete", deployment_path(id));
    post(state, who, &path, json!({"outcome": outcome})).await
}

/// Runs one scheduling pass over `org`, as the scheduler Lambda would.
pub async fn pass(state: &AppState, org: Uuid) -> scheduler::PassSummary {
    scheduler::run_pass(state, org)
        .await
        .expect("the scheduling pass succeeds")
}

/// `{cpu_cores, ram_gib, gpu_count}` as numbers, for exact comparison.
pub fn resources(value: &Value) -> (f64, f64, i64) {
    (
        value["cpu_cores"].as_f64().expect("cpu_cores"),
        value["ram_gib"].as_f64().expect("ram_gib"),
        value["gpu_count"].as_i64().expect("gpu_count"),
    )
}

pub async fn count(state: &AppState, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&state.db)
        .await
        .expect("count rows")
}

/// Asserts that an RFC 3339 timestamp is there.
pub fn assert_time(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"));
}

/// Asserts that `value` is an object with at least these keys.
pub fn assert_keys(value: &Value, keys: &[&str]) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"));
    for key in keys {
        assert!(object.contains_key(*key), "missing {key}: {value}");
    }
}
