//! The organization event feed (DESIGN.md §8): every event exactly once, in commit order, to a
//! follower that keeps passing `next_cursor`, even while many transactions write at once.

use test_support::clusters_and_deployments as common;

use common::*;
use serde_json::{json, Value};
use shared::testing::{body_json, test_state, TestRequest};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn feed_path(org: Uuid, after: Option<&str>, wait: u32) -> String {
    match after {
        Some(cursor) => format!("{ORGS}/{org}/events?after={cursor}&wait={wait}&limit=50"),
        None => format!("{ORGS}/{org}/events?wait={wait}&limit=50"),
    }
}

/// Reads pages until one comes back empty; returns the items and the final cursor.
async fn drain(
    state: &shared::AppState,
    who: &User,
    org: Uuid,
    mut after: Option<String>,
) -> (Vec<Value>, String) {
    let mut items = Vec::new();
    loop {
        let page = expect(
            &get(state, who, &feed_path(org, after.as_deref(), 0)).await,
            200,
        );
        let cursor = page["next_cursor"]
            .as_str()
            .expect("a cursor, never null")
            .to_string();
        let got = page["items"].as_array().unwrap().clone();
        if got.is_empty() {
            assert_eq!(Some(&cursor), after.as_ref().or(Some(&cursor)));
            return (items, cursor);
        }
        items.extend(got);
        after = Some(cursor);
    }
}

/// Every event of the organization's deployments, per deployment, as their own lists show.
async fn own_lists(
    state: &shared::AppState,
    who: &User,
    org: Uuid,
) -> BTreeMap<String, Vec<String>> {
    let ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM deployments WHERE organization_id = $1")
            .bind(org)
            .fetch_all(&state.db)
            .await
            .unwrap();
    let mut lists = BTreeMap::new();
    for id in ids {
        let events = expect(
            &get(state, who, &format!("{}/events", deployment_path(id))).await,
            200,
        );
        let types = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect();
        lists.insert(id.to_string(), types);
    }
    lists
}

fn per_deployment(items: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut lists: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in items {
        lists
            .entry(item["deployment"]["id"].as_str().unwrap().to_string())
            .or_default()
            .push(item["type"].as_str().unwrap().to_string());
    }
    lists
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn the_feed_lists_every_event_oldest_first_with_its_deployment(db: PgPool) {
    let state = test_state(db);
    let team = team(&state, "t").await;
    // An empty feed still gives a cursor, and it leads nowhere.
    let (items, empty_end) = drain(&state, &team.viewer, team.org, None).await;
    assert!(items.is_empty());
    let cluster = create_cluster(&state, &team.admin, team.org, "c", 4.0, 16.0, 0).await;
    let cluster = uuid_of(&cluster["id"]);
    let a = submit_id(
        &state,
        &team.developer,
        deployment(Some(cluster), "a", 3.0, 1.0, 0),
    )
    .await;
    let b = submit_id(
        &state,
        &team.developer,
        deployment(Some(cluster), "b", 3.0, 1.0, 0),
    )
    .await;
    pass(&state, team.org).await;
    expect(&cancel(&state, &team.developer, b).await, 200);

    let (items, end) = drain(&state, &team.viewer, team.org, Some(empty_end)).await;
    let seen: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            (
                i["deployment"]["name"].as_str().unwrap().to_string(),
                i["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("a".into(), "submitted".into()),
            ("b".into(), "submitted".into()),
            ("a".into(), "started".into()),
            ("b".into(), "cancelled".into()),
        ]
    );
    for item in &items {
        assert_keys(
            item,
            &[
                "at",
                "cursor",
                "deployment",
                "detail",
                "related_deployment_id",
                "type",
            ],
        );
        assert_keys(&item["deployment"], &["id", "name", "status"]);
    }
    assert_eq!(items[0]["deployment"]["id"], json!(a));
    assert_eq!(items[0]["deployment"]["status"], "running");
    // Starting again from an item's cursor gives what follows it, and the end gives nothing.
    let from_second = expect(
        &get(
            &state,
            &team.viewer,
            &feed_path(team.org, items[1]["cursor"].as_str(), 0),
        )
        .await,
        200,
    );
    assert_eq!(from_second["items"].as_array().unwrap().len(), 2);
    let (after_end, same) = drain(&state, &team.viewer, team.org, Some(end.clone())).await;
    assert!(after_end.is_empty());
    assert_eq!(same, end);
    // The whole feed from the start is the same list.
    let (from_start, _) = drain(&state, &team.admin, team.org, None).await;
    assert_eq!(from_start, items);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_follower_sees_every_event_exactly_once_while_48_submissions_race(db: PgPool) {
    let state = test_state(db.clone());
    let team = team(&state, "race").await;
    let cluster = create_cluster(&state, &team.admin, team.org, "c", 24.0, 96.0, 0).await;
    let cluster = uuid_of(&cluster["id"]);
    let (org, token) = (team.org, team.developer.token.clone());

    // The follower: its own pool, reading with `wait` while the writers write.
    let follower_state = test_state(
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(db.connect_options().as_ref().clone())
            .await
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let follower = tokio::spawn({
        let (stop, viewer) = (
            stop.clone(),
            User {
                id: team.viewer.id,
                name: team.viewer.name.clone(),
                token: team.viewer.token.clone(),
            },
        );
        async move {
            let mut items: Vec<Value> = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let stopping = stop.load(Ordering::SeqCst);
                let page = expect(
                    &get(
                        &follower_state,
                        &viewer,
                        &feed_path(org, after.as_deref(), 1),
                    )
                    .await,
                    200,
                );
                let got = page["items"].as_array().unwrap().clone();
                after = Some(page["next_cursor"].as_str().unwrap().to_string());
                if got.is_empty() && stopping {
                    return items;
                }
                items.extend(got);
            }
        }
    });

    // 24 submitters (two each, 48 in all) and 2 schedulers, each a thread with its own pool.
    let outcomes = test_support::race::race(&db, 26, move |i, racer| {
        let token = token.clone();
        async move {
            if i < 2 {
                for _ in 0..6 {
                    pass(&racer, org).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                return 0;
            }
            let mut submitted = 0;
            for n in 0..2 {
                let body = deployment(Some(cluster), &format!("job-{i}-{n}"), 1.0, 1.0, 0);
                let response = send(
                    &racer,
                    TestRequest::post(DEPLOYMENTS)
                        .bearer(&token)
                        .json(body)
                        .build(),
                )
                .await;
                assert_eq!(response.status(), 202, "{}", body_json(&response));
                submitted += 1;
            }
            submitted
        }
    })
    .await;
    assert_eq!(outcomes.iter().sum::<i32>(), 48);
    pass(&state, org).await;
    stop.store(true, Ordering::SeqCst);
    let items = follower.await.expect("the follower");

    let cursors: HashSet<&str> = items
        .iter()
        .map(|i| i["cursor"].as_str().unwrap())
        .collect();
    assert_eq!(cursors.len(), items.len(), "an event was seen twice");
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deployment_events e JOIN deployments d ON d.id = e.deployment_id
         WHERE d.organization_id = $1",
    )
    .bind(org)
    .fetch_one(&state.db)
    .await
    .unwrap();
    assert_eq!(items.len() as i64, total, "the follower missed events");
    assert!(total >= 48 + 24, "submissions and starts: {total}");
    // Commit order: each deployment's events arrive in the order its own list has them.
    assert_eq!(
        per_deployment(&items),
        own_lists(&state, &team.admin, org).await
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn wait_holds_an_idle_request_and_answers_soon_after_an_event(db: PgPool) {
    let state = test_state(db);
    let team = team(&state, "t").await;
    create_cluster(&state, &team.admin, team.org, "c", 4.0, 16.0, 0).await;
    let (_, end) = drain(&state, &team.viewer, team.org, None).await;

    // Nothing new: held for the wait, then the same cursor and no items.
    let started = Instant::now();
    let page = expect(
        &get(&state, &team.viewer, &feed_path(team.org, Some(&end), 1)).await,
        200,
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "not held: {:?}",
        started.elapsed()
    );
    assert!(page["items"].as_array().unwrap().is_empty());
    assert_eq!(page["next_cursor"], json!(end));

    // Something new while a request waits: it answers with it, long before its wait is over.
    let waiting = tokio::spawn({
        let (state, viewer, org, end) = (
            state.clone(),
            User {
                id: team.viewer.id,
                name: team.viewer.name.clone(),
                token: team.viewer.token.clone(),
            },
            team.org,
            end.clone(),
        );
        async move {
            let started = Instant::now();
            let page = expect(
                &get(&state, &viewer, &feed_path(org, Some(&end), 15)).await,
                200,
            );
            (page, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let submitted_at = Instant::now();
    submit_id(
        &state,
        &team.developer,
        deployment(None, "wake", 1.0, 1.0, 0),
    )
    .await;
    let (page, held) = waiting.await.unwrap();
    assert_eq!(page["items"][0]["type"], "submitted");
    assert_eq!(page["items"][0]["deployment"]["name"], "wake");
    assert!(
        held >= Duration::from_millis(1400),
        "it did not wait: {held:?}"
    );
    assert!(
        submitted_at.elapsed() < Duration::from_secs(5),
        "it woke late"
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn members_and_tokens_read_the_feed_outsiders_do_not_and_bad_queries_are_422(db: PgPool) {
    let state = test_state(db);
    let team = team(&state, "t").await;
    let (outsider, _) = solo(&state, "outsider").await;
    let viewer_token = api_token(&state, &team.admin, team.org, "watch", "viewer").await;
    let path = format!("{ORGS}/{}/events", team.org);
    expect(&get(&state, &viewer_token, &path).await, 200);
    assert_problem(&get(&state, &outsider, &path).await, 404);
    for query in [
        "limit=0",
        "limit=501",
        "wait=21",
        "wait=-1",
        "after=nonsense",
        "since=1",
    ] {
        let response = get(&state, &team.viewer, &format!("{path}?{query}")).await;
        assert_problem(&response, 422);
    }
    // Another organization's token is 404 too.
    let (other_admin, other_org) = solo(&state, "other").await;
    let theirs = api_token(&state, &other_admin, other_org, "theirs", "viewer").await;
    assert_problem(&get(&state, &theirs, &path).await, 404);
}
