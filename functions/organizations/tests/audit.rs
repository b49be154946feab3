//! The audit log (DESIGN.md §7): every admin change recorded with its change, append-only,
//! readable by admins a page at a time, never holding a secret.

use test_support::clusters_and_deployments as common;

use common::*;
use serde_json::{json, Value};
use shared::testing::{body_json, test_state};
use sqlx::PgPool;
use uuid::Uuid;

fn audit_path(org: Uuid) -> String {
    format!("{ORGS}/{org}/audit")
}

/// Every record of the organization, newest first, read page by page (`limit` each).
async fn all_records(
    state: &shared::AppState,
    admin: &User,
    org: Uuid,
    limit: usize,
) -> Vec<Value> {
    let mut records = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{}?limit={limit}&cursor={c}", audit_path(org)),
            None => format!("{}?limit={limit}", audit_path(org)),
        };
        let page = expect(&get(state, admin, &path).await, 200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit);
        records.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(records.len() < 1000, "pagination does not end");
    }
    records
}

fn actions(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect()
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn admin_changes_are_recorded_with_their_actors_and_no_secret(db: PgPool) {
    let state = test_state(db);
    let admin = user(&state, "ada").await;
    let dev = user(&state, "dev").await;
    let (org, code) = org(&state, &admin, "lab").await;
    join(&state, &dev, &code).await;
    set_role(&state, &admin, org, &dev, "viewer").await;
    let invite = expect(
        &post(
            &state,
            &admin,
            &format!("{ORGS}/{org}/invites"),
            json!({"role": "viewer"}),
        )
        .await,
        201,
    );
    let invite_id = uuid_of(&invite["id"]);
    assert_eq!(
        delete(&state, &admin, &format!("{ORGS}/{org}/invites/{invite_id}"))
            .await
            .status(),
        204
    );
    let ci = api_token(&state, &admin, org, "ci", "developer").await;
    assert_eq!(
        delete(&state, &admin, &format!("{ORGS}/{org}/tokens/{}", ci.id))
            .await
            .status(),
        204
    );
    let cluster = create_cluster(&state, &admin, org, "gpu", 8.0, 32.0, 2).await;
    let cluster_id = uuid_of(&cluster["id"]);
    expect(
        &patch(
            &state,
            &admin,
            &cluster_path(cluster_id),
            json!({"cpu_cores": 16, "name": "gpu-big"}),
        )
        .await,
        200,
    );
    assert_eq!(
        delete(&state, &admin, &cluster_path(cluster_id))
            .await
            .status(),
        204
    );
    let leave = delete(&state, &dev, &format!("{ORGS}/{org}/members/{}", dev.id)).await;
    assert_eq!(leave.status(), 204);

    let records = all_records(&state, &admin, org, 2).await;
    assert_eq!(
        actions(&records),
        [
            "member.left",
            "cluster.deleted",
            "cluster.updated",
            "cluster.created",
            "token.revoked",
            "token.created",
            "invite.revoked",
            "invite.created",
            "member.role_changed",
            "member.joined",
            "organization.created",
        ]
    );
    let ada = json!({"kind": "user", "id": admin.id, "name": "ada"});
    let by_action = |action: &str| {
        records
            .iter()
            .find(|r| r["action"] == action)
            .unwrap_or_else(|| panic!("no {action}"))
            .clone()
    };
    for record in &records {
        assert_keys(record, &["action", "actor", "at", "detail", "id", "target"]);
        assert_time(&record["at"]);
    }
    let resized = by_action("cluster.updated");
    assert_eq!(resized["actor"], ada);
    assert_eq!(
        resized["target"],
        json!({"type": "cluster", "id": cluster_id, "name": "gpu-big"})
    );
    assert_eq!(
        resized["detail"]["old"]["capacity"]["cpu_cores"],
        json!(8.0)
    );
    assert_eq!(
        resized["detail"]["new"]["capacity"]["cpu_cores"],
        json!(16.0)
    );
    assert_eq!(resized["detail"]["old"]["name"], "gpu");
    let role = by_action("member.role_changed");
    assert_eq!(role["actor"], ada);
    assert_eq!(
        role["target"],
        json!({"type": "member", "id": dev.id, "name": "dev"})
    );
    assert_eq!(
        role["detail"],
        json!({"old_role": "developer", "new_role": "viewer"})
    );
    let token = by_action("token.created");
    assert_eq!(token["actor"], ada);
    assert_eq!(
        token["target"],
        json!({"type": "token", "id": ci.id, "name": "ci"})
    );
    assert_eq!(token["detail"]["role"], "developer");
    let joined = by_action("member.joined");
    assert_eq!(
        joined["actor"],
        json!({"kind": "user", "id": dev.id, "name": "dev"})
    );
    assert_eq!(by_action("member.left")["actor"]["id"], json!(dev.id));

    // No secret anywhere: not the token, not either invite code, not the database's hashes.
    let text = serde_json::to_string(&records).unwrap();
    for secret in [
        &ci.token[4..],
        code.as_str(),
        invite["code"].as_str().unwrap(),
    ] {
        assert!(!text.contains(secret), "the audit log holds a secret");
    }
    let stored: String = sqlx::query_scalar("SELECT json_agg(a)::text FROM audit_log a")
        .fetch_one(&state.db)
        .await
        .unwrap();
    for secret in [
        &ci.token[4..],
        code.as_str(),
        invite["code"].as_str().unwrap(),
    ] {
        assert!(!stored.contains(secret), "the audit table holds a secret");
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn refused_changes_record_nothing(db: PgPool) {
    let state = test_state(db);
    let team = team(&state, "t").await;
    create_cluster(&state, &team.admin, team.org, "c", 4.0, 4.0, 0).await;
    let before = count(&state, "audit_log").await;
    // The last admin cannot demote themselves; a taken name; a viewer's attempt; bad input.
    let demote = patch(
        &state,
        &team.admin,
        &format!("{ORGS}/{}/members/{}", team.org, team.admin.id),
        json!({"role": "viewer"}),
    )
    .await;
    assert_problem(&demote, 409);
    let taken = try_create_cluster(
        &state,
        &team.admin,
        json!({"organization_id": team.org, "name": "c", "cpu_cores": 1, "ram_gib": 1, "gpu_count": 0}),
    )
    .await;
    assert_problem(&taken, 409);
    let by_viewer = try_create_cluster(
        &state,
        &team.viewer,
        json!({"organization_id": team.org, "name": "v", "cpu_cores": 1, "ram_gib": 1, "gpu_count": 0}),
    )
    .await;
    assert_problem(&by_viewer, 403);
    let admin_token = post(
        &state,
        &team.admin,
        &format!("{ORGS}/{}/tokens", team.org),
        json!({"name": "root", "role": "admin"}),
    )
    .await;
    assert_problem(&admin_token, 422);
    // Setting a role to what it already is changes nothing, so records nothing.
    set_role(&state, &team.admin, team.org, &team.viewer, "viewer").await;
    assert_eq!(count(&state, "audit_log").await, before);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_change_whose_record_fails_does_not_happen(db: PgPool) {
    let state = test_state(db);
    let (admin, org) = solo(&state, "ada").await;
    // Fault injection: the database refuses to record one action.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_cluster_records() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.action = 'cluster.created' THEN RAISE EXCEPTION 'injected audit failure'; END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_cluster_records BEFORE INSERT ON audit_log
           FOR EACH ROW EXECUTE FUNCTION refuse_cluster_records();",
    )
    .execute(&state.db)
    .await
    .unwrap();
    let response = try_create_cluster(
        &state,
        &admin,
        json!({"organization_id": org, "name": "c", "cpu_cores": 1, "ram_gib": 1, "gpu_count": 0}),
    )
    .await;
    assert_problem(&response, 500);
    assert!(
        !body_json(&response).to_string().contains("injected"),
        "a 500 says nothing of the inside"
    );
    assert_eq!(count(&state, "clusters").await, 0);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn the_log_is_append_only_in_the_database(db: PgPool) {
    let state = test_state(db);
    let (_, org) = solo(&state, "ada").await;
    assert_eq!(count(&state, "audit_log").await, 1);
    for statement in [
        "UPDATE audit_log SET action = 'organization.renamed'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = sqlx::query(statement)
            .execute(&state.db)
            .await
            .expect_err(statement);
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    let action: String =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE organization_id = $1")
            .bind(org)
            .fetch_one(&state.db)
            .await
            .unwrap();
    assert_eq!(action, "organization.created");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn only_admins_read_it_and_bad_pages_are_422(db: PgPool) {
    let state = test_state(db);
    let team = team(&state, "t").await;
    let (outsider, _) = solo(&state, "outsider").await;
    let path = audit_path(team.org);
    assert_problem(&get(&state, &team.developer, &path).await, 403);
    assert_problem(&get(&state, &team.viewer, &path).await, 403);
    assert_problem(&get(&state, &outsider, &path).await, 404);
    // An outsider learns nothing from a bad query either.
    assert_problem(
        &get(&state, &outsider, &format!("{path}?limit=0")).await,
        404,
    );
    for query in [
        "limit=0",
        "limit=201",
        "cursor=nonsense",
        "limit=x",
        "colour=red",
    ] {
        let response = get(&state, &team.admin, &format!("{path}?{query}")).await;
        assert_problem(&response, 422);
    }
    let page = expect(&get(&state, &team.admin, &path).await, 200);
    assert_eq!(page["next_cursor"], Value::Null);
    // created, two joins, one role change.
    assert_eq!(page["items"].as_array().unwrap().len(), 4);
}
