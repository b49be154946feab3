//! Organization API tokens (DESIGN.md §6), through the real functions: made by admins, shown
//! once, stored hashed, acting in one organization with their role, revoked at once.

use test_support::clusters_and_deployments as common;

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shared::testing::{body_json, test_state, TestRequest};
use sqlx::PgPool;
use uuid::Uuid;

fn tokens_path(org: Uuid) -> String {
    format!("{ORGS}/{org}/tokens")
}

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn an_admin_creates_a_token_shown_once_and_stored_only_as_its_hash(db: PgPool) {
    let state = test_state(db);
    let team = team(&state, "t").await;
    let response = post(
        &state,
        &team.admin,
        &tokens_path(team.org),
        json!({"name": "ci pipeline", "role": "developer", "expires_in_days": 30}),
    )
    .await;
    assert_eq!(header(&response, "cache-control"), "no-store");
    let created = expect(&response, 201);
    assert_keys(
        &created,
        &[
            "created_at",
            "created_by",
            "expires_at",
            "id",
            "name",
            "role",
            "token",
        ],
    );
    let secret = created["token"].as_str().unwrap();
    assert!(
        secret.starts_with("hvt_") && secret.len() >= 4 + 43,
        "{secret}"
    );
    assert_eq!(created["role"], "developer");
    assert_eq!(created["created_by"], json!(team.admin.id));
    let expires = chrono::DateTime::parse_from_rfc3339(created["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let days = (expires - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((29.9..=30.01).contains(&days), "expires in {days} days");

    // Only the SHA-256 is kept: no column of the row holds the secret.
    let row: (Vec<u8>, String) =
        sqlx::query_as("SELECT token_hash, row_to_json(t)::text FROM api_tokens t WHERE id = $1")
            .bind(uuid_of(&created["id"]))
            .fetch_one(&state.db)
            .await
            .unwrap();
    assert_eq!(row.0, Sha256::digest(secret.as_bytes()).to_vec());
    assert!(
        !row.1.contains(&secret[4..]),
        "the secret is stored: {}",
        row.1
    );

    // Listed without the secret, and never again with it.
    let list = expect(&get(&state, &team.admin, &tokens_path(team.org)).await, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_keys(
        &list[0],
        &[
            "created_at",
            "created_by",
            "expires_at",
            "id",
            "last_used_at",
            "name",
            "revoked_at",
            "role",
        ],
    );
    assert!(!list.to_string().contains(&secret[4..]));
    assert_eq!(list[0]["last_used_at"], Value::Null);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn bad_token_requests_are_refused_and_create_nothing(db: PgPool) {
    let state = test_state(db);
    let team = team(&state, "t").await;
    let path = tokens_path(team.org);
    for (body, field) in [
        (json!({"name": "root", "role": "admin"}), "role"),
        (json!({"name": "x", "role": "owner"}), "role"),
        (json!({"name": "", "role": "viewer"}), "name"),
        (
            json!({"name": "x", "role": "viewer", "expires_in_days": 0}),
            "expires_in_days",
        ),
        (
            json!({"name": "x", "role": "viewer", "expires_in_days": 366}),
            "expires_in_days",
        ),
        (
            json!({"name": "x", "role": "viewer", "expires_in_days": 1.5}),
            "expires_in_days",
        ),
    ] {
        let response = post(&state, &team.admin, &path, body.clone()).await;
        assert_field_error(&response, field);
    }
    // Developers and viewers may not make tokens; outsiders do not see the organization.
    let body = json!({"name": "x", "role": "viewer"});
    assert_problem(
        &post(&state, &team.developer, &path, body.clone()).await,
        403,
    );
    assert_problem(&post(&state, &team.viewer, &path, body.clone()).await, 403);
    let (outsider, _) = solo(&state, "outsider").await;
    assert_problem(&post(&state, &outsider, &path, body).await, 404);
    assert_eq!(count(&state, "api_tokens").await, 0);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_developer_token_submits_and_the_deployment_says_who(db: PgPool) {
    let state = test_state(db);
    let team = team(&state, "t").await;
    let cluster = create_cluster(&state, &team.admin, team.org, "gpu", 8.0, 32.0, 2).await;
    let ci = api_token(&state, &team.admin, team.org, "ci", "developer").await;

    // No organization_id and no cluster: a token's one organization is implied.
    let submitted = submit(&state, &ci, deployment(None, "train", 1.0, 1.0, 0)).await;
    assert_eq!(submitted["organization_id"], json!(team.org));
    assert_eq!(
        submitted["submitted_by"],
        json!({"kind": "token", "id": ci.id, "name": "ci"})
    );
    assert_eq!(submitted["created_by"], json!(ci.id));
    let id = uuid_of(&submitted["id"]);
    let events = expect(
        &get(&state, &ci, &format!("{}/events", deployment_path(id))).await,
        200,
    );
    assert_eq!(events[0]["type"], "submitted");
    assert_eq!(
        events[0]["actor"],
        json!({"kind": "token", "id": ci.id, "name": "ci"})
    );
    assert!(
        events[0]["detail"].as_str().unwrap().contains("token ci"),
        "{events}"
    );

    // A person's submission says so too.
    let by_dev = submit(
        &state,
        &team.developer,
        deployment(Some(uuid_of(&cluster["id"])), "eval", 1.0, 1.0, 0),
    )
    .await;
    assert_eq!(
        by_dev["submitted_by"],
        json!({"kind": "user", "id": team.developer.id, "name": "t-dev"})
    );

    // The token cancels its own and a colleague's work: it has the developer role.
    expect(&cancel(&state, &ci, uuid_of(&by_dev["id"])).await, 200);
    let events = expect(
        &get(
            &state,
            &ci,
            &format!("{}/events", deployment_path(uuid_of(&by_dev["id"]))),
        )
        .await,
        200,
    );
    let cancelled = events.as_array().unwrap().last().unwrap();
    assert_eq!(cancelled["type"], "cancelled");
    assert_eq!(cancelled["actor"]["kind"], "token");

    // An idempotent retry by the token answers with the same deployment.
    let body = deployment(None, "retry", 0.5, 0.5, 0);
    let first = send(
        &state,
        TestRequest::post(DEPLOYMENTS)
            .bearer(&ci.token)
            .header("idempotency-key", "build-42")
            .json(body.clone())
            .build(),
    )
    .await;
    let again = send(
        &state,
        TestRequest::post(DEPLOYMENTS)
            .bearer(&ci.token)
            .header("idempotency-key", "build-42")
            .json(body)
            .build(),
    )
    .await;
    assert_eq!(expect(&first, 202)["id"], expect(&again, 202)["id"]);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_viewer_token_reads_but_cannot_change_anything(db: PgPool) {
    let state = test_state(db);
    let team = team(&state, "t").await;
    let cluster = create_cluster(&state, &team.admin, team.org, "cpu", 8.0, 32.0, 0).await;
    let cluster_id = uuid_of(&cluster["id"]);
    let d = submit_id(
        &state,
        &team.developer,
        deployment(Some(cluster_id), "job", 1.0, 1.0, 0),
    )
    .await;
    let dash = api_token(&state, &team.admin, team.org, "dashboard", "viewer").await;

    expect(&get(&state, &dash, &cluster_path(cluster_id)).await, 200);
    let page = expect(&get(&state, &dash, DEPLOYMENTS).await, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    expect(&get(&state, &dash, &deployment_path(d)).await, 200);
    expect(
        &get(&state, &dash, &format!("{ORGS}/{}/members", team.org)).await,
        200,
    );
    let orgs = expect(&get(&state, &dash, ORGS).await, 200);
    assert_eq!(orgs.as_array().unwrap().len(), 1);
    assert_eq!(orgs[0]["id"], json!(team.org));
    assert_eq!(orgs[0]["role"], "viewer");

    let body = deployment(Some(cluster_id), "nope", 1.0, 1.0, 0);
    assert_problem(&try_submit(&state, &dash, body.clone()).await, 403);
    assert_problem(
        &post(&state, &dash, &format!("{DEPLOYMENTS}/dry-run"), body).await,
        403,
    );
    assert_problem(&cancel(&state, &dash, d).await, 403);
    assert_eq!(status_of(&state, &team.admin, d).await, "pending");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_token_needs_a_person_for_everything_that_manages_the_organization(db: PgPool) {
    let state = test_state(db);
    let team = team(&state, "t").await;
    let cluster = create_cluster(&state, &team.admin, team.org, "cpu", 8.0, 32.0, 0).await;
    let ci = api_token(&state, &team.admin, team.org, "ci", "developer").await;
    let (_, code) = org(&state, &team.admin, "second").await;
    let org = team.org;
    let forbidden: [(&str, String, Option<Value>); 10] = [
        ("POST", ORGS.to_string(), Some(json!({"name": "mine"}))),
        (
            "POST",
            format!("{ORGS}/join"),
            Some(json!({"invite_code": code})),
        ),
        ("POST", format!("{ORGS}/{org}/invites"), Some(json!({}))),
        ("GET", format!("{ORGS}/{org}/invites"), None),
        (
            "POST",
            tokens_path(org),
            Some(json!({"name": "x", "role": "viewer"})),
        ),
        ("GET", tokens_path(org), None),
        ("DELETE", format!("{}/{}", tokens_path(org), ci.id), None),
        (
            "PATCH",
            format!("{ORGS}/{org}/members/{}", team.developer.id),
            Some(json!({"role": "viewer"})),
        ),
        ("GET", format!("{ORGS}/{org}/audit"), None),
        (
            "PATCH",
            cluster_path(uuid_of(&cluster["id"])),
            Some(json!({"cpu_cores": 16})),
        ),
    ];
    for (method, path, body) in forbidden {
        let mut request = TestRequest::new(method, &path).bearer(&ci.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = send(&state, request.build()).await;
        assert_eq!(
            response.status(),
            403,
            "{method} {path}: {}",
            body_json(&response)
        );
        assert_problem(&response, 403);
    }
    let me = expect(&get(&state, &ci, "/api/v1/auth/me").await, 200);
    assert_eq!(me["kind"], "token");
    assert_eq!(me["id"], json!(ci.id));
    assert_eq!(me["name"], "ci");
    assert_eq!(
        me["organizations"],
        json!([{"id": org, "name": "t org", "role": "developer"}])
    );
    let person = expect(&get(&state, &team.admin, "/api/v1/auth/me").await, 200);
    assert_eq!(person["kind"], "user");
    // Nothing changed: still one organization per person, one token, no new member.
    assert_eq!(count(&state, "organizations").await, 2);
    assert_eq!(count(&state, "api_tokens").await, 1);
    assert_eq!(count(&state, "memberships").await, 4);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn another_organizations_objects_are_404_to_a_token(db: PgPool) {
    let state = test_state(db);
    let mine = team(&state, "mine").await;
    let theirs = team(&state, "theirs").await;
    let their_cluster = create_cluster(&state, &theirs.admin, theirs.org, "c", 8.0, 8.0, 0).await;
    let their_cluster = uuid_of(&their_cluster["id"]);
    let their_job = submit_id(
        &state,
        &theirs.developer,
        deployment(Some(their_cluster), "j", 1.0, 1.0, 0),
    )
    .await;
    let ci = api_token(&state, &mine.admin, mine.org, "ci", "developer").await;
    for path in [
        format!("{ORGS}/{}", theirs.org),
        format!("{ORGS}/{}/members", theirs.org),
        format!("{ORGS}/{}/tokens", theirs.org),
        format!("{ORGS}/{}/audit", theirs.org),
        cluster_path(their_cluster),
        deployment_path(their_job),
        format!("{}/events", deployment_path(their_job)),
        format!("{CLUSTERS}?organization_id={}", theirs.org),
        format!("{DEPLOYMENTS}?organization_id={}", theirs.org),
    ] {
        assert_problem(&get(&state, &ci, &path).await, 404);
    }
    assert_problem(
        &try_submit(
            &state,
            &ci,
            deployment(Some(their_cluster), "x", 1.0, 1.0, 0),
        )
        .await,
        404,
    );
    let mut body = deployment(None, "x", 1.0, 1.0, 0);
    body["organization_id"] = json!(theirs.org);
    assert_problem(&try_submit(&state, &ci, body).await, 404);
    assert_problem(&cancel(&state, &ci, their_job).await, 404);
    // Its own lists hold nothing of theirs.
    let clusters = expect(&get(&state, &ci, CLUSTERS).await, 200);
    assert!(clusters.as_array().unwrap().is_empty(), "{clusters}");
    let page = expect(&get(&state, &ci, DEPLOYMENTS).await, 200);
    assert!(page["items"].as_array().unwrap().is_empty(), "{page}");
    assert_eq!(status_of(&state, &theirs.admin, their_job).await, "pending");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn revoked_and_expired_tokens_fail_at_once_like_unknown_ones(db: PgPool) {
    let state = test_state(db);
    let team = team(&state, "t").await;
    let ci = api_token(&state, &team.admin, team.org, "ci", "developer").await;
    let old = api_token(&state, &team.admin, team.org, "old", "viewer").await;
    expect(&get(&state, &ci, CLUSTERS).await, 200);

    let unknown = User {
        id: Uuid::now_v7(),
        name: "unknown".into(),
        token: shared::auth::api_token::new_secret(),
    };
    let unknown_detail = body_json(&get(&state, &unknown, CLUSTERS).await)["detail"].clone();
    assert_problem(&get(&state, &unknown, CLUSTERS).await, 401);

    let revoke = delete(
        &state,
        &team.admin,
        &format!("{}/{}", tokens_path(team.org), ci.id),
    )
    .await;
    assert_eq!(revoke.status(), 204);
    let after = get(&state, &ci, CLUSTERS).await;
    assert_problem(&after, 401);
    assert_eq!(body_json(&after)["detail"], unknown_detail);
    // Revoking again changes nothing; an unknown id is 404.
    let again = delete(
        &state,
        &team.admin,
        &format!("{}/{}", tokens_path(team.org), ci.id),
    )
    .await;
    assert_eq!(again.status(), 204);
    assert_problem(
        &delete(
            &state,
            &team.admin,
            &format!("{}/{}", tokens_path(team.org), Uuid::now_v7()),
        )
        .await,
        404,
    );

    sqlx::query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(old.id)
        .execute(&state.db)
        .await
        .unwrap();
    let expired = get(&state, &old, CLUSTERS).await;
    assert_problem(&expired, 401);
    assert_eq!(body_json(&expired)["detail"], unknown_detail);

    let list = expect(&get(&state, &team.admin, &tokens_path(team.org)).await, 200);
    let revoked: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["revoked_at"].is_string())
        .collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["id"], json!(ci.id));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn last_used_is_kept_to_the_minute_without_a_write_per_request(db: PgPool) {
    let state = test_state(db);
    let team = team(&state, "t").await;
    let ci = api_token(&state, &team.admin, team.org, "ci", "viewer").await;
    let version = |db: PgPool, id: Uuid| async move {
        sqlx::query_as::<_, (String, Option<chrono::DateTime<chrono::Utc>>)>(
            "SELECT xmin::text, last_used_at FROM api_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&db)
        .await
        .unwrap()
    };
    let (unused_version, unused) = version(state.db.clone(), ci.id).await;
    assert_eq!(unused, None);
    expect(&get(&state, &ci, CLUSTERS).await, 200);
    let (first_version, first) = version(state.db.clone(), ci.id).await;
    let first = first.expect("last_used_at is set by a use");
    assert_ne!(first_version, unused_version, "the first use is written");
    assert_eq!(first.timestamp() % 60, 0, "kept to the minute: {first}");
    assert!((chrono::Utc::now() - first).num_seconds() < 61);
    // More requests within the same minute leave the row as it was (the same tuple version),
    // unless the minute turned meanwhile.
    for _ in 0..5 {
        expect(&get(&state, &ci, CLUSTERS).await, 200);
    }
    let (later_version, later) = version(state.db.clone(), ci.id).await;
    if later == Some(first) {
        assert_eq!(
            later_version, first_version,
            "a request in the same minute wrote the row"
        );
    }
    let listed = expect(&get(&state, &team.admin, &tokens_path(team.org)).await, 200);
    assert!(listed[0]["last_used_at"].is_string());
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_token_outlives_its_creator_leaving(db: PgPool) {
    let state = test_state(db);
    let team = team(&state, "t").await;
    // A second admin makes the token, then leaves the organization.
    set_role(&state, &team.admin, team.org, &team.developer, "admin").await;
    let ci = api_token(&state, &team.developer, team.org, "ci", "viewer").await;
    let leave = delete(
        &state,
        &team.developer,
        &format!("{ORGS}/{}/members/{}", team.org, team.developer.id),
    )
    .await;
    assert_eq!(leave.status(), 204);
    expect(&get(&state, &ci, CLUSTERS).await, 200);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn each_token_has_its_own_rate_limit(db: PgPool) {
    let setup = test_state(db.clone());
    let team = team(&setup, "t").await;
    let a = api_token(&setup, &team.admin, team.org, "a", "viewer").await;
    let b = api_token(&setup, &team.admin, team.org, "b", "viewer").await;
    let mut config = shared::testing::test_config();
    config.rate_limit_per_minute = 3;
    let state = shared::AppState::new(db, config, None);
    for _ in 0..3 {
        expect(&get(&state, &a, CLUSTERS).await, 200);
    }
    let limited = get(&state, &a, CLUSTERS).await;
    assert_problem(&limited, 429);
    assert!(limited.headers().contains_key("retry-after"));
    // Another token, and the person who made them, still have theirs.
    expect(&get(&state, &b, CLUSTERS).await, 200);
    expect(&get(&state, &team.viewer, CLUSTERS).await, 200);
}
