//! DESIGN §12 at the scale of one organization: a pass whose inputs did not change does not
//! plan again, a second pass over a busy organization gives way instead of waiting on the lock,
//! and retention deletes old history without touching live work.

use test_support::scheduler as common;

use common::{spec, Fixture};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_pass_whose_inputs_did_not_change_does_not_plan_again(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(4, 16, 0).await;
    let big = f.submit(spec(Some(c), 50, 4, 8, 0)).await;
    assert_eq!(f.pass().await.started, 1);
    let waiting = f.submit(spec(Some(c), 50, 2, 2, 0)).await;
    // The pass after a change plans (and finds nothing to do); the next one skips.
    let planned = f.pass().await;
    assert!(!planned.skipped, "{planned:?}");
    assert_eq!((planned.started, planned.still_pending), (0, 1));
    let skipped = f.pass().await;
    assert!(skipped.skipped, "{skipped:?}");
    assert_eq!(
        f.row(waiting).await.2.unwrap()["code"],
        "insufficient_resources"
    );

    // Each kind of change is seen: a completion (an event)...
    f.finish(big, "succeeded").await;
    let after_completion = f.pass().await;
    assert!(!after_completion.skipped);
    assert_eq!(after_completion.started, 1);
    assert_eq!(f.status(waiting).await, "running");
    f.pass().await;
    assert!(f.pass().await.skipped);

    // ...a resize (no event: the cluster rows are part of the fingerprint)...
    let third = f.submit(spec(Some(c), 50, 4, 4, 0)).await;
    f.pass().await;
    assert!(f.pass().await.skipped);
    sqlx::query("UPDATE clusters SET cpu_millis = 8000 WHERE id = $1")
        .bind(c)
        .execute(f.db())
        .await
        .unwrap();
    assert_eq!(f.pass().await.started, 1);
    assert_eq!(f.status(third).await, "running");
    f.pass().await;
    assert!(f.pass().await.skipped);

    // ...and the organization's fairness settings and quotas.
    sqlx::query("UPDATE organizations SET fair_share = true WHERE id = $1")
        .bind(f.org)
        .execute(f.db())
        .await
        .unwrap();
    assert!(!f.pass().await.skipped);
    assert!(f.pass().await.skipped);
    sqlx::query(
        "INSERT INTO submitter_quotas (organization_id, submitter_id, gpu) VALUES ($1, $2, 0)",
    )
    .bind(f.org)
    .bind(f.user)
    .execute(f.db())
    .await
    .unwrap();
    assert!(!f.pass().await.skipped);
}

/// Aging moves the queue with the clock alone, so an organization with aging on is planned
/// every time.
#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn an_organization_with_aging_is_planned_on_every_pass(db: PgPool) {
    let f = Fixture::new(db).await;
    sqlx::query("UPDATE organizations SET aging_points_per_hour = 10 WHERE id = $1")
        .bind(f.org)
        .execute(f.db())
        .await
        .unwrap();
    let c = f.cluster(1, 1, 0).await;
    f.submit(spec(Some(c), 50, 1, 1, 0)).await;
    f.submit(spec(Some(c), 50, 1, 1, 0)).await;
    f.pass().await;
    for _ in 0..3 {
        assert!(!f.pass().await.skipped);
    }
}

/// With a minimum runtime, protection running out is a change no event announces.
#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn protection_running_out_makes_the_next_pass_plan(db: PgPool) {
    let mut config = shared::testing::test_config();
    config.preemption_min_runtime_seconds = 2;
    let f = Fixture::with_state(shared::AppState::new(db, config, None)).await;
    let c = f.cluster(4, 4, 0).await;
    let low = f.submit(spec(Some(c), 10, 4, 4, 0)).await;
    f.pass().await;
    let high = f.submit(spec(Some(c), 90, 4, 4, 0)).await;
    f.pass().await;
    assert_eq!(f.status(high).await, "pending", "low is still protected");
    let protected = f.pass().await;
    assert!(protected.skipped, "{protected:?}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let after = f.pass().await;
    assert!(!after.skipped, "{after:?}");
    assert_eq!(after.preempted, 1);
    assert_eq!(
        (f.status(high).await, f.status(low).await),
        ("running".into(), "pending".into())
    );
}

/// While another pass holds the organization, a pass that may give way returns at once
/// instead of queueing on the lock; one that waits runs once the lock is free.
#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_pass_over_a_busy_organization_gives_way_instead_of_waiting(db: PgPool) {
    let f = Fixture::new(db.clone()).await;
    let c = f.cluster(4, 4, 0).await;
    let d = f.submit(spec(Some(c), 50, 1, 1, 0)).await;
    let mut holder = db.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('scheduler:' || $1::text, 0))")
        .bind(f.org)
        .execute(&mut *holder)
        .await
        .unwrap();

    let gave_way = tokio::time::timeout(
        Duration::from_secs(10),
        scheduler::run_pass_unless_busy(&f.state, f.org),
    )
    .await
    .expect("it did not wait for the lock")
    .unwrap();
    assert!(gave_way.is_none(), "{gave_way:?}");
    assert_eq!(f.status(d).await, "pending");

    let waiting = tokio::spawn({
        let state = f.state.clone();
        let org = f.org;
        async move { scheduler::run_pass(&state, org).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the waiting pass ran under another's lock"
    );
    holder.rollback().await.unwrap();
    assert_eq!(waiting.await.unwrap().started, 1);
    assert_eq!(f.status(d).await, "running");
}

async fn finished_days_ago(f: &Fixture, id: Uuid, days: i32) {
    sqlx::query(
        "UPDATE deployments SET finished_at = now() - make_interval(days => $2) WHERE id = $1",
    )
    .bind(id)
    .bind(days)
    .execute(f.db())
    .await
    .unwrap();
}

async fn count(f: &Fixture, sql: &str, id: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(f.db())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn retention_deletes_old_finished_work_with_its_events_and_keeps_the_rest(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(8, 8, 0).await;
    let old = f.submit(spec(Some(c), 50, 1, 1, 0)).await;
    let recent = f.submit(spec(Some(c), 50, 1, 1, 0)).await;
    let old_dependency = f.submit(spec(Some(c), 50, 1, 1, 0)).await;
    f.pass().await;
    for id in [old, recent, old_dependency] {
        f.finish(id, "succeeded").await;
    }
    finished_days_ago(&f, old, 100).await;
    finished_days_ago(&f, recent, 10).await;
    finished_days_ago(&f, old_dependency, 100).await;
    // Still pending, and blocked on purpose: something depends on the old dependency.
    let c_full = f.cluster(1, 1, 0).await;
    let dependent = f
        .submit_after(spec(Some(c_full), 50, 2, 2, 0), &[old_dependency])
        .await;
    let running = f.submit(spec(Some(c), 50, 1, 1, 0)).await;
    f.pass().await;
    assert_eq!(f.status(running).await, "running");
    let old_batches: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT xid::text FROM deployment_events WHERE deployment_id = $1",
    )
    .bind(old)
    .fetch_all(f.db())
    .await
    .unwrap();
    assert!(!old_batches.is_empty());

    let deleted = scheduler::retention::delete_finished(f.db(), 90, 1000)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let exists = "SELECT count(*) FROM deployments WHERE id = $1";
    assert_eq!(count(&f, exists, old).await, 0);
    for kept in [recent, old_dependency, dependent, running] {
        assert_eq!(count(&f, exists, kept).await, 1, "{kept} was deleted");
    }
    let events = "SELECT count(*) FROM deployment_events WHERE deployment_id = $1";
    assert_eq!(count(&f, events, old).await, 0);
    assert!(count(&f, events, recent).await > 0);
    // Feed batches that only held the deleted events are gone; shared ones stay.
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM event_batches b WHERE b.xid::text = ANY ($1)
           AND NOT EXISTS (SELECT 1 FROM deployment_events e WHERE e.xid = b.xid)",
    )
    .bind(&old_batches)
    .fetch_one(f.db())
    .await
    .unwrap();
    assert_eq!(left, 0, "a feed batch without events was kept");
    f.assert_books_balance().await;
    // Nothing more is old enough.
    assert_eq!(
        scheduler::retention::delete_finished(f.db(), 90, 1000)
            .await
            .unwrap(),
        0
    );
}

/// Without a queue (or when it cannot be reached) the sweep runs the passes itself, for the
/// organizations with pending work and those with overdue running work only.
#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_sweep_without_a_queue_runs_the_passes_itself(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(4, 4, 0).await;
    let overdue = f.submit(spec(Some(c), 50, 2, 2, 0)).await;
    f.pass().await;
    sqlx::query(
        "UPDATE deployments SET max_runtime_seconds = 60, started_at = now() - interval '1 hour' WHERE id = $1",
    )
    .bind(overdue)
    .execute(f.db())
    .await
    .unwrap();
    let summary = scheduler::sweep(&f.state).await.unwrap();
    assert_eq!(
        (
            summary.organizations,
            summary.enqueued,
            summary.inline_passes,
            summary.expired
        ),
        (1, 0, 1, 1),
        "{summary:?}"
    );
    assert_eq!(f.status(overdue).await, "failed");
    let idle = scheduler::sweep(&f.state).await.unwrap();
    assert_eq!(idle.organizations, 0, "{idle:?}");
}
