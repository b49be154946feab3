//! Webhook deliveries (DESIGN.md §8) to a real local receiver: signed as Standard Webhooks
//! says, retried with the same id after a failure, never after the webhook is deleted, never
//! to a forbidden address, no redirects followed, at most 1 KB of the answer kept.

use serde_json::{json, Value};
use shared::testing::test_state;
use sqlx::PgPool;
use test_support::clusters_and_deployments::*;
use test_support::webhook_receiver::receiver;
use uuid::Uuid;

/// A state whose webhooks may point at this machine (WEBHOOK_ALLOW_PRIVATE=true).
fn local_state(db: PgPool) -> shared::AppState {
    let mut config = shared::testing::test_config();
    config.webhook_allow_private = true;
    shared::AppState::new(db, config, None)
}

async fn register(state: &shared::AppState, admin: &User, org: Uuid, body: Value) -> Value {
    expect(
        &post(state, admin, &format!("{ORGS}/{org}/webhooks"), body).await,
        201,
    )
}

/// A team whose organization has a cluster to submit to.
async fn team_with_cluster(state: &shared::AppState, prefix: &str) -> Team {
    let team = team(state, prefix).await;
    create_cluster(state, &team.admin, team.org, "c", 16.0, 64.0, 0).await;
    team
}

/// Makes every pending delivery due now, as if its backoff had passed.
async fn time_passes(state: &shared::AppState) {
    sqlx::query("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE state = 'pending'")
        .execute(&state.db)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn events_are_posted_signed_and_retried_with_the_same_id(db: PgPool) {
    let state = local_state(db);
    let team = team_with_cluster(&state, "t").await;
    let (url, got) = receiver(vec![500, 200], "thanks").await;
    let hook = register(
        &state,
        &team.admin,
        team.org,
        json!({"url": url, "event_types": ["submitted"]}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    let d = submit_id(
        &state,
        &team.developer,
        deployment(None, "train", 1.0, 1.0, 0),
    )
    .await;

    let first = notifier::deliver_due(&state, None).await.unwrap();
    assert_eq!(
        first,
        notifier::Summary {
            delivered: 0,
            retrying: 1,
            failed: 0
        }
    );
    // Not due again until its backoff passes.
    assert_eq!(
        notifier::deliver_due(&state, None).await.unwrap(),
        notifier::Summary::default()
    );
    time_passes(&state).await;
    let second = notifier::deliver_due(&state, None).await.unwrap();
    assert_eq!(second.delivered, 1);

    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, got[1].id, "a retry keeps its webhook-id");
    assert!(got[0].id.starts_with("evt_"));
    for r in &got {
        let ts: i64 = r.timestamp.parse().expect("Unix seconds");
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
        assert_eq!(
            shared::webhook::signature(&secret, &r.id, ts, &r.body).unwrap(),
            r.signature,
            "the signature does not verify"
        );
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["type"], "submitted");
        assert_eq!(body["id"], json!(r.id));
        assert_eq!(body["organization_id"], json!(team.org));
        assert_eq!(body["deployment"]["id"], json!(d));
        assert_eq!(body["deployment"]["name"], "train");
        let mut keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "at",
                "deployment",
                "detail",
                "id",
                "organization_id",
                "related_deployment_id",
                "type"
            ]
        );
    }

    let deliveries = expect(
        &get(
            &state,
            &team.admin,
            &format!(
                "{ORGS}/{}/webhooks/{}/deliveries",
                team.org,
                hook["id"].as_str().unwrap()
            ),
        )
        .await,
        200,
    );
    let attempts = deliveries.as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["delivered"], true);
    assert_eq!(attempts[0]["status_code"], 200);
    assert_eq!(attempts[0]["attempt"], 2);
    assert_eq!(attempts[1]["delivered"], false);
    assert_eq!(attempts[1]["status_code"], 500);
    assert_eq!(attempts[1]["event_cursor"], json!(got[0].id));
    let list = expect(
        &get(
            &state,
            &team.admin,
            &format!("{ORGS}/{}/webhooks", team.org),
        )
        .await,
        200,
    );
    assert_eq!(list[0]["failing"], false);
    assert!(list[0]["last_delivery_at"].is_string());
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn only_matching_events_are_delivered_and_nothing_after_a_delete(db: PgPool) {
    let state = local_state(db);
    let team = team_with_cluster(&state, "t").await;
    let (url, got) = receiver(vec![200], "").await;
    let only_cancels = register(
        &state,
        &team.admin,
        team.org,
        json!({"url": url, "event_types": ["cancelled"]}),
    )
    .await;
    let (url2, got2) = receiver(vec![200], "").await;
    let doomed = register(&state, &team.admin, team.org, json!({"url": url2})).await;
    let d = submit_id(&state, &team.developer, deployment(None, "x", 1.0, 1.0, 0)).await;
    expect(&cancel(&state, &team.developer, d).await, 200);
    // The second webhook goes before anything is delivered: it gets nothing.
    let path = format!(
        "{ORGS}/{}/webhooks/{}",
        team.org,
        doomed["id"].as_str().unwrap()
    );
    assert_eq!(delete(&state, &team.admin, &path).await.status(), 204);
    let summary = notifier::deliver_due(&state, None).await.unwrap();
    assert_eq!(summary.delivered, 1);
    assert!(
        got2.lock().unwrap().is_empty(),
        "delivered after its webhook was deleted"
    );
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], "cancelled");
    let _ = only_cancels;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_forbidden_address_redirects_and_long_answers_are_not_followed_or_kept(db: PgPool) {
    let state = local_state(db.clone());
    let team = team_with_cluster(&state, "t").await;
    let (redirecting, got) = receiver(vec![302], "").await;
    register(&state, &team.admin, team.org, json!({"url": redirecting})).await;
    let (chatty, _) = receiver(vec![200], include_str!("../src/send.rs")).await;
    let chatty_hook = register(&state, &team.admin, team.org, json!({"url": chatty})).await;
    submit_id(&state, &team.developer, deployment(None, "x", 1.0, 1.0, 0)).await;
    let summary = notifier::deliver_due(&state, None).await.unwrap();
    assert_eq!((summary.delivered, summary.retrying), (1, 1));
    assert_eq!(got.lock().unwrap().len(), 1, "the redirect was followed");
    let (status, response): (Option<i32>, Option<String>) = sqlx::query_as(
        "SELECT a.status_code, a.response FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
         WHERE d.webhook_id = $1",
    )
    .bind(uuid_of(&chatty_hook["id"]))
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(status, Some(200));
    assert!(response.unwrap().len() <= 1024);

    // A notifier that may not reach private addresses (production) refuses before connecting,
    // whatever the webhook pointed at when it was registered.
    let strict = test_state(db.clone());
    let other = team_with_cluster(&state, "o").await;
    let (inside, got_inside) = receiver(vec![200], "").await;
    let port = url::Url::parse(&inside).unwrap().port().unwrap();
    for target in [
        inside.clone(),
        format!("https://localhost:{port}/hook"),
        format!("https://[::1]:{port}/hook"),
    ] {
        register(&state, &other.admin, other.org, json!({"url": target})).await;
    }
    submit_id(&state, &other.developer, deployment(None, "y", 1.0, 1.0, 0)).await;
    let summary = notifier::deliver_due(&strict, Some(other.org))
        .await
        .unwrap();
    assert_eq!(summary.retrying, 3, "{summary:?}");
    assert!(
        got_inside.lock().unwrap().is_empty(),
        "a forbidden address was reached"
    );
    let errors: Vec<String> = sqlx::query_scalar(
        "SELECT a.error FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
         WHERE d.organization_id = $1",
    )
    .bind(other.org)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(errors.len(), 3);
    assert!(
        errors
            .iter()
            .all(|e| e.contains("https") || e.contains("localhost") || e.contains("loopback")),
        "{errors:?}"
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_delivery_that_keeps_failing_is_recorded_as_failed(db: PgPool) {
    let state = local_state(db);
    let team = team_with_cluster(&state, "t").await;
    let (url, got) = receiver(vec![503], "down").await;
    let hook = register(
        &state,
        &team.admin,
        team.org,
        json!({"url": url, "event_types": ["submitted"]}),
    )
    .await;
    submit_id(&state, &team.developer, deployment(None, "x", 1.0, 1.0, 0)).await;
    for attempt in 1..=7 {
        time_passes(&state).await;
        let summary = notifier::deliver_due(&state, None).await.unwrap();
        if attempt < 7 {
            assert_eq!(summary.retrying, 1, "attempt {attempt}");
        } else {
            assert_eq!(summary.failed, 1, "attempt {attempt}");
        }
    }
    time_passes(&state).await;
    assert_eq!(
        notifier::deliver_due(&state, None).await.unwrap(),
        notifier::Summary::default()
    );
    assert_eq!(got.lock().unwrap().len(), 7);
    let list = expect(
        &get(
            &state,
            &team.admin,
            &format!("{ORGS}/{}/webhooks", team.org),
        )
        .await,
        200,
    );
    assert_eq!(list[0]["failing"], true);
    let attempts = expect(
        &get(
            &state,
            &team.admin,
            &format!(
                "{ORGS}/{}/webhooks/{}/deliveries",
                team.org,
                hook["id"].as_str().unwrap()
            ),
        )
        .await,
        200,
    );
    assert_eq!(attempts[0]["attempt"], 7);
    assert_eq!(attempts[0]["next_attempt_at"], Value::Null);
}
