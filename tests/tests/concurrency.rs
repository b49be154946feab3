//! Many clients and two schedulers at once must never over-commit a cluster, lose a
//! submission or start a deployment twice.

use e2e_tests::TestApp;
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn concurrent_submits_completes_and_passes_keep_the_books_exact(db: PgPool) {
    let app = TestApp::start(db).await;
    let admin = app.user("alice").await;
    let (org, _) = app.organization(&admin, "busy").await;
    let org_id: Uuid = org.parse().unwrap();
    let small = app.cluster(&admin, &org, "small", 8.0, 32.0, 2).await;
    let _other = app.cluster(&admin, &org, "other", 4.0, 8.0, 0).await;

    // 60 submissions at once, mixed priorities and sizes, some pinned and some auto-placed,
    // while two extra scheduler passes race the queue consumer and the sweep.
    let submissions = (0..60).map(|i| {
        let (app, admin, small) = (&app, &admin, &small);
        async move {
            let mut body = json!({
                "organization_id": org_id, "name": format!("job-{i}"), "image": "busybox:1.36",
                "resources": {"cpu_cores": 1 + (i % 3), "ram_gib": 2, "gpu_count": i64::from(i % 10 == 0)},
                "priority": 1 + (i * 37) % 100,
            });
            if i % 2 == 0 {
                body["cluster_id"] = json!(small);
            }
            app.call(Method::POST, "/api/v1/deployments", Some(admin), Some(body)).await
        }
    });
    let racing_passes = (0..2).map(|_| {
        let state = app.state.clone();
        async move {
            for _ in 0..15 {
                scheduler::run_pass(&state, org_id)
                    .await
                    .expect("a pass never fails under contention");
            }
        }
    });
    let (results, _) = tokio::join!(join_all(submissions), join_all(racing_passes));
    let ids: Vec<String> = results
        .into_iter()
        .map(|(status, d)| {
            assert_eq!(status, StatusCode::ACCEPTED, "{d}");
            d["id"].as_str().unwrap().to_string()
        })
        .collect();

    // Complete every running deployment twice at once: exactly one of each pair wins.
    scheduler::run_pass(&app.state, org_id).await.unwrap();
    let last_event: i64 = sqlx::query_scalar("SELECT COALESCE(max(id), 0) FROM deployment_events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let running: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM deployments WHERE status = 'running'")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert!(!running.is_empty());
    let completes = running.iter().flat_map(|id| {
        let path = format!("/api/v1/deployments/{id}/complete");
        [path.clone(), path].into_iter().map(|path| {
            let (app, admin) = (&app, &admin);
            async move {
                app.call(
                    Method::POST,
                    &path,
                    Some(admin),
                    Some(json!({"outcome": "succeeded"})),
                )
                .await
                .0
            }
        })
    });
    let statuses = join_all(completes).await;
    // Per pair: exactly one wins. The only way neither wins is that the background consumer
    // preempted that deployment after we listed it (a completion frees room for a preemptor).
    for (id, pair) in running.iter().zip(statuses.chunks(2)) {
        let ok = pair.iter().filter(|s| **s == StatusCode::OK).count();
        assert!(
            pair.iter()
                .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
            "{id}: {pair:?}"
        );
        match ok {
            1 => {}
            0 => {
                let preempted: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM deployment_events
                     WHERE deployment_id = $1 AND type = 'preempted' AND id > $2",
                )
                .bind(id)
                .bind(last_event)
                .fetch_one(&app.db)
                .await
                .unwrap();
                assert!(
                    preempted > 0,
                    "{id}: neither completion won, yet it was not preempted since"
                );
            }
            _ => panic!("{id}: completed twice {pair:?}"),
        }
    }

    // Let everything settle, racing passes again.
    join_all((0..3).map(|_| scheduler::run_pass(&app.state, org_id))).await;
    scheduler::run_pass(&app.state, org_id).await.unwrap();

    // Nothing lost.
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM deployments")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(total as usize, ids.len());
    // Books exact and within capacity.
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM clusters c
         LEFT JOIN LATERAL (SELECT COALESCE(sum(cpu_millis), 0) AS cpu, COALESCE(sum(ram_mgib), 0) AS ram,
                                   COALESCE(sum(gpu), 0) AS gpu
                            FROM deployments d WHERE d.cluster_id = c.id AND d.status = 'running') r ON true
         WHERE (c.alloc_cpu_millis, c.alloc_ram_mgib, c.alloc_gpu) <> (r.cpu, r.ram, r.gpu)
            OR c.alloc_cpu_millis > c.cpu_millis OR c.alloc_ram_mgib > c.ram_mgib OR c.alloc_gpu > c.gpu",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        mismatched, 0,
        "a cluster's books differ from what runs on it"
    );
    // Never started twice: each start is matched by a preemption, except the current run.
    let double_started: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deployments d
         WHERE (SELECT count(*) FROM deployment_events e WHERE e.deployment_id = d.id AND e.type = 'started')
               > d.preemption_count + 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(double_started, 0);
    let running_now: i64 =
        sqlx::query_scalar("SELECT count(*) FROM deployments WHERE status = 'running'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(
        running_now > 0,
        "work left after the completions should have started"
    );
}
