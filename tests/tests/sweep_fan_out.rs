//! The sweep fans out over SQS (DESIGN §12): it sends one message per organization with work,
//! in batches, and runs no pass itself; the SQS-triggered handler runs the passes. A message
//! for an organization whose pass is already running asks again once, a second later, rather
//! than waiting on the lock. Real PostgreSQL, a real LocalStack queue, no consumer running.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use e2e_tests::fresh_queue;
use shared::queue::{Queue, ScheduleRequest};
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::time::Duration;
use uuid::Uuid;

/// `count` organizations of one user, each with a 4-core cluster and one pending 1-core
/// deployment (with its `submitted` event); returns (organization, deployment) pairs.
async fn organizations_with_work(db: &PgPool, count: usize) -> Vec<(Uuid, Uuid)> {
    let user = Uuid::now_v7();
    sqlx::query("INSERT INTO users (id, username, email, password_hash) VALUES ($1, 'fan', 'fan@example.com', 'x')")
        .bind(user)
        .execute(db)
        .await
        .unwrap();
    let mut made = Vec::new();
    for i in 0..count {
        let (org, cluster, deployment) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        sqlx::query("INSERT INTO organizations (id, name, created_by) VALUES ($1, $2, $3)")
            .bind(org)
            .bind(format!("org-{i}"))
            .bind(user)
            .execute(db)
            .await
            .unwrap();
        sqlx::query("INSERT INTO clusters (id, organization_id, name, cpu_millis, ram_mgib, gpu) VALUES ($1, $2, 'c', 4000, 4000, 0)")
            .bind(cluster)
            .bind(org)
            .execute(db)
            .await
            .unwrap();
        sqlx::query(
            "WITH d AS (INSERT INTO deployments (id, organization_id, requested_cluster_id, name, image, cpu_millis, ram_mgib, gpu, priority, created_by)
                        VALUES ($1, $2, $3, 'd', 'busybox', 1000, 1000, 0, 50, $4) RETURNING id)
             INSERT INTO deployment_events (deployment_id, type, detail) SELECT id, 'submitted', 'submitted' FROM d",
        )
        .bind(deployment)
        .bind(org)
        .bind(cluster)
        .bind(user)
        .execute(db)
        .await
        .unwrap();
        made.push((org, deployment));
    }
    made
}

/// Receives every message the queue holds now (and any delayed up to `patience`), deleting
/// them, as the event source would hand them over.
async fn drain(queue: &Queue, patience: Duration) -> SqsEvent {
    let mut event = SqsEvent::default();
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let out = queue
            .client()
            .await
            .receive_message()
            .queue_url(queue.url())
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("LocalStack answers");
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() && tokio::time::Instant::now() >= deadline {
            return event;
        }
        for m in messages {
            queue
                .client()
                .await
                .delete_message()
                .queue_url(queue.url())
                .receipt_handle(m.receipt_handle.clone().unwrap())
                .send()
                .await
                .unwrap();
            let mut record = SqsMessage::default();
            record.message_id = m.message_id;
            record.body = m.body;
            event.records.push(record);
        }
    }
}

fn requests(event: &SqsEvent) -> Vec<ScheduleRequest> {
    event
        .records
        .iter()
        .map(|r| serde_json::from_str(r.body.as_deref().unwrap()).unwrap())
        .collect()
}

async fn status(db: &PgPool, id: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM deployments WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn the_sweep_enqueues_each_organization_with_work_and_runs_no_pass_itself(db: PgPool) {
    let queue = fresh_queue().await;
    let state = shared::testing::test_state_with_queue(db.clone(), queue.clone());
    // 23 organizations: three batches, the last one short.
    let work = organizations_with_work(&db, 23).await;
    let (idle_org, finished) = work[22];
    sqlx::query("UPDATE deployments SET status = 'cancelled', finished_at = now() WHERE id = $1")
        .bind(finished)
        .execute(&db)
        .await
        .unwrap();

    let summary = scheduler::sweep(&state).await.unwrap();
    assert_eq!(
        (
            summary.organizations,
            summary.enqueued,
            summary.inline_passes,
            summary.started
        ),
        (22, 22, 0, 0),
        "{summary:?}"
    );
    for &(_, deployment) in &work[..22] {
        assert_eq!(
            status(&db, deployment).await,
            "pending",
            "the sweep ran a pass"
        );
    }

    let event = drain(&queue, Duration::from_secs(1)).await;
    let sent = requests(&event);
    assert!(sent.iter().all(|r| r.trigger == "sweep"), "{sent:?}");
    let orgs: BTreeSet<Uuid> = sent.iter().map(|r| r.organization_id).collect();
    assert_eq!(sent.len(), 22, "one message per organization");
    let expected: BTreeSet<Uuid> = work[..22].iter().map(|&(org, _)| org).collect();
    assert_eq!(orgs, expected);
    assert!(!orgs.contains(&idle_org));

    // The SQS-triggered invocations run the passes.
    for chunk in event.records.chunks(10) {
        let mut batch = SqsEvent::default();
        batch.records = chunk.to_vec();
        let response = scheduler::handle_sqs(&state, batch).await;
        assert!(response.batch_item_failures.is_empty());
    }
    for &(_, deployment) in &work[..22] {
        assert_eq!(status(&db, deployment).await, "running");
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_message_for_a_busy_organization_asks_again_once_instead_of_waiting(db: PgPool) {
    let queue = fresh_queue().await;
    let state = shared::testing::test_state_with_queue(db.clone(), queue.clone());
    let (org, deployment) = organizations_with_work(&db, 1).await[0];
    // Another invocation's pass over the organization, holding its lock.
    let mut other_pass = db.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('scheduler:' || $1::text, 0))")
        .bind(org)
        .execute(&mut *other_pass)
        .await
        .unwrap();

    let mut batch = SqsEvent::default();
    for i in 0..3 {
        let mut record = SqsMessage::default();
        record.message_id = Some(format!("m{i}"));
        record.body = Some(
            serde_json::to_string(&ScheduleRequest {
                organization_id: org,
                deployment_id: None,
                trigger: "submitted".into(),
            })
            .unwrap(),
        );
        batch.records.push(record);
    }
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        scheduler::handle_sqs(&state, batch),
    )
    .await
    .expect("the handler waited on the other pass's lock");
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(status(&db, deployment).await, "pending");
    other_pass.rollback().await.unwrap();

    // One message for the three, delivered after its delay; it schedules the deployment.
    let again = drain(&queue, Duration::from_secs(3)).await;
    let asked = requests(&again);
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(
        (asked[0].organization_id, asked[0].trigger.as_str()),
        (org, "busy")
    );
    let response = scheduler::handle_sqs(&state, again).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(status(&db, deployment).await, "running");
}
