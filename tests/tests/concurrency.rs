//! Many clients and several schedulers at once, for real: every racer is an OS thread with its
//! own runtime and its own pool (as separate Lambda instances are), released by a barrier. They
//! must never over-commit a cluster, lose a submission, start a deployment twice, or leave
//! fitting work waiting.

use serde_json::{json, Value};
use shared::testing::{body_json, test_state, TestRequest};
use sqlx::PgPool;
use test_support::api::{send, user};
use test_support::race::race;
use uuid::Uuid;

const SUBMITTERS: usize = 4;
const PER_SUBMITTER: usize = 15;
const SCHEDULERS: usize = 2;

async fn post(state: &shared::AppState, token: &str, path: &str, body: Value) -> (u16, Value) {
    let request = TestRequest::post(path).bearer(token).json(body).build();
    let response = send(state, request).await;
    (response.status().as_u16(), body_json(&response))
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn racing_submitters_schedulers_and_completes_keep_every_invariant(db: PgPool) {
    let state = test_state(db.clone());
    let admin = user(&state, "alice").await.token;
    let (_, org) = post(
        &state,
        &admin,
        "/api/v1/organizations",
        json!({"name": "busy"}),
    )
    .await;
    let org: Uuid = org["id"].as_str().unwrap().parse().unwrap();
    let mut clusters = Vec::new();
    for (name, cpu, gpu) in [("small", 8, 2), ("other", 4, 0)] {
        let body = json!({"organization_id": org, "name": name, "cpu_cores": cpu, "ram_gib": 32, "gpu_count": gpu});
        let (status, c) = post(&state, &admin, "/api/v1/clusters", body).await;
        assert_eq!(status, 201, "{c}");
        clusters.push(c["id"].as_str().unwrap().to_string());
    }
    // Low-priority work fills "small" first, so the racing submissions must preempt some.
    for i in 0..4 {
        let body = json!({"cluster_id": clusters[0], "name": format!("filler-{i}"), "image": "busybox:1.36",
                          "resources": {"cpu_cores": 2, "ram_gib": 4}, "priority": 1});
        assert_eq!(
            post(&state, &admin, "/api/v1/deployments", body).await.0,
            202
        );
    }
    scheduler::run_pass(&state, org).await.unwrap();

    // Submitters and schedulers at once.
    let (token, small) = (admin.clone(), clusters[0].clone());
    let results = race(&db, SUBMITTERS + SCHEDULERS, move |racer, state| {
        let (token, small) = (token.clone(), small.clone());
        async move {
            let mut answers = Vec::new();
            if racer >= SUBMITTERS {
                for _ in 0..15 {
                    let pass = scheduler::run_pass(&state, org).await;
                    answers.push(pass.map(|_| "pass".to_string()).map_err(|e| format!("{e:#}")));
                }
                return answers;
            }
            for j in 0..PER_SUBMITTER {
                let i = racer * PER_SUBMITTER + j;
                let mut body = json!({
                    "organization_id": org, "name": format!("job-{i}"), "image": "busybox:1.36",
                    "resources": {"cpu_cores": 1 + (i % 3), "ram_gib": 2, "gpu_count": i64::from(i.is_multiple_of(10))},
                    "priority": 2 + (i * 37) % 99,
                });
                if i.is_multiple_of(2) {
                    body["cluster_id"] = json!(small);
                }
                let (status, d) = post(&state, &token, "/api/v1/deployments", body).await;
                answers.push(match status {
                    202 => Ok(d["id"].as_str().unwrap().to_string()),
                    other => Err(format!("{other}: {d}")),
                });
            }
            answers
        }
    })
    .await;
    let mut submitted = Vec::new();
    for (racer, answers) in results.into_iter().enumerate() {
        for answer in answers {
            let answer = answer.unwrap_or_else(|e| panic!("racer {racer}: {e}"));
            if racer < SUBMITTERS {
                submitted.push(answer);
            }
        }
    }
    assert_eq!(submitted.len(), SUBMITTERS * PER_SUBMITTER);
    scheduler::run_pass(&state, org).await.unwrap();

    // Every running deployment completed twice at once, from different instances: exactly one
    // of each pair wins (nothing schedules meanwhile: no queue, no sweep, no pass).
    let running: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM deployments WHERE status = 'running'")
            .fetch_all(&db)
            .await
            .unwrap();
    assert!(running.len() > 2, "{running:?}");
    let (token, pairs) = (admin.clone(), running.clone());
    let statuses = race(&db, 2, move |_, state| {
        let (token, pairs) = (token.clone(), pairs.clone());
        async move {
            let mut statuses = Vec::new();
            for id in pairs {
                let path = format!("/api/v1/deployments/{id}/complete");
                statuses.push(
                    post(&state, &token, &path, json!({"outcome": "succeeded"}))
                        .await
                        .0,
                );
            }
            statuses
        }
    })
    .await;
    for (i, id) in running.iter().enumerate() {
        let mut pair = [statuses[0][i], statuses[1][i]];
        pair.sort_unstable();
        assert_eq!(
            pair,
            [200, 409],
            "{id}: one complete wins, the other is told it is done"
        );
    }
    scheduler::run_pass(&state, org).await.unwrap();

    // Nothing lost.
    let found: i64 =
        sqlx::query_scalar("SELECT count(*) FROM deployments WHERE id::text = ANY($1)")
            .bind(&submitted)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(found as usize, submitted.len());
    // Books equal the running rows, within capacity.
    let wrong: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM clusters c LEFT JOIN LATERAL (
             SELECT coalesce(sum(cpu_millis), 0)::bigint cpu, coalesce(sum(ram_mgib), 0)::bigint ram,
                    coalesce(sum(gpu), 0)::bigint gpu
             FROM deployments d WHERE d.cluster_id = c.id AND d.status = 'running') r ON true
         WHERE (c.alloc_cpu_millis, c.alloc_ram_mgib, c.alloc_gpu) <> (r.cpu, r.ram, r.gpu)
            OR c.alloc_cpu_millis > c.cpu_millis OR c.alloc_ram_mgib > c.ram_mgib OR c.alloc_gpu > c.gpu",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(wrong, 0, "books differ from what runs");
    // Nothing started twice: each start is the first or follows a requeue.
    let twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT deployment_id FROM deployment_events GROUP BY deployment_id
             HAVING count(*) FILTER (WHERE type = 'started') > 1 + count(*) FILTER (WHERE type = 'requeued')) x",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(twice, 0, "a deployment started twice");
    // The race really preempted.
    let preemptions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM deployment_events WHERE type = 'preempted'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(
        preemptions > 0,
        "no preemption happened: the race tested less than it says"
    );
    // Nothing pending fits the free room of a cluster it may use.
    let fitting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deployments d JOIN clusters c ON c.organization_id = d.organization_id
         WHERE d.status = 'pending' AND (d.requested_cluster_id IS NULL OR d.requested_cluster_id = c.id)
           AND d.cpu_millis <= c.cpu_millis - c.alloc_cpu_millis
           AND d.ram_mgib <= c.ram_mgib - c.alloc_ram_mgib AND d.gpu <= c.gpu - c.alloc_gpu",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(fitting, 0, "a pending deployment fits free capacity");
}
